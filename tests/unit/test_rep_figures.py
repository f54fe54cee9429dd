"""Per-rep figures (crm.kpi.reps) on a hand-built fixture: 2 teams, 3 reps, every figure hand-counted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from crm.access import Filters
from crm.kpi.reps import RepFigures, rep_figures
from crm.models import Role, User
from crm.periods import Period
from tests.factories import (
    actor,
    make_complaint,
    make_customer,
    make_interaction,
    make_opportunity,
    make_order,
    make_survey,
    make_user,
)

MARCH = Period.month(2026, 3)
DELETED_AT = datetime(2026, 3, 25, 12, 0)


@dataclass
class World:
    admin: User
    manager_north: User
    a: User
    b: User
    c: User


def build_world(session: Session) -> World:
    """Team north: reps a, b (manager mn); team south: rep c. Period: March 2026."""
    admin = make_user(session, "admin", role=Role.ADMIN)
    mn = make_user(session, "mn", role=Role.MANAGER, team="north", region="east")
    a = make_user(session, "a", team="north", region="east", manager=mn)
    b = make_user(session, "b", team="north", region="east", manager=mn)
    c = make_user(session, "c", team="south", region="west")

    c1 = make_customer(session, "C1", owner=a, tier="customer")
    c2 = make_customer(session, "C2", owner=a, tier="key")
    c3 = make_customer(session, "C3", owner=b, tier="customer")
    c4 = make_customer(session, "C4", owner=c, tier="customer")
    c5 = make_customer(session, "C5 deleted", owner=a, tier="key")
    c6 = make_customer(session, "C6", owner=c, tier="key")

    # Orders. a: 1000 + 250.50 (c1) + 300 (c2) + 200 (c3, b's customer) = 1750.50 in 4 orders.
    make_order(session, c1, a, date(2026, 2, 10), 500)  # before March: c1 is not new
    make_order(session, c1, a, date(2026, 3, 5), 1000)
    make_order(session, c1, a, date(2026, 3, 31), "250.50")  # last day counts
    make_order(session, c2, a, date(2026, 3, 10), 300)  # c2's first order ever: new for a
    make_order(session, c2, a, date(2026, 4, 1), 999)  # April: outside
    make_order(session, c3, a, date(2026, 3, 3), 200)  # revenue to a, new customer to owner b
    # c: 700 (c4) + 400 (c6) = 1100 in 2 orders; the deleted one does not count.
    make_order(session, c4, c, date(2026, 3, 15), 700)
    make_order(session, c4, c, date(2026, 3, 16), 5000).deleted_at = DELETED_AT
    make_order(session, c6, c, date(2026, 1, 1), 100).deleted_at = DELETED_AT  # deleted: c6 still new in March
    make_order(session, c6, c, date(2026, 3, 2), 400)
    make_order(session, c5, a, date(2026, 3, 20), 9999)  # customer deleted below

    # Interactions. a: 2 visits (first and last instant of March), 1 call.
    make_interaction(session, c1, a, datetime(2026, 3, 1, 0, 0), kind="visit")
    make_interaction(session, c1, a, datetime(2026, 3, 31, 23, 59), kind="visit")
    make_interaction(session, c1, a, datetime(2026, 4, 1, 0, 0), kind="visit")  # outside
    make_interaction(session, c1, a, datetime(2026, 2, 28, 23, 59), kind="visit")  # outside
    make_interaction(session, c1, a, datetime(2026, 3, 5, 10, 0), kind="call")
    make_interaction(session, c1, a, datetime(2026, 3, 6, 10, 0), kind="email")  # neither visit nor call
    make_interaction(session, c5, a, datetime(2026, 3, 7, 10, 0), kind="visit")  # deleted customer
    make_interaction(session, c1, a, datetime(2026, 3, 8, 10, 0), kind="visit").deleted_at = DELETED_AT
    # b: 1 visit on a's customer (counts for b, the rep on the record), 2 calls.
    make_interaction(session, c1, b, datetime(2026, 3, 10, 10, 0), kind="visit")
    make_interaction(session, c3, b, datetime(2026, 3, 11, 10, 0), kind="call")
    make_interaction(session, c3, b, datetime(2026, 3, 11, 11, 0), kind="call")
    # c: 3 visits on c4 + 1 on c6 = 4.
    for day in (2, 3, 4):
        make_interaction(session, c4, c, datetime(2026, 3, day, 10, 0), kind="visit")
    make_interaction(session, c6, c, datetime(2026, 3, 5, 10, 0), kind="visit")

    # Opportunities. a: won Mar 5, won Mar 20, won without customer Mar 22, lost Mar 21 → 3 won, 1 lost.
    make_opportunity(session, c1, a, "won", closed_on=date(2026, 3, 5))
    make_opportunity(session, c1, a, "won", closed_on=date(2026, 3, 20))
    make_opportunity(session, None, a, "won", closed_on=date(2026, 3, 22))
    make_opportunity(session, c2, a, "lost", closed_on=date(2026, 3, 21))
    make_opportunity(session, c1, a, "won", closed_on=date(2026, 2, 28))  # February
    make_opportunity(session, c1, a, "engaging")  # still open
    make_opportunity(session, c5, a, "won", closed_on=date(2026, 3, 9))  # deleted customer
    # b: 1 lost. c: only a deleted deal.
    make_opportunity(session, c3, b, "lost", closed_on=date(2026, 3, 2))
    make_opportunity(session, c4, c, "won", closed_on=date(2026, 3, 3)).deleted_at = DELETED_AT

    # Surveys. a: 5 + 4 = 9 over 2; b: 3 over 1; c: none.
    make_survey(session, c1, a, date(2026, 3, 3), 5)
    make_survey(session, c2, a, date(2026, 3, 4), 4)
    make_survey(session, c1, a, date(2026, 4, 2), 1)  # April
    make_survey(session, c5, a, date(2026, 3, 4), 1)  # deleted customer
    make_survey(session, c3, b, date(2026, 3, 10), 3)

    # Complaints resolved in March. a: 3 resolved, 2 on time; c: 1 resolved on time.
    make_complaint(session, c1, a, datetime(2026, 3, 1, 9, 0), sla_hours=24, resolved_after_hours=24)  # at due: on time
    make_complaint(session, c1, a, datetime(2026, 3, 10, 9, 0), sla_hours=24, resolved_after_hours=30)  # late
    make_complaint(session, c1, a, datetime(2026, 2, 27, 9, 0), sla_hours=168, resolved_after_hours=72)  # Mar 2
    make_complaint(session, c1, a, datetime(2026, 3, 30, 9, 0), sla_hours=24, resolved_after_hours=72)  # Apr 2
    make_complaint(session, c1, a, datetime(2026, 3, 12, 9, 0), sla_hours=24)  # unresolved
    make_complaint(session, c5, a, datetime(2026, 3, 12, 9, 0), sla_hours=24, resolved_after_hours=1)  # deleted cust.
    make_complaint(session, c4, c, datetime(2026, 3, 5, 9, 0), sla_hours=24, resolved_after_hours=10)

    c5.deleted_at = DELETED_AT
    session.flush()
    return World(admin=admin, manager_north=mn, a=a, b=b, c=c)


def by_username(rows: list[RepFigures]) -> dict[str, RepFigures]:
    return {row.username: row for row in rows}


def test_every_figure_of_every_rep(session: Session) -> None:
    w = build_world(session)
    rows = by_username(rep_figures(session, actor=actor(w.admin), period=MARCH, filters=Filters()))
    assert sorted(rows) == ["a", "b", "c"]  # the manager and the admin are not reps

    a = rows["a"]
    assert (a.rep_id, a.display_name, a.team, a.region) == (w.a.id, "A", "north", "east")
    assert a.revenue == Decimal("1000") + Decimal("250.50") + Decimal("300") + Decimal("200")
    assert (a.orders, a.new_customers, a.visits, a.calls) == (4, 1, 2, 1)
    assert (a.won, a.lost) == (3, 1)
    assert (a.csat_sum, a.csat_count) == (5 + 4, 2)
    assert (a.complaints_resolved, a.complaints_on_time) == (3, 2)
    assert a.win_rate == pytest.approx(3 / 4)
    assert a.csat_mean == pytest.approx(9 / 2)
    assert a.complaint_on_time_rate == pytest.approx(2 / 3)

    b = rows["b"]
    assert b.revenue == Decimal("0.00")
    assert (b.orders, b.new_customers, b.visits, b.calls) == (0, 1, 1, 2)
    assert (b.won, b.lost, b.csat_sum, b.csat_count) == (0, 1, 3, 1)
    assert (b.complaints_resolved, b.complaints_on_time) == (0, 0)
    assert b.win_rate == 0.0  # 0 / (0 + 1): a real zero, not n/a
    assert b.csat_mean == pytest.approx(3.0)
    assert b.complaint_on_time_rate is None

    c = rows["c"]
    assert c.revenue == Decimal("700") + Decimal("400")
    assert (c.orders, c.new_customers, c.visits, c.calls) == (2, 2, 4, 0)
    assert (c.won, c.lost, c.csat_sum, c.csat_count) == (0, 0, 0, 0)
    assert (c.complaints_resolved, c.complaints_on_time) == (1, 1)
    assert c.win_rate is None
    assert c.csat_mean is None
    assert c.complaint_on_time_rate == pytest.approx(1.0)


def test_revenue_is_an_exact_decimal_on_both_engines(session: Session) -> None:
    w = build_world(session)
    rows = by_username(rep_figures(session, actor=actor(w.admin), period=MARCH, filters=Filters()))
    assert isinstance(rows["a"].revenue, Decimal)
    assert str(rows["a"].revenue) == "1750.50"


@pytest.mark.parametrize(
    ("who", "filters", "expected"),
    [
        ("admin", Filters(), ["a", "b", "c"]),
        ("manager_north", Filters(), ["a", "b"]),
        ("a", Filters(), ["a"]),
        ("admin", Filters(team="south"), ["c"]),
        ("admin", Filters(region="east"), ["a", "b"]),
        ("manager_north", Filters(team="south"), []),  # a manager cannot widen to another team
    ],
)
def test_scope_follows_the_actor_and_the_filters(
    session: Session, who: str, filters: Filters, expected: list[str]
) -> None:
    w = build_world(session)
    rows = rep_figures(session, actor=actor(getattr(w, who)), period=MARCH, filters=filters)
    assert sorted(row.username for row in rows) == expected


def test_filter_by_rep_id(session: Session) -> None:
    w = build_world(session)
    rows = rep_figures(session, actor=actor(w.admin), period=MARCH, filters=Filters(rep_id=w.b.id))
    assert [row.username for row in rows] == ["b"]


def test_tier_filter_narrows_by_customer_tier(session: Session) -> None:
    w = build_world(session)
    rows = by_username(rep_figures(session, actor=actor(w.admin), period=MARCH, filters=Filters(tier="key")))
    # Key customers: c2 (a) and c6 (c); c5 is key but deleted. The deal without customer drops out.
    a = rows["a"]
    assert (a.revenue, a.orders, a.new_customers, a.visits, a.calls) == (Decimal("300.00"), 1, 1, 0, 0)
    assert (a.won, a.lost, a.csat_sum, a.csat_count, a.complaints_resolved) == (0, 1, 4, 1, 0)
    c = rows["c"]
    assert (c.revenue, c.orders, c.new_customers, c.visits) == (Decimal("400.00"), 1, 1, 1)
    b = rows["b"]
    assert not b.has_data


def test_inactive_reps_appear_only_with_data(session: Session) -> None:
    w = build_world(session)
    customer = make_customer(session, "C7", owner=w.c)
    idle = make_user(session, "idle", team="south", active=False)
    gone = make_user(session, "gone", team="south", active=False)
    make_interaction(session, customer, gone, datetime(2026, 3, 3, 10, 0), kind="call")
    make_interaction(session, customer, idle, datetime(2026, 2, 3, 10, 0), kind="call")  # before March
    rows = by_username(rep_figures(session, actor=actor(w.admin), period=MARCH, filters=Filters()))
    assert "idle" not in rows
    assert rows["gone"].calls == 1


def test_no_reps_in_scope_gives_no_rows(session: Session) -> None:
    lonely = make_user(session, "lonely", role=Role.MANAGER, team=None)
    assert rep_figures(session, actor=actor(lonely), period=MARCH, filters=Filters()) == []
