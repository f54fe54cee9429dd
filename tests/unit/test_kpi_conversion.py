"""Conversion KPIs: win rate, lead conversion, funnel (stages as data), visit conversion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from crm import kpi
from crm.access import Filters
from crm.models import Customer, PipelineStage
from crm.periods import Period
from tests.factories import (
    Org,
    actor,
    make_customer,
    make_interaction,
    make_opportunity,
    make_order,
    make_org,
    soft_delete,
)

Q1 = Period.quarter(2026, 1)
OLD = datetime(2025, 6, 1)  # created long before the periods under test


@dataclass(frozen=True)
class World:
    org: Org
    ca: Customer  # owner A, key
    cb: Customer  # owner B, customer
    cc: Customer  # owner C, customer


def base(session: Session) -> World:
    org = make_org(session)
    return World(
        org=org,
        ca=make_customer(session, "Alpha", owner=org.rep_a, tier="key", created_at=OLD),
        cb=make_customer(session, "Beta", owner=org.rep_b, tier="customer", created_at=OLD),
        cc=make_customer(session, "Gamma", owner=org.rep_c, tier="customer", created_at=OLD),
    )


def build_closed(session: Session) -> World:
    """Opportunities closed (owner, stage, closed_on, customer):

    Q1: A won Jan 15 ca 1000 | A lost Feb 01 (no customer) | A won Mar 31 ca 500 | B lost Mar 01 cb
        C won Feb 10 cc 700
    Q4 2025: B won Dec 01 cb 300 | B lost Nov 01 cb
    Not counted: A won Apr 01 (next quarter), A won on a deleted customer, a deleted A lost,
    A still open (no closed_on).
    """
    world = base(session)
    a, b, c = world.org.rep_a, world.org.rep_b, world.org.rep_c
    make_opportunity(session, world.ca, a, "won", amount=1000, closed_on=date(2026, 1, 15))
    make_opportunity(session, None, a, "lost", closed_on=date(2026, 2, 1))
    make_opportunity(session, world.ca, a, "won", amount=500, closed_on=date(2026, 3, 31))
    make_opportunity(session, world.cb, b, "lost", closed_on=date(2026, 3, 1))
    make_opportunity(session, world.cc, c, "won", amount=700, closed_on=date(2026, 2, 10))
    make_opportunity(session, world.cb, b, "won", amount=300, closed_on=date(2025, 12, 1))
    make_opportunity(session, world.cb, b, "lost", closed_on=date(2025, 11, 1))
    make_opportunity(session, world.ca, a, "won", closed_on=date(2026, 4, 1))
    gone = make_customer(session, "Gone", owner=a, created_at=OLD)
    make_opportunity(session, gone, a, "won", closed_on=date(2026, 1, 20))
    soft_delete(session, gone)
    soft_delete(session, make_opportunity(session, world.ca, a, "lost", closed_on=date(2026, 1, 21)))
    make_opportunity(session, world.ca, a, "engaging")
    return world


@pytest.mark.parametrize(
    ("user", "filters", "won", "lost", "win_rate", "won_amount"),
    [
        ("admin", {}, 3, 2, 3 / 5, 1000 + 500 + 700),
        ("north_manager", {}, 2, 2, 2 / 4, 1500),
        ("south_manager", {}, 1, 0, 1.0, 700),
        ("rep_a", {}, 2, 1, 2 / 3, 1500),
        ("rep_b", {}, 0, 1, 0.0, 0),
        # tier key: Alpha's two wins; the lost deal without a customer drops out under a tier filter
        ("admin", {"tier": "key"}, 2, 0, 1.0, 1500),
        ("admin", {"team": "north", "region": "west"}, 0, 1, 0.0, 0),
        # a rep asking for someone else's figures gets nothing: n/a, not 0
        ("rep_a", {"team": "south"}, 0, 0, None, 0),
    ],
)
def test_win_loss(
    session: Session,
    user: str,
    filters: dict[str, str],
    won: int,
    lost: int,
    win_rate: float | None,
    won_amount: float,
) -> None:
    world = build_closed(session)
    figures = kpi.win_loss(session, actor=actor(getattr(world.org, user)), period=Q1, filters=Filters(**filters))
    assert (figures.won, figures.lost, figures.won_amount) == (won, lost, won_amount)
    assert figures.win_rate == pytest.approx(win_rate)


def test_win_loss_previous_period(session: Session) -> None:
    world = build_closed(session)
    compared = kpi.win_loss_compared(session, actor=actor(world.org.rep_b), period=Q1)
    assert (compared.current.won, compared.current.lost, compared.current.win_rate) == (0, 1, 0.0)
    # Q4 2025: B won Dec 1, lost Nov 1
    assert (compared.previous.won, compared.previous.lost, compared.previous.win_rate) == (1, 1, 0.5)


def test_win_rate_by_rep(session: Session) -> None:
    world = build_closed(session)
    org = world.org
    frame = kpi.win_rate_by_rep(session, actor=actor(org.admin), period=Q1)
    # C 1/1, A 2/3, B 0/1 (best first)
    assert list(frame["rep_id"]) == [org.rep_c.id, org.rep_a.id, org.rep_b.id]
    assert list(frame["won"]) == [1, 2, 0]
    assert list(frame["lost"]) == [0, 1, 1]
    assert frame["win_rate"].tolist() == pytest.approx([1.0, 2 / 3, 0.0])
    assert list(frame["won_amount"]) == [700.0, 1500.0, 0.0]
    team = kpi.win_rate_by_rep(session, actor=actor(org.north_manager), period=Q1)
    assert list(team["rep_name"]) == [org.rep_a.display_name, org.rep_b.display_name]


def test_stages_are_data(session: Session) -> None:
    """A configured extra lost stage counts as lost; an extra open stage is a funnel step."""
    world = base(session)
    a = world.org.rep_a
    session.add_all(
        [
            PipelineStage(key="proposal", position=30, kind="open"),
            PipelineStage(key="no_decision", position=92, kind="lost"),
        ]
    )
    session.flush()
    make_opportunity(session, world.ca, a, "won", closed_on=date(2026, 2, 1))
    make_opportunity(session, world.ca, a, "no_decision", closed_on=date(2026, 2, 2))
    make_opportunity(session, world.ca, a, "lost", closed_on=date(2026, 2, 3))
    make_opportunity(session, world.ca, a, "proposal")
    figures = kpi.win_loss(session, actor=actor(a), period=Q1)
    assert (figures.won, figures.lost) == (1, 2)
    assert figures.win_rate == pytest.approx(1 / 3)
    frame = kpi.funnel(session, actor=actor(a), period=Q1)
    assert list(frame["stage"]) == ["prospecting", "engaging", "proposal", "won"]
    # all 4 start; engaging: won + proposal; proposal: won + proposal; won: 1
    assert list(frame["opportunities"]) == [4, 2, 2, 1]


def build_funnel(session: Session) -> World:
    """Opportunities created in Q1 2026 (Jan 1 by default), by stage reached.

    f1 prospecting                       → prospecting
    f2 prospecting, engaged_on set       → prospecting, engaging
    f3 engaging                          → prospecting, engaging
    f4 won (never recorded engaged_on)   → prospecting, engaging, won
    f5 lost, engaged_on set              → prospecting, engaging
    f6 lost, never engaged               → prospecting
    f7 B's won deal                      → prospecting, engaging, won (only in team / admin scope)
    Not counted: a won deal created in Dec 2025; a deleted prospect.
    """
    world = base(session)
    a, b = world.org.rep_a, world.org.rep_b
    engaged = date(2026, 1, 20)
    make_opportunity(session, world.ca, a, "prospecting")
    make_opportunity(session, world.ca, a, "prospecting", engaged_on=engaged)
    make_opportunity(session, None, a, "engaging", engaged_on=engaged)
    make_opportunity(session, world.ca, a, "won", closed_on=date(2026, 2, 1))
    make_opportunity(session, world.ca, a, "lost", engaged_on=engaged, closed_on=date(2026, 2, 1))
    make_opportunity(session, world.ca, a, "lost", closed_on=date(2026, 2, 1))
    make_opportunity(session, world.cb, b, "won", created_on=date(2026, 3, 31), closed_on=date(2026, 4, 2))
    make_opportunity(session, world.ca, a, "won", created_on=date(2025, 12, 31), closed_on=date(2026, 1, 5))
    soft_delete(session, make_opportunity(session, world.ca, a, "prospecting"))
    return world


def test_funnel(session: Session) -> None:
    world = build_funnel(session)
    frame = kpi.funnel(session, actor=actor(world.org.rep_a), period=Q1)
    assert list(frame.columns) == ["stage", "position", "kind", "opportunities", "step_conversion", "from_start"]
    assert list(frame["stage"]) == ["prospecting", "engaging", "won"]
    assert list(frame["opportunities"]) == [6, 4, 1]  # f1..f6; f2..f5; f4
    assert pd.isna(frame["step_conversion"].iloc[0])
    assert frame["step_conversion"].tolist()[1:] == pytest.approx([4 / 6, 1 / 4])
    assert frame["from_start"].tolist() == pytest.approx([1.0, 4 / 6, 1 / 6])
    team = kpi.funnel(session, actor=actor(world.org.north_manager), period=Q1)
    assert list(team["opportunities"]) == [7, 5, 2]  # + f7
    tier = kpi.funnel(session, actor=actor(world.org.admin), period=Q1, filters=Filters(tier="key"))
    assert list(tier["opportunities"]) == [5, 3, 1]  # f3 has no customer; f7 is on a "customer" tier


def test_empty_funnel_is_not_applicable(session: Session) -> None:
    world = base(session)
    frame = kpi.funnel(session, actor=actor(world.org.admin), period=Q1)
    assert list(frame["opportunities"]) == [0, 0, 0]
    assert frame["from_start"].isna().all()
    assert frame["step_conversion"].isna().all()


def build_leads(session: Session) -> World:
    """Customers created in Q1 2026 (owner, created, what happened by Apr 1):

    L1 A Jan 05 order Feb 01                 → converted
    L2 A Feb 10 won deal closed Mar 20       → converted
    L3 A Mar 01 order Apr 05 (after the end) → not converted
    L4 B Mar 10 nothing                      → not converted
    L5 A Jan 20 a lost deal only             → not converted
    L7 no owner, Jan 03, order Jan 10        → converted (counts only for an unfiltered admin)
    L8 A Dec 2025, order Jan 15              → Q4's customer, not converted by Jan 1
    Not counted: L6 A Feb 02 deleted (with an order).
    """
    world = base(session)
    a, b = world.org.rep_a, world.org.rep_b
    l1 = make_customer(session, "L1", owner=a, tier="lead", created_at=datetime(2026, 1, 5, 9))
    make_order(session, l1, a, date(2026, 2, 1), 10)
    l2 = make_customer(session, "L2", owner=a, tier="prospect", created_at=datetime(2026, 2, 10))
    make_opportunity(session, l2, a, "won", closed_on=date(2026, 3, 20))
    l3 = make_customer(session, "L3", owner=a, tier="lead", created_at=datetime(2026, 3, 1))
    make_order(session, l3, a, date(2026, 4, 5), 10)
    make_customer(session, "L4", owner=b, tier="lead", created_at=datetime(2026, 3, 10))
    l5 = make_customer(session, "L5", owner=a, tier="lead", created_at=datetime(2026, 1, 20))
    make_opportunity(session, l5, a, "lost", closed_on=date(2026, 3, 1))
    l6 = make_customer(session, "L6", owner=a, tier="lead", created_at=datetime(2026, 2, 2))
    make_order(session, l6, a, date(2026, 2, 3), 10)
    soft_delete(session, l6)
    l7 = make_customer(session, "L7", owner=None, tier="lead", created_at=datetime(2026, 1, 3))
    make_order(session, l7, b, date(2026, 1, 10), 10)
    l8 = make_customer(session, "L8", owner=a, tier="lead", created_at=datetime(2025, 12, 2))
    make_order(session, l8, a, date(2026, 1, 15), 10)
    return world


@pytest.mark.parametrize(
    ("user", "filters", "created", "converted", "rate"),
    [
        ("admin", {}, 6, 3, 3 / 6),  # L1 L2 L3 L4 L5 L7; L1 L2 L7
        ("north_manager", {}, 5, 2, 2 / 5),  # by owner in the team: L1..L5
        ("rep_a", {}, 4, 2, 2 / 4),  # L1 L2 L3 L5
        ("rep_b", {}, 1, 0, 0.0),  # L4
        ("admin", {"team": "north"}, 5, 2, 2 / 5),  # a rep filter leaves unowned customers out
        ("admin", {"tier": "lead"}, 5, 2, 2 / 5),  # L2 is a prospect now
        ("rep_c", {}, 0, 0, None),
    ],
)
def test_lead_conversion(
    session: Session, user: str, filters: dict[str, str], created: int, converted: int, rate: float | None
) -> None:
    world = build_leads(session)
    figures = kpi.lead_conversion(session, actor=actor(getattr(world.org, user)), period=Q1, filters=Filters(**filters))
    assert (figures.created, figures.converted) == (created, converted)
    assert figures.rate == pytest.approx(rate)


def test_lead_conversion_previous_period(session: Session) -> None:
    world = build_leads(session)
    compared = kpi.lead_conversion_compared(session, actor=actor(world.org.rep_a), period=Q1)
    assert compared.current.rate == pytest.approx(2 / 4)
    # Q4 2025: L8 created Dec 2; its first order (Jan 15) came after Q4 ended
    assert (compared.previous.created, compared.previous.converted, compared.previous.rate) == (1, 0, 0.0)


def test_visit_conversion_by_rep(session: Session) -> None:
    """Visits in Q1 and whether an order / won deal on the same customer followed within 30 days.

    A: Jan 10 ca → order Jan 25 (15 days)         yes
       Feb 01 ca → next order Mar 10 (37 days)    no (the Jan 25 order came before the visit)
       Mar 20 cb → B's won deal Apr 19 (30 days)  yes (by any rep, last day included)
       Mar 05 cc → order Apr 05 (31 days)         no
       a call (not a visit)                        ignored
    B: Jan 05 cb → order the same day             yes
       Feb 15 cb → won deal Apr 19 (63 days)      no
       Feb 20 cb → won deal Apr 19 (58 days)      no
    """
    world = base(session)
    org = world.org
    a, b = org.rep_a, org.rep_b
    make_interaction(session, world.ca, a, datetime(2026, 1, 10, 10))
    make_order(session, world.ca, a, date(2026, 1, 25), 10)
    make_interaction(session, world.ca, a, datetime(2026, 2, 1, 10))
    make_order(session, world.ca, a, date(2026, 3, 10), 10)
    make_interaction(session, world.cb, a, datetime(2026, 3, 20, 17))
    make_opportunity(session, world.cb, b, "won", closed_on=date(2026, 4, 19))
    make_interaction(session, world.cc, a, datetime(2026, 3, 5, 8))
    make_order(session, world.cc, org.rep_c, date(2026, 4, 5), 10)
    make_interaction(session, world.ca, a, datetime(2026, 1, 11, 10), kind="call")
    make_interaction(session, world.cb, b, datetime(2026, 1, 5, 16))
    make_order(session, world.cb, b, date(2026, 1, 5), 10)
    make_interaction(session, world.cb, b, datetime(2026, 2, 15, 9))
    make_interaction(session, world.cb, b, datetime(2026, 2, 20, 9))
    frame = kpi.visit_conversion_by_rep(session, actor=actor(org.admin), period=Q1)
    assert list(frame["rep_id"]) == [a.id, b.id]  # best rate first
    assert list(frame["visits"]) == [4, 3]
    assert list(frame["converted"]) == [2, 1]
    assert frame["rate"].tolist() == pytest.approx([2 / 4, 1 / 3])
    mine = kpi.visit_conversion_by_rep(session, actor=actor(a), period=Q1)
    assert list(mine["rep_id"]) == [a.id]
