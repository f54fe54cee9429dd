"""The in-process SQLite write lock: held from a write's first statement to its end, fair, never leaked."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from crm.audit import data_version
from crm.db import (
    WRITE_OPTION,
    DatabaseLockedError,
    WriteLock,
    make_engine,
    read_session,
    session_factory,
    write_lock,
    write_session,
)
from crm.interactions import InteractionInput, log_interaction
from crm.models import AuditEvent, Interaction, Role
from tests.factories import actor, make_customer, make_user

NOW = datetime(2026, 3, 10, 9, 0)
WRITERS = 20
WRITES_PER_WRITER = 5
PAIRS = 10
QUEUED = 5
# Long enough for a thread to start and queue; short enough to keep the suite fast.
SHORT_WAIT_S = 0.05
JOIN_TIMEOUT_S = 60
NESTED_FAILS_WITHIN_S = 1.0
OTHER_PROCESS_BUSY_MS = 50
MARKER = "INSERT INTO data_version (id, version) VALUES (99, 0)"


@pytest.fixture
def lite(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a fresh migrated SQLite file (these tests are about SQLite's lock)."""
    path = tmp_path / "crm.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def lock_of(engine: Engine) -> WriteLock:
    lock = write_lock(engine)
    assert lock is not None
    return lock


def marker_rows(engine: Engine) -> int:
    with read_session(engine) as session:
        return int(session.scalar(text("SELECT count(*) FROM data_version WHERE id = 99")) or 0)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def run_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run work(0..count-1) in threads at once; return what they raised."""
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            work(index)
        except BaseException as error:  # surfaced by the caller; a thread cannot fail the test itself
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    return errors


# --- when the lock is held and given back ---------------------------------------------------------


def test_only_sqlite_files_have_a_write_lock(engine: Engine) -> None:
    assert (write_lock(engine) is not None) == (engine.dialect.name == "sqlite")
    in_memory = make_engine("sqlite://")
    assert write_lock(in_memory) is None  # in memory: every connection has its own database
    in_memory.dispose()


def test_held_from_the_first_statement_until_commit(lite: Engine) -> None:
    lock = lock_of(lite)
    with write_session(lite) as session:
        assert not lock.locked  # no statement yet: nothing begun
        session.execute(text(MARKER))
        assert lock.locked
    assert not lock.locked
    assert marker_rows(lite) == 1


def test_given_back_when_the_write_session_raises(lite: Engine) -> None:
    lock = lock_of(lite)
    with pytest.raises(ZeroDivisionError), write_session(lite) as session:
        session.execute(text(MARKER))
        assert lock.locked
        _ = 1 / 0
    assert not lock.locked
    assert marker_rows(lite) == 0


def test_given_back_on_rollback(lite: Engine) -> None:
    lock = lock_of(lite)
    session = session_factory(lite)()
    session.execute(text(MARKER))
    assert lock.locked
    session.rollback()
    assert not lock.locked
    session.execute(text(MARKER))  # the same session writes again, and commits
    session.commit()
    session.close()
    assert not lock.locked
    assert marker_rows(lite) == 1


def test_given_back_when_the_connection_is_invalidated(lite: Engine) -> None:
    lock = lock_of(lite)
    connection = lite.execution_options(**{WRITE_OPTION: True}).connect()
    connection.begin()
    connection.execute(text(MARKER))
    assert lock.locked
    connection.invalidate()
    assert not lock.locked
    connection.close()
    assert marker_rows(lite) == 0


def test_given_back_when_begin_fails(lite: Engine) -> None:
    """Another process holds the file: BEGIN IMMEDIATE fails after busy_timeout and frees the lock."""
    lock = lock_of(lite)
    with lite.connect() as connection:  # the pool hands this connection out again below
        connection.exec_driver_sql(f"PRAGMA busy_timeout={OTHER_PROCESS_BUSY_MS}")
    other = sqlite3.connect(str(lite.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="database is locked"), write_session(lite) as session:
            session.execute(text(MARKER))
        assert not lock.locked
    finally:
        other.execute("ROLLBACK")
        other.close()
    with write_session(lite) as session:
        session.execute(text(MARKER))
    assert marker_rows(lite) == 1


def test_a_read_session_inside_a_write_session_does_not_wait(lite: Engine) -> None:
    with write_session(lite) as writer:
        writer.execute(text(MARKER))
        assert marker_rows(lite) == 0  # the read runs beside the writer and sees the last commit
    assert marker_rows(lite) == 1


def test_a_nested_write_session_fails_at_once_and_the_outer_one_commits(lite: Engine) -> None:
    lock = lock_of(lite)
    with write_session(lite) as outer:
        outer.execute(text(MARKER))
        started = time.monotonic()
        with pytest.raises(DatabaseLockedError, match="nested write session"), write_session(lite) as inner:
            inner.execute(text("SELECT 1"))
        assert time.monotonic() - started < NESTED_FAILS_WITHIN_S
        assert lock.locked  # still the outer session's
    assert not lock.locked
    assert marker_rows(lite) == 1


def test_engines_on_one_file_share_the_lock(lite: Engine) -> None:
    other = make_engine(lite.url.render_as_string(hide_password=False))
    try:
        assert write_lock(other) is write_lock(lite)
    finally:
        other.dispose()


# --- the lock itself: first come, first served ----------------------------------------------------


def test_waiters_are_served_in_arrival_order() -> None:
    lock = WriteLock()
    assert lock.acquire(timeout=1)
    served: list[int] = []

    def writer(index: int) -> None:
        assert lock.acquire(timeout=JOIN_TIMEOUT_S)
        served.append(index)
        lock.release()

    threads = []
    for index in range(QUEUED):
        thread = threading.Thread(target=writer, args=(index,))
        thread.start()
        threads.append(thread)
        wait_until(lambda count=index + 1: lock.waiting == count)
    lock.release()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT_S)
    assert served == list(range(QUEUED))
    assert not lock.locked


def test_a_wait_that_times_out_leaves_the_queue() -> None:
    lock = WriteLock()
    assert lock.acquire(timeout=1)
    outcome: list[bool] = []
    thread = threading.Thread(target=lambda: outcome.append(lock.acquire(timeout=SHORT_WAIT_S)))
    thread.start()
    thread.join(timeout=JOIN_TIMEOUT_S)
    assert outcome == [False]
    assert lock.waiting == 0
    lock.release()
    assert not lock.locked  # not handed to the writer that gave up


# --- many writers through the real write path (both engines) ------------------------------------


def visit(customer_id: int) -> InteractionInput:
    return InteractionInput(customer_id=customer_id, kind="visit", occurred_at=NOW - timedelta(hours=1))


def interactions_by_rep(session: Session) -> dict[int, int]:
    rows = session.execute(select(Interaction.rep_id, func.count()).group_by(Interaction.rep_id)).all()
    return {rep_id: count for rep_id, count in rows}


def audit_events_by_actor(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(AuditEvent.actor_id, func.count())
        .where(AuditEvent.entity == "interaction")
        .group_by(AuditEvent.actor_id)
    ).all()
    return {actor_id: count for actor_id, count in rows}


def test_concurrent_writers_with_double_submits_store_each_visit_once(engine: Engine, session: Session) -> None:
    reps = [make_user(session, f"rep{index}", role=Role.REP, team="north") for index in range(WRITERS)]
    customers = [make_customer(session, f"Customer {index}", owner=rep) for index, rep in enumerate(reps)]
    session.commit()
    version_before = data_version(session)
    session.commit()

    def writer(index: int) -> None:
        who, customer_id = actor(reps[index]), customers[index].id
        for number in range(WRITES_PER_WRITER):
            key = f"form-{index}-{number}"
            with write_session(engine) as own:
                first = log_interaction(own, actor=who, data=visit(customer_id), now=NOW, idempotency_key=key)
            with write_session(engine) as own:  # the double click: the same form token again
                again = log_interaction(own, actor=who, data=visit(customer_id), now=NOW, idempotency_key=key)
            assert again.id == first.id

    assert run_threads(WRITERS, writer) == []
    if (lock := write_lock(engine)) is not None:
        assert not lock.locked
    expected = {rep.id: WRITES_PER_WRITER for rep in reps}
    assert interactions_by_rep(session) == expected
    assert audit_events_by_actor(session) == expected
    assert data_version(session) == version_before + WRITERS * WRITES_PER_WRITER


def test_simultaneous_double_submits_store_one_visit(engine: Engine, session: Session) -> None:
    """Two threads submit the same form tokens at the same moment (two tabs, one double click)."""
    reps = [make_user(session, f"rep{index}", role=Role.REP, team="north") for index in range(PAIRS)]
    customers = [make_customer(session, f"Customer {index}", owner=rep) for index, rep in enumerate(reps)]
    session.commit()
    barriers = [threading.Barrier(2) for _ in range(PAIRS)]
    saved: dict[tuple[int, int], set[int]] = {}
    saved_lock = threading.Lock()

    def submitter(index: int) -> None:
        pair = index // 2
        who, customer_id = actor(reps[pair]), customers[pair].id
        for number in range(WRITES_PER_WRITER):
            barriers[pair].wait(timeout=JOIN_TIMEOUT_S)
            with write_session(engine) as own:
                row = log_interaction(
                    own, actor=who, data=visit(customer_id), now=NOW, idempotency_key=f"form-{pair}-{number}"
                )
            with saved_lock:
                saved.setdefault((pair, number), set()).add(row.id)

    assert run_threads(2 * PAIRS, submitter) == []
    assert all(len(ids) == 1 for ids in saved.values())  # both submits got the same record
    expected = {rep.id: WRITES_PER_WRITER for rep in reps}
    assert interactions_by_rep(session) == expected
    assert audit_events_by_actor(session) == expected
