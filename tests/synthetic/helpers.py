"""What the synthetic tests share: the default spec, its last day, the KPIs qmskpi computes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from qmskpi.synthetic import SyntheticSpec

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DATA = ROOT / "sample_data"

DEFAULT = SyntheticSpec()
END_DAY = date(2026, 10, 31)

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
