"""Data contracts: loading, validation by both engines, quarantine, ledger, writers.

The bad-input corpus is validated once (module-scoped): each case is its own
row (or pair of rows) among valid rows, and each test asserts exactly which
rules that row broke and whether it was quarantined. Reading cases (encodings,
Excel, Parquet, dates) go through ``qmskpi.sources.load_dataset``.

Every validation here (:func:`run`) is done twice, by the default ``polars``
engine and by Great Expectations (``engine="gx"``), and the two reports must
agree rule by rule (verdict, unexpected count and share, what was observed)
and row by row (findings, quarantine, rows used): that is how CI keeps the
GX suites and the polars evaluator meaning the same thing.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmskpi import contracts
from qmskpi.config import Config, from_dict
from qmskpi.contracts import ValidationReport, validate
from qmskpi.contracts import gx as contracts_gx
from qmskpi.contracts import prepare as contracts_prepare
from qmskpi.contracts import report as contracts_report
from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.errors import ConfigError, ContractError, HeaderError, QmsKpiError, SourceError
from qmskpi.sources import REJECT_SCHEMA, LoadedDataset, load_all, load_dataset

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "data_contracts"
PERIOD = "2026-10"
AS_OF = date(2026, 11, 5)
SITES = ["North", "South"]


# --------------------------------------------------------------------------- helpers


def config(sources: Mapping[str, Any] | None = None, base: Path | None = None) -> Config:
    srcs = sources or {name: {"path": f"{name}.csv"} for name in DATASETS}
    return from_dict(
        {"organisation": {"name": "Test Ltd", "sites": SITES}, "sources": dict(srcs)},
        path=(base / "qmskpi.toml") if base is not None else None,
    )


def loaded(name: str, rows: list[dict[str, Any]], *, first_row: int = 2) -> LoadedDataset:
    """A LoadedDataset as sources would hand it over, from canonical rows."""
    schema = DATASETS[name].schema
    frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    frame = frame.with_columns(
        pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64).alias(SOURCE_ROW)
    )
    return LoadedDataset(
        dataset=name,
        frame=frame,
        rejects=pl.DataFrame(schema=REJECT_SCHEMA),
        origin=f"{name}.csv",
        sha256="0" * 64,
        rows_in=frame.height,
    )


def ledger_ok(report: ValidationReport) -> None:
    for d in report.datasets.values():
        assert d.rows_in == d.rows_used + d.rows_quarantined + d.rows_excluded, d.dataset
        if d.loaded:
            assert report.clean[d.dataset].height == d.rows_used
    quarantined = report.quarantine.select(pl.struct("dataset", "file", SOURCE_ROW).n_unique())
    assert quarantined.item() == report.rows_quarantined


def rules_of(report: ValidationReport, dataset: str, row: int) -> set[str]:
    f = report.findings.filter((pl.col("dataset") == dataset) & (pl.col(SOURCE_ROW) == row))
    return set(f["rule"].to_list())


def is_quarantined(report: ValidationReport, dataset: str, row: int) -> bool:
    q = report.quarantine.filter((pl.col("dataset") == dataset) & (pl.col(SOURCE_ROW) == row))
    return q.height > 0


def judged(report: ValidationReport) -> dict[tuple[str, str], dict[str, Any]]:
    """Each rule's result without who judged it: what both engines must agree on."""
    out = {}
    for name, d in report.datasets.items():
        for r in d.rules:
            result = r.to_dict()
            result.pop("engine")
            out[(name, r.rule_id)] = result
    return out


def assert_engines_agree(polars_report: ValidationReport, gx_report: ValidationReport) -> None:
    assert judged(gx_report) == judged(polars_report)
    assert gx_report.findings.equals(polars_report.findings)
    assert gx_report.quarantine.equals(polars_report.quarantine)
    assert gx_report.unsound_datasets == polars_report.unsound_datasets
    for name, frame in polars_report.clean.items():
        assert gx_report.clean[name].equals(frame), name
    for name, d in polars_report.datasets.items():
        dg = gx_report.datasets[name]
        assert (d.rows_used, d.rows_quarantined) == (dg.rows_used, dg.rows_quarantined), name


def run(data: Mapping[str, LoadedDataset], **kwargs: Any) -> ValidationReport:
    """``validate`` by the default engine (returned), checked against ``engine="gx"``."""
    kwargs.setdefault("period", PERIOD)
    kwargs.setdefault("as_of", AS_OF)
    report = validate(data, **kwargs)
    ledger_ok(report)
    assert_engines_agree(report, validate(data, **kwargs, engine="gx"))
    return report


# --------------------------------------------------------------------------- the corpus

D = date


def complaint(i: str) -> dict[str, Any]:
    return {
        "complaint_id": f"C-{i}",
        "received_date": D(2026, 10, 20),
        "closed_date": None,
        "site": "North",
        "customer": "ACME",
        "product": "P1",
        "category": "quality",
        "severity": "minor",
        "status": "open",
        "description": "Scratch on housing",
        "root_cause": None,
        "capa_id": None,
        "units_affected": 2,
    }


def shipment(i: str) -> dict[str, Any]:
    return {"site": "North", "product": f"P-{i}", "month": "2026-10", "units_shipped": 1000}


def supplier(i: str) -> dict[str, Any]:
    return {
        "supplier_id": f"S-{i}",
        "name": f"Supplier {i}",
        "category": "castings",
        "critical": False,
        "approval_status": "approved",
        "last_evaluation_date": D(2026, 1, 15),
        "next_evaluation_due": D(2027, 1, 15),
    }


def receipt(i: str) -> dict[str, Any]:
    return {
        "receipt_id": f"R-{i}",
        "supplier_id": "S-base-0",
        "site": "North",
        "promised_date": D(2026, 10, 28),
        "received_date": D(2026, 10, 28),
        "qty_received": 100,
        "qty_rejected": 0,
    }


def inspection(i: str) -> dict[str, Any]:
    return {
        "inspection_id": f"I-{i}",
        "inspection_date": D(2026, 10, 29),
        "site": "North",
        "product": "P1",
        "stage": "final",
        "lot_id": "L1",
        "qty_inspected": 10,
        "qty_defective": 0,
        "defect_code": None,
        "result": "pass",
    }


def objective(i: str) -> dict[str, Any]:
    return {
        "objective_id": f"O-{i}",
        "name": "Cut scrap",
        "clause": "8.7",
        "owner": "Plant manager",
        "unit": "EUR",
        "direction": "lower_is_better",
        "target": 1000.0,
        "kpi": None,
    }


def objective_result(i: str) -> dict[str, Any]:
    # Each row its own month of O-base-0 (from 2026-10 backwards), so keys never collide.
    n = int(i.split("-")[1]) if i.startswith("base-") else 20 + zlib.crc32(i.encode()) % 100
    y, m = divmod(2026 * 12 + 9 - n, 12)
    return {"objective_id": "O-base-0", "month": f"{y:04d}-{m + 1:02d}", "actual": 900.0}


def capa(i: str) -> dict[str, Any]:
    return {
        "capa_id": f"CA-{i}",
        "source": "complaint",
        "site": "North",
        "opened_date": D(2026, 10, 1),
        "due_date": D(2026, 11, 30),
        "closed_date": None,
        "status": "open",
        "effectiveness_verified": None,
    }


def finding(i: str) -> dict[str, Any]:
    return {
        "finding_id": f"F-{i}",
        "audit_id": "A-1",
        "audit_date": D(2026, 10, 5),
        "site": "North",
        "clause": "7.5",
        "type": "minor_nc",
        "status": "open",
        "due_date": D(2026, 12, 5),
        "closed_date": None,
    }


def review_action(i: str) -> dict[str, Any]:
    return {
        "action_id": f"RA-{i}",
        "review_date": D(2026, 9, 15),
        "description": "Add a second supplier for castings",
        "owner": "Purchasing",
        "due_date": D(2026, 12, 31),
        "status": "open",
        "closed_date": None,
    }


def survey(i: str) -> dict[str, Any]:
    return {
        "response_id": f"SV-{i}",
        "response_date": D(2026, 10, 25),
        "site": "North",
        "customer": "ACME",
        "score": 8.0,
        "scale_max": 10,
    }


def approval(i: str) -> dict[str, Any]:
    return {
        "supplier_id": f"SUP-{i}",
        "decision_date": D(2026, 3, 1),
        "approval_status": "approved",
        "next_evaluation_due": D(2027, 3, 1),
    }


def planned_audit(i: str) -> dict[str, Any]:
    return {
        "audit_id": f"PA-{i}",
        "site": "North",
        "planned_date": D(2026, 10, 5),
        "performed_date": D(2026, 10, 6),
        "area": "assembly",
    }


def open_line(i: str) -> dict[str, Any]:
    return {
        "order_line_id": f"PO-{i}/10",
        "supplier_id": "S-base-0",
        "site": "North",
        "promised_date": D(2026, 12, 15),  # after the as-of date: open lines may be
        "qty_open": 40,
        "part": "P-7",
    }


BASE: dict[str, Callable[[str], dict[str, Any]]] = {
    "complaints": complaint,
    "shipments": shipment,
    "suppliers": supplier,
    "receipts": receipt,
    "open_orders": open_line,
    "inspections": inspection,
    "objectives": objective,
    "objective_results": objective_result,
    "capa": capa,
    "audit_findings": finding,
    "audit_programme": planned_audit,
    "supplier_approvals": approval,
    "review_actions": review_action,
    "surveys": survey,
}
BASE_ROWS = 3


@dataclass(frozen=True)
class Case:
    """A bad input: rows (overrides of a valid row) and exactly what must happen to them."""

    id: str
    dataset: str
    rows: tuple[dict[str, Any], ...]
    rules: frozenset[str]
    quarantined: bool
    notes: str = ""


def case(
    id: str, dataset: str, *rows: dict[str, Any], rules: set[str], quarantined: bool = True
) -> Case:
    return Case(id, dataset, rows or ({},), frozenset(rules), quarantined)


FORMULA = "=cmd|' /C calc'!A0"
SCRIPT = "<script>alert('x')</script>"

CORPUS: tuple[Case, ...] = (
    # complaints
    case(
        "closed_before_received",
        "complaints",
        {"status": "closed", "received_date": D(2026, 10, 20), "closed_date": D(2026, 10, 2)},
        rules={"closed_not_before_received"},
    ),
    case(
        "future_received_date",
        "complaints",
        {"received_date": D(2026, 12, 1)},
        rules={"received_date_not_future"},
    ),
    case(
        "placeholder_1900_date",
        "complaints",
        {"received_date": D(1900, 1, 1)},
        rules={"received_date_not_future"},
    ),
    case(
        "placeholder_9999_date",  # beyond pandas' ns range: GX's slower path must agree too
        "complaints",
        {"received_date": D(9999, 12, 31)},
        rules={"received_date_not_future"},
    ),
    case("unknown_severity", "complaints", {"severity": "urgent"}, rules={"severity_known"}),
    case("unknown_site", "complaints", {"site": "Nrth"}, rules={"site_known"}),
    case(
        "status_case_not_mapped",
        "complaints",
        {"status": "Closed", "closed_date": D(2026, 10, 25)},
        rules={"status_known"},
    ),
    case("closed_without_date", "complaints", {"status": "closed"}, rules={"closed_has_date"}),
    case(
        "open_with_closed_date",
        "complaints",
        {"closed_date": D(2026, 10, 22)},
        rules={"open_has_no_closed_date"},
    ),
    case(
        "duplicate_complaint_id",
        "complaints",
        {"complaint_id": "C-dup"},
        {"complaint_id": "C-dup", "customer": "Other"},
        rules={"complaint_id_unique"},
    ),
    case("missing_customer", "complaints", {"customer": None}, rules={"customer_required"}),
    case(
        "negative_units_affected",
        "complaints",
        {"units_affected": -3},
        rules={"units_affected_not_negative"},
    ),
    case(
        "orphan_capa_reference_warns",
        "complaints",
        {"capa_id": "CA-404"},
        rules={"capa_exists"},
        quarantined=False,
    ),
    case(
        "formula_and_script_text_kept",
        "complaints",
        {"description": FORMULA, "root_cause": SCRIPT, "customer": "@SUM(A1)"},
        rules=set(),
        quarantined=False,
    ),
    case(
        "closed_same_day_is_fine",
        "complaints",
        {"status": "closed", "received_date": D(2026, 10, 20), "closed_date": D(2026, 10, 20)},
        rules=set(),
        quarantined=False,
    ),
    case(
        "dated_on_the_as_of_day_after_period_end_is_fine",
        "complaints",
        {"received_date": AS_OF},
        rules=set(),
        quarantined=False,
    ),
    # shipments
    case(
        "duplicate_shipment_key",
        "shipments",
        {"product": "P-dup"},
        {"product": "P-dup", "units_shipped": 5},
        rules={"key_unique"},
    ),
    case("month_13", "shipments", {"month": "2026-13"}, rules={"month_format"}),
    case("month_not_zero_padded", "shipments", {"month": "2026-9"}, rules={"month_format"}),
    case("future_month", "shipments", {"month": "2027-01"}, rules={"month_not_future"}),
    case(
        "negative_units_shipped",
        "shipments",
        {"units_shipped": -5},
        rules={"units_shipped_not_negative"},
    ),
    # suppliers
    case(
        "unknown_approval_status",
        "suppliers",
        {"approval_status": "pending"},
        rules={"approval_status_known"},
    ),
    case(
        "duplicate_supplier_id",
        "suppliers",
        {"supplier_id": "S-dup"},
        {"supplier_id": "S-dup", "name": "Twin"},
        rules={"supplier_id_unique"},
    ),
    case(
        "next_evaluation_before_last_warns",
        "suppliers",
        {"next_evaluation_due": D(2025, 1, 1)},
        rules={"next_evaluation_after_last"},
        quarantined=False,
    ),
    # receipts
    case(
        "rejected_above_received",
        "receipts",
        {"qty_received": 10, "qty_rejected": 12},
        rules={"rejected_not_above_received"},
    ),
    case(
        "rejected_equal_to_received_is_fine",
        "receipts",
        {"qty_received": 7, "qty_rejected": 7},
        rules=set(),
        quarantined=False,
    ),
    case("zero_received", "receipts", {"qty_received": 0}, rules={"qty_received_positive"}),
    case(
        "negative_rejected", "receipts", {"qty_rejected": -1}, rules={"qty_rejected_not_negative"}
    ),
    case("orphan_supplier", "receipts", {"supplier_id": "S-404"}, rules={"supplier_exists"}),
    case(
        "future_receipt",
        "receipts",
        {"received_date": D(2027, 10, 28)},
        rules={"received_date_not_future"},
    ),
    # inspections
    case(
        "defective_above_inspected",
        "inspections",
        {"qty_inspected": 5, "qty_defective": 7, "result": "fail"},
        rules={"defective_not_above_inspected"},
    ),
    case(
        "pass_with_defects_warns",
        "inspections",
        {"qty_defective": 2, "result": "pass"},
        rules={"defects_mean_fail"},
        quarantined=False,
    ),
    case("unknown_stage", "inspections", {"stage": "packing"}, rules={"stage_known"}),
    case("zero_inspected", "inspections", {"qty_inspected": 0}, rules={"qty_inspected_positive"}),
    # objectives / objective_results
    case("unknown_direction", "objectives", {"direction": "up"}, rules={"direction_known"}),
    case(
        "clause_in_words_warns",
        "objectives",
        {"clause": "Clause 8.4"},
        rules={"clause_format"},
        quarantined=False,
    ),
    case(
        "orphan_objective",
        "objective_results",
        {"objective_id": "O-404"},
        rules={"objective_exists"},
    ),
    case(
        "duplicate_objective_month",
        "objective_results",
        {"objective_id": "O-base-1", "month": "2025-05"},
        {"objective_id": "O-base-1", "month": "2025-05", "actual": 1.0},
        rules={"key_unique"},
    ),
    # capa
    case(
        "capa_due_before_opened",
        "capa",
        {"due_date": D(2026, 9, 1)},
        rules={"due_not_before_opened"},
    ),
    case(
        "capa_verified_while_open_warns",
        "capa",
        {"effectiveness_verified": True},
        rules={"verified_only_when_closed"},
        quarantined=False,
    ),
    case("capa_unknown_source", "capa", {"source": "customer"}, rules={"source_known"}),
    # audit findings
    case("finding_unknown_type", "audit_findings", {"type": "major"}, rules={"type_known"}),
    case(
        "finding_closed_before_audit",
        "audit_findings",
        {"status": "closed", "closed_date": D(2026, 10, 1)},
        rules={"closed_not_before_audit"},
    ),
    # audit programme
    case(
        "planned_audit_performed_after_as_of",
        "audit_programme",
        {"performed_date": D(2026, 12, 1)},
        rules={"performed_date_not_future"},
    ),
    case("planned_audit_without_site", "audit_programme", {"site": None}, rules={"site_required"}),
    # supplier approval history
    case(
        "approval_next_due_before_decision",
        "supplier_approvals",
        {"next_evaluation_due": D(2026, 2, 1)},
        rules={"next_due_after_decision"},
    ),
    case(
        "approval_unknown_status",
        "supplier_approvals",
        {"approval_status": "pending"},
        rules={"approval_status_known"},
    ),
    # open purchase-order lines
    case(
        "open_line_with_nothing_open",
        "open_orders",
        {"qty_open": 0},
        rules={"qty_open_positive"},
    ),
    case(
        "open_line_of_unknown_supplier",
        "open_orders",
        {"supplier_id": "S-404"},
        rules={"supplier_exists"},
    ),
    case(
        "open_line_without_promised_date",
        "open_orders",
        {"promised_date": None},
        rules={"promised_date_required"},
    ),
    case(
        "duplicate_open_line",
        "open_orders",
        {"order_line_id": "PO-dup/10"},
        {"order_line_id": "PO-dup/10", "qty_open": 5},
        rules={"order_line_id_unique"},
    ),
    # new optional columns (issue 16)
    case(
        "on_time_deliveries_above_due",
        "shipments",
        {"deliveries": 3, "deliveries_on_time": 4},
        rules={"on_time_within_deliveries"},
    ),
    case("negative_complaint_cost", "complaints", {"cost": -5.0}, rules={"cost_not_negative"}),
    case(
        "survey_score_below_scale",
        "surveys",
        {"score": 0.0, "scale_min": 1, "scale_max": 5},
        rules={"score_not_below_scale_min"},
    ),
    # review actions
    case(
        "action_due_before_review",
        "review_actions",
        {"due_date": D(2026, 9, 1)},
        rules={"due_not_before_review"},
    ),
    case(
        "action_without_description",
        "review_actions",
        {"description": None},
        rules={"description_required"},
    ),
    # surveys
    case("score_above_scale", "surveys", {"score": 11.0}, rules={"score_within_scale"}),
    case("negative_score", "surveys", {"score": -1.0}, rules={"score_not_negative"}),
    case(
        "zero_scale",
        "surveys",
        {"score": 0.0, "scale_max": 0},
        rules={"scale_max_sensible"},
    ),
)


@dataclass
class Corpus:
    data: dict[str, LoadedDataset]
    rows: dict[str, list[int]] = field(default_factory=dict)
    """case id -> its source rows."""
    report: ValidationReport | None = None
    gx_report: ValidationReport | None = None
    """The same data judged by Great Expectations (``engine="gx"``)."""


def build_corpus() -> Corpus:
    rows: dict[str, list[dict[str, Any]]] = {
        name: [make(f"base-{i}") for i in range(BASE_ROWS)] for name, make in BASE.items()
    }
    where: dict[str, list[int]] = {}
    for c in CORPUS:
        where[c.id] = []
        for j, override in enumerate(c.rows):
            row = {**BASE[c.dataset](f"{c.id}-{j}"), **override}
            rows[c.dataset].append(row)
            where[c.id].append(len(rows[c.dataset]) + 1)  # header is row 1
    data = {name: loaded(name, r) for name, r in rows.items()}
    return Corpus(data, where)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    c = build_corpus()
    c.report = validate(c.data, period=PERIOD, as_of=AS_OF, config=config())
    ledger_ok(c.report)
    c.gx_report = validate(c.data, period=PERIOD, as_of=AS_OF, config=config(), engine="gx")
    assert_engines_agree(c.report, c.gx_report)
    return c


def test_each_rule_says_which_engine_judged_it(corpus: Corpus) -> None:
    """polars judges every rule by default; under gx, GX judges what it can express and
    polars the references across datasets (GX has no such expectation); the reader its own."""
    assert corpus.report is not None
    assert corpus.gx_report is not None
    for report, contract_engine in (
        (corpus.report, "polars"),
        (corpus.gx_report, "great_expectations"),
    ):
        by_source: dict[str, set[str]] = {}
        for d in report.datasets.values():
            for r in d.rules:
                by_source.setdefault(r.source, set()).add(r.engine)
        assert by_source == {"gx": {contract_engine}, "reference": {"polars"}}
        doc = json.loads(report.to_json())
        rule = doc["datasets"]["receipts"]["rules"]
        assert {r["rule_id"]: r["engine"] for r in rule}["supplier_exists"] == "polars"
        assert {r["rule_id"]: r["engine"] for r in rule}["receipt_id_unique"] == contract_engine
    assert corpus.gx_report.engine.startswith("great_expectations 1.")
    compared = len(judged(corpus.report))
    assert compared > 150  # every rule of every dataset, both engines alike


def test_the_corpus_has_at_least_thirty_bad_inputs_over_every_dataset() -> None:
    assert len(CORPUS) + len(READING_CASES) >= 30
    assert {c.dataset for c in CORPUS} == set(DATASETS)


@pytest.mark.parametrize("c", CORPUS, ids=[c.id for c in CORPUS])
def test_corpus_case(corpus: Corpus, c: Case) -> None:
    report = corpus.report
    assert report is not None
    for row in corpus.rows[c.id]:
        assert rules_of(report, c.dataset, row) == set(c.rules), row
        assert is_quarantined(report, c.dataset, row) is c.quarantined, row
        clean_rows = report.clean[c.dataset][SOURCE_ROW].to_list()
        assert (row in clean_rows) is (not c.quarantined)
    for rule in c.rules:
        result = report.datasets[c.dataset].rule(rule)
        assert not result.success
        assert result.unexpected_count >= len(corpus.rows[c.id])


def test_corpus_quarantines_exactly_the_bad_rows_and_keeps_the_rest(corpus: Corpus) -> None:
    report = corpus.report
    assert report is not None
    expected = {(c.dataset, row) for c in CORPUS if c.quarantined for row in corpus.rows[c.id]}
    got = set(report.quarantine.select("dataset", SOURCE_ROW).iter_rows())
    assert got == expected
    flagged = {(c.dataset, row) for c in CORPUS if c.rules for row in corpus.rows[c.id]}
    assert set(report.findings.select("dataset", SOURCE_ROW).iter_rows()) == flagged
    for name, ds in report.datasets.items():
        bad = sum(len(corpus.rows[c.id]) for c in CORPUS if c.dataset == name and c.quarantined)
        assert (ds.rows_in, ds.rows_quarantined) == (corpus.data[name].rows_in, bad)
    # formula and script text stays text in the clean rows
    kept = report.clean["complaints"].filter(pl.col("description") == FORMULA)
    assert kept.height == 1
    assert kept["root_cause"].to_list() == [SCRIPT]


def test_corpus_soundness_exit_codes_and_summary(corpus: Corpus) -> None:
    report = corpus.report
    assert report is not None
    # every dataset has an error case except objectives... which has one too
    assert report.unsound_datasets == frozenset(DATASETS)
    assert not report.sound("complaints")
    with pytest.raises(QmsKpiError, match="did you mean 'complaints'"):
        report.sound("complaint")
    assert report.exit_code(strict=False) == 2
    rows = {r[0]: r for r in report.summary_rows()}
    assert rows["complaints"][1:4] == (
        report.datasets["complaints"].rows_in,
        report.datasets["complaints"].rows_used,
        report.datasets["complaints"].rows_quarantined,
    )
    assert rows["complaints"][5] == 1  # capa_exists warned
    sample = report.datasets["complaints"].rule("severity_known").sample_values
    assert sample == ("urgent",)
    pair = report.datasets["complaints"].rule("closed_not_before_received").sample_values
    assert pair == ("closed_date=2026-10-02; received_date=2026-10-20",)


def test_row_masks_agree_with_gx_complete_unexpected_rows(corpus: Corpus) -> None:
    """(b) polars row masks == (a) GX COMPLETE unexpected index lists, rule by rule."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    report = corpus.report
    assert report is not None
    suites = contracts.build_suites(period=PERIOD, as_of=AS_OF, config=config())
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("check")
    compared = 0
    for name in ("complaints", "shipments", "receipts", "inspections", "capa"):
        frame = corpus.data[name].frame
        if name == "shipments":
            first = (pl.col("month") + "-01").str.to_date("%Y-%m-%d", strict=False)
            frame = frame.with_columns(
                first.alias("month__first_day"), first.dt.month_end().alias("month__last_day")
            )
        bd = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
        suite = ctx.suites.add(suites[name])
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=bd, suite=suite)
        )
        res = vd.run(
            batch_parameters={"dataframe": frame.to_pandas()},
            result_format={
                "result_format": "COMPLETE",
                "unexpected_index_column_names": [SOURCE_ROW],
            },
        )
        for r in res.results:
            rule_id = r.expectation_config.meta["rule_id"]
            index_list = r.result.get("unexpected_index_list")
            if index_list is None:
                continue
            gx_rows = {int(item[SOURCE_ROW]) for item in index_list}
            ours = report.findings.filter(
                (pl.col("dataset") == name) & (pl.col("rule") == rule_id)
            )[SOURCE_ROW].to_list()
            assert gx_rows == set(ours), (name, rule_id)
            assert (
                r.result["unexpected_count"] == report.datasets[name].rule(rule_id).unexpected_count
            )
            compared += 1
    assert compared > 40


def test_results_are_json_serialisable_and_deterministic(corpus: Corpus) -> None:
    report = corpus.report
    assert report is not None
    again = validate(corpus.data, period=PERIOD, as_of=AS_OF, config=config())
    assert again.to_json() == report.to_json()
    assert again.quarantine.equals(report.quarantine)
    doc = json.loads(report.to_json())
    assert doc["period"] == PERIOD
    assert doc["as_of"] == "2026-11-05"
    assert doc["engine"] == f"polars {pl.__version__}"
    assert "run_id" not in report.to_json()
    assert "run_time" not in report.to_json()
    assert doc["datasets"]["receipts"]["rows_quarantined"] == 5


# --------------------------------------------------------------------------- reading cases


def write_csv(path: Path, header: str, *rows: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    return path


COMPLAINT_HEADER = "complaint_id,received_date,closed_date,site,customer,product,category,severity,status,description"


def complaint_line(
    cid: str, received: str, *, closed: str = "", status: str = "open", **kw: str
) -> str:
    values = {
        "site": "North",
        "customer": "ACME",
        "product": "P1",
        "category": "quality",
        "severity": "minor",
        "description": "ok",
        **kw,
    }
    cells = [cid, received, closed, values["site"], values["customer"], values["product"]]
    cells += [values["category"], values["severity"], status, values["description"]]
    return ",".join(cells)


def load_and_validate(
    tmp_path: Path, dataset: str, source: dict[str, Any], **extra: LoadedDataset
) -> tuple[LoadedDataset, ValidationReport]:
    cfg = config({dataset: source}, base=tmp_path)
    ld = load_dataset(cfg, dataset)
    report = run({dataset: ld, **extra}, config=cfg)
    return ld, report


READING_CASES = (
    "unparseable_date",
    "mixed_date_formats",
    "day_month_swapped",
    "wrong_type_quantity",
    "bom_file",
    "cp1252_file",
    "empty_file",
    "header_only_file",
    "excel_title_block",
    "truncated_parquet",
    "formula_strings_in_csv",
    "hand_built_wrong_dtype",
    "glob_of_files",
)


def test_unparseable_and_mixed_dates_are_quarantined_under_the_reader_rule(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "complaints.csv",
        COMPLAINT_HEADER,
        complaint_line("C1", "03/10/2026"),
        complaint_line("C2", "31/02/2026"),  # no 31 February
        complaint_line("C3", "2026-10-04"),  # ISO among day-first dates
        complaint_line("C4", "yesterday"),
        complaint_line("C5", "04/10/2026", closed="05/10/2026", status="closed"),
    )
    fmt = {"received_date": "%d/%m/%Y", "closed_date": "%d/%m/%Y"}
    _ld, report = load_and_validate(
        tmp_path, "complaints", {"path": "complaints.csv", "date_formats": fmt}
    )
    q = report.quarantine
    assert q.select(SOURCE_ROW, "rule", "column", "value").rows() == [
        (3, "type:received_date", "received_date", "31/02/2026"),
        (4, "type:received_date", "received_date", "2026-10-04"),
        (5, "type:received_date", "received_date", "yesterday"),
    ]
    assert set(q["severity"]) == {"error"}
    assert set(q["file"]) == {"complaints.csv"}
    d = report.datasets["complaints"]
    assert (d.rows_in, d.rows_used, d.rows_quarantined) == (5, 2, 3)
    rule = d.rule("type:received_date")
    assert (rule.source, rule.engine, rule.severity, rule.success, rule.unexpected_count) == (
        "reader",
        "reader",
        "error",
        False,
        3,
    )
    assert rule.sample_values == ("31/02/2026", "2026-10-04", "yesterday")
    assert report.clean["complaints"]["complaint_id"].to_list() == ["C1", "C5"]
    assert not report.sound("complaints")


def test_day_and_month_swapped(tmp_path: Path) -> None:
    """A day-first export read with a month-first format: what can and cannot be caught."""
    write_csv(
        tmp_path / "complaints.csv",
        COMPLAINT_HEADER,
        complaint_line("C1", "25/10/2026"),  # month 25: unreadable
        complaint_line("C2", "12/03/2026"),  # 12 March read as 3 December: after the as-of date
        complaint_line("C3", "02/10/2026"),  # 2 October read as 10 February: plausible, kept
    )
    source = {"path": "complaints.csv", "date_formats": {"received_date": "%m/%d/%Y"}}
    _, report = load_and_validate(tmp_path, "complaints", source)
    assert report.quarantine.select(SOURCE_ROW, "rule").rows() == [
        (2, "type:received_date"),
        (3, "received_date_not_future"),
    ]
    assert report.clean["complaints"]["received_date"].to_list() == [date(2026, 2, 10)]


def test_wrong_type_quantity_and_negative_text(tmp_path: Path) -> None:
    header = "receipt_id,supplier_id,site,promised_date,received_date,qty_received,qty_rejected"
    write_csv(
        tmp_path / "receipts.csv",
        header,
        "R1,S-base-0,North,2026-10-27,2026-10-28,ten,0",
        "R2,S-base-0,North,2026-10-27,2026-10-28,-4,0",
        "R3,S-base-0,North,2026-10-27,2026-10-28,12.5,0",
        "R4,S-base-0,North,2026-10-27,2026-10-28,40,2",
    )
    suppliers = loaded("suppliers", [supplier("base-0")])
    _, report = load_and_validate(
        tmp_path, "receipts", {"path": "receipts.csv"}, suppliers=suppliers
    )
    assert report.quarantine.filter(pl.col("dataset") == "receipts").select(
        SOURCE_ROW, "rule", "value"
    ).rows() == [
        (2, "type:qty_received", "ten"),
        (3, "qty_received_positive", "-4"),
        (3, "rejected_not_above_received", "qty_rejected=0; qty_received=-4"),
        (4, "type:qty_received", "12.5"),
    ]
    assert report.clean["receipts"]["receipt_id"].to_list() == ["R4"]


@pytest.mark.parametrize(
    ("encoding", "error"),
    [("utf-8", HeaderError), ("utf-8-sig", None)],
    ids=["bom_read_as_utf8", "bom_read_as_utf8_sig"],
)
def test_bom_file(tmp_path: Path, encoding: str, error: type[Exception] | None) -> None:
    path = tmp_path / "complaints.csv"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + f"{COMPLAINT_HEADER}\n{complaint_line('C1', '2026-10-20', customer='Müller')}\n".encode()
    )
    source = {"path": "complaints.csv", "encoding": encoding}
    if error is not None:
        with pytest.raises(error, match="utf-8-sig"):
            load_and_validate(tmp_path, "complaints", source)
        return
    _, report = load_and_validate(tmp_path, "complaints", source)
    assert report.clean["complaints"]["customer"].to_list() == ["Müller"]
    assert report.quarantine.is_empty()


def test_cp1252_file(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "complaints.csv",
        COMPLAINT_HEADER,
        complaint_line("C1", "2026-10-20", customer="Müller", description="±0.5 mm"),
        encoding="cp1252",
    )
    with pytest.raises(SourceError, match="cp1252"):
        load_and_validate(tmp_path, "complaints", {"path": "complaints.csv"})
    _, report = load_and_validate(
        tmp_path, "complaints", {"path": "complaints.csv", "encoding": "cp1252"}
    )
    assert report.clean["complaints"]["customer"].to_list() == ["Müller"]
    assert report.datasets["complaints"].sound


def test_empty_file_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "complaints.csv").write_bytes(b"")
    with pytest.raises(SourceError, match="empty file"):
        load_and_validate(tmp_path, "complaints", {"path": "complaints.csv"})


def test_header_only_file_is_zero_rows_with_a_freshness_warning(tmp_path: Path) -> None:
    write_csv(tmp_path / "complaints.csv", COMPLAINT_HEADER)
    _, report = load_and_validate(tmp_path, "complaints", {"path": "complaints.csv"})
    d = report.datasets["complaints"]
    assert (d.rows_in, d.rows_used, d.rows_quarantined) == (0, 0, 0)
    fresh = d.rule("received_fresh")
    assert (fresh.success, fresh.severity) == (False, "warn")
    assert fresh.observed == "newest received_date none (no rows); needs 2026-09-16 or later"
    assert d.sound
    assert report.exit_code(strict=False) == 0
    assert report.exit_code(strict=True) == 1


def test_excel_sheet_with_a_title_block(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Complaints"
    ws.append(["Complaints register - Acme Components Ltd"])
    ws.append(["Exported 2026-11-04"])
    ws.append([])
    ws.append(COMPLAINT_HEADER.split(","))
    ws.append(
        ["C1", date(2026, 10, 20), None, "North", "ACME", "P1", "quality", "minor", "open", "ok"]
    )
    ws.append(
        ["C2", date(2026, 10, 21), None, "North", "ACME", "P1", "quality", "urgent", "open", "ok"]
    )
    ws.append(["C3", "not a date", None, "North", "ACME", "P1", "quality", "minor", "open", "ok"])
    wb.save(tmp_path / "complaints.xlsx")
    source = {"path": "complaints.xlsx", "sheet": "Complaints", "header_row": 4}
    _, report = load_and_validate(tmp_path, "complaints", source)
    assert report.quarantine.select(SOURCE_ROW, "rule").rows() == [
        (6, "severity_known"),
        (7, "type:received_date"),
    ]
    assert report.clean["complaints"].select("complaint_id", SOURCE_ROW).rows() == [("C1", 5)]


def test_truncated_parquet_is_a_source_error(tmp_path: Path) -> None:
    frame = build_corpus().data["complaints"].frame.drop(SOURCE_ROW)
    frame.write_parquet(tmp_path / "full.parquet")
    data = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "complaints.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="Parquet"):
        load_and_validate(tmp_path, "complaints", {"path": "complaints.parquet"})
    (tmp_path / "complaints.parquet").write_bytes(data)
    ld, report = load_and_validate(tmp_path, "complaints", {"path": "complaints.parquet"})
    assert report.datasets["complaints"].rows_in == frame.height == ld.rows_in


def test_formula_strings_stay_text_and_the_quarantine_csv_neutralises_them(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "complaints.csv",
        COMPLAINT_HEADER,
        complaint_line("C1", "2026-10-20", description='"=HYPERLINK(""http://evil"",""x"")"'),
        complaint_line("C2", "2026-10-20", severity="=1+2"),
        complaint_line("C3", "2026-10-20", severity="+cmd"),
        complaint_line("C4", "2026-10-20", severity="@SUM(A1)"),
        complaint_line("C5", "2026-10-20", customer="-2+3", severity="-major"),
        complaint_line("C6", "2026-10-20", severity='"\tmajor"'),
        complaint_line("C7", "2026-10-20", description=SCRIPT),
    )
    _, report = load_and_validate(tmp_path, "complaints", {"path": "complaints.csv"})
    clean = report.clean["complaints"]
    # sources trims values, so the tab before "major" (C6) is gone and the row is fine
    assert clean["complaint_id"].to_list() == ["C1", "C6", "C7"]
    assert clean["description"].to_list() == ['=HYPERLINK("http://evil","x")', "ok", SCRIPT]
    assert set(report.quarantine["rule"]) == {"severity_known"}
    out = contracts.write_quarantine_csv(report, tmp_path / "out" / "quarantine.csv")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["value"] for r in rows] == ["'=1+2", "'+cmd", "'@SUM(A1)", "'-major"]
    assert list(rows[0]) == list(contracts.QUARANTINE_SCHEMA)
    assert all(not v.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for v in r.values())
    # sources trims the tab; a tab or CR kept in a value is neutralised too
    assert contracts_report._neutralise("\tx") == "'\tx"
    assert contracts_report._neutralise("\rx") == "'\rx"
    assert contracts_report._neutralise(-1) == -1
    assert contracts_report._neutralise("a=b") == "a=b"


def test_a_glob_of_files_keeps_rows_apart_though_source_rows_repeat(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    write_csv(
        tmp_path / "in" / "a.csv",
        COMPLAINT_HEADER,
        complaint_line("A1", "2026-10-20"),
        complaint_line("A2", "20/10/2026"),
    )
    write_csv(
        tmp_path / "in" / "b.csv",
        COMPLAINT_HEADER,
        complaint_line("B1", "2026-10-21", severity="urgent"),
        complaint_line("B2", "2026-10-22"),
    )
    _, report = load_and_validate(tmp_path, "complaints", {"path": "in/*.csv"})
    q = report.quarantine.select("file", SOURCE_ROW, "rule").rows()
    assert q == [("in/a.csv", 3, "type:received_date"), ("in/b.csv", 2, "severity_known")]
    assert report.clean["complaints"]["complaint_id"].to_list() == ["A1", "B2"]
    d = report.datasets["complaints"]
    assert (d.rows_in, d.rows_used, d.rows_quarantined) == (4, 2, 2)


def test_hand_built_frame_with_wrong_dtype_is_cast_and_bad_values_quarantined() -> None:
    rows = [complaint("1"), complaint("2"), complaint("3")]
    frame = pl.DataFrame(rows, schema=DATASETS["complaints"].schema, orient="row").with_columns(
        pl.Series("received_date", ["2026-10-20", "20/10/2026", None]),
        pl.Series("units_affected", ["1", "x", "2"]),
    )
    ld = LoadedDataset("complaints", frame, pl.DataFrame(schema=REJECT_SCHEMA), "notebook", "", 3)
    report = run({"complaints": ld})
    assert report.quarantine.select(SOURCE_ROW, "rule", "value").rows() == [
        (3, "type:received_date", "20/10/2026"),
        (3, "type:units_affected", "x"),
        (4, "received_date_required", ""),
    ]
    assert dict(report.clean["complaints"].schema) == {
        **DATASETS["complaints"].schema,
        SOURCE_ROW: pl.Int64(),
    }


# --------------------------------------------------------------------------- structure


def test_missing_column_gives_a_clean_failed_rule() -> None:
    ld = build_corpus().data["complaints"]
    frame = ld.frame.drop("closed_date")
    report = run(
        {"complaints": LoadedDataset("complaints", frame, ld.rejects, "x.csv", "", ld.rows_in)}
    )
    d = report.datasets["complaints"]
    present = d.rule("columns_present")
    assert not present.success
    assert present.observed == "missing: closed_date"
    for rid in ("closed_date_not_future", "closed_not_before_received", "closed_has_date"):
        r = d.rule(rid)
        assert (r.success, r.checked) == (False, False), rid
        assert r.observed == "not checked: column 'closed_date' is missing"
    assert "closed_date" in report.clean["complaints"].columns
    assert report.clean["complaints"]["closed_date"].null_count() == d.rows_used
    assert not report.sound("complaints")


def test_gx_exception_info_in_both_shapes() -> None:
    flat = {"raised_exception": True, "exception_message": "boom", "exception_traceback": "..."}
    keyed = {
        "MetricConfigurationID(metric_name='column_values.nonnull.condition', ...)": {
            "raised_exception": True,
            "exception_message": 'Error: The column "x" in BatchData does not exist.',
        },
        "MetricConfigurationID(metric_name='table.row_count', ...)": {"raised_exception": False},
    }
    assert contracts_gx.gx_exception(flat) == "boom"
    assert contracts_gx.gx_exception(keyed) == 'Error: The column "x" in BatchData does not exist.'
    assert contracts_gx.gx_exception({"raised_exception": False, "exception_message": None}) is None
    assert contracts_gx.gx_exception({}) is None


def test_missing_configured_dataset_is_unsound() -> None:
    c = build_corpus()
    data = {k: v for k, v in c.data.items() if k in ("suppliers", "receipts")}
    report = run(
        data,
        config=config(
            {
                "suppliers": {"path": "s.csv"},
                "receipts": {"path": "r.csv"},
                "capa": {"path": "c.csv"},
            }
        ),
    )
    assert set(report.datasets) == {"suppliers", "receipts", "capa"}
    capa = report.datasets["capa"]
    assert (capa.loaded, capa.rows_in, capa.rule("dataset_present").success) == (False, 0, False)
    assert "capa" in report.unsound_datasets
    assert "capa" not in report.clean
    assert not report.sound("capa")
    assert not report.sound("surveys")


def test_reference_to_a_dataset_not_supplied_is_skipped_not_failed() -> None:
    data = {"receipts": loaded("receipts", [receipt("1")])}
    report = run(data)
    r = report.datasets["receipts"].rule("supplier_exists")
    assert (r.success, r.checked, r.source) == (True, False, "reference")
    site = report.datasets["receipts"].rule("site_known")
    assert (site.success, site.checked) == (True, False)  # no config: no sites to check against


def test_a_reference_matches_only_rows_the_other_dataset_uses() -> None:
    # S-1 breaks approval_status_known, O-1 direction_known, CA-1 status_known:
    # each is quarantined, so the rows naming it fail the reference rule.
    data = {
        "suppliers": loaded(
            "suppliers", [supplier("0"), supplier("1") | {"approval_status": "bogus"}]
        ),
        "receipts": loaded(
            "receipts",
            [
                receipt("1") | {"supplier_id": "S-0"},
                receipt("2") | {"supplier_id": "S-1"},
                receipt("3") | {"supplier_id": "S-9"},
            ],
        ),
        "objectives": loaded(
            "objectives", [objective("0"), objective("1") | {"direction": "sideways"}]
        ),
        "objective_results": loaded(
            "objective_results",
            [
                objective_result("base-1") | {"objective_id": "O-0"},
                objective_result("base-2") | {"objective_id": "O-1"},
            ],
        ),
        "capa": loaded("capa", [capa("0"), capa("1") | {"status": "weird"}]),
        "complaints": loaded(
            "complaints",
            [complaint("1") | {"capa_id": "CA-0"}, complaint("2") | {"capa_id": "CA-1"}],
        ),
    }
    report = run(data)
    summary = {n: (d.rows_in, d.rows_used, d.rows_quarantined) for n, d in report.datasets.items()}
    assert summary == {
        "complaints": (2, 2, 0),  # capa_exists is a warning: the complaint still counts
        "suppliers": (2, 1, 1),
        "receipts": (3, 1, 2),
        "objectives": (2, 1, 1),
        "objective_results": (2, 1, 1),
        "capa": (2, 1, 1),
    }
    assert rules_of(report, "receipts", 2) == set()
    assert rules_of(report, "receipts", 3) == {"supplier_exists"}
    assert rules_of(report, "receipts", 4) == {"supplier_exists"}
    assert is_quarantined(report, "receipts", 3)
    assert is_quarantined(report, "receipts", 4)
    assert rules_of(report, "objective_results", 3) == {"objective_exists"}
    assert is_quarantined(report, "objective_results", 3)
    assert rules_of(report, "complaints", 3) == {"capa_exists"}
    assert not is_quarantined(report, "complaints", 3)
    assert report.datasets["receipts"].rule("supplier_exists").unexpected_count == 2
    assert report.clean["receipts"]["receipt_id"].to_list() == ["R-1"]
    messages = dict(
        report.findings.filter(pl.col("rule") == "supplier_exists")
        .select(SOURCE_ROW, "message")
        .iter_rows()
    )
    assert messages[3].endswith(
        "(suppliers.supplier_id 'S-1' is only on suppliers rows that were quarantined)"
    )
    assert messages[4].endswith("(suppliers.supplier_id 'S-9' is missing from suppliers)")
    assert messages[4].startswith("The supplier is on the approved supplier list.")


def test_references_in_a_cycle_are_judged_until_nothing_changes(tmp_path: Path) -> None:
    # A contract where every supplier must have a receipt: suppliers <-> receipts.
    folder = mutate(
        tmp_path,
        "suppliers",
        "  - id: next_evaluation_after_last",
        "  - id: has_receipt\n"
        "    description: The supplier has a receipt.\n"
        "    check: reference\n"
        "    field: supplier_id\n"
        "    in: receipts.supplier_id\n"
        "    severity: error\n\n"
        "  - id: next_evaluation_after_last",
    )
    data = {
        "suppliers": loaded(
            "suppliers",
            [supplier("A") | {"approval_status": "bogus"}, supplier("B"), supplier("C")],
        ),
        "receipts": loaded(
            "receipts",
            [
                receipt("1") | {"supplier_id": "S-A"},  # its supplier is quarantined
                receipt("2") | {"supplier_id": "S-B"},
                receipt("3") | {"supplier_id": "S-C", "qty_rejected": 101},  # quarantined
            ],
        ),
    }
    report = run(data, contracts_dir=folder)
    # S-A is quarantined, so its receipt (row 2) is, so S-A has no used receipt
    # either. S-C's only receipt (row 4) is quarantined, so S-C has no receipt
    # and is quarantined; then row 4 also names a supplier that is not used.
    assert rules_of(report, "suppliers", 2) == {"approval_status_known", "has_receipt"}
    assert rules_of(report, "suppliers", 3) == set()
    assert rules_of(report, "suppliers", 4) == {"has_receipt"}
    assert rules_of(report, "receipts", 2) == {"supplier_exists"}
    assert rules_of(report, "receipts", 3) == set()
    assert rules_of(report, "receipts", 4) == {"rejected_not_above_received", "supplier_exists"}
    assert report.clean["suppliers"]["supplier_id"].to_list() == ["S-B"]
    assert report.clean["receipts"]["receipt_id"].to_list() == ["R-2"]
    assert report.datasets["suppliers"].rows_quarantined == 2
    assert report.datasets["receipts"].rows_quarantined == 2


def test_mostly_passes_the_rule_but_still_quarantines_failing_rows(tmp_path: Path) -> None:
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, folder)
    text = (folder / "receipts.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    expression: qty_rejected <= qty_received\n    severity: error\n",
        "    expression: qty_rejected <= qty_received\n    severity: error\n    mostly: 0.9\n",
    )
    (folder / "receipts.yaml").write_text(text, encoding="utf-8")
    rows = [receipt(str(i)) for i in range(10)]
    rows[4]["qty_rejected"] = 101
    data = {
        "receipts": loaded("receipts", rows),
        "suppliers": loaded("suppliers", [supplier("base-0")]),
    }
    report = run(data, contracts_dir=folder)
    rule = report.datasets["receipts"].rule("rejected_not_above_received")
    assert (rule.success, rule.unexpected_count, rule.unexpected_share, rule.mostly) == (
        True,
        1,
        0.1,
        0.9,
    )
    assert report.quarantine.select(SOURCE_ROW, "rule").rows() == [
        (6, "rejected_not_above_received")
    ]
    assert report.datasets["receipts"].sound
    assert report.exit_code() == 0


def test_warning_only_exit_codes() -> None:
    rows = [inspection("1"), {**inspection("2"), "qty_defective": 1}]
    report = run({"inspections": loaded("inspections", rows)})
    assert report.unsound_datasets == frozenset()
    assert report.quarantine.is_empty()
    assert report.findings.height == 1
    assert (report.exit_code(strict=False), report.exit_code(strict=True)) == (0, 1)


@settings(max_examples=8, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-2, 6)),
            st.one_of(st.none(), st.integers(-2, 8)),
            st.sampled_from(["S-base-0", "S-404", None]),
        ),
        min_size=0,
        max_size=25,
    )
)
def test_ledger_always_balances_and_quarantine_is_exactly_the_broken_rows(
    rows: list[tuple[int | None, int | None, str | None]],
) -> None:
    records = [
        {**receipt(str(i)), "qty_received": rec, "qty_rejected": rej, "supplier_id": sup}
        for i, (rec, rej, sup) in enumerate(rows)
    ]
    data = {
        "receipts": loaded("receipts", records),
        "suppliers": loaded("suppliers", [supplier("base-0")]),
    }
    report = run(data)
    expected = {
        i + 2
        for i, (rec, rej, sup) in enumerate(rows)
        if rec is None
        or rej is None
        or sup is None
        or rec < 1
        or rej < 0
        or rej > rec
        or sup == "S-404"
    }
    got = set(report.quarantine.filter(pl.col("dataset") == "receipts")[SOURCE_ROW].to_list())
    assert got == expected


# --------------------------------------------------------------------------- contracts


def test_shipped_contracts_cover_every_dataset_and_field() -> None:
    loaded_contracts = contracts.load_contracts()
    assert list(loaded_contracts) == list(DATASETS)
    for name, c in loaded_contracts.items():
        assert [f.name for f in c.fields] == list(DATASETS[name].field_names)
        assert all(r.description for r in c.rules)
        assert {r.severity for r in c.rules} <= {"error", "warn"}
    # the packaged folder (a symlink in the source tree) is what validate reads
    assert (contracts.contracts_root() / "complaints.yaml").is_file()


def test_suites_compile_one_per_dataset_and_round_trip_as_json() -> None:
    import great_expectations as gx

    suites = contracts.build_suites(period=PERIOD, as_of=AS_OF, config=config())
    assert list(suites) == list(DATASETS)
    d = suites["complaints"].to_json_dict()
    again = gx.ExpectationSuite(**d)
    assert len(again.expectations) == len(suites["complaints"].expectations)
    kinds = {e["type"] for e in d["expectations"]}
    assert "expect_column_pair_values_a_to_be_greater_than_b" in kinds
    metas = [e["meta"]["rule_id"] for e in d["expectations"]]
    assert "closed_has_date" in metas
    assert "capa_exists" not in metas


def test_export_writes_every_suite_as_gx_json_and_names_what_gx_cannot_express(
    tmp_path: Path,
) -> None:
    import great_expectations as gx

    no_sites = from_dict({"organisation": {"name": "T"}, "sources": {"receipts": {"path": "r"}}})
    suites = contracts.build_suites(period=PERIOD, as_of=AS_OF, config=no_sites)
    paths = contracts.export_suites(tmp_path / "a", suites)
    assert [p.name for p in paths] == [f"{name}.json" for name in DATASETS]
    again = contracts.export_suites(
        tmp_path / "b", contracts.build_suites(period=PERIOD, as_of=AS_OF, config=no_sites)
    )
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    doc = json.loads((tmp_path / "a" / "receipts.json").read_text(encoding="utf-8"))
    suite = gx.ExpectationSuite(**doc)
    rules = contracts.load_contracts()["receipts"].rules
    in_suite = [e.meta["rule_id"] for e in suite.expectations]
    missing = {m["rule_id"] for m in doc["meta"]["qmskpi"]["not_expressed"]}
    # every rule is either an expectation or named as not expressed, never both, never neither
    assert set(in_suite) | missing == {r.id for r in rules} | {"columns_present"}
    assert not set(in_suite) & missing
    assert missing == {"supplier_exists", "site_known"}  # a reference; no sites configured
    assert doc["meta"]["qmskpi"]["as_of"] == "2026-11-05"
    assert doc["meta"]["qmskpi"]["contract_sha256"] == contracts.load_contracts()["receipts"].sha256


def test_a_unique_key_is_judged_alike_with_and_without_the_hash_shortcut() -> None:
    from qmskpi.contracts.rules import mask_expr
    from qmskpi.contracts.schema import Run
    from qmskpi.periods import parse_period

    the_run = Run(parse_period(PERIOD), AS_OF, tuple(SITES), 45)
    frames = {
        "distinct": pl.DataFrame({"a": ["x", "y", None, None], "b": [1, 1, 2, None]}),
        "duplicated": pl.DataFrame({"a": ["x", "y", "x", None], "b": [1, 1, 1, None]}),
    }
    contract = contracts.load_contracts()["shipments"]
    single = contracts.Rule("u", "u", "error", "unique", ("a",))
    pair = contracts.Rule("u2", "u2", "error", "unique", ("a", "b"))
    expected = {
        ("distinct", "u"): [False] * 4,
        ("distinct", "u2"): [False] * 4,
        ("duplicated", "u"): [True, False, True, False],
        ("duplicated", "u2"): [True, False, True, False],
    }
    for (kind, rule_id), want in expected.items():
        rule = single if rule_id == "u" else pair
        frame = frames[kind]
        exact = mask_expr(rule, contract, the_run)
        short = mask_expr(rule, contract, the_run, frame)
        assert exact is not None
        assert short is not None
        assert frame.select(exact.alias("m"))["m"].to_list() == want, (kind, rule_id)
        assert frame.select(short.alias("m"))["m"].to_list() == want, (kind, rule_id)


def test_the_engine_comes_from_the_config_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    data = complaints_with_blank_customers(4, 1)
    report = validate(
        data, period=PERIOD, as_of=AS_OF, config=config_with(tmp_path, {"engine": "gx"})
    )
    assert report.engine.startswith("great_expectations 1.")
    assert report.datasets["complaints"].rule("customer_required").engine == "great_expectations"
    override = validate(
        data,
        period=PERIOD,
        as_of=AS_OF,
        config=config_with(tmp_path, {"engine": "gx"}),
        engine="polars",
    )
    assert override.engine == f"polars {pl.__version__}"
    with pytest.raises(QmsKpiError, match="unknown validation engine 'pandas'"):
        validate(data, period=PERIOD, as_of=AS_OF, engine="pandas")  # type: ignore[arg-type]


def test_a_count_another_engine_disagrees_on_stops_the_run() -> None:
    from qmskpi.contracts.judge import judge_all
    from qmskpi.contracts.prepare import prepare
    from qmskpi.contracts.rules import Counted
    from qmskpi.contracts.schema import Run
    from qmskpi.periods import parse_period

    data = complaints_with_blank_customers(4, 1)
    contract = contracts.load_contracts()["complaints"]
    prep = {"complaints": prepare("complaints", data["complaints"], contract)}
    the_run = Run(parse_period(PERIOD), AS_OF, tuple(SITES), 45)
    ok = Counted(True, 0, 0.0, None, None, "sql")
    counted = {"complaints": {r.id: ok for r in contract.rules} | {"columns_present": ok}}
    fresh = Counted(True, None, 0.0, None, None, "sql")
    counted["complaints"]["received_fresh"] = fresh
    with pytest.raises(
        QmsKpiError, match="'customer_required': sql counted 0 failing rows, qmskpi's row mask 1"
    ):
        judge_all(prep, the_run, counted)


def mutate(tmp_path: Path, name: str, old: str, new: str) -> Path:
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, folder)
    path = folder / f"{name}.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    field: complaint_id\n    severity: error\n",
            "    field: complaint_id\n    severty: error\n",
            r"complaints\.yaml: key 'rules\[0\] \(complaint_id_required\)\.severty': unknown key \(did you mean 'severity'\?\)",
        ),
        (
            "    field: complaint_id\n    severity: error\n",
            "    field: complaint_id\n    severity: critical\n",
            r"key 'rules\[0\] \(complaint_id_required\)\.severity': must be error or warn",
        ),
        (
            "    field: customer\n",
            "    field: custmer\n",
            r"key 'rules\[4\] \(customer_required\)\.field': dataset 'complaints' has no field 'custmer' \(did you mean 'customer'\?\)",
        ),
        (
            "    values: [open, closed]\n",
            "    values: [yes, no]\n",
            r"key 'rules\[11\] \(status_known\)\.values': True was read as a yes/no value",
        ),
        (
            "  - id: customer_required\n    description: Every complaint names the customer.\n    check: required\n    field: customer\n    severity: error\n",
            "",
            r"key 'rules': no 'required' rule \(without 'when'\) for customer",
        ),
        (
            "    check: compare\n",
            "    check: comparison\n",
            r"unknown check 'comparison' \(did you mean 'compare'\?\)",
        ),
        (
            "    expression: closed_date >= received_date\n",
            "    expression: closed_date >= site\n",
            r"compares closed_date \(date\) with site \(text\)",
        ),
        (
            "  units_affected:\n    type: integer\n",
            "  units_affected:\n    type: number\n",
            r"key 'fields\.units_affected\.type': is integer",
        ),
        ("    min: 0\n", "    min: zero\n", r"\.min': must be a number, got 'zero'"),
        ("    when: status = closed\n", "    when: status closed\n", r"\.when': must read"),
        (
            "    in: capa.capa_id\n",
            "    in: capas.capa_id\n",
            r"\.in': must read '<dataset>\.<field>'",
        ),
    ],
    ids=[
        "misspelt_key",
        "bad_severity",
        "unknown_field",
        "unquoted_yes_no",
        "required_rule_removed",
        "unknown_check",
        "date_compared_with_text",
        "type_differs_from_canonical",
        "bound_not_a_number",
        "bad_condition",
        "bad_reference",
    ],
)
def test_contract_errors_name_file_and_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    folder = mutate(tmp_path, "complaints", old, new)
    with pytest.raises(ContractError, match=message):
        contracts.load_contracts(folder)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    check: compare\n",
            "    chekc: compare\n",
            r"key 'rules\[\d+\] \(closed_not_before_received\)\.chekc': unknown key "
            r"\(did you mean 'check'\?\)",
        ),
        (
            "    in: capa.capa_id\n",
            "    inn: capa.capa_id\n",
            r"key 'rules\[\d+\] \(capa_exists\)\.inn': unknown key \(did you mean 'in'\?\)",
        ),
        (
            "    values: [open, closed]\n",
            "    values: {open: 1}\n",
            r"key 'rules\[11\] \(status_known\)\.values': must be a list or 'sites', got a table",
        ),
        (
            "  units_affected:\n    type: integer\n",
            "  units_affected:\n    typ: integer\n",
            r"key 'fields\.units_affected\.typ': unknown key \(did you mean 'type'\?\)",
        ),
    ],
    ids=["misspelt_check", "misspelt_in", "values_not_a_list", "misspelt_field_key"],
)
def test_contract_schema_errors_name_file_and_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    folder = mutate(tmp_path, "complaints", old, new)
    with pytest.raises(ContractError, match=r"complaints\.yaml: " + message):
        contracts.load_contracts(folder)


def test_contract_json_schema_accepts_every_shipped_contract_and_refuses_a_typo() -> None:
    # jsonschema, a second validator, reads the schema as an editor's YAML server would
    import jsonschema
    import yaml

    from qmskpi.contracts.loader import contract_json_schema

    schema = contract_json_schema()
    for path in sorted(CONTRACTS.glob("*.yaml")):
        data = json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), default=str))
        jsonschema.validate(data, schema)
    rule = dict(data["rules"][0])
    for bad in ({**rule, "severty": "error"}, {**rule, "check": "requird"}, {**rule, "mostly": 0}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**data, "rules": [bad]}, schema)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    folder = mutate(
        tmp_path, "surveys", "  - id: response_id_unique\n", "  - id: [response_id_unique\n"
    )
    with pytest.raises(ContractError, match=r"surveys\.yaml: not valid YAML at line \d+"):
        contracts.load_contracts(folder)


def test_stray_or_missing_contract_files(tmp_path: Path) -> None:
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, folder)
    (folder / "complaint.yaml").write_text("dataset: complaint\n", encoding="utf-8")
    with pytest.raises(
        ContractError,
        match=r"complaint\.yaml: no dataset named 'complaint' \(did you mean 'complaints'\?\)",
    ):
        contracts.load_contracts(folder)
    (folder / "complaint.yaml").unlink()
    (folder / "capa.yaml").unlink()
    with pytest.raises(ContractError, match=r"capa\.yaml: contract for dataset 'capa' not found"):
        contracts.load_contracts(folder)


# --------------------------------------------------------------------------- writers, samples, import


def test_write_validation_json_is_the_deterministic_json(tmp_path: Path, corpus: Corpus) -> None:
    report = corpus.report
    assert report is not None
    path = contracts.write_validation_json(report, tmp_path / "a" / "validation.json")
    assert path.read_text(encoding="utf-8") == report.to_json() + "\n"
    assert not list(path.parent.glob("*.tmp"))


def test_shipped_contracts_pass_the_committed_sample_data(sample_config_path: Path) -> None:
    if not sample_config_path.is_file():
        pytest.skip("sample_data/ not written yet")
    from qmskpi.config import load_config

    cfg = load_config(sample_config_path)
    data = load_all(cfg, period=PERIOD)
    report = run(data, period=PERIOD, config=cfg)
    assert report.unsound_datasets == frozenset()
    assert report.quarantine.is_empty()
    assert set(report.datasets) == set(cfg.sources)


def test_importing_contracts_does_not_import_great_expectations() -> None:
    code = (
        "import sys, qmskpi.contracts as c; "
        "assert 'great_expectations' not in sys.modules, 'GX imported'; "
        "c.load_contracts(); "
        "assert 'great_expectations' not in sys.modules, 'GX imported by load_contracts'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --------------------------------------------------------------------------- contracts from the config


def config_with(tmp_path: Path, contracts: Mapping[str, Any], **kpis: Any) -> Config:
    return from_dict(
        {
            "organisation": {"name": "Test Ltd", "sites": SITES},
            "sources": {"complaints": {"path": "complaints.csv"}},
            "kpis": kpis,
            "contracts": dict(contracts),
        },
        path=tmp_path / "qmskpi.toml",
    )


def complaints_with_blank_customers(n: int, blank: int) -> dict[str, LoadedDataset]:
    rows = [complaint(str(i)) for i in range(n)]
    for r in rows[:blank]:
        r["customer"] = None
    return {"complaints": loaded("complaints", rows)}


def test_contracts_dir_in_the_config_replaces_one_contract_and_falls_back_for_the_rest(
    tmp_path: Path,
) -> None:
    mine = tmp_path / "my_contracts"
    mine.mkdir()
    text = (CONTRACTS / "complaints.yaml").read_text(encoding="utf-8")
    old = "  - id: customer_required\n"
    start = text.index(old)
    block_end = text.index("  - id:", start + len(old))
    block = text[start:block_end]
    assert "severity: error" in block
    (mine / "complaints.yaml").write_text(
        text[:start] + block.replace("severity: error", "severity: warn") + text[block_end:],
        encoding="utf-8",
    )
    cfg = config_with(tmp_path, {"dir": "my_contracts"})
    data = {
        **complaints_with_blank_customers(10, 2),
        "suppliers": loaded("suppliers", [supplier("1")]),
    }
    report = run(data, config=cfg)
    rule = report.datasets["complaints"].rule("customer_required")
    # Your contract: a warning, rows kept.
    assert (rule.severity, rule.success, rule.unexpected_count) == ("warn", False, 2)
    assert report.datasets["complaints"].rows_used == 10
    assert (
        report.datasets["complaints"].contract_sha256
        != contracts.load_contracts()["complaints"].sha256
    )
    # No suppliers.yaml in your folder: the shipped contract judges suppliers.
    assert (
        report.datasets["suppliers"].contract_sha256
        == contracts.load_contracts()["suppliers"].sha256
    )
    # A folder that is not there names the config file and key.
    with pytest.raises(ConfigError, match=r"qmskpi\.toml: key 'contracts\.dir'.*not found"):
        run(data, config=config_with(tmp_path, {"dir": "nowhere"}))
    # A stray file in your folder is refused, as in the shipped folder.
    (mine / "complaint.yaml").write_text("dataset: complaint\n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"complaint\.yaml: no dataset named 'complaint'"):
        run(data, config=cfg)


def test_rule_overrides_in_the_config_change_severity_and_mostly(tmp_path: Path) -> None:
    data = complaints_with_blank_customers(10, 2)
    shipped = run(data)
    assert shipped.datasets["complaints"].rows_quarantined == 2
    warn = run(
        data,
        config=config_with(
            tmp_path, {"complaints": {"customer_required": {"severity": "warning"}}}
        ),
    )
    rule = warn.datasets["complaints"].rule("customer_required")
    assert (rule.severity, rule.success, warn.datasets["complaints"].rows_quarantined) == (
        "warn",
        False,
        0,
    )
    assert warn.exit_code() == 0
    # mostly 0.8: 2 of 10 blank is a share of 0.2 failing, 0.8 passing -> the rule passes,
    # the two rows are still set aside, the dataset is sound.
    mostly = run(
        data, config=config_with(tmp_path, {"complaints": {"customer_required": {"mostly": 0.8}}})
    )
    d = mostly.datasets["complaints"]
    rule = d.rule("customer_required")
    assert (rule.mostly, rule.success, rule.unexpected_share) == (0.8, True, 0.2)
    assert (d.rows_used, d.rows_quarantined, d.sound) == (8, 2, True)
    assert mostly.exit_code() == 0


def test_an_unknown_rule_in_the_config_names_the_file_key_and_a_close_rule(
    tmp_path: Path,
) -> None:
    cfg = config_with(tmp_path, {"complaints": {"customer_requierd": {"severity": "warn"}}})
    with pytest.raises(ConfigError) as err:
        run(complaints_with_blank_customers(3, 0), config=cfg)
    message = str(err.value)
    assert "qmskpi.toml: key 'contracts.complaints.customer_requierd'" in message
    assert "did you mean 'customer_required'" in message


# --------------------------------------------------------------------------- soundness by share


@pytest.mark.parametrize(
    ("blank", "threshold", "sound"),
    [
        (9, None, True),  # 9 of 100 = 9 % <= the default 10 %
        (10, None, True),  # exactly 10 %: not above the threshold
        (11, None, False),  # 11 % > 10 %
        (6, 0.05, False),  # 6 % > a stricter 5 %
        (5, 0.05, True),
        (1, 0.0, False),  # no allowance: any failed error rule
    ],
)
def test_a_dataset_is_unsound_only_above_the_share_set_aside(
    tmp_path: Path, blank: int, threshold: float | None, sound: bool
) -> None:
    kpis = {} if threshold is None else {"max_quarantined_share": threshold}
    report = run(
        complaints_with_blank_customers(100, blank), config=config_with(tmp_path, {}, **kpis)
    )
    d = report.datasets["complaints"]
    assert (d.rows_in, d.rows_used, d.rows_quarantined) == (100, 100 - blank, blank)
    assert d.quarantined_share == blank / 100
    assert d.sound is sound
    assert report.unsound_datasets == (frozenset() if sound else frozenset({"complaints"}))
    assert report.exit_code() == 2  # an error rule failed, whatever the soundness
    expected = (
        f"based on {100 - blank} of 100 complaints ({blank} set aside: blank customer {blank})"
    )
    assert d.based_on() == expected
    assert report.set_aside_notes() == ({"complaints": expected} if sound else {})
    doc = json.loads(report.to_json())["datasets"]["complaints"]
    assert (doc["set_aside"], doc["sound"]) == ({"customer_required": blank}, sound)


def test_the_set_aside_note_lists_every_reason_most_rows_first(tmp_path: Path) -> None:
    rows = [complaint(str(i)) for i in range(200)]
    for r in rows[:3]:
        r["customer"] = None
    rows[3]["site"] = "Mars"
    rows[4]["site"] = "Mars"
    rows[4]["customer"] = None  # one row, two reasons: counted once in the total
    rows[5]["complaint_id"] = rows[6]["complaint_id"]  # both copies break the unique rule
    report = run({"complaints": loaded("complaints", rows)}, config=config_with(tmp_path, {}))
    d = report.datasets["complaints"]
    # Rows 0-2 blank customer, 3 unknown site, 4 both, 5 and 6 duplicate id: 7 rows.
    assert (d.rows_quarantined, d.rows_used) == (7, 193)
    assert d.sound  # 7 / 200 = 3.5 %
    assert d.based_on() == (
        "based on 193 of 200 complaints (7 set aside: blank customer 4, "
        "duplicate complaint_id 2, unknown site 2)"
    )


def test_a_table_level_error_keeps_the_dataset_unsound_whatever_the_share(tmp_path: Path) -> None:
    rows = [complaint(str(i)) for i in range(10)]
    frame = loaded("complaints", rows)
    missing = LoadedDataset(
        dataset="complaints",
        frame=frame.frame.drop("customer"),
        rejects=frame.rejects,
        origin=frame.origin,
        sha256=frame.sha256,
        rows_in=frame.rows_in,
    )
    report = run({"complaints": missing}, config=config_with(tmp_path, {}))
    d = report.datasets["complaints"]
    assert d.rows_quarantined == 0
    assert not d.sound


def test_backfill_leaves_out_records_after_as_of_and_reopens_later_closures() -> None:
    rows = [
        complaint("1"),  # received 20 Oct, open
        {**complaint("2"), "received_date": D(2026, 11, 20)},  # not received yet on 5 Nov
        {**complaint("3"), "status": "closed", "closed_date": D(2026, 11, 10)},  # closed later
        {**complaint("4"), "status": "closed", "closed_date": D(2026, 11, 1)},
    ]
    data = {"complaints": loaded("complaints", rows)}
    current = run(data)
    # source rows: C-1 is row 2, C-2 row 3, C-3 row 4
    assert rules_of(current, "complaints", 3) == {"received_date_not_future"}
    assert rules_of(current, "complaints", 4) == {"closed_date_not_future"}

    back = run(data, backfill=True)
    dv = back.datasets["complaints"]
    assert (dv.rows_in, dv.rows_used, dv.rows_quarantined, dv.rows_excluded) == (4, 3, 0, 1)
    assert dv.excluded_by == {"after_as_of": 1}
    assert back.findings.height == 0
    clean = back.clean["complaints"].sort("complaint_id")
    assert clean["complaint_id"].to_list() == ["C-1", "C-3", "C-4"]
    assert clean["status"].to_list() == ["open", "open", "closed"]
    assert clean["closed_date"].to_list() == [None, None, D(2026, 11, 1)]
    assert dv.to_dict()["excluded_by"] == {"after_as_of": 1}


# --------------------------------------------------------------------------- notebook display


def test_validation_report_repr_is_a_few_counts_not_the_frames(corpus: Corpus) -> None:
    report = corpus.report
    assert report is not None
    ds = report.datasets.values()
    text = repr(report)
    assert len(text) < 400
    assert text.startswith(f"<ValidationReport {PERIOD} as of {AS_OF}: {len(ds)} datasets, ")
    # the counts, summed here from each dataset's own figures
    assert f"{sum(d.rows_in for d in ds):,} rows in" in text
    assert f"{sum(d.rows_used for d in ds):,} used" in text
    assert f"{sum(d.rows_quarantined for d in ds):,} quarantined" in text
    failed = sum(1 for d in ds for r in d.rules if not r.success and r.checked)
    assert f"{failed:,} rules failed" in text
    page = report._repr_html_()
    assert len(page) < 20_000
    assert page.count("<tr><td>") == len(ds)  # one table row per dataset
    for name in report.unsound_datasets:
        assert f"<td>{name}</td>" in page
    assert page.count("<td>NO</td>") == len(report.unsound_datasets)


# --------------------------------------------------------------------------- frames in chunks


def test_a_frame_in_row_group_chunks_is_judged_as_the_same_frame_whole_and_stays_lined_up() -> None:
    # A loaded Parquet frame keeps a chunk per row group. Nine inspections in chunks of
    # 3, 4 and 2 rows: row 5 (second chunk) has more defective than inspected units
    # (quarantined), row 9 (last chunk) is a pass with defects (a warning only).
    rows = [inspection(str(k)) for k in range(1, 10)]
    rows[4] = {**rows[4], "qty_inspected": 5, "qty_defective": 7, "result": "fail"}
    rows[8] = {**rows[8], "qty_defective": 2}
    whole = loaded("inspections", rows)
    chunked = LoadedDataset(
        dataset="inspections",
        frame=pl.concat(
            [whole.frame.slice(0, 3), whole.frame.slice(3, 4), whole.frame.slice(7, 2)],
            rechunk=False,
        ),
        rejects=whole.rejects,
        origin=whole.origin,
        sha256=whole.sha256,
        rows_in=whole.rows_in,
    )
    assert chunked.frame.n_chunks() == 3
    a, b = run({"inspections": chunked}), run({"inspections": whole})
    assert a.quarantine.equals(b.quarantine)
    assert a.findings.equals(b.findings)
    assert a.clean["inspections"].equals(b.clean["inspections"])
    # source row 6 is the fifth inspection (row 1 holds the column names)
    assert a.quarantine.select(SOURCE_ROW, "rule").rows() == [(6, "defective_not_above_inspected")]
    assert a.clean["inspections"]["inspection_id"].to_list() == [
        f"I-{k}" for k in (1, 2, 3, 4, 6, 7, 8, 9)
    ]

    # the prepared frame numbers its rows 0..8 in the loaded frame's chunks: polars has
    # no column to line up, so it never copies the frame whole
    contract = contracts.load_contracts(datasets=["inspections"])["inspections"]
    prep = contracts_prepare.prepare("inspections", chunked, contract)
    assert prep.frame[contracts_prepare.ROW].to_list() == list(range(9))
    assert {tuple(c.chunk_lengths()) for c in prep.frame.get_columns()} == {(3, 4, 2)}
    # so does the frame known on an as-of date (rows dated after it left out: none here)
    known = contracts_prepare.known_on(prep, AS_OF)
    assert known.frame[contracts_prepare.ROW].to_list() == list(range(9))
    assert len({tuple(c.chunk_lengths()) for c in known.frame.get_columns()}) == 1
