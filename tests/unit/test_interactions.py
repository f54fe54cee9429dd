"""Logging interactions: validation, scope, idempotent double submit, the form's picker and recent list."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event, func, select

import crm.interactions as interactions
from crm.errors import FieldError, NotFoundError, PermissionDeniedError, ValidationError
from crm.interactions import (
    InteractionInput,
    customer_choices,
    delete_interaction,
    log_interaction,
    recent_interactions,
)
from crm.models import AuditEvent, Interaction, Role
from tests.factories import actor, make_customer, make_interaction, make_user

NOW = datetime(2026, 3, 10, 9, 0)
SAVEPOINTS_PER_SAVE = {"sqlite": 0, "postgresql": 1}


@pytest.fixture
def world(session):
    manager = make_user(session, "mgr", role=Role.MANAGER, team="north")
    rep = make_user(session, "rep", team="north", manager=manager)
    rep2 = make_user(session, "rep2", team="north", manager=manager)
    other = make_user(session, "other", team="south")
    acme = make_customer(session, "Acme", owner=rep, phone="138 0000")
    beta = make_customer(session, "Beta", owner=rep2)
    south = make_customer(session, "Southern", owner=other)
    return SimpleNamespace(manager=manager, rep=rep, rep2=rep2, other=other, acme=acme, beta=beta, south=south)


def visit(customer: int, **fields) -> InteractionInput:
    return dataclasses.replace(
        InteractionInput(customer_id=customer, kind="visit", occurred_at=NOW - timedelta(hours=1)), **fields
    )


def count(session, model=Interaction) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_log_visit_stores_fields_and_audits(session, world) -> None:
    data = visit(
        world.acme.id,
        duration_minutes="45",
        subject=" Demo ",
        notes="Liked the GTX Pro",
        outcome="positive",
        next_follow_up=date(2026, 3, 17),
        location="Shanghai office",
    )
    row = log_interaction(session, actor=actor(world.rep), data=data, now=NOW)
    session.commit()
    assert (row.customer_id, row.rep_id, row.kind) == (world.acme.id, world.rep.id, "visit")  # rep defaults to actor
    assert (row.occurred_at, row.duration_minutes, row.subject) == (NOW - timedelta(hours=1), 45, "Demo")
    assert (row.outcome, row.next_follow_up, row.location, row.created_at) == (
        "positive",
        date(2026, 3, 17),
        "Shanghai office",
        NOW,
    )
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.entity == "interaction")).all()
    assert (event.action, event.entity_id, event.actor_id, event.at) == ("create", str(row.id), world.rep.id, NOW)
    assert event.changes["kind"] == [None, "visit"]
    assert event.changes["duration_minutes"] == [None, 45]


def test_empty_time_means_now(session, world) -> None:
    row = log_interaction(
        session, actor=actor(world.rep), data=InteractionInput(customer_id=world.acme.id, kind="call"), now=NOW
    )
    assert row.occurred_at == NOW


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("customer_id", None, FieldError("error.required")),
        ("customer_id", "x", FieldError("error.invalid_number")),
        ("kind", None, FieldError("error.required")),
        ("kind", "fax", FieldError("error.invalid_choice", {"choices": "visit, call, email, meeting, message, other"})),
        ("occurred_at", NOW + timedelta(minutes=5, seconds=1), FieldError("error.in_future")),
        ("occurred_at", "yesterday", FieldError("error.invalid_date")),
        ("duration_minutes", -1, FieldError("error.out_of_range", {"min": 0, "max": 1440})),
        ("duration_minutes", 1441, FieldError("error.out_of_range", {"min": 0, "max": 1440})),
        ("duration_minutes", "an hour", FieldError("error.invalid_number")),
        ("duration_minutes", 1.5, FieldError("error.invalid_number")),
        ("outcome", "great", FieldError("error.invalid_choice", {"choices": "positive, neutral, negative"})),
        ("next_follow_up", date(2026, 3, 9), FieldError("error.date_order")),  # the day before the visit
        ("next_follow_up", "soon", FieldError("error.invalid_date")),
        ("notes", "x" * 4001, FieldError("error.too_long", {"max": 4000})),
        ("subject", "x" * 201, FieldError("error.too_long", {"max": 200})),
        ("location", "x" * 201, FieldError("error.too_long", {"max": 200})),
        ("rep_id", "me", FieldError("error.invalid_number")),
    ],
)
def test_each_field_is_validated(session, world, field: str, value: object, error: FieldError) -> None:
    with pytest.raises(ValidationError) as caught:
        log_interaction(session, actor=actor(world.rep), data=visit(world.acme.id, **{field: value}), now=NOW)
    assert caught.value.fields == {field: error}
    assert count(session) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", NOW + timedelta(minutes=5)),  # clock skew up to 5 minutes is accepted
        ("occurred_at", "2026-03-10T08:00:00"),
        ("duration_minutes", 0),
        ("duration_minutes", 1440),
        ("duration_minutes", 30.0),
        ("next_follow_up", date(2026, 3, 10)),  # same day as the visit
        ("notes", "x" * 4000),
        ("kind", " Meeting "),
    ],
)
def test_boundary_values_are_accepted(session, world, field: str, value: object) -> None:
    log_interaction(session, actor=actor(world.rep), data=visit(world.acme.id, **{field: value}), now=NOW)
    assert count(session) == 1


def test_every_bad_field_at_once_and_input_untouched(session, world) -> None:
    data = InteractionInput(
        customer_id=None, kind="fax", occurred_at=NOW + timedelta(hours=1), duration_minutes=-5, notes="x" * 5000
    )
    copy = dataclasses.replace(data)
    with pytest.raises(ValidationError) as caught:
        log_interaction(session, actor=actor(world.rep), data=data, now=NOW)
    assert set(caught.value.fields) == {"customer_id", "kind", "occurred_at", "duration_minutes", "notes"}
    assert data == copy


def test_same_key_twice_stores_one_record(session, world) -> None:
    data = visit(world.acme.id)
    first = log_interaction(session, actor=actor(world.rep), data=data, now=NOW, idempotency_key="form-1")
    session.commit()
    second = log_interaction(session, actor=actor(world.rep), data=data, now=NOW, idempotency_key="form-1")
    session.commit()
    assert second.id == first.id
    assert count(session) == 1
    assert count(session, AuditEvent) == 1
    third = log_interaction(session, actor=actor(world.rep), data=data, now=NOW, idempotency_key="form-2")
    assert third.id != first.id
    assert count(session) == 2


def test_double_submit_race_is_caught_by_the_unique_key(session, world, monkeypatch) -> None:
    data = visit(world.acme.id)
    first = log_interaction(session, actor=actor(world.rep), data=data, now=NOW, idempotency_key="form-1")
    session.commit()
    # The second submit's look-up ran before the first one committed: it sees no row and inserts.
    monkeypatch.setattr(interactions, "find_by_key", lambda *_args, **_kwargs: None)
    second = log_interaction(session, actor=actor(world.rep), data=data, now=NOW, idempotency_key="form-1")
    assert second.id == first.id
    session.commit()  # the SAVEPOINT kept the transaction usable
    assert count(session) == 1
    assert count(session, AuditEvent) == 1


def test_only_postgresql_saves_in_a_savepoint(session, world) -> None:
    """SQLite writers take turns, so a key look-up there stays true until the commit: no savepoint needed."""
    statements: list[str] = []

    def note(_conn, _cursor, statement: str, *_rest) -> None:
        statements.append(statement)

    event.listen(session.get_bind(), "before_cursor_execute", note)
    log_interaction(session, actor=actor(world.rep), data=visit(world.acme.id), now=NOW, idempotency_key="form-1")
    event.remove(session.get_bind(), "before_cursor_execute", note)
    savepoints = sum(statement.startswith("SAVEPOINT") for statement in statements)
    assert savepoints == SAVEPOINTS_PER_SAVE[session.get_bind().dialect.name]


def test_double_submit_loads_the_row_once(session, world) -> None:
    data = visit(world.acme.id)
    first = log_interaction(session, actor=actor(world.rep), data=data, now=NOW, idempotency_key="form-1")
    session.commit()
    session.expunge_all()
    selects: list[str] = []

    def note(_conn, _cursor, statement: str, *_rest) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(session.get_bind(), "before_cursor_execute", note)
    second = log_interaction(session, actor=actor(world.manager), data=data, now=NOW, idempotency_key="form-1")
    event.remove(session.get_bind(), "before_cursor_execute", note)
    assert second.id == first.id
    # The look-up by key loads the row; the check of the manager's scope returns only its id.
    assert len(selects) == 2
    assert ["interactions.notes" in statement for statement in selects] == [True, False]


def test_key_of_someone_elses_record_reveals_nothing(session, world) -> None:
    log_interaction(session, actor=actor(world.rep), data=visit(world.acme.id), now=NOW, idempotency_key="k")
    with pytest.raises(NotFoundError):
        log_interaction(session, actor=actor(world.other), data=visit(world.south.id), now=NOW, idempotency_key="k")


def test_idempotency_key_length(session, world) -> None:
    with pytest.raises(ValidationError) as caught:
        log_interaction(session, actor=actor(world.rep), data=visit(world.acme.id), now=NOW, idempotency_key="k" * 65)
    assert caught.value.fields == {"idempotency_key": FieldError("error.too_long", {"max": 64})}


def test_rep_and_customer_scope(session, world) -> None:
    with pytest.raises(NotFoundError, match="not found or not yours"):
        log_interaction(session, actor=actor(world.rep), data=visit(world.beta.id), now=NOW)
    with pytest.raises(PermissionDeniedError):
        log_interaction(session, actor=actor(world.rep), data=visit(world.acme.id, rep_id=world.rep2.id), now=NOW)
    # A manager logs for a rep of the team, on a team customer; not for another team's rep.
    row = log_interaction(session, actor=actor(world.manager), data=visit(world.beta.id, rep_id=world.rep2.id), now=NOW)
    assert row.rep_id == world.rep2.id
    with pytest.raises(PermissionDeniedError):
        log_interaction(session, actor=actor(world.manager), data=visit(world.beta.id, rep_id=world.other.id), now=NOW)
    with pytest.raises(NotFoundError):
        log_interaction(session, actor=actor(world.manager), data=visit(world.south.id), now=NOW)
    with pytest.raises(NotFoundError):
        log_interaction(session, actor=actor(world.rep), data=visit(999_999), now=NOW)


def test_customer_choices(session, world) -> None:
    make_customer(session, "Acorn", owner=world.rep)
    make_customer(session, "Gone Ltd", owner=world.rep).deleted_at = NOW
    session.flush()
    rep = actor(world.rep)
    assert [c.name for c in customer_choices(session, actor=rep, query="")] == ["Acme", "Acorn"]
    assert [c.name for c in customer_choices(session, actor=rep, query="aco")] == ["Acorn"]
    assert [c.name for c in customer_choices(session, actor=rep, query="138")] == ["Acme"]
    assert [c.name for c in customer_choices(session, actor=rep, query="", limit=1)] == ["Acme"]
    assert customer_choices(session, actor=rep, query="beta") == []  # another rep's customer
    choice_id, code, name = customer_choices(session, actor=rep, query=world.acme.code)[0]
    assert (choice_id, code, name) == (world.acme.id, world.acme.code, "Acme")
    manager_names = [c.name for c in customer_choices(session, actor=actor(world.manager), query="")]
    assert manager_names == ["Acme", "Acorn", "Beta"]


def test_recent_interactions(session, world) -> None:
    make_interaction(session, world.acme, world.rep, datetime(2026, 3, 1, 10))
    make_interaction(session, world.beta, world.rep, datetime(2026, 3, 3, 10))  # rep on rep2's customer
    make_interaction(session, world.beta, world.rep2, datetime(2026, 3, 4, 10))
    make_interaction(session, world.acme, world.rep2, datetime(2026, 3, 2, 10))  # rep2 on rep's customer
    make_interaction(session, world.acme, world.rep, datetime(2026, 3, 5, 10)).deleted_at = NOW
    session.flush()
    frame = recent_interactions(session, actor=actor(world.rep), limit=10)
    assert list(frame["occurred_at"]) == [datetime(2026, 3, 3, 10), datetime(2026, 3, 2, 10), datetime(2026, 3, 1, 10)]
    assert list(frame["customer_name"]) == ["Beta", "Acme", "Acme"]
    assert list(frame["rep_name"]) == ["Rep", "Rep2", "Rep"]
    assert len(recent_interactions(session, actor=actor(world.rep), limit=2)) == 2
    assert len(recent_interactions(session, actor=actor(world.manager), limit=10)) == 4
    assert recent_interactions(session, actor=actor(world.other), limit=10).empty


def test_delete_interaction(session, world) -> None:
    own = make_interaction(session, world.beta, world.rep, datetime(2026, 3, 3, 10))
    foreign = make_interaction(session, world.beta, world.rep2, datetime(2026, 3, 4, 10))
    with pytest.raises(NotFoundError):
        delete_interaction(session, actor=actor(world.rep), interaction_id=foreign.id, now=NOW)
    delete_interaction(session, actor=actor(world.rep), interaction_id=own.id, now=NOW)
    session.commit()
    assert own.deleted_at == NOW
    assert list(recent_interactions(session, actor=actor(world.manager))["id"]) == [foreign.id]
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "delete")).all()
    assert event.changes == {"deleted_at": [None, NOW.isoformat()]}
