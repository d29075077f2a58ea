"""The package API: compute_kpis / kpi_series shape, scopes, periods, notes, invariants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmskpi import kpis
from qmskpi.errors import KpiError, PeriodError
from qmskpi.periods import Period

Row = Callable[..., dict[str, Any]]
Make = Callable[..., pl.DataFrame]


# --------------------------------------------------------------------------- shape


def test_columns_and_types_are_exact(data: dict[str, pl.DataFrame]) -> None:
    out = kpis.compute_kpis(data, "2026-03")
    assert out.schema == pl.Schema(
        {
            "kpi": pl.String(),
            "scope": pl.String(),
            "period": pl.String(),
            "value": pl.Float64(),
            "numerator": pl.Float64(),
            "denominator": pl.Float64(),
            "unit": pl.String(),
            "sound": pl.Boolean(),
            "note": pl.String(),
        }
    )
    assert out.schema == pl.Schema(kpis.COLUMNS)


def test_rows_sorted_by_registry_then_scope(data: dict[str, pl.DataFrame]) -> None:
    out = kpis.compute_kpis(data, "2026-03")
    ids = list(kpis.REGISTRY)
    assert out.height == len(ids) * 3
    assert out["kpi"].to_list() == [k for k in ids for _ in range(3)]
    assert out["scope"].to_list() == ["all", "North", "South"] * len(ids)
    assert set(out["period"]) == {"2026-03"}
    assert out["unit"].to_list() == [kpis.REGISTRY[k].unit for k in out["kpi"]]


def test_one_site_gives_that_site_only(data: dict[str, pl.DataFrame]) -> None:
    both = kpis.compute_kpis(data, "2026-03")
    south = kpis.compute_kpis(data, "2026-03", "South")
    assert set(south["scope"]) == {"South"}
    assert south.equals(both.filter(pl.col("scope") == "South"))


def test_unknown_scope_says_did_you_mean(data: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(
        KpiError,
        match=r"unknown scope 'Nroth' \(did you mean 'North'\?\).*known: all, North, South",
    ):
        kpis.compute_kpis(data, "2026-03", "Nroth")


def test_period_beyond_the_data_names_the_newest_date(data: dict[str, pl.DataFrame]) -> None:
    # newest record: c16 closed 2026-04-10, so 2026-04 is allowed and 2026-05 is not
    kpis.compute_kpis(data, "2026-04")
    with pytest.raises(
        KpiError, match=r"period 2026-05 starts after the newest data \(2026-04-10\)"
    ):
        kpis.compute_kpis(data, "2026-05")
    with pytest.raises(KpiError, match="2026-04-10"):
        kpis.kpi_series(data, "2027")
    with pytest.raises(KpiError, match="newest data"):
        kpis.supplier_scorecard(data, "2026-Q3")


def test_bad_period_text_is_a_period_error(data: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(PeriodError):
        kpis.compute_kpis(data, "2026-13")


def test_absent_dataset_gives_null_rows_with_reason(
    data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    frames = {k: v for k, v in data.items() if k != "shipments"}
    out = kpis.compute_kpis(frames, "2026-03")
    rate = kpi_row(out, "complaint_rate_ppm")
    assert (rate["value"], rate["numerator"], rate["denominator"]) == (None, None, None)
    assert rate["note"] == "no data: shipments"
    assert kpi_row(out, "complaints_received")["value"] == 6  # unaffected


def test_no_data_at_all_is_not_a_crash() -> None:
    out = kpis.compute_kpis({}, "2026-03")
    assert out.height == len(kpis.REGISTRY)  # scope "all" only: no sites known
    assert out["value"].null_count() == out.height
    assert out["note"].str.starts_with("no data: ").all()


def test_site_with_no_data(data: dict[str, pl.DataFrame], make: Make, kpi_row: Row) -> None:
    # West appears only in the shipments: its counts are zero, its ratios null with a reason
    extra = make(
        "shipments", [{"site": "West", "product": "p1", "month": "2026-03", "units_shipped": 500}]
    )
    frames = dict(data, shipments=pl.concat([data["shipments"], extra]))
    out = kpis.compute_kpis(frames, "2026-03")
    assert sorted(set(out["scope"])) == ["North", "South", "West", "all"]
    assert kpi_row(out, "complaints_received", "West")["value"] == 0
    assert kpi_row(out, "complaints_open", "West")["value"] == 0
    assert kpi_row(out, "complaint_rate_ppm", "West")["value"] == 0.0  # 0 / 500
    fpy = kpi_row(out, "fpy_share", "West")
    assert (fpy["value"], fpy["note"]) == (None, "no inspections in period: share undefined")
    assert (
        kpi_row(out, "complaint_days_to_close_median", "West")["note"]
        == "no complaints closed in period"
    )
    # West's 500 units count in the whole scope: 6 / 150 500 x 1e6
    assert kpi_row(out, "complaint_rate_ppm")["value"] == pytest.approx(6 / 150_500 * 1e6)


def test_unsound_inputs_flag_their_kpis(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    out = kpis.compute_kpis(data, "2026-03", unsound={"complaints"})
    rate = kpi_row(out, "complaint_rate_ppm")
    assert rate["sound"] is False
    assert rate["value"] == pytest.approx(40.0)  # still computed: the pack decides how to show it
    assert rate["note"] == "inputs failed validation: complaints"
    assert kpi_row(out, "fpy_share")["sound"] is True
    # a null value keeps its reason, then the validation note
    site = kpi_row(out, "complaint_days_to_close_median", "North")
    assert site["sound"] is False
    jan = kpis.compute_kpis(data, "2026-01", unsound=["shipments"])
    assert kpi_row(jan, "complaint_rate_ppm", "South")["note"] == (
        "no shipments in period: rate undefined; inputs failed validation: shipments"
    )
    # one name as a plain string means that dataset, not its letters
    one = kpis.compute_kpis(data, "2026-03", unsound="complaints")
    assert kpi_row(one, "complaints_received")["sound"] is False
    with pytest.raises(KpiError, match="did you mean 'complaints'"):
        kpis.compute_kpis(data, "2026-03", unsound={"complaint"})


def test_set_aside_notes_go_on_sound_kpis_of_that_dataset_only(
    data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    note = "based on 5,022 of 5,300 complaints (278 set aside: blank customer 278)"
    out = kpis.compute_kpis(data, "2026-03", set_aside={"complaints": note})
    rate = kpi_row(out, "complaint_rate_ppm")
    assert (rate["sound"], rate["value"], rate["note"]) == (True, pytest.approx(40.0), note)
    assert kpi_row(out, "fpy_share")["note"] is None  # inspections: nothing set aside
    # an unsound dataset's KPIs say why they are struck out, not what they are based on
    struck = kpis.compute_kpis(
        data, "2026-03", unsound={"complaints"}, set_aside={"complaints": note}
    )
    assert kpi_row(struck, "complaint_rate_ppm")["note"] == "inputs failed validation: complaints"


def test_a_kpi_reading_a_mapping_constant_is_not_measured(
    data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    out = kpis.compute_kpis(data, "2026-03", constants={"receipts": ("qty_rejected",)})
    ppm = kpi_row(out, "supplier_ppm")
    assert ppm["sound"] is False
    assert ppm["note"] == "not measured: qty_rejected is a mapping constant"
    # on-time delivery reads promised and received dates only: still measured
    assert kpi_row(out, "supplier_otd_share")["sound"] is True
    series = kpis.kpi_series(
        data, "2026-03", months=3, constants={"receipts": ("qty_rejected",)}
    ).filter((pl.col("kpi") == "supplier_ppm") & (pl.col("scope") == "all"))
    assert series["sound"].to_list() == [False, False, False]


def test_mapping_constants_leave_out_the_site_of_a_one_site_export() -> None:
    from qmskpi.config import from_dict

    cfg = from_dict(
        {
            "organisation": {"name": "T", "sites": ["North"]},
            "sources": {
                "receipts": {"path": "r.csv", "constants": {"qty_rejected": 0, "site": "North"}},
                "complaints": {"path": "c.csv", "constants": {"site": "North"}},
            },
        }
    )
    assert kpis.mapping_constants(cfg) == {"receipts": ("qty_rejected",)}


def test_bad_frames_raise_kpi_errors(data: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(KpiError, match="unknown dataset 'complaint'"):
        kpis.compute_kpis({"complaint": data["complaints"]}, "2026-03")
    with pytest.raises(KpiError, match="no column 'received_date'"):
        kpis.compute_kpis({"complaints": data["complaints"].drop("received_date")}, "2026-03")
    wrong = data["complaints"].with_columns(pl.col("received_date").cast(pl.String()))
    with pytest.raises(KpiError, match="column 'received_date' is String, expected Date"):
        kpis.compute_kpis({"complaints": wrong}, "2026-03")


def test_lazy_frames_and_extra_columns_are_accepted(data: dict[str, pl.DataFrame]) -> None:
    lazy = {k: v.lazy().with_columns(extra=pl.lit(1)) for k, v in data.items()}
    assert kpis.compute_kpis(lazy, "2026-03").equals(kpis.compute_kpis(data, "2026-03"))  # type: ignore[arg-type]


def test_no_nan_or_inf_anywhere(data: dict[str, pl.DataFrame]) -> None:
    out = kpis.kpi_series(data, "2026-04", months=8)
    values = out["value"].drop_nulls()
    assert not values.is_nan().any()
    assert not values.is_infinite().any()
    # every null value says why
    assert out.filter(pl.col("value").is_null() & pl.col("note").is_null()).height == 0


# --------------------------------------------------------------------------- periods


def test_quarter_and_year_counts_are_recomputed_from_rows(
    data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    q1 = kpis.compute_kpis(data, "2026-Q1")
    assert set(q1["period"]) == {"2026-Q1"}
    # complaints received in Q1: Jan 3 + Feb 4 + Mar 6 = 13
    assert kpi_row(q1, "complaints_received")["value"] == 13
    # days to close over Q1 closures (not a median of monthly medians):
    # Jan c01 2025-12-20 -> 01-10 = 21, c12 12-31 -> 01-05 = 5; Feb none; Mar 54, 3, 49, 23, 88
    # sorted [3, 5, 21, 23, 49, 54, 88] -> median 23
    assert kpi_row(q1, "complaint_days_to_close_median")["value"] == 23.0
    # open at the quarter's end = open at March's end
    assert kpi_row(q1, "complaints_open")["value"] == 10
    year = kpis.compute_kpis(data, "2026")
    assert year["period"][0] == "2026"
    # 2026 received: Q1 13 + nothing after March = 13
    assert kpi_row(year, "complaints_received")["value"] == 13


def test_series_month_equals_compute_kpis_of_that_month(data: dict[str, pl.DataFrame]) -> None:
    series = kpis.kpi_series(data, "2026-04", months=7)
    assert series["period"].unique(maintain_order=True).to_list() == [
        "2025-10",
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
    ]
    # with every source declared covered (no gaps), each month is compute_kpis of that month
    covered = kpis.kpi_series(data, "2026-04", months=7, coverage=dict.fromkeys(data))
    for label in ("2025-12", "2026-01", "2026-02", "2026-03", "2026-04"):
        month = kpis.compute_kpis(data, label)
        assert covered.filter(pl.col("period") == label).equals(month), label
    # without: a month with no rows at all in a dataset is a gap, never a zero
    gaps = series.filter(pl.col("note").str.starts_with("gap: "))
    assert gaps["value"].null_count() == gaps.height


def test_series_order_is_kpi_scope_period(data: dict[str, pl.DataFrame]) -> None:
    series = kpis.kpi_series(data, "2026-03", months=2)
    head = series.head(6).select("kpi", "scope", "period").rows()
    assert head == [
        ("complaints_received", "all", "2026-02"),
        ("complaints_received", "all", "2026-03"),
        ("complaints_received", "North", "2026-02"),
        ("complaints_received", "North", "2026-03"),
        ("complaints_received", "South", "2026-02"),
        ("complaints_received", "South", "2026-03"),
    ]


def test_series_gaps_are_not_zeros_unless_the_source_covers_the_month(make: Make) -> None:
    rows = [
        {
            "complaint_id": "a",
            "received_date": date(2026, 1, 10),
            "closed_date": date(2026, 1, 20),
            "site": "X",
            "customer": "k",
        },
        {
            "complaint_id": "b",
            "received_date": date(2026, 3, 5),
            "closed_date": None,
            "site": "X",
            "customer": "m",
        },
    ]
    data = {"complaints": make("complaints", rows)}

    def received(**kw: Any) -> pl.DataFrame:
        series = kpis.kpi_series(data, "2026-03", months=4, **kw)
        return series.filter((pl.col("kpi") == "complaints_received") & (pl.col("scope") == "all"))

    # Dec 2025 is before the first complaint (2026-01-10): null. Feb has no complaint
    # received or closed at all: a gap (null), not a zero: nothing says the source covers it.
    plain = received()
    assert plain["value"].to_list() == [None, 1, None, 1]
    assert plain["note"].to_list() == [
        "before data: complaints starts 2026-01-10",
        None,
        "gap: no complaints records in 2026-02",
        None,
    ]
    # zero_means_zero (coverage from the first record): Feb is a true zero
    assert received(coverage={"complaints": None})["value"].to_list() == [None, 1, 0, 1]
    # coverage_start = "2025-12": December is covered too, so 0 complaints, not "before data"
    from_dec = received(coverage={"complaints": "2025-12"})
    assert from_dec["value"].to_list() == [0, 1, 0, 1]
    assert from_dec["note"].to_list() == [None] * 4
    # coverage_start after a month: that month is a gap again
    assert received(coverage={"complaints": "2026-03"})["value"].to_list() == [None, 1, None, 1]
    series = kpis.kpi_series(data, "2026-03", months=4, coverage={"complaints": None})
    closed_share = series.filter(
        (pl.col("kpi") == "complaints_closed_on_time_share") & (pl.col("scope") == "all")
    )
    assert closed_share["value"].to_list() == [None, 1.0, None, None]
    assert closed_share["note"].to_list()[2] == "no complaints closed in period: share undefined"
    with pytest.raises(KpiError, match="did you mean 'complaints'"):
        kpis.kpi_series(data, "2026-03", coverage={"complaint": None})


def test_series_covers_a_quarter_by_its_last_month(data: dict[str, pl.DataFrame]) -> None:
    series = kpis.kpi_series(data, "2026-Q1", months=3)
    assert series["period"].unique(maintain_order=True).to_list() == [
        "2026-01",
        "2026-02",
        "2026-03",
    ]


def test_ytd_period_object_is_accepted(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    ytd = Period(date(2026, 1, 1), date(2026, 2, 28), "year")
    out = kpis.compute_kpis(data, ytd)
    assert kpi_row(out, "complaints_received")["value"] == 7  # Jan 3 + Feb 4


# --------------------------------------------------------------------------- invariants


def test_determinism_and_row_order_independence(data: dict[str, pl.DataFrame]) -> None:
    first = kpis.kpi_series(data, "2026-03", months=5)
    again = kpis.kpi_series(data, "2026-03", months=5)
    shuffled = {k: v.sample(fraction=1.0, shuffle=True, seed=7) for k, v in data.items()}
    third = kpis.kpi_series(shuffled, "2026-03", months=5)
    assert first.equals(again)
    assert first.equals(third)
    assert first.write_csv() == third.write_csv()


SITES = ["A", "B", "C"]
START = date(2026, 1, 1)
day = st.integers(0, 89).map(lambda n: START + timedelta(days=n))
maybe_later = st.one_of(st.none(), st.integers(0, 60))


def _closed(opened: date, later: int | None) -> date | None:
    return None if later is None else opened + timedelta(days=later)


def _records(draw: Callable[[st.SearchStrategy[Any]], Any], make: Make) -> dict[str, pl.DataFrame]:
    site = st.sampled_from(SITES)
    # one anchor on the last day, so 2026-03 is never beyond the data
    complaints = [
        {"complaint_id": "anchor", "received_date": date(2026, 3, 31), "site": "A", "customer": "z"}
    ]
    for i in range(draw(st.integers(1, 14))):
        received = draw(day)
        complaints.append(
            {
                "complaint_id": f"c{i}",
                "received_date": received,
                "closed_date": _closed(received, draw(maybe_later)),
                "site": draw(site),
                "customer": draw(st.sampled_from(["x", "y"])),
                "product": draw(st.sampled_from(["p", "q"])),
            }
        )
    shipments = [
        {"site": s, "product": "p", "month": m, "units_shipped": draw(st.integers(0, 5000))}
        for s in SITES
        for m in ("2026-01", "2026-02", "2026-03")
        if draw(st.booleans())
    ]
    receipts = []
    for i in range(draw(st.integers(0, 10))):
        received = draw(day)
        qty = draw(st.integers(1, 500))
        receipts.append(
            {
                "receipt_id": f"r{i}",
                "supplier_id": "S1",
                "site": draw(site),
                "promised_date": received + timedelta(days=draw(st.integers(-5, 5))),
                "received_date": received,
                "qty_received": qty,
                "qty_rejected": draw(st.integers(0, qty)),
            }
        )
    inspections = []
    for i in range(draw(st.integers(0, 14))):
        qty = draw(st.integers(1, 100))
        defective = draw(st.integers(0, qty))
        inspections.append(
            {
                "inspection_id": f"i{i}",
                "inspection_date": draw(day),
                "site": draw(site),
                "stage": draw(st.sampled_from(["incoming", "in_process", "final"])),
                "qty_inspected": qty,
                "qty_defective": defective,
                "result": "pass" if defective == 0 else "fail",
            }
        )
    capas = []
    for i in range(draw(st.integers(0, 8))):
        opened = draw(day)
        capas.append(
            {
                "capa_id": f"k{i}",
                "source": "internal",
                "site": draw(site),
                "opened_date": opened,
                "due_date": opened + timedelta(days=draw(st.integers(0, 40))),
                "closed_date": _closed(opened, draw(maybe_later)),
                "effectiveness_verified": draw(st.one_of(st.none(), st.booleans())),
            }
        )
    findings = []
    for i in range(draw(st.integers(0, 8))):
        audited = draw(day)
        findings.append(
            {
                "finding_id": f"f{i}",
                "audit_date": audited,
                "site": draw(site),
                "type": draw(st.sampled_from(["major_nc", "minor_nc", "observation", "ofi"])),
                "closed_date": _closed(audited, draw(maybe_later)),
            }
        )
    surveys = [
        {
            "response_id": f"s{i}",
            "response_date": draw(day),
            "site": draw(site),
            "score": float(draw(st.integers(0, 10))),
            "scale_max": draw(st.sampled_from([5, 10])),
        }
        for i in range(draw(st.integers(0, 10)))
    ]
    return {
        "complaints": make("complaints", complaints),
        "shipments": make("shipments", shipments),
        "receipts": make("receipts", receipts),
        "inspections": make("inspections", inspections),
        "capa": make("capa", capas),
        "audit_findings": make("audit_findings", findings),
        "surveys": make("surveys", surveys),
    }


ADDITIVE = [
    k.id
    for k in kpis.REGISTRY.values()
    if k.per_site and (k.numerator is not None or k.denominator is not None)
]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_site_numerators_and_denominators_add_up_to_the_whole_scope(
    make: Make, data: st.DataObject
) -> None:
    frames = _records(data.draw, make)
    out = kpis.kpi_series(frames, "2026-03", months=3)
    whole = out.filter(pl.col("scope") == "all")
    sites = (
        out.filter(pl.col("scope") != "all")
        .group_by("kpi", "period")
        .agg(
            pl.col("numerator").sum().alias("num_sum"), pl.col("denominator").sum().alias("den_sum")
        )
    )
    joined = whole.join(sites, on=["kpi", "period"], how="left").filter(
        pl.col("kpi").is_in(ADDITIVE)
    )
    assert joined.height == len(ADDITIVE) * 3
    for row in joined.iter_rows(named=True):
        if row["numerator"] is not None:
            assert row["num_sum"] == pytest.approx(row["numerator"]), row
        if row["denominator"] is not None:
            assert row["den_sum"] == pytest.approx(row["denominator"]), row
        # and the whole-scope value is the ratio of those totals, never a mean of site values
        kind = kpis.REGISTRY[row["kpi"]].kind
        if kind in ("proportion", "rate") and row["denominator"]:
            scale = 1e6 if kind == "rate" else 1.0
            assert row["value"] == pytest.approx(row["numerator"] / row["denominator"] * scale)


def test_only_computes_the_named_kpis_with_the_same_values(data: dict[str, pl.DataFrame]) -> None:
    every = kpis.compute_kpis(data, "2026-03")
    picked = ["defect_ppm", "complaints_received"]
    some = kpis.compute_kpis(data, "2026-03", only=picked)
    assert set(some["kpi"]) == set(picked)
    # registry order, and the same rows as the full computation
    assert some.equals(every.filter(pl.col("kpi").is_in(picked)))


def test_only_names_an_unknown_kpi_with_a_hint(data: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(KpiError, match=r"unknown KPI 'defect_pmm'.*did you mean 'defect_ppm'"):
        kpis.compute_kpis(data, "2026-03", only=["defect_pmm"])
