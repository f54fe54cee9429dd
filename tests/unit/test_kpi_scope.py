"""Scope of every headline KPI: rep vs manager vs admin, team / region / rep / tier filters, deletions.

Figures belong to the rep on the record, not to the customer's owner: rep A's order on rep B's
customer Beta counts for A.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy.orm import Session

from crm import kpi
from crm.access import Actor, Filters
from crm.models import Role, StageKind
from crm.periods import Period
from tests.factories import (
    Org,
    actor,
    make_complaint,
    make_customer,
    make_interaction,
    make_opportunity,
    make_order,
    make_org,
    make_survey,
    make_user,
    soft_delete,
)

Q1 = Period.quarter(2026, 1)
OLD = datetime(2025, 6, 1)
LATE = datetime(2026, 6, 1)  # "now", long after the quarter


def build(session: Session) -> Org:
    """Q1 2026 records (rep on the record → customer):

    orders:      A → Alpha 100 | A → Beta 200 | B → Beta 300 | C → Gamma 400
    visits:      A → Alpha ×2 | B → Beta | C → Gamma
    closed:      A won (Alpha) | B lost (Beta) | C won (Gamma) | C lost (no customer)
    responses:   A on Alpha 5 | B on Beta 3 | C on Gamma 1
    complaints:  A resolved on time | B resolved late
    new customers (owner): Lead-A (A, ordered) | Lead-B (B, nothing)
    Not counted anywhere: Gone (deleted customer, owner A) and everything on it; a deleted order of A.
    """
    org = make_org(session)
    a, b, c = org.rep_a, org.rep_b, org.rep_c
    alpha = make_customer(session, "Alpha", owner=a, tier="key", created_at=OLD)
    beta = make_customer(session, "Beta", owner=b, tier="customer", created_at=OLD)
    gamma = make_customer(session, "Gamma", owner=c, tier="customer", created_at=OLD)
    gone = make_customer(session, "Gone", owner=a, tier="key", created_at=OLD)
    for customer, rep, amount in ((alpha, a, 100), (beta, a, 200), (beta, b, 300), (gamma, c, 400), (gone, a, 1000)):
        make_order(session, customer, rep, date(2026, 2, 1), amount)
    soft_delete(session, make_order(session, alpha, a, date(2026, 2, 2), 5000))
    for customer, rep in ((alpha, a), (alpha, a), (beta, b), (gamma, c), (gone, a)):
        make_interaction(session, customer, rep, datetime(2026, 2, 3, 10))
    make_opportunity(session, alpha, a, "won", closed_on=date(2026, 3, 1))
    make_opportunity(session, beta, b, "lost", closed_on=date(2026, 3, 1))
    make_opportunity(session, gamma, c, "won", closed_on=date(2026, 3, 1))
    make_opportunity(session, None, c, "lost", closed_on=date(2026, 3, 1))
    make_opportunity(session, gone, a, "lost", closed_on=date(2026, 3, 1))
    make_survey(session, alpha, a, date(2026, 2, 5), 5)
    make_survey(session, beta, b, date(2026, 2, 5), 3)
    make_survey(session, gamma, c, date(2026, 2, 5), 1)
    make_survey(session, gone, a, date(2026, 2, 5), 1)
    make_complaint(session, alpha, a, datetime(2026, 2, 1), sla_hours=24, resolved_after_hours=5)
    make_complaint(session, beta, b, datetime(2026, 2, 1), sla_hours=24, resolved_after_hours=50)
    make_complaint(session, gone, a, datetime(2026, 2, 1), sla_hours=24, resolved_after_hours=50)
    lead_a = make_customer(session, "Lead-A", owner=a, tier="lead", created_at=datetime(2026, 1, 10))
    make_order(session, lead_a, a, date(2026, 3, 30), 0)
    make_customer(session, "Lead-B", owner=b, tier="lead", created_at=datetime(2026, 1, 10))
    soft_delete(session, gone)
    return org


NOTHING = dict(
    revenue=0.0,
    orders=0,
    active_customers=0,
    visits=0,
    won=0,
    lost=0,
    win_rate=None,
    csat_score=None,
    complaint_on_time_rate=None,
    lead_conversion_rate=None,
)


@pytest.mark.parametrize(
    ("user", "filters", "expected"),
    [
        # everything live: 100+200+300+400 (+ Lead-A's 0); customers Alpha Beta Gamma Lead-A;
        # CSAT (5+3+1)/3; complaints 1 of 2 on time; leads 1 of 2
        (
            "admin",
            {},
            dict(
                revenue=1000.0,
                orders=5,
                active_customers=4,
                visits=4,
                won=2,
                lost=2,
                win_rate=2 / 4,
                csat_score=3.0,
                complaint_on_time_rate=1 / 2,
                lead_conversion_rate=1 / 2,
            ),
        ),
        # north = A + B: orders A→Alpha, A→Beta, B→Beta, A→Lead-A (Beta counted once)
        (
            "north_manager",
            {},
            dict(
                revenue=600.0,
                orders=4,
                active_customers=3,
                visits=3,
                won=1,
                lost=1,
                win_rate=1 / 2,
                csat_score=4.0,
                complaint_on_time_rate=1 / 2,
                lead_conversion_rate=1 / 2,
            ),
        ),
        # south = C: the lost deal without a customer counts for its owner
        (
            "south_manager",
            {},
            dict(
                revenue=400.0,
                orders=1,
                active_customers=1,
                visits=1,
                won=1,
                lost=1,
                win_rate=1 / 2,
                csat_score=1.0,
                complaint_on_time_rate=None,
                lead_conversion_rate=None,
            ),
        ),
        # rep A: own orders, including the one on B's customer Beta
        (
            "rep_a",
            {},
            dict(
                revenue=300.0,
                orders=3,
                active_customers=3,
                visits=2,
                won=1,
                lost=0,
                win_rate=1.0,
                csat_score=5.0,
                complaint_on_time_rate=1.0,
                lead_conversion_rate=1.0,
            ),
        ),
        (
            "rep_b",
            {},
            dict(
                revenue=300.0,
                orders=1,
                active_customers=1,
                visits=1,
                won=0,
                lost=1,
                win_rate=0.0,
                csat_score=3.0,
                complaint_on_time_rate=0.0,
                lead_conversion_rate=0.0,
            ),
        ),
        # filters narrow the actor's scope
        ("admin", {"team": "north"}, dict(revenue=600.0, won=1, lost=1, csat_score=4.0)),
        # region east = A + C
        ("admin", {"region": "east"}, dict(revenue=700.0, orders=4, visits=3, won=2, lost=1, csat_score=3.0)),
        ("north_manager", {"rep": "rep_b"}, dict(revenue=300.0, orders=1, visits=1, win_rate=0.0)),
        # tier key = Alpha: A's order and won deal, A's visits and response
        (
            "admin",
            {"tier": "key"},
            dict(revenue=100.0, orders=1, active_customers=1, visits=2, won=1, lost=0, csat_score=5.0),
        ),
        # never outside the actor's own scope
        ("north_manager", {"team": "south"}, NOTHING),
        ("rep_a", {"rep": "rep_b"}, NOTHING),
    ],
)
def test_headline_scope(session: Session, user: str, filters: dict[str, str], expected: dict[str, object]) -> None:
    org = build(session)
    chosen = Filters(rep_id=getattr(org, filters["rep"]).id) if "rep" in filters else Filters(**filters)
    summary = kpi.kpi_summary(session, actor=actor(getattr(org, user)), period=Q1, filters=chosen)
    for name, value in expected.items():
        assert getattr(summary, name) == pytest.approx(value), name


def test_reps_add_up_to_the_team(session: Session) -> None:
    org = build(session)
    manager = actor(org.north_manager)
    team = kpi.kpi_summary(session, actor=manager, period=Q1)
    per_rep = [
        kpi.kpi_summary(session, actor=manager, period=Q1, filters=Filters(rep_id=rep.id))
        for rep in (org.rep_a, org.rep_b)
    ]
    for name in ("revenue", "orders", "visits", "won", "lost"):
        assert getattr(team, name) == sum(getattr(s, name) for s in per_rep), name


def test_manager_without_team_sees_nothing(session: Session) -> None:
    build(session)
    loner = make_user(session, "loner", role=Role.MANAGER)
    summary = kpi.kpi_summary(session, actor=actor(loner), period=Q1)
    for name, value in NOTHING.items():
        assert getattr(summary, name) == value, name


def test_summary_keys_are_exactly_the_cli_contract(session: Session) -> None:
    org = build(session)
    summary = kpi.kpi_summary(session, actor=actor(org.admin), period=Q1, as_of=date(2026, 2, 1))
    assert list(summary.as_dict()) == [
        "won",
        "lost",
        "win_rate",
        "revenue",
        "orders",
        "active_customers",
        "repeat_purchase_rate",
        "retention_rate",
        "churn_rate",
        "csat_score",
        "csat_pct",
        "nps",
        "lead_conversion_rate",
        "complaint_on_time_rate",
        "visits",
    ]
    assert isinstance(summary.as_dict()["revenue"], float)
    # nobody was active in Q4 2025: retention and churn are n/a; no recommend scores: NPS n/a
    assert summary.as_dict()["retention_rate"] is None
    assert summary.as_dict()["churn_rate"] is None
    assert summary.as_dict()["nps"] is None


def test_customer_lists_follow_visibility(session: Session) -> None:
    """Pyramid counts the customers the actor may see; the north manager also sees the pool."""
    org = build(session)
    make_customer(session, "Pool", owner=None, tier="lead", created_at=OLD)

    def total(user: Actor) -> int:
        return int(kpi.pyramid(session, actor=user)["customers"].sum())

    assert total(actor(org.admin)) == 6  # Alpha Beta Gamma Lead-A Lead-B Pool
    assert total(actor(org.north_manager)) == 5  # all but Gamma
    assert total(actor(org.rep_a)) == 2  # Alpha Lead-A


@pytest.mark.parametrize(
    ("user", "filters"),
    [
        ("admin", {}),
        ("north_manager", {}),
        ("south_manager", {}),
        ("rep_a", {}),
        ("rep_b", {}),
        ("admin", {"region": "east"}),
        ("admin", {"tier": "key"}),
        ("north_manager", {"team": "south"}),
    ],
)
def test_drill_down_lists_exactly_the_records_behind_the_figures(
    session: Session, user: str, filters: dict[str, str]
) -> None:
    org = build(session)
    who, chosen = actor(getattr(org, user)), Filters(**filters)
    summary = kpi.kpi_summary(session, actor=who, period=Q1, filters=chosen)
    orders = kpi.orders_in_period(session, actor=who, period=Q1, filters=chosen)
    assert len(orders) == summary.orders
    assert orders["amount"].sum() == pytest.approx(summary.revenue)
    assert orders["customer_id"].nunique() == summary.active_customers
    closed = kpi.closed_opportunities(session, actor=who, period=Q1, filters=chosen)
    assert (closed["outcome"] == "won").sum() == summary.won
    assert (closed["outcome"] == "lost").sum() == summary.lost
    won_only = kpi.closed_opportunities(session, actor=who, period=Q1, filters=chosen, outcome=StageKind.WON)
    assert len(won_only) == summary.won
    responses = kpi.survey_responses(session, actor=who, period=Q1, filters=chosen)
    satisfaction = kpi.satisfaction_summary(session, actor=who, period=Q1, filters=chosen)
    assert len(responses) == satisfaction.responses
    visits = kpi.visits(session, actor=who, period=Q1, filters=chosen)
    assert len(visits) == summary.visits
    resolved = kpi.complaints(session, actor=who, period=Q1, as_of=LATE, filters=chosen)
    service = kpi.service_summary(session, actor=who, period=Q1, as_of=LATE, filters=chosen)
    assert len(resolved) == service.resolved
    assert resolved["on_time"].sum() == service.resolved_on_time


def test_drill_down_columns_and_limit(session: Session) -> None:
    org = build(session)
    admin = actor(org.admin)
    orders = kpi.orders_in_period(session, actor=admin, period=Q1, limit=2)
    assert list(orders.columns) == [
        "order_id",
        "ordered_on",
        "customer_id",
        "customer_code",
        "customer_name",
        "rep_id",
        "rep_name",
        "amount",
        "quantity",
    ]
    assert len(orders) == 2
    assert list(orders["ordered_on"]) == [date(2026, 3, 30), date(2026, 2, 1)]  # newest first
    closed = kpi.closed_opportunities(session, actor=admin, period=Q1)
    no_customer = closed[closed["customer_id"].isna()]
    assert list(no_customer["rep_name"]) == [org.rep_c.display_name]
    assert no_customer["customer_name"].isna().all()
    complaints = kpi.complaints(session, actor=admin, period=Q1, as_of=LATE)
    assert list(complaints["resolution_hours"]) == [5.0, 50.0]
    assert list(complaints["on_time"]) == [True, False]
    responses = kpi.survey_responses(session, actor=actor(org.rep_a), period=Q1)
    assert list(responses["customer_name"]) == ["Alpha"]
    assert list(responses["overall"]) == [5]


def test_overdue_and_opened_complaints(session: Session) -> None:
    org = build(session)
    alpha_owner = org.rep_a
    customer = make_customer(session, "Late", owner=alpha_owner, created_at=OLD)
    make_complaint(session, customer, alpha_owner, datetime(2026, 3, 1), sla_hours=24)
    admin = actor(org.admin)
    overdue = kpi.complaints(session, actor=admin, period=Q1, as_of=LATE, which=kpi.ComplaintSet.OVERDUE)
    assert list(overdue["customer_name"]) == ["Late"]
    assert overdue["on_time"].isna().all()
    early = kpi.complaints(session, actor=admin, period=Q1, as_of=datetime(2026, 3, 1, 12), which="overdue")
    assert early.empty  # due Mar 2: not yet overdue at Mar 1 noon
    opened = kpi.complaints(session, actor=admin, period=Q1, as_of=LATE, which=kpi.ComplaintSet.OPENED)
    assert len(opened) == 3
