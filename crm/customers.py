"""Customer records (客户档案): validated, scoped, audited writes and the reads the screens need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, and_, desc, func, or_, select, true, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

from crm.access import Actor, customer_visible, get_visible_customer, require_rep_assignable, require_role
from crm.audit import diff, record, snapshot
from crm.errors import ConflictError, Validator
from crm.models import (
    Complaint,
    Contact,
    Customer,
    CustomerKind,
    CustomerSize,
    CustomerStatus,
    Interaction,
    Opportunity,
    Order,
    Product,
    Role,
    Source,
    SurveyResponse,
    Tier,
    User,
)
from crm.validation import (
    RawInt,
    RawText,
    clean_choice,
    clean_email,
    clean_id,
    clean_phone,
    clean_text,
    digits_only_sql,
    flush_versioned,
    like_prefix,
    phone_digits,
)

ENTITY = "customer"
CODE_FORMAT = "C{:06d}"
NAME_MAX = 200
SHORT_TEXT_MAX = 64
ADDRESS_MAX = 300
PHONE_MAX = 32
URL_MAX = 254
NOTES_MAX = 4000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# How many rows of each history table the profile shows (newest first).
PROFILE_HISTORY_LIMIT = 50
DUPLICATE_LIMIT = 10
# Columns that change on every write; the audit trail records what the user changed.
BOOKKEEPING_FIELDS = frozenset({"updated_at", "updated_by_id", "version"})

LIST_COLUMNS = [
    "id",
    "code",
    "name",
    "kind",
    "tier",
    "status",
    "industry",
    "region",
    "city",
    "phone",
    "email",
    "owner_id",
    "owner_name",
    "created_at",
    "updated_at",
    "deleted_at",
    "version",
]


@dataclass(frozen=True)
class CustomerInput:
    """Raw values of the customer form.

    `owner_id` is used on create only (empty: a rep owns the customer themself, a manager or
    admin puts it in the unassigned pool); change the owner with `reassign_customer`.
    `version` is the row version the editor loaded; `update_customer` requires it.
    """

    name: RawText
    kind: RawText = CustomerKind.COMPANY.value
    tier: RawText = Tier.LEAD.value
    status: RawText = CustomerStatus.ACTIVE.value
    source: RawText = Source.OTHER.value
    owner_id: RawInt = None
    industry: RawText = None
    region: RawText = None
    province: RawText = None
    city: RawText = None
    address: RawText = None
    size: RawText = None
    phone: RawText = None
    email: RawText = None
    website: RawText = None
    notes: RawText = None
    version: RawInt = None


@dataclass(frozen=True)
class CustomerPage:
    """One page of a customer list; `rows` has the columns in LIST_COLUMNS."""

    rows: pd.DataFrame
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class DuplicateCandidate:
    """A visible customer that looks like the one being entered."""

    id: int
    code: str | None
    name: str
    phone: str | None
    owner_name: str | None
    same_name: bool
    same_phone: bool


@dataclass(frozen=True)
class CustomerProfile:
    """Everything the customer page shows; money is float (sum of Decimal amounts).

    DataFrame columns (newest first, at most PROFILE_HISTORY_LIMIT rows each):
    - interactions: id, occurred_at, kind, rep_id, rep_name, subject, outcome, duration_minutes,
      next_follow_up, location
    - orders: id, ordered_on, amount, quantity, product_id, product_name, rep_id, rep_name
    - opportunities: id, title, stage, amount, owner_id, owner_name, created_on, closed_on, lost_reason
    - surveys: id, responded_on, overall, quality, service, price, after_sales, recommend, rep_id,
      rep_name, comment
    - complaints: id, opened_at, category, severity, assignee_id, assignee_name, due_at,
      resolved_at, satisfied
    """

    customer: Customer
    owner_name: str | None
    contacts: list[Contact]
    interactions: pd.DataFrame
    orders: pd.DataFrame
    opportunities: pd.DataFrame
    surveys: pd.DataFrame
    complaints: pd.DataFrame
    lifetime_value: float
    order_count: int


def _clean(data: CustomerInput) -> tuple[dict[str, Any], int | None, int | None]:
    """Validate every field; return the column values, the owner id and the loaded version."""
    v = Validator()
    values: dict[str, Any] = {
        "name": clean_text(v, "name", data.name, required=True, max_length=NAME_MAX),
        "kind": clean_choice(v, "kind", data.kind, CustomerKind, required=True),
        "tier": clean_choice(v, "tier", data.tier, Tier, required=True),
        "status": clean_choice(v, "status", data.status, CustomerStatus, required=True),
        "source": clean_choice(v, "source", data.source, Source, required=True),
        "industry": clean_text(v, "industry", data.industry, max_length=SHORT_TEXT_MAX),
        "region": clean_text(v, "region", data.region, max_length=SHORT_TEXT_MAX),
        "province": clean_text(v, "province", data.province, max_length=SHORT_TEXT_MAX),
        "city": clean_text(v, "city", data.city, max_length=SHORT_TEXT_MAX),
        "address": clean_text(v, "address", data.address, max_length=ADDRESS_MAX),
        "size": clean_choice(v, "size", data.size, CustomerSize),
        "phone": clean_phone(v, "phone", data.phone, max_length=PHONE_MAX),
        "email": clean_email(v, "email", data.email),
        "website": clean_text(v, "website", data.website, max_length=URL_MAX),
        "notes": clean_text(v, "notes", data.notes, max_length=NOTES_MAX),
    }
    owner_id = clean_id(v, "owner_id", data.owner_id)
    version = clean_id(v, "version", data.version)
    v.raise_if_any()
    values["name_key"] = values["name"].lower()
    return values, owner_id, version


def _audit_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {key: change for key, change in diff(before, after).items() if key not in BOOKKEEPING_FIELDS}


def _check_owner(session: Session, *, actor: Actor, owner_id: int | None) -> None:
    """Refuse an owner the actor may not give customers to, or one who cannot own them."""
    if owner_id is None:
        return
    require_rep_assignable(session, actor=actor, rep_id=owner_id)
    owner = session.get(User, owner_id)
    if owner is None or not owner.active or owner.role == Role.ADMIN.value:
        v = Validator()
        v.add("owner_id", "error.not_allowed")
        v.raise_if_any()


def _display_name(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return session.scalar(select(User.display_name).where(User.id == user_id))


def _conflict(session: Session, customer: Customer) -> ConflictError:
    return ConflictError(ENTITY, customer.id, _display_name(session, customer.updated_by_id), customer.updated_at)


def create_customer(session: Session, *, actor: Actor, data: CustomerInput, now: datetime) -> Customer:
    """Create a customer; a rep always owns what they create, a manager gives it to the team or pool."""
    values, owner_id, _ = _clean(data)
    if actor.is_rep and owner_id is None:
        owner_id = actor.id
    _check_owner(session, actor=actor, owner_id=owner_id)
    customer = Customer(
        **values,
        owner_id=owner_id,
        created_at=now,
        updated_at=now,
        updated_by_id=actor.id,
    )
    session.add(customer)
    session.flush()
    # The code derives from the id, known only after the INSERT; a bulk UPDATE sets it without
    # bumping the row version, so a new customer starts at version 1.
    code = CODE_FORMAT.format(customer.id)
    session.execute(
        update(Customer).where(Customer.id == customer.id).values(code=code),
        execution_options={"synchronize_session": False},
    )
    set_committed_value(customer, "code", code)
    record(
        session,
        actor=actor,
        action="create",
        entity=ENTITY,
        entity_id=customer.id,
        changes=_audit_changes({}, snapshot(customer)),
        at=now,
    )
    return customer


def update_customer(
    session: Session, *, actor: Actor, customer_id: int, data: CustomerInput, now: datetime
) -> Customer:
    """Save the edited fields, refusing the save if someone changed the customer since it was loaded."""
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    values, _, version = _clean(data)
    if version is None:
        v = Validator()
        v.add("version", "error.required")
        v.raise_if_any()
    if customer.version != version:
        raise _conflict(session, customer)
    changed = {key: value for key, value in values.items() if getattr(customer, key) != value}
    if changed:
        _write(session, actor=actor, customer=customer, action="update", values=changed, now=now)
    return customer


def _write(
    session: Session, *, actor: Actor, customer: Customer, action: str, values: dict[str, Any], now: datetime
) -> None:
    """Apply the values under optimistic locking and record the audit event."""
    before = snapshot(customer)
    if not flush_versioned(session, customer, {**values, "updated_at": now, "updated_by_id": actor.id}):
        session.refresh(customer)
        raise _conflict(session, customer)
    record(
        session,
        actor=actor,
        action=action,
        entity=ENTITY,
        entity_id=customer.id,
        changes=_audit_changes(before, snapshot(customer)),
        at=now,
    )


def delete_customer(session: Session, *, actor: Actor, customer_id: int, now: datetime) -> Customer:
    """Move a customer to the recycle bin (soft delete)."""
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    _write(session, actor=actor, customer=customer, action="delete", values={"deleted_at": now}, now=now)
    return customer


def restore_customer(session: Session, *, actor: Actor, customer_id: int, now: datetime) -> Customer:
    """Bring a customer back from the recycle bin (managers for their team, admins)."""
    require_role(actor, Role.MANAGER, Role.ADMIN)
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id, include_deleted=True)
    if customer.deleted_at is None:
        return customer
    _write(session, actor=actor, customer=customer, action="restore", values={"deleted_at": None}, now=now)
    return customer


def reassign_customer(
    session: Session, *, actor: Actor, customer_id: int, owner_id: int | None, now: datetime
) -> Customer:
    """Give a customer to another rep, or to the pool with owner_id None (managers, admins)."""
    require_role(actor, Role.MANAGER, Role.ADMIN)
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id)
    _check_owner(session, actor=actor, owner_id=owner_id)
    if customer.owner_id == owner_id:
        return customer
    _write(session, actor=actor, customer=customer, action="reassign", values={"owner_id": owner_id}, now=now)
    return customer


def search_clause(query: str) -> ColumnElement[bool]:
    """Return the WHERE clause matching a name, phone or code prefix (case-insensitive)."""
    text = query.strip()
    if not text:
        return true()
    clauses = [like_prefix(Customer.name_key, text.lower()), like_prefix(Customer.code, text.upper())]
    if phone_digits(text):
        clauses.append(like_prefix(Customer.phone, text))
    return or_(*clauses)


def _list_query(
    actor: Actor,
    *,
    query: str,
    tier: str | None,
    status: str | None,
    owner_id: int | None,
    unassigned: bool,
    region: str | None,
    include_deleted: bool,
    only_deleted: bool,
) -> list[ColumnElement[bool]]:
    where = [customer_visible(actor), search_clause(query)]
    if only_deleted:
        where.append(Customer.deleted_at.is_not(None))
    elif not include_deleted:
        where.append(Customer.deleted_at.is_(None))
    if tier:
        where.append(Customer.tier == tier)
    if status:
        where.append(Customer.status == status)
    if unassigned:
        where.append(Customer.owner_id.is_(None))
    elif owner_id is not None:
        where.append(Customer.owner_id == owner_id)
    if region:
        where.append(Customer.region == region)
    return where


def list_customers(
    session: Session,
    *,
    actor: Actor,
    query: str = "",
    tier: str | None = None,
    status: str | None = None,
    owner_id: int | None = None,
    unassigned: bool = False,
    region: str | None = None,
    include_deleted: bool = False,
    only_deleted: bool = False,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> CustomerPage:
    """Return one page of the customers the actor may see, by name, with the total count.

    `query` matches a name prefix (case-insensitive), a phone prefix or a code prefix;
    `only_deleted` lists the recycle bin, `include_deleted` lists live and deleted together.
    """
    page = max(1, page)
    page_size = min(max(1, page_size), MAX_PAGE_SIZE)
    where = _list_query(
        actor,
        query=query,
        tier=tier,
        status=status,
        owner_id=owner_id,
        unassigned=unassigned,
        region=region,
        include_deleted=include_deleted,
        only_deleted=only_deleted,
    )
    total = session.scalar(select(func.count()).select_from(Customer).where(*where)) or 0
    owner = aliased(User)
    rows = session.execute(
        select(
            Customer.id,
            Customer.code,
            Customer.name,
            Customer.kind,
            Customer.tier,
            Customer.status,
            Customer.industry,
            Customer.region,
            Customer.city,
            Customer.phone,
            Customer.email,
            Customer.owner_id,
            owner.display_name,
            Customer.created_at,
            Customer.updated_at,
            Customer.deleted_at,
            Customer.version,
        )
        .outerjoin(owner, owner.id == Customer.owner_id)
        .where(*where)
        .order_by(Customer.name_key, Customer.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=LIST_COLUMNS)
    return CustomerPage(rows=frame, total=int(total), page=page, page_size=page_size)


def find_duplicates(
    session: Session, *, actor: Actor, name: str | None, phone: str | None, exclude_id: int | None = None
) -> list[DuplicateCandidate]:
    """Return visible live customers with the same name (case-insensitive) or the same phone digits."""
    name_key = (name or "").strip().lower()
    digits = phone_digits(phone or "")
    same_name = Customer.name_key == name_key if name_key else None
    same_phone = digits_only_sql(Customer.phone) == digits if digits else None
    matches = [clause for clause in (same_name, same_phone) if clause is not None]
    if not matches:
        return []
    owner = aliased(User)
    query: Select[*tuple[Any, ...]] = (
        select(Customer.id, Customer.code, Customer.name, Customer.phone, owner.display_name, Customer.name_key)
        .outerjoin(owner, owner.id == Customer.owner_id)
        .where(customer_visible(actor), Customer.deleted_at.is_(None), or_(*matches))
        .order_by(Customer.name_key, Customer.id)
        .limit(DUPLICATE_LIMIT)
    )
    if exclude_id is not None:
        query = query.where(Customer.id != exclude_id)
    return [
        DuplicateCandidate(
            id=row[0],
            code=row[1],
            name=row[2],
            phone=row[3],
            owner_name=row[4],
            same_name=bool(name_key) and row[5] == name_key,
            same_phone=bool(digits) and phone_digits(row[3] or "") == digits,
        )
        for row in session.execute(query)
    ]


def _frame(session: Session, query: Select[*tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(row) for row in session.execute(query)], columns=columns)


def _money(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    frame[column] = frame[column].map(lambda value: None if value is None else float(value)).astype("float64")
    return frame


def customer_profile(
    session: Session, *, actor: Actor, customer_id: int, include_deleted: bool = False
) -> CustomerProfile:
    """Return a customer with its contacts, recent history and lifetime value."""
    customer = get_visible_customer(session, actor=actor, customer_id=customer_id, include_deleted=include_deleted)
    limit = PROFILE_HISTORY_LIMIT
    rep = aliased(User)
    interactions = _frame(
        session,
        select(
            Interaction.id,
            Interaction.occurred_at,
            Interaction.kind,
            Interaction.rep_id,
            rep.display_name,
            Interaction.subject,
            Interaction.outcome,
            Interaction.duration_minutes,
            Interaction.next_follow_up,
            Interaction.location,
        )
        .join(rep, rep.id == Interaction.rep_id)
        .where(Interaction.customer_id == customer.id, Interaction.deleted_at.is_(None))
        .order_by(desc(Interaction.occurred_at), desc(Interaction.id))
        .limit(limit),
        [
            "id",
            "occurred_at",
            "kind",
            "rep_id",
            "rep_name",
            "subject",
            "outcome",
            "duration_minutes",
            "next_follow_up",
            "location",
        ],
    )
    orders = _frame(
        session,
        select(
            Order.id,
            Order.ordered_on,
            Order.amount,
            Order.quantity,
            Order.product_id,
            Product.name,
            Order.rep_id,
            rep.display_name,
        )
        .join(rep, rep.id == Order.rep_id)
        .outerjoin(Product, Product.id == Order.product_id)
        .where(Order.customer_id == customer.id, Order.deleted_at.is_(None))
        .order_by(desc(Order.ordered_on), desc(Order.id))
        .limit(limit),
        ["id", "ordered_on", "amount", "quantity", "product_id", "product_name", "rep_id", "rep_name"],
    )
    opportunities = _frame(
        session,
        select(
            Opportunity.id,
            Opportunity.title,
            Opportunity.stage,
            Opportunity.amount,
            Opportunity.owner_id,
            rep.display_name,
            Opportunity.created_on,
            Opportunity.closed_on,
            Opportunity.lost_reason,
        )
        .join(rep, rep.id == Opportunity.owner_id)
        .where(Opportunity.customer_id == customer.id, Opportunity.deleted_at.is_(None))
        .order_by(desc(Opportunity.created_on), desc(Opportunity.id))
        .limit(limit),
        ["id", "title", "stage", "amount", "owner_id", "owner_name", "created_on", "closed_on", "lost_reason"],
    )
    surveys = _frame(
        session,
        select(
            SurveyResponse.id,
            SurveyResponse.responded_on,
            SurveyResponse.overall,
            SurveyResponse.quality,
            SurveyResponse.service,
            SurveyResponse.price,
            SurveyResponse.after_sales,
            SurveyResponse.recommend,
            SurveyResponse.rep_id,
            rep.display_name,
            SurveyResponse.comment,
        )
        .join(rep, rep.id == SurveyResponse.rep_id)
        .where(SurveyResponse.customer_id == customer.id, SurveyResponse.deleted_at.is_(None))
        .order_by(desc(SurveyResponse.responded_on), desc(SurveyResponse.id))
        .limit(limit),
        [
            "id",
            "responded_on",
            "overall",
            "quality",
            "service",
            "price",
            "after_sales",
            "recommend",
            "rep_id",
            "rep_name",
            "comment",
        ],
    )
    complaints = _frame(
        session,
        select(
            Complaint.id,
            Complaint.opened_at,
            Complaint.category,
            Complaint.severity,
            Complaint.assignee_id,
            rep.display_name,
            Complaint.due_at,
            Complaint.resolved_at,
            Complaint.satisfied,
        )
        .join(rep, rep.id == Complaint.assignee_id)
        .where(Complaint.customer_id == customer.id, Complaint.deleted_at.is_(None))
        .order_by(desc(Complaint.opened_at), desc(Complaint.id))
        .limit(limit),
        [
            "id",
            "opened_at",
            "category",
            "severity",
            "assignee_id",
            "assignee_name",
            "due_at",
            "resolved_at",
            "satisfied",
        ],
    )
    totals = session.execute(
        select(func.coalesce(func.sum(Order.amount), 0), func.count(Order.id)).where(
            and_(Order.customer_id == customer.id, Order.deleted_at.is_(None))
        )
    ).one()
    contacts = list(
        session.scalars(
            select(Contact)
            .where(Contact.customer_id == customer.id)
            .order_by(desc(Contact.is_primary), Contact.name, Contact.id)
        )
    )
    return CustomerProfile(
        customer=customer,
        owner_name=_display_name(session, customer.owner_id),
        contacts=contacts,
        interactions=interactions,
        orders=_money(orders, "amount"),
        opportunities=_money(opportunities, "amount"),
        surveys=surveys,
        complaints=complaints,
        lifetime_value=float(totals[0]),
        order_count=int(totals[1]),
    )


def customer_regions(session: Session, *, actor: Actor) -> list[str]:
    """Return the distinct regions of the live customers the actor sees, for the list filter."""
    query = (
        select(Customer.region)
        .where(customer_visible(actor), Customer.deleted_at.is_(None), Customer.region.is_not(None))
        .distinct()
        .order_by(Customer.region)
    )
    return [region for region in session.scalars(query) if region]


def customer_list_rows(
    session: Session,
    *,
    actor: Actor,
    query: str = "",
    tier: str | None = None,
    status: str | None = None,
    owner_id: int | None = None,
    unassigned: bool = False,
    region: str | None = None,
    only_deleted: bool = False,
) -> pd.DataFrame:
    """Return every row of a filtered customer list (columns: LIST_COLUMNS), for an export."""
    where = _list_query(
        actor,
        query=query,
        tier=tier,
        status=status,
        owner_id=owner_id,
        unassigned=unassigned,
        region=region,
        include_deleted=False,
        only_deleted=only_deleted,
    )
    owner = aliased(User)
    columns = [owner.display_name if name == "owner_name" else getattr(Customer, name) for name in LIST_COLUMNS]
    rows = session.execute(
        select(*columns)
        .outerjoin(owner, owner.id == Customer.owner_id)
        .where(*where)
        .order_by(Customer.name_key, Customer.id)
    ).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=LIST_COLUMNS)
