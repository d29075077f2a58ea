"""Shipments and complaints: the backlog, repeats, seasonality, free text for quoting and escaping."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from synthetic.helpers import END_DAY


def _open_at(c: pl.DataFrame, day: date) -> int:
    return c.filter(
        (pl.col("received_date") <= day)
        & (pl.col("closed_date").is_null() | (pl.col("closed_date") > day))
    ).height


def test_complaint_backlog_grows(frames: dict[str, pl.DataFrame]) -> None:
    c = frames["complaints"]
    assert _open_at(c, END_DAY) > 2 * _open_at(c, date(2025, 10, 31))
    days = (pl.col("closed_date") - pl.col("received_date")).dt.total_days()
    closed = c.filter(pl.col("closed_date").is_not_null())
    early = closed.filter(pl.col("closed_date") < date(2025, 11, 1)).select(days.median()).item()
    late = closed.filter(pl.col("closed_date") >= date(2026, 5, 1)).select(days.median()).item()
    assert late > 1.5 * early


def test_repeat_complaints_exist(frames: dict[str, pl.DataFrame]) -> None:
    c = frames["complaints"].select(
        "complaint_id", "received_date", "customer", "product", "category"
    )
    pairs = c.join(c, on=["customer", "product", "category"], suffix="_before").filter(
        (pl.col("complaint_id_before") != pl.col("complaint_id"))
        & (pl.col("received_date_before") <= pl.col("received_date"))
        & (pl.col("received_date_before") >= pl.col("received_date") - timedelta(days=90))
        & (pl.col("complaint_id_before") < pl.col("complaint_id"))
    )
    share = pairs["complaint_id"].n_unique() / c.height
    assert 0.1 < share < 0.4


def test_seasonality_in_volumes(frames: dict[str, pl.DataFrame]) -> None:
    s = frames["shipments"].with_columns(cal=pl.col("month").str.slice(5, 2))
    by_cal = dict(s.group_by("cal").agg(pl.col("units_shipped").sum()).iter_rows())
    spring = (by_cal["03"] + by_cal["04"] + by_cal["05"]) / 3
    assert by_cal["08"] < 0.85 * spring
    assert by_cal["12"] < 0.9 * spring


def test_descriptions_exercise_quoting_and_escaping(frames: dict[str, pl.DataFrame]) -> None:
    d = frames["complaints"]["description"].drop_nulls()
    for needle in ('"', ",", "&", "<5 mm", "µm", "Müller", "±"):
        assert d.str.contains(needle, literal=True).any(), needle
    assert d.n_unique() > 200
    assert not d.str.to_lowercase().str.contains("<script", literal=True).any()
    assert frames["complaints"]["description"].null_count() > 0
