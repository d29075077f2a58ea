"""Small hand-checkable quality records for the KPI tests.

Two sites, ``North`` and ``South``; the review month is 2026-03 (end 2026-03-31).
Every expected number in the tests is worked out by hand from the rows below;
the arithmetic is written next to each expected value in the test files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import polars as pl
import pytest

from qmskpi.datasets import DATASETS, SOURCE_ROW

D = date
Make = Callable[[str, Sequence[Mapping[str, Any]]], pl.DataFrame]

_DEFAULTS: dict[str, dict[str, Any]] = {
    "complaints": {"severity": "minor", "category": "general", "product": "p1"},
    "suppliers": {"category": "parts", "critical": False, "approval_status": "approved"},
    "inspections": {"product": "p1"},
    "objectives": {"clause": "6.2", "owner": "QM", "unit": "", "kpi": None},
    "audit_findings": {"clause": "9.2", "audit_id": "A1"},
    "review_actions": {"description": "do it", "owner": "CEO"},
    "surveys": {"customer": "c", "scale_max": 10},
}


def make_frame(name: str, rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """A canonical frame of dataset ``name`` (with ``source_row``) from partial rows."""
    ds = DATASETS[name]
    full = []
    for i, r in enumerate(rows, start=2):
        row = {f.name: None for f in ds.fields} | _DEFAULTS.get(name, {}) | dict(r)
        if "status" in row and "status" not in r:
            row["status"] = "closed" if row.get("closed_date") else "open"
        if "name" in row and row["name"] is None:
            row["name"] = row.get("supplier_id") or row.get("objective_id")
        row[SOURCE_ROW] = i
        full.append(row)
    schema = dict(ds.schema) | {SOURCE_ROW: pl.Int64()}
    return pl.DataFrame(full, schema=schema)


@pytest.fixture
def make() -> Make:
    return make_frame


def complaint(
    cid: str, received: date, closed: date | None, site: str, cust: str, **kw: Any
) -> dict[str, Any]:
    return {
        "complaint_id": cid,
        "received_date": received,
        "closed_date": closed,
        "site": site,
        "customer": cust,
        **kw,
    }


N, S = "North", "South"

# Complaints. Days/ages are worked out in the tests; customers are unique where a
# row must not take part in repeat detection.
COMPLAINTS = [
    complaint("c01", D(2025, 12, 20), D(2026, 1, 10), N, "acme", product="p1", category="noise"),
    complaint("c02", D(2026, 1, 15), D(2026, 3, 10), N, "acme", product="p1", category="noise"),
    complaint("c03", D(2026, 3, 2), D(2026, 3, 5), N, "beta", product="p2", category="leak"),
    complaint("c04", D(2026, 3, 3), None, S, "acme", product="p1", category="noise"),
    complaint("c05", D(2026, 3, 20), D(2026, 4, 2), S, "gamma", product="p3", category="label"),
    complaint("c06", D(2025, 11, 10), None, S, "delta", product="p1", category="noise"),
    complaint("c07", D(2026, 2, 10), D(2026, 3, 31), N, "beta", product="p2", category="leak"),
    complaint("c09", D(2026, 3, 25), None, N, "delta", product="p1", category="noise"),
    complaint("c10", D(2026, 3, 25), None, S, "delta", product="p1", category="noise"),
    complaint("c11", D(2026, 3, 31), None, N, "eps", product="p9", category="crack"),
    complaint("c12", D(2025, 12, 31), D(2026, 1, 5), N, "eps", product="p9", category="crack"),
    complaint("c13", D(2026, 2, 20), D(2026, 3, 15), S, "theta"),
    complaint("c14", D(2026, 1, 2), D(2026, 3, 31), S, "iota"),
    complaint("c15", D(2026, 2, 1), None, N, "kappa"),
    complaint("c16", D(2026, 1, 15), D(2026, 4, 10), S, "lambda"),
    complaint("c17", D(2026, 2, 28), None, N, "mu"),
    complaint("c18", D(2025, 12, 31), None, S, "zeta"),
]

# Units shipped. South ships nothing in January (no row): its January rate is undefined.
SHIPMENTS: list[dict[str, Any]] = [
    {"site": N, "product": "p1", "month": "2026-01", "units_shipped": 10_000},
    {"site": N, "product": "p1", "month": "2026-02", "units_shipped": 20_000},
    {"site": S, "product": "p1", "month": "2026-02", "units_shipped": 30_000},
    {"site": N, "product": "p1", "month": "2026-03", "units_shipped": 40_000},
    {"site": N, "product": "p2", "month": "2026-03", "units_shipped": 10_000},
    {"site": S, "product": "p1", "month": "2026-03", "units_shipped": 100_000},
    {"site": N, "product": "p1", "month": "2025-12", "units_shipped": 5_000},
    {"site": N, "product": "p1", "month": "2025-11", "units_shipped": 5_000},
]

SURVEYS: list[dict[str, Any]] = [
    {"response_id": "r1", "response_date": D(2026, 3, 5), "site": N, "score": 9.0, "scale_max": 10},
    {"response_id": "r2", "response_date": D(2026, 3, 6), "site": N, "score": 6.0, "scale_max": 10},
    {"response_id": "r3", "response_date": D(2026, 3, 7), "site": N, "score": 4.0, "scale_max": 5},
    {
        "response_id": "r4",
        "response_date": D(2026, 3, 8),
        "site": S,
        "score": 10.0,
        "scale_max": 10,
    },
    {"response_id": "r5", "response_date": D(2026, 3, 9), "site": S, "score": 7.0, "scale_max": 10},
    {
        "response_id": "r6",
        "response_date": D(2026, 3, 31),
        "site": S,
        "score": 8.0,
        "scale_max": 10,
    },
    {
        "response_id": "r7",
        "response_date": D(2026, 2, 27),
        "site": S,
        "score": 0.0,
        "scale_max": 10,
    },
]

SUPPLIERS: list[dict[str, Any]] = [
    {"supplier_id": "S1", "critical": True, "next_evaluation_due": D(2026, 3, 15)},
    {"supplier_id": "S2", "next_evaluation_due": D(2026, 3, 31)},
    {"supplier_id": "S3", "approval_status": "conditional", "next_evaluation_due": D(2026, 1, 1)},
    {"supplier_id": "S4", "next_evaluation_due": None},
    {"supplier_id": "S5", "next_evaluation_due": D(2026, 6, 30)},
]


def receipt(
    rid: str, sup: str, site: str, promised: date, received: date, qty: int, rej: int
) -> dict[str, Any]:
    return {
        "receipt_id": rid,
        "supplier_id": sup,
        "site": site,
        "promised_date": promised,
        "received_date": received,
        "qty_received": qty,
        "qty_rejected": rej,
    }


RECEIPTS = [
    receipt("R1", "S1", N, D(2026, 3, 10), D(2026, 3, 10), 1000, 0),  # on time (same day)
    receipt("R2", "S1", N, D(2026, 3, 10), D(2026, 3, 12), 500, 5),  # 2 days late
    receipt("R3", "S2", S, D(2026, 3, 20), D(2026, 3, 19), 2000, 10),  # early
    receipt("R4", "S2", S, D(2026, 3, 25), D(2026, 3, 25), 500, 0),  # on time
    receipt("R5", "S3", N, D(2026, 2, 27), D(2026, 3, 1), 1000, 20),  # 2 days late
    receipt("R6", "S1", N, D(2026, 2, 15), D(2026, 2, 15), 700, 7),  # February
    receipt("R7", "S5", S, D(2026, 3, 5), D(2026, 3, 4), 10_000, 1),  # early
]


def inspection(
    iid: str,
    day: date,
    site: str,
    stage: str,
    result: str,
    qty: int,
    defective: int,
    code: str | None = None,
) -> dict[str, Any]:
    return {
        "inspection_id": iid,
        "inspection_date": day,
        "site": site,
        "stage": stage,
        "result": result,
        "qty_inspected": qty,
        "qty_defective": defective,
        "defect_code": code,
    }


INSPECTIONS = [
    inspection("i01", D(2026, 3, 2), N, "incoming", "pass", 100, 0),
    inspection("i02", D(2026, 3, 3), N, "incoming", "fail", 100, 5, "D1"),
    inspection("i03", D(2026, 3, 4), N, "in_process", "pass", 200, 0),
    inspection("i04", D(2026, 3, 5), N, "in_process", "pass", 200, 1, "D2"),
    inspection("i05", D(2026, 3, 6), N, "final", "fail", 50, 2, "D1"),
    inspection("i06", D(2026, 3, 31), N, "final", "pass", 50, 0),
    inspection("i07", D(2026, 3, 1), S, "in_process", "fail", 100, 10, "D3"),
    inspection("i08", D(2026, 3, 2), S, "in_process", "pass", 100, 0),
    inspection("i09", D(2026, 3, 3), S, "final", "pass", 100, 0),
    inspection("i10", D(2026, 3, 4), S, "final", "pass", 100, 0),
    inspection("i11", D(2026, 3, 5), S, "final", "fail", 100, 4, "D1"),
    inspection("i12", D(2026, 2, 20), N, "final", "pass", 80, 0),
]

CAPA: list[dict[str, Any]] = [
    {
        "capa_id": "K1",
        "site": N,
        "source": "complaint",
        "opened_date": D(2026, 3, 2),
        "due_date": D(2026, 3, 20),
        "closed_date": D(2026, 3, 15),
        "effectiveness_verified": True,
    },
    {
        "capa_id": "K2",
        "site": N,
        "source": "audit",
        "opened_date": D(2026, 1, 10),
        "due_date": D(2026, 2, 28),
        "closed_date": D(2026, 3, 20),
        "effectiveness_verified": False,
    },
    {
        "capa_id": "K3",
        "site": S,
        "source": "supplier",
        "opened_date": D(2026, 2, 1),
        "due_date": D(2026, 3, 1),
        "closed_date": None,
    },
    {
        "capa_id": "K4",
        "site": S,
        "source": "internal",
        "opened_date": D(2026, 3, 10),
        "due_date": D(2026, 4, 30),
        "closed_date": None,
    },
    {
        "capa_id": "K5",
        "site": S,
        "source": "inspection",
        "opened_date": D(2025, 12, 1),
        "due_date": D(2026, 1, 31),
        "closed_date": D(2026, 3, 31),
        "effectiveness_verified": None,
    },
    {
        "capa_id": "K6",
        "site": N,
        "source": "complaint",
        "opened_date": D(2025, 11, 1),
        "due_date": D(2025, 12, 1),
        "closed_date": D(2026, 4, 5),
    },
]

FINDINGS: list[dict[str, Any]] = [
    {
        "finding_id": "F1",
        "audit_id": "A1",
        "audit_date": D(2026, 3, 5),
        "site": N,
        "clause": "8.4",
        "type": "major_nc",
    },
    {
        "finding_id": "F2",
        "audit_id": "A1",
        "audit_date": D(2026, 3, 5),
        "site": N,
        "clause": "7.5",
        "type": "minor_nc",
        "closed_date": D(2026, 3, 25),
    },
    {
        "finding_id": "F3",
        "audit_id": "A2",
        "audit_date": D(2026, 3, 12),
        "site": S,
        "clause": "8.5",
        "type": "observation",
        "due_date": D(2026, 3, 20),
    },
    {
        "finding_id": "F4",
        "audit_id": "A2",
        "audit_date": D(2026, 3, 12),
        "site": S,
        "clause": "8.5",
        "type": "ofi",
    },
    {
        "finding_id": "F5",
        "audit_id": "A0",
        "audit_date": D(2026, 1, 10),
        "site": N,
        "clause": "7.2",
        "type": "minor_nc",
    },
    {
        "finding_id": "F6",
        "audit_id": "A0",
        "audit_date": D(2025, 12, 15),
        "site": S,
        "clause": "8.7",
        "type": "major_nc",
        "due_date": D(2026, 1, 31),
        "closed_date": D(2026, 4, 1),
    },
]

REVIEW_ACTIONS: list[dict[str, Any]] = [
    {
        "action_id": "A1",
        "review_date": D(2025, 10, 15),
        "due_date": D(2026, 1, 31),
        "closed_date": D(2026, 2, 10),
        "owner": "Ops",
    },
    {"action_id": "A2", "review_date": D(2025, 10, 15), "due_date": D(2026, 3, 31), "owner": "QM"},
    {
        "action_id": "A3",
        "review_date": D(2026, 1, 20),
        "due_date": D(2026, 3, 1),
        "owner": "HR",
        "description": "train inspectors",
    },
    {
        "action_id": "A4",
        "review_date": D(2026, 1, 20),
        "due_date": D(2026, 2, 15),
        "closed_date": D(2026, 3, 10),
        "owner": "QM",
    },
    {"action_id": "A5", "review_date": D(2026, 3, 25), "due_date": D(2026, 6, 30), "owner": "CEO"},
    {
        "action_id": "A6",
        "review_date": D(2025, 10, 15),
        "due_date": D(2025, 12, 31),
        "closed_date": D(2026, 3, 31),
        "owner": "Ops",
    },
]

OBJECTIVES: list[dict[str, Any]] = [
    {
        "objective_id": "O1",
        "name": "Complaint rate",
        "direction": "lower_is_better",
        "target": 50.0,
        "kpi": "complaint_rate_ppm",
        "unit": "ppm",
    },
    {
        "objective_id": "O2",
        "name": "Training done",
        "direction": "higher_is_better",
        "target": 0.9,
        "unit": "share",
    },
    {
        "objective_id": "O3",
        "name": "Typo",
        "direction": "lower_is_better",
        "target": 1.0,
        "kpi": "complaint_rates_ppm",
    },
    {"objective_id": "O4", "name": "Energy", "direction": "lower_is_better", "target": 100.0},
]

OBJECTIVE_RESULTS: list[dict[str, Any]] = [
    {"objective_id": "O2", "month": "2026-01", "actual": 0.8},
    {"objective_id": "O2", "month": "2026-02", "actual": 0.95},
    {"objective_id": "O2", "month": "2026-03", "actual": 0.92},
    {"objective_id": "O4", "month": "2026-01", "actual": 90.0},
]


def qms() -> dict[str, pl.DataFrame]:
    return {
        "complaints": make_frame("complaints", COMPLAINTS),
        "shipments": make_frame("shipments", SHIPMENTS),
        "surveys": make_frame("surveys", SURVEYS),
        "suppliers": make_frame("suppliers", SUPPLIERS),
        "receipts": make_frame("receipts", RECEIPTS),
        "inspections": make_frame("inspections", INSPECTIONS),
        "capa": make_frame("capa", CAPA),
        "audit_findings": make_frame("audit_findings", FINDINGS),
        "review_actions": make_frame("review_actions", REVIEW_ACTIONS),
        "objectives": make_frame("objectives", OBJECTIVES),
        "objective_results": make_frame("objective_results", OBJECTIVE_RESULTS),
    }


@pytest.fixture
def data() -> dict[str, pl.DataFrame]:
    """Every dataset, as above."""
    return qms()


def value(
    frame: pl.DataFrame, kpi: str, scope: str = "all", period: str | None = None
) -> dict[str, Any]:
    """The one row of ``frame`` for kpi / scope (/ period), as a dict."""
    cond = (pl.col("kpi") == kpi) & (pl.col("scope") == scope)
    if period is not None:
        cond &= pl.col("period") == period
    rows = frame.filter(cond)
    assert rows.height == 1, f"{kpi}/{scope}/{period}: {rows.height} rows"
    return rows.row(0, named=True)


@pytest.fixture
def kpi_row() -> Callable[..., dict[str, Any]]:
    return value
