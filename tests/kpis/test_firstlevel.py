"""Measures compiled to polars: counts and sums per (month, site), nulls never matching."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from qmskpi.errors import KpiError
from qmskpi.kpis.firstlevel import FirstLevel, Within, count, first_level, total

D = date

MEASURES = (
    count("n"),
    count("final_pass", ("stage", "final"), ("result", "pass")),
    total("qty_final", "qty", ("stage", "final")),
    total("cost", "cost", present="cost"),
    count("with_cost", present="cost"),
)


def _rows() -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "d": [D(2026, 3, 1), D(2026, 3, 31), D(2026, 3, 9), D(2026, 4, 2), None, D(2026, 3, 5)],
            "site": ["N", "N", "N", "N", "N", "S"],
            "stage": ["final", "final", None, "final", "final", "in_process"],
            "result": ["pass", None, "pass", "pass", "pass", "pass"],
            "qty": [10, 20, 40, 80, 160, 320],
            "cost": [1.5, None, 2.0, None, 9.0, None],
        },
        schema={
            "d": pl.Date(),
            "site": pl.String(),
            "stage": pl.String(),
            "result": pl.String(),
            "qty": pl.Int64(),
            "cost": pl.Float64(),
        },
    )


def test_first_level_by_hand() -> None:
    fl = first_level(_rows(), "inspections", "d", MEASURES)
    got = {(r["month"], r["site"]): r for r in fl.frame.iter_rows(named=True)}
    # the undated row (qty 160) is in no month
    assert set(got) == {(D(2026, 3, 1), "N"), (D(2026, 4, 1), "N"), (D(2026, 3, 1), "S")}
    north = got[D(2026, 3, 1), "N"]
    # three March rows; final+pass only the first (the second's result is null, the third's
    # stage is null); final qty 10 + 20; cost 1.5 + 2.0 over the two rows that have one
    assert (north["n"], north["final_pass"], north["qty_final"]) == (3, 1, 30)
    assert (north["cost"], north["with_cost"]) == (3.5, 2)
    assert (north["first"], north["last"]) == (D(2026, 3, 1), D(2026, 3, 31))
    south = got[D(2026, 3, 1), "S"]
    assert (south["n"], south["final_pass"], south["qty_final"], south["cost"]) == (1, 0, 0, 0)
    assert fl.sites == ("N", "S")
    assert (fl.first, fl.last) == (D(2026, 3, 1), D(2026, 4, 2))
    assert fl.months == frozenset({"2026-03", "2026-04"})
    assert fl.covers(MEASURES[:2])
    assert not fl.covers([count("n", ("stage", "final"))])  # same name, other definition


def test_first_level_names_missing_columns() -> None:
    with pytest.raises(KpiError, match="lack column"):
        FirstLevel("inspections", "d", MEASURES, pl.DataFrame({"month": [], "site": []}))


# --------------------------------------------------------------------------- dates apart


def _receipts() -> pl.LazyFrame:
    # received - promised, in days: -8, -7, 0, 2, 3, (null promised), 31 (received in April)
    promised = [D(2026, 3, 20), D(2026, 3, 20), D(2026, 3, 5), D(2026, 3, 5), D(2026, 3, 5)]
    received = [D(2026, 3, 12), D(2026, 3, 13), D(2026, 3, 5), D(2026, 3, 7), D(2026, 3, 8)]
    return pl.LazyFrame(
        {
            "received": [*received, D(2026, 3, 9), D(2026, 4, 1)],
            "promised": [*promised, None, D(2026, 3, 1)],
            "site": ["N"] * 7,
            "supplier": ["A", "A", "B", " ", None, "B", "A"],
        },
        schema={
            "received": pl.Date(),
            "promised": pl.Date(),
            "site": pl.String(),
            "supplier": pl.String(),
        },
    )


def test_within_counts_days_apart_by_hand() -> None:
    late_ok = count("late_ok", within=Within("received", "promised", None, 2))
    window = count("window", within=Within("received", "promised", -7, 2))
    apart = count("dated", within=Within("received", "promised"))
    fl = first_level(_receipts(), "receipts", "received", (count("n"), late_ok, window, apart))
    march = fl.frame.filter(pl.col("month") == D(2026, 3, 1)).row(0, named=True)
    # six March receipts; at most 2 days late: -8, -7, 0, 2 (3 is one day too many, the
    # one without a promised date is not met); from 7 early to 2 late: -7, 0, 2
    assert (march["n"], march["late_ok"], march["window"], march["dated"]) == (6, 4, 3, 5)
    april = fl.frame.filter(pl.col("month") == D(2026, 4, 1)).row(0, named=True)
    assert (april["n"], april["late_ok"], april["window"]) == (1, 0, 0)  # 31 days late


def test_daily_level_keeps_blank_breakdowns_when_asked() -> None:
    measures = (count("n"),)
    kept = first_level(
        _receipts(), "receipts", "received", measures, by="supplier", daily=True, blanks=True
    )
    assert kept.keys == ("month", "day", "site", "supplier")
    got = {(r["day"], r["supplier"]): r["n"] for r in kept.frame.iter_rows(named=True)}
    assert got == {
        (D(2026, 3, 12), "A"): 1,
        (D(2026, 3, 13), "A"): 1,
        (D(2026, 3, 5), "B"): 1,
        (D(2026, 3, 7), " "): 1,  # a blank supplier is a group of its own
        (D(2026, 3, 8), None): 1,  # and so is a missing one
        (D(2026, 3, 9), "B"): 1,
        (D(2026, 4, 1), "A"): 1,
    }
    assert kept.frame.filter(pl.col("day") == D(2026, 4, 1))["month"].to_list() == [D(2026, 4, 1)]
    dropped = first_level(_receipts(), "receipts", "received", measures, by="supplier")
    assert set(dropped.frame["supplier"]) == {"A", "B"}  # blanks left out by default
    assert dropped.frame["n"].sum() == 5
