"""My account page (AppTest): profile for every role and the password change."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from crm import auth
from crm.clock import utcnow
from crm.db import make_engine
from crm.errors import AuthenticationError
from crm.i18n import enum_label, t
from crm.models import User
from tests.factories import TEST_PASSWORD
from tests.pages.conftest import World, page_text, run_page

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "account.py")
NEW_PASSWORD = "a brand new secret 42"


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash the new password at cost 4 so the test stays fast."""
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)


def change_password(at: AppTest, *, current: str, new: str, repeat: str) -> AppTest:
    at.text_input(key="account:current").input(current)
    at.text_input(key="account:new").input(new)
    at.text_input(key="account:repeat").input(repeat)
    return at.button[0].click().run()


def password_hash(world: World, username: str) -> str:
    engine = make_engine(world.url)
    try:
        with Session(engine) as session:
            return str(session.scalar(select(User.password_hash).where(User.username == username)))
    finally:
        engine.dispose()


def login(world: World, username: str, password: str) -> int:
    """Log in through crm.auth against the page's database; return the user id."""
    engine = make_engine(world.url)
    try:
        with Session(engine) as session:
            return auth.authenticate(session, username=username, password=password, now=utcnow()).id
    finally:
        engine.dispose()


def test_page_needs_a_login(world: World) -> None:
    at = run_page(PAGE, None)
    assert not at.exception
    assert [w.value for w in at.warning] == [t("app.login_required")]
    # Only the login form: the page's own inputs are not drawn.
    assert [w.key for w in at.text_input] == ["login_username", "login_password"]


@pytest.mark.parametrize("who", ["admin", "manager_a", "rep_b1"])
def test_every_role_sees_its_own_profile(world: World, who: str) -> None:
    person = getattr(world, who)
    at = run_page(PAGE, person)
    assert not at.exception
    text = page_text(at)
    assert f"`{person.username}`" in text
    assert enum_label("role", person.role.value) in text
    # Only the own profile: nobody else's username appears.
    others = {"admin", "manager_a", "manager_b", "rep_a1", "rep_a2", "rep_b1"} - {person.username}
    assert not any(f"`{name}`" in text for name in others)
    assert [w.key for w in at.text_input] == ["account:current", "account:new", "account:repeat"]


def test_wrong_current_password_is_shown_under_the_field(world: World) -> None:
    before = password_hash(world, "rep_a1")
    at = change_password(run_page(PAGE, world.rep_a1), current="not my password", new=NEW_PASSWORD, repeat=NEW_PASSWORD)
    assert not at.exception
    assert [e.value for e in at.error] == [t("auth.wrong_password")]
    assert len(at.success) == 0
    # What was typed stays in the form.
    assert at.text_input(key="account:current").value == "not my password"
    assert at.text_input(key="account:new").value == NEW_PASSWORD
    assert password_hash(world, "rep_a1") == before


def test_mismatched_repeat_is_refused(world: World) -> None:
    before = password_hash(world, "rep_a1")
    at = change_password(run_page(PAGE, world.rep_a1), current=TEST_PASSWORD, new=NEW_PASSWORD, repeat="different one")
    assert not at.exception
    assert [e.value for e in at.error] == [t("account.passwords_differ")]
    assert at.text_input(key="account:repeat").value == "different one"
    assert password_hash(world, "rep_a1") == before


def test_too_short_new_password_is_refused(world: World) -> None:
    at = change_password(run_page(PAGE, world.rep_a1), current=TEST_PASSWORD, new="short", repeat="short")
    assert not at.exception
    assert [e.value for e in at.error] == [t("error.password_too_short", min=auth.MIN_PASSWORD_LENGTH)]


def test_password_change_succeeds_and_the_new_password_works(world: World) -> None:
    at = change_password(run_page(PAGE, world.rep_a1), current=TEST_PASSWORD, new=NEW_PASSWORD, repeat=NEW_PASSWORD)
    assert not at.exception
    assert [s.value for s in at.success] == [t("account.password_changed")]
    assert len(at.error) == 0
    assert login(world, "rep_a1", NEW_PASSWORD) == world.rep_a1.id
    with pytest.raises(AuthenticationError):
        login(world, "rep_a1", TEST_PASSWORD)


def test_the_guard_logs_in_from_a_directly_served_page(world: World) -> None:
    # The first request after a server start can run a page file before app.py: its guard shows
    # the login form, and a good login shows the page.
    at = run_page(PAGE, None)
    at.text_input(key="login_username").input("rep_a1")
    at.text_input(key="login_password").input(TEST_PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == t("account.title")
    assert not at.warning


def test_the_guard_refuses_a_wrong_password(world: World) -> None:
    at = run_page(PAGE, None)
    at.text_input(key="login_username").input("rep_a1")
    at.text_input(key="login_password").input("wrong password")
    at.button[0].click().run()
    assert t("auth.invalid_credentials") in [e.value for e in at.error]
    assert [w.key for w in at.text_input] == ["login_username", "login_password"]
