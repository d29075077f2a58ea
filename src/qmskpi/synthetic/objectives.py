"""The quality objectives (:data:`OBJECTIVES`) and the monthly results of the manual ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from qmskpi.datasets import DATASETS
from qmskpi.synthetic.draws import _Calendar


@dataclass(frozen=True)
class _Objective:
    objective_id: str
    name: str
    clause: str
    owner: str
    unit: str
    direction: str
    target: float
    kpi: str | None
    centre: float = 0.0
    """Manual objectives only: typical monthly result, spread and bounds."""
    spread: float = 0.0
    low: float = 0.0
    high: float = 1.0
    decimals: int = 3


OBJECTIVES: tuple[_Objective, ...] = (
    _Objective(
        "OBJ-01",
        "Reduce the customer complaint rate",
        "9.1.2",
        "Quality Manager",
        "ppm",
        "lower_is_better",
        250.0,
        "complaint_rate_ppm",
    ),
    _Objective(
        "OBJ-02",
        "Supplier on-time delivery",
        "8.4",
        "Purchasing Manager",
        "share",
        "higher_is_better",
        0.95,
        "supplier_otd_due_share",
    ),
    _Objective(
        "OBJ-03",
        "First-pass yield",
        "8.6",
        "Operations Director",
        "share",
        "higher_is_better",
        0.92,
        "fpy_lot_share",
    ),
    _Objective(
        "OBJ-04",
        "Supplier reject rate",
        "8.4",
        "Supplier Quality Engineer",
        "ppm",
        "lower_is_better",
        500.0,
        "supplier_ppm",
    ),
    _Objective(
        "OBJ-05",
        "Effective corrective actions",
        "10.2",
        "Quality Manager",
        "share",
        "higher_is_better",
        0.85,
        "capa_effective_verified_share",
    ),
    _Objective(
        "OBJ-06",
        "Training plan completion",
        "7.2",
        "HR Manager",
        "share",
        "higher_is_better",
        0.95,
        None,
        centre=0.93,
        spread=0.025,
        low=0.80,
        high=1.0,
    ),
    _Objective(
        "OBJ-07",
        "Calibration on schedule",
        "7.1.5",
        "Metrology Lead",
        "share",
        "higher_is_better",
        0.98,
        None,
        centre=0.985,
        spread=0.01,
        low=0.90,
        high=1.0,
    ),
    _Objective(
        "OBJ-08",
        "Scrap cost as a percentage of sales",
        "6.2",
        "Finance Controller",
        "percent",
        "lower_is_better",
        1.5,
        None,
        centre=1.6,
        spread=0.2,
        low=0.5,
        high=4.0,
        decimals=2,
    ),
)


def _objectives() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "objective_id": [o.objective_id for o in OBJECTIVES],
            "name": [o.name for o in OBJECTIVES],
            "clause": [o.clause for o in OBJECTIVES],
            "owner": [o.owner for o in OBJECTIVES],
            "unit": [o.unit for o in OBJECTIVES],
            "direction": [o.direction for o in OBJECTIVES],
            "target": [o.target for o in OBJECTIVES],
            "kpi": [o.kpi for o in OBJECTIVES],
        },
        schema=DATASETS["objectives"].schema,
    )


def _objective_results(cal: _Calendar, rng: np.random.Generator) -> pl.DataFrame:
    """Monthly actuals of the objectives with no linked KPI (entered by hand)."""
    manual = [o for o in OBJECTIVES if o.kpi is None]
    frames = []
    for o in manual:
        actual = np.clip(o.centre + o.spread * rng.standard_normal(cal.n), o.low, o.high)
        frames.append(
            pl.DataFrame(
                {
                    "objective_id": [o.objective_id] * cal.n,
                    "month": list(cal.labels),
                    "actual": np.round(actual, o.decimals),
                }
            )
        )
    return pl.concat(frames)
