"""Audit KPIs (9.2): expected values worked out by hand (conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

from qmskpi import kpis
from qmskpi.config import KpiConfig

Row = Callable[..., dict[str, Any]]


@pytest.fixture
def march(data: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return kpis.compute_kpis(data, "2026-03")


def test_audit_findings_and_by_type(march: pl.DataFrame, kpi_row: Row) -> None:
    # dated in March: North F1 major_nc, F2 minor_nc; South F3 observation, F4 ofi
    expected = {
        "audit_findings": (2, 2, 4),
        "audit_findings_major_nc": (1, 0, 1),
        "audit_findings_minor_nc": (1, 0, 1),
        "audit_findings_observation": (0, 1, 1),
        "audit_findings_ofi": (0, 1, 1),
    }
    for kpi, (north, south, total) in expected.items():
        assert kpi_row(march, kpi, "North")["value"] == north
        assert kpi_row(march, kpi, "South")["value"] == south
        assert kpi_row(march, kpi)["value"] == total


def test_findings_open_overdue(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    # at 03-31, open and past due (due_date, else audit_date + 60 days):
    #   F5 North open, due 01-10 + 60 = 03-11 < 03-31 -> overdue
    #   F3 South open, due 03-20 -> overdue; F6 South closed 04-01 > end, due 01-31 -> overdue
    #   F1 due 03-05 + 60 = 05-04, F4 due 03-12 + 60 = 05-11: not yet; F2 closed 03-25
    march = kpis.compute_kpis(data, "2026-03")
    assert kpi_row(march, "audit_findings_open_overdue", "North")["value"] == 1
    assert kpi_row(march, "audit_findings_open_overdue", "South")["value"] == 2
    assert kpi_row(march, "audit_findings_open_overdue")["value"] == 3
    # at 02-28: F5 (due 03-11) not yet; F6 (due 01-31) overdue -> 1
    feb = kpis.compute_kpis(data, "2026-02")
    assert kpi_row(feb, "audit_findings_open_overdue")["value"] == 1


def test_finding_due_days_fallback_is_configurable(
    data: dict[str, pl.DataFrame], kpi_row: Row
) -> None:
    # finding_due_days 20: F1 due 03-25, F4 due 04-01, F5 due 01-30 -> F1 joins F3, F5, F6 -> 4
    out = kpis.compute_kpis(data, "2026-03", config=KpiConfig(finding_due_days=20))
    assert kpi_row(out, "audit_findings_open_overdue")["value"] == 4


def test_findings_without_due_date_column(data: dict[str, pl.DataFrame], kpi_row: Row) -> None:
    # an export without the optional due_date column: every finding falls back to audit_date + 60
    # F3 then is due 03-12 + 60 = 05-11 -> not overdue; F6 due 2025-12-15 + 60 = 2026-02-13 -> overdue
    frames = dict(data, audit_findings=data["audit_findings"].drop("due_date"))
    out = kpis.compute_kpis(frames, "2026-03")
    assert kpi_row(out, "audit_findings_open_overdue")["value"] == 2  # F5, F6


# --------------------------------------------------------------------------- issue 16 revisions


def test_open_nonconformities(march: pl.DataFrame, kpi_row: Row) -> None:
    # open at 03-31: North F1 (major_nc), F5 (minor_nc); South F3 (observation), F4 (ofi),
    #   F6 (major_nc, closed 04-01); F2 closed 03-25
    assert kpi_row(march, "audit_nc_open", "North")["value"] == 2
    assert kpi_row(march, "audit_nc_open", "South")["value"] == 1
    assert kpi_row(march, "audit_nc_open")["value"] == 3


def test_overdue_nonconformities_and_agreed_ofis(march: pl.DataFrame, kpi_row: Row) -> None:
    # North F5 minor_nc, audit 01-10 + 60 = 03-11 -> overdue; F1 due 05-04 -> not
    # South F3 observation with its own due date 03-20 -> overdue; F6 due 01-31 -> overdue;
    #   F4 ofi without a due date -> never overdue
    assert kpi_row(march, "audit_nc_open_overdue", "North")["value"] == 1
    assert kpi_row(march, "audit_nc_open_overdue", "South")["value"] == 2


def test_ofi_without_due_date_is_not_overdue(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    # audited 70 days before the end: the default due date (60 days) has passed for both
    frame = make(
        "audit_findings",
        [
            {"finding_id": "o", "audit_date": date(2026, 1, 20), "site": "X", "type": "ofi"},
            {"finding_id": "n", "audit_date": date(2026, 1, 20), "site": "X", "type": "minor_nc"},
            # closed in March so that March has data
            {
                "finding_id": "c",
                "audit_date": date(2026, 1, 20),
                "site": "X",
                "type": "major_nc",
                "closed_date": date(2026, 3, 2),
            },
        ],
    )
    out = kpis.compute_kpis({"audit_findings": frame}, "2026-03")
    assert kpi_row(out, "audit_findings_open_overdue")["value"] == 2  # every type
    assert kpi_row(out, "audit_nc_open_overdue")["value"] == 1  # the NC only
    assert kpi_row(out, "audit_nc_open")["value"] == 1


def _planned(aid: str, planned: Any, performed: Any, site: str = "X") -> dict[str, Any]:
    return {"audit_id": aid, "site": site, "planned_date": planned, "performed_date": performed}


def test_audit_programme_completion_and_late_audits(
    make: Callable[..., pl.DataFrame], kpi_row: Row
) -> None:
    from datetime import date

    d = date
    frame = make(
        "audit_programme",
        [
            _planned("a", d(2026, 3, 1), d(2026, 3, 1)),  # planned and performed the same day
            _planned("b", d(2026, 3, 31), d(2026, 3, 31)),  # on the last day
            _planned("c", d(2026, 3, 10), d(2026, 4, 2)),  # performed after the end: not done
            _planned("d", d(2026, 3, 20), None, site="Y"),  # not performed
            _planned("e", d(2026, 3, 31), None),  # due on the last day: not late yet
            _planned("f", d(2026, 2, 10), None),  # February, still not performed: late
            _planned("g", d(2026, 3, 15), d(2026, 2, 20)),  # performed before the plan: done
            _planned("h", d(2026, 5, 4), None),  # planned for May (the data reaches May)
        ],
    )
    march = kpis.compute_kpis({"audit_programme": frame}, "2026-03")
    # planned in March: a, b, c, d, e, g; performed by 03-31: a, b, g -> 3 / 6
    row = kpi_row(march, "audit_programme_completion_share")
    assert (row["value"], row["numerator"], row["denominator"]) == (0.5, 3, 6)
    assert kpi_row(march, "audit_programme_completion_share", "Y")["value"] == 0.0
    # late at 03-31 (planned before the end, not performed by it): c, d, f -> 3
    assert kpi_row(march, "audits_not_performed_overdue")["value"] == 3
    assert kpi_row(march, "audits_not_performed_overdue", "Y")["value"] == 1
    # April: c performed 04-02, so late at 04-30: d, e, f (h is not due yet)
    april = kpis.compute_kpis({"audit_programme": frame}, "2026-04")
    assert kpi_row(april, "audits_not_performed_overdue")["value"] == 3
    empty = kpi_row(april, "audit_programme_completion_share")
    assert empty["value"] is None
    assert empty["note"] == "no audits planned in period: share undefined"
