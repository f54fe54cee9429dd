"""Loyalty KPIs on 7 orders over 4 customers across two quarters; the arithmetic is in the comments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from crm import kpi
from crm.access import Filters
from crm.models import Customer, Role
from crm.periods import Period
from tests.factories import (
    Org,
    actor,
    make_customer,
    make_interaction,
    make_order,
    make_org,
    soft_delete,
)

Q1 = Period.quarter(2026, 1)
Q2 = Period.quarter(2026, 2)


@dataclass(frozen=True)
class World:
    org: Org
    c1: Customer  # owner A, key
    c2: Customer  # owner A, customer
    c3: Customer  # owner B, customer
    c4: Customer  # owner B, strategic
    pool: Customer  # no owner, lead


def build(session: Session) -> World:
    """Seven live orders (customer, rep, date, amount):

    Q1 2026: c1 A Jan 10 100 | c2 A Feb 05 200 | c3 B Mar 01 50
    Q2 2026: c1 A Apr 02 300 | c1 A May 03 100 | c2 B Jun 30 400 (B sells to A's customer) | c4 B May 20 250
    Not counted: an order of a deleted customer and a deleted order on c3 in Q2.
    """
    org = make_org(session)
    created = datetime(2025, 6, 1)
    c1 = make_customer(session, "One", owner=org.rep_a, tier="key", created_at=created)
    c2 = make_customer(session, "Two", owner=org.rep_a, tier="customer", created_at=created)
    c3 = make_customer(session, "Three", owner=org.rep_b, tier="customer", created_at=created)
    c4 = make_customer(session, "Four", owner=org.rep_b, tier="strategic", created_at=created)
    pool = make_customer(session, "Pool", owner=None, tier="lead", created_at=created)
    gone = make_customer(session, "Gone", owner=org.rep_a, tier="key", created_at=created)
    a, b = org.rep_a, org.rep_b
    make_order(session, c1, a, date(2026, 1, 10), 100)
    make_order(session, c2, a, date(2026, 2, 5), 200)
    make_order(session, c3, b, date(2026, 3, 1), 50)
    make_order(session, c1, a, date(2026, 4, 2), 300)
    make_order(session, c1, a, date(2026, 5, 3), 100)
    make_order(session, c2, b, date(2026, 6, 30), 400)
    make_order(session, c4, b, date(2026, 5, 20), 250)
    make_order(session, gone, a, date(2026, 4, 10), 9999)
    soft_delete(session, gone)
    soft_delete(session, make_order(session, c3, b, date(2026, 4, 11), 777))
    return World(org=org, c1=c1, c2=c2, c3=c3, c4=c4, pool=pool)


@pytest.mark.parametrize(
    ("user", "filters", "expected"),
    [
        # Q2 active {c1, c2, c4}; repeat {c1}; Q1 active {c1, c2, c3}; retained {c1, c2}
        (
            "admin",
            {},
            dict(
                active_customers=3,
                repeat_customers=1,
                repeat_purchase_rate=1 / 3,
                previously_active=3,
                retained=2,
                retention_rate=2 / 3,
                churn_rate=1 - 2 / 3,
                revenue=300 + 100 + 400 + 250,
                orders=4,
            ),
        ),
        # rep A's orders: Q2 c1 ×2; Q1 c1, c2 → retained {c1}
        (
            "rep_a",
            {},
            dict(
                active_customers=1,
                repeat_purchase_rate=1.0,
                retention_rate=1 / 2,
                churn_rate=1 / 2,
                revenue=400,
                orders=2,
            ),
        ),
        # rep B's orders: Q2 c2, c4; Q1 c3 → nobody retained
        (
            "rep_b",
            {},
            dict(active_customers=2, repeat_purchase_rate=0.0, retention_rate=0.0, churn_rate=1.0, revenue=650),
        ),
        # the north manager sees A and B: the whole company here
        ("north_manager", {}, dict(active_customers=3, retention_rate=2 / 3, revenue=1050, orders=4)),
        # team south has no orders: every rate is n/a, not 0
        (
            "south_manager",
            {},
            dict(
                active_customers=0,
                repeat_purchase_rate=None,
                retention_rate=None,
                churn_rate=None,
                revenue=0.0,
                orders=0,
            ),
        ),
        # tier key: c1 only; Q1 c1, Q2 c1 ×2
        (
            "admin",
            {"tier": "key"},
            dict(active_customers=1, repeat_purchase_rate=1.0, retention_rate=1.0, churn_rate=0.0, revenue=400),
        ),
        # region west = rep B
        ("admin", {"region": "west"}, dict(active_customers=2, retention_rate=0.0, revenue=650)),
    ],
)
def test_loyalty_summary(session: Session, user: str, filters: dict[str, str], expected: dict[str, object]) -> None:
    world = build(session)
    figures = kpi.loyalty_summary(session, actor=actor(getattr(world.org, user)), period=Q2, filters=Filters(**filters))
    for name, value in expected.items():
        assert getattr(figures, name) == pytest.approx(value), name


def test_previous_period_values(session: Session) -> None:
    world = build(session)
    compared = kpi.loyalty_compared(session, actor=actor(world.org.admin), period=Q2)
    assert compared.current.retention_rate == pytest.approx(2 / 3)
    # Q1: active {c1, c2, c3}, no repeat; nobody was active in Q4 2025 → retention n/a
    previous = compared.previous
    assert (previous.active_customers, previous.repeat_purchase_rate, previous.orders) == (3, 0.0, 3)
    assert previous.revenue == 100 + 200 + 50
    assert previous.retention_rate is None
    assert previous.churn_rate is None
    assert kpi.loyalty_summary(session, actor=actor(world.org.admin), period=Q1) == previous


def test_customer_value_and_pareto(session: Session) -> None:
    world = build(session)
    value = kpi.customer_value(session, actor=actor(world.org.admin), period=Q2)
    # lifetime to Jul 1: c1 100+300+100 = 500, c2 200+400 = 600, c3 50, c4 250; total 1400
    assert value.customers == 4
    assert value.lifetime_revenue == 1400.0
    # active in Q2: c1, c2, c4 → (500 + 600 + 250) / 3
    assert value.active_customers == 3
    assert value.clv == 450.0
    # top 20% of 4 customers = ceil(0.8) = 1 customer: c2 with 600 of 1400
    assert value.top_customers == 1
    assert value.top_share == pytest.approx(600 / 1400)
    assert value.curve["customer_share"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert value.curve["revenue_share"].tolist() == pytest.approx([0.0, 600 / 1400, 1100 / 1400, 1350 / 1400, 1.0])


def test_customer_value_counts_orders_up_to_period_end_only(session: Session) -> None:
    world = build(session)
    value = kpi.customer_value(session, actor=actor(world.org.admin), period=Q1)
    # to Apr 1: c1 100, c2 200, c3 50 — all active in Q1
    assert (value.customers, value.active_customers) == (3, 3)
    assert value.clv == pytest.approx(350 / 3, abs=0.005)
    assert value.top_share == pytest.approx(200 / 350)


def test_customer_value_without_orders_is_not_applicable(session: Session) -> None:
    org = make_org(session)
    value = kpi.customer_value(session, actor=actor(org.rep_c), period=Q2)
    assert (value.clv, value.top_share, value.customers) == (None, None, 0)
    assert value.curve.empty


def test_pareto_curve_is_downsampled_to_at_most_101_points(session: Session) -> None:
    org = make_org(session)
    n = 250
    for amount in range(1, n + 1):
        customer = make_customer(session, f"Customer {amount}", owner=org.rep_a)
        make_order(session, customer, org.rep_a, date(2026, 4, 1), amount)
    value = kpi.customer_value(session, actor=actor(org.admin), period=Q2)
    curve = value.curve
    assert len(curve) == 101  # the origin + one point per whole percent of customers
    assert curve.iloc[0].tolist() == [0.0, 0.0]
    assert curve.iloc[-1].tolist() == [1.0, pytest.approx(1.0)]
    assert curve["revenue_share"].is_monotonic_increasing
    # top 20% = the 50 largest: 201..250 → (201 + 250) × 50 / 2 of 1..250 → 250 × 251 / 2
    assert value.top_customers == 50
    assert value.top_share == pytest.approx(((201 + 250) * 50 / 2) / (n * (n + 1) / 2))
    # at 10% of customers (the 25 largest: 226..250)
    tenth = curve[curve["customer_share"] == 0.1]["revenue_share"].item()
    assert tenth == pytest.approx(((226 + 250) * 25 / 2) / (n * (n + 1) / 2))


def test_retention_trend_by_month(session: Session) -> None:
    world = build(session)
    trend = kpi.retention_trend(session, actor=actor(world.org.admin), period=Q2)
    # months with orders: Mar {c3}, Apr {c1}, May {c1, c4}, Jun {c2}
    assert list(trend["month"]) == [date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)]
    assert list(trend["active"]) == [1, 2, 1]
    assert list(trend["previously_active"]) == [1, 1, 2]
    assert list(trend["retained"]) == [0, 1, 0]  # Apr keeps none of {c3}; May keeps c1; Jun none
    assert list(trend["retention_rate"]) == [0.0, 1.0, 0.0]
    assert list(trend["churn_rate"]) == [1.0, 0.0, 1.0]


def test_retention_trend_without_previous_activity_is_not_applicable(session: Session) -> None:
    world = build(session)
    trend = kpi.retention_trend(session, actor=actor(world.org.admin), period=Q1)
    # Dec has no orders → Jan n/a; Jan {c1} → Feb {c2}: 0; Feb {c2} → Mar {c3}: 0
    assert pd.isna(trend["retention_rate"].iloc[0])
    assert trend["retention_rate"].tolist()[1:] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("user", "filters", "expected"),
    [
        # live customers: pool (lead), c2 + c3 (customer), c1 (key), c4 (strategic); Gone is deleted
        ("admin", {}, [1, 0, 2, 1, 1]),
        ("north_manager", {}, [1, 0, 2, 1, 1]),  # team's customers + the unassigned pool
        ("south_manager", {}, [1, 0, 0, 0, 0]),  # only the pool
        ("rep_a", {}, [0, 0, 1, 1, 0]),  # c1, c2
        ("north_manager", {"rep": "rep_b"}, [0, 0, 1, 0, 1]),  # a rep filter leaves out the pool
        ("admin", {"tier": "customer"}, [0, 0, 2, 0, 0]),
    ],
)
def test_pyramid(session: Session, user: str, filters: dict[str, str], expected: list[int]) -> None:
    world = build(session)
    chosen = Filters(rep_id=getattr(world.org, filters["rep"]).id) if "rep" in filters else Filters(**filters)
    frame = kpi.pyramid(session, actor=actor(getattr(world.org, user)), filters=chosen)
    assert list(frame["tier"]) == ["lead", "prospect", "customer", "key", "strategic"]
    assert list(frame["customers"]) == expected


def test_at_risk_customers(session: Session) -> None:
    world = build(session)
    org = world.org
    # c1's newest activity is a visit on May 10 (newer than its May 3 order)
    make_interaction(session, world.c1, org.rep_a, datetime(2026, 5, 10, 15, 0))
    lost = make_customer(session, "Lost", owner=org.rep_a, created_at=datetime(2025, 6, 1))
    lost.status = "lost"
    make_customer(session, "Newcomer", owner=org.rep_a, created_at=datetime(2026, 6, 1))
    session.flush()
    as_of = date(2026, 7, 15)  # cutoff Jul 15 − 60 days = May 16
    frame = kpi.at_risk_customers(session, actor=actor(org.admin), as_of=as_of)
    # not at risk: c2 (order Jun 30), c4 (order May 20); Lost (status), Newcomer (created after the cutoff)
    assert list(frame["customer_name"]) == ["Pool", "Three", "One"]  # never active first, then oldest
    assert frame["last_activity"].tolist()[1:] == [date(2026, 3, 1), date(2026, 5, 10)]
    assert pd.isna(frame["last_activity"].iloc[0])
    assert frame["days_since_activity"].tolist()[1:] == [136, 66]  # Mar 1 → Jul 15, May 10 → Jul 15
    assert list(frame["owner_name"])[1:] == [org.rep_b.display_name, org.rep_a.display_name]
    limited = kpi.at_risk_customers(session, actor=actor(org.admin), as_of=as_of, limit=2)
    assert list(limited["customer_name"]) == ["Pool", "Three"]
    mine = kpi.at_risk_customers(session, actor=actor(org.rep_a), as_of=as_of)
    assert list(mine["customer_name"]) == ["One"]


@pytest.mark.parametrize(
    ("order_day", "at_risk"),
    [
        (date(2026, 5, 16), False),  # exactly 60 days before as_of: still recent
        (date(2026, 5, 15), True),  # 61 days
        (date(2026, 7, 16), True),  # after as_of: not known yet
    ],
)
def test_at_risk_window_boundary(session: Session, order_day: date, at_risk: bool) -> None:
    org = make_org(session)
    customer = make_customer(session, "Edge", owner=org.rep_a, created_at=datetime(2025, 1, 1))
    make_order(session, customer, org.rep_a, order_day, 10)
    frame = kpi.at_risk_customers(session, actor=actor(org.admin), as_of=date(2026, 7, 15))
    assert (list(frame["customer_name"]) == ["Edge"]) is at_risk


def test_repeat_trend_by_month_is_worked_out_per_month(session) -> None:
    from crm.kpi import repeat_trend
    from tests.factories import actor, make_customer, make_order, make_user

    admin = make_user(session, "trend.admin", role=Role.ADMIN)
    rep = make_user(session, "trend.rep", team="north")
    alpha = make_customer(session, "Trend Alpha", owner=rep)
    beta = make_customer(session, "Trend Beta", owner=rep)
    # February: Alpha orders twice, Beta once → 1 repeat of 2 active. March: only Beta, once → 0 of 1.
    make_order(session, alpha, rep, date(2026, 2, 3), 100)
    make_order(session, alpha, rep, date(2026, 2, 20), 100)
    make_order(session, beta, rep, date(2026, 2, 5), 100)
    make_order(session, beta, rep, date(2026, 3, 9), 100)
    frame = repeat_trend(session, actor=actor(admin), period=Period(date(2026, 2, 1), date(2026, 4, 1)))
    assert list(frame["month"]) == [date(2026, 2, 1), date(2026, 3, 1)]
    assert list(frame["active"]) == [2, 1]
    assert list(frame["repeat_purchase_rate"]) == [pytest.approx(1 / 2), pytest.approx(0 / 1)]
