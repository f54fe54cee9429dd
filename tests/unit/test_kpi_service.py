"""Service KPIs on a hand-built complaint ledger (January 2026 against December 2025)."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from crm import kpi
from crm.access import Filters
from crm.periods import Period
from tests.factories import Org, actor, make_complaint, make_customer, make_org, soft_delete

JAN = Period.month(2026, 1)
LATER = datetime(2026, 3, 1)  # "now" well after January: counts are taken at Feb 1 00:00


def build(session: Session) -> Org:
    """Complaints (assignee, severity, opened, SLA hours, resolved after hours):

    k1  A high   Jan 02 10:00  24  20   on time
    k2  A medium Jan 05 00:00  72  80   late
    k3  B low    Jan 10 00:00 168 2.5   on time
    k4  A high   Jan 20 00:00  24   –   open, due Jan 21 → overdue at Feb 1
    k5  B medium Jan 29 12:00  72   –   open, due Feb 1 12:00 → not yet overdue at Feb 1 00:00
    k6  C high   Dec 30 10:00  24  96   resolved Jan 3 10:00, late (counts in January)
    k7  A high   Dec 01 00:00  24  10   December, on time
    k10 A low    Jan 03 00:00 168 792   resolved Feb 5, late; open and overdue (due Jan 10) at Feb 1
    Not counted: one on a deleted customer, one deleted.
    """
    org = make_org(session)
    ca = make_customer(session, "Alpha", owner=org.rep_a)
    cb = make_customer(session, "Beta", owner=org.rep_b)
    cc = make_customer(session, "Gamma", owner=org.rep_c)
    gone = make_customer(session, "Gone", owner=org.rep_a)
    a, b, c = org.rep_a, org.rep_b, org.rep_c
    make_complaint(session, ca, a, datetime(2026, 1, 2, 10), sla_hours=24, resolved_after_hours=20)
    make_complaint(session, ca, a, datetime(2026, 1, 5), sla_hours=72, resolved_after_hours=80, severity="medium")
    make_complaint(session, cb, b, datetime(2026, 1, 10), sla_hours=168, resolved_after_hours=2.5, severity="low")
    make_complaint(session, ca, a, datetime(2026, 1, 20), sla_hours=24)
    make_complaint(session, cb, b, datetime(2026, 1, 29, 12), sla_hours=72, severity="medium")
    make_complaint(session, cc, c, datetime(2025, 12, 30, 10), sla_hours=24, resolved_after_hours=96)
    make_complaint(session, ca, a, datetime(2025, 12, 1), sla_hours=24, resolved_after_hours=10)
    make_complaint(session, ca, a, datetime(2026, 1, 3), sla_hours=168, resolved_after_hours=33 * 24, severity="low")
    make_complaint(session, gone, a, datetime(2026, 1, 4), sla_hours=24, resolved_after_hours=1)
    soft_delete(session, gone)
    soft_delete(session, make_complaint(session, ca, a, datetime(2026, 1, 6), sla_hours=24, resolved_after_hours=99))
    return org


@pytest.mark.parametrize(
    ("user", "filters", "expected"),
    [
        # resolved in Jan: k1 k2 k3 k6, on time k1 k3; hours (20 + 80 + 2.5 + 96) / 4 = 49.625
        (
            "admin",
            {},
            dict(
                opened=6,
                resolved=4,
                resolved_on_time=2,
                on_time_rate=2 / 4,
                open=3,
                overdue_open=2,
                mean_resolution_hours=49.6,
            ),
        ),
        # A: k1 k2 resolved (1 on time), opened k1 k2 k4 k10, open and overdue at Feb 1: k4 k10
        (
            "rep_a",
            {},
            dict(opened=4, resolved=2, on_time_rate=1 / 2, open=2, overdue_open=2, mean_resolution_hours=50.0),
        ),
        # B: k3 on time; k5 open but not yet due
        ("rep_b", {}, dict(opened=2, resolved=1, on_time_rate=1.0, open=1, overdue_open=0, mean_resolution_hours=2.5)),
        # north team: k1 k2 k3 → 2 of 3; (20 + 80 + 2.5) / 3 = 34.17
        ("north_manager", {}, dict(resolved=3, on_time_rate=2 / 3, overdue_open=2, mean_resolution_hours=34.2)),
        # C: k6 resolved late in January
        ("south_manager", {}, dict(opened=0, resolved=1, on_time_rate=0.0, open=0, mean_resolution_hours=96.0)),
        ("admin", {"region": "west"}, dict(resolved=1, on_time_rate=1.0, open=1, overdue_open=0)),
    ],
)
def test_service_summary(session: Session, user: str, filters: dict[str, str], expected: dict[str, object]) -> None:
    org = build(session)
    figures = kpi.service_summary(
        session, actor=actor(getattr(org, user)), period=JAN, as_of=LATER, filters=Filters(**filters)
    )
    assert figures.as_of == datetime(2026, 2, 1)
    for name, value in expected.items():
        assert getattr(figures, name) == pytest.approx(value), name


def test_no_resolved_complaints_is_not_applicable(session: Session) -> None:
    org = build(session)
    figures = kpi.service_summary(session, actor=actor(org.rep_c), period=Period.month(2026, 2), as_of=LATER)
    assert (figures.resolved, figures.on_time_rate, figures.mean_resolution_hours) == (0, None, None)


def test_overdue_is_counted_as_of_now_in_the_current_period(session: Session) -> None:
    org = build(session)
    now = datetime(2026, 1, 20, 12)
    figures = kpi.service_summary(session, actor=actor(org.admin), period=JAN, as_of=now)
    assert figures.as_of == now
    # open at Jan 20 12:00: k4 (due Jan 21, not yet overdue) and k10 (due Jan 10: overdue)
    assert (figures.open, figures.overdue_open) == (2, 1)
    # a plain date means midnight: at Jan 20 00:00 k4 is just being opened and k10 is overdue
    at_midnight = kpi.service_summary(session, actor=actor(org.admin), period=JAN, as_of=date(2026, 1, 20))
    assert (at_midnight.open, at_midnight.overdue_open) == (2, 1)


def test_previous_period(session: Session) -> None:
    org = build(session)
    compared = kpi.service_compared(session, actor=actor(org.admin), period=JAN, as_of=LATER)
    previous = compared.previous
    # December: k7 resolved on time in 10 h; opened k6 k7; at Jan 1 00:00 k6 is open and past due
    assert (previous.resolved, previous.on_time_rate, previous.mean_resolution_hours) == (1, 1.0, 10.0)
    assert (previous.opened, previous.open, previous.overdue_open) == (2, 1, 1)
    assert previous.as_of == datetime(2026, 1, 1)
    assert compared.current.on_time_rate == pytest.approx(0.5)


def test_by_severity(session: Session) -> None:
    org = build(session)
    frame = kpi.complaints_by_severity(session, actor=actor(org.admin), period=JAN, as_of=LATER)
    assert list(frame["severity"]) == ["high", "medium", "low"]
    assert list(frame["opened"]) == [2, 2, 2]  # k1 k4 | k2 k5 | k3 k10
    assert list(frame["resolved"]) == [2, 1, 1]  # k1 k6 | k2 | k3
    assert list(frame["resolved_on_time"]) == [1, 0, 1]
    assert list(frame["on_time_rate"]) == [0.5, 0.0, 1.0]
    assert list(frame["open"]) == [1, 1, 1]  # k4 | k5 | k10
    assert list(frame["overdue_open"]) == [1, 0, 1]
    assert list(frame["mean_resolution_hours"]) == [58.0, 80.0, 2.5]  # (20 + 96) / 2 | 80 | 2.5
    only_b = kpi.complaints_by_severity(session, actor=actor(org.rep_b), period=JAN, as_of=LATER)
    assert list(only_b["resolved"]) == [0, 0, 1]
    assert pd.isna(only_b["on_time_rate"].iloc[0])
