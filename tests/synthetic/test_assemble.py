"""Every dataset generated at once: the canonical schema, the rules the data keep, the knobs."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from qmskpi import synthetic
from qmskpi.datasets import DATASETS
from qmskpi.synthetic import SyntheticSpec
from synthetic.helpers import DEFAULT

EVENT_DATES = {
    "complaints": ("received_date", "closed_date"),
    "receipts": ("promised_date", "received_date"),
    "inspections": ("inspection_date",),
    "capa": ("opened_date", "closed_date"),
    "audit_findings": ("audit_date", "closed_date"),
    "review_actions": ("review_date", "closed_date"),
    "surveys": ("response_date",),
    "suppliers": ("last_evaluation_date",),
}
"""Dates of things that happened: never after the end month. Due dates are plans and may be."""


SMALL_SPECS = [
    SyntheticSpec(seed=1, sites=1, months=6, end_month="2025-02"),
    SyntheticSpec(seed=2, sites=5, months=12, scale=0.5),
    SyntheticSpec(seed=3, sites=2, months=14, suppliers=8, products_per_site=2),
]


def test_schema_equals_canonical_datasets(frames: dict[str, pl.DataFrame]) -> None:
    assert list(frames) == list(DATASETS)
    for name, ds in DATASETS.items():
        assert list(frames[name].schema.items()) == list(ds.schema.items()), name
        assert frames[name].height > 0, name


def test_keys_unique_sorted_and_required_fields_set(frames: dict[str, pl.DataFrame]) -> None:
    for name, ds in DATASETS.items():
        f = frames[name]
        key = list(ds.key)
        assert f.select(key).is_duplicated().sum() == 0, name
        assert f.select(key).equals(f.select(key).sort(key)), name
        for field in ds.fields:
            if field.required:
                assert f[field.name].null_count() == 0, (name, field.name)
            if field.allowed is not None:
                values = set(f[field.name].drop_nulls().unique().to_list())
                assert values <= set(field.allowed), (name, field.name, values)


def _check_invariants(f: dict[str, pl.DataFrame], spec: SyntheticSpec) -> None:
    from qmskpi.periods import trailing_months

    months = trailing_months(spec.end_month, spec.months)
    first, end = months[0].start, months[-1].end
    labels = [m.label for m in months]

    for name, cols in EVENT_DATES.items():
        for col in cols:
            assert f[name].filter(pl.col(col) > end).height == 0, (name, col)
            if col not in ("last_evaluation_date", "promised_date"):
                assert f[name].filter(pl.col(col) < first).height == 0, (name, col)
    for name in ("shipments", "objective_results"):
        assert set(f[name]["month"].to_list()) == set(labels), name

    for name, start in (
        ("complaints", "received_date"),
        ("capa", "opened_date"),
        ("audit_findings", "audit_date"),
        ("review_actions", "review_date"),
    ):
        frame = f[name]
        is_closed = frame["status"] == "closed"
        assert (is_closed == frame["closed_date"].is_not_null()).all(), name
        assert frame.filter(pl.col("closed_date") < pl.col(start)).height == 0, name
        if "due_date" in frame.columns:
            assert frame.filter(pl.col("due_date") < pl.col(start)).height == 0, name

    r = f["receipts"]
    assert (r["qty_received"] > 0).all()
    assert r.filter(
        (pl.col("qty_rejected") < 0) | (pl.col("qty_rejected") > pl.col("qty_received"))
    ).is_empty()
    assert set(r["supplier_id"].to_list()) <= set(f["suppliers"]["supplier_id"].to_list())

    i = f["inspections"]
    assert (i["qty_inspected"] > 0).all()
    bad_qty = (pl.col("qty_defective") < 0) | (pl.col("qty_defective") > pl.col("qty_inspected"))
    assert i.filter(bad_qty).is_empty()
    # the rule: fail exactly when something defective was found (c = 0), every stage
    assert ((i["result"] == "fail") == (i["qty_defective"] > 0)).all()
    assert (i["defect_code"].is_not_null() == (i["qty_defective"] > 0)).all()
    assert (i["lot_id"].is_null() == (i["stage"] == "in_process")).all()

    c, capa = f["complaints"], f["capa"]
    linked = c.filter(pl.col("capa_id").is_not_null()).join(
        capa, on="capa_id", how="left", suffix="_capa"
    )
    assert linked["source"].null_count() == 0
    assert (linked["source"] == "complaint").all()
    assert linked["capa_id"].n_unique() == linked.height
    assert (linked["site"] == linked["site_capa"]).all()
    assert linked.filter(pl.col("opened_date") < pl.col("received_date")).is_empty()
    assert capa.filter(
        pl.col("effectiveness_verified").is_not_null() & (pl.col("status") == "open")
    ).is_empty()

    for name in ("complaints", "shipments", "inspections", "capa", "surveys", "receipts"):
        assert set(f[name]["site"].to_list()) <= set(spec.site_names), name
    products = set(f["shipments"]["product"].to_list())
    assert set(f["complaints"]["product"].to_list()) <= products
    assert set(f["inspections"]["product"].to_list()) <= products
    s = f["surveys"]
    assert (s["scale_max"] == 10).all()
    assert (s["scale_min"] == 0).all()
    assert s.filter((pl.col("score") < 0) | (pl.col("score") > pl.col("scale_max"))).is_empty()
    assert (f["shipments"]["units_shipped"] > 0).all()
    o = f["open_orders"]
    assert (o["qty_open"] > 0).all()
    assert set(o["supplier_id"].to_list()) <= set(f["suppliers"]["supplier_id"].to_list())
    assert set(o["site"].to_list()) <= set(spec.site_names)
    # promised from 33 days before the export (the planted lines) to 45 days after it
    assert o["promised_date"].min() >= end - timedelta(days=33)
    assert o["promised_date"].max() <= end + timedelta(days=45)
    sup = f["suppliers"]
    assert sup.filter(pl.col("next_evaluation_due") < pl.col("last_evaluation_date")).is_empty()
    manual = set(f["objectives"].filter(pl.col("kpi").is_null())["objective_id"].to_list())
    assert set(f["objective_results"]["objective_id"].to_list()) == manual


def test_default_sample_is_clean(frames: dict[str, pl.DataFrame]) -> None:
    _check_invariants(frames, DEFAULT)


@pytest.mark.parametrize("spec", SMALL_SPECS, ids=lambda s: f"seed{s.seed}")
def test_other_specs_are_clean(spec: SyntheticSpec) -> None:
    f = synthetic.generate(spec)
    for name, ds in DATASETS.items():
        assert list(f[name].schema.items()) == list(ds.schema.items()), name
    _check_invariants(f, spec)


def test_knobs_change_sizes() -> None:
    five = synthetic.generate(SyntheticSpec(sites=5, months=12))
    assert set(five["shipments"]["site"].to_list()) == {"North", "South", "East", "West", "Central"}
    assert five["shipments"]["month"].n_unique() == 12
    assert five["inspections"].select(pl.col("inspection_date").min()).item() >= date(2025, 11, 1)
    one = synthetic.generate(SyntheticSpec(months=12))
    two = synthetic.generate(SyntheticSpec(months=12, scale=2.0))
    ratio = two["inspections"].height / one["inspections"].height
    assert 1.85 < ratio < 2.15
    assert 1.7 < two["complaints"].height / one["complaints"].height < 2.3
    assert two["shipments"].height == one["shipments"].height


def test_seed_changes_data() -> None:
    a = synthetic.generate(SyntheticSpec(months=6, seed=1))["inspections"]
    b = synthetic.generate(SyntheticSpec(months=6, seed=2))["inspections"]
    assert not a.equals(b)
