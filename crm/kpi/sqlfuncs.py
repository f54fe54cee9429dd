"""SQL expressions that SQLite and PostgreSQL spell differently: dates, time spans, id lists.

Each construct compiles to the dialect's own idiom, so KPI queries stay in SQLAlchemy Core and
give the same figures on both engines. The default compilation is the PostgreSQL / ANSI form.
Names are lower-case like the `func.*` functions they stand beside in queries.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, Float, Select, SQLColumnExpression, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType


class date_of(FunctionElement[date]):
    """The calendar date of a timestamp."""

    type = Date()
    name = "date_of"
    inherit_cache = True


class add_days(FunctionElement[date]):
    """A date plus a whole number of days (the number is a trusted int, rendered inline)."""

    type = Date()
    name = "add_days"
    inherit_cache = True

    def __init__(self, day: SQLColumnExpression[Any], days: int, **kwargs: Any) -> None:
        super().__init__(day, literal_column(str(int(days))), **kwargs)


class week_start(FunctionElement[date]):
    """The Monday of the ISO week of a date or timestamp."""

    type = Date()
    name = "week_start"
    inherit_cache = True


class hours_between(FunctionElement[float]):
    """Hours from the first timestamp to the second (fractional)."""

    type = Float()
    name = "hours_between"
    inherit_cache = True


class member_of(FunctionElement[Any]):
    """`column IN (subquery)` for a small, uncorrelated id list (e.g. the reps in scope).

    PostgreSQL plans `IN (subquery)` as a hash join and then scans whole tables; written as
    `= ANY(ARRAY(subquery))` the list is computed once and the (rep_id, date) indexes are used.
    """

    # Not Boolean: SQLite would then compare the whole IN (…) with 1, which no index serves.
    type = NullType()
    name = "member_of"
    inherit_cache = True

    def __init__(self, column: SQLColumnExpression[Any], query: Select[Any], **kwargs: Any) -> None:
        # Never correlate: the list means the same whatever the enclosing query joins.
        super().__init__(column, query.correlate(None).scalar_subquery(), **kwargs)


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


@compiles(date_of)
def _date_of_default(element: date_of, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"CAST({value} AS DATE)"


@compiles(date_of, "sqlite")
def _date_of_sqlite(element: date_of, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"date({value})"


@compiles(add_days)
def _add_days_default(element: add_days, compiler: SQLCompiler, **kw: Any) -> str:
    value, days = _args(element, compiler, **kw)
    # date + integer is a date in PostgreSQL.
    return f"(CAST({value} AS DATE) + {days})"


@compiles(add_days, "sqlite")
def _add_days_sqlite(element: add_days, compiler: SQLCompiler, **kw: Any) -> str:
    value, days = _args(element, compiler, **kw)
    return f"date(julianday({value}) + {days})"


@compiles(week_start)
def _week_start_default(element: week_start, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    # date_trunc('week') starts weeks on Monday, like ISO 8601.
    return f"CAST(date_trunc('week', {value}) AS DATE)"


@compiles(week_start, "sqlite")
def _week_start_sqlite(element: week_start, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    # 'weekday 0' moves forward to Sunday (or stays on one); six days back is that week's Monday.
    return f"date({value}, 'weekday 0', '-6 days')"


@compiles(hours_between)
def _hours_between_default(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 3600.0)"


@compiles(hours_between, "sqlite")
def _hours_between_sqlite(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"((julianday({end}) - julianday({start})) * 24.0)"


@compiles(member_of)
def _member_of_default(element: member_of, compiler: SQLCompiler, **kw: Any) -> str:
    column, query = _args(element, compiler, **kw)
    return f"({column} = ANY(ARRAY{query}))"


@compiles(member_of, "sqlite")
def _member_of_sqlite(element: member_of, compiler: SQLCompiler, **kw: Any) -> str:
    column, query = _args(element, compiler, **kw)
    return f"({column} IN {query})"
