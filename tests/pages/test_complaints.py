"""AppTest: the complaints page for every role, on the hand-built world of Feb 2026.

The world (tests/pages/conftest.py) has one complaint: on Beta, assigned to rep_b1, high
severity, opened 2026-02-01 09:00, due 24 h later, resolved after 30 h — late. So for Feb 2026
the on-time rate is 0 of 1 = 0.0% and the mean resolution time 30.0 h. Tests add open
complaints where they need them, relative to the real clock (the page's "now").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from crm.access import Actor
from crm.clock import utcnow
from crm.complaints import LIST_LIMIT
from crm.db import make_engine
from crm.i18n import t
from crm.models import Complaint, Customer, User
from tests.factories import make_complaint
from tests.pages.conftest import World, page_text, run_page

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "complaints.py")
OPEN = "complaints:open"
TOKEN = f"token:{OPEN}"
RESOLVE = "complaints:resolve"
ASSIGN = "complaints:assign"
DESCRIPTION = "Delivery arrived two weeks late"


# --- helpers --------------------------------------------------------------------------------


@contextmanager
def database(world: World) -> Iterator[Session]:
    engine = make_engine(world.url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
            session.commit()
    finally:
        engine.dispose()


def add_open_complaint(world: World, *, customer_id: int, assignee: Actor, hours_ago: float, severity: str) -> int:
    """Insert an unresolved complaint opened `hours_ago` before now (SLA by severity) and return its id."""
    sla = {"high": 24, "medium": 72, "low": 168}[severity]
    with database(world) as session:
        customer = session.get(Customer, customer_id)
        user = session.get(User, assignee.id)
        assert customer is not None and user is not None
        opened = utcnow().replace(microsecond=0) - timedelta(hours=hours_ago)
        complaint_id = make_complaint(session, customer, user, opened, sla_hours=sla, severity=severity).id
    return complaint_id


def complaint(world: World, complaint_id: int) -> Complaint:
    with database(world) as session:
        row = session.get(Complaint, complaint_id)
        assert row is not None
        return row


def logged(world: World) -> list[Complaint]:
    with database(world) as session:
        return list(session.scalars(select(Complaint).where(Complaint.description == DESCRIPTION)))


def open_feb_2026(who: Actor | None) -> AppTest:
    """Open the page and pick February 2026 as a custom period."""
    at = run_page(PAGE, who)
    at.selectbox(key="complaints:period:preset").select("custom").run()
    at.date_input(key="complaints:period:start").set_value(date(2026, 2, 1))
    at.date_input(key="complaints:period:end").set_value(date(2026, 2, 28)).run()
    assert not at.exception
    return at


def metric(at: AppTest, key: str) -> str:
    [value] = [m.value for m in at.metric if m.label == t(key)]
    return str(value)


def ledger(at: AppTest) -> pd.DataFrame:
    """Return the ledger: the one table with an SLA status column."""
    for element in at.dataframe:
        if t("complaints.col.status") in element.value.columns:
            return element.value
    return pd.DataFrame(columns=[t("complaints.col.customer"), t("complaints.col.status")])


def ledger_rows(at: AppTest) -> list[tuple[str, str]]:
    frame = ledger(at)
    customers, statuses = frame[t("complaints.col.customer")], frame[t("complaints.col.status")]
    return sorted((str(customer), str(status)) for customer, status in zip(customers, statuses, strict=True))


def chart_rows(at: AppTest, title_key: str) -> pd.DataFrame:
    for element in at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart"):
        proto = element.proto
        if json.loads(proto.spec).get("title") != t(title_key):
            continue
        frames = [dataframe_util.convert_arrow_bytes_to_pandas_df(ds.data.data) for ds in proto.datasets]
        return pd.concat(frames, ignore_index=True)
    raise AssertionError(f"no chart titled {t(title_key)!r}")


def element_after(at: AppTest, key: str) -> Any:
    """Return the element drawn right after a widget (where its field message goes)."""
    nodes = [node for node in at.main if not hasattr(node, "children")]
    index = next(i for i, node in enumerate(nodes) if getattr(node, "key", None) == key)
    return nodes[index + 1]


def okey(at: AppTest, name: str) -> str:
    return f"{OPEN}:{at.session_state['complaints:open:entry']}:{name}"


def rkey(complaint_id: int, name: str) -> str:
    return f"{RESOLVE}:{complaint_id}:{name}"


def fill_open(
    at: AppTest, *, customer: int, severity: str, opened: datetime, category: str | None = "delivery"
) -> AppTest:
    at.selectbox(key=okey(at, "customer")).select(customer)
    at.radio(key=okey(at, "severity")).set_value(severity)
    at.date_input(key=okey(at, "date")).set_value(opened.date())
    at.time_input(key=okey(at, "time")).set_value(opened.time()).run()
    if category is not None:
        at.selectbox(key=okey(at, "category")).select(category)
    at.text_area(key=okey(at, "description")).input(DESCRIPTION)
    return at


def submit_open(at: AppTest) -> AppTest:
    return at.button(key=okey(at, "submit")).click().run()


def an_hour_ago() -> datetime:
    return (utcnow() - timedelta(hours=1)).replace(second=0, microsecond=0)


# --- guard, scope and figures ---------------------------------------------------------------


def test_guard_without_login_shows_warning_and_no_data(world: World) -> None:
    at = run_page(PAGE, None)
    assert not at.exception
    assert [w.value for w in at.warning] == [t("app.login_required")]
    assert not at.dataframe and not at.metric and not at.selectbox
    assert "Beta" not in page_text(at)


@pytest.mark.parametrize(
    ("who", "rows"),
    [
        ("admin", [("Beta Machines", "⚠️ Resolved late")]),
        ("manager_b", [("Beta Machines", "⚠️ Resolved late")]),
        ("rep_b1", [("Beta Machines", "⚠️ Resolved late")]),
        ("manager_a", []),
        ("rep_a1", []),  # the Beta complaint is not rep_a1's
    ],
)
def test_ledger_shows_only_the_scope(world: World, who: str, rows: list[tuple[str, str]]) -> None:
    at = run_page(PAGE, getattr(world, who))
    assert not at.exception
    assert ledger_rows(at) == rows
    assert ("Beta Machines" in page_text(at)) == bool(rows)


@pytest.mark.parametrize(
    ("who", "on_time", "mean_hours"),
    [
        ("admin", "0.0%", "30.0"),  # 0 on time of 1 resolved; resolved 30 h after opening
        ("manager_b", "0.0%", "30.0"),
        ("rep_b1", "0.0%", "30.0"),
        ("manager_a", "n/a", "n/a"),  # nothing resolved: no rate, not 0
        ("rep_a1", "n/a", "n/a"),
    ],
)
def test_cards_for_feb_2026(world: World, who: str, on_time: str, mean_hours: str) -> None:
    at = open_feb_2026(getattr(world, who))
    assert metric(at, "complaints.card.on_time_rate") == on_time
    assert metric(at, "complaints.card.mean_hours") == mean_hours
    assert metric(at, "complaints.card.open") == "0"
    assert metric(at, "complaints.card.overdue") == "0"


def test_charts_for_feb_2026(world: World) -> None:
    at = open_feb_2026(world.admin)
    rows = chart_rows(at, "complaints.chart.by_severity")
    counts = {
        (str(severity), str(segment)): int(count)
        for severity, segment, count in zip(rows["severity"], rows["segment"], rows["count"], strict=True)
    }
    assert counts[("High", t("complaints.segment.late"))] == 1  # 30 h > 24 h
    assert counts[("High", t("complaints.segment.on_time"))] == 0
    assert sum(counts.values()) == 1
    trend = chart_rows(at, "complaints.chart.trend")
    assert list(trend["on_time_rate"]) == [0.0]  # February: 0 of 1


def test_overdue_open_complaint_is_counted_and_flagged(world: World) -> None:
    # High severity (24 h) opened 30 h ago: overdue now. Medium (72 h) opened 1 h ago: on time.
    add_open_complaint(world, customer_id=world.customer_a1, assignee=world.rep_a1, hours_ago=30, severity="high")
    add_open_complaint(world, customer_id=world.customer_a1, assignee=world.rep_a1, hours_ago=1, severity="medium")
    at = run_page(PAGE, world.rep_a1)  # this quarter: "now" is inside it
    assert not at.exception
    assert metric(at, "complaints.card.open") == "2"
    assert metric(at, "complaints.card.overdue") == "1"
    assert ledger_rows(at) == [("Alpha Trading", "🔴 Overdue"), ("Alpha Trading", "🟢 On time")]
    at.selectbox(key="complaints:ledger:status").select("overdue").run()
    assert ledger_rows(at) == [("Alpha Trading", "🔴 Overdue")]
    at.selectbox(key="complaints:ledger:status").select(None)
    at.selectbox(key="complaints:ledger:severity").select("medium").run()
    assert ledger_rows(at) == [("Alpha Trading", "🟢 On time")]


def test_sidebar_filters_narrow_the_ledger(world: World) -> None:
    # The world's Beta complaint (rep_b1: team South, region West, customer tier) and an open one
    # on the pool customer (tier lead) handled by rep_a1 (team North, region East).
    add_open_complaint(world, customer_id=world.pool_customer, assignee=world.rep_a1, hours_ago=1, severity="low")
    at = run_page(PAGE, world.admin)
    assert not at.exception
    assert t("complaints.ledger_caption", limit=LIST_LIMIT) in [c.value for c in at.caption]
    beta, pool = ("Beta Machines", "⚠️ Resolved late"), ("Pool Prospect", "🟢 On time")
    assert ledger_rows(at) == [beta, pool]
    at.selectbox(key="complaints:team").select("North").run()
    assert ledger_rows(at) == [pool]
    at.selectbox(key="complaints:team").select(None)
    at.selectbox(key="complaints:region").select("West").run()
    assert ledger_rows(at) == [beta]
    at.selectbox(key="complaints:region").select(None)
    at.selectbox(key="complaints:rep").select(world.rep_a1.id).run()
    assert ledger_rows(at) == [pool]
    at.selectbox(key="complaints:rep").select(None)
    at.selectbox(key="complaints:tier").select("customer").run()
    assert ledger_rows(at) == [beta]
    at.selectbox(key="complaints:ledger:severity").select("low").run()
    assert ledger_rows(at) == []  # the tier and the severity filter together
    at.selectbox(key="complaints:tier").select("lead").run()
    assert ledger_rows(at) == [pool]


def test_open_only_hides_resolved(world: World) -> None:
    at = run_page(PAGE, world.admin)
    assert len(ledger_rows(at)) == 1
    at.checkbox(key="complaints:ledger:open_only").check().run()
    assert ledger_rows(at) == []


# --- open a complaint -----------------------------------------------------------------------


def test_rep_opens_a_complaint_due_by_the_sla(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    opened = an_hour_ago()
    fill_open(at, customer=world.customer_a1, severity="high", opened=opened)
    due = opened + timedelta(hours=24)
    assert t("complaints.field.due_preview", due=due.strftime("%Y-%m-%d %H:%M"), hours=24, severity="High") in [
        c.value for c in at.caption
    ]
    submit_open(at)
    assert not at.exception
    [row] = logged(world)
    assert (row.customer_id, row.assignee_id, row.severity, row.category) == (
        world.customer_a1,
        world.rep_a1.id,  # the customer's owner
        "high",
        "delivery",
    )
    assert (row.opened_at, row.due_at) == (opened, opened + timedelta(hours=24))
    assert row.idempotency_key == token
    assert [s.value for s in at.success] == [t("complaints.open.saved", id=row.id, due=due.strftime("%Y-%m-%d %H:%M"))]
    assert at.session_state[TOKEN] != token
    assert at.text_area(key=okey(at, "description")).value == ""  # a new, empty entry
    assert ledger_rows(at) == [("Alpha Trading", "🟠 Due soon")]  # due in 23 h
    assert metric(at, "complaints.card.open") == "1"


def test_missing_category_is_refused_next_to_the_field_and_input_kept(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    fill_open(at, customer=world.customer_a1, severity="low", opened=an_hour_ago(), category=None)
    submit_open(at)
    assert not at.exception
    assert logged(world) == []
    assert t("common.fix_fields") in [e.value for e in at.error]
    assert element_after(at, okey(at, "category")).value == t("error.required")
    assert at.text_area(key=okey(at, "description")).value == DESCRIPTION
    assert at.selectbox(key=okey(at, "customer")).value == world.customer_a1
    assert at.radio(key=okey(at, "severity")).value == "low"
    assert at.session_state[TOKEN] == token


def test_opened_in_the_future_is_refused(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    fill_open(at, customer=world.customer_a1, severity="low", opened=an_hour_ago() + timedelta(days=2))
    submit_open(at)
    assert not at.exception
    assert logged(world) == []
    assert element_after(at, okey(at, "date")).value == t("error.in_future")


def test_double_submit_with_the_same_token_stores_one_complaint(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    token = at.session_state[TOKEN]
    fill_open(at, customer=world.customer_a1, severity="high", opened=an_hour_ago())
    submit_open(at)
    assert len(logged(world)) == 1
    at.session_state[TOKEN] = token  # the second click arrives before the token was rotated
    fill_open(at, customer=world.customer_a1, severity="high", opened=an_hour_ago())
    submit_open(at)
    assert not at.exception
    assert len(logged(world)) == 1
    assert [s.value for s in at.success]


def test_rep_is_offered_only_own_customers(world: World) -> None:
    at = run_page(PAGE, world.rep_a1)
    labels = at.selectbox(key=okey(at, "customer")).options
    assert [label.split(" · ")[1] for label in labels] == ["Alpha Trading"]
    assert not any(box.key == okey(at, "assignee") for box in at.selectbox)  # reps cannot assign
    assert [tab.label for tab in at.tabs] == [t("complaints.tab.open"), t("complaints.tab.resolve")]


# --- assign and resolve ---------------------------------------------------------------------


def test_manager_assigns_to_another_rep_of_the_team(world: World) -> None:
    complaint_id = add_open_complaint(
        world, customer_id=world.customer_a1, assignee=world.rep_a1, hours_ago=1, severity="low"
    )
    at = run_page(PAGE, world.manager_a)
    at.selectbox(key=f"{ASSIGN}:pick").select(complaint_id).run()
    box = at.selectbox(key=f"{ASSIGN}:{complaint_id}:assignee")
    assert box.value == world.rep_a1.id
    assert box.options == ["Manager_A", "Rep_A1", "Rep_A2"]
    box.select(world.rep_a2.id)
    at.button(key=f"{ASSIGN}:{complaint_id}:submit").click().run()
    assert not at.exception
    assert complaint(world, complaint_id).assignee_id == world.rep_a2.id
    assert [s.value for s in at.success] == [t("complaints.assign.saved", id=complaint_id, name="Rep_A2")]


def test_resolve_without_resolution_is_refused(world: World) -> None:
    complaint_id = add_open_complaint(
        world, customer_id=world.customer_a1, assignee=world.rep_a1, hours_ago=2, severity="high"
    )
    at = run_page(PAGE, world.rep_a1)
    at.selectbox(key=f"{RESOLVE}:pick").select(complaint_id).run()
    at.radio(key=rkey(complaint_id, "satisfied")).set_value(True)
    at.button(key=rkey(complaint_id, "submit")).click().run()
    assert not at.exception
    assert element_after(at, rkey(complaint_id, "resolution")).value == t("error.required")
    assert at.radio(key=rkey(complaint_id, "satisfied")).value is True  # input kept
    assert complaint(world, complaint_id).resolved_at is None


def test_resolve_closes_the_complaint(world: World) -> None:
    complaint_id = add_open_complaint(
        world, customer_id=world.customer_a1, assignee=world.rep_a1, hours_ago=2, severity="high"
    )
    at = run_page(PAGE, world.rep_a1)
    at.selectbox(key=f"{RESOLVE}:pick").select(complaint_id).run()
    at.text_area(key=rkey(complaint_id, "resolution")).input("Replaced the unit")
    at.radio(key=rkey(complaint_id, "satisfied")).set_value(True)
    at.button(key=rkey(complaint_id, "submit")).click().run()
    assert not at.exception
    row = complaint(world, complaint_id)
    assert (row.resolution, row.satisfied) == ("Replaced the unit", True)
    assert row.resolved_at is not None and row.resolved_at <= row.due_at  # 2 h into a 24 h SLA
    resolved = t("enum.sla.resolved_on_time")
    assert [s.value for s in at.success] == [t("complaints.resolve.saved", id=complaint_id, status=resolved)]
    assert ledger_rows(at) == [("Alpha Trading", f"✅ {resolved}")]
    assert metric(at, "complaints.card.open") == "0"


def test_resolving_an_already_resolved_complaint_names_who_did(world: World) -> None:
    from crm.complaints import ResolutionInput, resolve_complaint

    complaint_id = add_open_complaint(
        world, customer_id=world.customer_a1, assignee=world.rep_a1, hours_ago=2, severity="high"
    )
    at = run_page(PAGE, world.rep_a1)
    at.selectbox(key=f"{RESOLVE}:pick").select(complaint_id).run()
    resolved_at = utcnow().replace(second=0, microsecond=0)
    with database(world) as session:
        resolve_complaint(
            session,
            actor=world.manager_a,
            complaint_id=complaint_id,
            data=ResolutionInput(resolution="Called the customer"),
            now=resolved_at,
        )
    at.text_area(key=rkey(complaint_id, "resolution")).input("Replaced the unit")
    at.button(key=rkey(complaint_id, "submit")).click().run()
    assert not at.exception
    assert [w.value for w in at.warning] == [
        t("common.stale", who="Manager_A", at=resolved_at.strftime("%Y-%m-%d %H:%M"))
    ]
    assert complaint(world, complaint_id).resolution == "Called the customer"
    at.button(key=f"{RESOLVE}:reload").click().run()
    assert not at.warning
