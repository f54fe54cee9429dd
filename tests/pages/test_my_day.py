"""AppTest: My day (a rep's landing page) on the hand-built world, with the clock on 2026-02-20.

rep_a1's February 2026 in the world: orders 1,200 (Alpha, its first order → one new customer),
visits on 02-05 and 02-12, one deal won, one survey with overall 5; target revenue 1,000, one
new customer, two visits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest
import streamlit as st
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from crm import ui
from crm.access import Actor
from crm.db import make_engine
from crm.interactions import InteractionInput, log_interaction
from crm.models import Customer, User
from tests.factories import make_customer, make_interaction
from tests.pages.conftest import World, page_text, run_page

PAGE = "pages/my_day.py"
TODAY = date(2026, 2, 20)
NOW = datetime(2026, 2, 20, 12, 0)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages read the clock through crm.ui; pin it to 20 Feb 2026."""
    monkeypatch.setattr(ui, "today", lambda: TODAY)
    monkeypatch.setattr(ui, "utcnow", lambda: NOW)


@dataclass
class Switches:
    """The pages the page asked Streamlit to switch to: (page, query params)."""

    calls: list[tuple[str, dict[str, str] | None]]


@pytest.fixture
def switches(monkeypatch: pytest.MonkeyPatch) -> Switches:
    """Record st.switch_page (a lone page under AppTest has no navigation to switch in)."""
    recorded = Switches(calls=[])

    def fake_switch(page: str, *, query_params: dict[str, str] | None = None) -> None:
        recorded.calls.append((page, query_params))

    monkeypatch.setattr(st, "switch_page", fake_switch)
    return recorded


@dataclass(frozen=True)
class Follow:
    """Customers added for the follow-up tests."""

    orion: int  # rep_a1's, follow-up overdue by three days
    dormant: int  # rep_a1's, untouched since autumn 2025 → at risk


@pytest.fixture
def follow(world: World) -> Iterator[Follow]:
    """Add follow-ups: rep_a1 today (Alpha) and overdue (Orion); rep_a2 today (Atlas)."""
    engine = make_engine(world.url)
    try:
        with Session(engine) as session:
            rep_a1 = session.get(User, world.rep_a1.id)
            rep_a2 = session.get(User, world.rep_a2.id)
            atlas = session.get(Customer, world.customer_a2)
            assert rep_a1 is not None and rep_a2 is not None and atlas is not None
            orion = make_customer(session, "Orion Supplies", owner=rep_a1)
            dormant = make_customer(session, "Dormant Dynamics", owner=rep_a1, created_at=datetime(2025, 9, 1))
            make_interaction(session, orion, rep_a1, datetime(2026, 2, 2, 9), next_follow_up=date(2026, 2, 17))
            make_interaction(session, atlas, rep_a2, datetime(2026, 2, 19, 9), next_follow_up=TODAY)
            session.commit()
            # The follow-up due today goes through crm, as the Log interaction page saves it.
            log_interaction(
                session,
                actor=world.rep_a1,
                data=InteractionInput(
                    customer_id=world.customer_a1,
                    kind="call",
                    occurred_at=datetime(2026, 2, 19, 15),
                    subject="Send the revised quote",
                    next_follow_up=TODAY,
                ),
                now=NOW,
            )
            session.commit()
            yield Follow(orion=orion.id, dormant=dormant.id)
    finally:
        engine.dispose()


def open_page(actor: Actor | None) -> AppTest:
    at = run_page(PAGE, actor)
    assert not at.exception, at.exception
    return at


def progress_texts(at: AppTest) -> list[str]:
    return [element.proto.text for element in at.get("progress")]


def card(at: AppTest, label: str) -> str:
    values = [metric.value for metric in at.metric if metric.label == label]
    assert len(values) == 1, [metric.label for metric in at.metric]
    return str(values[0])


def button_keys(at: AppTest) -> set[Any]:
    return {button.key for button in at.button}


# --- guard ----------------------------------------------------------------------------------


def test_guard_without_login_shows_warning_and_no_data(world: World) -> None:
    at = open_page(None)
    assert [w.value for w in at.warning] == ["Please log in to see this page."]
    assert len(at.metric) == 0
    assert "Alpha Trading" not in page_text(at)


# --- follow-ups -----------------------------------------------------------------------------


def test_follow_ups_due_today_and_overdue_are_listed(world: World, follow: Follow) -> None:
    at = open_page(world.rep_a1)
    text = page_text(at)
    assert at.title[0].value == "My day · 2026-02-20"
    assert "Alpha Trading** — due today" in text
    assert "Agreed: Send the revised quote" in text
    # Orion's follow-up was due on 02-17: 20 − 17 = 3 days overdue.
    assert f"Orion Supplies** — {(TODAY - date(2026, 2, 17)).days} days overdue" in text
    assert "due 2026-02-17" in text
    assert card(at, "Follow-ups due today") == "1"
    assert card(at, "Follow-ups overdue") == "1"
    # Most overdue first.
    assert text.index("Orion Supplies") < text.index("Alpha Trading")


def test_another_reps_follow_up_is_not_listed(world: World, follow: Follow) -> None:
    at = open_page(world.rep_a1)
    assert "Atlas Foods" not in page_text(at)
    # rep_a2 sees their own (Atlas, today) and none of rep_a1's.
    other = page_text(open_page(world.rep_a2))
    assert "Atlas Foods** — due today" in other
    assert "Alpha Trading" not in other and "Orion Supplies" not in other


def test_manager_sees_only_their_own_items(world: World, follow: Follow) -> None:
    at = open_page(world.manager_a)
    text = page_text(at)
    for customer in ("Alpha Trading", "Orion Supplies", "Atlas Foods", "Dormant Dynamics"):
        assert customer not in text
    assert "No follow-up is due" in text
    assert "Targets and personal KPIs apply to sales reps." in text


def test_row_buttons_open_the_customer_and_log_a_visit(world: World, follow: Follow, switches: Switches) -> None:
    at = open_page(world.rep_a1)
    assert {f"my_day:open:follow_up:{follow.orion}", f"my_day:log:follow_up:{world.customer_a1}"} <= button_keys(at)
    at.button(key=f"my_day:open:follow_up:{follow.orion}").click().run()
    at.button(key=f"my_day:log:follow_up:{world.customer_a1}").click().run()
    at.button(key="my_day:log_visit").click().run()
    assert switches.calls == [
        ("pages/customers.py", {"customer": str(follow.orion)}),
        ("pages/log_interaction.py", {"customer": str(world.customer_a1)}),
        ("pages/log_interaction.py", None),
    ]


# --- at risk --------------------------------------------------------------------------------


def test_customers_at_risk_are_the_reps_silent_ones(world: World, follow: Follow) -> None:
    at = open_page(world.rep_a1)
    text = page_text(at)
    # Dormant Dynamics: created 2025-09-01, never contacted → at risk. Alpha (contacted 02-19)
    # and Orion (created 2026-01-01, within 60 days) are not.
    assert "Dormant Dynamics" in text
    assert "no contact or order yet" in text
    assert card(at, "Customers at risk") == "1"
    assert f"my_day:open:at_risk:{follow.dormant}" in button_keys(at)
    assert "my_day:open:at_risk:" + str(world.customer_a1) not in button_keys(at)


# --- own KPIs -------------------------------------------------------------------------------


def test_own_kpis_against_targets_show_x_of_y(world: World) -> None:
    at = open_page(world.rep_a1)
    assert progress_texts(at) == [
        "Revenue: 1,200 of 1,000",
        "New customers: 1 of 1",  # Alpha's first order ever is in February
        "Visits: 2 of 2",  # 02-05 and 02-12
    ]
    assert [element.proto.value for element in at.get("progress")] == [100, 100, 100]  # capped at the target
    assert card(at, "Win rate this month") == "100.0%"
    assert card(at, "CSAT this month (1–5)") == "5.00"
    assert "My KPIs for 2026-02" in page_text(at)


def test_progress_below_target_and_without_target(world: World) -> None:
    at = open_page(world.rep_b1)
    # rep_b1: revenue 500 of 1,000 → half way; one visit of two; 0 won of 1 lost; CSAT 2.
    assert progress_texts(at) == ["Revenue: 500 of 1,000", "New customers: 1 of 1", "Visits: 1 of 2"]
    assert [element.proto.value for element in at.get("progress")] == [500 * 100 // 1000, 100, 1 * 100 // 2]
    assert card(at, "Win rate this month") == f"{0 / 1:.1%}"
    assert card(at, "CSAT this month (1–5)") == "2.00"
