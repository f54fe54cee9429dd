"""Loyalty KPIs from orders (SPEC §5): activity, repeat purchase, retention, value, pyramid.

Orders count for the rep on the order; a customer is active in a window when it has at least
one order (by a rep in scope) dated in it. Money is returned as float rounded to cents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from crm.access import Actor, Filters
from crm.kpi.common import (
    DEFAULT_LIMIT,
    Column,
    Compared,
    as_date,
    as_filters,
    as_float,
    as_int,
    as_money,
    bucket,
    complement,
    count_if,
    customer_scope,
    order_scope,
    rate,
    within,
    within_any,
)
from crm.models import Customer, CustomerStatus, Interaction, Order, Tier, User
from crm.periods import Period, add_months

REPEAT_MIN_ORDERS = 2
PARETO_TOP_PERCENT = 20  # "share of revenue from the top 20% of customers"
PERCENT = 100
AT_RISK_DAYS = 60


@dataclass(frozen=True)
class Loyalty:
    """Order-based loyalty of one scope and period; rates are fractions, None when n/a."""

    active_customers: int
    repeat_customers: int
    repeat_purchase_rate: float | None
    previously_active: int  # customers active in the previous period
    retained: int  # ... and also active in this one
    retention_rate: float | None
    churn_rate: float | None
    revenue: float
    orders: int


@dataclass(frozen=True)
class CustomerValue:
    """Historical customer value up to the period's end, and the Pareto curve of revenue.

    `curve` has at most 101 rows (customer_share, revenue_share, both fractions 0–1): the origin
    and, per whole percent of customers ranked by lifetime revenue (largest first), the share of
    revenue they bring. It is downsampled in SQL, so its size does not grow with the customers.
    """

    clv: float | None  # average lifetime order sum per customer active in the period
    active_customers: int
    customers: int  # customers with an order (in scope) before the period's end
    lifetime_revenue: float
    top_customers: int  # ceil(20% of customers)
    top_share: float | None  # their share of lifetime revenue
    curve: pd.DataFrame


def loyalty_chain(
    session: Session, *, actor: Actor, windows: Sequence[Period], filters: Filters | None = None
) -> list[Loyalty]:
    """Return the loyalty of windows[1:], each retained against the window before it (one query).

    `windows` are consecutive periods, oldest first (e.g. [p.previous().previous(), p.previous(), p]).
    """
    filters = as_filters(filters)
    o = Order
    columns: list[Column] = [o.customer_id]
    for index, window in enumerate(windows):
        inside = within(o.ordered_on, window)
        columns.append(func.sum(count_if(inside)).label(f"n{index}"))
        if index:  # the oldest window only serves as "previous" for retention
            columns.append(func.sum(case((inside, o.amount), else_=0)).label(f"r{index}"))
    per_customer = (
        select(*columns)
        .where(order_scope(actor, filters), within_any(o.ordered_on, windows))
        .group_by(o.customer_id)
        .subquery()
    )
    c = per_customer.c
    totals: list[ColumnElement[Any]] = []
    for index in range(1, len(windows)):
        count_now, count_before = c[f"n{index}"], c[f"n{index - 1}"]
        totals += [
            func.sum(count_if(count_now > 0)).label(f"active{index}"),
            func.sum(count_if(count_now >= REPEAT_MIN_ORDERS)).label(f"repeat{index}"),
            func.sum(count_if(count_before > 0)).label(f"before{index}"),
            func.sum(count_if(and_(count_before > 0, count_now > 0))).label(f"retained{index}"),
            func.sum(count_now).label(f"orders{index}"),
            func.sum(c[f"r{index}"]).label(f"revenue{index}"),
        ]
    row = session.execute(select(*totals)).one()._mapping
    out = []
    for index in range(1, len(windows)):
        active = as_int(row[f"active{index}"])
        repeat = as_int(row[f"repeat{index}"])
        before = as_int(row[f"before{index}"])
        retained = as_int(row[f"retained{index}"])
        retention = rate(retained, before)
        out.append(
            Loyalty(
                active_customers=active,
                repeat_customers=repeat,
                repeat_purchase_rate=rate(repeat, active),
                previously_active=before,
                retained=retained,
                retention_rate=retention,
                churn_rate=complement(retention),
                revenue=as_money(row[f"revenue{index}"]),
                orders=as_int(row[f"orders{index}"]),
            )
        )
    return out


def loyalty_summary(session: Session, *, actor: Actor, period: Period, filters: Filters | None = None) -> Loyalty:
    """Return active customers, repeat purchase, retention, churn, revenue and orders of the period."""
    (figures,) = loyalty_chain(session, actor=actor, windows=[period.previous(), period], filters=filters)
    return figures


def loyalty_compared(
    session: Session, *, actor: Actor, period: Period, filters: Filters | None = None
) -> Compared[Loyalty]:
    """Return the loyalty of the period and of its previous period (one query)."""
    previous = period.previous()
    before, now = loyalty_chain(session, actor=actor, windows=[previous.previous(), previous, period], filters=filters)
    return Compared(current=now, previous=before)


def customer_value(session: Session, *, actor: Actor, period: Period, filters: Filters | None = None) -> CustomerValue:
    """Return the average lifetime value of the period's active customers and the Pareto curve."""
    filters = as_filters(filters)
    o = Order
    lifetime = (
        select(
            o.customer_id,
            func.sum(o.amount).label("value"),
            func.sum(count_if(within(o.ordered_on, period))).label("in_period"),
        )
        .where(order_scope(actor, filters), o.ordered_on < period.end)
        .group_by(o.customer_id)
        .subquery()
    )
    value, active = lifetime.c.value, lifetime.c.in_period > 0
    ranking = (value.desc(), lifetime.c.customer_id)
    ranked = select(
        func.row_number().over(order_by=ranking).label("rank"),
        func.count().over().label("customers"),
        func.sum(value).over(order_by=ranking, rows=(None, 0)).label("cumulative"),
        func.sum(value).over().label("total"),
        func.sum(case((active, value), else_=0)).over().label("active_value"),
        func.sum(count_if(active)).over().label("active_customers"),
    ).subquery()
    r = ranked.c
    # ceil(20% of n) in integer arithmetic, identical on both engines.
    top_rank = (r.customers * PARETO_TOP_PERCENT + PERCENT - 1) // PERCENT
    # Keep the first customer of every whole percent, so the curve has at most 100 points.
    crosses_percent = (r.rank * PERCENT) // r.customers > ((r.rank - 1) * PERCENT) // r.customers
    query = select(ranked).where(or_(crosses_percent, r.rank == top_rank)).order_by(r.rank)
    rows = session.execute(query).all()
    if not rows:
        return CustomerValue(
            clv=None,
            active_customers=0,
            customers=0,
            lifetime_revenue=0.0,
            top_customers=0,
            top_share=None,
            curve=_curve([]),
        )
    first = rows[0]
    customers = int(first.customers)
    total = as_float(first.total) or 0.0
    top = math.ceil(customers * PARETO_TOP_PERCENT / PERCENT)
    top_cumulative = next(as_float(row.cumulative) for row in rows if row.rank == top)
    points = [(0.0, 0.0)] + [
        (row.rank / customers, rate(as_float(row.cumulative), total)) for row in rows if _is_percent_point(row)
    ]
    active_customers = as_int(first.active_customers)
    return CustomerValue(
        clv=_money_or_none(rate(as_float(first.active_value), active_customers)),
        active_customers=active_customers,
        customers=customers,
        lifetime_revenue=as_money(total),
        top_customers=top,
        top_share=rate(top_cumulative, total),
        curve=_curve(points),
    )


def _is_percent_point(row: Any) -> bool:
    return bool((row.rank * PERCENT) // row.customers > ((row.rank - 1) * PERCENT) // row.customers)


def _money_or_none(value: float | None) -> float | None:
    return None if value is None else as_money(value)


def _curve(points: list[tuple[float, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(points, columns=["customer_share", "revenue_share"], dtype="float64")


def retention_trend(session: Session, *, actor: Actor, period: Period, filters: Filters | None = None) -> pd.DataFrame:
    """Return retention per calendar month the period touches, each month against the month before.

    Columns: month (date, first day), active (customers with an order in the month),
    previously_active (… in the month before), retained (active in both), retention_rate,
    churn_rate (fractions, NaN when nobody was active the month before). Months are whole
    calendar months, so the first month is compared with the full month before it.
    """
    filters = as_filters(filters)
    o = Order
    months = [add_months(period.months()[0], -1), *period.months()]
    windows = [Period(first_day, add_months(first_day, 1)) for first_day in months]
    month = bucket(o.ordered_on, windows)
    active_months = (
        select(o.customer_id.label("customer_id"), month.label("month"))
        .where(order_scope(actor, filters), within_any(o.ordered_on, windows))
        .group_by(o.customer_id, month)
        .cte("active_months")
    )
    this, following = active_months.alias("this_month"), active_months.alias("next_month")
    query = (
        select(
            this.c.month,
            func.count().label("active"),
            func.count(following.c.customer_id).label("retained_next"),
        )
        .select_from(
            this.outerjoin(
                following,
                and_(following.c.customer_id == this.c.customer_id, following.c.month == this.c.month + 1),
            )
        )
        .group_by(this.c.month)
    )
    by_month = {int(row.month): (int(row.active), int(row.retained_next)) for row in session.execute(query)}
    rows = []
    for index in range(1, len(months)):
        active = by_month.get(index, (0, 0))[0]
        before, retained = by_month.get(index - 1, (0, 0))
        retention = rate(retained, before)
        rows.append(
            {
                "month": months[index],
                "active": active,
                "previously_active": before,
                "retained": retained,
                "retention_rate": retention,
                "churn_rate": complement(retention),
            }
        )
    frame = pd.DataFrame(
        rows, columns=["month", "active", "previously_active", "retained", "retention_rate", "churn_rate"]
    )
    frame["retention_rate"] = frame["retention_rate"].astype("float64")
    frame["churn_rate"] = frame["churn_rate"].astype("float64")
    return frame


def pyramid(session: Session, *, actor: Actor, filters: Filters | None = None) -> pd.DataFrame:
    """Return the customer pyramid: live visible customers per current tier, lead → strategic.

    Columns: tier, customers (every tier has a row).
    """
    filters = as_filters(filters)
    query = (
        select(Customer.tier, func.count().label("customers"))
        .where(customer_scope(actor=actor, filters=filters))
        .group_by(Customer.tier)
    )
    counts = {row.tier: int(row.customers) for row in session.execute(query)}
    return pd.DataFrame(
        [{"tier": tier.value, "customers": counts.get(tier.value, 0)} for tier in Tier],
        columns=["tier", "customers"],
    )


def at_risk_customers(
    session: Session,
    *,
    actor: Actor,
    as_of: date,
    filters: Filters | None = None,
    limit: int = DEFAULT_LIMIT,
) -> pd.DataFrame:
    """Return active-status customers with no interaction and no order in the 60 days up to as_of.

    Activity on or after as_of − 60 days (and not after as_of) is recent. Customers created after
    that cutoff are too new to be at risk. Ordered longest-silent first (never active first).
    Columns: customer_id, customer_code, customer_name, tier, owner_id, owner_name,
    last_activity (date of the newest interaction or order up to as_of, None if none),
    days_since_activity (int, None if never).
    """
    filters = as_filters(filters)
    cutoff = as_of - timedelta(days=AT_RISK_DAYS)
    cutoff_dt = datetime.combine(cutoff, time.min)
    day_after = datetime.combine(as_of + timedelta(days=1), time.min)
    i, o = Interaction, Order
    live_interaction = and_(i.customer_id == Customer.id, i.deleted_at.is_(None), i.occurred_at < day_after)
    live_order = and_(o.customer_id == Customer.id, o.deleted_at.is_(None), o.ordered_on <= as_of)
    # "Newest first, one row" walks the (customer_id, time) index backwards and stops at the
    # first live row; MAX() would read every row of the customer to check deleted_at on SQLite.
    last_interaction = (
        select(i.occurred_at).where(live_interaction).order_by(i.occurred_at.desc()).limit(1).scalar_subquery()
    )
    last_order = select(o.ordered_on).where(live_order).order_by(o.ordered_on.desc()).limit(1).scalar_subquery()
    candidates = (
        select(
            Customer.id.label("customer_id"),
            Customer.code.label("customer_code"),
            Customer.name.label("customer_name"),
            Customer.tier,
            Customer.owner_id,
            Customer.created_at,
            last_interaction.label("last_interaction"),
            last_order.label("last_order"),
        )
        .where(
            customer_scope(actor=actor, filters=filters),
            Customer.status == CustomerStatus.ACTIVE.value,
            ~select(i.id).where(live_interaction, i.occurred_at >= cutoff_dt).exists(),
            ~select(o.id).where(live_order, o.ordered_on >= cutoff).exists(),
        )
        # Materialized so the ORDER BY below does not re-run the two subqueries per reference.
        .cte("at_risk")
        .prefix_with("MATERIALIZED")
    )
    c = candidates.c
    # GREATEST() skips NULLs on PostgreSQL but SQLite's max(a, b) does not: spell it out.
    # A timestamp compares after the date of its day on both engines, which is all ORDER BY needs.
    newest = case(
        (c.last_interaction.is_(None), c.last_order),
        (c.last_order.is_(None), c.last_interaction),
        (c.last_interaction > c.last_order, c.last_interaction),
        else_=c.last_order,
    )
    query = (
        select(candidates, User.display_name.label("owner_name"))
        .outerjoin(User, User.id == c.owner_id)
        # Filtered here, not in the CTE, where SQLite would walk the created_at index instead
        # of scanning customers (2× slower on 100,000 customers).
        .where(c.created_at < cutoff_dt)
        .order_by(case((newest.is_(None), 0), else_=1), newest, c.customer_id)
        .limit(limit)
    )
    rows = []
    for row in session.execute(query):
        days = [day for day in (as_date(row.last_interaction), as_date(row.last_order)) if day is not None]
        last = max(days) if days else None
        rows.append(
            {
                "customer_id": row.customer_id,
                "customer_code": row.customer_code,
                "customer_name": row.customer_name,
                "tier": row.tier,
                "owner_id": row.owner_id,
                "owner_name": row.owner_name,
                "last_activity": last,
                "days_since_activity": None if last is None else (as_of - last).days,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "customer_id",
            "customer_code",
            "customer_name",
            "tier",
            "owner_id",
            "owner_name",
            "last_activity",
            "days_since_activity",
        ],
    )
