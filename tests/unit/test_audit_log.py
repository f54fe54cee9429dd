"""Audit log queries: filters, paging, newest first, admins only, changes as text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from crm import auth, users
from crm.audit import record
from crm.audit_log import (
    EVENT_COLUMNS,
    MAX_PAGE_SIZE,
    MAX_VALUE_CHARS,
    audit_filter_options,
    format_changes,
    list_events,
)
from crm.errors import PermissionDeniedError, ValidationError
from crm.models import Role, User
from tests.factories import actor, make_user

NOW = datetime(2026, 3, 10, 12, 0)


@pytest.fixture
def people(session: Session) -> dict[str, User]:
    admin = make_user(session, "admin", role=Role.ADMIN)
    manager = make_user(session, "boss", role=Role.MANAGER, team="north")
    rep = make_user(session, "zhao", team="north", manager=manager)
    return {"admin": admin, "manager": manager, "rep": rep}


@pytest.fixture
def trail(session: Session, people: dict[str, User]) -> None:
    """Five events, one a day on March 1–5 at 10:00, in this order."""
    admin, manager, rep = actor(people["admin"]), actor(people["manager"]), actor(people["rep"])
    events: list[tuple[Any, str, str, object, dict[str, list[Any]] | None]] = [
        (admin, "create", "customer", 1, {"name": [None, "Acme"], "phone": [None, "13800000001"]}),
        (rep, "update", "customer", 1, {"name": ["Acme", "Acme Ltd"]}),
        (admin, "create", "user", 5, {"username": [None, "zhang.wei"], "display_name": [None, "张伟"]}),
        (None, "login_failed", "user", None, {"username": [None, "ghost"]}),
        (manager, "delete", "interaction", 9, None),
    ]
    for day, (who, action, entity, entity_id, changes) in enumerate(events, start=1):
        record(
            session,
            actor=who,
            action=action,
            entity=entity,
            entity_id=entity_id,
            changes=changes,
            at=datetime(2026, 3, day, 10, 0),
        )
    session.commit()


def days(page_rows: Any) -> list[int]:
    """Map each row's timestamp back to its day in March (the fixture puts one event per day)."""
    return [at.day for at in page_rows["at"]]


def test_events_come_newest_first_with_documented_columns(
    session: Session, people: dict[str, User], trail: None
) -> None:
    page = list_events(session, actor=actor(people["admin"]))
    assert list(page.rows.columns) == EVENT_COLUMNS
    assert days(page.rows) == [5, 4, 3, 2, 1]
    assert (page.total, page.page, page.pages) == (5, 1, 1)
    first = page.rows.iloc[0]
    assert (first["actor_username"], first["actor_name"], first["action"], first["entity"], first["entity_id"]) == (
        "boss",
        "Boss",
        "delete",
        "interaction",
        "9",
    )
    # The failed login of an unknown user has no actor and no entity id.
    ghost = page.rows.iloc[1]
    assert pd.isna(ghost["actor_username"]) and pd.isna(ghost["actor_name"]) and pd.isna(ghost["entity_id"])


@pytest.mark.parametrize(
    ("filters", "expected_days"),
    [
        ({"entity": "customer"}, [2, 1]),
        ({"entity": "user"}, [4, 3]),
        ({"action": "create"}, [3, 1]),
        ({"entity": "customer", "action": "create"}, [1]),
        ({"actor_username": "admin"}, [3, 1]),
        ({"actor_username": " ZHAO "}, [2]),  # typed with spaces and capitals
        ({"since": datetime(2026, 3, 2, 10, 0)}, [5, 4, 3, 2]),  # since is inclusive
        ({"until": datetime(2026, 3, 2, 10, 0)}, [1]),  # until is exclusive
        ({"since": datetime(2026, 3, 2), "until": datetime(2026, 3, 4)}, [3, 2]),
        ({"text": "ACME LTD"}, [2]),  # case-insensitive, in the changes
        ({"text": "acme"}, [2, 1]),
        ({"text": "张伟"}, [3]),  # non-ASCII is stored as \\uXXXX in the JSON text
        ({"text": "ghost"}, [4]),
        ({"text": "boss"}, [5]),  # the acting user's username / name
        ({"text": "interaction"}, [5]),  # the entity
        ({"text": "login_"}, [4]),  # the action; '_' is literal, not a LIKE wildcard
        ({"text": "%"}, []),  # '%' is literal too: nothing contains it
        ({"text": "   "}, [5, 4, 3, 2, 1]),  # blank text filters nothing
        ({"entity": "order"}, []),
    ],
)
def test_filters(
    session: Session,
    people: dict[str, User],
    trail: None,
    filters: dict[str, Any],
    expected_days: list[int],
) -> None:
    page = list_events(session, actor=actor(people["admin"]), **filters)
    assert days(page.rows) == expected_days
    assert page.total == len(expected_days)


@pytest.mark.parametrize(
    ("page_number", "page_size", "expected_page", "expected_days"),
    [
        (1, 2, 1, [5, 4]),
        (2, 2, 2, [3, 2]),
        (3, 2, 3, [1]),  # 5 events / 2 per page = 3 pages, the last one holds 5 - 2 * 2 = 1
        (9, 2, 3, [1]),  # past the end: the last page
        (0, 2, 1, [5, 4]),  # before the start: the first page
        (1, 5, 1, [5, 4, 3, 2, 1]),
        (2, 4, 2, [1]),
    ],
)
def test_paging(
    session: Session,
    people: dict[str, User],
    trail: None,
    page_number: int,
    page_size: int,
    expected_page: int,
    expected_days: list[int],
) -> None:
    page = list_events(session, actor=actor(people["admin"]), page=page_number, page_size=page_size)
    assert days(page.rows) == expected_days
    assert page.total == 5  # the total ignores paging
    assert page.page == expected_page
    assert page.pages == -(-5 // page_size)


def test_paging_counts_only_filtered_events(session: Session, people: dict[str, User], trail: None) -> None:
    page = list_events(session, actor=actor(people["admin"]), entity="customer", page_size=1, page=2)
    assert (page.total, page.pages, days(page.rows)) == (2, 2, [1])


def test_empty_trail_has_one_empty_page(session: Session, people: dict[str, User]) -> None:
    page = list_events(session, actor=actor(people["admin"]), page=3)
    assert (page.total, page.page, page.pages, len(page.rows)) == (0, 1, 1, 0)
    assert list(page.rows.columns) == EVENT_COLUMNS


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": MAX_PAGE_SIZE + 1}, "page_size"),
        ({"since": datetime(2026, 3, 5), "until": datetime(2026, 3, 4)}, "until"),
    ],
)
def test_bad_paging_or_dates_are_refused(
    session: Session, people: dict[str, User], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as error:
        list_events(session, actor=actor(people["admin"]), **kwargs)
    assert set(error.value.fields) == {field}


@pytest.mark.parametrize("role", ["manager", "rep"])
def test_only_admins_read_the_trail(session: Session, people: dict[str, User], trail: None, role: str) -> None:
    with pytest.raises(PermissionDeniedError):
        list_events(session, actor=actor(people[role]))
    with pytest.raises(PermissionDeniedError):
        audit_filter_options(session, actor=actor(people[role]))


def test_changes_are_rendered_as_text(session: Session, people: dict[str, User], trail: None) -> None:
    rows = list_events(session, actor=actor(people["admin"])).rows
    assert dict(zip(days(rows), rows["changes"], strict=True)) == {
        5: "",
        4: "username: — → ghost",
        3: "username: — → zhang.wei; display_name: — → 张伟",
        2: "name: Acme → Acme Ltd",
        1: "name: — → Acme; phone: — → 13800000001",
    }


LONG = "x" * (MAX_VALUE_CHARS + 20)


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        (None, ""),
        ({}, ""),
        ({"active": [True, False]}, "active: True → False"),
        ({"amount": ["10.00", "12.50"], "quantity": [1, 2]}, "amount: 10.00 → 12.50; quantity: 1 → 2"),
        ({"email": ["a@example.com", None]}, "email: a@example.com → —"),
        ({"notes": ["", "line one\nline two"]}, "notes: — → line one line two"),
        ({"notes": [None, LONG]}, f"notes: — → {'x' * (MAX_VALUE_CHARS - 1)}…"),
        ({"customer": [None, {"created": 2, "rejected": 1}]}, 'customer: — → {"created": 2, "rejected": 1}'),
        ({"weights": [None, ["revenue", 30]]}, 'weights: — → ["revenue", 30]'),
        ({"reason": "locked"}, "reason: locked"),  # not an [old, new] pair: shown as it is
    ],
)
def test_format_changes(changes: Any, text: str) -> None:
    assert format_changes(changes) == text


def test_filter_options_list_what_occurs(session: Session, people: dict[str, User], trail: None) -> None:
    options = audit_filter_options(session, actor=actor(people["admin"]))
    assert options.entities == ["customer", "interaction", "user"]
    assert options.actions == ["create", "delete", "login_failed", "update"]
    # The actor-less event adds nobody; each user who acted is listed once, by username.
    assert options.actors == [("admin", "Admin"), ("boss", "Boss"), ("zhao", "Zhao")]


def test_a_created_user_shows_without_the_password_hash(
    session: Session, people: dict[str, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    admin = actor(people["admin"])
    created = users.create_user(
        session,
        actor=admin,
        data=users.UserInput(
            username="li.na", display_name="Li Na", role="rep", password="a long enough secret", team="north"
        ),
        now=NOW,
    )
    session.commit()
    page = list_events(session, actor=admin, entity="user", action="create")
    assert page.total == 1
    row = page.rows.iloc[0]
    assert (row["at"], row["actor_username"], row["entity_id"]) == (NOW, "admin", str(created.id))
    assert "username: — → li.na" in row["changes"]
    assert "display_name: — → Li Na" in row["changes"]
    assert "password" not in row["changes"] and "$2b$" not in row["changes"]
