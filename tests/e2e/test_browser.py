"""What a user sees in Chromium against a freshly started server (SPEC §3, §4; issue 3)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm.db import make_engine, read_session
from crm.models import Customer, Role, User
from tests.e2e.conftest import Server, screenshot

pytestmark = pytest.mark.e2e

PAGES = ["customers", "log_interaction", "pipeline", "satisfaction", "loyalty", "complaints", "appraisal", "account"]
ADMIN_PAGES = [*PAGES, "admin"]


def settle(page: Any) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_timeout(500)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")
    page.wait_for_timeout(300)


def login(page: Any, server: Server, username: str) -> None:
    page.goto(server.url)
    page.get_by_label("Username").fill(username)
    page.locator("input[type=password]").fill(server.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector('[data-testid="stSidebar"]')
    settle(page)


def open_page(page: Any, server: Server, name: str) -> None:
    page.goto(f"{server.url}/{name}")
    page.wait_for_selector('[data-testid="stSidebar"]')
    settle(page)


def metric_value(page: Any, label: str) -> str:
    """Return the shown value of the KPI card with this label."""
    card = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return str(card.locator('[data-testid="stMetricValue"]').inner_text()).strip()


def names(server: Server, *, owner: str | None = None) -> list[str]:
    engine = make_engine(server.database_url)
    with read_session(engine) as session:
        query = select(Customer.name).join(User, Customer.owner_id == User.id)
        if owner:
            query = query.where(User.username == owner)
        found = list(session.scalars(query))
    engine.dispose()
    return found


@pytest.mark.parametrize("name", ["customers", "overview", "appraisal", "admin"])
def test_first_request_to_a_page_shows_only_the_login(server: Server, page: Any, name: str) -> None:
    # The very first request after the server started goes straight to a page's URL.
    page.goto(f"{server.url}/{name}")
    page.get_by_label("Username").wait_for()
    settle(page)
    text = page.locator("body").inner_text()
    assert "Log in" in text
    # No data: neither in the visible text nor in any hidden copy (grids, charts).
    text += page.locator("body").text_content() or ""
    leaked = [customer for customer in names(server) if customer in text]
    assert leaked == []
    assert page.locator('[data-testid="stMetric"]').count() == 0
    assert page.locator('[data-testid="stDataFrame"]').count() == 0
    screenshot(page, f"first_request_{name}")


def test_wrong_password_is_refused_with_one_message(server: Server, page: Any) -> None:
    page.goto(server.url)
    page.get_by_label("Username").fill("rep1")
    page.locator("input[type=password]").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    settle(page)
    assert "Wrong username or password" in page.locator("body").inner_text()
    assert page.locator('[data-testid="stSidebar"]').count() == 0


def test_rep_adds_customer_logs_visit_and_the_overview_changes(server: Server, page: Any) -> None:
    login(page, server, "rep1")
    open_page(page, server, "overview")
    visits_before = int(metric_value(page, "Visits").replace(",", ""))

    open_page(page, server, "customers")
    page.get_by_role("tab", name="Add customer").click()
    customer = f"Browser Test Co {uuid.uuid4().hex[:6]}"
    page.get_by_label("Name", exact=True).fill(customer)
    page.get_by_role("button", name="Save customer").click()
    settle(page)
    assert customer in names(server, owner="rep1")

    open_page(page, server, "log_interaction")
    page.get_by_label("Find customer").fill(customer)
    page.get_by_label("Find customer").press("Enter")
    settle(page)
    page.get_by_role("button", name="Save").first.click()
    settle(page)
    assert customer in page.locator("body").inner_text()
    screenshot(page, "rep_logged_visit")

    open_page(page, server, "overview")
    assert int(metric_value(page, "Visits").replace(",", "")) == visits_before + 1
    screenshot(page, "rep_overview_after_visit")


def test_logout_revokes_the_cookie_server_side(server: Server, page: Any, browser: Any) -> None:
    login(page, server, "rep1")
    cookies = page.context.cookies()
    assert any(cookie["name"] == "crm_auth" for cookie in cookies)
    # A new tab with the cookie gets straight in while the login is valid.
    replay = browser.new_context()
    replay.add_cookies(cookies)
    tab = replay.new_page()
    tab.goto(server.url)
    tab.wait_for_selector('[data-testid="stSidebar"]')
    replay.close()

    page.get_by_role("button", name="Log out").click()
    settle(page)
    assert page.get_by_label("Username").is_visible()
    page.wait_for_function("!document.cookie.includes('crm_auth=')")

    # Replaying the old cookie after logout stays out.
    attacker = browser.new_context()
    attacker.add_cookies(cookies)
    tab = attacker.new_page()
    tab.goto(f"{server.url}/customers")
    tab.get_by_label("Username").wait_for()
    settle(tab)
    assert tab.locator('[data-testid="stSidebar"]').count() == 0
    attacker.close()


def test_manager_sees_the_team_in_the_appraisal_leaderboard(server: Server, page: Any) -> None:
    engine = make_engine(server.database_url)
    with read_session(engine) as session:
        manager = session.scalar(select(User).where(User.username == "manager1"))
        assert manager is not None
        team = {
            u.display_name
            for u in session.scalars(select(User).where(User.team == manager.team, User.role == Role.REP.value))
        }
        others = {
            u.display_name
            for u in session.scalars(select(User).where(User.team != manager.team, User.role == Role.REP.value))
        }
    engine.dispose()
    login(page, server, "manager1")
    open_page(page, server, "appraisal")
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    screenshot(page, "manager_appraisal")
    # The grid draws on a canvas: read the leaderboard the way a manager shares it, as its CSV.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert team and all(name in text for name in team)
    assert not any(name in text for name in others)


@pytest.mark.parametrize(("username", "pages"), [("admin", ADMIN_PAGES), ("rep1", ["my_day", *PAGES])])
def test_every_page_renders_without_error(server: Server, page: Any, username: str, pages: list[str]) -> None:
    login(page, server, username)
    screenshot(page, f"{username}_landing")
    for name in ["overview", *pages]:
        open_page(page, server, name)
        body = page.locator("body").inner_text()
        assert not re.search(r"Traceback|Exception|Error:", body), f"{name}: {body[:500]}"
        assert page.locator('[data-testid="stException"]').count() == 0
        screenshot(page, f"{username}_{name}")
