"""Fixtures: every test gets a fresh, migrated database, on SQLite and (if configured) PostgreSQL."""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from crm.db import WRITE_OPTION, make_engine, migrate

PG_URL_ENV = "CRM_TEST_DATABASE_URL"
BACKENDS = ["sqlite", "postgresql"]
_counter = itertools.count()


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_URL_ENV) or None


def _pg_url_for(database: str) -> str:
    base = make_url(_pg_admin_url() or "")
    return base.set(drivername="postgresql+psycopg", database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate one SQLite file per test session; each test copies it."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """Migrate one PostgreSQL template database per test session; each test clones it."""
    if not _pg_admin_url():
        yield None
        return
    name = f"crm_tmpl_{uuid.uuid4().hex[:10]}"
    admin = create_engine(_pg_url_for("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(_pg_url_for(name))
    migrate(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fresh_database_url(backend: str, sqlite_template: Path, pg_template: str | None, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a fresh migrated database for one test, dropping it afterwards."""
    if backend == "sqlite":
        path = tmp_path / "crm.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if pg_template is None:
        pytest.skip(f"{PG_URL_ENV} is not set")
    name = f"crm_t_{os.getpid()}_{next(_counter)}"
    admin = create_engine(_pg_url_for("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    try:
        yield _pg_url_for(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, sqlite_template: Path, pg_template: str | None, tmp_path: Path
) -> Iterator[str]:
    """URL of a fresh migrated database for this test (once per backend)."""
    yield from fresh_database_url(request.param, sqlite_template, pg_template, tmp_path)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Engine on this test's fresh database."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A write session on this test's database; tests commit when they need to."""
    sess = Session(bind=engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False)
    yield sess
    sess.rollback()
    sess.close()
