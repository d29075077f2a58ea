"""Customer KPIs (9.1.2): expected values worked out by hand from tests/kpis/conftest.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import polars as pl
import pytest

from qmskpi import kpis
from qmskpi.config import KpiConfig

Row = Callable[..., dict[str, Any]]


@pytest.fixture
def march(data: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return kpis.compute_kpis(data, "2026-03")


def test_complaints_received(march: pl.DataFrame, kpi_row: Row) -> None:
    # received in 2026-03: North c03 (03-02), c09 (03-25), c11 (03-31) = 3;
    # South c04 (03-03), c05 (03-20), c10 (03-25) = 3; all 3 + 3 = 6
    assert kpi_row(march, "complaints_received", "North")["value"] == 3
    assert kpi_row(march, "complaints_received", "South")["value"] == 3
    row = kpi_row(march, "complaints_received")
    assert (row["value"], row["numerator"], row["denominator"]) == (6, 6, None)


def test_complaint_rate_ppm(march: pl.DataFrame, kpi_row: Row) -> None:
    # North: 3 / (40 000 + 10 000) x 1e6 = 60; South: 3 / 100 000 x 1e6 = 30
    # all: 6 / 150 000 x 1e6 = 40 (not the mean of 60 and 30, which is 45)
    north = kpi_row(march, "complaint_rate_ppm", "North")
    assert (north["value"], north["numerator"], north["denominator"]) == (60.0, 3, 50_000)
    assert kpi_row(march, "complaint_rate_ppm", "South")["value"] == pytest.approx(30.0)
    assert kpi_row(march, "complaint_rate_ppm")["value"] == pytest.approx(40.0)


def test_complaint_rate_without_shipments_is_null_with_reason(
    data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    # South ships nothing in 2026-01 but receives c14 (01-02) and c16 (01-15): 2 / 0
    jan = kpi_row(kpis.compute_kpis(data, "2026-01"), "complaint_rate_ppm", "South")
    assert jan["value"] is None
    assert (jan["numerator"], jan["denominator"]) == (2, 0)
    assert jan["note"] == "no shipments in period: rate undefined"


def test_quarter_rate_is_recomputed_from_rows_not_mean_of_months(
    data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    # whole scope, complaints per month: Jan c02, c14, c16 = 3; Feb c07, c13, c15, c17 = 4; Mar 6
    # units: Jan 10 000; Feb 20 000 + 30 000 = 50 000; Mar 150 000
    # monthly rates: 3/10 000 x 1e6 = 300, 4/50 000 x 1e6 = 80, 40 -> mean 140
    # quarter: (3 + 4 + 6) / 210 000 x 1e6 = 13 / 210 000 x 1e6 = 61.904761904...
    q1 = kpi_row(kpis.compute_kpis(data, "2026-Q1"), "complaint_rate_ppm")
    assert q1["value"] == pytest.approx(13 / 210_000 * 1e6)
    assert (q1["numerator"], q1["denominator"]) == (13, 210_000)
    series = kpis.kpi_series(data, "2026-03", months=3).filter(
        (pl.col("kpi") == "complaint_rate_ppm") & (pl.col("scope") == "all")
    )
    monthly = series["value"].to_list()
    assert monthly == pytest.approx([300.0, 80.0, 40.0])
    assert q1["value"] != pytest.approx(sum(monthly) / 3)


def test_days_to_close_median_and_p90(march: pl.DataFrame, kpi_row: Row) -> None:
    # closed in 2026-03 (days received -> closed):
    #   North c02 01-15 -> 03-10 = 16 + 28 + 10 = 54; c03 03-02 -> 03-05 = 3; c07 02-10 -> 03-31 = 18 + 31 = 49
    #   South c13 02-20 -> 03-15 = 8 + 15 = 23; c14 01-02 -> 03-31 = 29 + 28 + 31 = 88
    # North [3, 49, 54]: median 49; p90 at 0.9 x 2 = 1.8 -> 49 + 0.8 x (54 - 49) = 53
    # South [23, 88]: median (23 + 88) / 2 = 55.5; p90 at 0.9 -> 23 + 0.9 x 65 = 81.5
    # all [3, 23, 49, 54, 88]: median 49; p90 at 0.9 x 4 = 3.6 -> 54 + 0.6 x 34 = 74.4
    expected = {"North": (49.0, 53.0, 3), "South": (55.5, 81.5, 2), "all": (49.0, 74.4, 5)}
    for scope, (median, p90, n) in expected.items():
        m = kpi_row(march, "complaint_days_to_close_median", scope)
        p = kpi_row(march, "complaint_days_to_close_p90", scope)
        assert m["value"] == pytest.approx(median)
        assert p["value"] == pytest.approx(p90)
        assert m["denominator"] == p["denominator"] == n
        assert m["numerator"] is None


def test_p90_is_numpy_linear_interpolation(make: Callable[..., pl.DataFrame], kpi_row: Row) -> None:
    # days 1..10 closed in one month: numpy's default percentile(90) = 1 + 0.9 x 9 = 9.1
    rows = [
        {
            "complaint_id": f"c{d}",
            "received_date": date(2026, 5, 1),
            "closed_date": date(2026, 5, 1 + d),
            "site": "X",
            "customer": f"k{d}",
        }
        for d in range(1, 11)
    ]
    out = kpis.compute_kpis({"complaints": make("complaints", rows)}, "2026-05")
    assert kpi_row(out, "complaint_days_to_close_p90")["value"] == pytest.approx(9.1)
    assert float(np.percentile(np.arange(1, 11), 90)) == pytest.approx(9.1)
    # median of an even count is the mean of the two middle values: (5 + 6) / 2
    assert kpi_row(out, "complaint_days_to_close_median")["value"] == 5.5


def test_closed_on_time_share(
    march: pl.DataFrame, kpi_row: Row, data: dict[str, pl.DataFrame]
) -> None:
    # target 30 days: North [3, 49, 54] -> 1 of 3; South [23, 88] -> 1 of 2; all 2 of 5 = 0.4
    north = kpi_row(march, "complaints_closed_on_time_share", "North")
    assert (north["numerator"], north["denominator"]) == (1, 3)
    assert north["value"] == pytest.approx(1 / 3)
    assert kpi_row(march, "complaints_closed_on_time_share", "South")["value"] == 0.5
    assert kpi_row(march, "complaints_closed_on_time_share")["value"] == pytest.approx(0.4)
    # target 50 days: North 3, 49 -> 2 of 3; South 23 -> 1 of 2; all 3 of 5 = 0.6
    loose = kpis.compute_kpis(data, "2026-03", config=KpiConfig(complaint_close_target_days=50))
    assert kpi_row(loose, "complaints_closed_on_time_share")["value"] == pytest.approx(0.6)


def test_complaints_open_and_ageing(march: pl.DataFrame, kpi_row: Row) -> None:
    # open at 2026-03-31 (received <= end, closed null or > end), age = end - received:
    #   North c09 (03-25) 6, c11 (03-31) 0, c15 (02-01) 27 + 31 = 58, c17 (02-28) 0 + 31 = 31
    #   South c04 (03-03) 28, c05 (03-20, closed 04-02 > end) 11, c06 (2025-11-10) 20 + 31 + 31 + 28 + 31 = 141,
    #         c10 (03-25) 6, c16 (01-15, closed 04-10) 16 + 28 + 31 = 75, c18 (2025-12-31) 0 + 31 + 28 + 31 = 90
    #   not open: c07 and c14 closed exactly on 03-31 (closed_date > end is false)
    expected = {
        # scope: open, 0-30, 31-60, 61-90, >90
        "North": (4, 2, 2, 0, 0),  # 6, 0 | 58, 31
        "South": (6, 3, 0, 2, 1),  # 28, 11, 6 | - | 75, 90 | 141
        "all": (10, 5, 2, 2, 1),
    }
    ids = [
        "complaints_open",
        "complaints_open_age_0_30",
        "complaints_open_age_31_60",
        "complaints_open_age_61_90",
        "complaints_open_age_over_90",
    ]
    for scope, values in expected.items():
        assert tuple(kpi_row(march, k, scope)["value"] for k in ids) == values


def test_item_opened_and_closed_in_the_same_period(
    march: pl.DataFrame, make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    # c03: received 03-02 and closed 03-05 -> counted as received and as closed in March, not open at end
    frame = make(
        "complaints",
        [
            {
                "complaint_id": "x",
                "received_date": date(2026, 3, 2),
                "closed_date": date(2026, 3, 5),
                "site": "X",
                "customer": "k",
            }
        ],
    )
    out = kpis.compute_kpis({"complaints": frame}, "2026-03")
    assert kpi_row(out, "complaints_received")["value"] == 1
    assert kpi_row(out, "complaint_days_to_close_median")["value"] == 3  # 03-02 -> 03-05
    assert kpi_row(out, "complaints_open")["value"] == 0


def test_repeat_share(march: pl.DataFrame, kpi_row: Row) -> None:
    # received in March and their latest earlier complaint with the same customer+product+category:
    #   c03 beta/p2/leak   <- c07 02-10: 20 days      -> repeat (North)
    #   c04 acme/p1/noise  <- c02 01-15: 47 days      -> repeat (South; the earlier one is North's)
    #   c05 gamma/p3/label  none                      -> no
    #   c09, c10 delta/p1/noise same day 03-25, <- c06 2025-11-10: 135 days > 90 -> no (same day is no repeat)
    #   c11 eps/p9/crack   <- c12 2025-12-31: 90 days -> repeat (the window includes day 90)
    # North c03, c09, c11 -> 2/3; South c04, c05, c10 -> 1/3; all 3/6 = 0.5
    north = kpi_row(march, "complaints_repeat_share", "North")
    assert (north["numerator"], north["denominator"]) == (2, 3)
    assert kpi_row(march, "complaints_repeat_share", "South")["value"] == pytest.approx(1 / 3)
    assert kpi_row(march, "complaints_repeat_share")["value"] == 0.5


def test_repeat_window_is_configurable(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    # window 30 days: c03 (20 days) stays a repeat; c04 (47) and c11 (90) do not -> 1/6
    out = kpis.compute_kpis(data, "2026-03", config=KpiConfig(repeat_window_days=30))
    assert kpi_row(out, "complaints_repeat_share")["numerator"] == 1


def test_satisfaction_mean(march: pl.DataFrame, kpi_row: Row) -> None:
    # score / scale_max: North r1 9/10 = 0.9, r2 6/10 = 0.6, r3 4/5 = 0.8 -> 2.3 / 3 = 0.7667
    # South r4 1.0, r5 0.7, r6 0.8 -> 2.5 / 3 = 0.8333; all 4.8 / 6 = 0.8 (r7 is February)
    north = kpi_row(march, "satisfaction_mean", "North")
    assert north["value"] == pytest.approx(2.3 / 3)
    assert (north["numerator"], north["denominator"]) == (pytest.approx(2.3), 3)
    assert kpi_row(march, "satisfaction_mean", "South")["value"] == pytest.approx(2.5 / 3)
    assert kpi_row(march, "satisfaction_mean")["value"] == pytest.approx(0.8)


def test_nps(march: pl.DataFrame, kpi_row: Row) -> None:
    # 0-10 responses only (r3 is on a 5-point scale): promoters >= 9, detractors <= 6
    # North r1 9 promoter, r2 6 detractor -> 100 x (1 - 1) / 2 = 0
    # South r4 10 promoter, r5 7 and r6 8 passives -> 100 x (1 - 0) / 3 = 33.33
    # all: 100 x (2 - 1) / 5 = 20
    north = kpi_row(march, "nps", "North")
    assert (north["value"], north["numerator"], north["denominator"]) == (0.0, 0, 2)
    assert kpi_row(march, "nps", "South")["value"] == pytest.approx(100 / 3)
    assert kpi_row(march, "nps")["value"] == pytest.approx(20.0)


def test_nps_without_ten_point_responses(make: Callable[..., pl.DataFrame], kpi_row: Row) -> None:
    frame = make(
        "surveys",
        [
            {
                "response_id": "r",
                "response_date": date(2026, 3, 1),
                "site": "X",
                "score": 5.0,
                "scale_max": 5,
            }
        ],
    )
    out = kpis.compute_kpis({"surveys": frame}, "2026-03")
    assert kpi_row(out, "satisfaction_mean")["value"] == 1.0  # 5 / 5
    nps = kpi_row(out, "nps")
    assert nps["value"] is None
    assert nps["note"] == "no survey responses on a 0-10 scale in period"


def test_leap_day_counts_in_february(make: Callable[..., pl.DataFrame], kpi_row: Row) -> None:
    rows = [
        {
            "complaint_id": "a",
            "received_date": date(2028, 2, 29),
            "closed_date": None,
            "site": "X",
            "customer": "k1",
        },
        {
            "complaint_id": "b",
            "received_date": date(2028, 2, 28),
            "closed_date": date(2028, 2, 29),
            "site": "X",
            "customer": "k2",
        },
        {
            "complaint_id": "c",
            "received_date": date(2028, 1, 30),
            "closed_date": date(2028, 3, 1),
            "site": "X",
            "customer": "k3",
        },
    ]
    data = {"complaints": make("complaints", rows)}
    series = kpis.kpi_series(data, "2028-03", months=3).filter(pl.col("scope") == "all")

    def values(kpi: str) -> list[Any]:
        return series.filter(pl.col("kpi") == kpi)["value"].to_list()

    # a (02-29) and b (02-28) are February complaints; c January
    assert values("complaints_received") == [1, 2, 0]
    # b closes 02-29 after 1 day; c closes 03-01 after 1 + 29 + 1 = 31 days (2028 is a leap year)
    assert values("complaint_days_to_close_median") == [None, 1.0, 31.0]
    # at 2028-02-29: a (age 0) and c (age 30) open; b closed on the last day
    assert values("complaints_open")[1] == 2
    assert values("complaints_open_age_0_30")[1] == 2


def test_complaint_ageing_table(data: dict[str, pl.DataFrame]) -> None:
    table = kpis.complaint_ageing(data, "2026-03")
    assert table.columns == ["scope", "bucket", "lowest_days", "highest_days", "open", "share"]
    south = table.filter(pl.col("scope") == "South")
    # South: 0-30: c04, c05, c10; 61-90: c16, c18; >90: c06 -> 3, 0, 2, 1 of 6
    assert south["open"].to_list() == [3, 0, 2, 1]
    assert south["share"].to_list() == pytest.approx([0.5, 0.0, 1 / 3, 1 / 6])
    assert table["scope"].unique(maintain_order=True).to_list() == ["all", "North", "South"]
    assert table.filter(pl.col("scope") == "all")["open"].to_list() == [5, 2, 2, 1]


def test_repeat_complaints_listing(data: dict[str, pl.DataFrame]) -> None:
    table = kpis.repeat_complaints(data, "2026-03")
    assert table["complaint_id"].to_list() == ["c03", "c04", "c11"]
    assert table["previous_complaint_id"].to_list() == ["c07", "c02", "c12"]
    assert table["days_since_previous"].to_list() == [20, 47, 90]
    assert table["previous_site"].to_list() == ["North", "North", "North"]
    # one site only
    assert kpis.repeat_complaints(data, "2026-03", "South")["complaint_id"].to_list() == ["c04"]


# --------------------------------------------------------------------------- issue 16 revisions


def _c(cid: str, received: date, closed: date | None, **kw: Any) -> dict[str, Any]:
    base = {"site": "X", "customer": "k", "product": "p", "category": "c"}
    return {"complaint_id": cid, "received_date": received, "closed_date": closed, **base, **kw}


def test_on_time_including_the_open_backlog(march: pl.DataFrame, kpi_row: Row) -> None:
    # closed in March: North c02 (54 days), c03 (3), c07 (49); South c13 (23), c14 (88)
    #   on time (<= 30): North c03, South c13
    # open at 03-31 older than 30 days: North c15 (58), c17 (31: 30 vs 31 days);
    #   South c06 (141), c16 (75), c18 (90); c04 (28), c05 (11), c09/c10 (6), c11 (0) are not
    # North 1 / (3 + 2) = 0.2; South 1 / (2 + 3) = 0.2; all 2 / (5 + 5) = 0.2
    for scope, (num, den) in {"North": (1, 5), "South": (1, 5), "all": (2, 10)}.items():
        row = kpi_row(march, "complaints_on_time_incl_backlog_share", scope)
        assert (row["numerator"], row["denominator"]) == (num, den), scope
        assert row["value"] == pytest.approx(num / den)
    # the closed-only share is unchanged: 1/3, 1/2, 2/5
    assert kpi_row(march, "complaints_closed_on_time_share")["value"] == pytest.approx(0.4)


def test_backlog_boundary_30_vs_31_days(make: Callable[..., pl.DataFrame], kpi_row: Row) -> None:
    # open at 03-31: received 03-01 (age 30: within target), 02-28 (age 31: late);
    # closed 03-31 after exactly 30 days (03-01 -> 03-31): on time
    frame = make(
        "complaints",
        [
            _c("a", date(2026, 3, 1), None),
            _c("b", date(2026, 2, 28), None),
            _c("c", date(2026, 3, 1), date(2026, 3, 31)),
        ],
    )
    out = kpis.compute_kpis({"complaints": frame}, "2026-03")
    row = kpi_row(out, "complaints_on_time_incl_backlog_share")
    assert (row["value"], row["numerator"], row["denominator"]) == (0.5, 1, 2)
    assert kpi_row(out, "complaints_closed_on_time_share")["value"] == 1.0


def test_backlog_share_with_nothing_to_judge(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    # one complaint open 5 days, nothing closed: neither count -> undefined, with its reason
    frame = make("complaints", [_c("a", date(2026, 3, 26), None)])
    row = kpi_row(
        kpis.compute_kpis({"complaints": frame}, "2026-03"),
        "complaints_on_time_incl_backlog_share",
    )
    assert row["value"] is None
    assert row["denominator"] == 0
    assert "none open past target" in row["note"]


def test_close_target_per_severity(make: Callable[..., pl.DataFrame], kpi_row: Row) -> None:
    # targets: critical 5 days, major 20, minor (not listed) the default 30
    # closed in March: critical 6 days (late), major 20 days (on time, on the target day),
    #   minor 25 days (on time); open at 03-31: critical aged 6 (late), major aged 21 (late),
    #   minor aged 21 (within 30)
    frame = make(
        "complaints",
        [
            _c("c1", date(2026, 3, 1), date(2026, 3, 7), severity="critical"),
            _c("c2", date(2026, 3, 1), date(2026, 3, 21), severity="major"),
            _c("c3", date(2026, 3, 1), date(2026, 3, 26), severity="minor"),
            _c("o1", date(2026, 3, 25), None, severity="critical"),
            _c("o2", date(2026, 3, 10), None, severity="major"),
            _c("o3", date(2026, 3, 10), None, severity="minor"),
        ],
    )
    cfg = KpiConfig(complaint_close_target_days_by_severity={"critical": 5, "major": 20})
    out = kpis.compute_kpis({"complaints": frame}, "2026-03", config=cfg)
    closed = kpi_row(out, "complaints_closed_on_time_share")
    assert (closed["numerator"], closed["denominator"]) == (2, 3)
    backlog = kpi_row(out, "complaints_on_time_incl_backlog_share")
    assert (backlog["numerator"], backlog["denominator"]) == (2, 5)
    # without per-severity targets every target is 30: all three closed on time, no open late
    plain = kpis.compute_kpis({"complaints": frame}, "2026-03")
    assert kpi_row(plain, "complaints_on_time_incl_backlog_share")["value"] == 1.0


def test_complaints_by_severity(make: Callable[..., pl.DataFrame], kpi_row: Row) -> None:
    frame = make(
        "complaints",
        [
            _c("a", date(2026, 3, 1), None, severity="critical"),
            _c("b", date(2026, 3, 31), None, severity="major", site="Y"),
            _c("c", date(2026, 3, 15), None, severity="major"),
            _c("d", date(2026, 2, 28), None, severity="critical"),  # February
        ],
    )
    out = kpis.compute_kpis({"complaints": frame}, "2026-03")
    assert kpi_row(out, "complaints_received_critical")["value"] == 1
    assert kpi_row(out, "complaints_received_major")["value"] == 2
    assert kpi_row(out, "complaints_received_major", "Y")["value"] == 1
    assert kpi_row(out, "complaints_received_minor")["value"] == 0


def test_recurrence_after_closure(march: pl.DataFrame, kpi_row: Row) -> None:
    # received in March: North c03, c09, c11; South c04, c05, c10
    # c04 (acme/p1/noise, 03-03): c01 closed 01-10, 52 days before -> recurrence
    # c11 (eps/p9/crack, 03-31): c12 closed 01-05, 85 days before -> recurrence
    # c03 (beta/p2/leak, 03-02): c07 received 02-10 (a repeat) but still open then -> no
    # c09/c10 (delta): c06 still open, each other same day -> no
    # North 1/3, South 1/3, all 2/6; the repeat share counts c03 too (North 2/3)
    for scope, num in {"North": 1, "South": 1, "all": 2}.items():
        row = kpi_row(march, "complaints_recurrence_share", scope)
        assert (row["numerator"], row["denominator"]) == (num, 6 if scope == "all" else 3)
    assert kpi_row(march, "complaints_repeat_share", "North")["numerator"] == 2


@pytest.mark.parametrize(
    ("closed", "recurs"),
    [
        (date(2026, 3, 10), False),  # closed the day the new one came: not a recurrence
        (date(2026, 3, 9), True),  # 1 day before
        (date(2025, 12, 10), True),  # 90 days before (window edge, included)
        (date(2025, 12, 9), False),  # 91 days before
        (None, False),  # still open: the fix had not been made
    ],
)
def test_recurrence_boundaries(
    closed: date | None, recurs: bool, make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    frame = make(
        "complaints",
        [_c("old", date(2025, 12, 1), closed), _c("new", date(2026, 3, 10), None)],
    )
    row = kpi_row(
        kpis.compute_kpis({"complaints": frame}, "2026-03"), "complaints_recurrence_share"
    )
    assert (row["numerator"], row["denominator"]) == (int(recurs), 1)


@pytest.mark.parametrize(
    ("closings", "recurs"),
    [
        # the latest closure before the day received decides; later ones never count
        ((date(2026, 3, 9), date(2026, 3, 10)), True),  # 1 day before, and one the same day
        ((date(2026, 3, 9), date(2026, 3, 20)), True),  # 1 day before, and one after
        ((date(2025, 12, 1), date(2026, 1, 15)), True),  # 99 days (out), 54 days (in)
        ((date(2025, 12, 1), date(2026, 3, 10)), False),  # 99 days (out), same day (not before)
        ((date(2026, 3, 10), date(2026, 3, 11)), False),  # same day, day after
    ],
)
def test_recurrence_with_several_earlier_complaints(
    closings: tuple[date, ...], recurs: bool, make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    rows = [_c(f"old{i}", date(2025, 11, 1), c) for i, c in enumerate(closings)]
    frame = make("complaints", [*rows, _c("new", date(2026, 3, 10), None)])
    row = kpi_row(
        kpis.compute_kpis({"complaints": frame}, "2026-03"), "complaints_recurrence_share"
    )
    assert (row["numerator"], row["denominator"]) == (int(recurs), 1)


def test_recurrence_other_site_and_other_product(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    # same customer+product+category closed at another site counts (at the receiving site);
    # another product does not
    frame = make(
        "complaints",
        [
            _c("old", date(2026, 2, 1), date(2026, 2, 10), site="Y"),
            _c("other", date(2026, 2, 1), date(2026, 2, 10), product="q"),
            _c("new", date(2026, 3, 10), None, site="X"),
        ],
    )
    out = kpis.compute_kpis({"complaints": frame}, "2026-03")
    assert kpi_row(out, "complaints_recurrence_share", "X")["numerator"] == 1
    assert kpi_row(out, "complaints_recurrence_share", "Y")["value"] is None


def test_customer_reject_ppm(make: Callable[..., pl.DataFrame], kpi_row: Row) -> None:
    # units affected 30 + 20 + (none: counts 0) over 50 000 shipped -> 50 / 50 000 x 1e6 = 1000
    complaints = make(
        "complaints",
        [
            _c("a", date(2026, 3, 1), None, units_affected=30),
            _c("b", date(2026, 3, 31), None, units_affected=20),
            _c("c", date(2026, 3, 15), None),
            _c("d", date(2026, 2, 15), None, units_affected=999),  # February
        ],
    )
    shipments = make(
        "shipments",
        [
            {"site": "X", "product": "p", "month": "2026-03", "units_shipped": 50_000},
            {"site": "X", "product": "p", "month": "2026-02", "units_shipped": 0},
        ],
    )
    out = kpis.compute_kpis({"complaints": complaints, "shipments": shipments}, "2026-03")
    row = kpi_row(out, "customer_reject_ppm")
    assert (row["value"], row["numerator"], row["denominator"]) == (1000.0, 50, 50_000)
    assert row["note"] == "1 complaint(s) without units_affected counted as 0"
    feb = kpi_row(
        kpis.compute_kpis({"complaints": complaints, "shipments": shipments}, "2026-02"),
        "customer_reject_ppm",
    )
    assert feb["value"] is None
    assert feb["note"] == "no shipments in period: rate undefined"


def test_survey_responses_and_score_on_own_scale(march: pl.DataFrame, kpi_row: Row) -> None:
    # March: North r1 9/10, r2 6/10, r3 4/5 (two scales); South r4 10, r5 7, r6 8 (of 10)
    assert kpi_row(march, "survey_responses", "North")["value"] == 3
    assert kpi_row(march, "survey_responses")["value"] == 6
    south = kpi_row(march, "satisfaction_score_mean", "South")
    assert (south["numerator"], south["denominator"]) == (25.0, 3)
    assert south["value"] == pytest.approx(25 / 3)
    for scope in ("North", "all"):
        row = kpi_row(march, "satisfaction_score_mean", scope)
        assert row["value"] is None
        assert "more than one scale" in row["note"]
    # no scale_min in these rows: the range share is undefined, with its reason
    row = kpi_row(march, "satisfaction_range_share")
    assert row["value"] is None
    assert row["note"] == "no survey responses with scale_min in period"


def test_satisfaction_range_share_starts_at_the_scale_bottom(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    # 1-5 scale, scores 1, 3, 5: range share (0 + 0.5 + 1) / 3 = 0.5; mean score 3;
    # the share-of-maximum reading gives (0.2 + 0.6 + 1.0) / 3 = 0.6
    frame = make(
        "surveys",
        [
            {
                "response_id": f"r{s}",
                "response_date": date(2026, 3, s),
                "site": "X",
                "score": float(s),
                "scale_min": 1,
                "scale_max": 5,
            }
            for s in (1, 3, 5)
        ],
    )
    out = kpis.compute_kpis({"surveys": frame}, "2026-03")
    assert kpi_row(out, "satisfaction_range_share")["value"] == pytest.approx(0.5)
    assert kpi_row(out, "satisfaction_score_mean")["value"] == pytest.approx(3.0)
    assert kpi_row(out, "satisfaction_mean")["value"] == pytest.approx(0.6)


def test_customer_otd_from_shipment_deliveries(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    def row(site: str, month: str, due: int | None, on_time: int | None) -> dict[str, Any]:
        return {
            "site": site,
            "product": "p",
            "month": month,
            "units_shipped": 1000,
            "deliveries": due,
            "deliveries_on_time": on_time,
        }

    frame = make(
        "shipments",
        [
            row("X", "2026-01", 10, 9),
            row("X", "2026-02", 20, 15),
            row("Y", "2026-02", None, None),  # deliveries not recorded: left out
            row("X", "2026-03", 10, 10),
            row("Y", "2026-03", 30, 21),
        ],
    )
    q1 = kpis.compute_kpis({"shipments": frame}, "2026-Q1")
    # quarter: X (9 + 15 + 10) / (10 + 20 + 10) = 34 / 40; Y 21 / 30; all 55 / 70
    row_all = kpi_row(q1, "customer_otd_share")
    assert (row_all["numerator"], row_all["denominator"]) == (55, 70)
    assert kpi_row(q1, "customer_otd_share", "X")["value"] == pytest.approx(34 / 40)
    feb = kpi_row(kpis.compute_kpis({"shipments": frame}, "2026-02"), "customer_otd_share", "Y")
    assert feb["value"] is None
    assert feb["note"] == "no customer deliveries recorded in period: share undefined"


def test_complaints_by_category_and_severity(
    make: Callable[..., pl.DataFrame],
) -> None:
    frame = make(
        "complaints",
        [
            _c("a", date(2026, 3, 1), None, category="leak", severity="critical"),
            _c("b", date(2026, 3, 2), None, category="leak", severity="minor"),
            _c("c", date(2026, 3, 3), None, category="noise", severity="critical"),
            _c("d", date(2026, 3, 4), None, category="label", severity="major"),
            _c("e", date(2026, 3, 31), None, category="noise", severity="minor", site="Y"),
            _c("f", date(2026, 2, 28), None, category="label", severity="major"),  # February
            _c("g", date(2026, 1, 5), date(2026, 4, 2), category="x"),  # data reaches April
        ],
    )
    table = kpis.complaints_by_category({"complaints": frame}, "2026-03")
    # leak 2 (1 critical) and noise 2 (1 critical) tie on both: by name; label 1; all 5
    assert table.rows() == [
        ("leak", 2, 1, 0, 1, 0.4),
        ("noise", 2, 1, 0, 1, 0.4),
        ("label", 1, 0, 1, 0, 0.2),
        ("all", 5, 2, 1, 2, 1.0),
    ]
    site = kpis.complaints_by_category({"complaints": frame}, "2026-03", "Y")
    assert site.rows() == [("noise", 1, 1, 0, 0, 1.0), ("all", 1, 1, 0, 0, 1.0)]
    empty = kpis.complaints_by_category({"complaints": frame}, "2026-04")
    assert empty.rows() == [("all", 0, 0, 0, 0, None)]
