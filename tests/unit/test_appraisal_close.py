"""Closing and reopening an appraisal period: frozen snapshots, scheme kept, audit, who may do it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.access import Filters
from crm.appraisal import (
    close_period,
    leaderboard,
    period_status,
    reopen_period,
    save_scheme,
    scorecard,
)
from crm.errors import NotFoundError, PermissionDeniedError, ValidationError
from crm.models import AppraisalSnapshot, AuditEvent, Customer, Role, User
from crm.periods import Period
from tests.factories import actor, make_customer, make_order, make_target, make_user

MARCH = Period.month(2026, 3)
CLOSED_AT = datetime(2026, 4, 1, 9, 0)
REOPENED_AT = datetime(2026, 4, 3, 9, 0)
LATER = datetime(2026, 4, 5, 9, 0)


@dataclass
class Company:
    admin: User
    north_manager: User
    south_manager: User
    n1: User
    n2: User
    s1: User
    pool: Customer


def make_company(session: Session) -> Company:
    """Revenue-only reps (target 1000 each): n1 700 → 70.0 C, n2 950 → 95.0 A (north); s1 850 → 85.0 B (south)."""
    admin = make_user(session, "admin", role=Role.ADMIN)
    nm = make_user(session, "nm", role=Role.MANAGER, team="north")
    sm = make_user(session, "sm", role=Role.MANAGER, team="south")
    pool = make_customer(session, "Pool customer", owner=None)
    reps = []
    for name, team, manager, amount in (("n1", "north", nm, 700), ("n2", "north", nm, 950), ("s1", "south", sm, 850)):
        rep = make_user(session, name, team=team, manager=manager)
        make_target(session, rep, date(2026, 3, 1), revenue=1000)
        make_order(session, pool, rep, date(2026, 3, 10), amount)
        reps.append(rep)
    return Company(admin, nm, sm, reps[0], reps[1], reps[2], pool)


def composites(session: Session, viewer: User) -> dict[str, tuple[float | None, bool]]:
    board = leaderboard(session, actor=actor(viewer), period=MARCH, filters=Filters())
    return {card.username: (card.composite, card.frozen) for card in board}


def test_close_freezes_and_reopen_makes_scorecards_live_again(session: Session) -> None:
    co = make_company(session)
    status = close_period(session, actor=actor(co.admin), period=MARCH, at=CLOSED_AT)
    assert (status.closed, status.team, status.scheme_version, status.closed_at) == (True, None, 1, CLOSED_AT)
    assert session.scalar(select(func.count()).select_from(AppraisalSnapshot)) == 3

    make_order(session, co.pool, co.n1, date(2026, 3, 20), 200)  # n1 would now be 900 / 1000 → 90.0
    frozen = composites(session, co.admin)
    assert frozen == {"n2": (95.0, True), "s1": (85.0, True), "n1": (70.0, True)}
    card = scorecard(session, actor=actor(co.n1), rep_id=co.n1.id, period=MARCH)
    assert (card.composite, card.grade, card.frozen) == (70.0, "C", True)

    status = reopen_period(session, actor=actor(co.admin), period=MARCH, team=None, at=REOPENED_AT)
    assert (status.closed, status.reopened_at, status.reopened_by_id) == (False, REOPENED_AT, co.admin.id)
    assert session.scalar(select(func.count()).select_from(AppraisalSnapshot)) == 0
    live = composites(session, co.admin)
    assert live == {"n2": (95.0, False), "n1": (90.0, False), "s1": (85.0, False)}


def test_close_and_reopen_are_audited(session: Session) -> None:
    co = make_company(session)
    close_period(session, actor=actor(co.admin), period=MARCH, at=CLOSED_AT)
    reopen_period(session, actor=actor(co.admin), period=MARCH, team=None, at=REOPENED_AT)
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.entity == "appraisal_period").order_by(AuditEvent.id)
    ).all()
    assert [(e.action, e.actor_id, e.at) for e in events] == [
        ("close", co.admin.id, CLOSED_AT),
        ("reopen", co.admin.id, REOPENED_AT),
    ]
    assert events[0].entity_id == events[1].entity_id
    assert events[1].changes is not None
    assert events[1].changes["closed"] == [True, False]


def test_a_manager_closes_only_their_team(session: Session) -> None:
    co = make_company(session)
    status = close_period(session, actor=actor(co.north_manager), period=MARCH, at=CLOSED_AT)
    assert (status.team, status.closed, status.company_closed) == ("north", True, False)
    assert session.scalar(select(func.count()).select_from(AppraisalSnapshot)) == 2  # n1, n2
    make_order(session, co.pool, co.n1, date(2026, 3, 20), 200)  # frozen team: no change
    make_order(session, co.pool, co.s1, date(2026, 3, 20), 100)  # live team: 950 / 1000 → 95.0
    assert composites(session, co.admin) == {"n2": (95.0, True), "s1": (95.0, False), "n1": (70.0, True)}
    assert period_status(session, period=MARCH, team="north").frozen is True
    assert period_status(session, period=MARCH, team="south").frozen is False
    assert period_status(session, period=MARCH, team=None).closed is False


def test_closing_twice_is_refused(session: Session) -> None:
    co = make_company(session)
    close_period(session, actor=actor(co.north_manager), period=MARCH, at=CLOSED_AT)
    with pytest.raises(ValidationError) as err:
        close_period(session, actor=actor(co.north_manager), period=MARCH, at=LATER)
    assert err.value.fields["period"].key == "error.already_closed"


@pytest.mark.parametrize("who", ["north_manager", "n1"])
def test_only_an_admin_reopens(session: Session, who: str) -> None:
    co = make_company(session)
    close_period(session, actor=actor(co.north_manager), period=MARCH, at=CLOSED_AT)
    with pytest.raises(PermissionDeniedError):
        reopen_period(session, actor=actor(getattr(co, who)), period=MARCH, team="north", at=REOPENED_AT)
    assert period_status(session, period=MARCH, team="north").closed is True
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "reopen")) == 0


def test_a_rep_cannot_close(session: Session) -> None:
    co = make_company(session)
    with pytest.raises(PermissionDeniedError):
        close_period(session, actor=actor(co.n1), period=MARCH, at=CLOSED_AT)


def test_reopening_a_period_that_is_not_closed_is_not_found(session: Session) -> None:
    co = make_company(session)
    with pytest.raises(NotFoundError):
        reopen_period(session, actor=actor(co.admin), period=MARCH, team="north", at=REOPENED_AT)


def test_a_closed_period_keeps_the_scheme_it_was_scored_with(session: Session) -> None:
    co = make_company(session)
    close_period(session, actor=actor(co.admin), period=MARCH, at=CLOSED_AT)
    save_scheme(
        session,
        actor=actor(co.admin),
        weights={
            "revenue": 100,
            "new_customers": 0,
            "visits": 0,
            "win_rate": 0,
            "csat": 0,
            "complaint_on_time": 0,
            "attitude": 0,
        },
        bands={"A": 60, "B": 40, "C": 20, "D": 0},  # under this scheme n1's 70.0 would be an A
        coefficients={"A": 2, "B": 1, "C": 1, "D": 0},
        at=LATER,
    )
    card = scorecard(session, actor=actor(co.admin), rep_id=co.n1.id, period=MARCH)
    assert (card.grade, card.bonus_coefficient, card.scheme_version) == ("C", 1.0, 1)
    assert period_status(session, period=MARCH, team=None).scheme_version == 1
    reopen_period(session, actor=actor(co.admin), period=MARCH, team=None, at=REOPENED_AT)
    card = scorecard(session, actor=actor(co.admin), rep_id=co.n1.id, period=MARCH)
    assert (card.grade, card.bonus_coefficient, card.scheme_version) == ("A", 2.0, 2)


def test_a_period_can_be_closed_again_after_reopening(session: Session) -> None:
    co = make_company(session)
    close_period(session, actor=actor(co.north_manager), period=MARCH, at=CLOSED_AT)
    reopen_period(session, actor=actor(co.admin), period=MARCH, team="north", at=REOPENED_AT)
    make_order(session, co.pool, co.n1, date(2026, 3, 20), 200)  # 900 → 90.0
    status = close_period(session, actor=actor(co.north_manager), period=MARCH, at=LATER)
    assert (status.closed, status.closed_at, status.reopened_at) == (True, LATER, REOPENED_AT)
    make_order(session, co.pool, co.n1, date(2026, 3, 21), 100)  # after the second close: ignored
    assert composites(session, co.north_manager) == {"n2": (95.0, True), "n1": (90.0, True)}


def test_company_close_keeps_a_team_close_s_scorecards(session: Session) -> None:
    co = make_company(session)
    close_period(session, actor=actor(co.north_manager), period=MARCH, at=CLOSED_AT)
    make_order(session, co.pool, co.n1, date(2026, 3, 20), 200)
    close_period(session, actor=actor(co.admin), period=MARCH, at=LATER)
    # n1 stays at its first frozen 70.0; ranks are company-wide.
    board = leaderboard(session, actor=actor(co.admin), period=MARCH, filters=Filters())
    assert [(c.username, c.composite, c.rank, c.frozen) for c in board] == [
        ("n2", 95.0, 1, True),
        ("s1", 85.0, 2, True),
        ("n1", 70.0, 3, True),
    ]
    # Reopening the team alone leaves it frozen by the company-wide close.
    reopen_period(session, actor=actor(co.admin), period=MARCH, team="north", at=REOPENED_AT)
    status = period_status(session, period=MARCH, team="north")
    assert (status.closed, status.company_closed, status.frozen) == (False, True, True)
    assert composites(session, co.north_manager)["n1"] == (70.0, True)


def test_a_rep_hired_after_the_close_is_not_on_the_frozen_board(session: Session) -> None:
    co = make_company(session)
    close_period(session, actor=actor(co.north_manager), period=MARCH, at=CLOSED_AT)
    make_user(session, "newbie", team="north", manager=co.north_manager)
    assert set(composites(session, co.north_manager)) == {"n1", "n2"}
    assert "newbie" not in composites(session, co.admin)
