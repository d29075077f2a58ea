"""Review periods: month ``2026-10``, quarter ``2026-Q3``, year ``2026``.

A :class:`Period` is a closed date interval with a label. Everything that says
"in period" in a KPI definition means ``period.start <= date <= period.end``.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from qmskpi.errors import PeriodError

Granularity = Literal["month", "quarter", "year"]

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month, quarter or year."""

    start: date
    end: date
    granularity: Granularity

    @property
    def label(self) -> str:
        """Canonical label: ``2026-10``, ``2026-Q3`` or ``2026``."""
        if self.granularity == "month":
            return f"{self.start.year:04d}-{self.start.month:02d}"
        if self.granularity == "quarter":
            return f"{self.start.year:04d}-Q{(self.start.month - 1) // 3 + 1}"
        return f"{self.start.year:04d}"

    def __str__(self) -> str:
        return self.label

    @property
    def days(self) -> int:
        """Number of calendar days in the period (leap years included)."""
        return (self.end - self.start).days + 1

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def previous(self) -> Period:
        """The period of the same granularity just before this one."""
        return period_containing(self.start - timedelta(days=1), self.granularity)

    def next(self) -> Period:
        """The period of the same granularity just after this one."""
        return period_containing(self.end + timedelta(days=1), self.granularity)

    def months(self) -> list[Period]:
        """The calendar months that make up this period, in order."""
        out = [month(self.start.year, self.start.month)]
        while out[-1].end < self.end:
            out.append(out[-1].next())
        return out

    def year_to_date(self) -> Period:
        """From 1 January of this period's year to this period's end (a 'year' period span)."""
        return Period(date(self.end.year, 1, 1), self.end, "year")


def month(year: int, month_number: int) -> Period:
    last = calendar.monthrange(year, month_number)[1]
    return Period(date(year, month_number, 1), date(year, month_number, last), "month")


def quarter(year: int, q: int) -> Period:
    first_month = 3 * (q - 1) + 1
    last_month = first_month + 2
    last = calendar.monthrange(year, last_month)[1]
    return Period(date(year, first_month, 1), date(year, last_month, last), "quarter")


def year(year_number: int) -> Period:
    return Period(date(year_number, 1, 1), date(year_number, 12, 31), "year")


def parse_period(text: str | Period) -> Period:
    """Parse ``2026-10`` (month), ``2026-Q3`` (quarter) or ``2026`` (year).

    >>> parse_period("2026-Q3").end
    datetime.date(2026, 9, 30)
    """
    if isinstance(text, Period):
        return text
    s = str(text).strip()
    if m := _MONTH.match(s):
        return month(int(m.group(1)), int(m.group(2)))
    if m := _QUARTER.match(s):
        return quarter(int(m.group(1)), int(m.group(2)))
    if m := _YEAR.match(s):
        return year(int(m.group(1)))
    raise PeriodError(
        f"not a period: {text!r}; use a month '2026-10', a quarter '2026-Q3' or a year '2026'"
    )


def period_containing(day: date, granularity: Granularity) -> Period:
    """The month, quarter or year that contains ``day``."""
    if granularity == "month":
        return month(day.year, day.month)
    if granularity == "quarter":
        return quarter(day.year, (day.month - 1) // 3 + 1)
    if granularity == "year":
        return year(day.year)
    raise PeriodError(f"unknown granularity {granularity!r}; use month, quarter or year")


def last_complete(as_of: date, granularity: Granularity = "month") -> Period:
    """The latest period of ``granularity`` that ended on or before ``as_of``.

    A period is complete once its last day has passed: on 2026-11-01 the last
    complete month is 2026-10; on 2026-10-31 it is still 2026-09.
    """
    return period_containing(as_of, granularity).previous()


def trailing_months(period: Period | str, count: int = 24) -> list[Period]:
    """The ``count`` calendar months ending with the last month of ``period``, oldest first."""
    if count < 1:
        raise PeriodError(f"a trailing window needs at least one month, got {count}")
    p = parse_period(period)
    last = month(p.end.year, p.end.month)
    out = [last]
    for _ in range(count - 1):
        out.append(out[-1].previous())
    out.reverse()
    return out


def months_between(first: Period, last: Period) -> list[Period]:
    """Every month from the month of ``first.start`` to the month of ``last.end``, inclusive."""
    start = month(first.start.year, first.start.month)
    stop = month(last.end.year, last.end.month)
    if stop < start:
        return []
    out = [start]
    while out[-1] < stop:
        out.append(out[-1].next())
    return out
