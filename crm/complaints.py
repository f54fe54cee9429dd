"""Complaints (投诉台账): opening with an SLA due time, assigning, resolving, and the SLA list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, desc, select
from sqlalchemy.orm import Session

from crm.access import (
    Actor,
    Filters,
    get_visible_customer,
    require_rep_assignable,
    require_role,
)
from crm.audit import diff, record, snapshot
from crm.errors import ConflictError, Validator
from crm.models import Complaint, Customer, Role, Severity, User
from crm.validation import (
    RawDateTime,
    RawFlag,
    RawInt,
    RawText,
    add_once,
    clean_choice,
    clean_datetime,
    clean_flag,
    clean_id,
    clean_text,
    find_by_key,
    flush_versioned,
    get_visible_record,
    last_change,
    record_scope,
)

ENTITY = "complaint"
# Hours from opening to the due time, by severity (SPEC §3 defaults).
SLA_HOURS = {Severity.HIGH: 24, Severity.MEDIUM: 72, Severity.LOW: 168}
# An open complaint due within this many hours is flagged "due soon".
DUE_SOON_HOURS = 24
# Clocks drift: a complaint opened or resolved "now" may be a little ahead of the server.
MAX_FUTURE_SKEW = timedelta(minutes=5)
CATEGORY_MAX = 64
TEXT_MAX = 4000
IDEMPOTENCY_KEY_MAX = 64
LIST_LIMIT = 200
BOOKKEEPING_FIELDS = frozenset({"version"})

LIST_COLUMNS = [
    "id",
    "opened_at",
    "customer_id",
    "customer_name",
    "category",
    "severity",
    "description",
    "assignee_id",
    "assignee_name",
    "due_at",
    "resolved_at",
    "resolution",
    "satisfied",
    "version",
    "sla_status",
    "hours_left",
]


class SlaStatus(StrEnum):
    ON_TIME = "on_time"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    RESOLVED_ON_TIME = "resolved_on_time"
    RESOLVED_LATE = "resolved_late"


@dataclass(frozen=True)
class ComplaintInput:
    """Raw values of the complaint form.

    An empty opened_at means now; an empty assignee means the customer's owner (the actor for
    a pool customer).
    """

    customer_id: RawInt
    category: RawText
    severity: RawText
    description: RawText
    opened_at: RawDateTime = None
    assignee_id: RawInt = None


@dataclass(frozen=True)
class ResolutionInput:
    """Raw values of the resolve form; an empty resolved_at means now."""

    resolution: RawText
    resolved_at: RawDateTime = None
    satisfied: RawFlag = None


def due_at(*, opened_at: datetime, severity: Severity | str) -> datetime:
    """Return when a complaint of this severity opened at this time is due."""
    return opened_at + timedelta(hours=SLA_HOURS[Severity(severity)])


def sla_status(*, due: datetime, resolved_at: datetime | None, as_of: datetime) -> SlaStatus:
    """Return a complaint's SLA status as it stood at `as_of`."""
    if resolved_at is not None and resolved_at <= as_of:
        return SlaStatus.RESOLVED_ON_TIME if resolved_at <= due else SlaStatus.RESOLVED_LATE
    if due < as_of:
        return SlaStatus.OVERDUE
    if due <= as_of + timedelta(hours=DUE_SOON_HOURS):
        return SlaStatus.DUE_SOON
    return SlaStatus.ON_TIME


def sla_status_sql(as_of: datetime) -> ColumnElement[str]:
    """Return `sla_status` as a SQL CASE so lists can filter and count by it."""
    resolved = and_(Complaint.resolved_at.is_not(None), Complaint.resolved_at <= as_of)
    return case(
        (and_(resolved, Complaint.resolved_at <= Complaint.due_at), SlaStatus.RESOLVED_ON_TIME.value),
        (resolved, SlaStatus.RESOLVED_LATE.value),
        (Complaint.due_at < as_of, SlaStatus.OVERDUE.value),
        (Complaint.due_at <= as_of + timedelta(hours=DUE_SOON_HOURS), SlaStatus.DUE_SOON.value),
        else_=SlaStatus.ON_TIME.value,
    )


def _visible_complaint(session: Session, *, actor: Actor, complaint_id: int) -> Complaint:
    """Return a live complaint the actor may see, else raise 'not found or not yours'."""
    return get_visible_record(
        session, actor=actor, model=Complaint, rep_column=Complaint.assignee_id, record_id=complaint_id, entity=ENTITY
    )


def _audit_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {key: change for key, change in diff(before, after).items() if key not in BOOKKEEPING_FIELDS}


def _save(
    session: Session, *, actor: Actor, row: Complaint, action: str, values: dict[str, Any], now: datetime
) -> None:
    """Apply the values under optimistic locking and record the audit event."""
    before = snapshot(row)
    if not flush_versioned(session, row, values):
        session.refresh(row)
        changed_by, changed_at = last_change(session, entity=ENTITY, entity_id=row.id)
        raise ConflictError(ENTITY, row.id, changed_by, changed_at)
    record(
        session,
        actor=actor,
        action=action,
        entity=ENTITY,
        entity_id=row.id,
        changes=_audit_changes(before, snapshot(row)),
        at=now,
    )


def open_complaint(
    session: Session,
    *,
    actor: Actor,
    data: ComplaintInput,
    now: datetime,
    idempotency_key: str | None = None,
) -> Complaint:
    """Log a complaint on a customer the actor may edit, due by its severity's SLA."""
    existing = find_by_key(session, Complaint, idempotency_key)
    if existing is not None:
        return _visible_complaint(session, actor=actor, complaint_id=existing.id)
    v = Validator()
    customer_id = clean_id(v, "customer_id", data.customer_id, required=True)
    category = clean_text(v, "category", data.category, required=True, max_length=CATEGORY_MAX)
    severity = clean_choice(v, "severity", data.severity, Severity, required=True)
    description = clean_text(v, "description", data.description, required=True, max_length=TEXT_MAX)
    opened_at = clean_datetime(v, "opened_at", data.opened_at, now=now, tolerance=MAX_FUTURE_SKEW) or now
    assignee_id = clean_id(v, "assignee_id", data.assignee_id)
    clean_text(v, "idempotency_key", idempotency_key, max_length=IDEMPOTENCY_KEY_MAX)
    v.raise_if_any()
    assert customer_id is not None and severity is not None  # required above
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    if assignee_id is None:
        assignee_id = customer.owner_id if customer.owner_id is not None else actor.id
    require_rep_assignable(session, actor=actor, rep_id=assignee_id)
    row = Complaint(
        customer_id=customer.id,
        opened_at=opened_at,
        category=category,
        severity=severity,
        description=description,
        assignee_id=assignee_id,
        due_at=due_at(opened_at=opened_at, severity=severity),
        idempotency_key=idempotency_key,
        created_at=now,
    )
    saved, inserted = add_once(session, row, key=idempotency_key)
    if not inserted:
        return _visible_complaint(session, actor=actor, complaint_id=saved.id)
    record(
        session,
        actor=actor,
        action="create",
        entity=ENTITY,
        entity_id=saved.id,
        changes=_audit_changes({}, snapshot(saved)),
        at=now,
    )
    return saved


def assign_complaint(
    session: Session, *, actor: Actor, complaint_id: int, assignee_id: int, now: datetime
) -> Complaint:
    """Hand a complaint to another rep (managers for their team, admins)."""
    require_role(actor, Role.MANAGER, Role.ADMIN)
    row = _visible_complaint(session, actor=actor, complaint_id=complaint_id)
    require_rep_assignable(session, actor=actor, rep_id=assignee_id)
    if row.assignee_id != assignee_id:
        _save(session, actor=actor, row=row, action="assign", values={"assignee_id": assignee_id}, now=now)
    return row


def resolve_complaint(
    session: Session, *, actor: Actor, complaint_id: int, data: ResolutionInput, now: datetime
) -> Complaint:
    """Close a complaint with its resolution; refused if someone resolved it already."""
    row = _visible_complaint(session, actor=actor, complaint_id=complaint_id)
    v = Validator()
    resolution = clean_text(v, "resolution", data.resolution, required=True, max_length=TEXT_MAX)
    resolved_at = clean_datetime(v, "resolved_at", data.resolved_at, now=now, tolerance=MAX_FUTURE_SKEW) or now
    satisfied = clean_flag(v, "satisfied", data.satisfied)
    if "resolved_at" not in v.errors and resolved_at < row.opened_at:
        v.add("resolved_at", "error.date_order")
    v.raise_if_any()
    if row.resolved_at is not None:
        changed_by, changed_at = last_change(session, entity=ENTITY, entity_id=row.id)
        raise ConflictError(ENTITY, row.id, changed_by, changed_at)
    values = {"resolution": resolution, "resolved_at": resolved_at, "satisfied": satisfied}
    _save(session, actor=actor, row=row, action="resolve", values=values, now=now)
    return row


def list_complaints(
    session: Session,
    *,
    actor: Actor,
    as_of: datetime,
    status: SlaStatus | None = None,
    open_only: bool = False,
    customer_id: int | None = None,
    severity: str | None = None,
    filters: Filters | None = None,
    limit: int = LIST_LIMIT,
) -> pd.DataFrame:
    """Return the complaints the actor may see with their SLA status at `as_of`, most urgent first.

    The filters narrow like the KPI scope: by the assignee's team, region or id and the
    customer's tier. Columns: LIST_COLUMNS; `hours_left` is hours from as_of to due_at
    (negative when overdue, None once resolved).
    """
    filters = filters or Filters()
    status_sql = sla_status_sql(as_of)
    query = (
        select(
            Complaint.id,
            Complaint.opened_at,
            Complaint.customer_id,
            Customer.name,
            Complaint.category,
            Complaint.severity,
            Complaint.description,
            Complaint.assignee_id,
            User.display_name,
            Complaint.due_at,
            Complaint.resolved_at,
            Complaint.resolution,
            Complaint.satisfied,
            Complaint.version,
            status_sql,
        )
        .join(Customer, Customer.id == Complaint.customer_id)
        .join(User, User.id == Complaint.assignee_id)
        .where(
            record_scope(actor, rep_column=Complaint.assignee_id, customer_column=Complaint.customer_id),
            Complaint.deleted_at.is_(None),
            Customer.deleted_at.is_(None),
        )
        # Open complaints first (by due time), then the resolved ones, newest first.
        .order_by(Complaint.resolved_at.is_not(None), Complaint.due_at, desc(Complaint.resolved_at), Complaint.id)
        .limit(max(0, limit))
    )
    if status is not None:
        query = query.where(status_sql == status.value)
    if open_only:
        query = query.where(Complaint.resolved_at.is_(None))
    if customer_id is not None:
        query = query.where(Complaint.customer_id == customer_id)
    if severity is not None:
        query = query.where(Complaint.severity == severity)
    if filters.rep_id is not None:
        query = query.where(Complaint.assignee_id == filters.rep_id)
    if filters.team:
        query = query.where(User.team == filters.team)
    if filters.region:
        query = query.where(User.region == filters.region)
    if filters.tier:
        query = query.where(Customer.tier == filters.tier)
    rows = [tuple(row) for row in session.execute(query)]
    frame = pd.DataFrame(rows, columns=LIST_COLUMNS[:-1])
    frame["hours_left"] = [
        None if row[10] is not None and row[10] <= as_of else (row[9] - as_of).total_seconds() / 3600 for row in rows
    ]
    return frame
