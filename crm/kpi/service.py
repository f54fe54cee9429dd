"""Service KPIs from the complaint ledger (SPEC §5): on-time rate, overdue open, resolution hours.

Complaints count for their assignee. A period's figures and the per-severity breakdown come from
one query grouped by severity (the headline is the sum of the severities).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime

import pandas as pd
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from crm.access import Actor, Filters
from crm.kpi.common import (
    Column,
    Compared,
    as_filters,
    as_float,
    as_int,
    as_moment,
    complaint_scope,
    count_if,
    rate,
    rounded,
    within,
)
from crm.kpi.sqlfuncs import hours_between
from crm.models import Complaint, Severity
from crm.periods import Period

HOURS_DECIMALS = 1


@dataclass(frozen=True)
class Service:
    """Complaint handling of one scope and period; on_time_rate is a fraction, None when n/a.

    `as_of` is the moment the open / overdue counts are taken: the period's end, or the
    `as_of` passed in when that is earlier (the current period).
    """

    opened: int  # opened in the period
    resolved: int  # resolved in the period
    resolved_on_time: int  # ... with resolved_at <= due_at
    on_time_rate: float | None
    open: int  # unresolved at as_of
    overdue_open: int  # ... and past due_at
    mean_resolution_hours: float | None  # over the complaints resolved in the period
    as_of: datetime


@dataclass(frozen=True)
class _Tally:
    opened: int = 0
    resolved: int = 0
    on_time: int = 0
    open: int = 0
    overdue: int = 0
    hours: float = 0.0

    def __add__(self, other: _Tally) -> _Tally:
        return _Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def figures(self, as_of: datetime) -> Service:
        return Service(
            opened=self.opened,
            resolved=self.resolved,
            resolved_on_time=self.on_time,
            on_time_rate=rate(self.on_time, self.resolved),
            open=self.open,
            overdue_open=self.overdue,
            mean_resolution_hours=rounded(rate(self.hours, self.resolved), HOURS_DECIMALS),
            as_of=as_of,
        )


def effective_as_of(period: Period, as_of: date | datetime) -> datetime:
    """Return the moment open complaints are counted: the period's end, or as_of if earlier.

    A plain date as_of means midnight at its start.
    """
    return min(period.end_dt, as_moment(as_of))


def service_by_period(
    session: Session,
    *,
    actor: Actor,
    periods: Sequence[Period],
    as_of: date | datetime,
    filters: Filters | None = None,
) -> tuple[list[Service], list[pd.DataFrame]]:
    """Return each period's service figures and their breakdown by severity, from one query."""
    filters = as_filters(filters)
    c = Complaint
    moments = [effective_as_of(p, as_of) for p in periods]
    columns: list[Column] = [c.severity]
    for index, (period, moment) in enumerate(zip(periods, moments, strict=True)):
        resolved = within(c.resolved_at, period, timestamps=True)
        # Open at a moment: opened by then and not resolved by then (resolved later counts as open).
        still_open = and_(c.opened_at <= moment, or_(c.resolved_at.is_(None), c.resolved_at > moment))
        columns += [
            func.sum(count_if(within(c.opened_at, period, timestamps=True))).label(f"opened{index}"),
            func.sum(count_if(resolved)).label(f"resolved{index}"),
            func.sum(count_if(and_(resolved, c.resolved_at <= c.due_at))).label(f"on_time{index}"),
            func.sum(count_if(still_open)).label(f"open{index}"),
            func.sum(count_if(and_(still_open, c.due_at < moment))).label(f"overdue{index}"),
            func.sum(case((resolved, hours_between(c.opened_at, c.resolved_at)), else_=0)).label(f"hours{index}"),
        ]
    earliest = min(moments)
    relevant = or_(
        *(within(c.resolved_at, p, timestamps=True) for p in periods),
        *(within(c.opened_at, p, timestamps=True) for p in periods),
        c.resolved_at.is_(None),
        c.resolved_at > earliest,
    )
    query = select(*columns).where(complaint_scope(actor, filters), relevant).group_by(c.severity)
    tallies: dict[tuple[int, str], _Tally] = {}
    for row in session.execute(query):
        m = row._mapping
        for index in range(len(periods)):
            tallies[(index, row.severity)] = _Tally(
                opened=as_int(m[f"opened{index}"]),
                resolved=as_int(m[f"resolved{index}"]),
                on_time=as_int(m[f"on_time{index}"]),
                open=as_int(m[f"open{index}"]),
                overdue=as_int(m[f"overdue{index}"]),
                hours=as_float(m[f"hours{index}"]) or 0.0,
            )
    summaries = []
    breakdowns = []
    for index, moment in enumerate(moments):
        per_severity = {s: tallies.get((index, s.value), _Tally()) for s in Severity}
        summaries.append(sum(per_severity.values(), _Tally()).figures(moment))
        breakdowns.append(_severity_frame({s: t.figures(moment) for s, t in per_severity.items()}))
    return summaries, breakdowns


def overdue_open(
    session: Session, *, actor: Actor, moments: Sequence[datetime], filters: Filters | None = None
) -> list[int]:
    """Count the complaints open and past due at each moment (opened by then, unresolved then), one query."""
    filters = as_filters(filters)
    c = Complaint
    columns = [
        func.sum(
            count_if(
                and_(
                    c.opened_at <= moment,
                    or_(c.resolved_at.is_(None), c.resolved_at > moment),
                    c.due_at < moment,
                )
            )
        ).label(f"overdue{index}")
        for index, moment in enumerate(moments)
    ]
    still_open = or_(c.resolved_at.is_(None), c.resolved_at > min(moments))
    query = select(*columns).where(complaint_scope(actor, filters), still_open, c.due_at < max(moments))
    row = session.execute(query).one()
    return [as_int(value) for value in row]


SEVERITY_COLUMNS = [
    "severity",
    "opened",
    "resolved",
    "resolved_on_time",
    "on_time_rate",
    "open",
    "overdue_open",
    "mean_resolution_hours",
]


def _severity_frame(by_severity: dict[Severity, Service]) -> pd.DataFrame:
    rows = [
        {"severity": severity.value, **{name: getattr(figures, name) for name in SEVERITY_COLUMNS[1:]}}
        for severity, figures in by_severity.items()
    ]
    frame = pd.DataFrame(rows, columns=SEVERITY_COLUMNS)
    frame["on_time_rate"] = frame["on_time_rate"].astype("float64")
    frame["mean_resolution_hours"] = frame["mean_resolution_hours"].astype("float64")
    return frame


def service_summary(
    session: Session, *, actor: Actor, period: Period, as_of: date | datetime, filters: Filters | None = None
) -> Service:
    """Return on-time rate, overdue open and mean resolution hours of the period's complaints."""
    summaries, _ = service_by_period(session, actor=actor, periods=[period], as_of=as_of, filters=filters)
    return summaries[0]


def service_compared(
    session: Session, *, actor: Actor, period: Period, as_of: date | datetime, filters: Filters | None = None
) -> Compared[Service]:
    """Return the service figures of the period and of its previous period (one query)."""
    summaries, _ = service_by_period(
        session, actor=actor, periods=[period, period.previous()], as_of=as_of, filters=filters
    )
    return Compared(current=summaries[0], previous=summaries[1])


def complaints_by_severity(
    session: Session, *, actor: Actor, period: Period, as_of: date | datetime, filters: Filters | None = None
) -> pd.DataFrame:
    """Return the service figures per severity (high, medium, low; every severity has a row).

    Columns: severity, opened, resolved, resolved_on_time, on_time_rate, open, overdue_open,
    mean_resolution_hours.
    """
    _, breakdowns = service_by_period(session, actor=actor, periods=[period], as_of=as_of, filters=filters)
    return breakdowns[0]
