"""The synthetic generator: schema, determinism, clean data, the planted story, the knobs."""

from __future__ import annotations

import filecmp
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from qmskpi import synthetic
from qmskpi.config import load_config
from qmskpi.datasets import DATASETS
from qmskpi.errors import QmsKpiError
from qmskpi.synthetic import SyntheticSpec

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = ROOT / "sample_data"

DEFAULT = SyntheticSpec()
FIRST_DAY = date(2023, 11, 1)
END_DAY = date(2026, 10, 31)

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

KNOWN_KPIS = {
    "complaint_rate_ppm",
    "supplier_otd_share",
    "fpy_share",
    "supplier_ppm",
    "capa_effective_share",
    "defect_ppm",
    "complaints_closed_on_time_share",
    "complaint_days_to_close_median",
    "complaints_repeat_share",
    "satisfaction_mean",
    "nps",
    "supplier_otd_due_share",
    "fpy_lot_share",
    "capa_effective_verified_share",
    "complaints_on_time_incl_backlog_share",
    "satisfaction_score_mean",
}

SMALL_SPECS = [
    SyntheticSpec(seed=1, sites=1, months=6, end_month="2025-02"),
    SyntheticSpec(seed=2, sites=5, months=12, scale=0.5),
    SyntheticSpec(seed=3, sites=2, months=14, suppliers=8, products_per_site=2),
]


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return synthetic.generate(DEFAULT)


def _month(col: str) -> pl.Expr:
    return pl.col(col).dt.strftime("%Y-%m")


# --------------------------------------------------------------------------- schema


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


# --------------------------------------------------------------------------- invariants


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


# --------------------------------------------------------------------------- the story


def test_planted_structure_names_where_the_story_is() -> None:
    p = synthetic.planted_structure(DEFAULT)
    assert p.sites == ("North", "South", "East")
    assert (p.first_month, p.end_month) == ("2023-11", "2026-10")
    assert (p.step_site, p.step_from) == ("South", "2026-05")
    assert (p.otd_supplier_id, p.otd_decline_from) == ("SUP-003", "2026-03")
    assert p.backlog_from == "2025-11"
    assert p.disapproved_supplier_id == "SUP-015"
    assert synthetic.planted_structure(SyntheticSpec(sites=1)).step_site == "North"


def test_supplier_otd_deteriorates(frames: dict[str, pl.DataFrame]) -> None:
    r = frames["receipts"].filter(pl.col("supplier_id") == "SUP-003")
    on_time = (pl.col("received_date") <= pl.col("promised_date")).mean()
    first12 = r.filter(pl.col("received_date") < date(2024, 11, 1)).select(on_time).item()
    last6 = r.filter(pl.col("received_date") >= date(2026, 5, 1)).select(on_time).item()
    assert first12 > 0.9
    assert last6 < first12 - 0.2
    others = frames["receipts"].filter(pl.col("supplier_id") != "SUP-003")
    others_last6 = others.filter(pl.col("received_date") >= date(2026, 5, 1)).select(on_time).item()
    assert others_last6 > 0.88
    sup = frames["suppliers"].filter(pl.col("supplier_id") == "SUP-003").row(0, named=True)
    assert sup["critical"] is True


def test_open_order_lines_late_ones_mostly_the_deteriorating_supplier(
    frames: dict[str, pl.DataFrame],
) -> None:
    o = frames["open_orders"]
    end = date(2026, 10, 31)
    late = o.filter(pl.col("promised_date") <= end)
    assert o.height > 2 * late.height  # most lines are not due yet at the export
    by_supplier = late["supplier_id"].value_counts(sort=True)
    assert by_supplier["supplier_id"][0] == "SUP-003"
    planted = late.filter(pl.col("promised_date") < end - timedelta(days=20))
    assert planted["supplier_id"].to_list() == ["SUP-003", "SUP-003"]
    assert sorted((end - d).days for d in planted["promised_date"].to_list()) == [24, 33]
    assert "SUP-015" not in o["supplier_id"].to_list()  # disapproved: nothing on order


def test_step_site_defect_rate_steps_up(frames: dict[str, pl.DataFrame]) -> None:
    ppm = (pl.col("qty_defective").sum() / pl.col("qty_inspected").sum() * 1e6).alias("ppm")
    i = frames["inspections"]
    before = i.filter(
        (pl.col("inspection_date") >= date(2025, 5, 1))
        & (pl.col("inspection_date") < date(2026, 5, 1))
    )
    after = i.filter(pl.col("inspection_date") >= date(2026, 5, 1))
    b = dict(before.group_by("site").agg(ppm).iter_rows())
    a = dict(after.group_by("site").agg(ppm).iter_rows())
    assert a["South"] > 1.8 * b["South"]
    assert a["North"] < 1.5 * b["North"]
    assert a["East"] < 1.5 * b["East"]
    codes = after.filter((pl.col("site") == "South") & pl.col("defect_code").is_not_null())
    assert codes["defect_code"].mode().to_list() == ["DIM-OOT"]


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


def test_open_past_due_capa_findings_and_actions(frames: dict[str, pl.DataFrame]) -> None:
    open_past_due = (pl.col("status") == "open") & (pl.col("due_date") < END_DAY)
    assert frames["capa"].filter(open_past_due).height >= 3
    assert frames["capa"]["effectiveness_verified"].drop_nulls().n_unique() == 2
    a = frames["audit_findings"]
    assert set(a["type"].to_list()) == {"major_nc", "minor_nc", "observation", "ofi"}
    assert a.filter(open_past_due).height >= 2
    assert a.filter(pl.col("type") == "ofi")["due_date"].null_count() > 0
    ra = frames["review_actions"]
    assert ra.filter(open_past_due).height >= 2
    assert ra.filter(pl.col("status") == "closed").height > ra.height / 2


def test_suppliers_statuses_and_overdue_evaluations(frames: dict[str, pl.DataFrame]) -> None:
    s = frames["suppliers"]
    assert set(s["approval_status"].to_list()) == {"approved", "conditional", "disapproved"}
    assert 0 < s["critical"].sum() < s.height
    overdue = s.filter(
        (pl.col("approval_status") == "approved") & (pl.col("next_evaluation_due") < END_DAY)
    )
    assert overdue.height >= 2
    gone = frames["receipts"].filter(
        (pl.col("supplier_id") == "SUP-015") & (pl.col("received_date") >= date(2026, 1, 1))
    )
    assert gone.is_empty()


def test_objectives_linked_and_manual(frames: dict[str, pl.DataFrame]) -> None:
    o = frames["objectives"]
    linked = o.filter(pl.col("kpi").is_not_null())
    assert linked.height >= 3
    assert o.filter(pl.col("kpi").is_null()).height >= 2
    assert set(linked["kpi"].to_list()) <= KNOWN_KPIS
    assert {"complaint_rate_ppm", "supplier_otd_due_share", "fpy_lot_share"} <= set(
        linked["kpi"].to_list()
    )
    results = frames["objective_results"]
    assert results.height == 36 * o.filter(pl.col("kpi").is_null()).height


def test_descriptions_exercise_quoting_and_escaping(frames: dict[str, pl.DataFrame]) -> None:
    d = frames["complaints"]["description"].drop_nulls()
    for needle in ('"', ",", "&", "<5 mm", "µm", "Müller", "±"):
        assert d.str.contains(needle, literal=True).any(), needle
    assert d.n_unique() > 200
    assert not d.str.to_lowercase().str.contains("<script", literal=True).any()
    assert frames["complaints"]["description"].null_count() > 0


# --------------------------------------------------------------------------- knobs


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


@pytest.mark.parametrize(
    "kwargs",
    [{"sites": 0}, {"months": 0}, {"scale": 0.0}, {"end_month": "2026-Q3"}, {"suppliers": 2}],
)
def test_bad_spec_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(QmsKpiError):
        SyntheticSpec(**kwargs)


# --------------------------------------------------------------------------- files


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "reports" not in p.relative_to(root).parts
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_spec_gives_byte_identical_files(tmp_path: Path, fmt: synthetic.OutputFormat) -> None:
    spec = SyntheticSpec(months=12)
    a = synthetic.sample(tmp_path / "a", spec, format=fmt)
    b = synthetic.sample(tmp_path / "b", spec, format=fmt)
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert len(a) == len(DATASETS) + 4
    for pa, pb in zip(a, b, strict=True):
        assert filecmp.cmp(pa, pb, shallow=False), pa.name


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_files_read_back_equal_and_config_loads(
    tmp_path: Path, fmt: synthetic.OutputFormat
) -> None:
    spec = SyntheticSpec(months=12, sites=2)
    frames = synthetic.generate(spec)
    synthetic.write(frames, tmp_path, format=fmt, spec=spec)
    cfg = load_config(tmp_path / "qmskpi.toml")
    assert cfg.organisation == spec.organisation
    assert cfg.sites == ("North", "South")
    assert set(cfg.sources) == set(DATASETS)
    for name, ds in DATASETS.items():
        src = cfg.sources[name]
        path = cfg.resolve(src.path or "")
        assert path.is_file()
        date_cols = {f.name for f in ds.fields if f.type == "date"}
        if fmt == "csv":
            assert set(src.date_formats) == date_cols
            assert set(src.date_formats.values()) <= {"%Y-%m-%d"}
            back = pl.read_csv(path, schema=ds.schema)
        else:
            back = pl.read_parquet(path)
        assert back.equals(frames[name]), name
    objective_kpis = set(frames["objectives"]["kpi"].drop_nulls().to_list())
    assert cfg.kpis.targets
    assert not set(cfg.kpis.targets) & objective_kpis
    assert set(cfg.kpis.targets) <= KNOWN_KPIS
    assert cfg.review.as_of is None
    for rel in (cfg.analyst_inputs.changes, cfg.analyst_inputs.resources, cfg.analyst_inputs.risks):
        assert rel is not None
        text = cfg.resolve(rel).read_text(encoding="utf-8")
        assert text.startswith("# ")
        assert "<" not in text


def test_write_without_spec_infers_sites_and_story(tmp_path: Path) -> None:
    frames = synthetic.generate(SyntheticSpec(months=12, sites=2))
    synthetic.write(frames, tmp_path)
    cfg = load_config(tmp_path / "qmskpi.toml")
    assert cfg.sites == ("North", "South")
    assert "South" in (tmp_path / "inputs" / "changes.md").read_text(encoding="utf-8")


def test_sample_data_matches_the_generator(tmp_path: Path) -> None:
    """The committed sample_data/ is exactly what sample() writes with the default spec."""
    synthetic.sample(tmp_path)
    fresh, committed = _tree(tmp_path), _tree(SAMPLE_DATA)
    assert sorted(committed) == sorted(fresh)
    for rel, data in fresh.items():
        assert committed[rel] == data, (
            f"sample_data/{rel} drifted: regenerate with synthetic.sample"
        )
    size = sum(len(v) for k, v in committed.items() if k.endswith(".csv"))
    assert size <= 5_000_000
    load_config(SAMPLE_DATA / "qmskpi.toml")


def test_write_refuses_to_guess_a_config_for_foreign_frames(tmp_path: Path) -> None:
    frames = synthetic.generate(SyntheticSpec(months=6, sites=1))
    renamed = {
        name: f.with_columns(site=pl.lit("Plant 7")) if DATASETS[name].site_level else f
        for name, f in frames.items()
    }
    with pytest.raises(QmsKpiError, match="pass spec"):
        synthetic.write(renamed, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    written = synthetic.write(renamed, tmp_path / "b", config=False)
    assert [p.name for p in written] == [f"{name}.csv" for name in DATASETS]


def test_failed_lots_are_reinspected_so_lot_yield_differs_from_pass_rate(
    frames: dict[str, pl.DataFrame],
) -> None:
    i = frames["inspections"]
    lots = i.filter(pl.col("lot_id").is_not_null())
    per_lot = lots.group_by("site", "stage", "lot_id").agg(
        n=pl.len(), first=pl.col("result").sort_by("inspection_date").first()
    )
    again = per_lot.filter(pl.col("n") > 1)
    # a re-inspected lot failed first and was inspected twice, never more
    assert again.height > 50
    assert (again["n"] == 2).all()
    assert (again["first"] == "fail").all()
    # the re-inspection passes, 1-3 days later, at the same site and stage
    pairs = lots.join(again.select("site", "stage", "lot_id"), on=["site", "stage", "lot_id"])
    span = pairs.group_by("site", "stage", "lot_id").agg(
        days=(pl.col("inspection_date").max() - pl.col("inspection_date").min()).dt.total_days(),
        last=pl.col("result").sort_by("inspection_date").last(),
    )
    assert span["days"].is_between(1, 3).all()
    assert (span["last"] == "pass").all()
