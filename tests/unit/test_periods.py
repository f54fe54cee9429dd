from datetime import date

import pytest

from crm.periods import Period


@pytest.mark.parametrize(
    ("start", "end", "prev_start", "prev_end"),
    [
        # calendar month → previous month (28 days in Feb, not 31)
        (date(2026, 3, 1), date(2026, 4, 1), date(2026, 2, 1), date(2026, 3, 1)),
        # January → December of the year before
        (date(2026, 1, 1), date(2026, 2, 1), date(2025, 12, 1), date(2026, 1, 1)),
        # Q3 → Q2
        (date(2026, 7, 1), date(2026, 10, 1), date(2026, 4, 1), date(2026, 7, 1)),
        # calendar year → previous year
        (date(2026, 1, 1), date(2027, 1, 1), date(2025, 1, 1), date(2026, 1, 1)),
        # Feb–Apr is not a quarter → the same 89 days (28+31+30) ending at start
        (date(2026, 2, 1), date(2026, 5, 1), date(2025, 11, 4), date(2026, 2, 1)),
        # 10 arbitrary days → the 10 days ending at start
        (date(2026, 3, 5), date(2026, 3, 15), date(2026, 2, 23), date(2026, 3, 5)),
    ],
)
def test_previous_period(start: date, end: date, prev_start: date, prev_end: date) -> None:
    assert Period(start, end).previous() == Period(prev_start, prev_end)


def test_labels_and_months() -> None:
    assert Period.quarter(2026, 3).label() == "2026-Q3"
    assert Period.month(2026, 2).label() == "2026-02"
    assert Period.quarter(2026, 1).months() == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    with pytest.raises(ValueError):
        Period(date(2026, 1, 2), date(2026, 1, 1))
