"""Measures compiled to polars: counts and sums per (month, site), nulls never matching."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from qmskpi.errors import KpiError
from qmskpi.kpis.firstlevel import FirstLevel, count, first_level, total

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
