"""Read the audit trail for the admin screen: filtered, paged, newest first (admins only)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, String, and_, cast, func, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from crm.access import Actor, require_role
from crm.errors import FieldError, ValidationError
from crm.models import AuditEvent, Role, User

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# A changed value longer than this is cut (notes, descriptions) so one event stays one table row.
MAX_VALUE_CHARS = 80
ELLIPSIS = "…"
ARROW = " → "
CHANGE_SEPARATOR = "; "
EMPTY_VALUE = "—"
# LIKE escape character: not a backslash, which PostgreSQL would otherwise treat as one by default
# and which the JSON text of a non-ASCII value is full of ("\u4e2d").
LIKE_ESCAPE = "!"

EVENT_COLUMNS = ["id", "at", "actor_username", "actor_name", "action", "entity", "entity_id", "changes"]


@dataclass(frozen=True)
class AuditPage:
    """One page of audit events and how many match the filters in all.

    `rows` has the columns EVENT_COLUMNS: id (int), at (naive UTC datetime), actor_username and
    actor_name (missing, NA, for events without a known actor, e.g. a failed login of an unknown
    user), action, entity, entity_id (text, NA when none) and changes ("field: old → new" joined
    by "; ", empty when the event records none).
    `page` is the page actually returned: a page outside 1..pages gives the nearest one.
    """

    rows: pd.DataFrame
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """Return the number of pages (at least 1, so an empty result still has page 1)."""
        return max(1, math.ceil(self.total / self.page_size))


@dataclass(frozen=True)
class AuditFilterOptions:
    """The values the audit-log filters offer: those that occur in the trail, sorted."""

    entities: list[str]
    actions: list[str]
    actors: list[tuple[str, str]]  # (username, display name) of every user who acted


def _shown_value(value: Any) -> str:
    """Render one old or new value on one short line."""
    if value is None or value == "":
        return EMPTY_VALUE
    text = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, dict | list) else str(value)
    text = " ".join(text.split())
    if len(text) > MAX_VALUE_CHARS:
        return text[: MAX_VALUE_CHARS - len(ELLIPSIS)] + ELLIPSIS
    return text


def format_changes(changes: Any) -> str:
    """Render an event's changes (field -> [old, new]) as "field: old → new; …"."""
    if not changes:
        return ""
    if not isinstance(changes, dict):
        return _shown_value(changes)
    parts: list[str] = []
    for name, change in changes.items():
        if isinstance(change, list | tuple) and len(change) == 2:
            parts.append(f"{name}: {_shown_value(change[0])}{ARROW}{_shown_value(change[1])}")
        else:
            parts.append(f"{name}: {_shown_value(change)}")
    return CHANGE_SEPARATOR.join(parts)


def _like_pattern(text: str) -> str:
    escaped = text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", f"{LIKE_ESCAPE}%")
    return "%" + escaped.replace("_", f"{LIKE_ESCAPE}_") + "%"


def _text_matches(text: str) -> ColumnElement[bool]:
    """Match the text, case-insensitively, in the actor, action, entity, entity id or changes."""
    needle = text.lower()
    pattern = _like_pattern(needle)
    columns: list[ColumnElement[Any] | InstrumentedAttribute[Any]] = [
        AuditEvent.action,
        AuditEvent.entity,
        AuditEvent.entity_id,
        User.username,
        User.display_name,
    ]
    clauses = [func.lower(column).like(pattern, escape=LIKE_ESCAPE) for column in columns]
    changes_text = func.lower(cast(AuditEvent.changes, String))
    clauses.append(changes_text.like(pattern, escape=LIKE_ESCAPE))
    # The JSON column holds non-ASCII text as \uXXXX escapes; search that spelling too.
    json_needle = json.dumps(needle)[1:-1]
    if json_needle != needle:
        clauses.append(changes_text.like(_like_pattern(json_needle), escape=LIKE_ESCAPE))
    return or_(*clauses)


def _validate(*, page_size: int, since: datetime | None, until: datetime | None) -> None:
    errors: dict[str, FieldError] = {}
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        errors["page_size"] = FieldError("error.out_of_range", {"min": 1, "max": MAX_PAGE_SIZE})
    if since is not None and until is not None and until < since:
        errors["until"] = FieldError("error.date_order")
    if errors:
        raise ValidationError(errors)


def _filtered(
    query: Select[Any],
    *,
    entity: str | None,
    action: str | None,
    actor_username: str | None,
    since: datetime | None,
    until: datetime | None,
    text: str | None,
) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = [true()]
    if entity:
        conditions.append(AuditEvent.entity == entity)
    if action:
        conditions.append(AuditEvent.action == action)
    if actor_username:
        conditions.append(User.username == actor_username.strip().lower())
    if since is not None:
        conditions.append(AuditEvent.at >= since)
    if until is not None:
        conditions.append(AuditEvent.at < until)
    if text and text.strip():
        conditions.append(_text_matches(text.strip()))
    return query.outerjoin(User, AuditEvent.actor_id == User.id).where(and_(*conditions))


def list_events(
    session: Session,
    *,
    actor: Actor,
    entity: str | None = None,
    action: str | None = None,
    actor_username: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> AuditPage:
    """Return one page of audit events matching the filters, newest first (admins only).

    `since` is inclusive and `until` exclusive (naive UTC); `text` matches case-insensitively in
    the acting user's username or name, the action, the entity, the entity id and the changes.
    """
    require_role(actor, Role.ADMIN)
    _validate(page_size=page_size, since=since, until=until)

    def narrowed(query: Select[Any]) -> Select[Any]:
        return _filtered(
            query,
            entity=entity,
            action=action,
            actor_username=actor_username,
            since=since,
            until=until,
            text=text,
        )

    total = int(session.scalar(narrowed(select(func.count(AuditEvent.id)))) or 0)
    page = min(max(1, page), max(1, math.ceil(total / page_size)))
    query = narrowed(
        select(
            AuditEvent.id,
            AuditEvent.at,
            User.username,
            User.display_name,
            AuditEvent.action,
            AuditEvent.entity,
            AuditEvent.entity_id,
            AuditEvent.changes,
        )
    )
    rows = session.execute(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).offset((page - 1) * page_size).limit(page_size)
    ).all()
    frame = pd.DataFrame(
        [(*row[:7], format_changes(row[7])) for row in rows],
        columns=EVENT_COLUMNS,
    )
    return AuditPage(rows=frame, total=total, page=page, page_size=page_size)


def audit_filter_options(session: Session, *, actor: Actor) -> AuditFilterOptions:
    """Return the entities, actions and acting users that occur in the trail (admins only)."""
    require_role(actor, Role.ADMIN)
    entities = list(session.scalars(select(AuditEvent.entity).distinct().order_by(AuditEvent.entity)))
    actions = list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
    acted = select(AuditEvent.actor_id).where(AuditEvent.actor_id.is_not(None)).distinct()
    actors = [
        (username, display_name)
        for username, display_name in session.execute(
            select(User.username, User.display_name).where(User.id.in_(acted)).order_by(User.username)
        )
    ]
    return AuditFilterOptions(entities=entities, actions=actions, actors=actors)
