"""Login, lockout and session revocation decided in the database (crm.auth)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm import auth, users
from crm.access import Actor
from crm.db import session_factory
from crm.errors import AuthenticationError, NotFoundError, ValidationError
from crm.models import AuditEvent, Role, User
from tests.factories import TEST_PASSWORD, actor, make_user

NOW = datetime(2026, 3, 2, 9, 0, 0, 123456)
WRONG = "not the right password"
NEW_PASSWORD = "a brand new passphrase"
US = timedelta(microseconds=1)


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash at cost 4 so the suite stays fast (production uses BCRYPT_ROUNDS = 12)."""
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)


def login(session: Session, username: str, password: str, now: datetime = NOW) -> Actor:
    return auth.authenticate(session, username=username, password=password, now=now)


def fail(session: Session, username: str, times: int, now: datetime = NOW) -> None:
    for _ in range(times):
        with pytest.raises(AuthenticationError):
            login(session, username, WRONG, now)


def counters(engine: Engine, username: str) -> tuple[int, datetime | None]:
    """Read the committed counter and lock through a connection of its own."""
    with Session(engine) as other:
        row = other.execute(select(User.failed_logins, User.locked_until).where(User.username == username)).one()
        return row.failed_logins, row.locked_until


def refusal(session: Session, username: str, password: str, now: datetime = NOW) -> str:
    with pytest.raises(AuthenticationError) as caught:
        login(session, username, password, now)
    return str(caught.value)


# --- passwords ---------------------------------------------------------------------------------


def test_hash_and_verify_round_trip() -> None:
    hashed = auth.hash_password("correct horse")
    assert hashed.startswith("$2b$04$")  # cost follows the (monkeypatched) module constant
    assert auth.verify_password("correct horse", hashed)
    assert not auth.verify_password("correct horsE", hashed)


@pytest.mark.parametrize(
    ("password", "stored"),
    [
        (TEST_PASSWORD, "!"),  # a disabled account
        (TEST_PASSWORD, "!$2b$04$pBZkpV3NRzIXaZkcZVy85.ieowxVoNM3x5VfITRqlYOFYqlNpBO6O"),
        (TEST_PASSWORD, ""),
        (TEST_PASSWORD, "$2b$04$short"),
        (TEST_PASSWORD, TEST_PASSWORD),  # a plain-text leftover is not a hash
        ("x" * 73, "$2b$04$pBZkpV3NRzIXaZkcZVy85.ieowxVoNM3x5VfITRqlYOFYqlNpBO6O"),  # past bcrypt's 72 bytes
        ("密" * 25, "$2b$04$pBZkpV3NRzIXaZkcZVy85.ieowxVoNM3x5VfITRqlYOFYqlNpBO6O"),  # 75 bytes in UTF-8
    ],
)
def test_unusable_hashes_and_overlong_passwords_never_match_nor_raise(password: str, stored: str) -> None:
    assert auth.verify_password(password, stored) is False


# --- lockout -----------------------------------------------------------------------------------


def test_four_failures_still_allow_login_and_success_resets_the_counter(session: Session, engine: Engine) -> None:
    make_user(session, "alice")
    fail(session, "alice", auth.MAX_FAILED_LOGINS - 1)
    assert counters(engine, "alice") == (4, None)
    assert login(session, "alice", TEST_PASSWORD).username == "alice"
    assert counters(engine, "alice") == (0, None)


def test_fifth_failure_locks_for_fifteen_minutes_even_against_the_right_password(
    session: Session, engine: Engine
) -> None:
    make_user(session, "alice")
    fail(session, "alice", 5)
    assert counters(engine, "alice") == (5, NOW + timedelta(minutes=15))
    locked_message = refusal(session, "alice", TEST_PASSWORD, NOW + timedelta(minutes=14, seconds=59))
    unknown_message = refusal(session, "nobody", TEST_PASSWORD)
    assert locked_message == unknown_message == "auth.invalid_credentials"
    # Attempts while locked neither count nor extend the lock.
    assert counters(engine, "alice") == (5, NOW + timedelta(minutes=15))


def test_login_works_once_the_lock_has_run_out_and_the_counter_restarts(session: Session, engine: Engine) -> None:
    make_user(session, "alice")
    fail(session, "alice", 5)
    assert login(session, "alice", TEST_PASSWORD, NOW + timedelta(minutes=15)).username == "alice"
    assert counters(engine, "alice") == (0, None)


def test_a_failure_after_the_lock_ran_out_counts_from_one(session: Session, engine: Engine) -> None:
    make_user(session, "alice")
    fail(session, "alice", 5)
    later = NOW + timedelta(minutes=20)
    fail(session, "alice", 1, later)
    # 1, not 6: an old lock does not make the next mistake lock the account again.
    assert counters(engine, "alice") == (1, None)
    assert login(session, "alice", TEST_PASSWORD, later).username == "alice"


def test_the_counter_is_shared_between_connections(session: Session, engine: Engine) -> None:
    make_user(session, "alice")
    session.commit()
    make_session = session_factory(engine)
    with make_session() as first, make_session() as second:
        fail(first, "alice", 2)
        fail(second, "alice", 2)
        assert counters(engine, "alice") == (2 + 2, None)
        fail(first, "alice", 1)
    assert counters(engine, "alice") == (5, NOW + timedelta(minutes=15))


def test_concurrent_failures_are_all_counted(session: Session, engine: Engine) -> None:
    make_user(session, "alice")
    session.commit()
    make_session = session_factory(engine)
    threads, per_thread = 2, 2
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            with make_session() as own:
                barrier.wait()
                for _ in range(per_thread):
                    with pytest.raises(AuthenticationError):
                        login(own, "alice", WRONG)
        except BaseException as error:  # surfaced below; a thread cannot fail the test itself
            errors.append(error)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert counters(engine, "alice") == (threads * per_thread, None)


@pytest.mark.parametrize(
    ("username", "password", "active"),
    [
        ("alice", WRONG, True),  # wrong password
        ("bob", TEST_PASSWORD, True),  # unknown user
        ("alice", TEST_PASSWORD, False),  # deactivated user, right password
        ("alice", "", True),
    ],
)
def test_every_refusal_says_the_same(session: Session, username: str, password: str, active: bool) -> None:
    make_user(session, "alice", active=active)
    assert refusal(session, username, password) == "auth.invalid_credentials"


def test_inactive_user_attempts_are_not_counted(session: Session, engine: Engine) -> None:
    make_user(session, "alice", active=False)
    fail(session, "alice", 6)
    assert counters(engine, "alice") == (0, None)


def test_username_is_case_insensitive(session: Session) -> None:
    make_user(session, "alice")
    assert login(session, "  ALICE ", TEST_PASSWORD).username == "alice"


def test_every_outcome_is_audited_without_the_password(session: Session) -> None:
    alice = make_user(session, "alice")
    fail(session, "alice", 5)
    fail(session, "alice", 1, NOW + timedelta(minutes=1))  # while locked
    fail(session, "ghost", 1)
    login(session, "alice", TEST_PASSWORD, NOW + timedelta(minutes=16))
    events = session.execute(select(AuditEvent.action, AuditEvent.entity_id).order_by(AuditEvent.id)).all()
    alice_id = str(alice.id)
    assert [tuple(event) for event in events] == [
        *[("login_failed", alice_id)] * 4,
        ("locked", alice_id),
        ("login_failed", alice_id),
        ("login_failed", None),
        ("login_ok", alice_id),
    ]
    trail = json.dumps([row.changes for row in session.scalars(select(AuditEvent))])
    assert WRONG not in trail and TEST_PASSWORD not in trail
    assert '"ghost"' in trail  # the attempted name is kept for the unknown user


def test_a_login_raced_by_a_lock_fails(session: Session, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process locks the account while this one is checking the (right) password."""
    make_user(session, "alice")
    session.commit()
    real_verify = auth.verify_password
    raced: list[bool] = []

    def verify_then_get_locked(password: str, password_hash: str) -> bool:
        if not raced:
            raced.append(True)
            with session_factory(engine)() as other:
                fail(other, "alice", 5)
        return real_verify(password, password_hash)

    monkeypatch.setattr(auth, "verify_password", verify_then_get_locked)
    with session_factory(engine)() as own:
        assert refusal(own, "alice", TEST_PASSWORD) == "auth.invalid_credentials"
    assert counters(engine, "alice") == (5, NOW + timedelta(minutes=15))


# --- sessions ----------------------------------------------------------------------------------


def valid(session: Session, username: str, issued_at: datetime, now: datetime = NOW + timedelta(hours=1)) -> bool:
    return auth.session_valid(session, username=username, issued_at=issued_at, now=now) is not None


def revoke(session: Session, user: User, at: datetime) -> None:
    auth.revoke_sessions(session, user_id=user.id, now=at)


def change(session: Session, user: User, at: datetime) -> None:
    auth.change_password(session, actor=actor(user), current_password=TEST_PASSWORD, new_password=NEW_PASSWORD, now=at)


def deactivate(session: Session, user: User, at: datetime) -> None:
    admin = make_user(session, "root", role=Role.ADMIN)
    users.deactivate_user(session, actor=actor(admin), user_id=user.id, now=at)


def reset(session: Session, user: User, at: datetime) -> None:
    admin = make_user(session, "root", role=Role.ADMIN)
    users.reset_password(session, actor=actor(admin), user_id=user.id, new_password=NEW_PASSWORD, now=at)


def log_out(session: Session, user: User, at: datetime) -> None:
    auth.logout(session, actor=actor(user), now=at)


@pytest.mark.parametrize(
    ("cause", "later_login_valid"),
    [
        (revoke, True),
        (log_out, True),
        (change, True),
        (reset, True),
        (deactivate, False),  # an inactive user has no valid session at all
    ],
)
def test_revocation_ends_earlier_sessions_only(
    session: Session, cause: Callable[[Session, User, datetime], None], later_login_valid: bool
) -> None:
    alice = make_user(session, "alice")
    issued_before = NOW - timedelta(days=1)
    assert valid(session, "alice", issued_before)
    cause(session, alice, NOW)
    session.commit()
    assert not valid(session, "alice", issued_before)
    assert valid(session, "alice", NOW + timedelta(seconds=1)) is later_login_valid


def test_revocation_is_ordered_to_the_microsecond(session: Session) -> None:
    alice = make_user(session, "alice")
    revoke(session, alice, NOW)
    session.commit()
    session.expunge_all()  # read the stored value back, not the one in memory
    assert session.scalar(select(User.sessions_revoked_at).where(User.id == alice.id)) == NOW
    assert not valid(session, "alice", NOW - US)
    assert not valid(session, "alice", NOW)  # issued in the very microsecond of the revocation
    assert valid(session, "alice", NOW + US)


def test_session_of_a_locked_or_unknown_user_is_invalid(session: Session) -> None:
    make_user(session, "alice")
    fail(session, "alice", 5)
    assert not valid(session, "alice", NOW - timedelta(hours=1), now=NOW + timedelta(minutes=1))
    assert valid(session, "alice", NOW - timedelta(hours=1), now=NOW + timedelta(minutes=15))
    assert not valid(session, "nobody", NOW)


def test_session_valid_returns_the_current_actor(session: Session) -> None:
    alice = make_user(session, "alice", team="north", region="east")
    found = auth.session_valid(session, username="Alice", issued_at=NOW, now=NOW)
    assert found == Actor(
        id=alice.id, username="alice", display_name="Alice", role=Role.REP, team="north", region="east"
    )


# --- change_password ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new", "field", "key", "params"),
    [
        ("wrong current pw", NEW_PASSWORD, "current_password", "auth.wrong_password", {}),
        (TEST_PASSWORD, "short", "new_password", "error.password_too_short", {"min": 10}),
        (TEST_PASSWORD, "", "new_password", "error.required", {}),
        (TEST_PASSWORD, TEST_PASSWORD, "new_password", "error.password_same", {}),
        (TEST_PASSWORD, " padded password ", "new_password", "error.password_whitespace", {}),
        (TEST_PASSWORD, "x" * 73, "new_password", "error.password_too_long", {"max": 72}),
    ],
)
def test_change_password_refusals(
    session: Session, current: str, new: str, field: str, key: str, params: dict[str, int]
) -> None:
    alice = make_user(session, "alice")
    with pytest.raises(ValidationError) as caught:
        auth.change_password(session, actor=actor(alice), current_password=current, new_password=new, now=NOW)
    assert {name: (err.key, err.params) for name, err in caught.value.fields.items()} == {field: (key, params)}


def test_password_equal_to_the_username_is_refused(session: Session) -> None:
    long_name = make_user(session, "alexandra.k")
    with pytest.raises(ValidationError) as caught:
        auth.change_password(
            session, actor=actor(long_name), current_password=TEST_PASSWORD, new_password="Alexandra.K", now=NOW
        )
    assert caught.value.fields["new_password"].key == "error.password_same"


def test_change_password_switches_passwords_and_keeps_only_the_new_session(session: Session) -> None:
    alice = make_user(session, "alice")
    reissue = auth.change_password(
        session, actor=actor(alice), current_password=TEST_PASSWORD, new_password=NEW_PASSWORD, now=NOW
    )
    session.commit()
    assert reissue == NOW + US
    assert valid(session, "alice", reissue)
    assert not valid(session, "alice", NOW)
    assert refusal(session, "alice", TEST_PASSWORD, NOW + timedelta(seconds=1)) == "auth.invalid_credentials"
    assert login(session, "alice", NEW_PASSWORD, NOW + timedelta(seconds=2)).id == alice.id
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["password_changed", "login_failed", "login_ok"]


def test_change_password_of_a_missing_user(session: Session) -> None:
    ghost = Actor(id=999, username="ghost", display_name="Ghost", role=Role.REP, team=None, region=None)
    with pytest.raises(NotFoundError):
        auth.change_password(session, actor=ghost, current_password=TEST_PASSWORD, new_password=NEW_PASSWORD, now=NOW)
