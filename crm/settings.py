"""Typed settings read from the environment and `.streamlit/secrets.toml`."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_SQLITE_PATH = DATA_DIR / "crm.db"
SECRETS_PATH = PROJECT_ROOT / ".streamlit" / "secrets.toml"
# A cookie key shorter than this is treated as a sample value (too weak to sign sessions).
MIN_COOKIE_KEY_LENGTH = 32
SAMPLE_COOKIE_KEYS = frozenset({"some_key", "changeme", "secret", "random_signature_key"})


@dataclass(frozen=True)
class Settings:
    """Runtime configuration of one process."""

    database_url: str
    cookie_key: str | None
    cookie_name: str
    cookie_expiry_days: float
    demo_mode: bool


def _secrets() -> dict[str, object]:
    if not SECRETS_PATH.exists():
        return {}
    with SECRETS_PATH.open("rb") as handle:
        return tomllib.load(handle)


def default_database_url() -> str:
    """Return the embedded SQLite URL used when CRM_DATABASE_URL is unset."""
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def load_settings() -> Settings:
    """Read settings: environment first, then secrets.toml, then defaults."""
    secrets = _secrets()
    url = os.environ.get("CRM_DATABASE_URL") or str(secrets.get("database_url") or "") or default_database_url()
    cookie_key = os.environ.get("CRM_COOKIE_KEY") or secrets.get("cookie_key")
    demo = os.environ.get("CRM_DEMO_MODE", str(secrets.get("demo_mode", "0"))).lower() in {"1", "true", "yes"}
    return Settings(
        database_url=url,
        cookie_key=str(cookie_key) if cookie_key else None,
        cookie_name=str(secrets.get("cookie_name") or "crm_auth"),
        cookie_expiry_days=float(str(secrets.get("cookie_expiry_days") or 7)),
        demo_mode=demo,
    )


def cookie_key_is_weak(key: str | None) -> bool:
    """Tell whether a cookie key is missing, a known sample value, or too short."""
    return key is None or key in SAMPLE_COOKIE_KEYS or len(key) < MIN_COOKIE_KEY_LENGTH
