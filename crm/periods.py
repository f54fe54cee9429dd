"""Reporting periods `[start, end)` and their previous period (SPEC §5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta


def month_start(day: date) -> date:
    """Return the first day of the day's month."""
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """Return the first day of the month `months` after the day's month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def quarter_start(day: date) -> date:
    """Return the first day of the day's quarter."""
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


@dataclass(frozen=True)
class Period:
    """A half-open range of dates `[start, end)`."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"period end {self.end} must be after start {self.start}")

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        start = date(year, month, 1)
        return cls(start, add_months(start, 1))

    @classmethod
    def quarter(cls, year: int, quarter: int) -> Period:
        start = date(year, 3 * (quarter - 1) + 1, 1)
        return cls(start, add_months(start, 3))

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(date(year, 1, 1), date(year + 1, 1, 1))

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def start_dt(self) -> datetime:
        return datetime.combine(self.start, time.min)

    @property
    def end_dt(self) -> datetime:
        return datetime.combine(self.end, time.min)

    def _calendar_months(self) -> int | None:
        """Return 1, 3 or 12 when the period is exactly a calendar month, quarter or year."""
        if self.start.day != 1:
            return None
        for months in (1, 3, 12):
            if add_months(self.start, months) != self.end:
                continue
            if months == 3 and (self.start.month - 1) % 3:
                return None
            if months == 12 and self.start.month != 1:
                return None
            return months
        return None

    def previous(self) -> Period:
        """Return the previous calendar unit, else the same number of days ending at start."""
        months = self._calendar_months()
        if months:
            return Period(add_months(self.start, -months), self.start)
        return Period(self.start - timedelta(days=self.days), self.start)

    def months(self) -> list[date]:
        """Return the first day of every month the period touches."""
        out = []
        current = month_start(self.start)
        while current < self.end:
            out.append(current)
            current = add_months(current, 1)
        return out

    def label(self) -> str:
        months = self._calendar_months()
        if months == 1:
            return f"{self.start:%Y-%m}"
        if months == 3:
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if months == 12:
            return str(self.start.year)
        return f"{self.start.isoformat()} – {(self.end - timedelta(days=1)).isoformat()}"

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end
