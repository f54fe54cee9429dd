"""The acting user and the record-level scoping of every query and write (SPEC §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true
from sqlalchemy.orm import Session

from crm.errors import NotFoundError, PermissionDeniedError
from crm.models import Customer, Role, User


@dataclass(frozen=True)
class Actor:
    """Who is acting: every query and write in crm/ takes one."""

    id: int
    username: str
    display_name: str
    role: Role
    team: str | None
    region: str | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_manager(self) -> bool:
        return self.role is Role.MANAGER

    @property
    def is_rep(self) -> bool:
        return self.role is Role.REP

    @classmethod
    def from_user(cls, user: User) -> Actor:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=Role(user.role),
            team=user.team,
            region=user.region,
        )


@dataclass(frozen=True)
class Filters:
    """Narrowing of a KPI or list scope chosen in the UI (all optional)."""

    team: str | None = None
    region: str | None = None
    rep_id: int | None = None
    tier: str | None = None


def load_actor(session: Session, *, username: str) -> Actor:
    """Return the active user with this username as an Actor, or raise NotFoundError."""
    user = session.scalar(select(User).where(User.username == username.strip().lower(), User.active.is_(True)))
    if user is None:
        raise NotFoundError("user", username)
    return Actor.from_user(user)


def team_member_ids(actor: Actor) -> Select[int]:
    """Select the ids of the users in the actor's team (empty when the actor has no team)."""
    if actor.team is None:
        return select(User.id).where(false())
    return select(User.id).where(User.team == actor.team)


def customer_visible(actor: Actor) -> ColumnElement[bool]:
    """Return the WHERE clause of the customers (deleted or not) the actor may see."""
    if actor.is_admin:
        return true()
    if actor.is_manager:
        return or_(Customer.owner_id.is_(None), Customer.owner_id.in_(team_member_ids(actor)))
    return Customer.owner_id == actor.id


def visible_customer_ids(actor: Actor) -> Select[int]:
    """Select the ids of the live (not deleted) customers the actor may see."""
    return select(Customer.id).where(customer_visible(actor), Customer.deleted_at.is_(None))


def record_visible(
    actor: Actor, *, rep_column: ColumnElement[Any], customer_column: ColumnElement[Any]
) -> ColumnElement[bool]:
    """Return the WHERE clause of child records (visits, orders, …) the actor may see.

    A record is visible when it sits on a visible customer or the actor (or, for a manager,
    someone of the team) is the rep on it, even on a customer someone else owns.
    """
    if actor.is_admin:
        return true()
    if actor.is_manager:
        return or_(rep_column.in_(team_member_ids(actor)), customer_column.in_(visible_customer_ids(actor)))
    return or_(rep_column == actor.id, customer_column.in_(visible_customer_ids(actor)))


def kpi_rep_ids(actor: Actor, filters: Filters | None = None) -> Select[int]:
    """Select the users whose figures the actor's KPIs count, narrowed by the filters.

    Per-rep figures belong to the rep on the record (SPEC §5), so the KPI scope is a set of reps:
    a rep sees their own, a manager their team, an admin everyone.
    """
    filters = filters or Filters()
    query = select(User.id)
    if actor.is_rep:
        query = query.where(User.id == actor.id)
    elif actor.is_manager:
        query = query.where(User.team == actor.team) if actor.team else query.where(false())
    if filters.team:
        query = query.where(User.team == filters.team)
    if filters.region:
        query = query.where(User.region == filters.region)
    if filters.rep_id is not None:
        query = query.where(User.id == filters.rep_id)
    return query


def get_visible_customer(
    session: Session, *, actor: Actor, customer_id: int, include_deleted: bool = False
) -> Customer:
    """Return a customer the actor may see, or raise the one 'not found or not yours' error."""
    query = select(Customer).where(Customer.id == customer_id, customer_visible(actor))
    if not include_deleted:
        query = query.where(Customer.deleted_at.is_(None))
    customer = session.scalar(query)
    if customer is None:
        raise NotFoundError("customer", customer_id)
    return customer


def can_act_as_rep(session: Session, *, actor: Actor, rep_id: int) -> bool:
    """Tell whether the actor may put this user as the rep (or owner) on a record."""
    if actor.is_admin:
        return session.get(User, rep_id) is not None
    if actor.is_rep:
        return rep_id == actor.id
    rep = session.get(User, rep_id)
    return rep is not None and rep.team is not None and rep.team == actor.team


def require_rep_assignable(session: Session, *, actor: Actor, rep_id: int) -> None:
    """Raise PermissionDeniedError unless the actor may assign records to this rep."""
    if not can_act_as_rep(session, actor=actor, rep_id=rep_id):
        raise PermissionDeniedError("assign to this rep")


def assignable_reps(session: Session, *, actor: Actor) -> list[User]:
    """Return the active users the actor may own records for, by display name."""
    query = select(User).where(User.active.is_(True), User.role.in_([Role.REP.value, Role.MANAGER.value]))
    if actor.is_rep:
        query = query.where(User.id == actor.id)
    elif actor.is_manager:
        query = query.where(User.team == actor.team) if actor.team else query.where(User.id == actor.id)
    return list(session.scalars(query.order_by(User.display_name)))


def require_role(actor: Actor, *roles: Role) -> None:
    """Raise PermissionDeniedError unless the actor has one of the roles."""
    if actor.role not in roles:
        raise PermissionDeniedError(f"requires role {' or '.join(r.value for r in roles)}")


def manages_rep(session: Session, *, actor: Actor, rep_id: int) -> bool:
    """Tell whether the actor may score, set targets for, or see the scorecard of this rep."""
    if actor.is_admin:
        return True
    if actor.is_rep:
        return rep_id == actor.id
    rep = session.get(User, rep_id)
    return rep is not None and rep.team is not None and rep.team == actor.team


def customer_in_filters(filters: Filters) -> ColumnElement[bool]:
    """Return the customer-side part of the filters (tier) as a WHERE clause on Customer."""
    return and_(Customer.tier == filters.tier) if filters.tier else true()
