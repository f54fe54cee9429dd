"""The signed login cookie (crm.session_cookie): issue, verify, tamper, expiry."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jwt
import pytest

from crm.session_cookie import CookiePayload, SessionToken, decode_token, issue_token, verify_token

KEY = "k" * 48
ISSUED = datetime(2026, 3, 2, 9, 0, 0, 123457)
DAYS = 7.0
EXPIRES = ISSUED + timedelta(days=7)
US = timedelta(microseconds=1)


def token_for(username: str = "alice", issued_at: datetime = ISSUED, key: str = KEY) -> str:
    return issue_token(key=key, username=username, issued_at=issued_at, expiry_days=DAYS)


def test_round_trip_keeps_the_microsecond() -> None:
    assert verify_token(token_for(), key=KEY, now=ISSUED) == SessionToken(
        username="alice", issued_at=ISSUED, expires_at=EXPIRES
    )


@pytest.mark.parametrize(
    ("now", "accepted"),
    [
        (ISSUED, True),
        (EXPIRES - US, True),
        (EXPIRES, False),  # the expiry instant itself is out
        (EXPIRES + timedelta(days=1), False),
    ],
)
def test_expiry(now: datetime, accepted: bool) -> None:
    assert (verify_token(token_for(), key=KEY, now=now) is not None) is accepted


def _tampered(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    "token",
    [
        token_for(key="another key that is long enough to sign"),  # signed with another key
        _tampered(token_for(), username="root"),  # claims edited, old signature kept
        _tampered(token_for(), issued_at_us=4_000_000_000_000_000),  # pretends a login after any revocation
        token_for()[:-2],  # signature cut short
        "not.a.token",
        "",
        jwt.encode({"username": "alice", "exp_date": 1e12, "issued_at_us": 1}, KEY * 2, algorithm="HS512"),
        jwt.encode({"username": "alice", "exp_date": 1e12, "issued_at_us": 1}, None, algorithm="none"),  # unsigned
    ],
    ids=["other-key", "edited-claims", "edited-issue-time", "cut", "garbage", "empty", "hs512", "alg-none"],
)
def test_forged_or_garbled_tokens_are_refused(token: str) -> None:
    assert decode_token(token, key=KEY) is None
    assert verify_token(token, key=KEY, now=ISSUED) is None


@pytest.mark.parametrize(
    "claims",
    [
        {"username": 7, "exp_date": 1e12, "issued_at_us": 1},
        {"username": "", "exp_date": 1e12, "issued_at_us": 1},
        {"exp_date": 1e12, "issued_at_us": 1},
        {"username": "alice", "exp_date": "never", "issued_at_us": 1},
        {"username": "alice", "exp_date": True, "issued_at_us": 1},
        {"username": "alice", "exp_date": 1e12, "issued_at_us": 1.5},
        {"username": "alice", "exp_date": 1e12, "issued_at_us": "1"},
    ],
)
def test_malformed_claims_are_refused(claims: dict[str, Any]) -> None:
    assert decode_token(jwt.encode(claims, KEY, algorithm="HS256"), key=KEY) is None


def test_library_tokens_decode_but_never_verify() -> None:
    """streamlit-authenticator's own cookie has no issue time, so it could never be revoked."""
    exp_date = EXPIRES.replace(tzinfo=UTC).timestamp()
    library_token = jwt.encode({"username": "alice", "exp_date": exp_date}, KEY, algorithm="HS256")
    assert decode_token(library_token, key=KEY) == CookiePayload(username="alice", exp_date=exp_date, issued_at=None)
    assert verify_token(library_token, key=KEY, now=ISSUED) is None


def test_the_library_decoder_accepts_our_token() -> None:
    """Mirror CookieModel.get_cookie of streamlit-authenticator 0.4.2 on one of our tokens."""
    decoded = jwt.decode(token_for(), KEY, algorithms=["HS256"])
    assert decoded["username"] == "alice"
    assert decoded["exp_date"] == EXPIRES.replace(tzinfo=UTC).timestamp()
    assert not {"exp", "iat", "nbf"} & decoded.keys()  # registered claims would make its decoder raise


def test_aware_times_are_normalised_to_utc() -> None:
    beijing = timezone(timedelta(hours=8))
    in_beijing = ISSUED.replace(tzinfo=UTC).astimezone(beijing)
    token = issue_token(key=KEY, username="alice", issued_at=in_beijing, expiry_days=DAYS)
    assert verify_token(token, key=KEY, now=(ISSUED + US).replace(tzinfo=UTC)) == SessionToken(
        username="alice", issued_at=ISSUED, expires_at=EXPIRES
    )


def test_a_key_is_required() -> None:
    with pytest.raises(ValueError):
        issue_token(key="", username="alice", issued_at=ISSUED, expiry_days=DAYS)
    assert decode_token(token_for(), key="") is None
