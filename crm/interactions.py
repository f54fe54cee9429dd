"""Interactions (联系记录 / 拜访): logging visits and calls, idempotently, and the form's reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

import pandas as pd
from sqlalchemy import Select, bindparam, desc, select
from sqlalchemy.orm import Session

from crm.access import Actor, customer_visible
from crm.customers import search_clause
from crm.errors import NotFoundError, Validator
from crm.models import Customer, Interaction, InteractionKind, Outcome, User
from crm.validation import (
    ACTOR_STATEMENTS_CACHED,
    RawDate,
    RawDateTime,
    RawInt,
    RawText,
    check_date_order,
    clean_choice,
    clean_date,
    clean_datetime,
    clean_id,
    clean_int,
    clean_text,
    create_audited,
    customer_id_and_rep,
    execute_core,
    find_by_key,
    get_visible_record,
    record_scope,
    soft_delete_audited,
)

ENTITY = "interaction"
# Clocks of phones and laptops drift; a visit logged "now" may be a little ahead of the server.
MAX_FUTURE_SKEW = timedelta(minutes=5)
MAX_DURATION_MINUTES = 1440
NOTES_MAX = 4000
SUBJECT_MAX = 200
LOCATION_MAX = 200
IDEMPOTENCY_KEY_MAX = 64
RECENT_LIMIT = 20
CHOICES_LIMIT = 20

RECENT_COLUMNS = [
    "id",
    "occurred_at",
    "kind",
    "customer_id",
    "customer_code",
    "customer_name",
    "rep_id",
    "rep_name",
    "subject",
    "outcome",
    "duration_minutes",
    "next_follow_up",
]


@dataclass(frozen=True)
class InteractionInput:
    """Raw values of the log-a-visit form; an empty occurred_at means now, an empty rep the actor."""

    customer_id: RawInt
    kind: RawText
    occurred_at: RawDateTime = None
    rep_id: RawInt = None
    duration_minutes: RawInt = None
    subject: RawText = None
    notes: RawText = None
    outcome: RawText = None
    next_follow_up: RawDate = None
    location: RawText = None


class CustomerChoice(NamedTuple):
    """One entry of the form's customer picker."""

    id: int
    code: str | None
    name: str


def _visible_interaction(session: Session, *, actor: Actor, interaction_id: int) -> Interaction:
    """Return a live interaction the actor may see, else raise 'not found or not yours'."""
    return get_visible_record(
        session, actor=actor, model=Interaction, rep_column=Interaction.rep_id, record_id=interaction_id, entity=ENTITY
    )


@lru_cache(maxsize=ACTOR_STATEMENTS_CACHED)
def _visible_id_statement(actor: Actor) -> Select[int]:
    return select(Interaction.id).where(
        Interaction.id == bindparam("interaction_id"),
        Interaction.deleted_at.is_(None),
        record_scope(actor, rep_column=Interaction.rep_id, customer_column=Interaction.customer_id),
    )


def _require_visible(session: Session, *, actor: Actor, row: Interaction) -> Interaction:
    """Return the loaded interaction if it is live and the actor may see it, else raise 'not found or not yours'."""
    # Checks the row without loading it again: only its id comes back.
    found = execute_core(session, _visible_id_statement(actor), {"interaction_id": row.id})
    if found.scalar() is None:
        raise NotFoundError(ENTITY, row.id)
    return row


def log_interaction(
    session: Session,
    *,
    actor: Actor,
    data: InteractionInput,
    now: datetime,
    idempotency_key: str | None = None,
) -> Interaction:
    """Save a visit, call or other contact; the same idempotency key twice stores one record."""
    existing = find_by_key(session, Interaction, idempotency_key)
    if existing is not None:
        return _require_visible(session, actor=actor, row=existing)
    v = Validator()
    customer_id = clean_id(v, "customer_id", data.customer_id, required=True)
    kind = clean_choice(v, "kind", data.kind, InteractionKind, required=True)
    occurred_at = clean_datetime(v, "occurred_at", data.occurred_at, now=now, tolerance=MAX_FUTURE_SKEW) or now
    rep_id = clean_id(v, "rep_id", data.rep_id)
    duration = clean_int(v, "duration_minutes", data.duration_minutes, minimum=0, maximum=MAX_DURATION_MINUTES)
    subject = clean_text(v, "subject", data.subject, max_length=SUBJECT_MAX)
    notes = clean_text(v, "notes", data.notes, max_length=NOTES_MAX)
    outcome = clean_choice(v, "outcome", data.outcome, Outcome)
    next_follow_up = clean_date(v, "next_follow_up", data.next_follow_up)
    location = clean_text(v, "location", data.location, max_length=LOCATION_MAX)
    clean_text(v, "idempotency_key", idempotency_key, max_length=IDEMPOTENCY_KEY_MAX)
    if "occurred_at" not in v.errors:
        check_date_order(v, "next_follow_up", occurred_at.date(), next_follow_up)
    v.raise_if_any()
    assert customer_id is not None  # required above
    customer_id, rep_id = customer_id_and_rep(session, actor=actor, customer_id=customer_id, rep_id=rep_id)
    row = Interaction(
        customer_id=customer_id,
        rep_id=rep_id,
        kind=kind,
        occurred_at=occurred_at,
        duration_minutes=duration,
        subject=subject,
        notes=notes,
        outcome=outcome,
        next_follow_up=next_follow_up,
        location=location,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    saved, inserted = create_audited(session, actor=actor, row=row, key=idempotency_key, entity=ENTITY, now=now)
    return saved if inserted else _require_visible(session, actor=actor, row=saved)


def delete_interaction(session: Session, *, actor: Actor, interaction_id: int, now: datetime) -> Interaction:
    """Soft-delete an interaction the actor may see (a rep: their own or on their customers)."""
    row = _visible_interaction(session, actor=actor, interaction_id=interaction_id)
    soft_delete_audited(session, actor=actor, row=row, entity=ENTITY, now=now)
    return row


def recent_interactions(session: Session, *, actor: Actor, limit: int = RECENT_LIMIT) -> pd.DataFrame:
    """Return the newest interactions the actor may see (columns: RECENT_COLUMNS)."""
    rows = session.execute(
        select(
            Interaction.id,
            Interaction.occurred_at,
            Interaction.kind,
            Interaction.customer_id,
            Customer.code,
            Customer.name,
            Interaction.rep_id,
            User.display_name,
            Interaction.subject,
            Interaction.outcome,
            Interaction.duration_minutes,
            Interaction.next_follow_up,
        )
        .join(Customer, Customer.id == Interaction.customer_id)
        .join(User, User.id == Interaction.rep_id)
        .where(
            record_scope(actor, rep_column=Interaction.rep_id, customer_column=Interaction.customer_id),
            Interaction.deleted_at.is_(None),
            Customer.deleted_at.is_(None),
        )
        .order_by(desc(Interaction.occurred_at), desc(Interaction.id))
        .limit(max(0, limit))
    ).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=RECENT_COLUMNS)


def customer_choices(
    session: Session, *, actor: Actor, query: str = "", limit: int = CHOICES_LIMIT
) -> list[CustomerChoice]:
    """Return the customers the actor may log on whose name, code or phone starts with the query."""
    rows = session.execute(
        select(Customer.id, Customer.code, Customer.name)
        .where(customer_visible(actor), Customer.deleted_at.is_(None), search_clause(query))
        .order_by(Customer.name_key, Customer.id)
        .limit(max(0, limit))
    ).all()
    return [CustomerChoice(id=row[0], code=row[1], name=row[2]) for row in rows]
