"""pipeline.prepared: prepare (a mapping constant, a backfill) and a saved prepared review reused."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline.helpers import (
    AS_OF,
    PERIOD,
    SAMPLE,
    copy_sample,
)
from qmskpi import contracts, pipeline, synthetic


def test_a_mapping_constant_is_not_measured_in_kpis_and_the_review(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("reports"))
    config = data / "qmskpi.toml"
    text = config.read_text(encoding="utf-8")
    mapped = 'date_formats = { promised_date = "%Y-%m-%d", received_date = "%Y-%m-%d" }\n'
    assert mapped in text
    # The export has no rejected quantity: the mapping sets it to 0 for every receipt.
    config.write_text(
        text.replace(
            mapped, mapped + 'ignore_columns = ["qty_rejected"]\nconstants = { qty_rejected = 0 }\n'
        ),
        encoding="utf-8",
    )
    prepared = pipeline.prepare(config, PERIOD, as_of=AS_OF)
    row = prepared.kpis.filter((pl.col("kpi") == "supplier_ppm") & (pl.col("scope") == "all"))
    assert row.select("value", "sound", "note").rows() == [
        (0.0, False, "not measured: qty_rejected is a mapping constant")
    ]
    otd = prepared.kpis.filter((pl.col("kpi") == "supplier_otd_share") & (pl.col("scope") == "all"))
    assert otd["sound"].to_list() == [True]
    tile = next(t for t in prepared.review.tiles if t.kpi == "supplier_ppm")  # a pack tile
    assert (tile.sound, tile.note) == (False, "not measured: qty_rejected is a mapping constant")
    values = {v.kpi: v for v in prepared.review.kpis if v.scope == "all"}
    assert not values["supplier_ppm"].sound


_RECORD_DATE = {
    "shipments": "month",
    "suppliers": "last_evaluation_date",
    "complaints": "received_date",
    "capa": "opened_date",
    "receipts": "received_date",
    "inspections": "inspection_date",
    "objective_results": "month",
    "audit_findings": "audit_date",
    "review_actions": "review_date",
    "surveys": "response_date",
}


def _cut_at(src: Path, dst: Path, as_of: date, spec: synthetic.SyntheticSpec) -> None:
    """The export as it stood on ``as_of``, cut by hand: later records absent, later closures open."""
    frames: dict[str, pl.DataFrame] = {}
    for path in sorted(src.glob("*.csv")):
        f = pl.read_csv(path, try_parse_dates=True, infer_schema_length=None)
        rec = _RECORD_DATE.get(path.stem)
        if rec is not None:
            day = pl.col(rec)
            if f.schema[rec] == pl.String:  # a month, YYYY-MM: dated on its first day
                day = (day + "-01").str.to_date()
            f = f.filter(day.is_null() | (day <= as_of))
        if "closed_date" in f.columns:
            late = pl.col("closed_date") > as_of
            f = f.with_columns(
                pl.when(late).then(pl.lit("open")).otherwise(pl.col("status")).alias("status"),
                *(
                    [pl.when(late).then(False).otherwise(pl.col(c)).alias(c)]
                    if (c := "effectiveness_verified") in f.columns
                    else []
                ),
                pl.when(late).then(None).otherwise(pl.col("closed_date")).alias("closed_date"),
            )
        frames[path.stem] = f
    synthetic.write(frames, dst, spec=spec)


def test_backfill_leaves_out_rows_after_as_of_like_an_export_cut_then(tmp_path: Path) -> None:
    # An export that already holds November; the October pack restated as of 2 November.
    spec = synthetic.SyntheticSpec(sites=1, months=14, end_month="2026-11")
    synthetic.sample(tmp_path / "nov", spec)
    as_of = date(2026, 11, 2)
    _cut_at(tmp_path / "nov", tmp_path / "cut", as_of, spec)

    late = pipeline.prepare(tmp_path / "nov" / "qmskpi.toml", "2026-10", as_of=as_of)
    cut = pipeline.prepare(tmp_path / "cut" / "qmskpi.toml", "2026-10", as_of=as_of)

    v = late.validation
    assert v.unsound_datasets == frozenset()
    assert v.quarantine.filter(pl.col("rule").str.ends_with("_not_future")).height == 0
    for name, dv in v.datasets.items():
        assert dv.rows_in == dv.rows_used + dv.rows_quarantined + dv.rows_excluded, name
        assert dv.rows_used == cut.validation.datasets[name].rows_used, name
    # November's complaints were read and left out, not quarantined.
    complaints = pl.read_csv(tmp_path / "nov" / "complaints.csv", try_parse_dates=True)
    expected = complaints.filter(pl.col("received_date") > as_of).height
    assert expected > 0
    assert v.datasets["complaints"].excluded_by == {"after_as_of": expected}
    assert cut.validation.datasets["complaints"].rows_excluded == 0
    # The KPIs are those of the export cut on as_of.
    assert late.kpis["sound"].all()
    assert late.kpis.equals(cut.kpis)
    ledger = late.review.table("ledger")
    assert ledger is not None
    excluded = dict(zip(ledger.column("dataset"), ledger.column("rows_excluded"), strict=True))
    assert excluded["complaints"] == f"{expected} after_as_of"


EVIL_ORG = "<script>alert(1)</script> & Co"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[pipeline.Prepared, Path]:
    """The sample review of a hostile-named organisation, prepared once and saved."""
    base = tmp_path_factory.mktemp("saved")
    cfg = copy_sample(base / "data", organisation=EVIL_ORG)
    folder = base / "prepared"
    prepared = pipeline.prepare(cfg, PERIOD, "all", as_of=AS_OF, save_to=folder)
    return prepared, folder


def test_prepared_repr_is_short_and_its_html_escapes_the_organisation(
    saved: tuple[pipeline.Prepared, Path],
) -> None:
    prepared, _ = saved
    v = prepared.validation
    text = repr(prepared)
    assert len(text) < 300
    assert text.startswith(f"<Prepared {PERIOD} 'all' of {EVIL_ORG!r}: 14 datasets (0 unsound), ")
    sound = prepared.kpis.filter(pl.col("sound")).height
    assert f"{prepared.kpis.height:,} KPI rows ({sound:,} sound)" in text
    assert f"{len(prepared.review.trends)} trends" in text
    page = prepared._repr_html_()
    assert len(page) < 3_000
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    rows_in = sum(d.rows_in for d in v.datasets.values())
    assert f"{rows_in:,} in" in page


def test_a_saved_prepared_review_is_reused_without_loading_or_validating(
    saved: tuple[pipeline.Prepared, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared, folder = saved

    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("reloaded instead of reusing the saved review")

    monkeypatch.setattr(
        "qmskpi.pipeline.prepared.load_inputs", must_not_run
    )  # where prepare reads it
    monkeypatch.setattr(contracts, "validate", must_not_run)
    again = pipeline.prepared_for("", PERIOD, "all", prepared_path=folder)
    assert again.config == prepared.config
    assert again.review == prepared.review
    assert again.kpis.equals(prepared.kpis)
    assert again.validation.to_json() == prepared.validation.to_json()
    assert again.validation.clean.keys() == prepared.validation.clean.keys()
    for name, frame in prepared.validation.clean.items():
        assert again.validation.clean[name].equals(frame), name
    assert again.loaded.keys() == prepared.loaded.keys()
    meta = json.loads((folder / pipeline.PREPARED_META).read_text())
    assert meta["period"] == PERIOD
    assert meta["scope"] == "all"
    assert meta["as_of"] == "2026-11-05"
    assert {r["dataset"] for r in meta["inputs"]} == set(prepared.loaded)


def test_a_saved_prepared_review_refuses_another_period_scope_or_stale_inputs(
    saved: tuple[pipeline.Prepared, Path],
) -> None:
    prepared, folder = saved
    with pytest.raises(
        pipeline.PreparedError, match="prepared for period '2026-10', not '2026-09'"
    ):
        pipeline.load_prepared(folder, period="2026-09")
    site = prepared.config.sites[0]
    with pytest.raises(pipeline.PreparedError, match=f"prepared for scope 'all', not '{site}'"):
        pipeline.load_prepared(folder, scope=site)
    assert prepared.config.path is not None
    complaints = prepared.config.path.parent / "complaints.csv"
    original = complaints.read_bytes()
    try:
        complaints.write_bytes(original + original.splitlines(keepends=True)[-1])
        with pytest.raises(pipeline.PreparedError, match=f"stale: {complaints} changed"):
            pipeline.load_prepared(folder)
    finally:
        complaints.write_bytes(original)
    other = copy_sample(folder.parent / "other", organisation="Someone Else")
    with pytest.raises(pipeline.PreparedError, match="not the config it was prepared with"):
        pipeline.load_prepared(folder, config=other)
    again = pipeline.load_prepared(folder, period=PERIOD, scope="all")
    assert again.review == prepared.review
    assert again.as_of == prepared.as_of == AS_OF  # notebooks pass it on: the pack's figures


def test_a_saved_prepared_review_runs_no_foreign_code(
    saved: tuple[pipeline.Prepared, Path], tmp_path: Path
) -> None:
    import pickle

    _, folder = saved
    copy = tmp_path / "prepared"
    shutil.copytree(folder, copy)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {shlex.quote(str(marker))}",))

    blob = pickle.dumps({"x": Payload()})
    (copy / pipeline.PREPARED_DATA).write_bytes(blob)
    with pytest.raises(pipeline.PreparedError, match=r"does not match prepared\.json"):
        pipeline.load_prepared(copy)
    meta = json.loads((copy / pipeline.PREPARED_META).read_text())
    meta["data_sha256"] = hashlib.sha256(blob).hexdigest()  # a forger who also edits the meta
    (copy / pipeline.PREPARED_META).write_text(json.dumps(meta))
    with pytest.raises(pipeline.PreparedError, match=r"refuses to load posix\.system"):
        pipeline.load_prepared(copy)
    assert not marker.exists()
