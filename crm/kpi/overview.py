"""The overview dashboard and the flat KPI summary (`kpi --json`), with previous-period deltas.

An overview costs six SQL round-trips whatever the data size, each aggregating once: the day
summaries of both periods (crm.summaries: day_stats for the whole company, rep_day_stats summed
over the reps in scope otherwise) grouped by day, for visits, revenue, orders, satisfaction and
its monthly trend, won / lost and complaints on time; the orders of the windows once for every
distinct-customer figure (active, repeat, retention of both periods and the monthly retention
trend), the customers created in the periods (lead conversion), the overdue complaints, the
funnel and its stages. Under a tier filter the per-table raw queries replace the summaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from crm.access import Actor, Filters
from crm.kpi import daily
from crm.kpi.activity import visits_by_period
from crm.kpi.common import Metric, as_filters, as_moment, as_money, rate, span
from crm.kpi.conversion import funnel, lead_conversion_by_period, win_loss_by_period, win_loss_from_tally
from crm.kpi.daily import use_summaries
from crm.kpi.loyalty import loyalty_of, retention_frame, retention_months, window_activity
from crm.kpi.satisfaction import nps_trend, satisfaction_by_period_and_month, satisfaction_from_days
from crm.kpi.service import effective_as_of, overdue_open, service_by_period
from crm.periods import Period, add_months

RATE_KEYS = frozenset(
    {
        "win_rate",
        "repeat_purchase_rate",
        "retention_rate",
        "churn_rate",
        "csat_pct",
        "lead_conversion_rate",
        "complaint_on_time_rate",
    }
)
# Headline order on the overview page.
HEADLINE_KEYS = (
    "csat_score",
    "csat_pct",
    "nps",
    "win_rate",
    "lead_conversion_rate",
    "retention_rate",
    "churn_rate",
    "repeat_purchase_rate",
    "revenue",
    "orders",
    "active_customers",
    "complaint_on_time_rate",
    "visits",
    "won",
    "lost",
)


@dataclass(frozen=True)
class KpiSummary:
    """The headline KPIs of one period: rates are fractions 0–1 (None when n/a), money is float."""

    won: int
    lost: int
    win_rate: float | None
    revenue: float
    orders: int
    active_customers: int
    repeat_purchase_rate: float | None
    retention_rate: float | None
    churn_rate: float | None
    csat_score: float | None
    csat_pct: float | None
    nps: float | None
    lead_conversion_rate: float | None
    complaint_on_time_rate: float | None
    visits: int

    def as_dict(self) -> dict[str, Any]:
        """Return the figures as a JSON-ready dict with exactly the field names as keys."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Overview:
    """Everything the overview page draws: headline metrics with deltas and the chart frames.

    Chart frames (see the producing functions for the columns): csat_by_month
    (satisfaction.csat_trend), nps_by_month (satisfaction.nps_trend), funnel
    (conversion.funnel), retention_by_month (loyalty.retention_trend).
    """

    period: Period
    previous_period: Period
    as_of: datetime
    headline: tuple[Metric, ...]
    overdue_complaints: Metric  # open and past due at the period's end (or as_of if earlier)
    csat_by_month: pd.DataFrame
    nps_by_month: pd.DataFrame
    funnel: pd.DataFrame
    retention_by_month: pd.DataFrame

    def metric(self, key: str) -> Metric:
        """Return the headline metric with this key."""
        for metric in self.headline:
            if metric.key == key:
                return metric
        raise KeyError(key)


@dataclass(frozen=True)
class _Figures:
    summaries: list[KpiSummary]
    overdue: list[int]
    trends: list[pd.DataFrame]
    retention: pd.DataFrame | None


def _figures(
    session: Session,
    *,
    actor: Actor,
    periods: Sequence[Period],
    filters: Filters,
    as_of: datetime,
    trend: Period | None = None,
) -> _Figures:
    """Compute the headline of each period (each is the previous of the one before it, if several).

    With `trend`, the same orders query also gives the monthly retention trend of that period.
    """
    # Retention compares each period with the one before it: add the window before the oldest.
    windows = [periods[-1].previous(), *reversed(periods)]
    months = retention_months(trend) if trend else []
    count = len(windows)
    pairs = [(index - 1, index) for index in range(1, count)]
    pairs += [(count + index - 1, count + index) for index in range(1, len(months))]
    from_summaries = use_summaries(filters)
    activity = window_activity(
        session,
        actor=actor,
        windows=[*windows, *(Period(first, add_months(first, 1)) for first in months)],
        pairs=pairs,
        filters=filters,
        money=not from_summaries,
    )
    if from_summaries:
        days = daily.by_day(session, actor=actor, filters=filters, span=span(periods))
        totals = [daily.fold(days, period) for period in periods]
        satisfaction, trends = satisfaction_from_days(days, periods)
        win_loss = [win_loss_from_tally(t) for t in totals]
        on_time = [rate(t.complaints_on_time, t.complaints_resolved) for t in totals]
        visits = [t.visits for t in totals]
        revenue = [as_money(t.revenue) for t in totals]
        orders = [t.orders for t in totals]
        overdue = overdue_open(
            session, actor=actor, filters=filters, moments=[effective_as_of(p, as_of) for p in periods]
        )
    else:
        satisfaction, trends = satisfaction_by_period_and_month(session, actor=actor, periods=periods, filters=filters)
        win_loss = win_loss_by_period(session, actor=actor, periods=periods, filters=filters)
        service, _ = service_by_period(session, actor=actor, periods=periods, as_of=as_of, filters=filters)
        on_time = [s.on_time_rate for s in service]
        overdue = [s.overdue_open for s in service]
        visits = visits_by_period(session, actor=actor, periods=periods, filters=filters)
        revenue = [(activity.revenue or ())[count - 1 - index] for index in range(len(periods))]
        orders = [(activity.orders or ())[count - 1 - index] for index in range(len(periods))]
    leads = lead_conversion_by_period(session, actor=actor, periods=periods, filters=filters)
    summaries = []
    for index in range(len(periods)):
        window = count - 1 - index  # periods are newest first, windows oldest first
        loyalty = loyalty_of(activity, window, previous=window - 1, revenue=revenue[index], orders=orders[index])
        summaries.append(
            KpiSummary(
                won=win_loss[index].won,
                lost=win_loss[index].lost,
                win_rate=win_loss[index].win_rate,
                revenue=loyalty.revenue,
                orders=loyalty.orders,
                active_customers=loyalty.active_customers,
                repeat_purchase_rate=loyalty.repeat_purchase_rate,
                retention_rate=loyalty.retention_rate,
                churn_rate=loyalty.churn_rate,
                csat_score=satisfaction[index].csat_score,
                csat_pct=satisfaction[index].csat_pct,
                nps=satisfaction[index].nps,
                lead_conversion_rate=leads[index].rate,
                complaint_on_time_rate=on_time[index],
                visits=visits[index],
            )
        )
    retention = retention_frame(months, activity, offset=count) if trend else None
    return _Figures(summaries=summaries, overdue=overdue, trends=trends, retention=retention)


def kpi_summary(
    session: Session,
    *,
    actor: Actor,
    period: Period,
    filters: Filters | None = None,
    as_of: date | datetime | None = None,
) -> KpiSummary:
    """Return the headline KPIs of the period (four SQL round-trips).

    `as_of` is accepted so callers can pass the same arguments as to `overview`; none of the
    summary figures depends on it (they are all bounded by the period).
    """
    moment = period.end_dt if as_of is None else as_moment(as_of)
    figures = _figures(session, actor=actor, periods=[period], filters=as_filters(filters), as_of=moment)
    return figures.summaries[0]


def overview(
    session: Session,
    *,
    actor: Actor,
    period: Period,
    as_of: date | datetime,
    filters: Filters | None = None,
) -> Overview:
    """Return the overview of the period: headline metrics against the previous period, and charts.

    `as_of` is "now": open complaints are counted at the period's end or at as_of if earlier
    (a plain date means midnight at its start).
    """
    filters = as_filters(filters)
    moment = as_moment(as_of)
    previous = period.previous()
    figures = _figures(session, actor=actor, periods=[period, previous], filters=filters, as_of=moment, trend=period)
    assert figures.retention is not None  # asked for with trend=
    now, before = figures.summaries
    headline = tuple(
        Metric.of(key, getattr(now, key), getattr(before, key), is_rate=key in RATE_KEYS) for key in HEADLINE_KEYS
    )
    csat_by_month = figures.trends[0]
    return Overview(
        period=period,
        previous_period=previous,
        as_of=moment,
        headline=headline,
        overdue_complaints=Metric.of("overdue_complaints", figures.overdue[0], figures.overdue[1]),
        csat_by_month=csat_by_month,
        nps_by_month=nps_trend(csat_by_month),
        funnel=funnel(session, actor=actor, period=period, filters=filters),
        retention_by_month=figures.retention,
    )
