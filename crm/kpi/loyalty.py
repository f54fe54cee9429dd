"""Loyalty KPIs from orders (SPEC §5): activity, repeat purchase, retention, value, pyramid.

Orders count for the rep on the order; a customer is active in a window when it has at least
one order (by a rep in scope) dated in it. Money is returned as float rounded to cents.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from crm import summaries
from crm.access import Actor, Filters
from crm.kpi import daily
from crm.kpi.common import (
    DEFAULT_LIMIT,
    Compared,
    as_date,
    as_filters,
    as_float,
    as_int,
    as_money,
    complement,
    count_if,
    customer_scope,
    live_customer,
    order_scope,
    rate,
    rep_in_scope,
    span,
    within,
    within_any,
)
from crm.kpi.daily import use_summaries
from crm.models import Customer, CustomerStatus, Interaction, Order, Tier, User
from crm.periods import Period, add_months

REPEAT_MIN_ORDERS = 2
SIGNATURE_BASE = 3  # a customer's orders in a window: none, one, or REPEAT_MIN_ORDERS or more
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


@dataclass(frozen=True)
class WindowActivity:
    """Customers with orders (by reps in scope) per window, from one pass over the orders.

    `retained` maps each requested pair of window indexes (i, j) to the customers active in
    both; `orders` and `revenue` are filled only when asked for (the summaries give them otherwise).
    """

    active: tuple[int, ...]
    repeat: tuple[int, ...]  # customers with at least REPEAT_MIN_ORDERS orders in the window
    retained: Mapping[tuple[int, int], int]
    orders: tuple[int, ...] | None  # filled with revenue only
    revenue: tuple[float, ...] | None


def window_activity(
    session: Session,
    *,
    actor: Actor,
    windows: Sequence[Period],
    pairs: Sequence[tuple[int, int]] = (),
    filters: Filters | None = None,
    money: bool = False,
) -> WindowActivity:
    """Count active and repeat customers of each window and those active in both windows of each pair.

    One pass over the live orders of the windows (a covering index by date), grouped by customer:
    per order only one comparison with each window edge, counted as "orders before the edge", so
    the orders of any window are the difference of two such counts. The customer's liveness (and
    tier) is checked once per customer after grouping, not once per order.
    """
    filters = as_filters(filters)
    if not money and use_summaries(filters) and all(_whole_months(window) for window in windows):
        return _window_activity_from_months(session, actor=actor, windows=windows, pairs=pairs, filters=filters)
    o = Order
    edges = sorted({w.start for w in windows} | {w.end for w in windows})
    inner = edges[1:-1]
    columns: list[ColumnElement[Any]] = [o.customer_id.label("customer_id"), func.count().label("n")]
    # FILTER skips the aggregate step for the rows that do not match: cheaper than SUM(CASE …).
    columns += [func.count().filter(o.ordered_on < edge).label(f"n_before{k}") for k, edge in enumerate(inner)]
    if money:
        columns.append(func.sum(o.amount).label("r"))
        columns += [
            func.sum(case((o.ordered_on < edge, o.amount), else_=0)).label(f"r_before{k}")
            for k, edge in enumerate(inner)
        ]
    per_customer = (
        select(*columns)
        .where(
            o.deleted_at.is_(None),
            rep_in_scope(o.rep_id, actor=actor, filters=filters),
            within_any(o.ordered_on, covering(windows)),
        )
        .group_by(o.customer_id)
        .subquery("per_customer")
    )
    c = per_customer.c

    def before(prefix: str, edge: date) -> ColumnElement[Any]:
        """Orders (or amounts) of the customer dated before an edge of the windows."""
        position = edges.index(edge)
        if position == 0:
            return literal(0)
        return c[prefix] if position == len(edges) - 1 else c[f"{prefix}_before{position - 1}"]

    def within_window(prefix: str, window: Period) -> ColumnElement[Any]:
        return before(prefix, window.end) - before(prefix, window.start)

    # Per customer one number: digit w (base 3) is 0, 1 or 2+ orders in window w. Customers are
    # then counted per distinct signature (a few hundred groups), and Python adds them up.
    signature: ColumnElement[Any] = literal(0)
    for index, window in enumerate(windows):
        count = within_window("n", window)
        level = case((count >= REPEAT_MIN_ORDERS, 2), (count > 0, 1), else_=0)
        signature = signature + level * SIGNATURE_BASE**index
    sums: list[ColumnElement[Any]] = []
    if money:
        for index, window in enumerate(windows):
            sums += [
                func.sum(within_window("n", window)).label(f"orders{index}"),
                func.sum(within_window("r", window)).label(f"revenue{index}"),
            ]
    grouped = (
        select(signature.label("signature"), func.count().label("customers"), *sums)
        .where(live_customer(c.customer_id, filters=filters))
        .group_by(signature)
    )
    active = [0] * len(windows)
    repeat = [0] * len(windows)
    retained = dict.fromkeys(pairs, 0)
    orders = [0] * len(windows)
    revenue = [Decimal(0)] * len(windows)
    for row in session.execute(grouped):
        levels = [(int(row.signature) // SIGNATURE_BASE**index) % SIGNATURE_BASE for index in range(len(windows))]
        customers = int(row.customers)
        for index, level in enumerate(levels):
            active[index] += customers if level else 0
            repeat[index] += customers if level == 2 else 0
            if money:
                orders[index] += as_int(row._mapping[f"orders{index}"])
                revenue[index] += Decimal(str(row._mapping[f"revenue{index}"] or 0))
        for first, second in pairs:
            retained[(first, second)] += customers if levels[first] and levels[second] else 0
    return WindowActivity(
        active=tuple(active),
        repeat=tuple(repeat),
        orders=tuple(orders) if money else None,
        retained=retained,
        revenue=tuple(as_money(value) for value in revenue) if money else None,
    )


def _whole_months(window: Period) -> bool:
    return window.start.day == 1 and window.end.day == 1


def _window_activity_from_months(
    session: Session,
    *,
    actor: Actor,
    windows: Sequence[Period],
    pairs: Sequence[tuple[int, int]],
    filters: Filters,
) -> WindowActivity:
    """Count what window_activity counts from rep_month_customers (windows of whole months, no tier filter).

    Per window, the customers' order counts of its months (reps in scope) are added up per
    customer id in one vector; soft-deleted customers are then zeroed. Equal to the pass over the
    orders, at the cost of reading a row per rep and month.
    """
    months = sorted({month for window in windows for month in window.months()})
    rows = summaries.order_months(
        session, months=months, rep_scope=rep_in_scope(summaries.ORDER_MONTHS.c.rep_id, actor=actor, filters=filters)
    )
    by_month: dict[date, list[summaries.OrderMonth]] = {}
    for row in rows:
        by_month.setdefault(row.month, []).append(row)
    # Each window's months joined as bytes first: one array per window, not one per row.
    packed = []
    for window in windows:
        chosen = [row for month in window.months() for row in by_month.get(month, ())]
        ids = summaries.unpack(b"".join(row.customer_ids for row in chosen))
        packed.append((ids, summaries.unpack(b"".join(row.order_counts for row in chosen))))
    size = 1 + max((int(ids.max()) for ids, _ in packed if len(ids)), default=0)
    deleted = np.fromiter(session.scalars(select(Customer.id).where(Customer.deleted_at.is_not(None))), dtype=np.int64)
    deleted = deleted[deleted < size]
    per_window = []
    for ids, weights in packed:
        counts = np.bincount(ids, weights=weights, minlength=size).astype(np.int64)
        counts[deleted] = 0
        per_window.append(counts)
    return WindowActivity(
        active=tuple(int(np.count_nonzero(counts)) for counts in per_window),
        repeat=tuple(int(np.count_nonzero(counts >= REPEAT_MIN_ORDERS)) for counts in per_window),
        retained={
            (first, second): int(np.count_nonzero((per_window[first] > 0) & (per_window[second] > 0)))
            for first, second in pairs
        },
        orders=None,
        revenue=None,
    )


def covering(windows: Sequence[Period]) -> list[Period]:
    """Return the disjoint periods that cover the (possibly overlapping) windows, oldest first."""
    merged: list[Period] = []
    for window in sorted(windows, key=lambda w: w.start):
        if merged and window.start <= merged[-1].end:
            merged[-1] = Period(merged[-1].start, max(merged[-1].end, window.end))
        else:
            merged.append(window)
    return merged


def loyalty_of(activity: WindowActivity, index: int, *, previous: int, revenue: float, orders: int) -> Loyalty:
    """Return the loyalty of window `index`, retained against window `previous` (a pair of the activity)."""
    active, repeat = activity.active[index], activity.repeat[index]
    before = activity.active[previous]
    retained = activity.retained[(previous, index)]
    retention = rate(retained, before)
    return Loyalty(
        active_customers=active,
        repeat_customers=repeat,
        repeat_purchase_rate=rate(repeat, active),
        previously_active=before,
        retained=retained,
        retention_rate=retention,
        churn_rate=complement(retention),
        revenue=revenue,
        orders=orders,
    )


def loyalty_chain(
    session: Session, *, actor: Actor, windows: Sequence[Period], filters: Filters | None = None
) -> list[Loyalty]:
    """Return the loyalty of windows[1:], each retained against the window before it (two queries).

    `windows` are consecutive periods, oldest first (e.g. [p.previous().previous(), p.previous(), p]).
    Distinct customers come from the orders; revenue and order counts from rep_day_stats (from
    the orders too under a tier filter).
    """
    filters = as_filters(filters)
    summaries = use_summaries(filters)
    pairs = [(index - 1, index) for index in range(1, len(windows))]
    activity = window_activity(session, actor=actor, windows=windows, pairs=pairs, filters=filters, money=not summaries)
    if summaries:
        days = daily.by_day(session, actor=actor, filters=filters, span=span(windows))
        totals = [daily.fold(days, window) for window in windows]
        revenue = [as_money(t.revenue) for t in totals]
        orders = [t.orders for t in totals]
    else:
        revenue, orders = list(activity.revenue or ()), list(activity.orders or ())
    return [
        loyalty_of(activity, index, previous=index - 1, revenue=revenue[index], orders=orders[index])
        for index in range(1, len(windows))
    ]


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


def repeat_trend(session: Session, *, actor: Actor, period: Period, filters: Filters | None = None) -> pd.DataFrame:
    """Return month, active, repeat_purchase_rate (NaN when nobody ordered) for each month the period touches."""
    first_days = [add_months(period.months()[0], -1), *period.months()]
    windows = [Period(day, add_months(day, 1)) for day in first_days]
    months = loyalty_chain(session, actor=actor, windows=windows, filters=filters)
    frame = pd.DataFrame(
        {
            "month": [window.start for window in windows[1:]],
            "active": [figures.active_customers for figures in months],
            "repeat_purchase_rate": [figures.repeat_purchase_rate for figures in months],
        }
    )
    frame["repeat_purchase_rate"] = frame["repeat_purchase_rate"].astype("float64")
    return frame


def retention_trend(session: Session, *, actor: Actor, period: Period, filters: Filters | None = None) -> pd.DataFrame:
    """Return retention per calendar month the period touches, each month against the month before.

    Columns: month (date, first day), active (customers with an order in the month),
    previously_active (… in the month before), retained (active in both), retention_rate,
    churn_rate (fractions, NaN when nobody was active the month before). Months are whole
    calendar months, so the first month is compared with the full month before it.
    """
    months = retention_months(period)
    windows = [Period(first_day, add_months(first_day, 1)) for first_day in months]
    pairs = [(index - 1, index) for index in range(1, len(windows))]
    activity = window_activity(session, actor=actor, windows=windows, pairs=pairs, filters=filters)
    return retention_frame(months, activity)


def retention_months(period: Period) -> list[date]:
    """Return the first days of the month before the period and of every month it touches."""
    return [add_months(period.months()[0], -1), *period.months()]


def retention_frame(months: Sequence[date], activity: WindowActivity, *, offset: int = 0) -> pd.DataFrame:
    """Build the retention_trend frame from the activity of the months' windows (at `offset` in it)."""
    rows = []
    for index in range(1, len(months)):
        active = activity.active[offset + index]
        before = activity.active[offset + index - 1]
        retained = activity.retained[(offset + index - 1, offset + index)]
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
