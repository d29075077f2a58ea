from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qmskpi.errors import PeriodError
from qmskpi.periods import (
    last_complete,
    months_between,
    parse_period,
    period_containing,
    trailing_months,
)


@pytest.mark.parametrize(
    ("text", "start", "end", "granularity", "label"),
    [
        ("2026-10", date(2026, 10, 1), date(2026, 10, 31), "month", "2026-10"),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28), "month", "2026-02"),
        ("2028-02", date(2028, 2, 1), date(2028, 2, 29), "month", "2028-02"),  # leap year
        ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30), "quarter", "2026-Q3"),
        ("2026-q1", date(2026, 1, 1), date(2026, 3, 31), "quarter", "2026-Q1"),
        ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31), "quarter", "2026-Q4"),
        ("2026", date(2026, 1, 1), date(2026, 12, 31), "year", "2026"),
    ],
)
def test_parse_period_bounds(
    text: str, start: date, end: date, granularity: str, label: str
) -> None:
    p = parse_period(text)
    assert (p.start, p.end, p.granularity, p.label) == (start, end, granularity, label)


@pytest.mark.parametrize(
    "bad", ["2026-13", "2026-00", "26-10", "2026-Q5", "2026/10", "", "Oct 2026"]
)
def test_parse_period_rejects_malformed(bad: str) -> None:
    with pytest.raises(PeriodError, match="2026-Q3"):
        parse_period(bad)


def test_days_counts_leap_day() -> None:
    assert parse_period("2028-02").days == 29
    assert parse_period("2028").days == 366
    assert parse_period("2026-Q1").days == 31 + 28 + 31


def test_previous_and_next_cross_year_boundaries() -> None:
    assert parse_period("2026-01").previous().label == "2025-12"
    assert parse_period("2026-Q1").previous().label == "2025-Q4"
    assert parse_period("2025-Q4").next().label == "2026-Q1"
    assert parse_period("2026").previous().label == "2025"


def test_months_of_a_quarter_and_year() -> None:
    assert [m.label for m in parse_period("2026-Q3").months()] == ["2026-07", "2026-08", "2026-09"]
    assert len(parse_period("2026").months()) == 12


def test_last_complete_period() -> None:
    # On the last day of October, October is not over yet.
    assert last_complete(date(2026, 10, 31)).label == "2026-09"
    assert last_complete(date(2026, 11, 1)).label == "2026-10"
    assert last_complete(date(2026, 11, 25), "quarter").label == "2026-Q3"
    assert last_complete(date(2026, 1, 1), "quarter").label == "2025-Q4"
    assert last_complete(date(2026, 11, 25), "year").label == "2025"


def test_trailing_months_window() -> None:
    labels = [m.label for m in trailing_months("2026-10", 24)]
    assert labels[0] == "2024-11"
    assert labels[-1] == "2026-10"
    assert len(labels) == 24
    # A quarter's window ends with its last month.
    assert trailing_months("2026-Q3", 3)[-1].label == "2026-09"
    with pytest.raises(PeriodError):
        trailing_months("2026-10", 0)


def test_months_between_inclusive() -> None:
    labels = [m.label for m in months_between(parse_period("2025-11"), parse_period("2026-02"))]
    assert labels == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert months_between(parse_period("2026-02"), parse_period("2025-11")) == []


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)))
def test_period_containing_contains_the_day(day: date) -> None:
    for gran in ("month", "quarter", "year"):
        p = period_containing(day, gran)  # type: ignore[arg-type]
        assert p.contains(day)
        assert p.next().start == p.end.fromordinal(p.end.toordinal() + 1)
        assert parse_period(p.label) == p
