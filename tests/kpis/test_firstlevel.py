"""Measures compiled to polars: counts and sums per (month, site), nulls never matching."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmskpi.errors import KpiError
from qmskpi.kpis.firstlevel import (
    AT_END,
    Days,
    Earlier,
    FirstLevel,
    Lots,
    Values,
    Within,
    count,
    first_level,
    lot_rows,
    open_rows,
    quantile_of_counts,
    total,
    with_flags,
)

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


# --------------------------------------------------------------------------- complaints


def hand_complaints() -> pl.DataFrame:
    """Complaints a-g (keys customer, product, category; window 30 days in the tests):

    a, b  K/P/X received 03-01 (same day: not repeats of each other); a closed 03-10
    c, d  K/P/X received 03-11: repeats (a, b 10 days before) and recurrences (a closed
          03-10, 1 day before; c closed 03-11 is 0 days before d: not counted); d closed
          03-31, on the end of March exactly
    e     null customer, received 03-12: matches nothing; closed 04-01
    f     K/P/X received 04-20, open: c, d 40 days before (> 30): no repeat; but d was
          closed 03-31, 20 days before: a recurrence
    g     K/P/Y (another category) received 03-02 at South, open
    """
    return pl.DataFrame(
        {
            "complaint_id": list("abcdefg"),
            "received_date": [
                D(2026, 3, 1), D(2026, 3, 1), D(2026, 3, 11), D(2026, 3, 11),
                D(2026, 3, 12), D(2026, 4, 20), D(2026, 3, 2),
            ],
            "closed_date": [
                D(2026, 3, 10), None, D(2026, 3, 11), D(2026, 3, 31), D(2026, 4, 1), None, None,
            ],
            "site": ["N", "N", "N", "N", "N", "N", "S"],
            "customer": ["K", "K", "K", "K", None, "K", "K"],
            "product": ["P"] * 7,
            "category": ["X", "X", "X", "X", "X", "X", "Y"],
        },
        schema_overrides={"received_date": pl.Date(), "closed_date": pl.Date()},
    )  # fmt: skip


KEYS = ("customer", "product", "category")
REPEAT = Earlier("repeat", KEYS, "received_date", "received_date", 30)
RECURS = Earlier("recurs", KEYS, "received_date", "closed_date", 30)


def test_earlier_flags_by_hand() -> None:
    measures = [count("r", flag=REPEAT), count("c", flag=RECURS)]
    got = with_flags(hand_complaints().lazy(), measures).sort("complaint_id").collect()
    assert got["repeat"].to_list() == [False, False, True, True, False, False, False]
    assert got["recurs"].to_list() == [False, False, True, True, False, True, False]
    fl = first_level(hand_complaints().lazy(), "complaints", "received_date", measures)
    march = fl.frame.filter((pl.col("month") == D(2026, 3, 1)) & (pl.col("site") == "N"))
    assert march.select("r", "c").row(0) == (2, 2)
    april = fl.frame.filter(pl.col("month") == D(2026, 4, 1))
    assert april.select("r", "c").row(0) == (0, 1)


def test_open_at_ends_by_hand() -> None:
    ends = [D(2026, 4, 30), D(2026, 3, 31)]
    rows = open_rows(hand_complaints().lazy(), "received_date", "closed_date", ends).collect()
    got = {(r["complaint_id"], r[AT_END]) for r in rows.iter_rows(named=True)}
    # b and g open at both ends; d closed on 03-31 is not open at 03-31; e closed 04-01 is
    # open at 03-31 only; f received 04-20 at 04-30 only; a, c closed in March
    march, april = ends[1], ends[0]
    assert got == {
        ("b", march),
        ("b", april),
        ("g", march),
        ("g", april),
        ("e", march),
        ("f", april),
    }
    measures = (
        count("open"),
        count("age_0_29", within=Within(AT_END, "received_date", 0, 29)),
        count("age_30", within=Within(AT_END, "received_date", 30, None)),
    )
    fl = first_level(
        hand_complaints().lazy(),
        "complaints",
        "received_date",
        measures,
        open_until="closed_date",
        ends=ends,
    )
    assert fl.ends == (march, april)
    by = {
        (r["month"], r["site"]): (r["open"], r["age_0_29"], r["age_30"])
        for r in fl.frame.iter_rows(named=True)
    }
    # North at 03-31: b aged 30, e aged 19; at 04-30: b aged 60, f aged 10
    # South: g aged 29 at 03-31 and 59 at 04-30
    assert by == {
        (D(2026, 3, 1), "N"): (2, 1, 1),
        (D(2026, 4, 1), "N"): (2, 1, 1),
        (D(2026, 3, 1), "S"): (1, 1, 0),
        (D(2026, 4, 1), "S"): (1, 0, 1),
    }
    with pytest.raises(KpiError, match="at least one end"):
        open_rows(hand_complaints().lazy(), "received_date", "closed_date", [])


def test_days_histogram_by_hand() -> None:
    fl = first_level(
        hand_complaints().lazy(),
        "complaints",
        "closed_date",
        (count("n"),),
        by=Days("closed_date", "received_date"),
    )
    assert fl.keys == ("month", "site", "days")
    got = [(r["month"], r["days"], r["n"]) for r in fl.frame.iter_rows(named=True)]
    # closed in March: a after 9 days, c after 0, d after 20; e in April after 20
    assert got == [
        (D(2026, 3, 1), 0, 1),
        (D(2026, 3, 1), 9, 1),
        (D(2026, 3, 1), 20, 1),
        (D(2026, 4, 1), 20, 1),
    ]


def test_days_histogram_per_a_column_by_hand() -> None:
    rows = pl.LazyFrame(
        {
            "opened_date": [*(D(2026, 3, d) for d in (1, 2, 1, 5)), None],
            "closed_date": [D(2026, 3, d) for d in (11, 12, 11, 5, 9)],
            "site": ["N", "N", "N", "N", "N"],
            "source": ["audit", "audit", None, "audit", "audit"],
        }
    )
    fl = first_level(
        rows,
        "capa",
        "closed_date",
        (count("n"),),
        by=Days("closed_date", "opened_date", per="source"),
    )
    assert fl.keys == ("month", "site", "source", "days")
    got = [(r["source"], r["days"], r["n"]) for r in fl.frame.iter_rows(named=True)]
    # audit: 10 days twice, 0 days once; no source: 10 days; no opened date: left out
    assert got == [("audit", 0, 1), ("audit", 10, 2), (None, 10, 1)]


def test_values_histogram_keeps_nulls_as_values() -> None:
    rows = pl.LazyFrame(
        {
            "response_date": [D(2026, 3, 1)] * 4 + [D(2026, 4, 2)],
            "site": ["N"] * 5,
            "scale_min": [0, None, 0, None, 0],
            "scale_max": [10, 10, 10, 10, 5],
            "score": [9.0, 9.0, 9.0, 2.5, 5.0],
        },
        schema_overrides={"scale_min": pl.Int64(), "scale_max": pl.Int64()},
    )
    fl = first_level(
        rows,
        "surveys",
        "response_date",
        (count("n"),),
        by=Values(("scale_min", "scale_max", "score")),
    )
    assert fl.keys == ("month", "site", "scale_min", "scale_max", "score")
    assert fl.frame["scale_max"].dtype == pl.Float64()
    got = [
        (r["month"].month, r["scale_min"], r["scale_max"], r["score"], r["n"])
        for r in fl.frame.iter_rows(named=True)
    ]
    assert got == [
        (3, 0.0, 10.0, 9.0, 2),
        (3, None, 10.0, 2.5, 1),
        (3, None, 10.0, 9.0, 1),
        (4, 0.0, 5.0, 5.0, 1),
    ]


def _quantiles(values: list[int], counts: list[int]) -> tuple[float | None, float | None]:
    frame = pl.DataFrame({"v": values, "n": counts}).sort("v")
    got = frame.select(
        m=quantile_of_counts(pl.col("v"), pl.col("n"), 0.5),
        p=quantile_of_counts(pl.col("v"), pl.col("n"), 0.9),
    )
    return got["m"][0], got["p"][0]


def test_quantiles_of_counts_by_hand() -> None:
    # 1, 2, 2, 10: median (2 + 2) / 2 = 2; p90 at 0.9 x 3 = 2.7 -> 2 + 0.7 x (10 - 2) = 7.6
    assert _quantiles([1, 2, 10], [1, 2, 1]) == (2.0, pytest.approx(7.6))
    # 3, 5, 5, 5, 8, 8: median (5 + 5) / 2 = 5; p90 at 4.5 -> 8 + 0.5 x 0 = 8
    assert _quantiles([3, 5, 8], [1, 3, 2]) == (5.0, 8.0)
    # one value: itself; no values (counts 0): null
    assert _quantiles([7], [1]) == (7.0, 7.0)
    assert _quantiles([7], [0]) == (None, None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=60))
def test_quantiles_of_counts_equal_polars_on_the_values(values: list[int]) -> None:
    hist = pl.DataFrame({"v": values}).group_by("v").agg(n=pl.len())
    series = pl.Series(values)
    assert _quantiles(hist["v"].to_list(), hist["n"].to_list()) == (
        series.median(),
        series.quantile(0.9, interpolation="linear"),
    )


_LOTS = Lots(
    key=("site", "stage", "lot_id"), record="inspection_id", date="d", passed=("result", "pass")
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B"]),
            st.sampled_from(["final", "incoming"]),
            st.sampled_from(["L1", "L2", "L3", None]),
            st.one_of(st.none(), st.dates(D(2026, 1, 1), D(2026, 1, 4))),
            st.sampled_from(["pass", "fail", "rework", None]),
        ),
        max_size=40,
    )
)
def test_a_lot_passes_first_time_when_no_record_of_its_first_day_failed(
    records: list[tuple[str, str, str | None, date | None, str | None]],
) -> None:
    frame = pl.DataFrame(
        records,
        schema={
            "site": pl.String,
            "stage": pl.String,
            "lot_id": pl.String,
            "d": pl.Date,
            "result": pl.String,
        },
        orient="row",
    ).with_row_index("inspection_id")
    got = sorted(lot_rows(frame.lazy(), _LOTS).collect().rows(), key=lambda r: tuple(map(str, r)))
    # by hand: a lot's first day is its earliest date; it passed first time unless a record
    # of that day has a result other than "pass" (a null result fails nothing)
    expected: list[tuple[Any, ...]] = []
    dated = [r for r in records if r[3] is not None]
    for key in sorted({r[:3] for r in dated if r[2] is not None}, key=str):
        mine = [r for r in dated if r[:3] == key]
        first = min(r[3] for r in mine if r[3] is not None)
        fails = [r for r in mine if r[3] == first and r[4] is not None and r[4] != "pass"]
        expected.append((*key, first, not fails))
    # a record without a lot is a lot of its own
    expected += [(*r[:3], r[3], r[4] in (None, "pass")) for r in dated if r[2] is None]
    assert got == sorted(expected, key=lambda r: tuple(map(str, r)))
