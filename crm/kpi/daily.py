"""Reads of the per rep per day summaries (crm.summaries): decomposable KPIs without raw-table scans.

`rep_day_stats` is exact after every save (crm.summaries keeps it in the write's transaction), so
every figure that adds up over reps and days — visits, calls, revenue, orders, satisfaction
tallies, won / lost, complaints resolved on time — reads it: a period of all reps is a few
thousand narrow rows instead of hundreds of thousands of records. A tier filter keeps the raw
path: a record's tier is its customer's current tier, which the day rows do not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from crm.access import Actor, Filters
from crm.kpi.common import Column, has_rep_filter, rep_in_scope
from crm.kpi.sqlfuncs import member_of
from crm.models import DayStat, RepDayStat, RepMonthStat, User
from crm.periods import Period, add_months
from crm.summaries import MEASURES, MONEY_MEASURES

ZERO_MONEY = Decimal(0)
CENT = Decimal("0.01")
_IS_MONEY = tuple(name in MONEY_MEASURES for name in MEASURES)


@dataclass(frozen=True)
class Tally:
    """Sums of rep_day_stats over some reps and days (see crm.models.RepDayStat); money is Decimal."""

    interactions: int = 0
    visits: int = 0
    calls: int = 0
    orders: int = 0
    revenue: Decimal = ZERO_MONEY
    responses: int = 0
    csat_sum: int = 0
    csat_good: int = 0
    recommend_n: int = 0
    promoters: int = 0
    detractors: int = 0
    quality_sum: int = 0
    quality_n: int = 0
    service_sum: int = 0
    service_n: int = 0
    price_sum: int = 0
    price_n: int = 0
    after_sales_sum: int = 0
    after_sales_n: int = 0
    won: int = 0
    lost: int = 0
    won_amount: Decimal = ZERO_MONEY
    complaints_resolved: int = 0
    complaints_on_time: int = 0
    resolution_seconds: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def total(cls, tallies: Iterable[Tally]) -> Tally:
        """Return the sum of many tallies (one pass per measure instead of one object per addition)."""
        rows = [[getattr(t, name) for name in MEASURES] for t in tallies]
        if not rows:
            return cls()
        return cls(*(sum(column) for column in zip(*rows, strict=True)))

    @classmethod
    def from_row(cls, row: Any) -> Tally:
        """Build a tally from a row with one column per measure (SUMs; NULL over no rows)."""
        # The measures are the row's last columns, in MEASURES order (see _sums).
        measures: list[Any] = [
            _money(value) if money else int(value or 0)
            for value, money in zip(tuple(row)[-len(MEASURES) :], _IS_MONEY, strict=True)
        ]
        return cls(*measures)


def _money(value: Any) -> Decimal:
    # SQLite sums money as floats: back to exact cents.
    return ZERO_MONEY if value is None else Decimal(str(value)).quantize(CENT)


def use_summaries(filters: Filters) -> bool:
    """Tell whether the figures of these filters can come from rep_day_stats (no tier filter)."""
    return not filters.tier


def _sums(table: Any = RepDayStat) -> list[ColumnElement[Any]]:
    return [func.sum(getattr(table, name)).label(name) for name in MEASURES]


def by_day(session: Session, *, actor: Actor, filters: Filters, span: Period) -> dict[date, Tally]:
    """Return the tallies of each day in the span with data, summed over the reps in scope (one query).

    The whole company (an admin without rep filters) reads day_stats: one row a day.
    """
    if actor.is_admin and not has_rep_filter(filters):
        d = DayStat
        query = select(d.day, *_sums(d)).where(d.day >= span.start, d.day < span.end).group_by(d.day)
    else:
        s = RepDayStat
        query = (
            select(s.day, *_sums())
            .where(rep_in_scope(s.rep_id, actor=actor, filters=filters), s.day >= span.start, s.day < span.end)
            .group_by(s.day)
        )
    return {_as_day(row.day): Tally.from_row(row) for row in session.execute(query)}


def by_rep(
    session: Session,
    *,
    period: Period,
    actor: Actor | None = None,
    filters: Filters | None = None,
    rep_ids: Select[int] | Iterable[int] | None = None,
) -> dict[int, Tally]:
    """Return the tallies of the period per rep, for the reps in the actor's scope or the given reps.

    Whole calendar months of the period read rep_month_stats (a row per rep and month), the days
    of its partial months rep_day_stats.
    """
    months, edges = split_months(period)
    queries: list[tuple[Any, list[ColumnElement[bool]], Any]] = []
    if months:
        m = RepMonthStat
        queries.append((m.rep_id, [m.month.in_(months)], m))
    for edge in edges:
        d = RepDayStat
        queries.append((d.rep_id, [d.day >= edge.start, d.day < edge.end], d))
    out: dict[int, Tally] = {}
    for rep_column, where, table in queries:
        if rep_ids is not None:
            chosen = member_of(rep_column, rep_ids) if isinstance(rep_ids, Select) else rep_column.in_(list(rep_ids))
            where.append(chosen)
        if actor is not None:
            where.append(rep_in_scope(rep_column, actor=actor, filters=filters or Filters()))
        query = select(rep_column, *_sums(table)).where(*where).group_by(rep_column)
        for row in session.execute(query):
            tally = Tally.from_row(row)
            rep_id = int(row.rep_id)
            out[rep_id] = out[rep_id] + tally if rep_id in out else tally
    return out


def split_months(period: Period) -> tuple[list[date], list[Period]]:
    """Split a period into the calendar months it holds whole and the partial stretches around them."""
    months = [first for first in period.months() if first >= period.start and add_months(first, 1) <= period.end]
    if not months:
        return [], [period]
    start, end = months[0], add_months(months[-1], 1)
    edges = [Period(a, b) for a, b in ((period.start, start), (end, period.end)) if a < b]
    return months, edges


def by_rep_and_week(
    session: Session, *, actor: Actor, filters: Filters, period: Period, week: Column
) -> list[tuple[int, date, Tally]]:
    """Return (rep, week, tally) for every rep and week with data in the period; `week` maps the day column."""
    s = RepDayStat
    query = (
        select(s.rep_id, week.label("week"), *_sums())
        .where(rep_in_scope(s.rep_id, actor=actor, filters=filters), s.day >= period.start, s.day < period.end)
        .group_by(s.rep_id, week)
    )
    return [(int(row.rep_id), _as_day(row.week), Tally.from_row(row)) for row in session.execute(query)]


def rep_names(session: Session, rep_ids: Iterable[int]) -> dict[int, str]:
    """Return the display names of these users."""
    query = select(User.id, User.display_name).where(User.id.in_(sorted(set(rep_ids))))
    return {int(user_id): name for user_id, name in session.execute(query)}


def fold(days: Mapping[date, Tally], period: Period) -> Tally:
    """Return the sum of the daily tallies that fall in the period."""
    return Tally.total(t for day, t in days.items() if period.start <= day < period.end)


def fold_months(days: Mapping[date, Tally], period: Period) -> dict[date, Tally]:
    """Return the period's tallies per calendar month (keyed by the month's first day; days outside left out)."""
    months: dict[date, list[Tally]] = {first: [] for first in period.months()}
    for day, t in days.items():
        if period.start <= day < period.end:
            months[day.replace(day=1)].append(t)
    return {first: Tally.total(tallies) for first, tallies in months.items()}


def _as_day(value: Any) -> date:
    # SQLite hands back a computed date (week start) as ISO text.
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
