"""AppTest harness: a small hand-built world on a fresh database, and a logged-in page runner."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from crm.access import Actor
from crm.db import make_engine
from crm.models import Role
from crm.ui import ACTOR_KEY
from tests.factories import (
    actor,
    make_complaint,
    make_customer,
    make_interaction,
    make_opportunity,
    make_order,
    make_survey,
    make_target,
    make_user,
)

ROOT = Path(__file__).resolve().parents[2]
# AppTest's default 3 s is too short for a first run that imports pandas/altair and migrates.
PAGE_TIMEOUT_S = 60


@dataclass(frozen=True)
class World:
    """Who is who in the page fixture (see `world` for the records they own)."""

    url: str
    admin: Actor
    manager_a: Actor
    manager_b: Actor
    rep_a1: Actor
    rep_a2: Actor
    rep_b1: Actor
    customer_a1: int
    customer_a2: int
    customer_b1: int
    pool_customer: int


def build_world(session: Session, url: str) -> World:
    """Two teams; reps with customers, visits, orders, deals, surveys and complaints in 2026."""
    admin = make_user(session, "admin", role=Role.ADMIN)
    manager_a = make_user(session, "manager_a", role=Role.MANAGER, team="North", region="East")
    manager_b = make_user(session, "manager_b", role=Role.MANAGER, team="South", region="West")
    rep_a1 = make_user(session, "rep_a1", team="North", region="East", manager=manager_a)
    rep_a2 = make_user(session, "rep_a2", team="North", region="East", manager=manager_a)
    rep_b1 = make_user(session, "rep_b1", team="South", region="West", manager=manager_b)
    alpha = make_customer(session, "Alpha Trading", owner=rep_a1, phone="13800000001")
    atlas = make_customer(session, "Atlas Foods", owner=rep_a2, phone="13800000002")
    beta = make_customer(session, "Beta Machines", owner=rep_b1, phone="13900000003")
    pool = make_customer(session, "Pool Prospect", owner=None, tier="lead")
    for day in (5, 12):
        make_interaction(session, alpha, rep_a1, datetime(2026, 2, day, 10))
    make_interaction(session, beta, rep_b1, datetime(2026, 2, 3, 10))
    make_order(session, alpha, rep_a1, date(2026, 2, 10), 1200)
    make_order(session, atlas, rep_a2, date(2026, 2, 11), 800)
    make_order(session, beta, rep_b1, date(2026, 2, 12), 500)
    make_opportunity(session, alpha, rep_a1, "won", amount=1200, closed_on=date(2026, 2, 10))
    make_opportunity(session, beta, rep_b1, "lost", amount=900, closed_on=date(2026, 2, 20))
    make_survey(session, alpha, rep_a1, date(2026, 2, 15), 5, recommend=10)
    make_survey(session, beta, rep_b1, date(2026, 2, 16), 2, recommend=3)
    make_complaint(session, beta, rep_b1, datetime(2026, 2, 1, 9), resolved_after_hours=30)
    for rep in (rep_a1, rep_a2, rep_b1):
        make_target(session, rep, date(2026, 2, 1), revenue=1000, new_customers=1, visits=2)
    session.commit()
    return World(
        url=url,
        admin=actor(admin),
        manager_a=actor(manager_a),
        manager_b=actor(manager_b),
        rep_a1=actor(rep_a1),
        rep_a2=actor(rep_a2),
        rep_b1=actor(rep_b1),
        customer_a1=alpha.id,
        customer_a2=atlas.id,
        customer_b1=beta.id,
        pool_customer=pool.id,
    )


@pytest.fixture
def world(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A fresh database with the hand-built world; the app under test points at it."""
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    monkeypatch.setenv("CRM_DEMO_MODE", "1")
    engine = make_engine(database_url)
    with Session(engine) as session:
        built = build_world(session, database_url)
    engine.dispose()
    yield built


def run_page(path: str, who: Actor | None, **query: str) -> AppTest:
    """Run one page file as a logged-in user (or nobody) and return the finished AppTest."""
    at = AppTest.from_file(str(ROOT / path), default_timeout=PAGE_TIMEOUT_S)
    if who is not None:
        at.session_state[ACTOR_KEY] = who
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    return at


def page_text(at: AppTest) -> str:
    """Return every piece of text the page rendered, for 'is this shown' assertions."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "error", "warning", "info", "success"):
        parts.extend(str(element.value) for element in getattr(at, kind))
    parts.extend(f"{m.label} {m.value}" for m in at.metric)
    for frame in at.dataframe:
        parts.append(frame.value.to_string())
    return "\n".join(parts)
