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
        Index("ix_interactions_rep_time", "rep_id", "occurred_at"),
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
    version: Mapped[int] = mapped_column(Integer, default=1)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    __mapper_args__ = {"version_id_col": version}


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount"),
        CheckConstraint("quantity >= 1", name="quantity"),
        Index("ix_orders_rep_date", "rep_id", "ordered_on"),
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
