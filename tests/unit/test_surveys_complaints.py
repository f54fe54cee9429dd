"""Survey responses and complaints: validation, idempotency, SLA due times, assigning, resolving, SLA status."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from crm.access import Filters
from crm.complaints import (
    ComplaintInput,
    ResolutionInput,
    SlaStatus,
    assign_complaint,
    list_complaints,
    open_complaint,
    resolve_complaint,
    sla_status,
)
from crm.errors import ConflictError, FieldError, NotFoundError, PermissionDeniedError, ValidationError
from crm.models import AuditEvent, Role, SurveyResponse
from crm.surveys import SurveyInput, delete_survey, list_surveys, record_survey
from tests.factories import actor, make_complaint, make_customer, make_org, make_user

NOW = datetime(2026, 3, 10, 9, 0)


@pytest.fixture
def world(session):
    manager = make_user(session, "mgr", role=Role.MANAGER, team="north")
    rep = make_user(session, "rep", team="north", manager=manager)
    rep2 = make_user(session, "rep2", team="north", manager=manager)
    other = make_user(session, "other", team="south")
    acme = make_customer(session, "Acme", owner=rep)
    beta = make_customer(session, "Beta", owner=rep2)
    pool = make_customer(session, "Pool", owner=None)
    return SimpleNamespace(manager=manager, rep=rep, rep2=rep2, other=other, acme=acme, beta=beta, pool=pool)


def survey(customer: int, **fields) -> SurveyInput:
    return dataclasses.replace(SurveyInput(customer_id=customer, responded_on=date(2026, 3, 9), overall=4), **fields)


def test_record_survey(session, world) -> None:
    row = record_survey(
        session,
        actor=actor(world.rep),
        data=survey(world.acme.id, quality="5", service=3, price=None, after_sales=1, recommend=0, comment=" ok "),
        now=NOW,
    )
    session.commit()
    assert (row.rep_id, row.overall, row.quality, row.service, row.price, row.after_sales, row.recommend) == (
        world.rep.id,
        4,
        5,
        3,
        None,  # dimensions are optional
        1,
        0,
    )
    assert row.comment == "ok"
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.entity == "survey_response")).all()
    assert (event.action, event.changes["overall"]) == ("create", [None, 4])
    assert list(list_surveys(session, actor=actor(world.rep))["overall"]) == [4]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("overall", None, FieldError("error.required")),
        ("overall", 0, FieldError("error.out_of_range", {"min": 1, "max": 5})),
        ("overall", 6, FieldError("error.out_of_range", {"min": 1, "max": 5})),
        ("overall", "four", FieldError("error.invalid_number")),
        ("quality", 6, FieldError("error.out_of_range", {"min": 1, "max": 5})),
        ("service", 0, FieldError("error.out_of_range", {"min": 1, "max": 5})),
        ("price", -1, FieldError("error.out_of_range", {"min": 1, "max": 5})),
        ("after_sales", 9, FieldError("error.out_of_range", {"min": 1, "max": 5})),
        ("recommend", 11, FieldError("error.out_of_range", {"min": 0, "max": 10})),
        ("recommend", -1, FieldError("error.out_of_range", {"min": 0, "max": 10})),
        ("responded_on", None, FieldError("error.required")),
        ("responded_on", date(2026, 3, 11), FieldError("error.in_future")),  # 09:00 UTC: nowhere is it 3/11 yet
        ("comment", "x" * 4001, FieldError("error.too_long", {"max": 4000})),
        ("customer_id", None, FieldError("error.required")),
    ],
)
def test_survey_fields_are_validated(session, world, field: str, value: object, error: FieldError) -> None:
    data = survey(world.acme.id, **{field: value})
    copy = dataclasses.replace(data)
    with pytest.raises(ValidationError) as caught:
        record_survey(session, actor=actor(world.rep), data=data, now=NOW)
    assert caught.value.fields == {field: error}
    assert data == copy


def test_survey_all_errors_at_once(session, world) -> None:
    data = survey(world.acme.id, overall=9, quality=0, recommend=12, responded_on="2030-01-01")
    with pytest.raises(ValidationError) as caught:
        record_survey(session, actor=actor(world.rep), data=data, now=NOW)
    assert set(caught.value.fields) == {"overall", "quality", "recommend", "responded_on"}


def test_survey_scope_idempotency_and_delete(session, world) -> None:
    with pytest.raises(NotFoundError):
        record_survey(session, actor=actor(world.rep), data=survey(world.beta.id), now=NOW)
    first = record_survey(session, actor=actor(world.rep), data=survey(world.acme.id), now=NOW, idempotency_key="s")
    again = record_survey(session, actor=actor(world.rep), data=survey(world.acme.id), now=NOW, idempotency_key="s")
    assert again.id == first.id
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 1
    delete_survey(session, actor=actor(world.rep), response_id=first.id, now=NOW)
    assert list_surveys(session, actor=actor(world.rep)).empty


@pytest.mark.parametrize(("severity", "hours"), [("high", 24), ("medium", 72), ("low", 168), ("LOW", 168)])
def test_due_time_by_severity(session, world, severity: str, hours: int) -> None:
    opened = datetime(2026, 3, 9, 15, 30)
    row = open_complaint(
        session,
        actor=actor(world.rep),
        data=ComplaintInput(world.acme.id, "quality", severity, "Screen cracked", opened_at=opened),
        now=NOW,
    )
    assert row.due_at == opened + timedelta(hours=hours)
    assert row.assignee_id == world.rep.id


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("category", "", FieldError("error.required")),
        ("category", "x" * 65, FieldError("error.too_long", {"max": 64})),
        ("severity", "urgent", FieldError("error.invalid_choice", {"choices": "high, medium, low"})),
        ("severity", None, FieldError("error.required")),
        ("description", " ", FieldError("error.required")),
        ("opened_at", NOW + timedelta(minutes=6), FieldError("error.in_future")),
        ("assignee_id", "x", FieldError("error.invalid_number")),
    ],
)
def test_complaint_fields_are_validated(session, world, field: str, value: object, error: FieldError) -> None:
    data = dataclasses.replace(ComplaintInput(world.acme.id, "quality", "high", "Broken"), **{field: value})
    with pytest.raises(ValidationError) as caught:
        open_complaint(session, actor=actor(world.rep), data=data, now=NOW)
    assert caught.value.fields == {field: error}


def test_complaint_default_assignee_and_idempotency(session, world) -> None:
    manager = actor(world.manager)
    on_beta = open_complaint(
        session, actor=manager, data=ComplaintInput(world.beta.id, "service", "low", "Late"), now=NOW
    )
    assert (on_beta.assignee_id, on_beta.opened_at) == (world.rep2.id, NOW)  # the customer's owner
    on_pool = open_complaint(
        session,
        actor=manager,
        data=ComplaintInput(world.pool.id, "service", "low", "Late"),
        now=NOW,
        idempotency_key="c",
    )
    assert on_pool.assignee_id == world.manager.id  # nobody owns a pool customer
    again = open_complaint(
        session,
        actor=manager,
        data=ComplaintInput(world.pool.id, "service", "low", "Late"),
        now=NOW,
        idempotency_key="c",
    )
    assert again.id == on_pool.id
    with pytest.raises(NotFoundError):
        open_complaint(session, actor=actor(world.rep), data=ComplaintInput(world.beta.id, "q", "high", "x"), now=NOW)


def test_assign_complaint(session, world) -> None:
    complaint = make_complaint(session, world.acme, world.rep, datetime(2026, 3, 9, 8))
    with pytest.raises(PermissionDeniedError):
        assign_complaint(session, actor=actor(world.rep), complaint_id=complaint.id, assignee_id=world.rep2.id, now=NOW)
    with pytest.raises(PermissionDeniedError):
        assign_complaint(
            session, actor=actor(world.manager), complaint_id=complaint.id, assignee_id=world.other.id, now=NOW
        )
    assign_complaint(session, actor=actor(world.manager), complaint_id=complaint.id, assignee_id=world.rep2.id, now=NOW)
    session.commit()
    assert complaint.assignee_id == world.rep2.id
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "assign")).one()
    assert event.changes == {"assignee_id": [world.rep.id, world.rep2.id]}
    other_manager = make_user(session, "mgr_s", role=Role.MANAGER, team="south")
    with pytest.raises(NotFoundError):
        assign_complaint(
            session, actor=actor(other_manager), complaint_id=complaint.id, assignee_id=world.other.id, now=NOW
        )


def test_resolve_complaint(session, world) -> None:
    opened = datetime(2026, 3, 9, 8)
    complaint = make_complaint(session, world.acme, world.rep, opened)
    rep = actor(world.rep)
    bad = ResolutionInput(resolution="", resolved_at=opened - timedelta(minutes=1), satisfied="maybe")
    with pytest.raises(ValidationError) as caught:
        resolve_complaint(session, actor=rep, complaint_id=complaint.id, data=bad, now=NOW)
    assert caught.value.fields == {
        "resolution": FieldError("error.required"),
        "resolved_at": FieldError("error.date_order"),
        "satisfied": FieldError("error.invalid_choice", {"choices": "yes, no"}),
    }
    with pytest.raises(ValidationError) as caught:
        resolve_complaint(
            session,
            actor=rep,
            complaint_id=complaint.id,
            data=ResolutionInput("Replaced", resolved_at=NOW + timedelta(hours=1)),
            now=NOW,
        )
    assert caught.value.fields == {"resolved_at": FieldError("error.in_future")}
    with pytest.raises(NotFoundError):
        resolve_complaint(
            session, actor=actor(world.other), complaint_id=complaint.id, data=ResolutionInput("x"), now=NOW
        )
    resolve_complaint(
        session, actor=rep, complaint_id=complaint.id, data=ResolutionInput(" Replaced ", satisfied="yes"), now=NOW
    )
    session.commit()
    assert (complaint.resolution, complaint.resolved_at, complaint.satisfied) == ("Replaced", NOW, True)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "resolve")).one()
    assert event.changes == {
        "resolution": [None, "Replaced"],
        "resolved_at": [None, NOW.isoformat()],
        "satisfied": [None, True],
    }
    # A second resolver (a stale screen) is told who resolved it and when.
    with pytest.raises(ConflictError) as conflict:
        resolve_complaint(
            session,
            actor=actor(world.manager),
            complaint_id=complaint.id,
            data=ResolutionInput("Refunded"),
            now=NOW + timedelta(hours=1),
        )
    assert (conflict.value.changed_by, conflict.value.changed_at) == ("Rep", NOW)


AS_OF = datetime(2026, 3, 10, 12, 0)


@pytest.mark.parametrize(
    ("due_in_hours", "resolved_in_hours", "status"),
    [
        (30, None, SlaStatus.ON_TIME),
        (24.01, None, SlaStatus.ON_TIME),
        (24, None, SlaStatus.DUE_SOON),  # due within DUE_SOON_HOURS, boundary included
        (1, None, SlaStatus.DUE_SOON),
        (0, None, SlaStatus.DUE_SOON),  # due right now: not yet late
        (-0.5, None, SlaStatus.OVERDUE),
        (-2, -3, SlaStatus.RESOLVED_ON_TIME),
        (-2, -2, SlaStatus.RESOLVED_ON_TIME),  # resolved exactly at the due time
        (-5, -1, SlaStatus.RESOLVED_LATE),
        (-5, 1, SlaStatus.OVERDUE),  # resolved after as_of: still open as of then
    ],
)
def test_sla_status(session, world, due_in_hours: float, resolved_in_hours: float | None, status: SlaStatus) -> None:
    due = AS_OF + timedelta(hours=due_in_hours)
    resolved = None if resolved_in_hours is None else AS_OF + timedelta(hours=resolved_in_hours)
    assert sla_status(due=due, resolved_at=resolved, as_of=AS_OF) is status
    opened = due - timedelta(hours=24)
    make_complaint(
        session,
        world.acme,
        world.rep,
        opened,
        sla_hours=24,
        resolved_after_hours=None if resolved is None else (resolved - opened).total_seconds() / 3600,
    )
    frame = list_complaints(session, actor=actor(world.rep), as_of=AS_OF)
    assert list(frame["sla_status"]) == [status.value]
    expected_hours = None if status.value.startswith("resolved") else due_in_hours
    assert frame.loc[0, "hours_left"] == (pytest.approx(expected_hours) if expected_hours is not None else None)


def test_list_complaints_filters_and_scope(session, world) -> None:
    overdue = make_complaint(session, world.acme, world.rep, AS_OF - timedelta(hours=30))  # due 6 h ago
    soon = make_complaint(session, world.acme, world.rep, AS_OF - timedelta(hours=10))  # due in 14 h
    done = make_complaint(session, world.acme, world.rep, AS_OF - timedelta(hours=50), resolved_after_hours=5)
    theirs = make_complaint(session, world.beta, world.rep2, AS_OF - timedelta(hours=1), severity="low", sla_hours=168)
    rep = actor(world.rep)
    assert list(list_complaints(session, actor=rep, as_of=AS_OF)["id"]) == [overdue.id, soon.id, done.id]
    assert list(list_complaints(session, actor=rep, as_of=AS_OF, status=SlaStatus.OVERDUE)["id"]) == [overdue.id]
    assert list(list_complaints(session, actor=rep, as_of=AS_OF, open_only=True)["id"]) == [overdue.id, soon.id]
    manager_view = list_complaints(session, actor=actor(world.manager), as_of=AS_OF)
    assert list(manager_view["id"]) == [overdue.id, soon.id, theirs.id, done.id]
    assert list(manager_view["sla_status"]) == ["overdue", "due_soon", "on_time", "resolved_on_time"]
    assert list(list_complaints(session, actor=rep, as_of=AS_OF, customer_id=world.beta.id)["id"]) == []


@pytest.fixture
def ledger(session):
    """Five open complaints across two teams, two regions and two tiers, due one after the other."""
    org = make_org(session)
    cust_a = make_customer(session, "A", owner=org.rep_a, tier="key")
    cust_b = make_customer(session, "B", owner=org.rep_b, tier="customer")
    cust_c = make_customer(session, "C", owner=org.rep_c, tier="key")
    rows = [
        (cust_a, org.rep_a, 30, "high"),  # c1
        (cust_a, org.rep_b, 20, "medium"),  # c2: rep_b handles rep_a's customer
        (cust_b, org.rep_b, 10, "low"),  # c3
        (cust_c, org.rep_c, 5, "high"),  # c4
        (cust_b, org.rep_a, 1, "high"),  # c5: rep_a handles rep_b's customer
    ]
    ids = [
        make_complaint(session, customer, rep, AS_OF - timedelta(hours=hours), severity=severity).id
        for customer, rep, hours, severity in rows
    ]
    return SimpleNamespace(org=org, ids=ids)


@pytest.mark.parametrize(
    ("who", "severity", "filters", "expected"),
    [
        ("admin", None, {}, [1, 2, 3, 4, 5]),  # by due time: opened 30, 20, 10, 5, 1 h ago
        ("admin", "high", {}, [1, 4, 5]),
        ("admin", "medium", {}, [2]),
        ("admin", None, {"team": "north"}, [1, 2, 3, 5]),  # assignees rep_a and rep_b
        ("admin", None, {"region": "east"}, [1, 4, 5]),  # assignees rep_a and rep_c
        ("admin", None, {"rep": "rep_b"}, [2, 3]),
        ("admin", None, {"tier": "key"}, [1, 2, 4]),  # customers A and C
        ("admin", "high", {"tier": "key"}, [1, 4]),
        ("north_manager", None, {"region": "west"}, [2, 3]),  # rep_b is the west rep
        ("south_manager", None, {"team": "north"}, []),  # sees only c4, which is the south team's
        ("rep_a", None, {}, [1, 2, 5]),  # assigned to rep_a, or on rep_a's customer
        ("rep_a", "high", {}, [1, 5]),
        ("rep_a", None, {"tier": "customer"}, [5]),  # on B
    ],
)
def test_list_complaints_by_severity_and_scope_filters(
    session, ledger, who: str, severity: str | None, filters: dict, expected: list[int]
) -> None:
    narrowing = {name: value for name, value in filters.items() if name != "rep"}  # the table is shared: no pop
    rep = filters.get("rep")
    scope = Filters(**narrowing, rep_id=None if rep is None else getattr(ledger.org, rep).id)
    frame = list_complaints(
        session, actor=actor(getattr(ledger.org, who)), as_of=AS_OF, severity=severity, filters=scope
    )
    assert list(frame["id"]) == [ledger.ids[number - 1] for number in expected]


def test_list_complaints_filters_before_the_limit(session, ledger) -> None:
    admin = actor(ledger.org.admin)
    # The low complaint is third by due time: a limit of 2 would cut it if severity were applied afterwards.
    assert list(list_complaints(session, actor=admin, as_of=AS_OF, limit=2)["severity"]) == ["high", "medium"]
    low = list_complaints(session, actor=admin, as_of=AS_OF, severity="low", limit=2)
    assert list(low["id"]) == [ledger.ids[2]]
    by_rep = list_complaints(session, actor=admin, as_of=AS_OF, filters=Filters(rep_id=ledger.org.rep_c.id), limit=1)
    assert list(by_rep["id"]) == [ledger.ids[3]]
