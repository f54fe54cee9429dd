"""Opportunities (销售机会): the pipeline, stage moves with optimistic locking, audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from crm.access import Actor, Filters, get_visible_customer, require_rep_assignable
from crm.audit import diff, record, snapshot
from crm.errors import ConflictError, Validator
from crm.models import Customer, Opportunity, PipelineStage, Product, StageKind, User
from crm.validation import (
    RawDate,
    RawInt,
    RawNumber,
    RawText,
    add_once,
    check_date_order,
    clean_choice,
    clean_date,
    clean_id,
    clean_money,
    clean_text,
    find_by_key,
    flush_versioned,
    get_visible_record,
    last_change,
    record_scope,
)

ENTITY = "opportunity"
TITLE_MAX = 200
LOST_REASON_MAX = 200
IDEMPOTENCY_KEY_MAX = 64
BOARD_LIMIT = 500
# Bookkeeping the audit trail leaves out: the version changes on every write.
BOOKKEEPING_FIELDS = frozenset({"version"})

BOARD_COLUMNS = [
    "id",
    "title",
    "customer_id",
    "customer_name",
    "owner_id",
    "owner_name",
    "product_id",
    "product_name",
    "amount",
    "stage",
    "stage_kind",
    "stage_position",
    "created_on",
    "engaged_on",
    "closed_on",
    "lost_reason",
    "version",
]


@dataclass(frozen=True)
class StageInfo:
    """A configured pipeline stage."""

    key: str
    position: int
    kind: StageKind


@dataclass(frozen=True)
class ProductChoice:
    """A product a deal can be about, for the add form's picker."""

    id: int
    name: str
    series: str | None


@dataclass(frozen=True)
class OpenPipeline:
    """The open deals in a scope: how many, and their amount (float; deals without one count 0)."""

    count: int
    amount: float


@dataclass(frozen=True)
class OpportunityInput:
    """Raw values of the opportunity form.

    An empty stage means the first open stage, an empty owner the actor, an empty created_on
    today. On update the stage is left alone (use `move_stage`) and `version` is required.
    """

    title: RawText = None
    customer_id: RawInt = None
    owner_id: RawInt = None
    product_id: RawInt = None
    amount: RawNumber = None
    stage: RawText = None
    created_on: RawDate = None
    lost_reason: RawText = None
    version: RawInt = None


@dataclass(frozen=True)
class StageMove:
    """Raw values of a stage change: the target stage, the version the board loaded, the date."""

    stage: RawText
    version: RawInt
    on: RawDate = None
    lost_reason: RawText = None


def pipeline_stages(session: Session) -> list[StageInfo]:
    """Return the configured stages in pipeline order."""
    return [
        StageInfo(key=row.key, position=row.position, kind=StageKind(row.kind))
        for row in session.scalars(select(PipelineStage).order_by(PipelineStage.position))
    ]


def product_choices(session: Session) -> list[ProductChoice]:
    """Return the products a deal can be about, by series then name (products without a series last)."""
    query = select(Product.id, Product.name, Product.series).order_by(
        Product.series.asc().nulls_last(), Product.name, Product.id
    )
    return [ProductChoice(id=row.id, name=row.name, series=row.series) for row in session.execute(query)]


def _visible_opportunity(session: Session, *, actor: Actor, opportunity_id: int) -> Opportunity:
    """Return a live opportunity the actor may see, else raise 'not found or not yours'."""
    return get_visible_record(
        session,
        actor=actor,
        model=Opportunity,
        rep_column=Opportunity.owner_id,
        record_id=opportunity_id,
        entity=ENTITY,
    )


def _conflict(session: Session, row: Opportunity) -> ConflictError:
    """Name who saved the opportunity last (from the audit trail) in the conflict error."""
    changed_by, changed_at = last_change(session, entity=ENTITY, entity_id=row.id)
    return ConflictError(ENTITY, row.id, changed_by, changed_at)


def _stage_changes(
    v: Validator,
    *,
    stages: list[StageInfo],
    stage: StageInfo | None,
    on: date,
    lost_reason: str | None,
    engaged_on: date | None,
) -> dict[str, Any]:
    """Return the column values a move to `stage` on `on` implies (closing, reopening, engaging)."""
    if stage is None:
        return {}
    if stage.kind is StageKind.LOST:
        if lost_reason is None:
            v.add("lost_reason", "error.required")
        return {"stage": stage.key, "closed_on": on, "lost_reason": lost_reason}
    if stage.kind is StageKind.WON:
        return {"stage": stage.key, "closed_on": on, "lost_reason": None}
    values: dict[str, Any] = {"stage": stage.key, "closed_on": None, "lost_reason": None}
    first_open = min(s.position for s in stages if s.kind is StageKind.OPEN)
    # Leaving the first open stage is when a deal counts as engaged (the funnel's second step).
    if stage.position > first_open and engaged_on is None:
        values["engaged_on"] = on
    return values


def _clean_stage(v: Validator, field: str, value: RawText, stages: list[StageInfo]) -> StageInfo | None:
    key = clean_choice(v, field, value, [s.key for s in stages], required=True)
    return next((s for s in stages if s.key == key), None)


def _audit_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {key: change for key, change in diff(before, after).items() if key not in BOOKKEEPING_FIELDS}


def _clean_common(
    session: Session, v: Validator, data: OpportunityInput
) -> tuple[dict[str, Any], int | None, int | None]:
    """Validate the fields shared by create and update; return values, customer id and owner id."""
    values = {
        "title": clean_text(v, "title", data.title, max_length=TITLE_MAX),
        "amount": clean_money(v, "amount", data.amount),
        "product_id": clean_id(v, "product_id", data.product_id),
    }
    if values["product_id"] is not None and session.get(Product, values["product_id"]) is None:
        v.add("product_id", "error.unknown")
    customer_id = clean_id(v, "customer_id", data.customer_id)
    owner_id = clean_id(v, "owner_id", data.owner_id)
    return values, customer_id, owner_id


def create_opportunity(
    session: Session,
    *,
    actor: Actor,
    data: OpportunityInput,
    now: datetime,
    idempotency_key: str | None = None,
) -> Opportunity:
    """Open a deal, optionally on a customer the actor may edit; owned by the actor by default.

    A repeated `idempotency_key` (the second click of a double submit) returns the deal the
    first one stored instead of adding another.
    """
    existing = find_by_key(session, Opportunity, idempotency_key)
    if existing is not None:
        return _visible_opportunity(session, actor=actor, opportunity_id=existing.id)
    stages = pipeline_stages(session)
    v = Validator()
    values, customer_id, owner_id = _clean_common(session, v, data)
    created_on = clean_date(v, "created_on", data.created_on, now=now) or now.date()
    lost_reason = clean_text(v, "lost_reason", data.lost_reason, max_length=LOST_REASON_MAX)
    first_stage = next(s.key for s in stages if s.kind is StageKind.OPEN)
    stage = _clean_stage(v, "stage", data.stage or first_stage, stages)
    values.update(
        _stage_changes(v, stages=stages, stage=stage, on=created_on, lost_reason=lost_reason, engaged_on=None)
    )
    clean_text(v, "idempotency_key", idempotency_key, max_length=IDEMPOTENCY_KEY_MAX)
    v.raise_if_any()
    if customer_id is not None:
        get_visible_customer(session, actor=actor, customer_id=customer_id)
    owner_id = actor.id if owner_id is None else owner_id
    require_rep_assignable(session, actor=actor, rep_id=owner_id)
    row = Opportunity(
        customer_id=customer_id,
        owner_id=owner_id,
        created_on=created_on,
        idempotency_key=idempotency_key,
        **values,
    )
    saved, inserted = add_once(session, row, key=idempotency_key)
    if not inserted:
        return _visible_opportunity(session, actor=actor, opportunity_id=saved.id)
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


def _check_version(session: Session, v: Validator, row: Opportunity, raw: RawInt) -> None:
    version = clean_id(v, "version", raw, required=True)
    v.raise_if_any()
    if row.version != version:
        raise _conflict(session, row)


def _save(
    session: Session, *, actor: Actor, row: Opportunity, action: str, values: dict[str, Any], now: datetime
) -> None:
    """Apply the changed values under optimistic locking and record the audit event."""
    before = snapshot(row)
    changed = {key: value for key, value in values.items() if getattr(row, key) != value}
    if not changed:
        return
    if not flush_versioned(session, row, changed):
        session.refresh(row)
        raise _conflict(session, row)
    record(
        session,
        actor=actor,
        action=action,
        entity=ENTITY,
        entity_id=row.id,
        changes=_audit_changes(before, snapshot(row)),
        at=now,
    )


def update_opportunity(
    session: Session, *, actor: Actor, opportunity_id: int, data: OpportunityInput, now: datetime
) -> Opportunity:
    """Save the edited title, customer, product, amount or owner of a deal the actor may see."""
    row = _visible_opportunity(session, actor=actor, opportunity_id=opportunity_id)
    v = Validator()
    values, customer_id, owner_id = _clean_common(session, v, data)
    _check_version(session, v, row, data.version)
    if customer_id is not None and customer_id != row.customer_id:
        get_visible_customer(session, actor=actor, customer_id=customer_id)
    values["customer_id"] = customer_id
    if owner_id is not None and owner_id != row.owner_id:
        require_rep_assignable(session, actor=actor, rep_id=owner_id)
        values["owner_id"] = owner_id
    _save(session, actor=actor, row=row, action="update", values=values, now=now)
    return row


def move_stage(session: Session, *, actor: Actor, opportunity_id: int, data: StageMove, now: datetime) -> Opportunity:
    """Move a deal to another stage; won/lost closes it on the given date, an open stage reopens it."""
    row = _visible_opportunity(session, actor=actor, opportunity_id=opportunity_id)
    stages = pipeline_stages(session)
    v = Validator()
    stage = _clean_stage(v, "stage", data.stage, stages)
    on = clean_date(v, "on", data.on, now=now) or now.date()
    lost_reason = clean_text(v, "lost_reason", data.lost_reason, max_length=LOST_REASON_MAX)
    if "on" not in v.errors:
        check_date_order(v, "on", row.created_on, on)
    values = _stage_changes(v, stages=stages, stage=stage, on=on, lost_reason=lost_reason, engaged_on=row.engaged_on)
    _check_version(session, v, row, data.version)
    if stage is not None and stage.key == row.stage:
        return row
    _save(session, actor=actor, row=row, action="move", values=values, now=now)
    return row


def delete_opportunity(session: Session, *, actor: Actor, opportunity_id: int, now: datetime) -> Opportunity:
    """Soft-delete a deal the actor may see."""
    row = _visible_opportunity(session, actor=actor, opportunity_id=opportunity_id)
    _save(session, actor=actor, row=row, action="delete", values={"deleted_at": now}, now=now)
    return row


def _in_scope(query: Select[*tuple[Any, ...]], *, actor: Actor, filters: Filters) -> Select[*tuple[Any, ...]]:
    """Join a deal's stage, owner and customer; keep the live deals the actor sees, narrowed by the filters.

    The filters narrow like the KPI scope: by the owner's team, region or id and the customer's
    tier (a tier filter leaves out deals without a customer).
    """
    query = (
        query.join(PipelineStage, PipelineStage.key == Opportunity.stage)
        .join(User, User.id == Opportunity.owner_id)
        .outerjoin(Customer, Customer.id == Opportunity.customer_id)
        .where(
            record_scope(actor, rep_column=Opportunity.owner_id, customer_column=Opportunity.customer_id),
            Opportunity.deleted_at.is_(None),
            or_(Customer.id.is_(None), Customer.deleted_at.is_(None)),
        )
    )
    if filters.rep_id is not None:
        query = query.where(Opportunity.owner_id == filters.rep_id)
    if filters.team:
        query = query.where(User.team == filters.team)
    if filters.region:
        query = query.where(User.region == filters.region)
    if filters.tier:
        query = query.where(Customer.tier == filters.tier)
    return query


def open_pipeline(session: Session, *, actor: Actor, filters: Filters | None = None) -> OpenPipeline:
    """Count the deals in an open stage the actor sees (the board's scope and filters) and sum their amount."""
    query = _in_scope(
        select(func.count(Opportunity.id), func.sum(Opportunity.amount)).select_from(Opportunity),
        actor=actor,
        filters=filters or Filters(),
    ).where(PipelineStage.kind == StageKind.OPEN.value)
    count, amount = session.execute(query).one()
    return OpenPipeline(count=int(count or 0), amount=float(amount or 0))


def opportunities_by_stage(
    session: Session,
    *,
    actor: Actor,
    filters: Filters | None = None,
    closed_since: date | None = None,
    limit: int = BOARD_LIMIT,
) -> pd.DataFrame:
    """Return the pipeline the actor may see, by stage then amount (columns: BOARD_COLUMNS).

    Open deals are always listed; closed deals only from `closed_since` on when it is given.
    Amount is float (NaN when the deal has no amount); product_id / product_name are missing
    (NaN / None) when the deal names no product.
    """
    columns = select(
        Opportunity.id,
        Opportunity.title,
        Opportunity.customer_id,
        Customer.name,
        Opportunity.owner_id,
        User.display_name,
        Opportunity.product_id,
        Product.name,
        Opportunity.amount,
        Opportunity.stage,
        PipelineStage.kind,
        PipelineStage.position,
        Opportunity.created_on,
        Opportunity.engaged_on,
        Opportunity.closed_on,
        Opportunity.lost_reason,
        Opportunity.version,
    ).select_from(Opportunity)
    query = (
        _in_scope(columns, actor=actor, filters=filters or Filters())
        .outerjoin(Product, Product.id == Opportunity.product_id)
        .order_by(PipelineStage.position, Opportunity.amount.desc().nulls_last(), Opportunity.id)
        .limit(max(0, limit))
    )
    if closed_since is not None:
        query = query.where(or_(Opportunity.closed_on.is_(None), Opportunity.closed_on >= closed_since))
    frame = pd.DataFrame([tuple(row) for row in session.execute(query)], columns=BOARD_COLUMNS)
    frame["amount"] = frame["amount"].map(lambda value: None if value is None else float(value)).astype("float64")
    return frame
