"""User administration (crm.users): admins only, validated, audited; languages per user."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import auth, users
from crm.access import Actor
from crm.audit import data_version
from crm.errors import AuthenticationError, NotFoundError, PermissionDeniedError, ValidationError
from crm.models import AuditEvent, Role, User
from crm.users import UserInput, UserUpdate
from tests.factories import TEST_PASSWORD, actor, make_user

NOW = datetime(2026, 3, 2, 9, 0, 0, 654321)
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash at cost 4 so the suite stays fast (production uses BCRYPT_ROUNDS = 12)."""
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)


@pytest.fixture
def admin(session: Session) -> Actor:
    return actor(make_user(session, "root", role=Role.ADMIN))


@pytest.fixture
def boss(session: Session) -> User:
    return make_user(session, "boss", role=Role.MANAGER, team="north")


def new_rep(**overrides: Any) -> UserInput:
    base = UserInput(
        username="  NewRep ",
        password=NEW_PASSWORD,
        display_name=" New Rep ",
        role=Role.REP,
        email="new.rep@example.com",
        team="north",
        region="east",
        language="zh-CN",
    )
    return replace(base, **overrides)


def field_errors(error: ValidationError) -> dict[str, tuple[str, dict[str, Any]]]:
    return {name: (err.key, err.params) for name, err in error.fields.items()}


def test_admin_creates_a_user_who_can_log_in(session: Session, admin: Actor, boss: User) -> None:
    version = data_version(session)
    user = users.create_user(session, actor=admin, data=new_rep(manager_id=boss.id), now=NOW)
    session.commit()
    assert (user.username, user.display_name, user.role, user.team, user.region, user.manager_id) == (
        "newrep",
        "New Rep",
        "rep",
        "north",
        "east",
        boss.id,
    )
    assert (user.language, user.active, user.failed_logins, user.created_at) == ("zh-CN", True, 0, NOW)
    assert user.password_hash != NEW_PASSWORD and auth.verify_password(NEW_PASSWORD, user.password_hash)
    assert auth.authenticate(session, username="NEWREP", password=NEW_PASSWORD, now=NOW).id == user.id
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "create")).one()
    assert (event.actor_id, event.entity, event.entity_id, event.at) == (admin.id, "user", str(user.id), NOW)
    assert event.changes is not None and "password_hash" not in event.changes
    assert event.changes["username"] == [None, "newrep"]
    assert data_version(session) == version + 1  # user changes reach every cache


def test_duplicate_username_is_refused_whatever_the_case(session: Session, admin: Actor) -> None:
    make_user(session, "newrep")
    with pytest.raises(ValidationError) as caught:
        users.create_user(session, actor=admin, data=new_rep(username="NEWREP"), now=NOW)
    assert field_errors(caught.value) == {"username": ("error.duplicate", {"what": "username"})}


@pytest.mark.parametrize(
    ("overrides", "field", "key", "params"),
    [
        ({"username": ""}, "username", "error.required", {}),
        ({"username": "new rep"}, "username", "error.invalid_username", {}),
        ({"username": "новый"}, "username", "error.invalid_username", {}),
        ({"username": "a" * 65}, "username", "error.too_long", {"max": 64}),
        ({"display_name": "   "}, "display_name", "error.required", {}),
        ({"display_name": "x" * 129}, "display_name", "error.too_long", {"max": 128}),
        ({"role": "boss"}, "role", "error.invalid_choice", {"choices": "admin, manager, rep"}),
        ({"email": "not-an-email"}, "email", "error.invalid_email", {}),
        ({"email": "a@b"}, "email", "error.invalid_email", {}),
        ({"team": "t" * 65}, "team", "error.too_long", {"max": 64}),
        ({"region": "r" * 65}, "region", "error.too_long", {"max": 64}),
        ({"language": "fr"}, "language", "error.invalid_choice", {"choices": "en, zh-CN"}),
        ({"manager_id": 9999}, "manager_id", "error.not_a_manager", {}),
        ({"password": "too short"}, "password", "error.password_too_short", {"min": 10}),
        ({"password": "NewRep"}, "password", "error.password_too_short", {"min": 10}),
        ({"username": "longusername", "password": "LongUserName"}, "password", "error.password_same", {}),
        ({"password": "x" * 73}, "password", "error.password_too_long", {"max": 72}),
    ],
)
def test_create_user_validation(
    session: Session, admin: Actor, overrides: dict[str, Any], field: str, key: str, params: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as caught:
        users.create_user(session, actor=admin, data=new_rep(**overrides), now=NOW)
    assert field_errors(caught.value) == {field: (key, params)}
    assert session.scalar(select(User.id).where(User.username == "newrep")) is None


def test_manager_must_be_an_active_manager(session: Session, admin: Actor) -> None:
    rep = make_user(session, "plainrep", role=Role.REP)
    gone = make_user(session, "gone", role=Role.MANAGER, active=False)
    for manager_id in (rep.id, gone.id):
        with pytest.raises(ValidationError) as caught:
            users.create_user(session, actor=admin, data=new_rep(manager_id=manager_id), now=NOW)
        assert field_errors(caught.value) == {"manager_id": ("error.not_a_manager", {})}


def test_blank_optional_fields_are_stored_as_null(session: Session, admin: Actor) -> None:
    user = users.create_user(session, actor=admin, data=new_rep(email="  ", team="", region=" "), now=NOW)
    assert (user.email, user.team, user.region) == (None, None, None)


def test_update_user_changes_the_profile_and_audits_the_diff(session: Session, admin: Actor, boss: User) -> None:
    rep = make_user(session, "carol", team="south")
    change = UserUpdate(
        display_name="Carol Chen",
        role=Role.REP,
        email="carol@example.com",
        team="north",
        region="west",
        manager_id=boss.id,
        language="zh-CN",
    )
    updated = users.update_user(session, actor=admin, user_id=rep.id, data=change, now=NOW)
    assert (updated.display_name, updated.team, updated.region, updated.manager_id, updated.language) == (
        "Carol Chen",
        "north",
        "west",
        boss.id,
        "zh-CN",
    )
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "update")).one()
    assert event.changes == {
        "display_name": ["Carol", "Carol Chen"],
        "team": ["south", "north"],
        "region": [None, "west"],
        "manager_id": [None, boss.id],
        "language": ["en", "zh-CN"],
    }


def test_update_user_refusals(session: Session, admin: Actor, boss: User) -> None:
    own = UserUpdate(display_name="Root", role=Role.MANAGER)
    with pytest.raises(ValidationError) as caught:
        users.update_user(session, actor=admin, user_id=admin.id, data=own, now=NOW)
    assert field_errors(caught.value) == {"role": ("error.not_allowed", {})}
    self_managed = UserUpdate(display_name="Boss", role=Role.MANAGER, manager_id=boss.id)
    with pytest.raises(ValidationError) as caught:
        users.update_user(session, actor=admin, user_id=boss.id, data=self_managed, now=NOW)
    assert field_errors(caught.value) == {"manager_id": ("error.not_a_manager", {})}
    with pytest.raises(NotFoundError):
        users.update_user(session, actor=admin, user_id=9999, data=own, now=NOW)


def test_deactivate_ends_sessions_and_logins_until_reactivated(session: Session, admin: Actor) -> None:
    rep = make_user(session, "carol")
    users.deactivate_user(session, actor=admin, user_id=rep.id, now=NOW)
    session.commit()
    assert rep.active is False and rep.sessions_revoked_at == NOW
    assert auth.session_valid(session, username="carol", issued_at=NOW - timedelta(hours=1), now=NOW) is None
    with pytest.raises(AuthenticationError):
        auth.authenticate(session, username="carol", password=TEST_PASSWORD, now=NOW)
    users.reactivate_user(session, actor=admin, user_id=rep.id, now=NOW)
    session.commit()
    assert auth.authenticate(session, username="carol", password=TEST_PASSWORD, now=NOW).id == rep.id
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["deactivate", "login_failed", "reactivate", "login_ok"]


def test_an_admin_cannot_deactivate_themselves(session: Session, admin: Actor) -> None:
    with pytest.raises(PermissionDeniedError):
        users.deactivate_user(session, actor=admin, user_id=admin.id, now=NOW)
    assert session.get(User, admin.id).active is True


def test_reset_password_unlocks_and_revokes(session: Session, admin: Actor) -> None:
    rep = make_user(session, "carol")
    for _ in range(auth.MAX_FAILED_LOGINS):
        with pytest.raises(AuthenticationError):
            auth.authenticate(session, username="carol", password="wrong wrong", now=NOW)
    users.reset_password(session, actor=admin, user_id=rep.id, new_password=NEW_PASSWORD, now=NOW)
    session.commit()
    assert auth.session_valid(session, username="carol", issued_at=NOW - timedelta(hours=1), now=NOW) is None
    assert auth.authenticate(session, username="carol", password=NEW_PASSWORD, now=NOW).id == rep.id
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "reset_password")).one()
    assert event.changes is not None and "password_hash" not in event.changes
    assert event.changes["failed_logins"] == [5, 0]


def test_reset_password_validates(session: Session, admin: Actor) -> None:
    rep = make_user(session, "carol")
    with pytest.raises(ValidationError) as caught:
        users.reset_password(session, actor=admin, user_id=rep.id, new_password="short", now=NOW)
    assert field_errors(caught.value) == {"new_password": ("error.password_too_short", {"min": 10})}


def test_unlock_user_lets_the_right_password_in_again(session: Session, admin: Actor) -> None:
    rep = make_user(session, "carol")
    for _ in range(auth.MAX_FAILED_LOGINS):
        with pytest.raises(AuthenticationError):
            auth.authenticate(session, username="carol", password="wrong wrong", now=NOW)
    with pytest.raises(AuthenticationError):
        auth.authenticate(session, username="carol", password=TEST_PASSWORD, now=NOW)
    users.unlock_user(session, actor=admin, user_id=rep.id, now=NOW)
    session.commit()
    assert auth.authenticate(session, username="carol", password=TEST_PASSWORD, now=NOW).id == rep.id


def test_list_users_shows_everyone_without_secrets(session: Session, admin: Actor, boss: User) -> None:
    make_user(session, "carol", team="north", manager=boss)
    frame = users.list_users(session, actor=admin)
    assert list(frame.columns) == users.USER_COLUMNS
    assert not [column for column in frame.columns if "password" in column or "hash" in column]
    assert frame["username"].tolist() == ["boss", "carol", "root"]
    carol = frame.set_index("username").loc["carol"]
    assert (carol["manager_id"], carol["manager_name"], carol["team"]) == (boss.id, "Boss", "north")
    assert pd.isna(frame.set_index("username").loc["root", "manager_name"])


ADMIN_ONLY: list[Callable[[Session, Actor, int], object]] = [
    lambda s, a, uid: users.create_user(s, actor=a, data=new_rep(), now=NOW),
    lambda s, a, uid: users.update_user(
        s, actor=a, user_id=uid, data=UserUpdate(display_name="X", role="rep"), now=NOW
    ),
    lambda s, a, uid: users.deactivate_user(s, actor=a, user_id=uid, now=NOW),
    lambda s, a, uid: users.reactivate_user(s, actor=a, user_id=uid, now=NOW),
    lambda s, a, uid: users.reset_password(s, actor=a, user_id=uid, new_password=NEW_PASSWORD, now=NOW),
    lambda s, a, uid: users.unlock_user(s, actor=a, user_id=uid, now=NOW),
    lambda s, a, uid: users.list_users(s, actor=a),
]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.REP])
@pytest.mark.parametrize(
    "call", ADMIN_ONLY, ids=["create", "update", "deactivate", "reactivate", "reset", "unlock", "list"]
)
def test_user_administration_is_for_admins_only(
    session: Session, role: Role, call: Callable[[Session, Actor, int], object]
) -> None:
    caller = make_user(session, "caller", role=role, team="north")
    target = make_user(session, "target", team="north", manager=caller if role is Role.MANAGER else None)
    with pytest.raises(PermissionDeniedError):
        call(session, actor(caller), target.id)
    assert session.scalar(select(AuditEvent.id)) is None


def test_set_language_is_remembered_for_the_user(session: Session, engine: Any) -> None:
    rep = make_user(session, "carol")
    assert users.get_language(session, actor=actor(rep)) == "en"
    users.set_language(session, actor=actor(rep), language="zh-CN")
    session.commit()
    with Session(engine) as other:
        assert users.get_language(other, actor=actor(rep)) == "zh-CN"
    with pytest.raises(ValidationError) as caught:
        users.set_language(session, actor=actor(rep), language="de")
    assert field_errors(caught.value) == {"language": ("error.invalid_choice", {"choices": "en, zh-CN"})}
