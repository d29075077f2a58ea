"""The words of the SPC package: point arrays, chart and rule names, the limits' constants, SpcError.

Every other part imports from here; this module imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from qmskpi.errors import QmsKpiError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Baseline = int | Sequence[int] | None

Direction = Literal["higher_is_better", "lower_is_better", "neutral"]
RuleSetName = Literal["mdc", "western_electric", "nelson", "run"]
KpiKind = Literal["proportion", "rate", "count", "continuous"]
ChartName = Literal[
    "xmr", "mr", "p", "np", "p'", "u", "c", "xbar_r", "xbar_s", "r", "s", "run", "g", "t"
]  # fmt: skip
ChartStatus = Literal["limits", "run_chart", "rare_events"]
SignalLabel = Literal["improvement", "concern", "neutral"]
Variation = Literal[
    "common_cause",
    "improvement_high",
    "improvement_low",
    "concern_high",
    "concern_low",
    "neutral_high",
    "neutral_low",
    "run_chart",
    "rare_events",
]
Assurance = Literal["consistent_pass", "consistent_fail", "inconsistent"]

XMR_LIMIT: Final = 2.66  # 3/d2(2) as Wheeler and NHS Making Data Count round it
MR_LIMIT: Final = 3.267  # D4(2): upper limit of the moving-range chart
SCREEN_LIMIT: Final = 3.267  # moving ranges >= SCREEN_LIMIT * MR-bar are screened out
LANEY_D2: Final = 1.128  # d2(2), turns the mean moving range of z into sigma_z
OVERDISPERSION_SE: Final = 0.91  # SE of sigma_z ~ 0.91/sqrt(m) for m moving ranges
MIN_POINTS_FOR_LIMITS: Final = 12  # NHSRplotthedots' short-group warning threshold
RARE_MEAN_COUNT: Final = 1.0  # fewer events than this per period on average: rare
T_EXPONENT: Final = 1 / 3.6  # Montgomery's Weibull-to-normal transform for times between events

RULE_NAMES: Final[dict[RuleSetName, tuple[str, ...]]] = {
    "mdc": ("beyond_limits", "shift", "trend", "two_of_three"),
    "western_electric": ("we1", "we2", "we3", "we4"),
    "nelson": tuple(f"nelson{i}" for i in range(1, 9)),
    "run": ("run_shift", "run_trend"),
}
_RULE_ORDER: Final = {
    name: i for i, name in enumerate(name for names in RULE_NAMES.values() for name in names)
}
_DEFAULT_LENGTHS: Final[dict[RuleSetName, tuple[int, int | None]]] = {
    "mdc": (7, 7),  # (run_length, trend_length)
    "western_electric": (8, None),
    "nelson": (9, 6),
    "run": (6, 5),  # run charts: Perla, Provost & Murray (2011)
}
_TRENDS: Final = frozenset({"trend", "nelson3", "run_trend"})  # direction from the slope
_SIDELESS: Final = frozenset({"nelson4", "nelson7", "nelson8"})  # no high/low sense


class SpcError(QmsKpiError, ValueError):
    """Input a control chart cannot be built from (empty, negative, mismatched...)."""
