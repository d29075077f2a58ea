"""The review model: 9.3.2 order, coverage, exceptions, narrative, JSON round-trip.

Built from a small hand-made data set (two sites, 30 months ending 2026-10)
with known signals planted in it:

- defect ppm at South jumps far above its upper limit in 2026-10;
- supplier on-time delivery at North runs below its average for the last 9 months;
- the audit findings stop in 2026-06 (stale at period end);
- there are no survey responses (missing) and, in one case, CAPA data failed
  validation (failed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from qmskpi import review
from qmskpi.config import AnalystInputs, Config, KpiConfig, ReviewConfig, SourceConfig
from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.periods import month, trailing_months
from qmskpi.review.narrative import no_limits_sentences, related_disagreements
from qmskpi.review.signals import current_signals

PERIOD = "2026-10"
SITES = ("North", "South")
MONTHS = list(trailing_months(PERIOD, 30))

XSS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\"'><svg onload=alert(1)>",
)


# ---------------------------------------------------------------- a hand-made data set


def _frame(name: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = dict(DATASETS[name].schema)
    full = [{**dict.fromkeys(schema), **r} for r in rows]
    f = pl.DataFrame(full, schema=schema, orient="row")
    return f.with_columns(pl.int_range(2, f.height + 2, dtype=pl.Int64).alias(SOURCE_ROW))


def _wobble(i: int, amp: int) -> int:
    """A deterministic, patternless-looking offset in [-amp, amp]."""
    return ((i * 7919) % (2 * amp + 1)) - amp


def make_data(*, evil: bool = False) -> dict[str, pl.DataFrame]:
    """Two sites, 30 months. ``evil`` puts script-like text in every free-text field."""
    bad = XSS if evil else ("", "", "")
    site_names = tuple(f"{s}{bad[2]}" if evil else s for s in SITES)
    complaints, shipments, receipts, inspections = [], [], [], []
    capa, findings = [], []
    n = len(MONTHS)
    for mi, m in enumerate(MONTHS):
        for si, site in enumerate(site_names):
            shipments.append(
                {"site": site, "product": "P1", "month": m.label, "units_shipped": 20_000}
            )
            # complaints: 3-5 a month per site, closed after 10-25 days
            for k in range(3 + (mi + si) % 3):
                rd = m.start + timedelta(days=2 + 5 * k)
                closed = rd + timedelta(days=10 + (k * 5 + mi) % 16)
                is_last = mi == n - 1
                complaints.append(
                    {
                        "complaint_id": f"C-{site[:1]}-{mi:02d}-{k}",
                        "received_date": rd,
                        "closed_date": None if is_last and k == 0 else closed,
                        "site": site,
                        "customer": f"Customer {k % 2}{bad[1] if evil else ''}",
                        "product": f"P1{bad[0] if evil and k == 1 else ''}",
                        "category": "packaging",
                        "severity": ("critical", "major", "minor")[k % 3] if is_last else "minor",
                        "status": "open" if is_last and k == 0 else "closed",
                        "description": f"Damaged carton {k}{bad[0]}{bad[1]}",
                    }
                )
            # receipts: 10 a month; North late from month n-9 on
            for k in range(10):
                late = site.startswith("North") and mi >= n - 9 and k < 4
                late = late or (k == 9 and (mi + si) % 2 == 0)
                promised = m.start + timedelta(days=1 + 2 * k)
                receipts.append(
                    {
                        "receipt_id": f"R-{site[:1]}-{mi:02d}-{k}",
                        "supplier_id": f"S{k % 3}",
                        "site": site,
                        "promised_date": promised,
                        "received_date": promised + timedelta(days=3 if late else 0),
                        "qty_received": 500,
                        "qty_rejected": (k + mi) % 3,
                    }
                )
            # inspections: 20 a month; South's defects jump in the last month
            for k in range(20):
                spike = site.startswith("South") and mi == n - 1
                defective = 30 if spike and k < 10 else (1 if (k + mi) % 5 == 0 else 0)
                inspections.append(
                    {
                        "inspection_id": f"I-{site[:1]}-{mi:02d}-{k}",
                        "inspection_date": m.start + timedelta(days=k),
                        "site": site,
                        "product": "P1",
                        "stage": ("incoming", "in_process", "final")[k % 3],
                        "qty_inspected": 1000,
                        "qty_defective": defective,
                        "defect_code": (
                            None if defective == 0 else f"D{k % 4}{bad[2] if evil else ''}"
                        ),
                        "result": "fail" if defective else "pass",
                    }
                )
            # CAPA: one a month per site, 60 days due; a few stay open
            od = m.start + timedelta(days=3)
            closed_c = None if mi in (n - 6, n - 2) else od + timedelta(days=40)
            capa.append(
                {
                    "capa_id": f"CA-{site[:1]}-{mi:02d}",
                    "source": "complaint",
                    "site": site,
                    "opened_date": od,
                    "due_date": od + timedelta(days=60),
                    "closed_date": closed_c
                    if closed_c and closed_c <= month(2026, 10).end
                    else None,
                    "status": "closed" if closed_c and closed_c <= month(2026, 10).end else "open",
                    "effectiveness_verified": True if closed_c else None,
                }
            )
            # audit findings: quarterly, none after 2026-06 (stale at period end)
            if m.start.month % 3 == 0 and m.start <= date(2026, 6, 30):
                findings.append(
                    {
                        "finding_id": f"F-{site[:1]}-{mi:02d}",
                        "audit_id": f"A-{mi:02d}",
                        "audit_date": m.start + timedelta(days=10),
                        "site": site,
                        "clause": "8.5.1",
                        "type": "minor_nc",
                        "status": "closed" if mi < n - 5 else "open",
                        "closed_date": m.start + timedelta(days=30) if mi < n - 5 else None,
                    }
                )
    suppliers = [
        {
            "supplier_id": f"S{i}",
            "name": f"Supplier {i}{bad[i % 3]}",
            "category": "resin",
            "critical": i == 0,
            "approval_status": "approved",
            "last_evaluation_date": date(2026, 3, 1),
            "next_evaluation_due": date(2027, 3, 1) if i else date(2026, 9, 1),
        }
        for i in range(3)
    ]
    objectives = [
        {
            "objective_id": "OBJ-1",
            "name": f"First-pass yield{bad[0]}",
            "clause": "8.6",
            "owner": "Quality",
            "unit": "share",
            "direction": "higher_is_better",
            "target": 0.95,
            "kpi": "fpy_share",
        },
        {
            "objective_id": "OBJ-2",
            "name": "Training hours",
            "clause": "7.2",
            "owner": "HR",
            "unit": "hours",
            "direction": "higher_is_better",
            "target": 20.0,
            "kpi": None,
        },
    ]
    objective_results = [
        {"objective_id": "OBJ-2", "month": m.label, "actual": 18.0 + (i % 4)}
        for i, m in enumerate(MONTHS)
    ]
    review_actions = [
        {
            "action_id": "RA-1",
            "review_date": date(2026, 4, 20),
            "description": f"Re-train packers{bad[0]}",
            "owner": f"Ops{bad[1]}",
            "due_date": date(2026, 7, 31),
            "status": "open",
        },
        {
            "action_id": "RA-2",
            "review_date": date(2026, 7, 20),
            "description": "Second carton supplier",
            "owner": "Purchasing",
            "due_date": date(2026, 12, 31),
            "status": "open",
        },
        {
            "action_id": "RA-3",
            "review_date": date(2026, 7, 20),
            "description": "New gauge",
            "owner": "Quality",
            "due_date": date(2026, 10, 15),
            "status": "closed",
            "closed_date": date(2026, 10, 10),
        },
    ]
    return {
        "complaints": _frame("complaints", complaints),
        "shipments": _frame("shipments", shipments),
        "suppliers": _frame("suppliers", suppliers),
        "receipts": _frame("receipts", receipts),
        "inspections": _frame("inspections", inspections),
        "objectives": _frame("objectives", objectives),
        "objective_results": _frame("objective_results", objective_results),
        "capa": _frame("capa", capa),
        "audit_findings": _frame("audit_findings", findings),
        "review_actions": _frame("review_actions", review_actions),
    }


def make_config(*, sites: tuple[str, ...] = SITES, analyst: AnalystInputs | None = None) -> Config:
    configured = [n for n in DATASETS if n != "surveys"]
    return Config(
        organisation="Hand-made Ltd",
        sites=sites,
        sources={n: SourceConfig(dataset=n, path=f"{n}.csv") for n in configured},
        kpis=KpiConfig(targets={"supplier_otd_due_share": 0.95, "defect_ppm": 800.0}),
        review=ReviewConfig(stale_after_days=45, trend_months=24),
        analyst_inputs=analyst or AnalystInputs(changes="changes.md"),
    )


@dataclass(frozen=True)
class FakeDatasetValidation:
    rows_in: int
    rows_used: int
    rows_quarantined: int
    rules: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FakeRule:
    rule_id: str
    description: str
    column: str
    severity: str
    success: bool
    unexpected_count: int
    sample_values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FakeValidation:
    """Duck-types the parts of contracts.ValidationReport that review reads."""

    datasets: dict[str, FakeDatasetValidation]
    unsound_datasets: frozenset[str] = field(default_factory=frozenset)


def fake_validation(data: dict[str, pl.DataFrame], unsound: set[str]) -> Any:
    ds = {}
    for name, f in data.items():
        rules: tuple[Any, ...] = ()
        q = 0
        if name in unsound:
            q = 2
            rules = (
                FakeRule(
                    "closed_after_opened",
                    "closed_date on or after opened_date",
                    "closed_date",
                    "error",
                    False,
                    2,
                    ("x",),
                ),
            )
        ds[name] = FakeDatasetValidation(f.height + q, f.height, q, rules)
    return FakeValidation(ds, frozenset(unsound))


ANALYST = {
    "changes": "## Market\n\nNew **competitor** in the north.\n\n- tariff change\n- *new* standard",
}


@pytest.fixture(scope="module")
def data() -> dict[str, pl.DataFrame]:
    return make_data()


@pytest.fixture(scope="module")
def model(data: dict[str, pl.DataFrame]) -> review.ReviewModel:
    return review.build(
        data,
        period=PERIOD,
        scope="all",
        config=make_config(),
        validation=fake_validation(data, set()),
        analyst_inputs=ANALYST,
    )


# ---------------------------------------------------------------- structure


def test_sections_follow_iso_9001_9_3_2_order(model: review.ReviewModel) -> None:
    assert model.section_ids == (
        "cover",
        "summary",
        "a",
        "b",
        "c1",
        "c2",
        "c3",
        "c4",
        "c5",
        "c6",
        "c7",
        "d",
        "e",
        "f",
        "decisions",
        "coverage",
        "appendix",
    )
    refs = [s.ref for s in model.sections if s.role == "input"]
    assert refs == [
        "9.3.2 a)",
        "9.3.2 b)",
        "9.3.2 c) 1)",
        "9.3.2 c) 2)",
        "9.3.2 c) 3)",
        "9.3.2 c) 4)",
        "9.3.2 c) 5)",
        "9.3.2 c) 6)",
        "9.3.2 c) 7)",
        "9.3.2 d)",
        "9.3.2 e)",
        "9.3.2 f)",
    ]
    assert model.section("decisions").ref == "9.3.3"
    assert [c.section for c in model.coverage] == [
        s.id for s in model.sections if s.role == "input"
    ]


def test_the_clause_map_is_data_and_a_second_map_can_be_added() -> None:
    base = review.clause_map("iso9001_2015")
    draft = replace(base, id="iso9001_2026_draft", title="ISO/DIS 9001 (provisional)")
    review.register_clause_map(draft)
    try:
        assert review.clause_map("iso9001_2026_draft").entries == base.entries
    finally:
        del review.CLAUSE_MAPS["iso9001_2026_draft"]
    with pytest.raises(review.QmsKpiError, match="did you mean"):
        review.clause_map("iso9001_2051")


def test_kpis_are_assigned_to_their_sections(model: review.ReviewModel) -> None:
    assert "complaint_rate_ppm" in model.section("c1").kpis
    assert "defect_ppm" in model.section("c3").kpis
    assert "supplier_otd_share" in model.section("c7").kpis
    assert "supplier_otd_due_share" in model.section("c7").kpis
    assert "audit_nc_open_overdue" in model.section("c6").kpis
    assert "capa_open_overdue" in model.section("c4").kpis
    assert "review_actions_overdue" in model.section("a").kpis
    assert "audit_findings_open_overdue" in model.section("c6").kpis
    c5 = model.section("c5")
    assert c5.trends
    assert all(model.trend(t) is not None for t in c5.trends)


def test_kpi_values_are_formatted_by_unit(model: review.ReviewModel) -> None:
    otd = model.kpi("supplier_otd_share")
    assert otd is not None
    assert otd.display.endswith(" %")
    ppm = model.kpi("defect_ppm")
    assert ppm is not None
    assert ppm.display.endswith(" ppm")
    assert ppm.target == 800.0
    assert ppm.target_display == "800 ppm"
    assert review.format_value(None, "share") == "n/a"
    assert review.format_value(0.9345, "share") == "93.5 %"
    assert review.format_value(1234.4, "ppm") == "1,234 ppm"
    assert review.format_value(12.0, "CAPAs") == "12"
    assert review.format_value(-12.0, "NPS points") == "-12"


# ---------------------------------------------------------------- coverage


def _coverage(model: review.ReviewModel) -> dict[str, str]:
    return {c.section: c.status for c in model.coverage}


def test_coverage_evidenced_missing_stale(model: review.ReviewModel) -> None:
    cov = _coverage(model)
    assert cov["a"] == "evidenced"
    assert cov["c3"] == "evidenced"
    assert cov["c7"] == "evidenced"
    assert cov["c1"] == "missing"  # no survey source configured, no rows
    c1 = next(c for c in model.coverage if c.section == "c1")
    surveys = next(d for d in c1.evidence if d.dataset == "surveys")
    assert surveys.status == "missing"
    assert "no source configured" in surveys.detail
    assert cov["c6"] == "stale"  # newest finding 2026-06, period end 2026-10-31
    c6 = next(c for c in model.coverage if c.section == "c6")
    assert "2026-06-11" in c6.detail
    assert cov["b"] == "evidenced"  # analyst markdown given
    assert cov["d"] == "missing"
    assert cov["e"] == "missing"
    assert cov["f"] == "evidenced"


def _unsound(data: dict[str, pl.DataFrame], name: str) -> review.ReviewModel:
    """The hand-made model with dataset ``name`` failing an error rule."""
    return review.build(
        data,
        period=PERIOD,
        scope="all",
        config=make_config(),
        validation=fake_validation(data, {name}),
        analyst_inputs={},
    )


def test_coverage_failed_validation(data: dict[str, pl.DataFrame]) -> None:
    m = _unsound(data, "capa")
    assert _coverage(m)["c4"] == "failed"
    assert _coverage(m)["b"] == "missing"
    assert m.exceptions[0].kind == "unsound"
    assert m.exceptions[0].text == (
        "Corrective and preventive actions (capa) failed validation: measures that use it "
        "are not sound."
    )
    capa = m.kpi("capa_open_overdue")
    assert capa is not None
    assert capa.sound is False
    tile = next(t for t in m.tiles if t.kpi == "capa_open_overdue")
    assert tile.exception
    assert not tile.sound
    ledger = m.table("ledger")
    assert ledger is not None
    rec = next(r for r in ledger.records() if r["dataset"] == "capa")
    assert rec["rows_in"] == rec["rows_used"] + rec["rows_quarantined"]
    assert rec["sound"] is False
    failed = m.table("failed_rules")
    assert failed is not None
    assert failed.records()[0]["rule"] == "closed_after_opened"
    # a dataset whose title is its name is named once, not "Inspections (inspections)"
    m2 = _unsound(data, "inspections")
    assert (
        m2.exceptions[0].text
        == "Inspections failed validation: measures that use it are not sound."
    )


def test_coverage_missing_when_no_rows(data: dict[str, pl.DataFrame]) -> None:
    d = dict(data)
    d["review_actions"] = d["review_actions"].clear()
    m = review.build(
        d, period=PERIOD, scope="all", config=make_config(), validation=None, analyst_inputs={}
    )
    a = next(c for c in m.coverage if c.section == "a")
    assert a.status == "missing"
    assert "no records" in a.detail
    assert m.meta.validated is False


# ---------------------------------------------------------------- signals in words


def test_exceptions_come_first_and_are_ranked(model: review.ReviewModel) -> None:
    ranks = [e.rank for e in model.exceptions]
    assert ranks == sorted(ranks)
    kinds = {e.kind for e in model.exceptions}
    assert {"concern", "overdue", "coverage"} <= kinds
    # tiles: every exception tile before every other tile
    flags = [t.exception for t in model.tiles]
    assert flags == sorted(flags, reverse=True)
    assert any(flags)
    assert not all(flags)


def test_narrative_names_the_planted_signals(model: review.ReviewModel) -> None:
    text = "\n".join(model.narrative)
    assert (
        "Defects per million inspected rose above the upper limit in 2026-10 (also at site South)."
        in model.narrative
    )
    assert (
        "Supplier on-time delivery (deliveries due in the period) ran below the average for the "
        "last 9 months (also at site North)." in model.narrative
    )
    assert (
        "Overdue at period end: 1 review action, 2 CAPAs, 2 audit nonconformities and "
        "1 supplier re-evaluation." in model.narrative
    )
    assert text.endswith("stale for 9.3.2 c) 6) (see the coverage matrix).")
    # the same facts, one per line, in the exceptions
    concern = next(e for e in model.exceptions if e.kpi == "supplier_otd_due_share")
    assert concern.kind == "concern"
    assert concern.rank == 1
    assert concern.scope == "all"


def test_signal_sentences_for_a_site_trend(model: review.ReviewModel) -> None:
    t = model.trend("supplier-otd-due-share-north")
    assert t is not None
    said = review.signal_sentences(t)
    assert said[0] == (
        "concern",
        "Supplier on-time delivery (deliveries due in the period) at site North ran below the "
        "average for the last 9 months.",
    )
    # the other reading is listed with its value but not charted
    assert model.trend("supplier-otd-share-north") is None
    assert model.kpi("supplier_otd_share") is not None


def test_opportunities_come_from_concerns(model: review.ReviewModel) -> None:
    texts = [o.text for o in model.opportunities]
    assert "Find and remove the special cause behind defects per million inspected." in texts
    assert "Reduce the vital few defect codes (D0, D1, D3)." in texts
    # 2026-10 inspections with a code: D0 5, D1 4, D3 4, D2 3 of 16; the top three 13/16
    vital = next(o for o in model.opportunities if o.text.startswith("Reduce the vital few"))
    assert vital.basis == (
        "They account for 81 % of the inspections recording a defect code in the period."
    )
    assert any(t.startswith("Plan how to reach the objective 'First-pass yield'") for t in texts)
    assert all(o.basis for o in model.opportunities)


def _hand_trend(scope: str, values: list[float], signals: list[tuple[str, ...]]) -> review.Trend:
    """Three months of a lower-is-better count: average 10, limits 0 to 20."""
    classes: tuple[Any, ...] = tuple("concern" if s else "none" for s in signals)
    return review.Trend(
        id=f"complaints-received-{scope.lower()}",
        kpi="complaints_received",
        scope=scope,
        title="Complaints received",
        section="c1",
        unit="complaints",
        direction="lower_is_better",
        kind="count",
        chart="c",
        months=("2026-08", "2026-09", "2026-10"),
        values=tuple(values),
        center=(10.0, 10.0, 10.0),
        ucl=(20.0, 20.0, 20.0),
        lcl=(0.0, 0.0, 0.0),
        signals=tuple(signals),
        classes=classes,
        variation="concern_high",
        assurance=None,
        target=None,
        rebase=(),
        sound=True,
        explanation=(),
    )


def test_also_at_sites_names_only_sites_where_the_same_sentence_holds() -> None:
    """Whole scope and North above the upper limit in 2026-10; South only in 2026-09
    (its 2026-10 point, 18, is a 2-of-3 signal inside the limits). "(also at ...)" must
    not claim South rose above its limit in 2026-10: South is said on its own."""
    whole = _hand_trend("all", [12, 15, 25], [(), (), ("beyond_limits",)])
    north = _hand_trend("North", [12, 15, 26], [(), (), ("beyond_limits",)])
    south = _hand_trend(
        "South", [12, 24, 18], [(), ("beyond_limits", "two_of_three"), ("two_of_three",)]
    )
    ctx: Any = type("Ctx", (), {"scope": "all"})()
    said = current_signals(ctx, [whole, north, south], "concern")
    assert [(s.trend.scope, s.text) for s in said] == [
        ("all", "Complaints received rose above the upper limit in 2026-10 (also at site North)."),
        ("South", "Complaints received at site South rose above the upper limit in 2026-09."),
    ]


def test_objective_actual_never_prints_like_its_target(data: dict[str, pl.DataFrame]) -> None:
    """OBJ-2 (hours, higher is better, target 20) at 19.96 is not met: it must not read
    "19.96 -> 20 against target 20"; one more digit tells them apart."""
    results = data["objective_results"].with_columns(
        pl.when((pl.col("objective_id") == "OBJ-2") & (pl.col("month") == PERIOD))
        .then(19.96)
        .otherwise(pl.col("actual"))
        .alias("actual")
    )
    m = review.build(
        {**data, "objective_results": results},
        period=PERIOD,
        scope="all",
        config=make_config(),
        validation=None,
        analyst_inputs={},
    )
    table = m.table("objective_attainment")
    assert table is not None
    row = next(r for r in table.records() if r["objective_id"] == "OBJ-2")
    assert row["met"] is False
    assert (row["actual_display"], row["target_display"]) == ("19.96", "20")
    opp = next(o for o in m.opportunities if "'Training hours'" in o.text)
    assert opp.basis == "Actual 19.96 against target 20."
    # the rule: just enough digits to tell different numbers apart, no more
    assert review.format_pair(1.52, 1.5, "percent") == ("1.52 %", "1.50 %")
    assert review.format_pair(0.92047, 0.92, "share") == ("92.05 %", "92.00 %")
    assert review.format_pair(500.4, 500.0, "ppm") == ("500.4 ppm", "500.0 ppm")
    assert review.format_pair(546.0, 500.0, "ppm") == ("546 ppm", "500 ppm")
    assert review.format_pair(1.5, 1.5, "percent") == ("1.5 %", "1.5 %")
    assert review.format_pair(None, 1.5, "percent") == ("n/a", "1.5 %")


def test_nps_is_shown_as_signed_whole_points() -> None:
    assert review.format_value(17.7778, "NPS points") == "+18"
    assert review.format_value(-8.3333, "NPS points") == "-8"
    assert review.format_value(0.797, "NPS points") == "+1"


def test_spc_trends_have_24_months_and_signal_classes(model: review.ReviewModel) -> None:
    t = model.trend("defect-ppm-south")
    assert t is not None
    assert len(t.months) == 24
    assert t.months[-1] == "2026-10"
    assert t.classes[-1] == "concern"
    assert "beyond_limits" in t.signals[-1]
    assert t.variation == "concern_high"
    assert any("upper limit" in x for x in t.explanation)
    whole = model.trend("defect-ppm-all")
    assert whole is not None
    assert whole.chart == "u"
    otd = model.trend("supplier-otd-due-share-all")
    assert otd is not None
    assert otd.chart in ("p", "laney_p")
    assert otd.target == 0.95
    assert otd.assurance in ("inconsistent", "consistent_fail")


def test_period_tables(model: review.ReviewModel) -> None:
    crit = model.table("critical_complaints")
    assert crit is not None
    sev = crit.column("severity")
    assert set(sev) == {"critical", "major"}
    assert sev == tuple(sorted(sev))
    actions = model.table("review_actions")
    assert actions is not None
    recs = actions.records()
    assert recs[0]["action_id"] == "RA-1"
    assert recs[0]["overdue"] is True
    assert {r["action_id"] for r in recs} == {"RA-1", "RA-2", "RA-3"}
    decisions = model.table("decisions")
    assert decisions is not None
    assert [c.id for c in decisions.columns] == [
        "topic",
        "decision",
        "owner",
        "due_date",
        "resources",
    ]
    assert all(r[1:] == ("", "", "", "") for r in decisions.rows)
    for tid in ("supplier_scorecard", "defect_pareto", "objective_attainment", "complaint_ageing"):
        assert model.table(tid) is not None, tid
    defs = model.table("kpi_definitions")
    assert defs is not None
    assert "complaint_rate_ppm" in defs.column("kpi")


def test_untrusted_text_is_kept_as_plain_strings() -> None:
    d = make_data(evil=True)
    cfg = make_config(sites=tuple(f"{s}" for s in SITES))
    cfg = replace(cfg, sites=())
    m = review.build(d, period=PERIOD, scope="all", config=cfg, validation=None)
    crit = m.table("critical_complaints")
    assert crit is not None
    assert any(XSS[0] in str(v) for v in crit.column("description"))


# ---------------------------------------------------------------- JSON


def test_json_round_trip_is_exact(model: review.ReviewModel, tmp_path: Path) -> None:
    text = model.to_json()
    again = review.ReviewModel.from_json(text)
    assert again == model
    assert again.to_json() == text
    path = tmp_path / "review-inputs.json"
    path.write_text(text, encoding="utf-8")
    assert review.ReviewModel.from_json(path) == model
    assert review.ReviewModel.from_json(str(path)) == model
    parsed = json.loads(text)
    assert list(parsed) == sorted(parsed)
    assert parsed["schema"] == review.SCHEMA


def test_build_is_deterministic(data: dict[str, pl.DataFrame]) -> None:
    kw: dict[str, Any] = {
        "period": PERIOD,
        "scope": "all",
        "config": make_config(),
        "validation": fake_validation(data, set()),
        "analyst_inputs": ANALYST,
    }
    a = review.build(data, **kw).to_json()
    shuffled = {k: v.sample(fraction=1.0, seed=3, shuffle=True) for k, v in reversed(data.items())}
    b = review.build(shuffled, **kw).to_json()
    assert a == b
    assert "T00:00" not in a  # no timestamps


def test_from_json_refuses_other_formats() -> None:
    with pytest.raises(review.QmsKpiError, match="format"):
        review.ReviewModel.from_json('{"schema": "something/9"}')


def test_site_scope(data: dict[str, pl.DataFrame]) -> None:
    m = review.build(
        data, period=PERIOD, scope="South", config=make_config(), validation=None, analyst_inputs={}
    )
    assert m.meta.scope == "South"
    assert m.meta.scope_label == "Site South"
    assert {k.scope for k in m.kpis} == {"South"}
    assert m.table("site_signals") is None
    assert (
        "Defects per million inspected at site South rose above the upper limit in 2026-10."
        in m.narrative
    )
    # Objectives are the organisation's: a site pack must not read their actuals as the site's.
    objective_ops = [o for o in m.opportunities if o.text.startswith("Plan how to reach")]
    assert objective_ops
    for o in objective_ops:
        assert o.scope == "all"
        assert o.basis.endswith(" for the whole organisation.")
    # Review actions belong to the organisation, not to a site: no empty "n/a" tile.
    tile_kpis = {t.kpi for t in m.tiles}
    assert "review_actions_overdue" not in tile_kpis
    whole = review.build(
        data, period=PERIOD, scope="all", config=make_config(), validation=None, analyst_inputs={}
    )
    assert "review_actions_overdue" in {t.kpi for t in whole.tiles}


# ---------------------------------------------------------------- the sample data set

SAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "sample_data" / "qmskpi.toml"


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLE_CONFIG.is_file(), reason="sample data not there yet")
def test_sample_model_snapshot(snapshot: Any) -> None:
    """The review model of the committed sample, 2026-10, whole organisation: the content truth."""
    from syrupy.extensions.json import JSONSnapshotExtension

    from qmskpi import pipeline

    model = pipeline.prepare(SAMPLE_CONFIG, "2026-10", "all").review
    assert model.meta.period == "2026-10"
    assert review.ReviewModel.from_json(model.to_json()) == model
    assert json.loads(model.to_json()) == snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.slow
def test_limits_shown_within_what_the_measure_can_be() -> None:
    """A median of days has no negative limit and a share none above 100 %: XmR limits are
    shown at the measure's natural bound, while signals are judged on the raw limits."""
    from qmskpi import pipeline, spc

    model = pipeline.prepare(SAMPLE_CONFIG, "2026-10", "all", as_of=date(2026, 11, 5)).review

    bounded = 0
    for t in model.trends:
        if t.kind != "continuous":
            continue
        raw = spc.xmr([math.nan if v is None else v for v in t.values])
        for shown, lo_raw, hi_raw in zip(
            zip(t.lcl, t.ucl, strict=True), raw.lcl, raw.ucl, strict=True
        ):
            lo, hi = shown
            if t.unit == "days":
                # max(raw LCL, 0) by hand; UCL untouched
                assert lo == pytest.approx(max(lo_raw, 0.0), abs=1e-5)
                assert hi == pytest.approx(hi_raw, abs=1e-5)
                bounded += lo_raw < 0
            if t.unit in ("share", "share of scale"):
                assert lo == pytest.approx(min(max(lo_raw, 0.0), 1.0), abs=1e-5)
                assert hi == pytest.approx(min(max(hi_raw, 0.0), 1.0), abs=1e-5)
    assert bounded > 0, "the sample has days charts whose raw LCL is below 0 (CAPA days to close)"


# ---------------------------------------------------------------- short, rare, related (issue 15)


def test_nine_months_of_data_give_a_run_chart_that_says_so(data: dict[str, pl.DataFrame]) -> None:
    """The hand-made data cut to 2026-02..2026-10: 9 months, fewer than the 12 needed."""
    cut: dict[str, pl.DataFrame] = {}
    for name, f in data.items():
        pf = DATASETS[name].period_field
        if pf is None:
            cut[name] = f
        elif DATASETS[name].field(pf).type == "date":
            cut[name] = f.filter(pl.col(pf) >= date(2026, 2, 1))
        else:
            cut[name] = f.filter(pl.col(pf) >= "2026-02")
    m = review.build(
        cut, period=PERIOD, scope="all", config=make_config(), validation=None, analyst_inputs={}
    )
    t = m.trend("complaints-received-all")
    assert t is not None
    assert t.status == "run_chart"
    assert t.variation == "run_chart"
    assert t.months[0] == "2026-02"  # nothing drawn before the first month of data
    assert len(t.months) == 9
    assert all(u is None for u in t.ucl)
    assert all(lo is None for lo in t.lcl)
    assert t.baseline == (
        "9 months of data: too few for process limits (12 needed); the centre line is the median."
    )
    assert t.baseline in t.explanation
    assert "Too few months of data for process limits (run chart only): " in "\n".join(m.narrative)
    assert "Complaints received (9 months of data)" in "\n".join(m.narrative)
    # a run chart is never a concern or an improvement icon, and sets no assurance
    assert all(x.assurance is None for x in m.trends if x.status != "limits")


def test_icons_say_which_rule_set_them(model: review.ReviewModel) -> None:
    charted = [t for t in model.trends if t.status == "limits"]
    assert len(charted) >= 10  # the rest: rare events or gappy registers (run charts)
    for t in charted:
        last = max(i for i, v in enumerate(t.values) if v is not None)
        rules = ", ".join(sorted(t.signals[last]))
        expected = f"{rules} in {t.months[last]}" if rules else f"no rule fired in {t.months[last]}"
        assert t.variation_basis == f"{t.variation}: {expected}"
        assert any(x.startswith("Variation icon (") for x in t.explanation)
        assert t.baseline.startswith("Limits from all ")
    otd = model.trend("supplier-otd-due-share-all")
    assert otd is not None
    assert otd.assurance == "inconsistent"
    assert otd.assurance_basis.startswith("inconsistent: target 95.0 % within the limits ")
    ratio = model.trend("complaint-rate-ppm-all")
    assert ratio is not None
    # the denominator travels with each point: 2 sites x 20 000 units a month
    assert set(ratio.denominators) == {40_000.0}
    assert ratio.denominator_label.startswith("units shipped")


def _rare_trend() -> review.Trend:
    return replace(
        _hand_trend("all", [0.0, 0.0, 1.0], [(), (), ()]),
        kpi="supplier_evaluations_overdue",
        title="Supplier evaluations overdue",
        center=(None, None, None),
        ucl=(None, None, None),
        lcl=(None, None, None),
        variation="rare_events",
        status="rare_events",
        baseline="Too few events a month for a chart (mean below 1): the values are stated "
        "without a signal.",
    )


def test_rare_events_are_stated_without_a_signal() -> None:
    t = _rare_trend()
    assert review.explain(t) == [
        "2026-10: 1.",
        "Too few events a month for a chart (mean below 1): the values are stated without a "
        "signal.",
    ]
    ctx: Any = type("Ctx", (), {"scope": "all"})()
    assert no_limits_sentences(ctx, [t]) == [
        "Too few events a month for a chart, stated without a signal: "
        "supplier evaluations overdue (1 in 2026-10)."
    ]
    assert review.signal_sentences(t) == []


def test_related_measures_that_disagree_get_one_sentence() -> None:
    base = _hand_trend("all", [1.0, 1.0, 1.0], [(), (), ()])
    fpy = replace(base, kpi="fpy_share", title="First-pass yield", variation="common_cause")
    ppm = replace(
        base, kpi="defect_ppm", title="Defects per million inspected", variation="improvement_low"
    )
    ctx: Any = type("Ctx", (), {"scope": "all"})()
    assert related_disagreements(ctx, [fpy, ppm]) == [
        "First-pass yield shows common cause while defects per million inspected shows an "
        "improvement: they can differ because first-pass yield counts inspections that passed, "
        "defects per million counts defective units in every unit inspected, so a few large "
        "or badly failing lots move one and not the other."
    ]
    agree = replace(fpy, variation="improvement_high")  # both improve: nothing to explain
    assert related_disagreements(ctx, [agree, ppm]) == []
    count = replace(base, variation="concern_high")
    rate = replace(base, kpi="complaint_rate_ppm", title="Complaint rate", variation="common_cause")
    assert related_disagreements(ctx, [count, rate]) == [
        "Complaints received shows a concern while complaint rate shows common cause: they can "
        "differ because the count moves with the volume shipped, the rate is per million units "
        "shipped."
    ]


# ---------------------------------------------------------------- a bounded pack


def _many_complaints(data: dict[str, pl.DataFrame], n: int) -> dict[str, pl.DataFrame]:
    """``data`` plus ``n`` critical/major complaints received in the period (every 3rd critical)."""
    extra = [
        {
            "complaint_id": f"X-{i:04d}",
            "received_date": date(2026, 10, 1) + timedelta(days=i % 31),
            "site": SITES[i % 2],
            "customer": "Big customer",
            "product": "P1",
            "category": "function",
            "severity": "critical" if i % 3 == 0 else "major",
            "status": "open",
            "description": f'=HYPERLINK("http://x","{i}")',
        }
        for i in range(n)
    ]
    complaints = data["complaints"].drop(SOURCE_ROW)
    more = pl.DataFrame(extra).with_columns(pl.col("received_date").cast(pl.Date))
    both = pl.concat([complaints, more], how="diagonal_relaxed")
    both = both.with_columns(pl.int_range(2, both.height + 2, dtype=pl.Int64).alias(SOURCE_ROW))
    return {**data, "complaints": both}


def _max_rows_config(max_rows: int, sites: tuple[str, ...] = SITES) -> Config:
    c = make_config(sites=sites)
    return replace(c, review=replace(c.review, max_rows=max_rows))


def test_a_long_list_shows_the_first_rows_by_its_rule_and_the_rest_in_the_register(
    data: dict[str, pl.DataFrame],
) -> None:
    big = _many_complaints(data, 400)
    built = review.build_pack(
        big,
        period=PERIOD,
        scope="all",
        config=_max_rows_config(7),
        validation=None,
        analyst_inputs={},
    )
    t = built.model.table("critical_complaints")
    assert t is not None
    # every critical/major complaint received in October 2026, counted here independently
    c = big["complaints"]
    expected = c.filter(
        (pl.col("received_date") >= date(2026, 10, 1))
        & (pl.col("received_date") <= date(2026, 10, 31))
        & pl.col("severity").is_in(["critical", "major"])
    )
    assert len(t.rows) == 7
    assert t.more == expected.height - 7
    assert t.register == "Critical complaints"
    assert t.order == "Critical before major, then oldest first."
    # the rule: critical first, then the oldest received
    assert set(t.column("severity")) == {"critical"}
    # by hand: critical are i = 0 mod 3, received on day 1 + (i mod 31); day 1 takes
    # i = 0, 93, 186, 279, 372 and day 2 i = 63, 156, 249, 342
    assert t.column("received_date") == ("2026-10-01",) * 5 + ("2026-10-02",) * 2
    assert t.column("complaint_id")[:5] == ("X-0000", "X-0093", "X-0186", "X-0279", "X-0372")
    reg = built.registers["critical_complaints"]
    assert reg.height == expected.height
    assert reg.columns == [c.id for c in t.columns]
    assert reg.head(7)["complaint_id"].to_list() == list(t.column("complaint_id"))
    first_major = reg["severity"].to_list().index("major")
    assert set(reg["severity"][:first_major]) == {"critical"}
    assert set(reg["severity"][first_major:]) == {"major"}
    # the model (what the kernel reads) holds the shown rows only
    assert reg["complaint_id"][-1] not in built.model.to_json()


def test_every_list_is_bounded_and_says_where_the_rest_is(data: dict[str, pl.DataFrame]) -> None:
    built = review.build_pack(
        _many_complaints(data, 60),
        period=PERIOD,
        scope="all",
        config=_max_rows_config(2),
        validation=fake_validation(data, {"capa"}),
        analyst_inputs={},
    )
    fixed = {"decisions", "kpi_definitions", "method_notes", "ledger"}
    for t in built.model.tables:
        if t.id in fixed:
            assert not t.register, t.id
            continue
        assert t.register, t.id
        assert t.id in built.registers, t.id
        reg = built.registers[t.id]
        if t.id == "site_signals":
            continue  # bounded by sites (columns), below
        pinned = 1 if t.id in ("complaint_ageing", "findings_by_type") else 0
        assert len(t.rows) <= 2 + pinned, t.id
        assert len(t.rows) + t.more == reg.height, t.id
    assert {t.register for t in built.model.tables if t.register} >= {
        "Critical complaints",
        "Overdue CAPA",
        "Supplier scorecard",
        "Defect codes",
    }


def test_per_site_tables_stay_narrow_with_50_sites(data: dict[str, pl.DataFrame]) -> None:
    sites = (*SITES, *(f"Site {i:02d}" for i in range(3, 51)))
    built = review.build_pack(
        data,
        period=PERIOD,
        scope="all",
        config=_max_rows_config(10, sites),
        validation=None,
        analyst_inputs={},
    )
    t = built.model.table("site_signals")
    assert t is not None
    assert len(t.columns) == 1 + 1 + 8  # measure, all sites, 8 sites
    assert t.more == 50 - 8
    # the sites with signals are the ones shown: South's defect ppm jumps in 2026-10
    assert "South" in [c.label for c in t.columns]
    reg = built.registers["site_signals"]
    assert reg.columns == ["kpi", "measure", "All sites", *sites]
    assert reg.height == len(t.rows)
    ageing = built.model.table("complaint_ageing")
    assert ageing is not None
    assert ageing.rows[0][0] == "All sites"
    opened = [r[-1] for r in ageing.rows[1:]]
    assert opened == sorted(opened, reverse=True)


def test_review_model_repr_is_one_line_of_counts(model: review.ReviewModel) -> None:
    text = repr(model)
    assert text == (
        f"<ReviewModel {PERIOD} 'all' of 'Hand-made Ltd': {len(model.sections)} sections, "
        f"{len(model.kpis)} KPI values, {len(model.trends)} trends, {len(model.tables)} tables, "
        f"{len(model.exceptions)} exceptions>"
    )
    assert len(text) < 200


def _with_open_line(data: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """``data`` and one open order line promised on the period's last day."""
    line = {
        "order_line_id": "PO-1/10",
        "supplier_id": "S1",
        "site": SITES[0],
        "promised_date": date(2026, 10, 31),
    }
    return data | {"open_orders": _frame("open_orders", [line])}


def test_trends_judge_open_lines_on_the_given_as_of(
    data: dict[str, pl.DataFrame], model: review.ReviewModel
) -> None:
    """``review.trends(as_of=)`` (what the suppliers notebook passes: ``Prepared.as_of``):
    the open line is pending on 2026-10-31 and late from 2026-11-01, as in the pack."""
    base = next(v for v in model.kpis if v.kpi == "supplier_otd_due_share" and v.scope == "all")
    assert base.numerator is not None
    assert base.denominator

    def last(as_of: date) -> float | None:
        (t,) = [
            t
            for t in review.trends(
                _with_open_line(data),
                period=PERIOD,
                scope="all",
                config=make_config(),
                section="c7",
                as_of=as_of,
            )
            if t.kpi == "supplier_otd_due_share" and t.scope == "all"
        ]
        assert t.months[-1] == PERIOD
        return t.values[-1]

    assert last(date(2026, 10, 31)) == pytest.approx(base.numerator / base.denominator)
    assert last(date(2026, 11, 1)) == pytest.approx(base.numerator / (base.denominator + 1))


def test_open_order_lines_are_judged_on_the_review_as_of_day(
    data: dict[str, pl.DataFrame], model: review.ReviewModel
) -> None:
    """build passes its as_of (else ``[review] as_of``) to the KPIs: an open line promised
    on the period's last day is pending as of that day and late the day after; the method
    notes say whether open lines were seen."""
    with_lines = _with_open_line(data)
    cfg = make_config()

    def otd(m: review.ReviewModel) -> Any:
        return next(v for v in m.kpis if v.kpi == "supplier_otd_due_share" and v.scope == "all")

    def notes(m: review.ReviewModel) -> dict[Any, Any]:
        table = next(t for t in m.tables if t.id == "method_notes")
        return {row[0]: row[1] for row in table.rows}

    base = otd(model)  # the same data without open lines
    pending = review.build(
        with_lines,
        period=PERIOD,
        scope="all",
        config=cfg,
        validation=None,
        as_of=date(2026, 10, 31),
    )
    assert (otd(pending).numerator, otd(pending).denominator) == (base.numerator, base.denominator)
    assert "1 open line not yet due at 2026-10-31 left out" in otd(pending).note
    assert "counts open purchase-order lines" in notes(pending)["Open order lines"]
    assert "No open purchase-order lines were supplied" in notes(model)["Open order lines"]
    late = review.build(
        with_lines,
        period=PERIOD,
        scope="all",
        config=replace(cfg, review=replace(cfg.review, as_of=date(2026, 11, 1))),
        validation=None,
    )
    assert otd(late).numerator == base.numerator
    assert otd(late).denominator == (base.denominator or 0) + 1
    assert "open line" not in otd(late).note
