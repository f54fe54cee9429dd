"""User administration (admins only, audited) and each user's remembered language."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from crm import audit
from crm.access import Actor, require_role
from crm.auth import hash_password, normalize_username, revoke_sessions, validate_new_password
from crm.errors import FieldError, NotFoundError, PermissionDeniedError, ValidationError, Validator
from crm.i18n import EN, LANGUAGES
from crm.models import Role, User

MAX_USERNAME_LENGTH = 64
MAX_DISPLAY_NAME_LENGTH = 128
MAX_EMAIL_LENGTH = 254
MAX_TEAM_LENGTH = 64
MAX_REGION_LENGTH = 64
# ASCII only: Python's and PostgreSQL's lower() agree on it, and the table checks username = lower(username).
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]*$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
ROLE_CHOICES = ", ".join(role.value for role in Role)
LANGUAGE_CHOICES = ", ".join(LANGUAGES)
INVALID_USERNAME = "error.invalid_username"
NOT_A_MANAGER = "error.not_a_manager"
USER_ENTITY = "user"
# Never copied into the audit trail or a listing.
SECRET_COLUMNS = frozenset({"password_hash"})

USER_COLUMNS = [
    "id",
    "username",
    "display_name",
    "email",
    "role",
    "team",
    "region",
    "manager_id",
    "manager_name",
    "active",
    "language",
    "failed_logins",
    "locked_until",
    "created_at",
]


@dataclass(frozen=True, kw_only=True)
class UserUpdate:
    """The fields an admin edits on an existing user."""

    display_name: str
    role: str
    email: str | None = None
    team: str | None = None
    region: str | None = None
    manager_id: int | None = None
    language: str = EN


@dataclass(frozen=True, kw_only=True)
class UserInput(UserUpdate):
    """A new user: the editable fields plus the login name and first password."""

    username: str
    password: str


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _clean_profile(session: Session, data: UserUpdate, validator: Validator, *, user_id: int | None) -> UserUpdate:
    """Validate the editable fields into the validator; return them trimmed."""
    display_name = data.display_name.strip() if data.display_name else ""
    if not display_name:
        validator.add("display_name", "error.required")
    elif len(display_name) > MAX_DISPLAY_NAME_LENGTH:
        validator.add("display_name", "error.too_long", max=MAX_DISPLAY_NAME_LENGTH)

    role = str(data.role or "").strip()
    if role not in {member.value for member in Role}:
        validator.add("role", "error.invalid_choice", choices=ROLE_CHOICES)

    email = _blank_to_none(data.email)
    if email is not None:
        if len(email) > MAX_EMAIL_LENGTH:
            validator.add("email", "error.too_long", max=MAX_EMAIL_LENGTH)
        elif not EMAIL_PATTERN.match(email):
            validator.add("email", "error.invalid_email")

    team = _blank_to_none(data.team)
    if team is not None and len(team) > MAX_TEAM_LENGTH:
        validator.add("team", "error.too_long", max=MAX_TEAM_LENGTH)
    region = _blank_to_none(data.region)
    if region is not None and len(region) > MAX_REGION_LENGTH:
        validator.add("region", "error.too_long", max=MAX_REGION_LENGTH)

    if data.language not in LANGUAGES:
        validator.add("language", "error.invalid_choice", choices=LANGUAGE_CHOICES)

    if data.manager_id is not None:
        manager = session.get(User, data.manager_id)
        is_manager = manager is not None and manager.active and manager.role == Role.MANAGER.value
        if not is_manager or data.manager_id == user_id:
            validator.add("manager_id", NOT_A_MANAGER)

    return replace(data, display_name=display_name, role=role, email=email, team=team, region=region)


def _clean_username(session: Session, username: str, validator: Validator) -> str:
    key = normalize_username(username or "")
    if not key:
        validator.add("username", "error.required")
    elif len(key) > MAX_USERNAME_LENGTH:
        validator.add("username", "error.too_long", max=MAX_USERNAME_LENGTH)
    elif not USERNAME_PATTERN.match(key):
        validator.add("username", INVALID_USERNAME)
    elif session.scalar(select(User.id).where(User.username == key)) is not None:
        validator.add("username", "error.duplicate", what="username")
    return key


def _public_snapshot(user: User) -> dict[str, Any]:
    return {name: value for name, value in audit.snapshot(user).items() if name not in SECRET_COLUMNS}


def _get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError("user", user_id)
    return user


def _save(session: Session, *, actor: Actor, user: User, before: dict[str, Any], action: str, now: datetime) -> None:
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        entity=USER_ENTITY,
        entity_id=user.id,
        changes=audit.diff(before, _public_snapshot(user)),
        at=now,
    )


def create_user(session: Session, *, actor: Actor, data: UserInput, now: datetime) -> User:
    """Create a user (admins only) with a validated profile and a hashed first password."""
    require_role(actor, Role.ADMIN)
    validator = Validator()
    username = _clean_username(session, data.username, validator)
    profile = _clean_profile(session, data, validator, user_id=None)
    validate_new_password(validator, field="password", password=data.password, username=username)
    validator.raise_if_any()
    user = User(
        username=username,
        display_name=profile.display_name,
        email=profile.email,
        role=profile.role,
        team=profile.team,
        region=profile.region,
        manager_id=profile.manager_id,
        active=True,
        password_hash=hash_password(data.password),
        language=profile.language,
        failed_logins=0,
        created_at=now,
    )
    try:
        # A savepoint, so a concurrent insert of the same username surfaces as a field error.
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError as error:
        raise ValidationError({"username": FieldError("error.duplicate", {"what": "username"})}) from error
    _save(session, actor=actor, user=user, before={}, action="create", now=now)
    return user


def update_user(session: Session, *, actor: Actor, user_id: int, data: UserUpdate, now: datetime) -> User:
    """Change a user's name, e-mail, role, team, region, manager and language (admins only)."""
    require_role(actor, Role.ADMIN)
    user = _get_user(session, user_id)
    validator = Validator()
    profile = _clean_profile(session, data, validator, user_id=user.id)
    if user.id == actor.id and profile.role != Role.ADMIN.value:
        # An admin who demoted themselves could leave nobody able to manage users.
        validator.add("role", "error.not_allowed")
    validator.raise_if_any()
    before = _public_snapshot(user)
    user.display_name = profile.display_name
    user.email = profile.email
    user.role = profile.role
    user.team = profile.team
    user.region = profile.region
    user.manager_id = profile.manager_id
    user.language = profile.language
    _save(session, actor=actor, user=user, before=before, action="update", now=now)
    return user


def deactivate_user(session: Session, *, actor: Actor, user_id: int, now: datetime) -> User:
    """Deactivate a user and end their sessions (admins only; never oneself)."""
    require_role(actor, Role.ADMIN)
    if user_id == actor.id:
        raise PermissionDeniedError("deactivate your own account")
    user = _get_user(session, user_id)
    before = _public_snapshot(user)
    user.active = False
    session.flush()
    revoke_sessions(session, user_id=user.id, now=now)
    session.refresh(user)
    _save(session, actor=actor, user=user, before=before, action="deactivate", now=now)
    return user


def reactivate_user(session: Session, *, actor: Actor, user_id: int, now: datetime) -> User:
    """Let a deactivated user log in again (admins only)."""
    require_role(actor, Role.ADMIN)
    user = _get_user(session, user_id)
    before = _public_snapshot(user)
    user.active = True
    _save(session, actor=actor, user=user, before=before, action="reactivate", now=now)
    return user


def reset_password(session: Session, *, actor: Actor, user_id: int, new_password: str, now: datetime) -> None:
    """Set a user's password (admins only); also unlock the account and end its sessions."""
    require_role(actor, Role.ADMIN)
    user = _get_user(session, user_id)
    validator = Validator()
    validate_new_password(validator, field="new_password", password=new_password, username=user.username)
    validator.raise_if_any()
    before = _public_snapshot(user)
    user.password_hash = hash_password(new_password)
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    revoke_sessions(session, user_id=user.id, now=now)
    session.refresh(user)
    # The hash itself never reaches the trail; the changed revocation time shows what happened.
    _save(session, actor=actor, user=user, before=before, action="reset_password", now=now)


def unlock_user(session: Session, *, actor: Actor, user_id: int, now: datetime) -> User:
    """Clear a user's failed-login count and lock (admins only)."""
    require_role(actor, Role.ADMIN)
    user = _get_user(session, user_id)
    before = _public_snapshot(user)
    user.failed_logins = 0
    user.locked_until = None
    _save(session, actor=actor, user=user, before=before, action="unlock", now=now)
    return user


def list_users(session: Session, *, actor: Actor) -> pd.DataFrame:
    """List every user for the admin page, by username (admins only; never a password hash).

    Columns: USER_COLUMNS; manager_id (Int64) and manager_name are missing (NA) without a
    manager; locked_until (missing when never locked) and created_at are naive UTC datetimes.
    """
    require_role(actor, Role.ADMIN)
    manager = aliased(User)
    rows = session.execute(
        select(
            User.id,
            User.username,
            User.display_name,
            User.email,
            User.role,
            User.team,
            User.region,
            User.manager_id,
            manager.display_name.label("manager_name"),
            User.active,
            User.language,
            User.failed_logins,
            User.locked_until,
            User.created_at,
        )
        .outerjoin(manager, User.manager_id == manager.id)
        .order_by(User.username)
    ).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=USER_COLUMNS)
    frame["manager_id"] = frame["manager_id"].astype("Int64")
    return frame


def set_language(session: Session, *, actor: Actor, language: str) -> None:
    """Remember the actor's own interface language (any role)."""
    if language not in LANGUAGES:
        raise ValidationError({"language": FieldError("error.invalid_choice", {"choices": LANGUAGE_CHOICES})})
    session.execute(
        update(User).where(User.id == actor.id).values(language=language).execution_options(synchronize_session="fetch")
    )


def get_language(session: Session, *, actor: Actor) -> str:
    """Return the actor's remembered interface language."""
    language = session.scalar(select(User.language).where(User.id == actor.id))
    return language if language in LANGUAGES else EN
