"""CAPA KPIs (10.2) and the effectiveness table: expected values worked out by hand (conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import polars as pl
import pytest

from qmskpi import kpis

Row = Callable[..., dict[str, Any]]


@pytest.fixture
def march(data: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return kpis.compute_kpis(data, "2026-03")


def test_capa_opened(march: pl.DataFrame, kpi_row: Row) -> None:
    # opened in March: K1 (North, 03-02), K4 (South, 03-10) -> 1, 1, all 2
    assert kpi_row(march, "capa_opened", "North")["value"] == 1
    assert kpi_row(march, "capa_opened", "South")["value"] == 1
    assert kpi_row(march, "capa_opened")["value"] == 2


def test_capa_closed(march: pl.DataFrame, kpi_row: Row) -> None:
    # closed in March: K1 (North 03-15), K2 (North 03-20), K5 (South 03-31) -> 2, 1, all 3
    assert kpi_row(march, "capa_closed", "North")["value"] == 2
    assert kpi_row(march, "capa_closed", "South")["value"] == 1
    assert kpi_row(march, "capa_closed")["value"] == 3


def test_capa_opened_and_closed_same_period(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    # opened 03-02, closed 03-15 (13 days): counted as opened and as closed, never open at the end
    frame = make(
        "capa",
        [
            {
                "capa_id": "K",
                "site": "X",
                "source": "internal",
                "opened_date": date(2026, 3, 2),
                "due_date": date(2026, 3, 10),
                "closed_date": date(2026, 3, 15),
            }
        ],
    )
    out = kpis.compute_kpis({"capa": frame}, "2026-03")
    assert kpi_row(out, "capa_opened")["value"] == 1
    assert kpi_row(out, "capa_closed")["value"] == 1
    assert kpi_row(out, "capa_days_to_close_median")["value"] == 13
    assert (
        kpi_row(out, "capa_open_overdue")["value"] == 0
    )  # due 03-10 passed, but closed by the end
    assert kpis.overdue_items({"capa": frame}, "2026-03").height == 0


def test_capa_days_to_close_median(march: pl.DataFrame, kpi_row: Row) -> None:
    # K1 03-02 -> 03-15 = 13; K2 01-10 -> 03-20 = 21 + 28 + 20 = 69; K5 2025-12-01 -> 03-31 = 30 + 31 + 28 + 31 = 120
    # North [13, 69] -> 41; South [120] -> 120; all [13, 69, 120] -> 69
    north = kpi_row(march, "capa_days_to_close_median", "North")
    assert (north["value"], north["denominator"]) == (41.0, 2)
    assert kpi_row(march, "capa_days_to_close_median", "South")["value"] == 120.0
    assert kpi_row(march, "capa_days_to_close_median")["value"] == 69.0


def test_capa_effective_share(march: pl.DataFrame, kpi_row: Row) -> None:
    # closed in March: K1 verified true, K2 false, K5 null (counts as not verified)
    # North 1/2; South 0/1; all 1/3
    assert kpi_row(march, "capa_effective_share", "North")["value"] == 0.5
    south = kpi_row(march, "capa_effective_share", "South")
    assert (south["value"], south["numerator"], south["denominator"]) == (0.0, 0, 1)
    assert kpi_row(march, "capa_effective_share")["value"] == pytest.approx(1 / 3)


def test_capa_open_overdue(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    # at 03-31: K3 (South, open, due 03-01) and K6 (North, closed 04-05 > end, due 2025-12-01) -> 1, 1, 2
    # K2 closed 03-20 and K5 closed 03-31 are not open; K4 is due 04-30
    march = kpis.compute_kpis(data, "2026-03")
    assert kpi_row(march, "capa_open_overdue", "North")["value"] == 1
    assert kpi_row(march, "capa_open_overdue", "South")["value"] == 1
    assert kpi_row(march, "capa_open_overdue")["value"] == 2
    # at 02-28: K2 (due 02-28, not < end), K3 (due 03-01) not overdue; K5 (due 01-31) and K6 are -> 2
    feb = kpis.compute_kpis(data, "2026-02")
    assert kpi_row(feb, "capa_open_overdue")["value"] == 2


def test_capa_effectiveness_table(data: dict[str, pl.DataFrame]) -> None:
    table = kpis.capa_effectiveness(data, "2026-03")
    assert table["source"].to_list() == [
        "complaint",
        "audit",
        "inspection",
        "supplier",
        "internal",
        "all",
    ]
    rows = {r["source"]: r for r in table.iter_rows(named=True)}
    assert (rows["complaint"]["closed"], rows["complaint"]["effective"]) == (1, 1)  # K1
    assert rows["audit"]["not_effective"] == 1  # K2
    assert rows["inspection"]["not_verified"] == 1  # K5
    assert rows["supplier"]["closed"] == 0
    assert rows["supplier"]["effective_share"] is None
    total = rows["all"]
    assert (total["closed"], total["effective"], total["not_effective"], total["not_verified"]) == (
        3,
        1,
        1,
        1,
    )
    # on time: K1 03-15 <= 03-20 yes; K2 03-20 > 02-28 no; K5 03-31 > 01-31 no -> 1 of 3
    assert total["closed_on_time"] == 1
    assert total["effective_share"] == pytest.approx(1 / 3)  # equals capa_effective_share
    assert total["days_to_close_median"] == 69.0


# --------------------------------------------------------------------------- issue 16 revisions


def test_capa_backlog_and_on_time(march: pl.DataFrame, kpi_row: Row) -> None:
    # open at 03-31: North K6 (due 2025-12-01: past due); South K3 (due 03-01: past due),
    #   K4 (due 04-30); K5 closed on the last day is not open
    # closed in March: K1 (03-15, due 03-20: on time), K2 (due 02-28: late), K5 (due 01-31: late)
    assert kpi_row(march, "capa_open", "North")["value"] == 1
    assert kpi_row(march, "capa_open", "South")["value"] == 2
    assert kpi_row(march, "capa_open")["value"] == 3
    closed = kpi_row(march, "capa_closed_on_time_share")
    assert (closed["numerator"], closed["denominator"]) == (1, 3)
    # with the backlog: North 1 / (2 + 1), South 0 / (1 + 1), all 1 / (3 + 2)
    expected = {"North": (1, 3), "South": (0, 2), "all": (1, 5)}
    for scope, (num, den) in expected.items():
        row = kpi_row(march, "capa_on_time_incl_backlog_share", scope)
        assert (row["numerator"], row["denominator"]) == (num, den), scope


def test_capa_closed_on_the_due_date_is_on_time(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    frame = make(
        "capa",
        [
            {
                "capa_id": "A",
                "site": "X",
                "source": "internal",
                "opened_date": date(2026, 3, 1),
                "due_date": date(2026, 3, 31),
                "closed_date": date(2026, 3, 31),
            },
            {
                "capa_id": "B",
                "site": "X",
                "source": "internal",
                "opened_date": date(2026, 3, 1),
                "due_date": date(2026, 3, 31),
                "closed_date": None,
            },  # due on the last day: not late
        ],
    )
    out = kpis.compute_kpis({"capa": frame}, "2026-03")
    assert kpi_row(out, "capa_closed_on_time_share")["value"] == 1.0
    row = kpi_row(out, "capa_on_time_incl_backlog_share")
    assert (row["numerator"], row["denominator"]) == (1, 1)
    assert kpi_row(out, "capa_open")["value"] == 1


def test_capa_effectiveness_of_those_verified(march: pl.DataFrame, kpi_row: Row) -> None:
    # closed in March: K1 verified true, K2 false, K5 not verified yet
    # old reading 1/3 (not verified = not effective); of those verified 1/2
    assert kpi_row(march, "capa_effective_share")["value"] == pytest.approx(1 / 3)
    row = kpi_row(march, "capa_effective_verified_share")
    assert (row["value"], row["numerator"], row["denominator"]) == (0.5, 1, 2)
    south = kpi_row(march, "capa_effective_verified_share", "South")  # K5 only, unverified
    assert south["value"] is None
    assert south["note"] == "no CAPA closed in period has a verification result yet"
