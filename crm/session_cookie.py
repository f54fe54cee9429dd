"""The signed login cookie: issue and verify the JWT a browser keeps between visits. No streamlit here.

The token is a superset of what streamlit-authenticator 0.4.2 writes (`username`, `exp_date` in
POSIX seconds, HS256 over the cookie key), plus the exact issue time in integer microseconds, which
session revocation needs (crm.auth.session_valid compares it with users.sessions_revoked_at).
No registered JWT claim (`exp`, `iat`, `nbf`) is used on purpose: the library's own decoder only
catches DecodeError, so an expired `exp` would crash it instead of being ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

COOKIE_ALGORITHM = "HS256"
USERNAME_CLAIM = "username"
EXPIRY_CLAIM = "exp_date"  # the name streamlit-authenticator uses, so either side can read the token
ISSUED_AT_CLAIM = "issued_at_us"
EPOCH = datetime(1970, 1, 1)
ONE_MICROSECOND = timedelta(microseconds=1)
MICROSECONDS_PER_SECOND = 1_000_000


@dataclass(frozen=True)
class CookiePayload:
    """What a correctly signed cookie says, before any expiry or revocation policy."""

    username: str
    exp_date: float  # POSIX seconds
    issued_at: datetime | None  # naive UTC with microseconds; None in tokens the library wrote itself


@dataclass(frozen=True)
class SessionToken:
    """A cookie that is signed, unexpired and carries its issue time (naive UTC datetimes)."""

    username: str
    issued_at: datetime
    expires_at: datetime


def _to_microseconds(moment: datetime) -> int:
    return (_naive_utc(moment) - EPOCH) // ONE_MICROSECOND


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def issue_token(*, key: str, username: str, issued_at: datetime, expiry_days: float) -> str:
    """Sign a cookie token for a login at `issued_at` (naive UTC) that lasts `expiry_days`."""
    if not key:
        raise ValueError("a cookie key is required to sign the login cookie")
    issued_us = _to_microseconds(issued_at)
    expires_us = _to_microseconds(issued_at + timedelta(days=expiry_days))
    payload = {
        USERNAME_CLAIM: username,
        EXPIRY_CLAIM: expires_us / MICROSECONDS_PER_SECOND,
        ISSUED_AT_CLAIM: issued_us,
    }
    return jwt.encode(payload, key, algorithm=COOKIE_ALGORITHM)


def decode_token(token: str, *, key: str) -> CookiePayload | None:
    """Return the payload of a token signed with `key`, or None if it is forged, garbled or malformed."""
    if not token or not key:
        return None
    try:
        payload = jwt.decode(token, key, algorithms=[COOKIE_ALGORITHM])
    except jwt.InvalidTokenError:
        return None
    username = payload.get(USERNAME_CLAIM)
    exp_date = payload.get(EXPIRY_CLAIM)
    issued_us = payload.get(ISSUED_AT_CLAIM)
    if not isinstance(username, str) or not username:
        return None
    if isinstance(exp_date, bool) or not isinstance(exp_date, int | float):
        return None
    if issued_us is not None and (isinstance(issued_us, bool) or not isinstance(issued_us, int)):
        return None
    issued_at = None if issued_us is None else EPOCH + issued_us * ONE_MICROSECOND
    return CookiePayload(username=username, exp_date=float(exp_date), issued_at=issued_at)


def verify_token(token: str, *, key: str, now: datetime) -> SessionToken | None:
    """Return the session a cookie proves at `now`, or None if it is invalid, expired or lacks an issue time.

    Tokens without an issue time (written by the library itself) are refused: they could never be
    revoked. Whether the user may still use the session is crm.auth.session_valid's decision.
    """
    payload = decode_token(token, key=key)
    if payload is None or payload.issued_at is None:
        return None
    expires_at = EPOCH + round(payload.exp_date * MICROSECONDS_PER_SECOND) * ONE_MICROSECOND
    if _naive_utc(now) >= expires_at:
        return None
    return SessionToken(username=payload.username, issued_at=payload.issued_at, expires_at=expires_at)
