"""pipeline.exports: the files staged from the prepared data (exports, registers, quarantine.csv)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import polars as pl

from pipeline.helpers import (
    AS_OF,
    PERIOD,
    REGISTER_FILES,
    copy_sample,
    fake_render,
)
from qmskpi import archive, pipeline


def test_exports_are_the_tables_the_pack_shows(published: tuple[Path, pipeline.RunOutcome]) -> None:
    _, outcome = published
    assert outcome.pack_dir is not None
    kpis = pl.read_csv(outcome.pack_dir / "kpis.csv")
    assert kpis.columns[:8] == [
        "kpi",
        "scope",
        "period",
        "value",
        "numerator",
        "denominator",
        "unit",
        "sound",
    ]
    assert set(kpis["period"]) == {PERIOD}
    assert {"all", "North", "South", "East"} <= set(kpis["scope"])
    review = json.loads((outcome.pack_dir / "review-inputs.json").read_text())
    assert review["meta"]["period"] == PERIOD
    validation = json.loads((outcome.pack_dir / "validation.json").read_text())
    assert validation
    assert (outcome.pack_dir / "quarantine.csv").read_text().startswith("dataset")


def test_registers_hold_every_row_the_pack_leaves_out(
    published: tuple[Path, pipeline.RunOutcome],
) -> None:
    import openpyxl

    _, outcome = published
    assert outcome.pack_dir is not None
    model = json.loads((outcome.pack_dir / "review-inputs.json").read_text())
    wb = openpyxl.load_workbook(outcome.pack_dir / "registers.xlsx", read_only=True)
    bounded = [t for t in model["tables"] if t["register"]]
    assert wb.sheetnames == [t["register"] for t in bounded] + ["Exceptions", "Opportunities"]
    assert len(list(wb["Exceptions"].iter_rows())) - 1 == len(model["exceptions"])
    assert len(list(wb["Opportunities"].iter_rows())) - 1 == len(model["opportunities"])
    for t in bounded:
        csv = pl.read_csv(outcome.pack_dir / f"register-{t['id'].replace('_', '-')}.csv")
        sheet = list(wb[t["register"]].iter_rows(values_only=True))
        assert len(sheet) - 1 == csv.height, t["id"]
        if t["id"] != "site_signals":  # bounded by sites, not rows
            assert csv.height == len(t["rows"]) + t["more"], t["id"]
            assert csv.columns == [c["id"] for c in t["columns"]], t["id"]
    crit = next(t for t in bounded if t["id"] == "critical_complaints")
    assert crit["more"] > 0  # the sample has more than a page of them
    assert len(crit["rows"]) == 10  # the default [review] max_rows
    wb.close()


def test_registers_are_formula_safe(tmp_path: Path) -> None:
    prepared = pipeline.prepare(copy_sample(tmp_path / "data"), PERIOD, "all", as_of=AS_OF)
    evil = {
        tid: frame.with_columns(pl.lit('=HYPERLINK("http://x","y")').alias(frame.columns[0]))
        for tid, frame in prepared.registers.items()
    }
    arch = archive.Archive(tmp_path / "reports")
    with arch.stage(PERIOD, "all") as st:
        names = pipeline.write_registers(replace(prepared, registers=evil), st)
        assert set(names) == REGISTER_FILES
        for name in names:
            if name.endswith(".csv") and name not in (
                "register-exceptions.csv",
                "register-opportunities.csv",
            ):
                first = pl.read_csv(st.file(name))[:, 0].to_list()
                assert all(v.startswith("'=") for v in first), name
        import openpyxl

        wb = openpyxl.load_workbook(st.file("registers.xlsx"))
        for ws in wb.worksheets[:-2]:  # the two lists from the model come last
            for (cell,) in ws.iter_rows(min_row=2, max_col=1):
                assert cell.data_type != "f"
                assert str(cell.value).startswith("'=")


def test_duplicates_are_named_in_quarantine_csv_and_counted_in_validation_json(
    cfg_path: Path,
) -> None:
    complaints = cfg_path.parent / "complaints.csv"
    lines = complaints.read_text(encoding="utf-8").splitlines()
    complaints.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="utf-8")
    out = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert out.status == "published"
    assert pipeline.exit_code([out]) == 0  # a duplicate is excluded, not an error
    assert out.pack_dir is not None
    with (out.pack_dir / "quarantine.csv").open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["rule"] == "duplicate"]
    assert [(r["dataset"], r["file"], r["source_row"], r["severity"]) for r in rows] == [
        ("complaints", "complaints.csv", str(len(lines) + 1), "excluded")
    ]
    assert "row 2 of complaints.csv" in rows[0]["message"]
    report = json.loads((out.pack_dir / "validation.json").read_text(encoding="utf-8"))
    ledger = report["datasets"]["complaints"]
    assert (ledger["rows_in"], ledger["rows_excluded"], ledger["excluded_by"]) == (
        len(lines),
        1,
        {"duplicate": 1},
    )
    assert ledger["rows_in"] == ledger["rows_used"] + ledger["rows_quarantined"] + 1
