"""Log interaction page: guard, customer picker scope, valid / invalid saves, double submit, defaults."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from crm.db import make_engine
from crm.i18n import t
from crm.models import Interaction
from tests.pages.conftest import World, page_text, run_page

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "log_interaction.py")
K = "log_interaction"
TOKEN = "token:log_interaction"
NAMES = ("Alpha Trading", "Atlas Foods", "Beta Machines", "Pool Prospect")
SUBJECT = "Quarterly price review"


@contextmanager
def database(world: World) -> Iterator[Session]:
    engine = make_engine(world.url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()


def logged(world: World, subject: str = SUBJECT) -> list[Interaction]:
    """Return the interactions the tests saved (the world's own have other subjects)."""
    with database(world) as session:
        return list(session.scalars(select(Interaction).where(Interaction.subject == subject)))


def k(at: AppTest, name: str) -> str:
    """Return the key of a field of the entry on screen (each saved entry gets new widgets)."""
    if name == "kind":
        return f"{K}:kind"
    return f"{K}:{at.session_state[f'{K}:entry']}:{name}"


def element_after(at: AppTest, key: str) -> object:
    nodes = [node for node in at.main if not hasattr(node, "children")]
    index = next(i for i, node in enumerate(nodes) if getattr(node, "key", None) == key)
    return nodes[index + 1]


def picker_names(at: AppTest) -> list[str]:
    return [label.split(" · ")[1] for label in at.selectbox(key=k(at, "customer")).options]


def fill(
    at: AppTest, world: World, *, customer: int, kind: str | None = None, follow_up_days: int | None = 7
) -> AppTest:
    """Fill the form the way a rep would: kind (default: visit), customer, subject, outcome, a follow-up."""
    if kind is not None:
        at.radio(key=f"{K}:kind").set_value(kind).run()
    at.selectbox(key=k(at, "customer")).select(customer).run()
    day = at.date_input(key=k(at, "date")).value
    at.text_input(key=k(at, "subject")).input(SUBJECT)
    at.radio(key=k(at, "outcome")).set_value("positive")
    at.number_input(key=k(at, "duration")).set_value(25)
    if follow_up_days is not None:
        at.date_input(key=k(at, "next")).set_value(day + timedelta(days=follow_up_days))
    return at


def submit(at: AppTest) -> AppTest:
    return at.button(key=k(at, "submit")).click().run()


def test_guard_without_login_shows_warning_and_no_data(world: World) -> None:
    at = run_page(PAGE, None)
    assert not at.exception
    assert [w.value for w in at.warning] == [t("app.login_required")]
    assert len(at.selectbox) == 0 and len(at.dataframe) == 0
    assert not any(name in page_text(at) for name in NAMES)


@pytest.mark.parametrize(
    ("who", "names"),
    [
        ("rep_a1", ["Alpha Trading"]),
        ("rep_a2", ["Atlas Foods"]),
        ("manager_a", ["Alpha Trading", "Atlas Foods", "Pool Prospect"]),
        ("manager_b", ["Beta Machines", "Pool Prospect"]),
        ("admin", list(NAMES)),
    ],
)
def test_picker_offers_only_the_scope(world: World, who: str, names: list[str]) -> None:
    at = run_page(PAGE, getattr(world, who))
    assert not at.exception
    assert picker_names(at) == names
    assert at.selectbox(key=k(at, "customer")).value is None  # nothing chosen for the user
    assert at.radio(key=f"{K}:kind").value == "visit"  # the default kind


@pytest.mark.parametrize(
    ("query", "names", "chosen"),
    [
        ("at", ["Atlas Foods"], "Atlas Foods"),  # one match is taken at once
        ("a", ["Alpha Trading", "Atlas Foods"], None),
        ("1380", ["Alpha Trading", "Atlas Foods"], None),  # phone prefix
        ("beta", [], None),  # other team's customer is never offered
    ],
)
def test_search_narrows_the_picker(world: World, query: str, names: list[str], chosen: str | None) -> None:
    at = run_page(PAGE, world.manager_a)
    at.text_input(key=k(at, "search")).input(query).run()
    assert not at.exception
    picker = at.selectbox(key=k(at, "customer"))
    assert picker_names(at) == names
    assert (picker.value is None) if chosen is None else picker.format_func(picker.value).endswith(chosen)


def test_link_preselects_the_customer(world: World) -> None:
    at = run_page(PAGE, world.rep_a1, customer=str(world.customer_a1))
    assert not at.exception
    assert at.selectbox(key=k(at, "customer")).value == world.customer_a1
    assert not at.error


@pytest.mark.parametrize("customer", ["customer_b1", "customer_a2", "pool_customer"])
def test_link_to_someone_elses_customer_is_not_found(world: World, customer: str) -> None:
    at = run_page(PAGE, world.rep_a1, customer=str(getattr(world, customer)))
    assert not at.exception
    assert [e.value for e in at.error] == [t("common.not_found")]
    assert at.selectbox(key=k(at, "customer")).value is None
    text = page_text(at) + " ".join(at.selectbox(key=k(at, "customer")).options)
    assert not any(name in text for name in ("Atlas", "Beta", "Pool"))


def test_valid_entry_saves_one_row_and_clears_for_the_next(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    fill(at, world, customer=world.customer_a1, kind="call")
    day = at.date_input(key=k(at, "date")).value
    submit(at)
    assert not at.exception
    [row] = logged(world)
    assert (row.customer_id, row.rep_id, row.kind, row.outcome, row.duration_minutes) == (
        world.customer_a1,
        world.rep_a1.id,
        "call",
        "positive",
        25,
    )
    assert row.next_follow_up == day + timedelta(days=7)
    assert row.occurred_at.date() == day
    assert row.location is None  # only visits have a location
    assert row.idempotency_key == token
    [message] = [s.value for s in at.success]
    assert "Alpha Trading" in message and t("enum.interaction.call") in message
    # Ready for the next entry: a new token, an empty form, the kind kept.
    assert at.session_state[TOKEN] != token
    assert at.text_input(key=k(at, "subject")).value == ""
    assert at.selectbox(key=k(at, "customer")).value is None
    assert at.date_input(key=k(at, "next")).value is None
    assert at.radio(key=f"{K}:kind").value == "call"
    assert SUBJECT in page_text(at)  # listed under recent interactions


def test_visit_stores_its_location(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    fill(at, world, customer=world.customer_a1)
    at.text_input(key=k(at, "location")).input("Client office, Shanghai")
    submit(at)
    [row] = logged(world)
    assert (row.kind, row.location) == ("visit", "Client office, Shanghai")


@pytest.mark.parametrize(("kind", "has_location"), [("visit", True), ("call", False), ("email", False)])
def test_location_is_asked_for_visits_only(world: World, kind: str, has_location: bool) -> None:
    at = run_page(PAGE, world.rep_a1)
    at.radio(key=f"{K}:kind").set_value(kind).run()
    assert any(box.key == k(at, "location") for box in at.text_input) is has_location


def test_double_submit_with_the_same_token_stores_one_row(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    fill(at, world, customer=world.customer_a1)
    submit(at)
    assert len(logged(world)) == 1
    # The second click of a double click arrives before the token was rotated.
    at.session_state[TOKEN] = token
    fill(at, world, customer=world.customer_a1)
    submit(at)
    assert not at.exception
    assert len(logged(world)) == 1
    assert [s.value for s in at.success]  # the user still sees it as saved


def test_follow_up_before_the_date_is_refused_and_input_kept(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    fill(at, world, customer=world.customer_a1, follow_up_days=-1)
    submit(at)
    assert not at.exception
    assert logged(world) == []
    assert t("common.fix_fields") in [e.value for e in at.error]
    assert element_after(at, k(at, "next")).value == t("log_interaction.follow_up_before")
    assert at.text_input(key=k(at, "subject")).value == SUBJECT
    assert at.selectbox(key=k(at, "customer")).value == world.customer_a1
    assert at.session_state[TOKEN] == token  # nothing was saved, the same entry goes on
    # Correcting the date saves the same entry.
    day = at.date_input(key=k(at, "date")).value
    at.date_input(key=k(at, "next")).set_value(day + timedelta(days=1))
    submit(at)
    assert len(logged(world)) == 1


def test_customer_is_required(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    at.text_input(key=k(at, "subject")).input(SUBJECT)
    submit(at)
    assert logged(world) == []
    assert element_after(at, k(at, "customer")).value == t("error.required")
    assert at.text_input(key=k(at, "subject")).value == SUBJECT


def test_future_time_is_refused(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    fill(at, world, customer=world.customer_a1, follow_up_days=None)
    day = at.date_input(key=k(at, "date")).value
    at.date_input(key=k(at, "date")).set_value(day + timedelta(days=2))
    submit(at)
    assert logged(world) == []
    assert element_after(at, k(at, "date")).value == t("error.in_future")


@pytest.mark.parametrize(
    ("who", "rep", "customer"),
    [
        ("manager_a", "rep_a2", "customer_a1"),  # a manager logs for a rep of the team
        ("manager_a", "manager_a", "pool_customer"),
        ("admin", "rep_b1", "customer_b1"),
    ],
)
def test_manager_logs_for_a_rep(world: World, who: str, rep: str, customer: str) -> None:
    at = run_page(PAGE, getattr(world, who))
    assert at.selectbox(key=k(at, "rep")).value == getattr(world, who).id  # defaults to self
    fill(at, world, customer=getattr(world, customer))
    at.selectbox(key=k(at, "rep")).select(getattr(world, rep).id)
    submit(at)
    assert not at.exception
    [row] = logged(world)
    assert (row.rep_id, row.customer_id) == (getattr(world, rep).id, getattr(world, customer))


def test_rep_has_no_rep_selector(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    assert not any(box.key == k(at, "rep") for box in at.selectbox)


def test_recent_interactions_are_scoped(world: World) -> None:
    # The world has two visits by rep_a1 on Alpha and one by rep_b1 on Beta.
    at = run_page(PAGE, world.rep_a1)
    [frame] = at.dataframe
    assert list(frame.value[t("log_interaction.customer")]) == ["Alpha Trading", "Alpha Trading"]
    at = run_page(PAGE, world.rep_b1)
    assert list(at.dataframe[0].value[t("log_interaction.customer")]) == ["Beta Machines"]
