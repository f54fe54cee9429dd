"""Admin page (AppTest): who may open it, users, import, audit log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from crm import auth, csvio
from crm.clock import utcnow
from crm.db import make_engine
from crm.i18n import t
from crm.models import Customer, User
from tests.pages.conftest import World, page_text, run_page

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "admin.py")
NEW_PASSWORD = "a brand new secret 42"
GOOD_CUSTOMERS = "name,phone,tier\nGamma Foods,13700000001,lead\nDelta Steel,13700000002,key\n"
BAD_CUSTOMERS = "name,phone,tier\nGamma Foods,13700000001,lead\nOmega Parts,not-a-phone,lead\n"


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash at cost 4 so the page's user creation and password reset stay fast."""
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)


@contextmanager
def database(world: World) -> Iterator[Session]:
    engine = make_engine(world.url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def count(world: World, model: type) -> int:
    with database(world) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def user_row(world: World, username: str) -> User | None:
    with database(world) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is not None:
            session.expunge(user)
        return user


def open_tab(at: AppTest, tab_key: str) -> AppTest:
    at.session_state["admin:tab"] = t(tab_key)
    return at.run()


def fill_new_user(at: AppTest, **values: str) -> AppTest:
    for name, value in values.items():
        at.text_input(key=f"admin:new:{name}").input(value)
    return at


def submit_new_user(at: AppTest) -> AppTest:
    return at.button(key="admin:new:submit").click().run()


def csv_upload(at: AppTest, text: str) -> AppTest:
    at.file_uploader(key="admin:import:upload:customers").set_value(("customers.csv", text.encode("utf-8"), "text/csv"))
    return at.run()


# --- who may open it ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["manager_a", "rep_a1"])
def test_page_is_refused_to_managers_and_reps(world: World, who: str) -> None:
    at = run_page(PAGE, getattr(world, who))
    assert not at.exception
    assert [e.value for e in at.error] == [t("app.not_allowed")]
    assert len(at.dataframe) == 0
    assert "rep_b1" not in page_text(at)


def test_page_needs_a_login(world: World) -> None:
    at = run_page(PAGE, None)
    assert not at.exception
    assert [w.value for w in at.warning] == [t("app.login_required")]
    assert len(at.dataframe) == 0
    assert [w.key for w in at.text_input] == ["login_username", "login_password"]


def test_admin_sees_every_user(world: World) -> None:
    at = run_page(PAGE, world.admin)
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table[t("admin.col.username")]) == ["admin", "manager_a", "manager_b", "rep_a1", "rep_a2", "rep_b1"]
    rep = table[table[t("admin.col.username")] == "rep_a1"].iloc[0]
    assert (rep[t("admin.col.role")], rep[t("admin.col.team")], rep[t("admin.col.manager")]) == (
        t("enum.role.rep"),
        "North",
        "Manager_A",
    )
    assert not any("password" in str(column).lower() for column in table.columns)


# --- users --------------------------------------------------------------------------------------


def test_create_user(world: World) -> None:
    users_before = count(world, User)
    at = run_page(PAGE, world.admin)
    fill_new_user(
        at,
        username="Li.Na",
        display_name="Li Na",
        email="li.na@example.com",
        team="North",
        region="East",
        password=NEW_PASSWORD,
        repeat=NEW_PASSWORD,
    )
    at.selectbox(key="admin:new:manager_id").select(world.manager_a.id)
    submit_new_user(at)
    assert not at.exception
    assert t("admin.users.created", username="li.na") in [s.value for s in at.success]
    created = user_row(world, "li.na")
    assert created is not None
    assert (created.display_name, created.role, created.team, created.manager_id, created.active) == (
        "Li Na",
        "rep",
        "North",
        world.manager_a.id,
        True,
    )
    assert auth.is_usable_hash(created.password_hash) and created.password_hash.startswith("$2b$04$")
    assert auth.verify_password(NEW_PASSWORD, created.password_hash)
    assert count(world, User) == users_before + 1
    text = page_text(at)
    assert "li.na" in text  # the table shows the new user …
    assert created.password_hash not in text and "$2b$" not in text  # … never the hash
    # The form starts empty for the next user.
    assert at.text_input(key="admin:new:username").value == ""


@pytest.mark.parametrize(
    ("values", "message_key", "params"),
    [
        ({"username": "rep_a1"}, "error.duplicate", {"what": "username"}),
        ({"repeat": "something else entirely"}, "admin.passwords_differ", {}),
        ({"password": "short", "repeat": "short"}, "error.password_too_short", {"min": auth.MIN_PASSWORD_LENGTH}),
        ({"email": "not-an-email"}, "error.invalid_email", {}),
    ],
)
def test_refused_user_keeps_the_input(
    world: World, values: dict[str, str], message_key: str, params: dict[str, object]
) -> None:
    users_before = count(world, User)
    typed = {
        "username": "new.rep",
        "display_name": "New Rep",
        "email": "new.rep@example.com",
        "team": "South",
        "password": NEW_PASSWORD,
        "repeat": NEW_PASSWORD,
    } | values
    at = run_page(PAGE, world.admin)
    fill_new_user(at, **typed)
    submit_new_user(at)
    assert not at.exception
    assert t(message_key, **params) in [e.value for e in at.error]
    assert t("common.fix_fields") in [e.value for e in at.error]
    assert count(world, User) == users_before
    for name, value in typed.items():
        assert at.text_input(key=f"admin:new:{name}").value == value


def test_edit_user(world: World) -> None:
    at = run_page(PAGE, world.admin)
    at.selectbox(key="admin:pick").select(world.rep_a2.id).run()
    prefix = f"admin:edit:{world.rep_a2.id}"
    assert at.text_input(key=f"{prefix}:display_name").value == "Rep_A2"
    at.text_input(key=f"{prefix}:display_name").input("Wang Fang")
    at.text_input(key=f"{prefix}:team").input("South")
    at.selectbox(key=f"{prefix}:manager_id").select(world.manager_b.id)
    at.button(key=f"{prefix}:submit").click().run()
    assert not at.exception
    assert t("admin.users.updated", username="rep_a2") in [s.value for s in at.success]
    edited = user_row(world, "rep_a2")
    assert edited is not None
    assert (edited.display_name, edited.team, edited.manager_id) == ("Wang Fang", "South", world.manager_b.id)


def test_deactivating_a_rep_ends_their_sessions(world: World) -> None:
    issued = utcnow() - timedelta(minutes=5)
    with database(world) as session:
        assert auth.session_valid(session, username="rep_a1", issued_at=issued, now=utcnow()) is not None
    at = run_page(PAGE, world.admin)
    at.selectbox(key="admin:pick").select(world.rep_a1.id).run()
    at.button(key="admin:deactivate").click().run()
    # A confirm step first, saying the user is logged out everywhere; nothing changed yet.
    assert t("admin.users.confirm_deactivate", name="Rep_A1") in [w.value for w in at.warning]
    assert user_row(world, "rep_a1").active  # type: ignore[union-attr]
    at.button(key="admin:confirm_yes").click().run()
    assert not at.exception
    assert t("admin.users.deactivated", username="rep_a1") in [s.value for s in at.success]
    assert not user_row(world, "rep_a1").active  # type: ignore[union-attr]
    with database(world) as session:
        assert auth.session_valid(session, username="rep_a1", issued_at=issued, now=utcnow()) is None


def test_deactivation_can_be_cancelled(world: World) -> None:
    at = run_page(PAGE, world.admin)
    at.selectbox(key="admin:pick").select(world.rep_b1.id).run()
    at.button(key="admin:deactivate").click().run()
    at.button(key="admin:confirm_no").click().run()
    assert not at.exception
    assert len(at.warning) == 0
    assert user_row(world, "rep_b1").active  # type: ignore[union-attr]


def test_admin_cannot_deactivate_themselves(world: World) -> None:
    at = run_page(PAGE, world.admin)
    at.selectbox(key="admin:pick").select(world.admin.id).run()
    assert not at.exception
    assert t("admin.users.not_yourself") in [c.value for c in at.caption]
    assert "admin:deactivate" not in [b.key for b in at.button]


def test_reset_password_and_unlock(world: World) -> None:
    with database(world) as session:
        session.execute(
            update(User)
            .where(User.id == world.rep_b1.id)
            .values(failed_logins=auth.MAX_FAILED_LOGINS, locked_until=utcnow() + timedelta(minutes=10))
        )
        session.commit()
    at = run_page(PAGE, world.admin)
    at.selectbox(key="admin:pick").select(world.rep_b1.id).run()
    prefix = f"admin:reset:{world.rep_b1.id}"
    at.text_input(key=f"{prefix}:new_password").input(NEW_PASSWORD)
    at.text_input(key=f"{prefix}:repeat").input(NEW_PASSWORD + "x")
    at.button(key=f"{prefix}:submit").click().run()
    assert t("admin.passwords_differ") in [e.value for e in at.error]
    assert at.text_input(key=f"{prefix}:new_password").value == NEW_PASSWORD
    at.text_input(key=f"{prefix}:repeat").input(NEW_PASSWORD)
    at.button(key=f"{prefix}:submit").click().run()
    assert not at.exception
    assert t("admin.users.password_reset", name="Rep_B1") in [s.value for s in at.success]
    rep = user_row(world, "rep_b1")
    assert rep is not None and (rep.failed_logins, rep.locked_until) == (0, None)  # a reset also unlocks
    with database(world) as session:
        assert auth.authenticate(session, username="rep_b1", password=NEW_PASSWORD, now=utcnow()).id == rep.id

    with database(world) as session:
        session.execute(update(User).where(User.id == world.rep_b1.id).values(failed_logins=3))
        session.commit()
    at.run()
    at.button(key="admin:unlock").click().run()
    assert not at.exception
    assert user_row(world, "rep_b1").failed_logins == 0  # type: ignore[union-attr]


# --- import -------------------------------------------------------------------------------------


def test_dry_run_writes_nothing_then_import_writes(world: World) -> None:
    customers_before = count(world, Customer)
    at = open_tab(run_page(PAGE, world.admin), "admin.tab.import")
    csv_upload(at, GOOD_CUSTOMERS)
    at.button(key="admin:import:dry").click().run()
    assert not at.exception
    assert t("admin.import.dry_run_done") in [i.value for i in at.info]
    report = at.dataframe[0].value
    created = report[report[t("admin.import.col.action")] == t("enum.import_action.created")]
    assert list(created[t("admin.import.col.key")]) == ["Gamma Foods", "Delta Steel"]
    assert count(world, Customer) == customers_before

    # The file is kept in the session: the real run needs no second upload.
    at.file_uploader(key="admin:import:upload:customers").clear()
    at.run()
    assert t("admin.import.using_file", name="customers.csv", size=f"{len(GOOD_CUSTOMERS.encode()):,}") in [
        c.value for c in at.caption
    ]
    at.button(key="admin:import:run").click().run()
    assert not at.exception
    assert t("admin.import.done") in [s.value for s in at.success]
    assert count(world, Customer) == customers_before + 2
    with database(world) as session:
        names = set(session.scalars(select(Customer.name).where(Customer.owner_id.is_(None))))
    assert {"Gamma Foods", "Delta Steel"} <= names  # no owner cell, no default owner: the pool


def test_a_bad_row_refuses_the_whole_file(world: World) -> None:
    customers_before = count(world, Customer)
    at = open_tab(run_page(PAGE, world.admin), "admin.tab.import")
    csv_upload(at, BAD_CUSTOMERS)
    at.button(key="admin:import:run").click().run()
    assert not at.exception
    assert t("admin.import.refused", n=1) in [e.value for e in at.error]
    rejected = at.dataframe[0].value
    assert list(rejected[t("admin.import.col.line")]) == [3]
    assert list(rejected[t("admin.import.col.message")]) == [t("error.invalid_phone")]
    assert count(world, Customer) == customers_before


def test_unreadable_file_is_reported_under_the_uploader(world: World) -> None:
    at = open_tab(run_page(PAGE, world.admin), "admin.tab.import")
    at.file_uploader(key="admin:import:upload:customers").set_value(("x.csv", b"name\n\xff\xfe\xfa\x80", "text/csv"))
    at.run()
    at.button(key="admin:import:dry").click().run()
    assert not at.exception
    assert t("error.invalid_encoding", encodings=", ".join(csvio.ENCODINGS)) in [e.value for e in at.error]
    assert len(at.dataframe) == 0  # no report


# --- audit log ----------------------------------------------------------------------------------


def test_audit_log_shows_the_user_created_on_the_page(world: World) -> None:
    at = run_page(PAGE, world.admin)
    fill_new_user(at, username="zhou.min", display_name="周敏", password=NEW_PASSWORD, repeat=NEW_PASSWORD)
    submit_new_user(at)
    created = user_row(world, "zhou.min")
    assert created is not None
    open_tab(at, "admin.tab.audit")
    assert not at.exception
    log = at.dataframe[0].value
    first = log.iloc[0]
    assert first[t("admin.audit.col.action")] == t("enum.audit_action.create")
    assert first[t("admin.audit.col.entity")] == t("enum.audit_entity.user")
    assert first[t("admin.audit.col.entity_id")] == str(created.id)
    assert first[t("admin.audit.col.actor")] == "Admin (admin)"
    assert "username: — → zhou.min" in first[t("admin.audit.col.changes")]
    assert "display_name: — → 周敏" in first[t("admin.audit.col.changes")]
    assert "password" not in first[t("admin.audit.col.changes")]

    # Free text finds it (Chinese too); an entity filter with no such events shows none.
    at.text_input(key="admin:audit:text").input("周敏").run()
    assert list(at.dataframe[0].value[t("admin.audit.col.entity_id")]) == [str(created.id)]
    at.text_input(key="admin:audit:text").input("").run()
    at.selectbox(key="admin:audit:action").select("create").run()
    assert len(at.dataframe[0].value) == 1


def test_audit_dates_in_the_wrong_order_are_refused(world: World) -> None:
    at = open_tab(run_page(PAGE, world.admin), "admin.tab.audit")
    today = datetime.now().date()
    at.date_input(key="admin:audit:start").set_value(today)
    at.date_input(key="admin:audit:end").set_value(today - timedelta(days=3))
    at.run()
    assert not at.exception
    assert t("error.date_order") in [e.value for e in at.error]
    assert len(at.dataframe) == 0


def test_export_offers_customers_and_users(world: World) -> None:
    at = open_tab(run_page(PAGE, world.admin), "admin.tab.export")
    assert not at.exception
    assert [b.key for b in at.get("download_button")] == ["admin:export:customers", "admin:export:users"]
