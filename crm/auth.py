"""Password login with lockout, and session revocation, decided in the database (SPEC §2, §3).

Several server processes share one database, so the failed-login counter, the lock and the
revocation time live in the users row and change through single UPDATE statements.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

import bcrypt
from sqlalchemy import ColumnElement, CursorResult, DateTime, and_, case, literal, or_, select, update
from sqlalchemy.orm import Session

from crm.access import Actor
from crm.errors import AuthenticationError, FieldError, NotFoundError, ValidationError, Validator
from crm.models import AuditEvent, User

MAX_FAILED_LOGINS = 5
LOCKOUT_MINUTES = 15
LOCKOUT = timedelta(minutes=LOCKOUT_MINUTES)
BCRYPT_ROUNDS = 12  # tests monkeypatch this down to 4
MIN_PASSWORD_LENGTH = 10
# bcrypt only reads the first 72 bytes (bcrypt 5 refuses longer input outright).
MAX_PASSWORD_BYTES = 72
# The session a password change keeps must be issued strictly after the revocation it causes.
REISSUE_STEP = timedelta(microseconds=1)
DUMMY_PASSWORD = "not a real password: keeps the timing of unknown users honest"
BCRYPT_HASH = re.compile(r"^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$")

INVALID_CREDENTIALS = "auth.invalid_credentials"
WRONG_PASSWORD = "auth.wrong_password"
PASSWORD_TOO_SHORT = "error.password_too_short"
PASSWORD_TOO_LONG = "error.password_too_long"
PASSWORD_SAME = "error.password_same"
PASSWORD_WHITESPACE = "error.password_whitespace"

LOGIN_OK = "login_ok"
LOGIN_FAILED = "login_failed"
LOCKED = "locked"
LOGOUT = "logout"
PASSWORD_CHANGED = "password_changed"
USER_ENTITY = "user"


def normalize_username(username: str) -> str:
    """Return the stored form of a username (trimmed, lower-case)."""
    return username.strip().lower()


def hash_password(password: str) -> str:
    """Hash a password with bcrypt at BCRYPT_ROUNDS (ValueError past MAX_PASSWORD_BYTES)."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii")


def is_usable_hash(password_hash: str | None) -> bool:
    """Tell whether a stored hash is a bcrypt hash a password could match."""
    return bool(password_hash) and BCRYPT_HASH.match(password_hash or "") is not None


@cache
def _dummy_hash(rounds: int) -> str:
    return bcrypt.hashpw(DUMMY_PASSWORD.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def _checkpw(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except (ValueError, UnicodeError):
        # Over-long passwords and malformed hashes: a refusal, never an exception.
        return False


def verify_password(password: str, password_hash: str) -> bool:
    """Tell whether the password matches the hash; unusable hashes ("!…") never match."""
    if not is_usable_hash(password_hash):
        # Spend a real check anyway so an account without a usable password is not told apart by timing.
        _checkpw(password, _dummy_hash(BCRYPT_ROUNDS))
        return False
    return _checkpw(password, password_hash)


def validate_new_password(
    validator: Validator, *, field: str, password: str, username: str, current_password: str | None = None
) -> None:
    """Add the reasons a new password is refused to the validator (length, bytes, sameness)."""
    if not password:
        validator.add(field, "error.required")
        return
    if len(password) < MIN_PASSWORD_LENGTH:
        validator.add(field, PASSWORD_TOO_SHORT, min=MIN_PASSWORD_LENGTH)
    elif len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        validator.add(field, PASSWORD_TOO_LONG, max=MAX_PASSWORD_BYTES)
    elif password != password.strip():
        # Login forms (streamlit-authenticator among them) strip what is typed; such a password could never match.
        validator.add(field, PASSWORD_WHITESPACE)
    elif password.lower() == normalize_username(username) or password == current_password:
        validator.add(field, PASSWORD_SAME)


def _audit(
    session: Session, *, actor_id: int | None, action: str, user_id: int | None, at: datetime, **details: Any
) -> None:
    # Sign-in events change no figure any cache holds, so unlike crm.audit.record they leave the
    # data version alone (bumping it would throw every cached dashboard away at each login).
    session.add(
        AuditEvent(
            at=at,
            actor_id=actor_id,
            action=action,
            entity=USER_ENTITY,
            entity_id=None if user_id is None else str(user_id),
            changes={name: [None, value] for name, value in details.items()} or None,
        )
    )


def _lock_active(now: datetime) -> ColumnElement[bool]:
    return and_(User.locked_until.is_not(None), User.locked_until > now)


def _lock_expired(now: datetime) -> ColumnElement[bool]:
    return and_(User.locked_until.is_not(None), User.locked_until <= now)


def _record_failure(session: Session, *, user_id: int, now: datetime) -> tuple[int, bool]:
    """Count one failed attempt in a single UPDATE; return (count, whether this attempt locked the account).

    Every SET expression reads the row as the database holds it at that moment, so attempts from
    several processes add up instead of overwriting each other. A lock that has run out restarts
    the count.
    """
    lock_until = now + LOCKOUT
    new_count = case((_lock_expired(now), 1), else_=User.failed_logins + 1)
    new_lock = case(
        (_lock_active(now), User.locked_until),
        (new_count >= MAX_FAILED_LOGINS, literal(lock_until, DateTime())),
        else_=literal(None, DateTime()),
    )
    row = session.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_logins=new_count, locked_until=new_lock)
        .returning(User.failed_logins, User.locked_until)
        .execution_options(synchronize_session="fetch")
    ).one()
    return int(row.failed_logins), row.locked_until == lock_until


def _fresh_actor(session: Session, user_id: int) -> Actor:
    user = session.scalars(select(User).where(User.id == user_id).execution_options(populate_existing=True)).one()
    return Actor.from_user(user)


def authenticate(session: Session, *, username: str, password: str, now: datetime) -> Actor:
    """Check a login against the database and return the actor, or raise AuthenticationError.

    Unknown user, wrong password, inactive user and locked account raise the same error after a
    comparable amount of work, so neither the message nor the timing tells them apart. Runs its
    own transactions and commits (a failed attempt must be counted although the call raises), so
    pass a session that holds nothing else.
    """
    key = normalize_username(username)
    user = session.execute(
        select(User.id, User.password_hash, User.active, User.locked_until).where(User.username == key)
    ).one_or_none()
    # End the read before the deliberately slow hash check, so no write lock is held through it.
    session.commit()
    if user is None:
        verify_password(password, _dummy_hash(BCRYPT_ROUNDS))
        _audit(session, actor_id=None, action=LOGIN_FAILED, user_id=None, at=now, username=key[:64])
        session.commit()
        raise AuthenticationError(INVALID_CREDENTIALS)

    password_ok = verify_password(password, user.password_hash)
    if user.locked_until is not None and user.locked_until > now:
        _audit(session, actor_id=user.id, action=LOGIN_FAILED, user_id=user.id, at=now, reason="locked")
    elif not user.active:
        _audit(session, actor_id=user.id, action=LOGIN_FAILED, user_id=user.id, at=now, reason="inactive")
    elif password_ok:
        # Succeed only if no other process locked, deactivated or re-keyed the account meanwhile.
        result = session.execute(
            update(User)
            .where(
                User.id == user.id,
                User.active.is_(True),
                User.password_hash == user.password_hash,
                or_(User.locked_until.is_(None), User.locked_until <= now),
            )
            .values(failed_logins=0, locked_until=None)
            .execution_options(synchronize_session="fetch")
        )
        if cast(CursorResult[Any], result).rowcount == 1:
            _audit(session, actor_id=user.id, action=LOGIN_OK, user_id=user.id, at=now)
            actor = _fresh_actor(session, user.id)
            session.commit()
            return actor
        _audit(session, actor_id=user.id, action=LOGIN_FAILED, user_id=user.id, at=now, reason="changed")
    else:
        count, just_locked = _record_failure(session, user_id=user.id, now=now)
        action = LOCKED if just_locked else LOGIN_FAILED
        _audit(session, actor_id=user.id, action=action, user_id=user.id, at=now, failed_logins=count)
    session.commit()
    raise AuthenticationError(INVALID_CREDENTIALS)


def session_valid(session: Session, *, username: str, issued_at: datetime, now: datetime) -> Actor | None:
    """Return the actor of a login issued at `issued_at` if it still stands at `now`, else None.

    It stands while the user exists, is active, is not locked, and logged in strictly after the
    last revocation. Call it on every page load: it is one indexed lookup.
    """
    user = session.scalars(
        select(User).where(User.username == normalize_username(username)).execution_options(populate_existing=True)
    ).one_or_none()
    if user is None or not user.active:
        return None
    if user.locked_until is not None and user.locked_until > now:
        return None
    if user.sessions_revoked_at is not None and not issued_at > user.sessions_revoked_at:
        return None
    return Actor.from_user(user)


def revoke_sessions(session: Session, *, user_id: int, now: datetime) -> None:
    """End every login of the user issued at or before `now` (every browser, every process)."""
    session.execute(
        update(User)
        .where(User.id == user_id)
        .values(sessions_revoked_at=now)
        .execution_options(synchronize_session="fetch")
    )


def logout(session: Session, *, actor: Actor, now: datetime) -> None:
    """Log the actor out everywhere: revoke their sessions and audit it."""
    revoke_sessions(session, user_id=actor.id, now=now)
    _audit(session, actor_id=actor.id, action=LOGOUT, user_id=actor.id, at=now)


def change_password(
    session: Session, *, actor: Actor, current_password: str, new_password: str, now: datetime
) -> datetime:
    """Change the actor's own password and revoke their other sessions.

    Return the issue time to put in the current browser's new cookie (just after the revocation),
    so the session that made the change stays logged in.
    """
    user = session.get(User, actor.id)
    if user is None or not user.active:
        raise NotFoundError("user", actor.id)
    if not verify_password(current_password, user.password_hash):
        raise ValidationError({"current_password": FieldError(WRONG_PASSWORD)})
    validator = Validator()
    validate_new_password(
        validator,
        field="new_password",
        password=new_password,
        username=user.username,
        current_password=current_password,
    )
    validator.raise_if_any()
    user.password_hash = hash_password(new_password)
    session.flush()
    revoke_sessions(session, user_id=user.id, now=now)
    _audit(session, actor_id=actor.id, action=PASSWORD_CHANGED, user_id=user.id, at=now)
    return now + REISSUE_STEP
