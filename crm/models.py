"""SQLAlchemy 2.x ORM model of the CRM (SPEC §3)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MONEY = Numeric(14, 2)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    REP = "rep"


class CustomerKind(StrEnum):
    COMPANY = "company"
    PERSON = "person"


class CustomerSize(StrEnum):
    LARGE = "large"
    MEDIUM = "medium"
    SMALL = "small"


class Tier(StrEnum):
    LEAD = "lead"
    PROSPECT = "prospect"
    CUSTOMER = "customer"
    KEY = "key"
    STRATEGIC = "strategic"


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    LOST = "lost"


class Source(StrEnum):
    EXHIBITION = "exhibition"
    REFERRAL = "referral"
    WEBSITE = "website"
    COLD_CALL = "cold_call"
    EVENT = "event"
    OTHER = "other"


class InteractionKind(StrEnum):
    VISIT = "visit"
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    MESSAGE = "message"
    OTHER = "other"


class Outcome(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


def _values(enum_cls: type[enum.Enum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum_cls)


def _in(column: str, enum_cls: type[enum.Enum]) -> str:
    return f"{column} IN ({_values(enum_cls)})"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", Role), name="role"),
        CheckConstraint("username = lower(username)", name="username_lower"),
        CheckConstraint("failed_logins >= 0", name="failed_logins"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16), index=True)
    team: Mapped[str | None] = mapped_column(String(64), index=True)
    region: Mapped[str | None] = mapped_column(String(64), index=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(8), default="en")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    sessions_revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    manager: Mapped[User | None] = relationship(remote_side=[id])


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (CheckConstraint("list_price >= 0", name="list_price"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    series: Mapped[str | None] = mapped_column(String(64))
    list_price: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(_in("kind", CustomerKind), name="kind"),
        CheckConstraint(f"size IS NULL OR {_in('size', CustomerSize)}", name="size"),
        CheckConstraint(_in("tier", Tier), name="tier"),
        CheckConstraint(_in("status", CustomerStatus), name="status"),
        CheckConstraint(_in("source", Source), name="source"),
        CheckConstraint("version >= 1", name="version"),
        Index("ix_customers_owner_deleted", "owner_id", "deleted_at"),
        Index("ix_customers_created", "created_at"),
        Index("ix_customers_name_phone", "name", "phone"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str | None] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Lower-cased name for case-insensitive prefix search through a plain b-tree index.
    name_key: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(16), default=CustomerKind.COMPANY.value)
    industry: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    province: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(300))
    size: Mapped[str | None] = mapped_column(String(16))
    tier: Mapped[str] = mapped_column(String(16), default=Tier.LEAD.value, index=True)
    status: Mapped[str] = mapped_column(String(16), default=CustomerStatus.ACTIVE.value)
    source: Mapped[str] = mapped_column(String(16), default=Source.OTHER.value)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    website: Mapped[str | None] = mapped_column(String(254))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Derived, kept exact by crm.summaries on every flush (never set by hand): the date of the
    # customer's first live order and of its first live won opportunity, NULL when none.
    first_order_on: Mapped[date | None] = mapped_column(Date)
    first_won_on: Mapped[date | None] = mapped_column(Date)

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    contacts: Mapped[list[Contact]] = relationship(back_populates="customer")

    __mapper_args__ = {"version_id_col": version}


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    title: Mapped[str | None] = mapped_column(String(128))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    birthday: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    customer: Mapped[Customer] = relationship(back_populates="contacts")


class Interaction(Base):
    __tablename__ = "interactions"
    __table_args__ = (
        CheckConstraint(_in("kind", InteractionKind), name="kind"),
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', Outcome)}", name="outcome"),
        CheckConstraint("duration_minutes IS NULL OR duration_minutes >= 0", name="duration"),
        # Covers the per rep and day recompute of crm.summaries (migration 0005): a save reads the
        # rep's records of the day from the index alone, however many there are.
        Index("ix_interactions_rep_time_cover", "rep_id", "occurred_at", "kind", "customer_id", "deleted_at"),
        Index("ix_interactions_customer_time", "customer_id", "occurred_at"),
        Index("ix_interactions_time_kind", "occurred_at", "kind"),
        Index("ix_interactions_followup", "rep_id", "next_follow_up"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    rep_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(16))
    next_follow_up: Mapped[date | None] = mapped_column(Date)
    location: Mapped[str | None] = mapped_column(String(200))
    # Client-generated token of the form that created this row; a double submit reuses it.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class PipelineStage(Base):
    """A configurable opportunity stage; `kind` says whether it is open, won or lost."""

    __tablename__ = "pipeline_stages"
    __table_args__ = (CheckConstraint(_in("kind", StageKind), name="kind"),)

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))


class Opportunity(Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount"),
        Index("ix_opportunities_owner_closed", "owner_id", "closed_on"),
        Index("ix_opportunities_closed_stage", "closed_on", "stage"),
        Index("ix_opportunities_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    title: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    stage: Mapped[str] = mapped_column(ForeignKey("pipeline_stages.key"))
    created_on: Mapped[date] = mapped_column(Date)
    engaged_on: Mapped[date | None] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    lost_reason: Mapped[str | None] = mapped_column(String(200))
    # The add form's token: a double submit of the form stores one deal (migration 0003).
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    __mapper_args__ = {"version_id_col": version}


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount"),
        CheckConstraint("quantity >= 1", name="quantity"),
        Index("ix_orders_rep_date_cover", "rep_id", "ordered_on", "customer_id", "amount", "deleted_at"),
        Index("ix_orders_customer_date", "customer_id", "ordered_on"),
        Index("ix_orders_date", "ordered_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    rep_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ordered_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    # The won opportunity this order came from (Maven import); unique so re-import adds nothing.
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class SurveyResponse(Base):
    __tablename__ = "survey_responses"
    __table_args__ = (
        CheckConstraint("overall BETWEEN 1 AND 5", name="overall"),
        CheckConstraint("quality IS NULL OR quality BETWEEN 1 AND 5", name="quality"),
        CheckConstraint("service IS NULL OR service BETWEEN 1 AND 5", name="service"),
        CheckConstraint("price IS NULL OR price BETWEEN 1 AND 5", name="price"),
        CheckConstraint("after_sales IS NULL OR after_sales BETWEEN 1 AND 5", name="after_sales"),
        CheckConstraint("recommend IS NULL OR recommend BETWEEN 0 AND 10", name="recommend"),
        Index("ix_survey_rep_date", "rep_id", "responded_on"),
        Index("ix_survey_date", "responded_on"),
        Index("ix_survey_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    rep_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    responded_on: Mapped[date] = mapped_column(Date)
    overall: Mapped[int] = mapped_column(Integer)
    quality: Mapped[int | None] = mapped_column(Integer)
    service: Mapped[int | None] = mapped_column(Integer)
    price: Mapped[int | None] = mapped_column(Integer)
    after_sales: Mapped[int | None] = mapped_column(Integer)
    recommend: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class Complaint(Base):
    __tablename__ = "complaints"
    __table_args__ = (
        CheckConstraint(_in("severity", Severity), name="severity"),
        CheckConstraint("resolved_at IS NULL OR resolved_at >= opened_at", name="resolved_after_opened"),
        Index("ix_complaints_assignee_resolved", "assignee_id", "resolved_at"),
        Index("ix_complaints_due", "resolved_at", "due_at"),
        Index("ix_complaints_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    opened_at: Mapped[datetime] = mapped_column(DateTime)
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8))
    description: Mapped[str] = mapped_column(Text)
    assignee_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    resolution: Mapped[str | None] = mapped_column(Text)
    satisfied: Mapped[bool | None] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    __mapper_args__ = {"version_id_col": version}


class Target(Base):
    __tablename__ = "targets"
    __table_args__ = (
        UniqueConstraint("rep_id", "month"),
        CheckConstraint("revenue_target IS NULL OR revenue_target >= 0", name="revenue"),
        CheckConstraint("new_customer_target IS NULL OR new_customer_target >= 0", name="new_customers"),
        CheckConstraint("visit_target IS NULL OR visit_target >= 0", name="visits"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rep_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    month: Mapped[date] = mapped_column(Date)  # first day of the month
    revenue_target: Mapped[Decimal | None] = mapped_column(MONEY)
    new_customer_target: Mapped[int | None] = mapped_column(Integer)
    visit_target: Mapped[int | None] = mapped_column(Integer)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class AttitudeScore(Base):
    __tablename__ = "attitude_scores"
    __table_args__ = (
        UniqueConstraint("rep_id", "period_start", "period_end", "scorer_id"),
        CheckConstraint("period_end > period_start", name="period"),
        *(
            CheckConstraint(f"{item} BETWEEN 0 AND 100", name=item)
            for item in ("initiative", "cooperation", "responsibility", "discipline")
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rep_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # exclusive
    scorer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    initiative: Mapped[int] = mapped_column(Integer)
    cooperation: Mapped[int] = mapped_column(Integer)
    responsibility: Mapped[int] = mapped_column(Integer)
    discipline: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class AppraisalScheme(Base):
    """A version of the appraisal weights, grade bands and bonus coefficients (SPEC §6)."""

    __tablename__ = "appraisal_schemes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON)  # metric -> weight, sums to 100
    bands: Mapped[dict[str, Any]] = mapped_column(JSON)  # grade -> minimum composite
    coefficients: Mapped[dict[str, Any]] = mapped_column(JSON)  # grade -> bonus coefficient
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class AppraisalPeriod(Base):
    """A closed appraisal period: its scorecards are frozen in `AppraisalSnapshot`."""

    __tablename__ = "appraisal_periods"
    __table_args__ = (UniqueConstraint("period_start", "period_end", "team"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    # The team the close applies to; NULL means the whole company (closed by an admin).
    team: Mapped[str | None] = mapped_column(String(64))
    scheme_id: Mapped[int] = mapped_column(ForeignKey("appraisal_schemes.id"))
    closed: Mapped[bool] = mapped_column(Boolean, default=True)
    closed_at: Mapped[datetime] = mapped_column(DateTime)
    closed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reopened_at: Mapped[datetime | None] = mapped_column(DateTime)
    reopened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class AppraisalSnapshot(Base):
    __tablename__ = "appraisal_snapshots"
    __table_args__ = (UniqueConstraint("period_id", "rep_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("appraisal_periods.id", ondelete="CASCADE"))
    rep_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    scorecard: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditEvent(Base):
    """Append-only trail of every write."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_entity", "entity", "entity_id"),
        Index("ix_audit_at", "at"),
        Index("ix_audit_actor", "actor_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)  # UTC
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # field -> [old, new]


class DataVersion(Base):
    """One row whose counter every write bumps; caches key on it so no figure is stale."""

    __tablename__ = "data_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


# Sums of many amounts (a rep's day) get two more digits than one amount.
SUM_MONEY = Numeric(16, 2)


class Tallies:
    """The additive KPI tallies of rep_day_stats and day_stats (see RepDayStat)."""

    interactions: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    revenue: Mapped[Decimal] = mapped_column(SUM_MONEY, default=Decimal(0))
    responses: Mapped[int] = mapped_column(Integer, default=0)
    csat_sum: Mapped[int] = mapped_column(Integer, default=0)  # sum of overall scores
    csat_good: Mapped[int] = mapped_column(Integer, default=0)  # overall >= 4
    recommend_n: Mapped[int] = mapped_column(Integer, default=0)  # responses with a recommend score
    promoters: Mapped[int] = mapped_column(Integer, default=0)  # recommend 9–10
    detractors: Mapped[int] = mapped_column(Integer, default=0)  # recommend 0–6
    quality_sum: Mapped[int] = mapped_column(Integer, default=0)
    quality_n: Mapped[int] = mapped_column(Integer, default=0)
    service_sum: Mapped[int] = mapped_column(Integer, default=0)
    service_n: Mapped[int] = mapped_column(Integer, default=0)
    price_sum: Mapped[int] = mapped_column(Integer, default=0)
    price_n: Mapped[int] = mapped_column(Integer, default=0)
    after_sales_sum: Mapped[int] = mapped_column(Integer, default=0)
    after_sales_n: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    lost: Mapped[int] = mapped_column(Integer, default=0)
    won_amount: Mapped[Decimal] = mapped_column(SUM_MONEY, default=Decimal(0))
    complaints_resolved: Mapped[int] = mapped_column(Integer, default=0)
    complaints_on_time: Mapped[int] = mapped_column(Integer, default=0)  # resolved_at <= due_at
    resolution_seconds: Mapped[int] = mapped_column(BigInteger, default=0)  # opened → resolved, whole seconds


class RepDayStat(Tallies, Base):
    """Per rep and day tallies of every KPI that adds up over reps and days (SPEC §5, §6).

    Derived data, kept exact by crm.summaries in the transaction of every ORM write and rebuilt
    from scratch by `python -m crm summaries rebuild`. A record counts on its date for the rep on
    it (interaction's rep and day, order's rep and ordered_on, response's rep and responded_on,
    opportunity's owner and closed_on when won or lost, complaint's assignee and resolved day),
    only while neither it nor its customer is soft-deleted. The primary key leads with the day
    so a period's rows for all reps lie together (SQLite stores the table in key order).
    """

    __tablename__ = "rep_day_stats"
    __table_args__ = (Index("ix_rep_day_stats_rep_day", "rep_id", "day"), {"sqlite_with_rowid": False})

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    rep_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class DayStat(Tallies, Base):
    """rep_day_stats summed over all reps, per day: the whole-company figures read one row a day.

    Kept exact with rep_day_stats (crm.summaries recomputes the touched days from it).
    """

    __tablename__ = "day_stats"

    day: Mapped[date] = mapped_column(Date, primary_key=True)


class RepMonthStat(Tallies, Base):
    """rep_day_stats summed per rep and calendar month: a quarter of 200 reps is 600 rows, not 18,000.

    Kept exact with rep_day_stats (crm.summaries recomputes the touched months from it); read
    for the whole months of a period, the days of its partial months come from rep_day_stats.
    """

    __tablename__ = "rep_month_stats"
    __table_args__ = ({"sqlite_with_rowid": False},)

    month: Mapped[date] = mapped_column(Date, primary_key=True)  # first day of the month
    rep_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class RepMonthCustomers(Base):
    """Per rep and calendar month, the customers with live orders by that rep and their order counts.

    The distinct-customer loyalty figures (active, repeat purchase, retention) cannot be added up
    over reps or days, so they come from this instead of a pass over the orders: two packed
    arrays (little-endian uint32) of customer ids, ascending, and of each one's live orders in the
    month. A quarter of the whole company is 600 rows however long the history. The customer's
    own recycle-bin state is not applied here (readers drop soft-deleted customers), so deleting
    or restoring a customer rewrites nothing. Kept exact by crm.summaries in the write transaction.
    """

    __tablename__ = "rep_month_customers"
    __table_args__ = ({"sqlite_with_rowid": False},)

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    rep_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_ids: Mapped[bytes] = mapped_column(LargeBinary)
    order_counts: Mapped[bytes] = mapped_column(LargeBinary)


# Indexes of the summary reads and of the raw queries that remain (migration 0002). Partial
# indexes hold live rows only, so the KPI scans read the index alone and never the table; they
# end with deleted_at because SQLite counts an index as covering only if it holds every column
# the query names, the partial index's own WHERE included.
_LIVE_ORDER = Order.deleted_at.is_(None)
_LIVE_INTERACTION = Interaction.deleted_at.is_(None)
_LIVE_OPPORTUNITY = Opportunity.deleted_at.is_(None)
_DELETED_CUSTOMER = Customer.deleted_at.is_not(None)
Index(
    "ix_orders_live_date",
    Order.ordered_on,
    Order.customer_id,
    Order.rep_id,
    Order.amount,
    Order.deleted_at,
    sqlite_where=_LIVE_ORDER,
    postgresql_where=_LIVE_ORDER,
)
Index(
    "ix_interactions_live_time",
    Interaction.occurred_at,
    Interaction.kind,
    Interaction.rep_id,
    Interaction.customer_id,
    Interaction.deleted_at,
    sqlite_where=_LIVE_INTERACTION,
    postgresql_where=_LIVE_INTERACTION,
)
Index(
    "ix_opportunities_live_created",
    Opportunity.created_on,
    Opportunity.owner_id,
    Opportunity.stage,
    Opportunity.engaged_on,
    Opportunity.customer_id,
    Opportunity.deleted_at,
    sqlite_where=_LIVE_OPPORTUNITY,
    postgresql_where=_LIVE_OPPORTUNITY,
)
# The recycle bin is small: `customer_id NOT IN (deleted customers)` reads this index only.
Index(
    "ix_customers_deleted_ids",
    Customer.id,
    Customer.deleted_at,
    sqlite_where=_DELETED_CUSTOMER,
    postgresql_where=_DELETED_CUSTOMER,
)
Index("ix_customers_first_order", Customer.first_order_on, Customer.owner_id)
_LIVE_CUSTOMER = Customer.deleted_at.is_(None)
# Lead conversion: customers created in a period, by owner, converted by a first order or won deal.
Index(
    "ix_customers_live_created",
    Customer.created_at,
    Customer.owner_id,
    Customer.first_order_on,
    Customer.first_won_on,
    Customer.deleted_at,
    sqlite_where=_LIVE_CUSTOMER,
    postgresql_where=_LIVE_CUSTOMER,
)
# Prefix search (`LIKE 'abc%'`): PostgreSQL needs pattern operators unless the database collation
# is C; SQLite's LIKE is case-insensitive and uses only a NOCASE index. name_key is lower case
# and codes upper case, so the case-insensitive match finds the same rows.
SEARCH_COLUMNS = ("name_key", "code", "phone")
for _name in SEARCH_COLUMNS:
    _column = Customer.__table__.c[_name]
    Index(f"ix_customers_{_name}_pattern", _column, postgresql_ops={_name: "varchar_pattern_ops"}).ddl_if(
        dialect="postgresql"
    )
    Index(f"ix_customers_{_name}_nocase", _column.collate("NOCASE")).ddl_if(dialect="sqlite")

# Every ORM flush keeps rep_day_stats and customers.first_*_on exact (listeners registered on import).
import crm.summaries  # noqa: E402, F401
