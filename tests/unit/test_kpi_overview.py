"""The overview: every headline KPI against the previous period, the chart frames, few round-trips."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from crm import kpi
from crm.access import Filters
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
)

Q1 = Period.quarter(2026, 1)
NOW = datetime(2026, 2, 15, 12)  # the middle of the current quarter
MAX_ROUND_TRIPS = 8


def build(session: Session) -> Org:
    """Rep A's records, Q3 2025 → Q1 2026.

    orders:     Q3 c1 10 | Q4 c1 20, c2 30, c2 40 | Q1 c1 50, c3 60
    responses:  Q4 c1 5 (recommend 9) | Q1 c1 4 (10) Jan, c3 2 (5) Feb
    deals:      Q4 won c2 (created Nov 1) | Q1 won c1, lost c1 ×2, lost without customer (created Jan 1)
    customers:  c1 old | c2 created Nov 1 2025 | c3 created Feb 1 2026 | c4 created Mar 1 2026, nothing
    complaints: Q1 one on time, one late (January); one open, due Feb 2 → overdue at NOW
    visits:     Q4 ×1 | Q1 ×3
    """
    org = make_org(session)
    a = org.rep_a
    c1 = make_customer(session, "One", owner=a, created_at=datetime(2025, 1, 1))
    c2 = make_customer(session, "Two", owner=a, created_at=datetime(2025, 11, 1))
    c3 = make_customer(session, "Three", owner=a, created_at=datetime(2026, 2, 1))
    make_customer(session, "Four", owner=a, created_at=datetime(2026, 3, 1))
    for customer, day, amount in (
        (c1, date(2025, 8, 1), 10),
        (c1, date(2025, 10, 5), 20),
        (c2, date(2025, 11, 5), 30),
        (c2, date(2025, 12, 5), 40),
        (c1, date(2026, 1, 5), 50),
        (c3, date(2026, 2, 5), 60),
    ):
        make_order(session, customer, a, day, amount)
    make_survey(session, c1, a, date(2025, 12, 1), 5, recommend=9)
    make_survey(session, c1, a, date(2026, 1, 10), 4, recommend=10)
    make_survey(session, c3, a, date(2026, 2, 10), 2, recommend=5)
    make_opportunity(session, c2, a, "won", created_on=date(2025, 11, 1), closed_on=date(2025, 11, 20))
    make_opportunity(session, c1, a, "won", closed_on=date(2026, 1, 20))
    make_opportunity(session, c1, a, "lost", closed_on=date(2026, 1, 21))
    make_opportunity(session, c1, a, "lost", closed_on=date(2026, 1, 22))
    make_opportunity(session, None, a, "lost", closed_on=date(2026, 1, 23))
    make_complaint(session, c1, a, datetime(2026, 1, 5), sla_hours=24, resolved_after_hours=10)
    make_complaint(session, c1, a, datetime(2026, 1, 6), sla_hours=24, resolved_after_hours=30)
    make_complaint(session, c1, a, datetime(2026, 2, 1), sla_hours=24)
    make_interaction(session, c1, a, datetime(2025, 12, 1, 10))
    for when in (datetime(2026, 1, 5, 10), datetime(2026, 1, 6, 10), datetime(2026, 2, 5, 10)):
        make_interaction(session, c1, a, when)
    return org


# key: (this quarter, previous quarter)
EXPECTED = {
    "csat_score": (3.0, 5.0),  # (4 + 2) / 2 | 5
    "csat_pct": (0.5, 1.0),
    "nps": (0.0, 100.0),  # one promoter, one detractor | one promoter
    "win_rate": (0.25, 1.0),  # 1 of 4 | 1 of 1
    "lead_conversion_rate": (0.5, 1.0),  # c3 of {c3, c4} | c2 of {c2}
    "retention_rate": (0.5, 1.0),  # Q4 {c1, c2} → Q1 keeps c1 | Q3 {c1} → Q4 keeps c1
    "churn_rate": (0.5, 0.0),
    "repeat_purchase_rate": (0.0, 0.5),  # nobody twice | c2 twice of {c1, c2}
    "revenue": (110.0, 90.0),
    "orders": (2, 3),
    "active_customers": (2, 2),
    "complaint_on_time_rate": (0.5, None),
    "visits": (3, 1),
    "won": (1, 1),
    "lost": (3, 0),
}


def test_headline_against_previous_period(session: Session) -> None:
    org = build(session)
    overview = kpi.overview(session, actor=actor(org.admin), period=Q1, as_of=NOW)
    assert overview.previous_period == Period.quarter(2025, 4)
    assert [m.key for m in overview.headline] == list(kpi.HEADLINE_KEYS)
    assert set(EXPECTED) == set(kpi.HEADLINE_KEYS)
    for key, (value, previous) in EXPECTED.items():
        metric = overview.metric(key)
        assert metric.value == pytest.approx(value), key
        assert metric.previous == pytest.approx(previous), key
        if previous is None:
            assert metric.delta is None, key
        else:
            assert metric.delta == pytest.approx(value - previous), key
    assert overview.metric("win_rate").is_rate
    assert not overview.metric("revenue").is_rate
    # open at NOW: the Feb 1 complaint, due Feb 2; at Jan 1 nothing was open
    assert (overview.overdue_complaints.value, overview.overdue_complaints.previous) == (1, 0)


def test_overview_agrees_with_the_summary(session: Session) -> None:
    org = build(session)
    overview = kpi.overview(session, actor=actor(org.admin), period=Q1, as_of=NOW)
    now = kpi.kpi_summary(session, actor=actor(org.admin), period=Q1, as_of=NOW).as_dict()
    before = kpi.kpi_summary(session, actor=actor(org.admin), period=Q1.previous(), as_of=NOW).as_dict()
    for metric in overview.headline:
        assert metric.value == now[metric.key], metric.key
        assert metric.previous == before[metric.key], metric.key


def test_chart_frames(session: Session) -> None:
    org = build(session)
    overview = kpi.overview(session, actor=actor(org.admin), period=Q1, as_of=NOW)
    csat = overview.csat_by_month
    assert list(csat["month"]) == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert csat["csat"].tolist()[:2] == [4.0, 2.0]
    assert pd.isna(csat["csat"].iloc[2])
    assert {"quality", "service", "price", "after_sales"} <= set(csat.columns)
    assert overview.nps_by_month["nps"].tolist()[:2] == [100.0, -100.0]
    # Q1 cohort: won c1, lost c1 ×2, lost without customer — all reached prospecting, one engaged and won
    assert list(overview.funnel["opportunities"]) == [4, 1, 1]
    # Dec {c2} → Jan {c1} → Feb {c3} → Mar {}: nobody kept month to month
    retention = overview.retention_by_month
    assert list(retention["active"]) == [1, 1, 0]
    assert list(retention["previously_active"]) == [1, 1, 1]
    assert list(retention["retention_rate"]) == [0.0, 0.0, 0.0]


def test_overview_with_filters_outside_scope_is_all_not_applicable(session: Session) -> None:
    org = build(session)
    overview = kpi.overview(session, actor=actor(org.rep_a), period=Q1, as_of=NOW, filters=Filters(rep_id=org.rep_b.id))
    for metric in overview.headline:
        assert metric.value in (None, 0, 0.0), metric.key
    assert list(overview.funnel["opportunities"]) == [0, 0, 0]


def test_overview_round_trips_are_bounded(session: Session, engine: Engine) -> None:
    org = build(session)
    session.commit()
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        kpi.overview(session, actor=actor(org.north_manager), period=Q1, as_of=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert 0 < len(statements) <= MAX_ROUND_TRIPS, statements
