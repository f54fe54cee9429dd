"""Monthly targets and attitude scores: upserts, validation, who may set them, the lists."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from crm.errors import FieldError, PermissionDeniedError, ValidationError
from crm.models import AttitudeScore, AuditEvent, Role, Target
from crm.periods import Period
from crm.targets import AttitudeInput, TargetInput, list_attitude_scores, list_targets, set_attitude_score, set_target
from tests.factories import actor, make_user

NOW = datetime(2026, 3, 10, 9, 0)
MARCH = Period.month(2026, 3)


@pytest.fixture
def world(session):
    manager = make_user(session, "mgr", role=Role.MANAGER, team="north")
    rep = make_user(session, "rep", team="north", manager=manager)
    rep2 = make_user(session, "rep2", team="north", manager=manager)
    other = make_user(session, "other", team="south")
    admin = make_user(session, "admin", role=Role.ADMIN)
    return SimpleNamespace(manager=manager, rep=rep, rep2=rep2, other=other, admin=admin)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_set_target_upserts_one_row_per_rep_and_month(session, world) -> None:
    manager = actor(world.manager)
    first = set_target(
        session,
        actor=manager,
        data=TargetInput(world.rep.id, date(2026, 3, 17), revenue_target="50000", visit_target=20),
        now=NOW,
    )
    assert (first.month, first.revenue_target, first.visit_target, first.new_customer_target) == (
        date(2026, 3, 1),  # any day of the month means that month
        Decimal("50000.00"),
        20,
        None,
    )
    later = NOW + timedelta(days=1)
    second = set_target(
        session,
        actor=actor(world.admin),
        data=TargetInput(world.rep.id, "2026-03", revenue_target=60000, visit_target=20, new_customer_target=3),
        now=later,
    )
    session.commit()
    assert second.id == first.id
    assert count(session, Target) == 1
    assert (second.revenue_target, second.new_customer_target, second.set_by_id, second.updated_at) == (
        Decimal("60000.00"),
        3,
        world.admin.id,
        later,
    )
    events = session.scalars(select(AuditEvent).where(AuditEvent.entity == "target").order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["create", "update"]
    assert events[1].changes == {
        "revenue_target": ["50000.00", "60000.00"],
        "new_customer_target": [None, 3],
        "set_by_id": [world.manager.id, world.admin.id],
    }


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("rep_id", None, FieldError("error.required")),
        ("month", None, FieldError("error.required")),
        ("month", "March", FieldError("error.invalid_date")),
        ("revenue_target", -1, FieldError("error.negative")),
        ("revenue_target", "lots", FieldError("error.invalid_number")),
        ("new_customer_target", -1, FieldError("error.out_of_range", {"min": 0, "max": 100_000})),
        ("visit_target", 100_001, FieldError("error.out_of_range", {"min": 0, "max": 100_000})),
    ],
)
def test_target_fields_are_validated(session, world, field: str, value: object, error: FieldError) -> None:
    data = dataclasses.replace(TargetInput(world.rep.id, "2026-03-01", revenue_target=1), **{field: value})
    copy = dataclasses.replace(data)
    with pytest.raises(ValidationError) as caught:
        set_target(session, actor=actor(world.manager), data=data, now=NOW)
    assert caught.value.fields == {field: error}
    assert data == copy


def test_who_may_set_targets(session, world) -> None:
    data = TargetInput(world.rep.id, "2026-03", visit_target=10)
    with pytest.raises(PermissionDeniedError):
        set_target(session, actor=actor(world.rep), data=data, now=NOW)  # not even their own
    with pytest.raises(PermissionDeniedError):
        set_target(session, actor=actor(world.other), data=data, now=NOW)
    other_manager = make_user(session, "mgr_s", role=Role.MANAGER, team="south")
    with pytest.raises(PermissionDeniedError):
        set_target(session, actor=actor(other_manager), data=data, now=NOW)
    with pytest.raises(ValidationError) as caught:  # targets are for reps, not for the manager
        set_target(session, actor=actor(world.manager), data=TargetInput(world.manager.id, "2026-03"), now=NOW)
    assert caught.value.fields == {"rep_id": FieldError("error.not_allowed")}
    assert count(session, Target) == 0


def test_list_targets_is_scoped(session, world) -> None:
    admin = actor(world.admin)
    for rep, month in [
        (world.rep, "2026-03"),
        (world.rep, "2026-04"),
        (world.rep2, "2026-03"),
        (world.other, "2026-03"),
    ]:
        set_target(session, actor=admin, data=TargetInput(rep.id, month, revenue_target=1000), now=NOW)
    assert list(list_targets(session, actor=actor(world.rep), period=MARCH)["rep_name"]) == ["Rep"]
    assert list(list_targets(session, actor=actor(world.manager), period=MARCH)["rep_name"]) == ["Rep", "Rep2"]
    quarter = list_targets(session, actor=admin, period=Period.quarter(2026, 1))
    assert list(quarter["rep_name"]) == ["Other", "Rep", "Rep2"]  # April is outside Q1
    assert list(quarter["revenue_target"]) == [1000.0, 1000.0, 1000.0]
    q2 = list_targets(session, actor=admin, period=Period.quarter(2026, 2))
    assert list(q2["month"]) == [date(2026, 4, 1)]


def scores(rep_id: int, items: tuple[int, int, int, int] = (80, 90, 70, 60), **fields) -> AttitudeInput:
    return dataclasses.replace(
        AttitudeInput(rep_id, date(2026, 3, 1), date(2026, 4, 1), *items),
        **fields,
    )


def test_attitude_upsert_per_scorer(session, world) -> None:
    first = set_attitude_score(session, actor=actor(world.manager), data=scores(world.rep.id), now=NOW)
    assert (first.scorer_id, first.initiative, first.discipline) == (world.manager.id, 80, 60)
    set_attitude_score(session, actor=actor(world.admin), data=scores(world.rep.id, (100, 100, 100, 100)), now=NOW)
    again = set_attitude_score(
        session, actor=actor(world.manager), data=scores(world.rep.id, (85, 90, 70, 60), comment="Better"), now=NOW
    )
    session.commit()
    assert again.id == first.id
    assert count(session, AttitudeScore) == 2  # one per scorer
    update = session.scalars(select(AuditEvent).where(AuditEvent.action == "update")).one()
    assert update.changes == {"initiative": [80, 85], "comment": [None, "Better"]}
    frame = list_attitude_scores(session, actor=actor(world.rep), period=MARCH)
    assert list(frame["scorer_name"]) == ["Mgr", "Admin"]  # by scorer id: the manager was created first
    means = dict(zip(frame["scorer_name"], frame["mean"], strict=True))
    assert means == {"Mgr": pytest.approx((85 + 90 + 70 + 60) / 4), "Admin": pytest.approx(100.0)}
    assert list_attitude_scores(session, actor=actor(world.other), period=MARCH).empty


@pytest.mark.parametrize(
    ("data_fields", "errors"),
    [
        ({"initiative": 101}, {"initiative": FieldError("error.out_of_range", {"min": 0, "max": 100})}),
        ({"discipline": -1}, {"discipline": FieldError("error.out_of_range", {"min": 0, "max": 100})}),
        ({"cooperation": None}, {"cooperation": FieldError("error.required")}),
        ({"responsibility": "good"}, {"responsibility": FieldError("error.invalid_number")}),
        ({"period_end": date(2026, 3, 1)}, {"period_end": FieldError("error.date_order")}),
        ({"period_start": "2026-13-01"}, {"period_start": FieldError("error.invalid_date")}),
        ({"comment": "x" * 4001}, {"comment": FieldError("error.too_long", {"max": 4000})}),
    ],
)
def test_attitude_validation(session, world, data_fields: dict, errors: dict) -> None:
    with pytest.raises(ValidationError) as caught:
        set_attitude_score(session, actor=actor(world.manager), data=scores(world.rep.id, **data_fields), now=NOW)
    assert caught.value.fields == errors


def test_who_may_score_attitude(session, world) -> None:
    with pytest.raises(PermissionDeniedError):
        set_attitude_score(session, actor=actor(world.rep), data=scores(world.rep.id), now=NOW)
    with pytest.raises(PermissionDeniedError):
        set_attitude_score(session, actor=actor(world.manager), data=scores(world.other.id), now=NOW)
    row = set_attitude_score(session, actor=actor(world.admin), data=scores(world.other.id), now=NOW)
    assert row.scorer_id == world.admin.id
