"""What every KPI shares: the scope of a KPI call, period buckets, rates and metrics.

Scope (SPEC §4, §5): a KPI counts a record for the rep on it (order.rep_id, opportunity.owner_id,
interaction.rep_id, survey.rep_id, complaint.assignee_id) when that rep is in
`kpi_rep_ids(actor, filters)`. Soft-deleted records and records of soft-deleted customers never
count; `filters.tier` keeps records whose customer currently has that tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, case, or_, select, true

from crm.access import Actor, Filters, customer_visible, kpi_rep_ids
from crm.kpi.sqlfuncs import member_of
from crm.models import Complaint, Customer, Interaction, Opportunity, Order, PipelineStage, StageKind, SurveyResponse
from crm.periods import Period, add_months

T = TypeVar("T")
# A column or mapped attribute usable in an expression.
Column = SQLColumnExpression[Any]

MONEY_DECIMALS = 2
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class Compared(Generic[T]):
    """Figures of a period and of its previous period (Period.previous())."""

    current: T
    previous: T


@dataclass(frozen=True)
class Metric:
    """A headline figure with its previous-period value; rates are fractions 0–1, None is n/a."""

    key: str
    value: float | None
    previous: float | None
    delta: float | None
    is_rate: bool = False

    @classmethod
    def of(cls, key: str, value: float | None, previous: float | None, *, is_rate: bool = False) -> Metric:
        """Build a metric; the delta is value − previous, None when either is n/a."""
        delta = None if value is None or previous is None else value - previous
        return cls(key=key, value=value, previous=previous, delta=delta, is_rate=is_rate)


def as_filters(filters: Filters | None) -> Filters:
    """Return the filters, or no filters."""
    return filters or Filters()


def has_rep_filter(filters: Filters) -> bool:
    """Tell whether the filters narrow the set of reps (team, region or rep)."""
    return bool(filters.team or filters.region or filters.rep_id is not None)


def rep_in_scope(rep_column: Column, *, actor: Actor, filters: Filters) -> ColumnElement[bool]:
    """Return the WHERE clause keeping records whose rep is in the KPI scope."""
    if actor.is_admin and not has_rep_filter(filters):
        # Every user is in an unfiltered admin scope: skip the IN (…) on million-row tables.
        return true()
    return member_of(rep_column, kpi_rep_ids(actor, filters))


def live_customer(customer_column: Column, *, filters: Filters, nullable: bool = False) -> ColumnElement[bool]:
    """Return the WHERE clause keeping records of live customers (of the filtered tier).

    `nullable` lets records without a customer (early opportunities) through, unless a tier
    filter asks for customers of a tier.
    """
    if filters.tier:
        return customer_column.in_(
            select(Customer.id).where(Customer.deleted_at.is_(None), Customer.tier == filters.tier)
        )
    # The deleted set is small; NOT IN it is cheaper than joining every row to customers.
    alive = customer_column.not_in(select(Customer.id).where(Customer.deleted_at.is_not(None)))
    return or_(customer_column.is_(None), alive) if nullable else alive


def record_scope(
    *,
    actor: Actor,
    filters: Filters,
    rep_column: Column,
    customer_column: Column,
    deleted_column: Column,
    nullable_customer: bool = False,
) -> ColumnElement[bool]:
    """Return the full KPI WHERE clause of a record table: live, live customer, rep in scope."""
    return and_(
        deleted_column.is_(None),
        live_customer(customer_column, filters=filters, nullable=nullable_customer),
        rep_in_scope(rep_column, actor=actor, filters=filters),
    )


def order_scope(actor: Actor, filters: Filters) -> ColumnElement[bool]:
    """Return the KPI WHERE clause of orders (they count for order.rep_id)."""
    o = Order
    return record_scope(
        actor=actor, filters=filters, rep_column=o.rep_id, customer_column=o.customer_id, deleted_column=o.deleted_at
    )


def opportunity_scope(actor: Actor, filters: Filters) -> ColumnElement[bool]:
    """Return the KPI WHERE clause of opportunities (owner_id; a missing customer is allowed)."""
    o = Opportunity
    return record_scope(
        actor=actor,
        filters=filters,
        rep_column=o.owner_id,
        customer_column=o.customer_id,
        deleted_column=o.deleted_at,
        nullable_customer=True,
    )


def survey_scope(actor: Actor, filters: Filters) -> ColumnElement[bool]:
    """Return the KPI WHERE clause of survey responses (they count for survey.rep_id)."""
    s = SurveyResponse
    return record_scope(
        actor=actor, filters=filters, rep_column=s.rep_id, customer_column=s.customer_id, deleted_column=s.deleted_at
    )


def interaction_scope(actor: Actor, filters: Filters) -> ColumnElement[bool]:
    """Return the KPI WHERE clause of interactions (they count for interaction.rep_id)."""
    i = Interaction
    return record_scope(
        actor=actor, filters=filters, rep_column=i.rep_id, customer_column=i.customer_id, deleted_column=i.deleted_at
    )


def complaint_scope(actor: Actor, filters: Filters) -> ColumnElement[bool]:
    """Return the KPI WHERE clause of complaints (they count for complaint.assignee_id)."""
    c = Complaint
    return record_scope(
        actor=actor,
        filters=filters,
        rep_column=c.assignee_id,
        customer_column=c.customer_id,
        deleted_column=c.deleted_at,
    )


def customer_scope(*, actor: Actor, filters: Filters) -> ColumnElement[bool]:
    """Return the WHERE clause of the live customers the actor sees, narrowed by the filters.

    Used by customer-based lists (pyramid, at-risk, not contacted): the visible customers, and
    when a team / region / rep filter is set, only those owned by a rep in the filtered scope.
    """
    clauses: list[ColumnElement[bool]] = [customer_visible(actor), Customer.deleted_at.is_(None)]
    if has_rep_filter(filters):
        clauses.append(member_of(Customer.owner_id, kpi_rep_ids(actor, filters)))
    if filters.tier:
        clauses.append(Customer.tier == filters.tier)
    return and_(*clauses)


def stage_keys(kind: StageKind) -> Select[str]:
    """Select the keys of the pipeline stages of a kind (stages are data)."""
    return select(PipelineStage.key).where(PipelineStage.kind == kind.value)


def bounds(period: Period, *, timestamps: bool) -> tuple[date | datetime, date | datetime]:
    """Return the period's [start, end) as dates, or as midnight timestamps."""
    return (period.start_dt, period.end_dt) if timestamps else (period.start, period.end)


def within(column: Column, period: Period, *, timestamps: bool = False) -> ColumnElement[bool]:
    """Return `start <= column < end` for a date column (or a timestamp one)."""
    start, end = bounds(period, timestamps=timestamps)
    return and_(column >= start, column < end)


def span(periods: Sequence[Period]) -> Period:
    """Return the smallest period that covers all the periods."""
    return Period(min(p.start for p in periods), max(p.end for p in periods))


def within_any(column: Column, periods: Sequence[Period], *, timestamps: bool = False) -> ColumnElement[bool]:
    """Return the WHERE clause of rows dated in any of the periods (one range when contiguous)."""
    ordered = sorted(periods, key=lambda p: p.start)
    contiguous = all(a.end == b.start for a, b in zip(ordered, ordered[1:], strict=False))
    if contiguous:
        return within(column, span(ordered), timestamps=timestamps)
    return or_(*(within(column, p, timestamps=timestamps) for p in ordered))


def bucket(column: Column, periods: Sequence[Period], *, timestamps: bool = False) -> ColumnElement[Any]:
    """Return a CASE giving the index in `periods` of the (disjoint) period a row is dated in.

    Callers restrict the rows to the periods (`within_any`); for contiguous periods the CASE
    then only compares each row with the period ends — much cheaper than strftime() or
    EXTRACT() per row on a million rows.
    """
    order = sorted(range(len(periods)), key=lambda index: periods[index].start)
    ordered = [periods[index] for index in order]
    if all(a.end == b.start for a, b in zip(ordered, ordered[1:], strict=False)):
        return case(*((column < bounds(periods[index], timestamps=timestamps)[1], index) for index in order))
    return case(*((within(column, p, timestamps=timestamps), index) for index, p in enumerate(periods)))


@dataclass(frozen=True)
class MonthSlot:
    """The part of one period that falls in one calendar month."""

    period_index: int
    month: date  # first day of the calendar month
    window: Period


def month_slots(periods: Sequence[Period]) -> list[MonthSlot]:
    """Split each period at month boundaries, so one GROUP BY gives per-period and per-month figures."""
    slots = []
    for index, period in enumerate(periods):
        for first_day in period.months():
            window = Period(max(first_day, period.start), min(add_months(first_day, 1), period.end))
            slots.append(MonthSlot(period_index=index, month=first_day, window=window))
    return slots


def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """Return the SQL 0/1 indicator of a condition, to be summed."""
    return case((condition, 1), else_=0)


def rate(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator as a float, or None (n/a) when the denominator is 0."""
    if not denominator or numerator is None:
        return None
    return float(numerator) / float(denominator)


def complement(value: float | None) -> float | None:
    """Return 1 − a rate, keeping n/a."""
    return None if value is None else 1.0 - value


def as_int(value: Any) -> int:
    """Return an aggregate as an int (SUM over no rows is NULL)."""
    return int(value or 0)


def as_money(value: Any) -> float:
    """Return a money aggregate as a float rounded to cents (Decimal in the database)."""
    if value is None:
        return 0.0
    return round(float(Decimal(str(value))), MONEY_DECIMALS)


def as_float(value: Any) -> float | None:
    """Return an aggregate as a float, keeping NULL as None."""
    return None if value is None else float(value)


def rounded(value: float | None, digits: int) -> float | None:
    """Round a figure, keeping n/a."""
    return None if value is None else round(value, digits)


def as_moment(value: date | datetime) -> datetime:
    """Return a point in time; a plain date means midnight at its start (like a period bound)."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time.min)


def as_date(value: Any) -> date | None:
    """Return a date column value as a date.

    SQLite hands back computed dates (CASE, date(), MAX over a subquery) as ISO text.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
