"""Append-only audit trail and the data version that keeps caches honest."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, insert, inspect, select, update
from sqlalchemy.orm import Session

from crm.access import Actor
from crm.clock import utcnow
from crm.models import AuditEvent, Base, DataVersion

DATA_VERSION_ROW = 1

AUDIT_EVENTS = cast(Table, AuditEvent.__table__)
DATA_VERSIONS = cast(Table, DataVersion.__table__)
# Every write runs these two, so they are built once and run as Core statements: an ORM add
# costs a flush of its own and an ORM UPDATE an evaluation of the session, both more than the SQL.
INSERT_EVENT = insert(AUDIT_EVENTS)
BUMP_VERSION = (
    update(DATA_VERSIONS).where(DATA_VERSIONS.c.id == DATA_VERSION_ROW).values(version=DATA_VERSIONS.c.version + 1)
)


def jsonable(value: Any) -> Any:
    """Turn a column value into something JSON can hold."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def snapshot(row: Base) -> dict[str, Any]:
    """Return the row's column values as a JSON-ready dict."""
    mapper = inspect(row).mapper
    return {attr.key: jsonable(getattr(row, attr.key)) for attr in mapper.column_attrs}


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """Return field -> [old, new] for every field whose value changed."""
    return {key: [old.get(key), value] for key, value in new.items() if old.get(key) != value}


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    entity: str,
    entity_id: object,
    changes: dict[str, list[Any]] | None = None,
    at: datetime | None = None,
) -> None:
    """Append an audit event and bump the data version, in the caller's transaction."""
    # Write the caller's pending changes first, as the ORM's autoflush did: the event follows them.
    session.flush()
    session.connection().execute(
        INSERT_EVENT,
        {
            "at": at or utcnow(),
            "actor_id": actor.id if actor else None,
            "action": action,
            "entity": entity,
            "entity_id": None if entity_id is None else str(entity_id),
            "changes": changes,
        },
    )
    bump_data_version(session)


def bump_data_version(session: Session) -> None:
    """Increase the data version so every process's caches see the write."""
    session.connection().execute(BUMP_VERSION)


def data_version(session: Session) -> int:
    """Return the current data version (caches key on it)."""
    return int(session.scalar(select(DataVersion.version).where(DataVersion.id == DATA_VERSION_ROW)) or 0)
