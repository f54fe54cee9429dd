"""Splitting a period into whole months (rep_month_stats) and partial stretches (rep_day_stats)."""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from decimal import Decimal

import pytest

from crm.kpi.daily import Tally, split_months
from crm.periods import Period
from crm.summaries import MEASURES


@pytest.mark.parametrize(
    ("period", "months", "edges"),
    [
        (Period.quarter(2026, 3), [date(2026, 7, 1), date(2026, 8, 1), date(2026, 9, 1)], []),
        (Period.month(2026, 2), [date(2026, 2, 1)], []),
        (
            Period(date(2026, 2, 10), date(2026, 5, 20)),
            [date(2026, 3, 1), date(2026, 4, 1)],
            [Period(date(2026, 2, 10), date(2026, 3, 1)), Period(date(2026, 5, 1), date(2026, 5, 20))],
        ),
        (
            Period(date(2026, 3, 1), date(2026, 4, 15)),
            [date(2026, 3, 1)],
            [Period(date(2026, 4, 1), date(2026, 4, 15))],
        ),
        (Period(date(2026, 3, 5), date(2026, 3, 25)), [], [Period(date(2026, 3, 5), date(2026, 3, 25))]),
        (Period(date(2026, 3, 5), date(2026, 4, 25)), [], [Period(date(2026, 3, 5), date(2026, 4, 25))]),
        (
            Period(date(2025, 12, 20), date(2026, 2, 1)),
            [date(2026, 1, 1)],
            [Period(date(2025, 12, 20), date(2026, 1, 1))],
        ),
    ],
)
def test_split_months(period: Period, months: list[date], edges: list[Period]) -> None:
    assert split_months(period) == (months, edges)


def test_tally_fields_follow_the_summary_measures() -> None:
    # Tally is built positionally from rows in MEASURES order.
    assert tuple(f.name for f in fields(Tally)) == MEASURES


def test_tally_total_adds_every_measure() -> None:
    one = Tally(visits=2, revenue=Decimal("10.25"), resolution_seconds=7)
    two = Tally(visits=3, revenue=Decimal("0.75"), won=1)
    assert (
        Tally.total([one, two]) == one + two == Tally(visits=5, revenue=Decimal("11.00"), won=1, resolution_seconds=7)
    )
    assert Tally.total([]) == Tally()
