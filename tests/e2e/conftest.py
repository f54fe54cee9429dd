"""Browser tests: a real `streamlit run` on a seeded database, driven by Playwright in Chromium."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crm.clock import today
from crm.db import make_engine, migrate
from crm.seed import seed

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
SERVER_START_TIMEOUT_S = 60
PASSWORD = "e2e-password-" + "x" * 8
# Streamlit reruns and websocket round-trips: generous, but bounded, waits.
UI_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Server:
    url: str
    database_url: str
    password: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _browser_available() -> bool:
    if not CHROMIUM.exists():
        return False
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session (skipped when missing, unless CRM_REQUIRE_BROWSER=1)."""
    if not _browser_available():
        if os.environ.get("CRM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CRM_REQUIRE_BROWSER=1 but {CHROMIUM} or playwright is missing")
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


def start_server(tmp: Path, *, port: int | None = None) -> tuple[subprocess.Popen[bytes], Server]:
    """Seed a fresh SQLite database and start streamlit on it; wait until it is healthy."""
    database_url = f"sqlite:///{tmp / 'e2e.db'}"
    engine = make_engine(database_url)
    migrate(engine)
    seed(engine, scale="tiny", locale="en_US", seed=7, password=PASSWORD, as_of=today())
    engine.dispose()
    port = port or _free_port()
    env = {
        **os.environ,
        "CRM_DATABASE_URL": database_url,
        "CRM_COOKIE_KEY": secrets.token_urlsafe(48),
        "CRM_DEMO_MODE": "0",
    }
    log = (tmp / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return process, Server(url=url, database_url=database_url, password=PASSWORD)
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"streamlit did not start; see {tmp / 'server.log'}")


@pytest.fixture
def server(tmp_path: Path, browser: object) -> Iterator[Server]:
    """A freshly started server per test (so 'first request after start' is real)."""
    process, srv = start_server(tmp_path)
    yield srv
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A new browser context (own cookies) and page."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-US")  # type: ignore[attr-defined]
    context.set_default_timeout(UI_TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot under artifacts/screenshots/ (git-ignored) for review."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
