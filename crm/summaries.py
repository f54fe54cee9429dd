"""Summary data kept exact by the write path: rep day / month tallies, order customers, first dates.

`rep_day_stats` holds, per rep and day, the tallies of every KPI that adds up over reps and days
(see crm.models.RepDayStat); `day_stats` the same summed over all reps (the whole-company
overview reads one row a day); `rep_month_stats` the same summed per rep and calendar month (a
leaderboard of a quarter reads three rows a rep); `rep_month_customers` per rep and month the
customers with live orders and their order counts (the distinct-customer loyalty figures);
customers.first_order_on / first_won_on the date of the
customer's first live order and of its first live won opportunity (independent of the
customer's own recycle-bin state: every reader keeps live customers only). KPI reads (crm.kpi,
crm.appraisal) use them instead of scanning the raw tables.

They never go stale: listeners on every ORM Session collect, before each flush, the (rep, day)
keys and customers that the flush's new, changed and deleted records touch (with the OLD rep, day
and customer of a changed record, from the attribute history), and after the flush recompute
exactly those rows from the raw tables in the same transaction (delete + insert; each a small
indexed query). On PostgreSQL concurrent refreshes take turns under an advisory transaction
lock (see _take_turns). Writes that bypass the ORM unit of work (bulk Core inserts in crm.seed
and crm.importing) call `rebuild` or `refresh_records` themselves. `verify` compares the stored
rows with a from-scratch recomputation; `python -m crm summaries rebuild|verify` runs them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Delete,
    Insert,
    Integer,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    case,
    cast,
    delete,
    event,
    except_,
    extract,
    func,
    insert,
    inspect,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import InstanceState, Session, UOWTransaction
from sqlalchemy.orm.attributes import set_committed_value

from crm.models import (
    Complaint,
    Customer,
    DayStat,
    Interaction,
    InteractionKind,
    Opportunity,
    Order,
    PipelineStage,
    RepDayStat,
    RepMonthCustomers,
    RepMonthStat,
    StageKind,
    SurveyResponse,
)
from crm.periods import add_months, month_start

T = TypeVar("T")
Key = tuple[int, date]  # (rep_id, day)
MonthKey = tuple[int, date]  # (rep_id, first day of the month)

# Survey thresholds (SPEC §5); crm.kpi.satisfaction reads the tallies built with them.
SATISFIED_MIN = 4  # overall score that counts as satisfied for CSAT %
PROMOTER_MIN = 9  # recommend 9–10
DETRACTOR_MAX = 6  # recommend 0–6
DIMENSIONS = ("quality", "service", "price", "after_sales")
SECONDS_PER_DAY = 86_400
MONEY_DECIMALS = 2
# How SQLAlchemy's SQLite dialect stores DateTime values (summary statements bind them as text).
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
# Touched days of one rep closer than this are recomputed as one range (one index range scan).
MERGE_GAP_DAYS = 7
# Ranges per DELETE / INSERT … SELECT, so a large refresh never builds a huge statement.
RANGES_PER_STATEMENT = 100
IDS_PER_STATEMENT = 500
VERIFY_REPORT_LIMIT = 50
# Key of the PostgreSQL advisory lock that makes summary refreshes take turns ("CRMS").
LOCK_NAMESPACE = 0x43524D53
PENDING_KEY = "crm.summaries.pending"
SYNC_KEY = "crm.summaries.sync_customers"

MEASURES: tuple[str, ...] = (
    "interactions",
    "visits",
    "calls",
    "orders",
    "revenue",
    "responses",
    "csat_sum",
    "csat_good",
    "recommend_n",
    "promoters",
    "detractors",
    *(f"{name}_{part}" for name in DIMENSIONS for part in ("sum", "n")),
    "won",
    "lost",
    "won_amount",
    "complaints_resolved",
    "complaints_on_time",
    "resolution_seconds",
)
MONEY_MEASURES = frozenset({"revenue", "won_amount"})
STATS: Table = RepDayStat.__table__  # type: ignore[assignment]
DAYS: Table = DayStat.__table__  # type: ignore[assignment]
CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
MONTHS: Table = RepMonthStat.__table__  # type: ignore[assignment]
ORDER_MONTHS: Table = RepMonthCustomers.__table__  # type: ignore[assignment]
# rep_month_customers packs customer ids and order counts as little-endian uint32 arrays.
PACKED = np.dtype("<u4")
ORDER_MONTH_ROWS_PER_INSERT = 1_000


@dataclass(frozen=True)
class _Source:
    """How one record table feeds rep_day_stats."""

    model: Any
    rep: str  # attribute holding the rep the record counts for
    day: str  # attribute holding the record's date (or timestamp)
    timestamp: bool  # the day attribute is a timestamp: the day is its date
    feeds_customer: bool  # its rows decide customers.first_order_on / first_won_on


SOURCES: tuple[_Source, ...] = (
    _Source(Interaction, "rep_id", "occurred_at", timestamp=True, feeds_customer=False),
    _Source(Order, "rep_id", "ordered_on", timestamp=False, feeds_customer=True),
    _Source(SurveyResponse, "rep_id", "responded_on", timestamp=False, feeds_customer=False),
    _Source(Opportunity, "owner_id", "closed_on", timestamp=False, feeds_customer=True),
    _Source(Complaint, "assignee_id", "resolved_at", timestamp=True, feeds_customer=False),
)
SOURCE_OF: dict[type, _Source] = {source.model: source for source in SOURCES}


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild wrote: rep_day_stats rows, customers with a first order / won deal, seconds taken."""

    rep_days: int
    customers_with_orders: int
    customers_with_wins: int
    seconds: float


# --------------------------------------------------------------------------------------------
# The recomputation (shared by refresh, rebuild and verify)


def _day_of(column: Any, *, timestamp: bool, dialect: str) -> ColumnElement[Any]:
    """Return the date of a record: the column itself, or the calendar date of a timestamp."""
    if not timestamp:
        result: ColumnElement[Any] = column
        return result
    return func.date(column) if dialect == "sqlite" else cast(column, Date)


def _seconds_between(start: Any, end: Any, *, dialect: str) -> ColumnElement[Any]:
    """Return whole seconds from start to end (rounded per record, so sums are exact integers)."""
    if dialect == "sqlite":
        span = (func.julianday(end) - func.julianday(start)) * SECONDS_PER_DAY
    else:
        span = extract("epoch", end - start)
    return cast(func.round(span), BigInteger)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def _live_customer(column: Any, *, nullable: bool = False) -> ColumnElement[bool]:
    # The recycle bin is small and partially indexed: NOT IN it costs one hash probe per record.
    alive = column.not_in(select(Customer.id).where(Customer.deleted_at.is_not(None)))
    return or_(column.is_(None), alive) if nullable else alive


def _in_ranges(rep: Any, day: Any, count: int, *, timestamp: bool) -> ColumnElement[bool]:
    """Return the WHERE clause of rows of `count` bound (rep, first day, last day) ranges (see _range_params)."""
    clauses = []
    for i in range(count):
        rep_id = bindparam(f"rep{i}", type_=Integer())
        if timestamp:
            since, until = bindparam(f"from_at{i}", type_=DateTime()), bindparam(f"until_at{i}", type_=DateTime())
            clauses.append(and_(rep == rep_id, day >= since, day < until))
        else:
            first, last = bindparam(f"first{i}", type_=Date()), bindparam(f"last{i}", type_=Date())
            clauses.append(and_(rep == rep_id, day >= first, day <= last))
    return or_(*clauses)


def _range_params(ranges: Sequence[tuple[int, date, date]]) -> dict[str, Any]:
    """Return the values of the bound parameters of _in_ranges for these ranges."""
    params: dict[str, Any] = {}
    for i, (rep_id, first, last) in enumerate(ranges):
        params[f"rep{i}"] = rep_id
        params[f"first{i}"], params[f"last{i}"] = first, last
        params[f"from_at{i}"] = datetime.combine(first, clock_time.min)
        params[f"until_at{i}"] = datetime.combine(last + timedelta(days=1), clock_time.min)
    return params


def _measures(source: _Source, *, dialect: str) -> dict[str, ColumnElement[Any]]:
    """Return the aggregate expressions one source contributes, by measure name."""
    if source.model is Interaction:
        i = Interaction
        return {
            "interactions": func.count(),
            "visits": _count_if(i.kind == InteractionKind.VISIT.value),
            "calls": _count_if(i.kind == InteractionKind.CALL.value),
        }
    if source.model is Order:
        return {"orders": func.count(), "revenue": func.sum(Order.amount)}
    if source.model is SurveyResponse:
        s = SurveyResponse
        columns: dict[str, ColumnElement[Any]] = {
            "responses": func.count(),
            "csat_sum": func.sum(s.overall),
            "csat_good": _count_if(s.overall >= SATISFIED_MIN),
            "recommend_n": func.count(s.recommend),
            "promoters": _count_if(s.recommend >= PROMOTER_MIN),
            "detractors": _count_if(s.recommend <= DETRACTOR_MAX),
        }
        for name in DIMENSIONS:
            # SUM and COUNT of a column both skip NULLs: missing dimension scores are ignored.
            columns[f"{name}_sum"] = func.coalesce(func.sum(getattr(s, name)), 0)
            columns[f"{name}_n"] = func.count(getattr(s, name))
        return columns
    if source.model is Opportunity:
        is_won = PipelineStage.kind == StageKind.WON.value
        return {
            "won": _count_if(is_won),
            "lost": _count_if(PipelineStage.kind == StageKind.LOST.value),
            "won_amount": func.coalesce(func.sum(case((is_won, Opportunity.amount), else_=None)), 0),
        }
    c = Complaint
    return {
        "complaints_resolved": func.count(),
        "complaints_on_time": _count_if(c.resolved_at <= c.due_at),
        "resolution_seconds": func.sum(_seconds_between(c.opened_at, c.resolved_at, dialect=dialect)),
    }


def _source_select(source: _Source, *, dialect: str, ranges: int | None) -> Select[*tuple[Any, ...]]:
    """Select (day, rep_id, every measure) of one source, grouped by rep and day."""
    model = source.model
    rep, stamp = getattr(model, source.rep), getattr(model, source.day)
    day = _day_of(stamp, timestamp=source.timestamp, dialect=dialect)
    own = _measures(source, dialect=dialect)
    zero: ColumnElement[Any] = literal_column("0")
    columns = [day.label("day"), rep.label("rep_id"), *(own.get(m, zero).label(m) for m in MEASURES)]
    where: list[ColumnElement[bool]] = [
        model.deleted_at.is_(None),
        stamp.is_not(None),
        _live_customer(model.customer_id, nullable=model is Opportunity),
    ]
    if ranges is not None:
        where.append(_in_ranges(rep, stamp, ranges, timestamp=source.timestamp))
    query = select(*columns).where(*where)
    if model is Opportunity:
        # Two comparisons, not IN (…): the statement then compiles once with no list to expand.
        query = query.join(PipelineStage, PipelineStage.key == Opportunity.stage).where(
            or_(PipelineStage.kind == StageKind.WON.value, PipelineStage.kind == StageKind.LOST.value)
        )
    return query.group_by(rep, day)


def stats_select(*, dialect: str, ranges: int | None = None) -> Select[*tuple[Any, ...]]:
    """Select rep_day_stats as recomputed from the raw tables (all rows, or those of `ranges` bound ranges)."""
    parts = union_all(*(_source_select(source, dialect=dialect, ranges=ranges) for source in SOURCES)).subquery("parts")
    return select(parts.c.day, parts.c.rep_id, *(func.sum(parts.c[m]).label(m) for m in MEASURES)).group_by(
        parts.c.day, parts.c.rep_id
    )


def _first_order_select() -> Select[*tuple[Any, ...]]:
    return (
        select(Order.customer_id.label("customer_id"), func.min(Order.ordered_on).label("first_on"))
        .where(Order.deleted_at.is_(None))
        .group_by(Order.customer_id)
    )


def _first_won_select() -> Select[*tuple[Any, ...]]:
    o = Opportunity
    return (
        select(o.customer_id.label("customer_id"), func.min(o.closed_on).label("first_on"))
        .join(PipelineStage, PipelineStage.key == o.stage)
        .where(
            o.deleted_at.is_(None),
            o.customer_id.is_not(None),
            o.closed_on.is_not(None),
            PipelineStage.kind == StageKind.WON.value,
        )
        .group_by(o.customer_id)
    )


# --------------------------------------------------------------------------------------------
# Refresh, rebuild, verify


def _chunks(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def day_ranges(keys: Iterable[Key]) -> list[tuple[int, date, date]]:
    """Merge (rep, day) keys into (rep, first day, last day) ranges, days closer than MERGE_GAP_DAYS joined."""
    days_by_rep: dict[int, set[date]] = defaultdict(set)
    for rep_id, day in keys:
        days_by_rep[rep_id].add(day)
    ranges: list[tuple[int, date, date]] = []
    for rep_id in sorted(days_by_rep):
        days = sorted(days_by_rep[rep_id])
        first = last = days[0]
        for day in days[1:]:
            if (day - last).days > MERGE_GAP_DAYS:
                ranges.append((rep_id, first, last))
                first = day
            last = day
        ranges.append((rep_id, first, last))
    return ranges


@dataclass(frozen=True)
class _DriverStatement:
    """A Core statement compiled once for SQLite: its SQL, parameter order and constant values."""

    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]


@lru_cache(maxsize=128)
def _for_driver(statement: Any) -> _DriverStatement:
    from sqlalchemy.dialects import sqlite

    compiled = statement.compile(dialect=sqlite.dialect())
    sql = str(compiled)
    if "POSTCOMPILE" in sql:
        raise ValueError("summary statements run on the driver cannot hold IN (…) lists of parameters")
    constants = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
    return _DriverStatement(sql, tuple(compiled.positiontup or ()), constants)


def _sqlite_value(value: Any) -> Any:
    """Return a parameter as SQLAlchemy stores it in SQLite (ISO text for dates and times)."""
    if isinstance(value, datetime):
        return value.strftime(SQLITE_DATETIME)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _run(connection: Connection, statement: Any, params: dict[str, Any] | list[dict[str, Any]]) -> None:
    """Execute a summary statement; on SQLite straight on the driver connection.

    A save runs six of these; SQLAlchemy's per-execution work costs more than SQLite's on a few
    rows, and on SQLite the save holds the database's only write lock meanwhile.
    """
    if connection.dialect.name != "sqlite":
        connection.execute(statement, params)
        return
    prepared = _for_driver(statement)
    driver = connection.connection.driver_connection
    assert driver is not None
    rows = params if isinstance(params, list) else [params]
    values = [
        tuple(_sqlite_value(row[name] if name in row else prepared.constants[name]) for name in prepared.names)
        for row in rows
    ]
    if len(values) == 1:
        driver.execute(prepared.sql, values[0])
    else:
        driver.executemany(prepared.sql, values)


def refresh_rep_days(session: Session, keys: Iterable[Key]) -> None:
    """Recompute the rep_day_stats rows of these (rep_id, day) keys from the raw tables."""
    ranges = day_ranges(keys)
    if not ranges:
        return
    connection = session.connection()
    _take_turns(connection)
    for chunk in _chunks(ranges, RANGES_PER_STATEMENT):
        remove, recompute = _rep_day_statements(connection.dialect.name, len(chunk))
        params = _range_params(chunk)
        _run(connection, remove, params)
        _run(connection, recompute, params)
    for span_chunk in _chunks(day_spans(ranges), RANGES_PER_STATEMENT):
        remove, recompute = _day_statements(len(span_chunk))
        params = {}
        for i, (first, last) in enumerate(span_chunk):
            params[f"first{i}"], params[f"last{i}"] = first, last
        _run(connection, remove, params)
        _run(connection, recompute, params)
    refresh_rep_months(session, range_months(ranges))


def range_months(ranges: Iterable[tuple[int, date, date]]) -> set[MonthKey]:
    """Return the (rep, month) keys of every month the (rep, first day, last day) ranges touch."""
    keys: set[MonthKey] = set()
    for rep_id, first, last in ranges:
        month = month_start(first)
        while month <= last:
            keys.add((rep_id, month))
            month = add_months(month, 1)
    return keys


def _month_params(keys: Iterable[MonthKey]) -> list[dict[str, Any]]:
    return [{"rep": rep_id, "month": month, "next": add_months(month, 1)} for rep_id, month in sorted(set(keys))]


def refresh_rep_months(session: Session, keys: Iterable[MonthKey]) -> None:
    """Recompute the rep_month_stats rows of these (rep, month) keys from rep_day_stats."""
    params = _month_params(keys)
    if not params:
        return
    connection = session.connection()
    remove, recompute = _rep_month_statements()
    _run(connection, remove, params)
    _run(connection, recompute, params)


@lru_cache(maxsize=1)
def _rep_month_statements() -> tuple[Delete, Insert]:
    """Return the DELETE and INSERT … SELECT of one bound (rep, month) of rep_month_stats."""
    rep_id, month = bindparam("rep", type_=Integer()), bindparam("month", type_=Date())
    following = bindparam("next", type_=Date())
    remove = delete(MONTHS).where(MONTHS.c.rep_id == rep_id, MONTHS.c.month == month)
    sums = select(
        month.label("month"),
        STATS.c.rep_id,
        *(func.sum(STATS.c[m]).label(m) for m in MEASURES),
    ).where(STATS.c.rep_id == rep_id, STATS.c.day >= month, STATS.c.day < following)
    recompute = insert(MONTHS).from_select(["month", "rep_id", *MEASURES], sums.group_by(STATS.c.rep_id))
    return remove, recompute


def _month_of(column: Any, *, dialect: str) -> ColumnElement[Any]:
    """Return the first day of the month of a date column."""
    if dialect == "sqlite":
        return func.date(column, "start of month")
    return cast(func.date_trunc("month", column), Date)


def months_select(*, dialect: str) -> Select[*tuple[Any, ...]]:
    """Select rep_month_stats as the sums of rep_day_stats per rep and month."""
    month = _month_of(STATS.c.day, dialect=dialect)
    return select(month.label("month"), STATS.c.rep_id, *(func.sum(STATS.c[m]).label(m) for m in MEASURES)).group_by(
        month, STATS.c.rep_id
    )


# --- rep_month_customers -------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderMonth:
    """One rep_month_customers row: packed customer ids (ascending) and their live orders (see unpack)."""

    rep_id: int
    month: date
    customer_ids: bytes
    order_counts: bytes


def pack(values: Sequence[int]) -> bytes:
    """Pack non-negative integers as little-endian uint32 (the rep_month_customers arrays)."""
    return np.asarray(values, dtype=PACKED).tobytes()


def unpack(blob: bytes) -> np.ndarray[Any, np.dtype[np.uint32]]:
    """Unpack a rep_month_customers array."""
    return np.frombuffer(blob, dtype=PACKED)


def _order_month_row(rep_id: int, month: date, pairs: Sequence[tuple[int, int]]) -> dict[str, Any]:
    return {
        "month": month,
        "rep_id": rep_id,
        "customer_ids": pack([customer_id for customer_id, _ in pairs]),
        "order_counts": pack([count for _, count in pairs]),
    }


@lru_cache(maxsize=1)
def _order_month_statements() -> tuple[Select[*tuple[Any, ...]], Delete]:
    """Return the per-customer order count of one bound (rep, month), and the DELETE of its row."""
    o = Order
    rep_id, month = bindparam("rep", type_=Integer()), bindparam("month", type_=Date())
    counts = (
        select(o.customer_id, func.count())
        .where(o.rep_id == rep_id, o.ordered_on >= month, o.ordered_on < bindparam("next", type_=Date()))
        .where(o.deleted_at.is_(None))
        .group_by(o.customer_id)
        .order_by(o.customer_id)
    )
    remove = delete(ORDER_MONTHS).where(ORDER_MONTHS.c.rep_id == rep_id, ORDER_MONTHS.c.month == month)
    return counts, remove


def refresh_order_months(session: Session, keys: Iterable[MonthKey]) -> None:
    """Recompute the rep_month_customers rows of these (rep, month) keys from the live orders."""
    params = _month_params(keys)
    if not params:
        return
    connection = session.connection()
    _take_turns(connection)
    counts, remove = _order_month_statements()
    rows = []
    for bound in params:
        pairs = [(int(customer_id), int(n)) for customer_id, n in connection.execute(counts, bound)]
        if pairs:
            rows.append(_order_month_row(bound["rep"], bound["month"], pairs))
    connection.execute(remove, [{"rep": bound["rep"], "month": bound["month"]} for bound in params])
    if rows:
        connection.execute(insert(ORDER_MONTHS), rows)


def _order_months_recomputed(connection: Connection) -> Iterator[dict[str, Any]]:
    """Yield every rep_month_customers row as recomputed from the live orders."""
    o = Order
    month = _month_of(o.ordered_on, dialect=connection.dialect.name)
    query = (
        select(o.rep_id, month.label("month"), o.customer_id, func.count())
        .where(o.deleted_at.is_(None))
        .group_by(o.rep_id, month, o.customer_id)
        .order_by(o.rep_id, month, o.customer_id)
    )
    current: tuple[int, date] | None = None
    pairs: list[tuple[int, int]] = []
    for rep_id, first, customer_id, n in connection.execute(query).all():
        key = (int(rep_id), _as_date(first))
        if key != current:
            if current is not None:
                yield _order_month_row(current[0], current[1], pairs)
            current, pairs = key, []
        pairs.append((int(customer_id), int(n)))
    if current is not None:
        yield _order_month_row(current[0], current[1], pairs)


def order_months(
    session: Session, *, months: Sequence[date], rep_scope: ColumnElement[bool] | None = None
) -> list[OrderMonth]:
    """Return the rep_month_customers rows of these months (of the reps matching `rep_scope`)."""
    if not months:
        return []
    r = ORDER_MONTHS.c
    query = select(r.rep_id, r.month, r.customer_ids, r.order_counts).where(r.month.in_(sorted(set(months))))
    if rep_scope is not None:
        query = query.where(rep_scope)
    return [
        OrderMonth(int(rep_id), _as_date(month), bytes(ids), bytes(counts))
        for rep_id, month, ids, counts in session.execute(query).all()
    ]


# Built once per shape and reused with new values: building these statements costs more than
# running them on a few rows.
@lru_cache(maxsize=32)
def _rep_day_statements(dialect: str, count: int) -> tuple[Delete, Insert]:
    """Return the DELETE and INSERT … SELECT that recompute `count` bound rep day ranges."""
    remove = delete(STATS).where(_in_ranges(STATS.c.rep_id, STATS.c.day, count, timestamp=False))
    recompute = insert(STATS).from_select(["day", "rep_id", *MEASURES], stats_select(dialect=dialect, ranges=count))
    return remove, recompute


@lru_cache(maxsize=32)
def _day_statements(count: int) -> tuple[Delete, Insert]:
    """Return the DELETE and INSERT … SELECT that recompute day_stats over `count` bound day spans."""
    remove = delete(DAYS).where(_in_spans(DAYS.c.day, count))
    recompute = insert(DAYS).from_select(["day", *MEASURES], days_select(where=_in_spans(STATS.c.day, count)))
    return remove, recompute


def _take_turns(connection: Connection) -> None:
    """Make concurrent summary refreshes run one after the other (PostgreSQL).

    A refresh deletes and re-inserts rows computed from what its statements see; two at once
    could each miss the other's records or insert the same key twice. Under this transaction
    lock the second one waits until the first commits, and its statements (READ COMMITTED)
    then see the first one's records and rows. SQLite needs nothing: its writers already run
    one at a time.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(LOCK_NAMESPACE)))


def day_spans(ranges: Iterable[tuple[int, date, date]]) -> list[tuple[date, date]]:
    """Merge the days of rep ranges into disjoint [first, last] day spans."""
    spans: list[tuple[date, date]] = []
    for first, last in sorted((first, last) for _, first, last in ranges):
        if spans and first <= spans[-1][1] + timedelta(days=1):
            spans[-1] = (spans[-1][0], max(spans[-1][1], last))
        else:
            spans.append((first, last))
    return spans


def _in_spans(day: Any, count: int) -> ColumnElement[bool]:
    """Return the WHERE clause of days in `count` bound [first{i}, last{i}] spans."""
    spans = []
    for i in range(count):
        spans.append(and_(day >= bindparam(f"first{i}", type_=Date()), day <= bindparam(f"last{i}", type_=Date())))
    return or_(*spans)


def days_select(*, where: ColumnElement[bool] | None = None) -> Select[*tuple[Any, ...]]:
    """Select day_stats as the sums of rep_day_stats over the reps (all days, or those matching)."""
    query = select(STATS.c.day, *(func.sum(STATS.c[m]).label(m) for m in MEASURES)).group_by(STATS.c.day)
    return query if where is None else query.where(where)


def refresh_customers(session: Session, ids: Iterable[int]) -> None:
    """Recompute first_order_on and first_won_on of these customers from their live orders and deals."""
    wanted = _update_first_dates(session, ids)
    _sync_loaded_customers(session, wanted)


def _update_first_dates(session: Session, ids: Iterable[int]) -> list[int]:
    """Store the first live order / won deal dates of these customers; return their ids."""
    wanted = sorted({int(i) for i in ids if i is not None})
    connection = session.connection()
    _take_turns(connection)
    for chunk in _chunks(wanted, IDS_PER_STATEMENT):
        connection.execute(_first_dates_update(), {"ids": list(chunk)})
    return wanted


@lru_cache(maxsize=1)
def _first_dates_update() -> Update:
    """Return the UPDATE of first_order_on / first_won_on of the customers in the bound list `ids`."""
    o, w = Order, Opportunity
    first_order = (
        select(func.min(o.ordered_on)).where(o.customer_id == CUSTOMERS.c.id, o.deleted_at.is_(None)).scalar_subquery()
    )
    first_won = (
        select(func.min(w.closed_on))
        .join(PipelineStage, PipelineStage.key == w.stage)
        .where(
            w.customer_id == CUSTOMERS.c.id,
            w.deleted_at.is_(None),
            w.closed_on.is_not(None),
            PipelineStage.kind == StageKind.WON.value,
        )
        .scalar_subquery()
    )
    return (
        update(CUSTOMERS)
        .where(CUSTOMERS.c.id.in_(bindparam("ids", expanding=True)))
        .values(first_order_on=first_order, first_won_on=first_won)
    )


def _sync_loaded_customers(session: Session, ids: Sequence[int] | None) -> None:
    """Give Customer objects already in the session the stored first_* dates (no history, not dirty)."""
    loaded = {
        obj.id: obj
        for obj in list(session.identity_map.values())
        if isinstance(obj, Customer) and "id" in obj.__dict__ and (ids is None or obj.id in ids)
    }
    if not loaded:
        return
    connection = session.connection()
    for chunk in _chunks(sorted(loaded), IDS_PER_STATEMENT):
        rows = connection.execute(
            select(CUSTOMERS.c.id, CUSTOMERS.c.first_order_on, CUSTOMERS.c.first_won_on).where(
                CUSTOMERS.c.id.in_(list(chunk))
            )
        )
        for customer_id, first_order_on, first_won_on in rows:
            set_committed_value(loaded[customer_id], "first_order_on", first_order_on)
            set_committed_value(loaded[customer_id], "first_won_on", first_won_on)


def record_keys(
    session: Session, model: Any, *, ids: Iterable[int] | None = None, customer_ids: Iterable[int] | None = None
) -> set[Key]:
    """Return the (rep, day) keys of the given records, or of every record of the given customers."""
    source = SOURCE_OF[model]
    connection = session.connection()
    dialect = connection.dialect.name
    rep, stamp = getattr(model, source.rep), getattr(model, source.day)
    day = _day_of(stamp, timestamp=source.timestamp, dialect=dialect)
    column, values = (model.id, ids) if ids is not None else (model.customer_id, customer_ids)
    wanted = sorted(set(values or ()))
    keys: set[Key] = set()
    for chunk in _chunks(wanted, IDS_PER_STATEMENT):
        query = select(rep, day).where(column.in_(list(chunk)), stamp.is_not(None)).distinct()
        keys.update((int(rep_id), _as_date(value)) for rep_id, value in connection.execute(query))
    return keys


def refresh_records(session: Session, model: Any, ids: Iterable[int]) -> None:
    """Bring the summaries up to date after records were written without the ORM unit of work."""
    wanted = sorted(set(ids))
    if not wanted:
        return
    keys = record_keys(session, model, ids=wanted)
    refresh_rep_days(session, keys)
    if model is Order:
        refresh_order_months(session, {(rep_id, month_start(day)) for rep_id, day in keys})
    if SOURCE_OF[model].feeds_customer:
        connection = session.connection()
        customers: set[int] = set()
        for chunk in _chunks(wanted, IDS_PER_STATEMENT):
            customers.update(connection.scalars(select(model.customer_id).where(model.id.in_(list(chunk))).distinct()))
        refresh_customers(session, customers)


def rebuild(session: Session) -> Rebuilt:
    """Recompute every summary row from the raw tables (set-based: seconds on a million records)."""
    started = time.perf_counter()
    connection = session.connection()
    dialect = connection.dialect.name
    _take_turns(connection)
    connection.execute(delete(STATS))
    connection.execute(insert(STATS).from_select(["day", "rep_id", *MEASURES], stats_select(dialect=dialect)))
    connection.execute(delete(DAYS))
    connection.execute(insert(DAYS).from_select(["day", *MEASURES], days_select()))
    connection.execute(delete(MONTHS))
    connection.execute(insert(MONTHS).from_select(["month", "rep_id", *MEASURES], months_select(dialect=dialect)))
    connection.execute(delete(ORDER_MONTHS))
    batch: list[dict[str, Any]] = []
    for row in _order_months_recomputed(connection):
        batch.append(row)
        if len(batch) >= ORDER_MONTH_ROWS_PER_INSERT:
            connection.execute(insert(ORDER_MONTHS), batch)
            batch = []
    if batch:
        connection.execute(insert(ORDER_MONTHS), batch)
    # One UPDATE of the customers whose stored dates differ: a rebuild of exact data writes none.
    changed = _first_dates_diff().subquery("changed")
    connection.execute(
        update(CUSTOMERS)
        .where(CUSTOMERS.c.id == changed.c.id)
        .values(first_order_on=changed.c.first_order_on, first_won_on=changed.c.first_won_on)
    )
    counts = connection.execute(
        select(func.count(CUSTOMERS.c.first_order_on), func.count(CUSTOMERS.c.first_won_on))
    ).one()
    rep_days = connection.scalar(select(func.count()).select_from(STATS))
    _sync_loaded_customers(session, None)
    return Rebuilt(
        rep_days=int(rep_days or 0),
        customers_with_orders=int(counts[0]),
        customers_with_wins=int(counts[1]),
        seconds=time.perf_counter() - started,
    )


def _rounded(column: Any, name: str) -> ColumnElement[Any]:
    # Money sums are floats on SQLite: compare them to the cent.
    return func.round(column, MONEY_DECIMALS).label(name) if name in MONEY_MEASURES else column.label(name)


def verify(session: Session) -> list[str]:
    """Return the differences between the summaries and a from-scratch recomputation (empty when exact)."""
    connection = session.connection()
    dialect = connection.dialect.name
    expected = stats_select(dialect=dialect).subquery("expected")
    stored_rows = select(STATS.c.day, STATS.c.rep_id, *(_rounded(STATS.c[m], m) for m in MEASURES))
    expected_rows = select(expected.c.day, expected.c.rep_id, *(_rounded(expected.c[m], m) for m in MEASURES))
    stored_only = {_stats_key(row): row for row in connection.execute(except_(stored_rows, expected_rows))}
    expected_only = {_stats_key(row): row for row in connection.execute(except_(expected_rows, stored_rows))}
    problems: list[str] = []
    for key in sorted(set(stored_only) | set(expected_only)):
        rep_id, day = key
        where = f"rep_day_stats rep {rep_id} on {day.isoformat()}"
        stored, wanted = stored_only.get(key), expected_only.get(key)
        if stored is None:
            problems.append(f"{where}: missing")
        elif wanted is None:
            problems.append(f"{where}: should not exist")
        else:
            changed = [
                f"{m} {stored._mapping[m]} (expected {wanted._mapping[m]})"
                for m in MEASURES
                if _number(stored._mapping[m]) != _number(wanted._mapping[m])
            ]
            problems.append(f"{where}: " + ", ".join(changed))
    problems += _verify_days(session)
    problems += _verify_months(session)
    problems += _verify_order_months(session)
    problems += _verify_customers(session)
    if len(problems) > VERIFY_REPORT_LIMIT:
        return [*problems[:VERIFY_REPORT_LIMIT], f"… and {len(problems) - VERIFY_REPORT_LIMIT} more"]
    return problems


def _verdict(key: Any, stored: Container[Any], expected: Container[Any]) -> str:
    """Say how a summary row differs from its recomputation."""
    return "missing" if key not in stored else "should not exist" if key not in expected else "differs"


def _differing(
    connection: Connection, stored: Select[Any], expected: Select[Any], key: Callable[[Any], Any]
) -> list[tuple[Any, str]]:
    """Return (key, verdict) of the rows where two selects of the same columns disagree, in key order."""
    stored_only = {key(row) for row in connection.execute(except_(stored, expected))}
    expected_only = {key(row) for row in connection.execute(except_(expected, stored))}
    return [(k, _verdict(k, stored_only, expected_only)) for k in sorted(stored_only | expected_only)]


def _verify_days(session: Session) -> list[str]:
    connection = session.connection()
    stored_rows = select(DAYS.c.day, *(_rounded(DAYS.c[m], m) for m in MEASURES))
    expected = days_select().subquery("expected")
    expected_rows = select(expected.c.day, *(_rounded(expected.c[m], m) for m in MEASURES))
    return [
        f"day_stats on {day.isoformat()}: {verdict}"
        for day, verdict in _differing(connection, stored_rows, expected_rows, lambda row: _as_date(row.day))
    ]


def _verify_months(session: Session) -> list[str]:
    connection = session.connection()
    stored_rows = select(MONTHS.c.month, MONTHS.c.rep_id, *(_rounded(MONTHS.c[m], m) for m in MEASURES))
    expected = months_select(dialect=connection.dialect.name).subquery("expected")
    expected_rows = select(expected.c.month, expected.c.rep_id, *(_rounded(expected.c[m], m) for m in MEASURES))
    differing = _differing(connection, stored_rows, expected_rows, lambda row: (int(row.rep_id), _as_date(row.month)))
    return [f"rep_month_stats rep {rep_id} in {month:%Y-%m}: {verdict}" for (rep_id, month), verdict in differing]


def _verify_order_months(session: Session) -> list[str]:
    connection = session.connection()
    r = ORDER_MONTHS.c
    stored = {
        (int(row.rep_id), _as_date(row.month)): (bytes(row.customer_ids), bytes(row.order_counts))
        for row in connection.execute(select(r.rep_id, r.month, r.customer_ids, r.order_counts))
    }
    expected = {
        (row["rep_id"], row["month"]): (row["customer_ids"], row["order_counts"])
        for row in _order_months_recomputed(connection)
    }
    return [
        f"rep_month_customers rep {rep_id} in {month:%Y-%m}: {_verdict((rep_id, month), stored, expected)}"
        for rep_id, month in sorted(set(stored) | set(expected))
        if stored.get((rep_id, month)) != expected.get((rep_id, month))
    ]


def _first_dates_diff() -> Select[*tuple[Any, ...]]:
    """Select id, stored and recomputed first dates of the customers whose stored dates are wrong."""
    firsts = _first_order_select().subquery("first_orders")
    wins = _first_won_select().subquery("first_wins")
    c = CUSTOMERS.c
    return (
        select(
            c.id,
            firsts.c.first_on.label("first_order_on"),
            wins.c.first_on.label("first_won_on"),
            c.first_order_on.label("stored_order_on"),
            c.first_won_on.label("stored_won_on"),
        )
        .outerjoin(firsts, firsts.c.customer_id == c.id)
        .outerjoin(wins, wins.c.customer_id == c.id)
        .where(
            or_(
                c.first_order_on.is_distinct_from(firsts.c.first_on),
                c.first_won_on.is_distinct_from(wins.c.first_on),
            )
        )
    )


def _verify_customers(session: Session) -> list[str]:
    query = _first_dates_diff().order_by(CUSTOMERS.c.id).limit(VERIFY_REPORT_LIMIT + 1)
    return [
        f"customer {row.id}: first_order_on {_as_date(row.stored_order_on)} "
        f"(expected {_as_date(row.first_order_on)}), first_won_on {_as_date(row.stored_won_on)} "
        f"(expected {_as_date(row.first_won_on)})"
        for row in session.connection().execute(query)
    ]


def _stats_key(row: Any) -> Key:
    return int(row.rep_id), _as_date(row.day)


def _number(value: Any) -> float:
    return float(value or 0)


def _as_date(value: Any) -> Any:
    """Return a date column value as a date (SQLite hands back computed dates as ISO text)."""
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])


# --------------------------------------------------------------------------------------------
# Keeping the summaries exact on every ORM flush


@dataclass
class _Pending:
    """What a flush touches: rep days to recompute, customers whose first dates to recompute, and more."""

    keys: set[Key] = field(default_factory=set)
    order_months: set[MonthKey] = field(default_factory=set)  # (rep, month) of orders: rep_month_customers
    customers: set[int] = field(default_factory=set)
    toggled_customers: set[int] = field(default_factory=set)  # deleted_at changed: all their records
    stages: set[str] = field(default_factory=set)  # pipeline stages whose kind changed

    def __bool__(self) -> bool:
        return bool(self.keys or self.order_months or self.customers or self.toggled_customers or self.stages)


def _old_and_new(obj: Any, state: InstanceState[Any], name: str) -> tuple[Any, Any]:
    """Return an attribute's value before the pending change and after it.

    The tracked attributes load their old value when set (see the listeners at the end), so a
    change without a deleted value in its history was a change from NULL.
    """
    history = state.attrs[name].history
    if history.added or history.deleted:
        return (history.deleted[0] if history.deleted else None), (history.added[0] if history.added else None)
    if history.unchanged:
        return history.unchanged[0], history.unchanged[0]
    # Expired and untouched: load it (the flush has not started writing yet).
    value = getattr(obj, name) if state.key is not None else state.dict.get(name)
    return value, value


def _key(rep_id: Any, day: Any) -> Key | None:
    if rep_id is None or day is None:
        return None
    return int(rep_id), day.date() if isinstance(day, datetime) else day


def _collect(pending: _Pending, obj: Any, *, is_new: bool, is_deleted: bool) -> None:
    source = SOURCE_OF.get(type(obj))
    state: InstanceState[Any] = inspect(obj)
    if source is None:
        if isinstance(obj, Customer) and not is_new:
            old_deleted, new_deleted = _old_and_new(obj, state, "deleted_at")
            if (old_deleted is None) != (new_deleted is None) or is_deleted:
                pending.toggled_customers.add(obj.id)
        elif isinstance(obj, PipelineStage) and not is_new:
            old_kind, new_kind = _old_and_new(obj, state, "kind")
            if old_kind != new_kind or is_deleted:
                pending.stages.add(obj.key)
        return
    old_rep, new_rep = _old_and_new(obj, state, source.rep)
    old_day, new_day = _old_and_new(obj, state, source.day)
    old_customer, new_customer = _old_and_new(obj, state, "customer_id")
    states = []
    if not is_new:
        states.append((old_rep, old_day, old_customer))
    if not is_deleted:
        states.append((new_rep, new_day, new_customer))
    for rep_id, day, customer_id in states:
        key = _key(rep_id, day)
        if key is not None:
            pending.keys.add(key)
            if source.model is Order:
                pending.order_months.add((key[0], month_start(key[1])))
        if source.feeds_customer and customer_id is not None:
            pending.customers.add(int(customer_id))


def _pending(session: Session) -> _Pending:
    pending = session.info.get(PENDING_KEY)
    if not isinstance(pending, _Pending):
        pending = session.info[PENDING_KEY] = _Pending()
    return pending


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    """Note what the flush is about to change, while the old values are still known."""
    pending = _pending(session)
    for obj in session.new:
        _collect(pending, obj, is_new=True, is_deleted=False)
    for obj in session.deleted:
        _collect(pending, obj, is_new=False, is_deleted=True)
    for obj in session.dirty:
        if session.is_modified(obj, include_collections=False):
            _collect(pending, obj, is_new=False, is_deleted=False)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: UOWTransaction) -> None:
    """Recompute what the flush touched, in its transaction, from the rows it just wrote."""
    pending = session.info.pop(PENDING_KEY, None)
    if not isinstance(pending, _Pending) or not pending:
        return
    keys, customers = set(pending.keys), set(pending.customers)
    if pending.toggled_customers:
        for source in SOURCES:
            keys |= record_keys(session, source.model, customer_ids=pending.toggled_customers)
    if pending.stages:
        connection = session.connection()
        o = Opportunity
        for rep_id, closed_on, customer_id in connection.execute(
            select(o.owner_id, o.closed_on, o.customer_id).where(o.stage.in_(sorted(pending.stages))).distinct()
        ):
            if closed_on is not None:
                keys.add((int(rep_id), _as_date(closed_on)))
            if customer_id is not None:
                customers.add(int(customer_id))
    refresh_rep_days(session, keys)
    refresh_order_months(session, pending.order_months)
    if customers:
        # Customer objects of the session get the new values once the flush has settled.
        session.info.setdefault(SYNC_KEY, set()).update(_update_first_dates(session, customers))


@event.listens_for(Session, "after_flush_postexec")
def _after_flush_postexec(session: Session, _context: UOWTransaction) -> None:
    """Give loaded Customer objects their recomputed first dates, once the flush has settled."""
    ids = session.info.pop(SYNC_KEY, None)
    if ids:
        _sync_loaded_customers(session, sorted(ids))


def _keep_old_value(_target: Any, value: Any, _old: Any, _initiator: Any) -> Any:
    return value


# A changed rep, date or customer must refresh the OLD key too: make the ORM load the old value
# of these attributes before it is replaced, even when the object's attributes were expired.
for _source in SOURCES:
    for _name in (_source.rep, _source.day, "customer_id"):
        event.listen(getattr(_source.model, _name), "set", _keep_old_value, active_history=True)
event.listen(Customer.deleted_at, "set", _keep_old_value, active_history=True)
event.listen(PipelineStage.kind, "set", _keep_old_value, active_history=True)
