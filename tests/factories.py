"""Direct ORM builders for hand-made fixtures (they bypass validation on purpose)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from crm.access import Actor
from crm.models import (
    AttitudeScore,
    Complaint,
    Customer,
    Interaction,
    Opportunity,
    Order,
    Role,
    SurveyResponse,
    Target,
    User,
)

# bcrypt hash of "correct horse battery staple" (cost 4) so fixtures need no slow hashing.
TEST_PASSWORD = "correct horse battery staple"
TEST_PASSWORD_HASH = "$2b$04$pBZkpV3NRzIXaZkcZVy85.ieowxVoNM3x5VfITRqlYOFYqlNpBO6O"
BASE_TIME = datetime(2026, 1, 1, 9, 0)
_seq = itertools.count(1)


def make_user(
    session: Session,
    username: str,
    *,
    role: Role = Role.REP,
    team: str | None = None,
    region: str | None = None,
    manager: User | None = None,
    active: bool = True,
) -> User:
    user = User(
        username=username,
        display_name=username.title(),
        email=f"{username}@example.com",
        role=role.value,
        team=team,
        region=region,
        manager_id=manager.id if manager else None,
        active=active,
        password_hash=TEST_PASSWORD_HASH,
        language="en",
        failed_logins=0,
        created_at=BASE_TIME,
    )
    session.add(user)
    session.flush()
    return user


def actor(user: User) -> Actor:
    return Actor.from_user(user)


def make_customer(
    session: Session,
    name: str,
    *,
    owner: User | None,
    tier: str = "customer",
    created_at: datetime = BASE_TIME,
    phone: str | None = None,
    region: str | None = None,
) -> Customer:
    customer = Customer(
        name=name,
        name_key=name.lower(),
        kind="company",
        tier=tier,
        status="active",
        source="other",
        owner_id=owner.id if owner else None,
        phone=phone,
        region=region,
        created_at=created_at,
        updated_at=created_at,
    )
    session.add(customer)
    session.flush()
    customer.code = f"C{customer.id:06d}"
    session.flush()
    return customer


def make_interaction(
    session: Session,
    customer: Customer,
    rep: User,
    occurred_at: datetime,
    *,
    kind: str = "visit",
    outcome: str | None = "neutral",
    next_follow_up: date | None = None,
) -> Interaction:
    row = Interaction(
        customer_id=customer.id,
        rep_id=rep.id,
        kind=kind,
        occurred_at=occurred_at,
        outcome=outcome,
        next_follow_up=next_follow_up,
        created_at=occurred_at,
        subject=f"{kind} {next(_seq)}",
    )
    session.add(row)
    session.flush()
    return row


def make_order(session: Session, customer: Customer, rep: User, ordered_on: date, amount: str | int) -> Order:
    row = Order(
        customer_id=customer.id,
        rep_id=rep.id,
        ordered_on=ordered_on,
        amount=Decimal(str(amount)),
        quantity=1,
        created_at=datetime.combine(ordered_on, datetime.min.time()),
    )
    session.add(row)
    session.flush()
    return row


def make_opportunity(
    session: Session,
    customer: Customer | None,
    owner: User,
    stage: str,
    *,
    amount: str | int = 1000,
    closed_on: date | None = None,
    engaged_on: date | None = None,
    created_on: date = date(2026, 1, 1),
) -> Opportunity:
    row = Opportunity(
        customer_id=customer.id if customer else None,
        owner_id=owner.id,
        stage=stage,
        amount=Decimal(str(amount)),
        created_on=created_on,
        engaged_on=engaged_on,
        closed_on=closed_on,
    )
    session.add(row)
    session.flush()
    return row


def make_survey(
    session: Session,
    customer: Customer,
    rep: User,
    responded_on: date,
    overall: int,
    *,
    recommend: int | None = None,
    quality: int | None = None,
    service: int | None = None,
    price: int | None = None,
    after_sales: int | None = None,
) -> SurveyResponse:
    row = SurveyResponse(
        customer_id=customer.id,
        rep_id=rep.id,
        responded_on=responded_on,
        overall=overall,
        recommend=recommend,
        quality=quality,
        service=service,
        price=price,
        after_sales=after_sales,
        created_at=datetime.combine(responded_on, datetime.min.time()),
    )
    session.add(row)
    session.flush()
    return row


def make_complaint(
    session: Session,
    customer: Customer,
    assignee: User,
    opened_at: datetime,
    *,
    sla_hours: int = 24,
    resolved_after_hours: float | None = None,
    severity: str = "high",
) -> Complaint:
    row = Complaint(
        customer_id=customer.id,
        opened_at=opened_at,
        category="quality",
        severity=severity,
        description="broken",
        assignee_id=assignee.id,
        due_at=opened_at + timedelta(hours=sla_hours),
        resolved_at=None if resolved_after_hours is None else opened_at + timedelta(hours=resolved_after_hours),
        created_at=opened_at,
    )
    session.add(row)
    session.flush()
    return row


def make_target(
    session: Session,
    rep: User,
    month: date,
    *,
    revenue: str | int | None = None,
    new_customers: int | None = None,
    visits: int | None = None,
) -> Target:
    row = Target(
        rep_id=rep.id,
        month=month,
        revenue_target=None if revenue is None else Decimal(str(revenue)),
        new_customer_target=new_customers,
        visit_target=visits,
        updated_at=BASE_TIME,
    )
    session.add(row)
    session.flush()
    return row


def make_attitude(
    session: Session,
    rep: User,
    scorer: User,
    start: date,
    end: date,
    items: tuple[int, int, int, int],
) -> AttitudeScore:
    row = AttitudeScore(
        rep_id=rep.id,
        scorer_id=scorer.id,
        period_start=start,
        period_end=end,
        initiative=items[0],
        cooperation=items[1],
        responsibility=items[2],
        discipline=items[3],
        updated_at=BASE_TIME,
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class Org:
    """A small organisation for KPI scope tests: two teams, two regions, three reps."""

    admin: User
    north_manager: User  # team north
    south_manager: User  # team south
    rep_a: User  # north, east
    rep_b: User  # north, west
    rep_c: User  # south, east


def make_org(session: Session) -> Org:
    north_manager = make_user(session, "north.manager", role=Role.MANAGER, team="north", region="east")
    south_manager = make_user(session, "south.manager", role=Role.MANAGER, team="south", region="east")
    return Org(
        admin=make_user(session, "admin", role=Role.ADMIN),
        north_manager=north_manager,
        south_manager=south_manager,
        rep_a=make_user(session, "rep.a", team="north", region="east", manager=north_manager),
        rep_b=make_user(session, "rep.b", team="north", region="west", manager=north_manager),
        rep_c=make_user(session, "rep.c", team="south", region="east", manager=south_manager),
    )


def soft_delete(
    session: Session, row: Customer | Interaction | Order | Opportunity | SurveyResponse | Complaint
) -> None:
    """Put a row in the recycle bin (deleted_at set), as the app's delete does."""
    row.deleted_at = BASE_TIME
    session.flush()
