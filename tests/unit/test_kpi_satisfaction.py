"""Satisfaction KPIs on hand-built survey responses; every expected figure is worked out below."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from crm import kpi
from crm.access import Actor, Filters
from crm.models import Customer
from crm.periods import Period
from tests.factories import Org, actor, make_customer, make_org, make_survey, soft_delete

Q1 = Period.quarter(2026, 1)


@dataclass(frozen=True)
class World:
    org: Org
    ca: Customer  # owner A, tier key
    cb: Customer  # owner B, tier customer
    cc: Customer  # owner C, tier customer


def build(session: Session) -> World:
    """Five live responses in Q1 2026, two in Q4 2025, and some that must not count.

    Q1 (rep on the response, overall, recommend, quality / service / price / after_sales):
      r1 ca A Jan 10: 5, 10, q5 s4 p- a3
      r2 ca A Jan 20: 4,  9, q4 s- p2 a-
      r3 cb B Feb 05: 2,  3, q2 s2 p1 a-
      r4 cb A Mar 01: 3,  7  (A served B's customer)
      r5 cc C Mar 15: 1,  -
    Q4 2025: ca A Nov 10: 3, 6;  cb B Dec 01: 5, 10.
    """
    org = make_org(session)
    ca = make_customer(session, "Alpha", owner=org.rep_a, tier="key")
    cb = make_customer(session, "Beta", owner=org.rep_b, tier="customer")
    cc = make_customer(session, "Gamma", owner=org.rep_c, tier="customer")
    gone = make_customer(session, "Gone", owner=org.rep_a, tier="key")
    make_survey(session, ca, org.rep_a, date(2026, 1, 10), 5, recommend=10, quality=5, service=4, after_sales=3)
    make_survey(session, ca, org.rep_a, date(2026, 1, 20), 4, recommend=9, quality=4, price=2)
    make_survey(session, cb, org.rep_b, date(2026, 2, 5), 2, recommend=3, quality=2, service=2, price=1)
    make_survey(session, cb, org.rep_a, date(2026, 3, 1), 3, recommend=7)
    make_survey(session, cc, org.rep_c, date(2026, 3, 15), 1)
    make_survey(session, ca, org.rep_a, date(2025, 11, 10), 3, recommend=6)
    make_survey(session, cb, org.rep_b, date(2025, 12, 1), 5, recommend=10)
    # Not counted: a response of a deleted customer, a deleted response, one after the quarter.
    make_survey(session, gone, org.rep_a, date(2026, 2, 1), 1, recommend=0)
    soft_delete(session, gone)
    soft_delete(session, make_survey(session, ca, org.rep_a, date(2026, 2, 2), 1, recommend=0))
    make_survey(session, ca, org.rep_a, date(2026, 4, 1), 1, recommend=0)
    return World(org=org, ca=ca, cb=cb, cc=cc)


def who(world: World, name: str) -> Actor:
    return actor(getattr(world.org, name))


@pytest.mark.parametrize(
    ("user", "filters", "expected"),
    [
        # admin: r1..r5 → overall (5+4+2+3+1)/5, satisfied {5,4} of 5, NPS over {10,9,3,7}: (2−1)/4
        (
            "admin",
            Filters(),
            dict(responses=5, csat_score=3.0, csat_pct=2 / 5, nps=25.0, recommend_responses=4),
        ),
        # north manager: r1..r4 (A and B) → 14/4, 2/4, NPS (2−1)/4
        (
            "north_manager",
            Filters(),
            dict(responses=4, csat_score=3.5, csat_pct=2 / 4, nps=25.0, recommend_responses=4),
        ),
        # rep A: r1, r2, r4 → 12/3, 2/3, NPS (2 promoters − 0) / 3
        (
            "rep_a",
            Filters(),
            dict(responses=3, csat_score=4.0, csat_pct=2 / 3, nps=100 * 2 / 3, recommend_responses=3),
        ),
        # rep C: r5 has no recommend score → NPS n/a
        ("rep_c", Filters(), dict(responses=1, csat_score=1.0, csat_pct=0.0, nps=None, recommend_responses=0)),
        # tier key: r1, r2 (customer Alpha) → 9/2, both satisfied, both promoters
        (
            "admin",
            Filters(tier="key"),
            dict(responses=2, csat_score=4.5, csat_pct=1.0, nps=100.0, recommend_responses=2),
        ),
        # manager narrowed to rep B: r3 only → detractor
        (
            "north_manager",
            "rep_b",
            dict(responses=1, csat_score=2.0, csat_pct=0.0, nps=-100.0, recommend_responses=1),
        ),
        # a manager cannot look into another team: nothing, and every rate n/a
        (
            "north_manager",
            Filters(team="south"),
            dict(responses=0, csat_score=None, csat_pct=None, nps=None, recommend_responses=0),
        ),
    ],
)
def test_satisfaction_summary(session: Session, user: str, filters: Filters | str, expected: dict[str, object]) -> None:
    world = build(session)
    if isinstance(filters, str):  # a rep filter, by the rep's name in the org
        filters = Filters(rep_id=getattr(world.org, filters).id)
    figures = kpi.satisfaction_summary(session, actor=who(world, user), period=Q1, filters=filters)
    for name, value in expected.items():
        assert getattr(figures, name) == pytest.approx(value), name


def test_dimension_means_ignore_missing_scores_and_round_to_two_decimals(session: Session) -> None:
    world = build(session)
    figures = kpi.satisfaction_summary(session, actor=who(world, "admin"), period=Q1)
    assert figures.quality == 3.67  # (5 + 4 + 2) / 3 = 3.666…
    assert figures.service == 3.0  # (4 + 2) / 2
    assert figures.price == 1.5  # (2 + 1) / 2
    assert figures.after_sales == 3.0  # 3 / 1
    assert (figures.promoters, figures.detractors) == (2, 1)


def test_csat_score_rounds_to_two_decimals(session: Session) -> None:
    org = make_org(session)
    customer = make_customer(session, "Alpha", owner=org.rep_a)
    for overall in (5, 4, 4):
        make_survey(session, customer, org.rep_a, date(2026, 1, 5), overall)
    figures = kpi.satisfaction_summary(session, actor=actor(org.admin), period=Q1)
    assert figures.csat_score == 4.33  # 13 / 3 = 4.333…


def test_no_responses_is_not_applicable(session: Session) -> None:
    org = make_org(session)
    figures = kpi.satisfaction_summary(session, actor=actor(org.admin), period=Q1)
    assert figures.responses == 0
    assert (figures.csat_score, figures.csat_pct, figures.nps, figures.quality) == (None, None, None, None)


def test_previous_period(session: Session) -> None:
    world = build(session)
    compared = kpi.satisfaction_compared(session, actor=who(world, "admin"), period=Q1)
    assert compared.current.csat_score == 3.0
    # Q4 2025: overall 3 and 5 → 4.0; one satisfied of two; recommend 6 (detractor) and 10 (promoter) → 0
    assert compared.previous.responses == 2
    assert compared.previous.csat_score == 4.0
    assert compared.previous.csat_pct == pytest.approx(1 / 2)
    assert compared.previous.nps == pytest.approx(0.0)


def test_trend_by_month(session: Session) -> None:
    world = build(session)
    trend = kpi.csat_trend(session, actor=who(world, "admin"), period=Q1)
    assert list(trend["month"]) == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert list(trend["responses"]) == [2, 1, 2]
    # Jan r1, r2: 9/2; Feb r3: 2; Mar r4, r5: (3+1)/2
    assert list(trend["csat"]) == [4.5, 2.0, 2.0]
    assert list(trend["csat_pct"]) == [1.0, 0.0, 0.0]
    # Jan two promoters; Feb one detractor; Mar one passive (7) → 0
    assert list(trend["nps"]) == [100.0, -100.0, 0.0]
    assert trend["quality"].tolist()[:2] == [4.5, 2.0]
    assert pd.isna(trend["quality"].tolist()[2])
    assert trend["service"].tolist()[:2] == [4.0, 2.0]
    assert trend["price"].tolist()[:2] == [2.0, 1.0]
    assert trend["after_sales"].tolist()[0] == 3.0
    assert pd.isna(trend["after_sales"].tolist()[1])
    nps = kpi.nps_trend(trend)
    assert list(nps.columns) == ["month", "recommend_responses", "promoters", "detractors", "nps"]
    assert list(nps["recommend_responses"]) == [2, 1, 1]


def test_trend_has_a_row_for_months_without_responses(session: Session) -> None:
    world = build(session)
    trend = kpi.csat_trend(session, actor=who(world, "rep_c"), period=Q1)
    assert list(trend["responses"]) == [0, 0, 1]
    assert trend["csat"].isna().tolist() == [True, True, False]


def test_by_rep(session: Session) -> None:
    world = build(session)
    by_rep = kpi.satisfaction_by_rep(session, actor=who(world, "admin"), period=Q1)
    org = world.org
    # A: r1, r2, r4 → 12/3; B: r3 → 2; C: r5 → 1 (best first)
    assert list(by_rep["rep_id"]) == [org.rep_a.id, org.rep_b.id, org.rep_c.id]
    assert list(by_rep["responses"]) == [3, 1, 1]
    assert list(by_rep["csat"]) == [4.0, 2.0, 1.0]
    assert by_rep["nps"].tolist()[:2] == [pytest.approx(200 / 3), -100.0]
    assert pd.isna(by_rep["nps"].tolist()[2])
    team = kpi.satisfaction_by_rep(session, actor=who(world, "north_manager"), period=Q1)
    assert set(team["rep_id"]) == {org.rep_a.id, org.rep_b.id}


def test_by_tier(session: Session) -> None:
    world = build(session)
    by_tier = kpi.satisfaction_by_tier(session, actor=who(world, "admin"), period=Q1).set_index("tier")
    assert list(by_tier.index) == ["lead", "prospect", "customer", "key", "strategic"]
    assert by_tier.loc["key", "responses"] == 2  # r1, r2 on Alpha
    assert by_tier.loc["key", "csat"] == 4.5
    assert by_tier.loc["customer", "responses"] == 3  # r3, r4 on Beta, r5 on Gamma
    assert by_tier.loc["customer", "csat"] == 2.0  # (2 + 3 + 1) / 3
    assert by_tier.loc["lead", "responses"] == 0
    assert pd.isna(by_tier.loc["lead", "csat"])


def test_lowest_scoring_customers(session: Session) -> None:
    world = build(session)
    lowest = kpi.lowest_scoring_customers(session, actor=who(world, "admin"), period=Q1, limit=2)
    # Gamma 1 (r5), Beta (2 + 3) / 2, Alpha (5 + 4) / 2 — only the two lowest
    assert list(lowest["customer_name"]) == ["Gamma", "Beta"]
    assert list(lowest["csat"]) == [1.0, 2.5]
    assert list(lowest["responses"]) == [1, 2]
    assert list(lowest["customer_code"]) == [world.cc.code, world.cb.code]
    assert list(lowest["last_responded_on"]) == [date(2026, 3, 15), date(2026, 3, 1)]
    # rep A sees the responses A gave: Beta r4 (3) and Alpha r1, r2 (4.5)
    mine = kpi.lowest_scoring_customers(session, actor=who(world, "rep_a"), period=Q1)
    assert list(mine["customer_name"]) == ["Beta", "Alpha"]
    assert list(mine["csat"]) == [3.0, 4.5]


def test_a_period_that_is_not_a_calendar_unit(session: Session) -> None:
    """Jan 15 – Feb 5 inclusive (22 days) against the 22 days before it (Dec 24 – Jan 14)."""
    world = build(session)
    period = Period(date(2026, 1, 15), date(2026, 2, 6))
    compared = kpi.satisfaction_compared(session, actor=who(world, "admin"), period=period)
    assert (compared.current.responses, compared.current.csat_score) == (2, 3.0)  # r2 4 (Jan 20), r3 2 (Feb 5)
    assert (compared.previous.responses, compared.previous.csat_score) == (1, 5.0)  # r1 5 (Jan 10)
    trend = kpi.csat_trend(session, actor=who(world, "admin"), period=period)
    assert list(trend["month"]) == [date(2026, 1, 1), date(2026, 2, 1)]
    assert list(trend["responses"]) == [1, 1]
    assert list(trend["csat"]) == [4.0, 2.0]
