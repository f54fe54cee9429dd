"""Engine and session factories; SQLite pragmas; Alembic migrations. No streamlit here."""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crm.settings import load_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# How long a SQLite writer waits for the lock held by another writer before failing.
SQLITE_BUSY_TIMEOUT_MS = 15_000
# PostgreSQL session settings for dashboard queries: JIT compilation costs more than the short
# aggregate queries it would speed up, and sorts/hashes of a quarter's rows fit in 32 MB.
POSTGRES_OPTIONS = "-c jit=off -c work_mem=32MB"
# Execution option that makes a SQLite transaction take the write lock up front (see WriteLock).
WRITE_OPTION = "crm_write"

# SQLite databases that live in memory: each connection has its own, so there is nothing to share.
MEMORY_DATABASES = frozenset({"", ":memory:"})

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


class DatabaseLockedError(OperationalError):
    """A SQLite write transaction could not get this process's write lock (SQLite's 'database is locked')."""


class _Waiter:
    """One thread waiting for a WriteLock: woken when the lock is handed to it."""

    __slots__ = ("granted", "thread", "wake")

    def __init__(self, thread: int) -> None:
        self.thread = thread
        self.granted = False
        self.wake = threading.Lock()
        self.wake.acquire()


class WriteLock:
    """A first-come, first-served lock for the write transactions of one SQLite file in this process.

    SQLite lets one writer in at a time; a writer that finds the file locked sleeps in SQLite's
    busy handler with growing back-off (up to 100 ms), so under load writers are served late and
    out of turn. Writers of one process queue here instead: release hands the lock straight to the
    oldest waiter and wakes it, so no one sleeps longer than needed and no newcomer overtakes.
    Writers of other processes still meet SQLite's busy_timeout.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None  # thread ident of the holder
        self._waiters: deque[_Waiter] = deque()

    def acquire(self, *, timeout: float) -> bool:
        """Wait in turn for the lock; return False if it was not handed over within timeout seconds.

        Raises DatabaseLockedError at once when the calling thread already holds the lock (a write
        transaction opened inside another one of the same thread): the wait could never end.
        """
        me = threading.get_ident()
        with self._mutex:
            if self._owner is None:
                self._owner = me
                return True
            if self._owner == me:
                raise _nested_write_error()
            waiter = _Waiter(me)
            self._waiters.append(waiter)
        if waiter.wake.acquire(timeout=timeout):
            return True
        with self._mutex:
            if waiter.granted:  # handed over just as the wait timed out
                return True
            self._waiters.remove(waiter)
            return False

    def release(self) -> None:
        """Hand the lock to the oldest waiter, or free it."""
        with self._mutex:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.granted = True
                self._owner = waiter.thread
                waiter.wake.release()
            else:
                self._owner = None

    @property
    def locked(self) -> bool:
        """Tell whether some write transaction holds the lock (for tests and diagnostics)."""
        return self._owner is not None

    @property
    def waiting(self) -> int:
        """Return how many threads wait for the lock (for tests and diagnostics)."""
        return len(self._waiters)


# One lock per database file, shared by every engine of this process on that file; the
# connections keep it alive.
_write_locks: weakref.WeakValueDictionary[str, WriteLock] = weakref.WeakValueDictionary()
_write_locks_lock = threading.Lock()


def _write_lock_for(database: str | None) -> WriteLock | None:
    """Return the write lock of a SQLite database file (None for in-memory databases)."""
    if database is None or database in MEMORY_DATABASES or database.startswith("file:"):
        return None
    key = os.path.realpath(database)
    with _write_locks_lock:
        lock = _write_locks.get(key)
        if lock is None:
            lock = _write_locks[key] = WriteLock()
        return lock


def write_lock(engine: Engine) -> WriteLock | None:
    """Return the in-process write lock of a SQLite engine's database (None: PostgreSQL or in memory)."""
    return _write_lock_for(engine.url.database) if is_sqlite(engine) else None


def _locked_error(detail: str) -> DatabaseLockedError:
    return DatabaseLockedError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(f"database is locked: {detail}"))


def _nested_write_error() -> DatabaseLockedError:
    return _locked_error("this thread already holds the write lock on another connection (nested write session)")


class LockingConnection(sqlite3.Connection):
    """A sqlite3 connection that gives the process's write lock back as soon as its transaction ends.

    SQLAlchemy ends a transaction through commit(), rollback() (also when the pool takes the
    connection back) or close() (also when the pool invalidates it); each hands the lock on right
    after SQLite has released the file, whatever raised.
    """

    write_lock: WriteLock | None = None
    holds_write_lock = False

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release_if_done()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release_if_done()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_back_write_lock()

    def take_write_lock(self) -> None:
        """Wait in turn for the write lock (before BEGIN IMMEDIATE); raise DatabaseLockedError after busy_timeout."""
        if self.write_lock is None:
            return
        if not self.write_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise _locked_error(f"another write transaction of this process held it for {SQLITE_BUSY_TIMEOUT_MS} ms")
        self.holds_write_lock = True

    def give_back_write_lock(self) -> None:
        """Release the write lock if this connection holds it (BEGIN failed: no transaction to end)."""
        if self.holds_write_lock and self.write_lock is not None:
            self.holds_write_lock = False
            self.write_lock.release()

    def _release_if_done(self) -> None:
        # A failed COMMIT leaves the transaction open: keep the lock until the rollback.
        if self.holds_write_lock and not self.in_transaction:
            self.give_back_write_lock()


def is_sqlite(engine: Engine) -> bool:
    """Tell whether the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def _install_sqlite_pragmas(engine: Engine) -> None:
    database = engine.url.database

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see the begin hook).
        dbapi_conn.isolation_level = None
        if isinstance(dbapi_conn, LockingConnection):
            dbapi_conn.write_lock = _write_lock_for(database)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock at BEGIN so two writers never deadlock upgrading a read lock;
        # readers stay deferred so WAL lets them run beside a writer.
        if not conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN")
            return
        dbapi_conn = conn.connection.dbapi_connection
        if not isinstance(dbapi_conn, LockingConnection):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        # Queue behind this process's other writers first, so SQLite's busy handler only ever
        # waits for other processes.
        dbapi_conn.take_write_lock()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_conn.give_back_write_lock()
            raise


def make_engine(url: str) -> Engine:
    """Create an engine for a URL, with SQLite tuned for concurrent use."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            "factory": LockingConnection,
        }
    else:
        kwargs["connect_args"] = {"options": POSTGRES_OPTIONS}
        kwargs["pool_pre_ping"] = True
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 20
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _install_sqlite_pragmas(engine)
    return engine


def get_engine(url: str | None = None) -> Engine:
    """Return the process-wide engine for a URL (default: the configured one)."""
    url = url or load_settings().database_url
    with _engines_lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


def dispose_engines() -> None:
    """Close every pooled connection (tests and forks)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """Open a session for reading; it never holds the SQLite write lock."""
    session = Session(bind=engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """Open a session that commits on success and rolls back on error.

    On SQLite its transaction holds this process's WriteLock from its first statement to the
    commit or rollback; threads queue for it in turn. A read session inside it is fine (it never
    takes the lock). Another write session opened inside it by the same thread cannot run while
    the outer one holds the database: its first statement raises DatabaseLockedError at once,
    rather than wait for a lock its own thread holds, and the outer session stays usable.
    """
    session = Session(bind=engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a sessionmaker for write sessions on this engine."""
    return sessionmaker(bind=engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """Build an Alembic config pointing at our migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Apply every pending migration to the engine's database."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def is_migrated(engine: Engine) -> bool:
    """Tell whether the schema exists (the users table is there)."""
    return inspect(engine).has_table("users")
