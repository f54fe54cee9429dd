"""Shared field validators and write helpers for the aggregate modules.

Each `clean_*` function checks one raw form value (as a widget gives it: a string, a number, a
date), records at most one FieldError on the Validator and returns the cleaned value, or None
when the value is empty or bad. A write function cleans every field first and then calls
`Validator.raise_if_any()`, so the user sees every bad field at once.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import ColumnElement, Executable, Result, Select, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.orm.exc import StaleDataError

from crm.access import Actor, customer_visible, get_visible_customer, record_visible, require_rep_assignable
from crm.audit import diff, record, snapshot
from crm.errors import NotFoundError, Validator
from crm.models import AuditEvent, Base, Customer, User

# Phone numbers: digits, spaces, +, -, parentheses, with 5–20 digits in all.
PHONE_ALLOWED = re.compile(r"^[0-9 +\-()]+$")
PHONE_MIN_DIGITS = 5
PHONE_MAX_DIGITS = 20
PHONE_SEPARATORS = (" ", "-", "(", ")", "+")
# Deliberately loose: one @, no spaces, a dot in the domain. Real checking is sending mail.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
EMAIL_MAX_LENGTH = 254
# Largest amount Numeric(14, 2) holds.
MONEY_MAX = Decimal("999999999999.99")
MONEY_QUANTUM = Decimal("0.01")
# A date is typed in the user's local day, which runs up to 14 h ahead of UTC (UTC+14), so a
# date is "in the future" only once it is after the local date anywhere on earth.
MAX_UTC_OFFSET = timedelta(hours=14)
TRUE_WORDS = frozenset({"yes", "true", "y", "1"})
FALSE_WORDS = frozenset({"no", "false", "n", "0"})
LIKE_ESCAPE = "\\"
# Statements scoped to an actor are built once per actor and kept for this many actors: building
# the scope clause costs more than running the query, and the same people save again and again.
ACTOR_STATEMENTS_CACHED = 512

RawText = str | None
RawInt = int | float | str | None
RawNumber = int | float | str | Decimal | None
RawDate = date | str | None
RawDateTime = datetime | date | str | None
RawFlag = bool | str | None


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def clean_text(v: Validator, field: str, value: RawText, *, required: bool = False, max_length: int) -> str | None:
    """Strip a text value; refuse it when missing (if required) or longer than max_length."""
    if _blank(value):
        if required:
            v.add(field, "error.required")
        return None
    text = str(value).strip()
    if len(text) > max_length:
        v.add(field, "error.too_long", max=max_length)
        return None
    return text


def choice_values(choices: type[enum.Enum] | Iterable[str]) -> list[str]:
    """Return the allowed values of an enum class or an iterable of strings."""
    if isinstance(choices, type) and issubclass(choices, enum.Enum):
        return [str(member.value) for member in choices]
    return [str(item) for item in choices]


def clean_choice(
    v: Validator, field: str, value: RawText, choices: type[enum.Enum] | Iterable[str], *, required: bool = False
) -> str | None:
    """Return the value when it is one of the choices (case-insensitively), else record invalid_choice."""
    if _blank(value):
        if required:
            v.add(field, "error.required")
        return None
    allowed = choice_values(choices)
    text = str(value).strip().lower()
    for option in allowed:
        if option.lower() == text:
            return option
    v.add(field, "error.invalid_choice", choices=", ".join(allowed))
    return None


def clean_email(
    v: Validator, field: str, value: RawText, *, required: bool = False, max_length: int = EMAIL_MAX_LENGTH
) -> str | None:
    """Return a plausible e-mail address, lower-cased in the domain part."""
    text = clean_text(v, field, value, required=required, max_length=max_length)
    if text is None:
        return None
    if not EMAIL_PATTERN.match(text):
        v.add(field, "error.invalid_email")
        return None
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def phone_digits(value: str) -> str:
    """Return only the digits of a phone number (how duplicates are compared)."""
    return "".join(ch for ch in value if ch.isdigit())


def clean_phone(
    v: Validator, field: str, value: RawText, *, required: bool = False, max_length: int = 32
) -> str | None:
    """Return a phone number made of digits, spaces, + - ( ) with 5–20 digits."""
    text = clean_text(v, field, value, required=required, max_length=max_length)
    if text is None:
        return None
    digits = len(phone_digits(text))
    if not PHONE_ALLOWED.match(text) or not PHONE_MIN_DIGITS <= digits <= PHONE_MAX_DIGITS:
        v.add(field, "error.invalid_phone")
        return None
    return " ".join(text.split())


def clean_int(
    v: Validator, field: str, value: RawInt, *, required: bool = False, minimum: int, maximum: int
) -> int | None:
    """Return a whole number within [minimum, maximum]."""
    if _blank(value):
        if required:
            v.add(field, "error.required")
        return None
    number: int
    if isinstance(value, bool):
        v.add(field, "error.invalid_number")
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            v.add(field, "error.invalid_number")
            return None
        number = int(value)
    else:
        try:
            number = int(str(value).strip())
        except ValueError:
            v.add(field, "error.invalid_number")
            return None
    if not minimum <= number <= maximum:
        v.add(field, "error.out_of_range", min=minimum, max=maximum)
        return None
    return number


def clean_id(v: Validator, field: str, value: RawInt, *, required: bool = False) -> int | None:
    """Return a record id (a positive whole number)."""
    if _blank(value):
        if required:
            v.add(field, "error.required")
        return None
    if isinstance(value, bool):
        v.add(field, "error.invalid_number")
        return None
    try:
        number = int(value) if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        v.add(field, "error.invalid_number")
        return None
    if number < 1:
        v.add(field, "error.invalid_number")
        return None
    return number


def clean_money(v: Validator, field: str, value: RawNumber, *, required: bool = False) -> Decimal | None:
    """Return a non-negative amount rounded to cents."""
    if _blank(value):
        if required:
            v.add(field, "error.required")
        return None
    if isinstance(value, bool):
        v.add(field, "error.invalid_number")
        return None
    try:
        # Through str so a float like 0.1 becomes Decimal("0.1"), not its binary expansion.
        amount = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        v.add(field, "error.invalid_number")
        return None
    if not amount.is_finite():
        v.add(field, "error.invalid_number")
        return None
    if amount < 0:
        v.add(field, "error.negative")
        return None
    amount = amount.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)
    if amount > MONEY_MAX:
        v.add(field, "error.out_of_range", min=0, max=str(MONEY_MAX))
        return None
    return amount


def latest_local_date(now: datetime) -> date:
    """Return the latest calendar date anywhere on earth when it is `now` in UTC."""
    return (now + MAX_UTC_OFFSET).date()


def clean_date(
    v: Validator, field: str, value: RawDate, *, required: bool = False, now: datetime | None = None
) -> date | None:
    """Return a date (a date or an ISO string); with `now`, refuse a date in the future."""
    if _blank(value):
        if required:
            v.add(field, "error.required")
        return None
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip())
        except ValueError:
            v.add(field, "error.invalid_date")
            return None
    if now is not None and day > latest_local_date(now):
        v.add(field, "error.in_future")
        return None
    return day


def clean_datetime(
    v: Validator,
    field: str,
    value: RawDateTime,
    *,
    required: bool = False,
    now: datetime | None = None,
    tolerance: timedelta = timedelta(0),
) -> datetime | None:
    """Return a naive UTC datetime; with `now`, refuse one later than now + tolerance."""
    if _blank(value):
        if required:
            v.add(field, "error.required")
        return None
    moment: datetime
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min)
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            v.add(field, "error.invalid_date")
            return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if now is not None and moment > now + tolerance:
        v.add(field, "error.in_future")
        return None
    return moment


def check_date_order(v: Validator, field: str, earlier: date | None, later: date | None) -> None:
    """Record date_order on `field` (the later one) when it comes before `earlier`."""
    if earlier is not None and later is not None and later < earlier:
        v.add(field, "error.date_order")


def clean_flag(v: Validator, field: str, value: RawFlag, *, required: bool = False) -> bool | None:
    """Return a yes/no answer from a bool or a word such as 'yes' / 'no'."""
    if isinstance(value, bool):
        return value
    if _blank(value):
        if required:
            v.add(field, "error.required")
        return None
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    v.add(field, "error.invalid_choice", choices="yes, no")
    return None


def like_prefix(column: InstrumentedAttribute[Any] | ColumnElement[Any], prefix: str) -> ColumnElement[bool]:
    """Return `column LIKE 'prefix%'` with the user's % and _ taken literally."""
    escaped = prefix.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%")
    escaped = escaped.replace("_", LIKE_ESCAPE + "_")
    return column.like(escaped + "%", escape=LIKE_ESCAPE)


def digits_only_sql(column: InstrumentedAttribute[Any] | ColumnElement[Any]) -> ColumnElement[Any]:
    """Return a portable SQL expression of the column with phone separators removed."""
    expression: ColumnElement[Any] = column  # type: ignore[assignment]
    for separator in PHONE_SEPARATORS:
        expression = func.replace(expression, separator, "")
    return expression


class Keyed(Protocol):
    """A model with an id and an idempotency key column."""

    id: Any
    idempotency_key: Any


KeyedRow = TypeVar("KeyedRow", bound=Keyed)


# One statement per model, built once: building it costs more than running it.
@cache
def _by_key_statement(model: type[Keyed]) -> Select[Any]:
    return select(model).where(model.idempotency_key == bindparam("key"))


@cache
def _key_id_statement(model: type[Keyed]) -> Select[Any]:
    return select(model.id).where(model.idempotency_key == bindparam("key"))


def find_by_key(session: Session, model: type[KeyedRow], key: str | None) -> KeyedRow | None:
    """Return the row created with this idempotency key, if any."""
    if key is None:
        return None
    return cast("KeyedRow | None", session.scalar(_by_key_statement(model), {"key": key}))


def keys_can_race(session: Session) -> bool:
    """Tell whether a concurrent writer can insert a key after this transaction looked it up.

    On SQLite a write transaction holds the database's only write lock from BEGIN IMMEDIATE to
    COMMIT, and a deferred one that read an older snapshot cannot write at all (SQLITE_BUSY), so
    a key lookup made in the transaction that inserts stays true until the commit.
    """
    return session.connection().dialect.name != "sqlite"


def execute_core(session: Session, statement: Executable, params: dict[str, Any]) -> Result[Any]:
    """Run a Core statement on the session's connection, after the flush an ORM query would do.

    For the small checks of the write path: the ORM's execution layer costs more than the query.
    """
    session.flush()
    return session.connection().execute(statement, params)


def add_once(session: Session, row: KeyedRow, *, key: str | None) -> tuple[KeyedRow, bool]:
    """Insert the row unless another with the same idempotency key won the race.

    Returns (row, True) when inserted, else (the existing row, False). Where a concurrent double
    submit can insert the key after this transaction looked (PostgreSQL), the insert runs in a
    SAVEPOINT so its UNIQUE violation leaves the caller's transaction usable. On SQLite nobody
    can (see keys_can_race): a look-up of the key's id decides, which costs a fraction of the
    savepoint and its extra flush, and the unique index stays the backstop.
    """
    if not keys_can_race(session):
        if key is not None and execute_core(session, _key_id_statement(type(row)), {"key": key}).first() is not None:
            existing = find_by_key(session, type(row), key)
            if existing is not None:
                return existing, False
        session.add(row)
        session.flush()
        return row, True
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = find_by_key(session, type(row), key)
        if existing is None:
            raise
        return existing, False
    return row, True


def create_audited(
    session: Session, *, actor: Actor, row: KeyedRow, key: str | None, entity: str, now: datetime
) -> tuple[KeyedRow, bool]:
    """Insert the row once per idempotency key and audit the creation; return (row, inserted)."""
    saved, inserted = add_once(session, row, key=key)
    if inserted:
        record(
            session,
            actor=actor,
            action="create",
            entity=entity,
            entity_id=saved.id,
            changes=diff({}, snapshot(cast(Base, saved))),
            at=now,
        )
    return saved, inserted


def soft_delete_audited(session: Session, *, actor: Actor, row: SoftDeletable, entity: str, now: datetime) -> None:
    """Put the row in the recycle bin (deleted_at) and audit it."""
    row.deleted_at = now
    session.flush()
    record(
        session,
        actor=actor,
        action="delete",
        entity=entity,
        entity_id=row.id,
        changes={"deleted_at": [None, now.isoformat()]},
        at=now,
    )


class SoftDeletable(Protocol):
    id: Any
    deleted_at: datetime | None


def flush_versioned(session: Session, row: object, values: dict[str, Any]) -> bool:
    """Assign the values and flush in a SAVEPOINT; return False if a concurrent writer won.

    The row's mapper has a version column, so the UPDATE matches no row when someone committed
    a newer version after this session loaded it (SQLAlchemy raises StaleDataError). The
    savepoint keeps the caller's transaction usable so it can report who changed the row.
    """
    try:
        with session.begin_nested():
            for name, value in values.items():
                setattr(row, name, value)
            session.flush()
    except StaleDataError:
        return False
    return True


def last_change(session: Session, *, entity: str, entity_id: object) -> tuple[str | None, datetime | None]:
    """Return who last wrote the record and when, from the audit trail (for conflict messages)."""
    row = session.execute(
        select(User.display_name, AuditEvent.at)
        .join(User, User.id == AuditEvent.actor_id, isouter=True)
        .where(AuditEvent.entity == entity, AuditEvent.entity_id == str(entity_id))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else (None, None)


Record = TypeVar("Record", bound="SoftDeletable")


def get_visible_record(
    session: Session,
    *,
    actor: Actor,
    model: type[Record],
    rep_column: InstrumentedAttribute[int],
    record_id: int,
    entity: str,
) -> Record:
    """Return a live record the actor may see (by its rep or its customer), else 'not found or not yours'."""
    row = session.scalar(
        select(model).where(
            getattr(model, "id") == record_id,  # noqa: B009 - the protocol types id as Any
            getattr(model, "deleted_at").is_(None),  # noqa: B009
            record_scope(actor, rep_column=rep_column, customer_column=getattr(model, "customer_id")),  # noqa: B009
        )
    )
    if row is None:
        raise NotFoundError(entity, record_id)
    return cast(Record, row)


def customer_and_rep(session: Session, *, actor: Actor, customer_id: int, rep_id: int | None) -> tuple[Customer, int]:
    """Return the customer the actor may log on and the rep of the record (default: the actor)."""
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    rep = actor.id if rep_id is None else rep_id
    require_rep_assignable(session, actor=actor, rep_id=rep)
    return customer, rep


@lru_cache(maxsize=ACTOR_STATEMENTS_CACHED)
def _visible_customer_id_statement(actor: Actor) -> Select[int]:
    return select(Customer.id).where(
        Customer.id == bindparam("customer_id"), customer_visible(actor), Customer.deleted_at.is_(None)
    )


def visible_customer_id(session: Session, *, actor: Actor, customer_id: int) -> int:
    """Return the id of a live customer the actor may see, else raise 'not found or not yours'; loads no row."""
    found = execute_core(session, _visible_customer_id_statement(actor), {"customer_id": customer_id})
    if found.scalar() is None:
        raise NotFoundError("customer", customer_id)
    return customer_id


def customer_id_and_rep(session: Session, *, actor: Actor, customer_id: int, rep_id: int | None) -> tuple[int, int]:
    """Like customer_and_rep, for a write that needs only the customer's id."""
    rep = actor.id if rep_id is None else rep_id
    customer = visible_customer_id(session, actor=actor, customer_id=customer_id)
    require_rep_assignable(session, actor=actor, rep_id=rep)
    return customer, rep


def record_scope(
    actor: Actor, *, rep_column: InstrumentedAttribute[int], customer_column: InstrumentedAttribute[Any]
) -> ColumnElement[bool]:
    """Return `crm.access.record_visible` for ORM attributes (it is typed for column elements)."""
    return record_visible(
        actor,
        rep_column=rep_column.expression,
        customer_column=cast("ColumnElement[int | None]", customer_column.expression),
    )
