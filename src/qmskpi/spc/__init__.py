"""Statistical process control: control charts, signal rules and the NHS icons.

Every chart returns a frozen :class:`ControlChart`: one value, centre line,
upper and lower limit and one-sigma width per point, the signals at each point,
and the phases (rebased periods) whose baseline points set the limits.

Charts (σ̂ = estimated process sigma; ``c.sigma`` = (UCL − CL)/3 before any floor)

==============  ===========================================================
``xmr``         X chart of individual values. CL = x̄, limits x̄ ± 2.66·MR̄,
                MR̄ = mean moving range |xᵢ − xᵢ₋₁| (Wheeler; 2.66 = 3/d₂,
                d₂ = 1.128). ``c.mr_chart``: MR̄, UCL 3.267·MR̄ (= D₄ for n=2).
``p``           p̄ = Σd/Σn; limits p̄ ± 3·√(p̄(1−p̄)/nᵢ) per point.
``np``          n·p̄ ± 3·√(n·p̄(1−p̄)), constant n.
``p'``          Laney p′: zᵢ = (pᵢ − p̄)/σ_pᵢ, σ_z = mean|zᵢ − zᵢ₋₁|/1.128;
                limits p̄ ± 3·σ_pᵢ·σ_z (Laney 2002, Quality Engineering 14(4)).
``u``           ū = Σc/Σa; limits ū ± 3·√(ū/aᵢ) per point.
``c``           c̄ ± 3·√c̄.
``xbar_r``      x̿ ± A₂·R̄ (= 3σ̂/√n, σ̂ = R̄/d₂); ``c.range_chart``: D₃·R̄,
                R̄, D₄·R̄.
``xbar_s``      x̿ ± A₃·s̄ (= 3σ̂/√n, σ̂ = s̄/c₄); ``c.sd_chart``: B₃·s̄, s̄, B₄·s̄.
==============  ===========================================================

LCLs of attribute charts (p, np, p′, u, c) are floored at 0; UCLs of p and p′
are capped at 1 and of np at n (as qcc and Minitab do). R, S and MR charts have
LCL ≥ 0 by construction. Subgroup constants for n = 2..25 are the printed table
(Montgomery, *Introduction to Statistical Quality Control*, Appendix VI;
ASTM E2587). A₂ and A₃ are applied as their definitions 3/(d₂√n), 3/(c₄√n)
from the tabulated d₂, c₄ (as qcc does; the printed 3-decimal A₂, A₃ differ in
the 4th digit); D₃, D₄, B₃, B₄ are used as printed. For unequal subgroup sizes
σ̂ is the plain mean of Rᵢ/d₂(nᵢ) (or sᵢ/c₄(nᵢ)) over the baseline and each
point gets the limits of its own nᵢ (qcc weights the per-subgroup estimates,
so it differs slightly).

Baselines, phases and missing points

- ``baseline=None``: every point of a phase sets its limits; ``int n``: the first
  ``n`` points of each phase (limits frozen after them); a sequence of 0-based
  point indices: only those points (leave known special causes out).
- ``rebase=[i, j]``: new phases start at points ``i`` and ``j``; each phase has
  its own limits, and rules never look across a phase boundary.
- NaN values (and zero denominators, subgroups of fewer than 2 measurements)
  are missing: listed in ``c.missing``, left out of limits and moving ranges
  (a moving range needs two adjacent observed points of the same phase, both
  in the baseline) and skipped by the rules.
- A single usable point gives NaN limits on charts whose σ̂ comes from moving
  ranges (XmR, p′) and ordinary limits on the others. Empty input, or a phase
  with no usable baseline point, raises :class:`SpcError`.

Rules (names are stable strings; a rule flags a point, never a gap)

- ``"mdc"`` (NHS England "Making Data Count", the default): ``beyond_limits``
  (outside a limit); ``shift`` (``run_length``=7 points in a row on one side of
  the centre; a point exactly on the centre breaks the run); ``trend``
  (``trend_length``=7 points strictly rising or falling); ``two_of_three``
  (2 of 3 consecutive points beyond 2σ, i.e. 2/3 of the way to a limit, all
  three on the same side). Every point of a shift or trend is flagged; for
  ``two_of_three`` the points beyond 2σ. (NHSRplotthedots does not count a point
  beyond a limit as "close"; here it counts, as in the Western Electric rule.)
- ``"western_electric"``: ``we1`` beyond a limit; ``we2`` 2 of 3 beyond 2σ on one
  side; ``we3`` 4 of 5 beyond 1σ on one side; ``we4`` ``run_length``=8 in a row on
  one side.
- ``"nelson"``: ``nelson1`` beyond a limit; ``nelson2`` ``run_length``=9 on one
  side; ``nelson3`` ``trend_length``=6 points steadily rising or falling;
  ``nelson4`` 14 points alternating up and down; ``nelson5`` 2 of 3 beyond 2σ;
  ``nelson6`` 4 of 5 beyond 1σ (same side); ``nelson7`` 15 in a row within 1σ;
  ``nelson8`` 8 in a row beyond 1σ, either side.
  Western Electric and Nelson rules flag the point that completes the pattern
  (and each later point while it holds). Dispersion charts (MR, R, S) are only
  checked against their limits (``beyond_limits``/``we1``/``nelson1``).

Icons (NHS Making Data Count): :func:`classify` labels each signal improvement,
concern or neutral from the KPI's direction; :func:`variation` gives the icon of
the last observed point; :func:`assurance` compares a target with the last
point's limits. :func:`auto_chart` picks the chart from a KPI's kind (p′ over
p when :func:`overdispersion` finds σ_z > 1 + 2·0.91/√m; see :class:`Overdispersion`).
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from qmskpi.errors import QmsKpiError, did_you_mean

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "LANEY_D2",
    "MIN_POINTS_FOR_LIMITS",
    "MR_LIMIT",
    "RARE_MEAN_COUNT",
    "RULE_NAMES",
    "SCREEN_LIMIT",
    "T_EXPONENT",
    "XMR_LIMIT",
    "Assurance",
    "BaselineStatement",
    "ChartName",
    "ChartStatus",
    "ControlChart",
    "Direction",
    "KpiKind",
    "Overdispersion",
    "Phase",
    "RuleSet",
    "RuleSetName",
    "SignalLabel",
    "SpcError",
    "SubgroupConstants",
    "Variation",
    "assurance",
    "auto_chart",
    "c_chart",
    "classify",
    "constants",
    "g_chart",
    "laney_p_chart",
    "np_chart",
    "overdispersion",
    "p_chart",
    "rare_events",
    "run_chart",
    "t_chart",
    "u_chart",
    "variation",
    "xbar_r",
    "xbar_s",
    "xmr",
]

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


# --------------------------------------------------------------------------- constants


@dataclass(frozen=True)
class SubgroupConstants:
    """Control chart constants for subgroup size ``n`` (printed table, 3-4 decimals).

    d₂ = E[R/σ], d₃ = SD[R/σ], c₄ = E[s/σ] = √(2/(n−1))·Γ(n/2)/Γ((n−1)/2);
    A₂ = 3/(d₂√n), A₃ = 3/(c₄√n), D₃,₄ = max(0, 1 ∓ 3d₃/d₂),
    B₃,₄ = max(0, 1 ∓ 3√(1−c₄²)/c₄).
    """

    n: int
    A2: float
    A3: float
    c4: float
    B3: float
    B4: float
    d2: float
    d3: float
    D3: float
    D4: float


# Montgomery, Introduction to SQC, Appendix VI; ASTM E2587 (same printed values).
_TABLE: Final = (
    # n   A2     A3     c4      B3     B4     d2     d3     D3     D4
    (2, 1.880, 2.659, 0.7979, 0.000, 3.267, 1.128, 0.853, 0.000, 3.267),
    (3, 1.023, 1.954, 0.8862, 0.000, 2.568, 1.693, 0.888, 0.000, 2.574),
    (4, 0.729, 1.628, 0.9213, 0.000, 2.266, 2.059, 0.880, 0.000, 2.282),
    (5, 0.577, 1.427, 0.9400, 0.000, 2.089, 2.326, 0.864, 0.000, 2.114),
    (6, 0.483, 1.287, 0.9515, 0.030, 1.970, 2.534, 0.848, 0.000, 2.004),
    (7, 0.419, 1.182, 0.9594, 0.118, 1.882, 2.704, 0.833, 0.076, 1.924),
    (8, 0.373, 1.099, 0.9650, 0.185, 1.815, 2.847, 0.820, 0.136, 1.864),
    (9, 0.337, 1.032, 0.9693, 0.239, 1.761, 2.970, 0.808, 0.184, 1.816),
    (10, 0.308, 0.975, 0.9727, 0.284, 1.716, 3.078, 0.797, 0.223, 1.777),
    (11, 0.285, 0.927, 0.9754, 0.321, 1.679, 3.173, 0.787, 0.256, 1.744),
    (12, 0.266, 0.886, 0.9776, 0.354, 1.646, 3.258, 0.778, 0.283, 1.717),
    (13, 0.249, 0.850, 0.9794, 0.382, 1.618, 3.336, 0.770, 0.307, 1.693),
    (14, 0.235, 0.817, 0.9810, 0.406, 1.594, 3.407, 0.763, 0.328, 1.672),
    (15, 0.223, 0.789, 0.9823, 0.428, 1.572, 3.472, 0.756, 0.347, 1.653),
    (16, 0.212, 0.763, 0.9835, 0.448, 1.552, 3.532, 0.750, 0.363, 1.637),
    (17, 0.203, 0.739, 0.9845, 0.466, 1.534, 3.588, 0.744, 0.378, 1.622),
    (18, 0.194, 0.718, 0.9854, 0.482, 1.518, 3.640, 0.739, 0.391, 1.608),
    (19, 0.187, 0.698, 0.9862, 0.497, 1.503, 3.689, 0.734, 0.403, 1.597),
    (20, 0.180, 0.680, 0.9869, 0.510, 1.490, 3.735, 0.729, 0.415, 1.585),
    (21, 0.173, 0.663, 0.9876, 0.523, 1.477, 3.778, 0.724, 0.425, 1.575),
    (22, 0.167, 0.647, 0.9882, 0.534, 1.466, 3.819, 0.720, 0.434, 1.566),
    (23, 0.162, 0.633, 0.9887, 0.545, 1.455, 3.858, 0.716, 0.443, 1.557),
    (24, 0.157, 0.619, 0.9892, 0.555, 1.445, 3.895, 0.712, 0.451, 1.548),
    (25, 0.153, 0.606, 0.9896, 0.565, 1.435, 3.931, 0.708, 0.459, 1.541),
)
_CONSTANTS: Final = {row[0]: SubgroupConstants(*row) for row in _TABLE}


def constants(n: int) -> SubgroupConstants:
    """The tabulated constants for subgroup size ``n`` (2 ≤ n ≤ 25)."""
    try:
        return _CONSTANTS[n]
    except KeyError:
        raise SpcError(f"subgroup size {n} is outside the constants table (2..25)") from None


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RuleSet:
    """Which signal rules to apply, with optional run lengths.

    ``run_length``: points in a row on one side of the centre (default 7 for mdc,
    8 for western_electric, 9 for nelson). ``trend_length``: points strictly
    rising or falling (default 7 for mdc, 6 for nelson; western_electric has
    no trend rule). ``RuleSet("mdc", run_length=8)`` is the 8-point MDC variant.
    """

    name: RuleSetName = "mdc"
    run_length: int | None = None
    trend_length: int | None = None

    def __post_init__(self) -> None:
        if self.name not in RULE_NAMES:
            raise SpcError(
                f"unknown rule set {self.name!r}; available: {', '.join(RULE_NAMES)}"
                + did_you_mean(str(self.name), RULE_NAMES)
            )
        for field in ("run_length", "trend_length"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise SpcError(f"{field} must be an int, got {value!r}")
            if value is not None and value < 2:
                raise SpcError(f"{field} must be at least 2, got {value}")
        if self.name == "western_electric" and self.trend_length is not None:
            raise SpcError("the western_electric rules (1-4) have no trend rule")

    @property
    def runs(self) -> int:
        """Points in a row on one side of the centre that make a shift."""
        return self.run_length or _DEFAULT_LENGTHS[self.name][0]

    @property
    def trend(self) -> int | None:
        """Points in a rising or falling row that make a trend (None: no trend rule)."""
        return self.trend_length or _DEFAULT_LENGTHS[self.name][1]

    @property
    def names(self) -> tuple[str, ...]:
        """The rule names this set can put in ``ControlChart.signals``."""
        return RULE_NAMES[self.name]


@dataclass(frozen=True)
class Phase:
    """One stretch of points with its own limits (``rebase`` starts a new one).

    ``baseline``: the point indices whose values set the limits (missing ones
    excluded). ``center``: the centre line (x̄, p̄, n·p̄, ū, c̄, x̿). ``spread``: MR̄
    (XmR), σ_z (p′), R̄ (Xbar-R), s̄ (Xbar-S) of the baseline; NaN for p, np, u,
    c. ``screened``: points whose moving range was screened out as an outlier.
    """

    start: int
    stop: int
    baseline: tuple[int, ...]
    center: float
    spread: float
    screened: tuple[int, ...] = ()


BaselineMethod = Literal["all", "first", "selected"]


@dataclass(frozen=True)
class PhaseBaseline:
    """The points of one phase and the points whose values set its centre and limits.

    ``method``: ``"all"`` (every point of the phase shown, recalculated on each run
    as the window moves), ``"first"`` (the first points only: limits frozen after
    them) or ``"selected"`` (chosen points, e.g. known special causes left out).
    ``points`` counts the baseline points with a value (gaps excluded).
    """

    start: int
    stop: int
    baseline: tuple[int, ...]
    method: BaselineMethod
    points: int


@dataclass(frozen=True)
class BaselineStatement:
    """Where a chart's centre line and limits come from (``ControlChart.baseline_statement``).

    ``status``/``reason`` repeat the chart's; ``rebase`` lists the first point of
    every phase after the first. :meth:`to_dict` is JSON-ready; :meth:`describe`
    is one sentence, with point indices replaced by ``labels`` (e.g. months).
    """

    chart: ChartName
    status: ChartStatus
    reason: str
    phases: tuple[PhaseBaseline, ...]
    gaps: tuple[int, ...]

    @property
    def rebase(self) -> tuple[int, ...]:
        return tuple(ph.start for ph in self.phases[1:])

    def to_dict(self, labels: Sequence[str] | None = None) -> dict[str, Any]:
        def lab(i: int) -> str | int:
            return labels[i] if labels is not None else i

        return {
            "chart": self.chart,
            "status": self.status,
            "reason": self.reason,
            "phases": [
                {
                    "first": lab(ph.start),
                    "last": lab(ph.stop - 1),
                    "method": ph.method,
                    "points": ph.points,
                    "baseline": [lab(i) for i in ph.baseline],
                }
                for ph in self.phases
            ],
            "rebase": [lab(i) for i in self.rebase],
            "gaps": [lab(i) for i in self.gaps],
            "text": self.describe(labels),
        }

    def describe(self, labels: Sequence[str] | None = None, *, noun: str = "point") -> str:
        """One sentence, e.g. "Limits from all 24 points (2024-11 to 2026-10), recalculated
        each run." or "No process limits: 9 points, fewer than the 12 needed; the centre
        line is the median of 9 points."; ``noun`` names the points ("month")."""

        def lab(i: int) -> str:
            return labels[i] if labels is not None else f"{noun} {i + 1}"

        def span(ph: PhaseBaseline) -> str:
            if not ph.baseline:
                return "no points"
            first, last = lab(ph.baseline[0]), lab(ph.baseline[-1])
            return first if first == last else f"{first} to {last}"

        gaps = f" {_plural(len(self.gaps), 'gap')} left out." if self.gaps else ""
        if self.status == "rare_events":
            return f"No chart: {self.reason}.{gaps}"
        parts = []
        for k, ph in enumerate(self.phases):
            what = _plural(ph.points, noun)
            if self.status == "run_chart":
                text = f"median of {what} ({span(ph)})"
            elif ph.method == "all":
                text = f"limits from all {what} ({span(ph)}), recalculated each run"
            elif ph.method == "first":
                text = f"limits frozen after the first {what} ({span(ph)})"
            else:
                text = f"limits from {what} selected ({span(ph)})"
            if k:
                text = f"rebased at {lab(ph.start)}: {text}"
            parts.append(text)
        body = "; ".join(parts)
        if self.status == "run_chart":
            return f"No process limits: {self.reason}; centre line: {body}.{gaps}"
        return body[0].upper() + body[1:] + "." + gaps


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _statement(chart: ControlChart) -> BaselineStatement:
    phases = []
    missing = set(chart.missing)
    for ph in chart.phases:
        marked = chart.in_baseline[ph.start : ph.stop]
        if bool(np.all(marked)):
            method: BaselineMethod = "all"
        elif marked.any() and not np.any(marked[int(np.argmin(marked)) :]):
            method = "first"
        else:
            method = "selected"
        used = tuple(i for i in ph.baseline if i not in missing)
        phases.append(PhaseBaseline(ph.start, ph.stop, used, method, len(used)))
    return BaselineStatement(chart.chart, chart.status, chart.reason, tuple(phases), chart.missing)


@dataclass(frozen=True, eq=False)
class ControlChart:
    """A control chart: per-point arrays (read-only), signals and phases.

    ``values``, ``center``, ``ucl``, ``lcl``, ``sigma`` (one-sigma width of the
    plotted statistic, (UCL − CL)/3 before any floor) are float arrays with one
    entry per point; ``signals`` holds a frozenset of rule names per point;
    ``sides`` is +1/−1 where a point's signal points up/down (0: none or no
    direction); ``missing`` lists points with no usable value.
    """

    chart: ChartName
    values: FloatArray
    center: FloatArray
    ucl: FloatArray
    lcl: FloatArray
    sigma: FloatArray
    signals: list[frozenset[str]]
    sides: IntArray
    phase: IntArray
    in_baseline: BoolArray
    missing: tuple[int, ...]
    phases: tuple[Phase, ...]
    rules: RuleSet
    numerators: FloatArray | None = None
    denominators: FloatArray | None = None
    sizes: IntArray | None = None  # subgroup sizes (Xbar, R, S charts)
    dispersion: ControlChart | None = None  # MR, R or S chart under an XmR/Xbar chart
    status: ChartStatus = "limits"
    """``"limits"``: a control chart with process limits; ``"run_chart"``: too few
    points for limits, median and run rules only; ``"rare_events"``: events too rare
    for a chart of counts per period, no line and no signal (see ``reason``)."""
    reason: str = ""
    """Why a chart has no process limits (empty for ``status="limits"``)."""

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def __repr__(self) -> str:
        return f"<ControlChart {_summary(self)}>"

    def _repr_html_(self) -> str:
        """The chart as inline SVG (no script, no network) above its one-line summary."""
        return f"<div class='qk-spc'>{_svg(self)}<div>{html.escape(_summary(self))}</div></div>"

    @property
    def has_limits(self) -> bool:
        """True for a control chart with process limits (not a run or rare-event chart)."""
        return self.status == "limits"

    def baseline_statement(self) -> BaselineStatement:
        """Where the centre line and limits come from, as the review prints and stores it."""
        return _statement(self)

    def _sub(self, attr: str, kind: ChartName) -> ControlChart:
        if self.dispersion is None or self.dispersion.chart != kind:
            raise AttributeError(f"{attr} exists only on a chart with an {kind!r} chart under it")
        return self.dispersion

    @property
    def mr_chart(self) -> ControlChart:
        """The moving-range chart of an XmR chart."""
        return self._sub("mr_chart", "mr")

    @property
    def range_chart(self) -> ControlChart:
        """The R chart of an Xbar-R chart."""
        return self._sub("range_chart", "r")

    @property
    def sd_chart(self) -> ControlChart:
        """The S chart of an Xbar-S chart."""
        return self._sub("sd_chart", "s")

    def to_frame(self) -> pl.DataFrame:
        """One row per point: index, phase, value, center, lcl, ucl, sigma,
        baseline, missing, signal (comma-joined rule names, "" for none), plus
        numerator/denominator (p, np, p′, u) or subgroup_size (Xbar, R, S).
        Missing values are null."""
        import polars as pl

        n = len(self)
        columns: dict[str, pl.Series] = {
            "index": pl.Series(np.arange(n, dtype=np.int64)),
            "phase": pl.Series(self.phase),
        }
        for name, arr in (
            ("value", self.values),
            ("center", self.center),
            ("lcl", self.lcl),
            ("ucl", self.ucl),
            ("sigma", self.sigma),
        ):
            columns[name] = pl.Series(arr, nan_to_null=True)
        columns["baseline"] = pl.Series(self.in_baseline)
        missing = np.zeros(n, dtype=np.bool_)
        missing[list(self.missing)] = True
        columns["missing"] = pl.Series(missing)
        columns["signal"] = pl.Series(
            [",".join(sorted(s, key=_RULE_ORDER.__getitem__)) for s in self.signals],
            dtype=pl.String,
        )
        if self.numerators is not None:
            columns["numerator"] = pl.Series(self.numerators, nan_to_null=True)
        if self.denominators is not None:
            columns["denominator"] = pl.Series(self.denominators, nan_to_null=True)
        if self.sizes is not None:
            columns["subgroup_size"] = pl.Series(self.sizes)
        return pl.DataFrame(columns)


def _g(x: float) -> str:
    return f"{x:,.4g}"


def _span(a: FloatArray) -> str:
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return "none"
    lo, hi = float(finite.min()), float(finite.max())
    return _g(lo) if math.isclose(lo, hi, rel_tol=1e-9, abs_tol=1e-12) else f"{_g(lo)}–{_g(hi)}"


def _summary(chart: ControlChart) -> str:
    """One line: chart, points, centre, limits, signals by rule, missing points."""
    n = len(chart)
    text = f"{chart.chart}: {n} point{'' if n == 1 else 's'}"
    if chart.status == "limits":
        text += f", centre {_span(chart.center)}, limits {_span(chart.lcl)} to {_span(chart.ucl)}"
    else:
        text += f", {chart.status.replace('_', ' ')} (centre {_span(chart.center)})"
    by_rule = Counter(rule for point in chart.signals for rule in point)
    flagged = sum(1 for point in chart.signals if point)
    rules = ", ".join(
        f"{r} {k}" for r, k in sorted(by_rule.items(), key=lambda x: _RULE_ORDER[x[0]])
    )
    text += f", {flagged} signal point{'' if flagged == 1 else 's'}" + (
        f" ({rules})" if rules else ""
    )
    if chart.missing:
        text += f", {len(chart.missing)} missing"
    return text


def _svg(chart: ControlChart, width: int = 640, height: int = 220) -> str:
    """A static SVG of the chart: limits dashed, centre line, values, signals in orange."""
    pad_l, pad_r, pad_t, pad_b = 8, 8, 10, 10
    series = [chart.values, chart.center, chart.ucl, chart.lcl]
    finite = np.concatenate([a[np.isfinite(a)] for a in series])
    if finite.size == 0:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='0' height='0'></svg>"
    lo, hi = float(finite.min()), float(finite.max())
    hi = hi if hi > lo else lo + 1.0
    n = max(len(chart) - 1, 1)

    def xy(i: int, v: float) -> str:
        x = pad_l + (width - pad_l - pad_r) * i / n
        y = pad_t + (height - pad_t - pad_b) * (hi - v) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    def lines(a: FloatArray, style: str) -> str:
        out, run = [], []
        for i, v in enumerate([*a.tolist(), math.nan]):
            if math.isfinite(v):
                run.append(xy(i, v))
            elif run:
                out.append(f"<polyline fill='none' {style} points='{' '.join(run)}'/>")
                run = []
        return "".join(out)

    grey = "stroke='#8C8C8C' stroke-width='1.2' stroke-dasharray='5,3'"
    parts = [
        lines(chart.ucl, grey),
        lines(chart.lcl, grey),
        lines(chart.center, "stroke='#4D4D4D' stroke-width='1.4'"),
        lines(chart.values, "stroke='#4D4D4D' stroke-width='1.2'"),
    ]
    for i, v in enumerate(chart.values.tolist()):
        if math.isfinite(v):
            rules = ", ".join(sorted(chart.signals[i], key=_RULE_ORDER.__getitem__))
            colour, r = ("#E69F00", 4) if rules else ("#7F7F7F", 2.5)
            tip = html.escape(f"point {i}: {_g(v)}" + (f" ({rules})" if rules else ""))
            c = xy(i, v).split(",")
            parts.append(
                f"<circle cx='{c[0]}' cy='{c[1]}' r='{r}' fill='{colour}'><title>{tip}</title></circle>"
            )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img' aria-label='{html.escape(chart.chart)} chart'>{''.join(parts)}</svg>"
    )


# --------------------------------------------------------------------------- inputs


def _vector(data: npt.ArrayLike, name: str, *, nonnegative: bool = False) -> FloatArray:
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SpcError(f"{name}: expected numbers ({exc})") from exc
    if arr.ndim != 1:
        raise SpcError(f"{name}: expected a 1-D sequence of points, got {arr.ndim}-D")
    if arr.size == 0:
        raise SpcError(f"{name}: no points (empty input)")
    bad = np.flatnonzero(np.isinf(arr))
    if bad.size:
        raise SpcError(f"{name}: infinite value at index {int(bad[0])}")
    if nonnegative:
        neg = np.flatnonzero(arr < 0)  # NaN compares False
        if neg.size:
            raise SpcError(f"{name}: negative value {arr[neg[0]]} at index {int(neg[0])}")
    return arr


def _same_length(a: FloatArray, b: FloatArray, names: str) -> None:
    if a.shape != b.shape:
        raise SpcError(f"{names}: lengths differ ({a.shape[0]} and {b.shape[0]})")


def _subgroups(data: npt.ArrayLike | Sequence[Sequence[float]]) -> FloatArray:
    if hasattr(data, "to_numpy"):  # a polars/pandas frame: rows are subgroups
        data = np.asarray(data.to_numpy(), dtype=np.float64)
    if isinstance(data, np.ndarray):
        rows = list(data) if data.ndim == 2 else [data]
        if data.ndim != 2:
            raise SpcError(f"subgroups: expected a 2-D array (k subgroups × n), got {data.ndim}-D")
    else:
        rows = list(data)  # type: ignore[arg-type]
    if not rows:
        raise SpcError("subgroups: no subgroups (empty input)")
    parsed: list[FloatArray] = []
    for i, row in enumerate(rows):
        try:
            arr = np.asarray(row, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise SpcError(f"subgroups: row {i}: expected numbers ({exc})") from exc
        if arr.ndim != 1:
            raise SpcError("subgroups: expected a 2-D sequence (k subgroups × n measurements)")
        if np.isinf(arr).any():
            raise SpcError(f"subgroups: infinite value in subgroup {i}")
        parsed.append(arr)
    width = max(len(r) for r in parsed)
    out = np.full((len(parsed), width), np.nan)
    for i, r in enumerate(parsed):
        out[i, : len(r)] = r
    return out


def _phase_bounds(n: int, rebase: Sequence[int] | None) -> list[tuple[int, int]]:
    starts = sorted({_index(i, n, "rebase") for i in (rebase or ())})
    if starts and starts[0] == 0:
        starts = starts[1:]
    edges = [0, *starts, n]
    return list(itertools.pairwise(edges))


def _index(i: object, n: int, what: str) -> int:
    if isinstance(i, bool) or not isinstance(i, int | np.integer):
        raise SpcError(f"{what}: expected 0-based point indices, got {i!r}")
    if not 0 <= int(i) < n:
        raise SpcError(f"{what}: index {i} is outside 0..{n - 1}")
    return int(i)


def _baseline_mask(n: int, bounds: list[tuple[int, int]], baseline: Baseline) -> BoolArray:
    mask = np.zeros(n, dtype=np.bool_)
    if baseline is None:
        mask[:] = True
    elif isinstance(baseline, int | np.integer) and not isinstance(baseline, bool):
        if baseline < 1:
            raise SpcError(f"baseline: need at least 1 point, got {baseline}")
        for start, stop in bounds:
            mask[start : min(stop, start + int(baseline))] = True
    elif isinstance(baseline, Sequence | np.ndarray) and not isinstance(baseline, str):
        for i in baseline:
            mask[_index(i, n, "baseline")] = True
    else:
        raise SpcError(f"baseline: expected None, an int or point indices, got {baseline!r}")
    return mask


def _usable(start: int, stop: int, base: BoolArray, missing: BoolArray) -> BoolArray:
    use = np.zeros(base.shape[0], dtype=np.bool_)
    use[start:stop] = base[start:stop] & ~missing[start:stop]
    if not use.any():
        raise SpcError(
            f"no usable baseline point in the phase of points {start}..{stop - 1} "
            "(all missing, or the baseline indices miss this phase)"
        )
    return use


def _moving_ranges(
    x: FloatArray, start: int, stop: int, base: BoolArray
) -> tuple[FloatArray, BoolArray]:
    """|xᵢ − xᵢ₋₁| within one phase (NaN next to a missing point) and which are in the baseline."""
    mr = np.full(x.shape[0], np.nan)
    mr[start + 1 : stop] = np.abs(np.diff(x[start:stop]))
    in_base = np.zeros(x.shape[0], dtype=np.bool_)
    in_base[start + 1 : stop] = base[start + 1 : stop] & base[start : stop - 1]
    return mr, in_base & ~np.isnan(mr)


def _mean(a: FloatArray) -> float:
    """Mean (NaN if empty), exact for constant data: a₀ + mean(a − a₀)."""
    return float(a[0] + np.mean(a - a[0])) if a.size else math.nan


def _rules(rules: RuleSetName | RuleSet) -> RuleSet:
    """The rule set of a control chart (the run-chart rules need a run chart)."""
    ruleset = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    if ruleset.name == "run":
        raise SpcError("the 'run' rules apply to run charts (spc.run_chart), not control charts")
    return ruleset


# --------------------------------------------------------------------------- rules


def _runs(keys: IntArray) -> Iterator[tuple[int, int, int]]:
    """Maximal runs of equal keys as (start, stop, key)."""
    start = 0
    for i in range(1, keys.shape[0] + 1):
        if i == keys.shape[0] or keys[i] != keys[start]:
            yield start, i, int(keys[start])
            start = i


def _streak(mask: BoolArray) -> IntArray:
    """Length of the run of True ending at each position."""
    out = np.zeros(mask.shape[0], dtype=np.int64)
    run = 0
    for i, flag in enumerate(mask):
        run = run + 1 if flag else 0
        out[i] = run
    return out


def _same_side_runs(side: IntArray, length: int, *, whole: bool) -> tuple[BoolArray, IntArray]:
    flag = np.zeros(side.shape[0], dtype=np.bool_)
    for start, stop, key in _runs(side):
        if key != 0 and stop - start >= length:
            flag[start if whole else start + length - 1 : stop] = True
    return flag, np.where(flag, side, 0)


def _trend_runs(v: FloatArray, length: int, *, whole: bool) -> tuple[BoolArray, IntArray]:
    flag = np.zeros(v.shape[0], dtype=np.bool_)
    sides = np.zeros(v.shape[0], dtype=np.int64)
    if v.shape[0] < 2:
        return flag, sides
    slope = np.sign(np.diff(v)).astype(np.int64)
    for start, stop, key in _runs(slope):  # diffs start..stop-1 cover points start..stop
        if key != 0 and stop - start + 1 >= length:
            first = start if whole else start + length - 1
            flag[first : stop + 1] = True
            sides[first : stop + 1] = key
    return flag, sides


def _alternating(v: FloatArray) -> IntArray:
    """Number of non-zero steps, each opposite to the one before, ending at each point."""
    out = np.zeros(v.shape[0], dtype=np.int64)
    for i in range(1, v.shape[0]):
        step = np.sign(v[i] - v[i - 1])
        if step == 0:
            continue
        flips = i > 1 and out[i - 1] > 0 and step == -np.sign(v[i - 1] - v[i - 2])
        out[i] = out[i - 1] + 1 if flips else 1
    return out


def _k_of_m(
    dev: FloatArray, sig: FloatArray, k: int, m: int, z: float
) -> tuple[BoolArray, IntArray]:
    """Point i completes "k of the last m beyond z·σ on one side" (i itself beyond)."""
    hi, lo = dev > z * sig, dev < -z * sig
    flag = np.zeros(dev.shape[0], dtype=np.bool_)
    sides = np.zeros(dev.shape[0], dtype=np.int64)
    for i in range(dev.shape[0]):
        w = slice(max(0, i - m + 1), i + 1)
        if hi[i] and hi[w].sum() >= k:
            flag[i], sides[i] = True, 1
        elif lo[i] and lo[w].sum() >= k:
            flag[i], sides[i] = True, -1
    return flag, sides


def _median_runs(side: IntArray, length: int) -> tuple[BoolArray, IntArray]:
    """Run-chart shift: ``length`` points in a row on one side of the median; points
    on the median neither add to nor break a run (Perla, Provost & Murray 2011)."""
    off = np.flatnonzero(side != 0)
    flag = np.zeros(side.shape[0], dtype=np.bool_)
    sides = np.zeros(side.shape[0], dtype=np.int64)
    for start, stop, key in _runs(side[off]):
        if stop - start >= length:
            span = slice(int(off[start]), int(off[stop - 1]) + 1)  # median points inside too
            flag[span], sides[span] = True, key
    return flag, sides


def _tie_free_trends(v: FloatArray, length: int) -> tuple[BoolArray, IntArray]:
    """Run-chart trend: ``length`` points all rising or all falling; a point equal to
    the one before is not counted and does not break the trend (Perla et al. 2011)."""
    keep = np.ones(v.shape[0], dtype=np.bool_)
    keep[1:] = v[1:] != v[:-1]
    kept = np.flatnonzero(keep)
    flag = np.zeros(v.shape[0], dtype=np.bool_)
    sides = np.zeros(v.shape[0], dtype=np.int64)
    if kept.shape[0] < 2:
        return flag, sides
    slope = np.sign(np.diff(v[kept])).astype(np.int64)
    for start, stop, key in _runs(slope):  # slopes start..stop-1 join kept points start..stop
        if stop - start + 1 >= length:
            span = slice(int(kept[start]), int(kept[stop]) + 1)
            flag[span], sides[span] = True, key
    return flag, sides


def _two_of_three_mdc(
    dev: FloatArray, sig: FloatArray, side: IntArray
) -> tuple[BoolArray, IntArray]:
    hi, lo = dev > 2 * sig, dev < -2 * sig
    flag = np.zeros(dev.shape[0], dtype=np.bool_)
    for i in range(dev.shape[0] - 2):
        w = slice(i, i + 3)
        if side[i] != 0 and bool(np.all(side[w] == side[i])):
            near = hi[w] if side[i] > 0 else lo[w]
            if near.sum() >= 2:
                flag[w] |= near
    return flag, np.where(flag, side, 0)


def _evaluate(
    ruleset: RuleSet,
    v: FloatArray,
    c: FloatArray,
    ucl: FloatArray,
    lcl: FloatArray,
    sig: FloatArray,
    *,
    limits_only: bool,
) -> dict[str, tuple[BoolArray, IntArray]]:
    """Rule name -> (flag, side) on the observed points of one phase."""
    dev = v - c
    side = np.where(np.isnan(dev), 0.0, np.sign(dev)).astype(np.int64)  # NaN CL: no side
    if ruleset.name == "run":
        assert ruleset.trend is not None
        return {
            "run_shift": _median_runs(side, ruleset.runs),
            "run_trend": _tie_free_trends(v, ruleset.trend),
        }
    above, below = v > ucl, v < lcl
    out: dict[str, tuple[BoolArray, IntArray]] = {
        ruleset.names[0]: (above | below, np.where(above, 1, np.where(below, -1, 0))),
    }
    if limits_only:
        return out
    runs, trend = ruleset.runs, ruleset.trend
    if ruleset.name == "mdc":
        assert trend is not None
        out["shift"] = _same_side_runs(side, runs, whole=True)
        out["trend"] = _trend_runs(v, trend, whole=True)
        out["two_of_three"] = _two_of_three_mdc(dev, sig, side)
    elif ruleset.name == "western_electric":
        out["we2"] = _k_of_m(dev, sig, 2, 3, 2.0)
        out["we3"] = _k_of_m(dev, sig, 4, 5, 1.0)
        out["we4"] = _same_side_runs(side, runs, whole=False)
    else:
        assert trend is not None
        zero = np.zeros(v.shape[0], dtype=np.int64)
        out["nelson2"] = _same_side_runs(side, runs, whole=False)
        out["nelson3"] = _trend_runs(v, trend, whole=False)
        out["nelson4"] = (_alternating(v) >= 13, zero)  # 14 points = 13 steps
        out["nelson5"] = _k_of_m(dev, sig, 2, 3, 2.0)
        out["nelson6"] = _k_of_m(dev, sig, 4, 5, 1.0)
        out["nelson7"] = (_streak(np.abs(dev) < sig) >= 15, zero)
        out["nelson8"] = (_streak(np.abs(dev) > sig) >= 8, zero)
    return out


def _signals(
    ruleset: RuleSet,
    values: FloatArray,
    center: FloatArray,
    ucl: FloatArray,
    lcl: FloatArray,
    sigma: FloatArray,
    phase: IntArray,
    missing: BoolArray,
    *,
    limits_only: bool = False,
) -> tuple[list[frozenset[str]], IntArray]:
    n = values.shape[0]
    names: list[set[str]] = [set() for _ in range(n)]
    sides = np.zeros(n, dtype=np.int64)
    trend_sides = np.zeros(n, dtype=np.int64)
    for ph in np.unique(phase):
        idx = np.flatnonzero((phase == ph) & ~missing)
        if idx.size == 0:
            continue
        found = _evaluate(
            ruleset, values[idx], center[idx], ucl[idx], lcl[idx], sigma[idx],
            limits_only=limits_only,
        )  # fmt: skip
        for rule, (flag, side) in found.items():
            for j in np.flatnonzero(flag):
                point = int(idx[j])
                names[point].add(rule)
                if rule in _TRENDS:
                    trend_sides[point] = side[j]
                elif rule not in _SIDELESS:
                    sides[point] = side[j]
    sides = np.where(sides != 0, sides, trend_sides)
    return [frozenset(s) for s in names], sides


# --------------------------------------------------------------------------- assembly


def _frozen(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _build(
    chart: ChartName,
    values: FloatArray,
    center: FloatArray,
    half_width: FloatArray,
    *,
    bounds: list[tuple[int, int]],
    base: BoolArray,
    missing: BoolArray,
    phases: list[Phase],
    ruleset: RuleSet,
    floor: bool = False,
    cap: float | FloatArray | None = None,
    lcl_factor: FloatArray | None = None,
    ucl_factor: FloatArray | None = None,
    limits_only: bool = False,
    numerators: FloatArray | None = None,
    denominators: FloatArray | None = None,
    sizes: IntArray | None = None,
    dispersion: ControlChart | None = None,
    limits: tuple[FloatArray, FloatArray, FloatArray] | None = None,
) -> ControlChart:
    """Limits center ± half_width (or lcl/ucl_factor × center, or ``limits`` =
    (lcl, ucl, sigma) given), floors and caps, signals."""
    if limits is not None:
        lcl, ucl, sigma = limits
    else:
        if ucl_factor is not None and lcl_factor is not None:
            ucl, lcl = ucl_factor * center, lcl_factor * center
        else:
            ucl, lcl = center + half_width, center - half_width
        sigma = (ucl - center) / 3.0
    if floor:
        lcl = np.where(np.isnan(lcl), lcl, np.maximum(lcl, 0.0))
    if cap is not None:
        ucl = np.where(np.isnan(ucl), ucl, np.minimum(ucl, cap))
    phase = np.zeros(values.shape[0], dtype=np.int64)
    for k, (start, stop) in enumerate(bounds):
        phase[start:stop] = k
    missing = missing | np.isnan(values)
    signals, sides = _signals(
        ruleset, values, center, ucl, lcl, sigma, phase, missing, limits_only=limits_only
    )
    return ControlChart(
        chart=chart,
        values=_frozen(values),
        center=_frozen(center),
        ucl=_frozen(ucl),
        lcl=_frozen(lcl),
        sigma=_frozen(sigma),
        signals=signals,
        sides=_frozen(sides),
        phase=_frozen(phase),
        in_baseline=_frozen(base),
        missing=tuple(int(i) for i in np.flatnonzero(missing)),
        phases=tuple(phases),
        rules=ruleset,
        numerators=None if numerators is None else _frozen(numerators),
        denominators=None if denominators is None else _frozen(denominators),
        sizes=None if sizes is None else _frozen(sizes),
        dispersion=dispersion,
    )


def _setup(
    n: int, baseline: Baseline, rebase: Sequence[int] | None
) -> tuple[list[tuple[int, int]], BoolArray]:
    bounds = _phase_bounds(n, rebase)
    return bounds, _baseline_mask(n, bounds, baseline)


# --------------------------------------------------------------------------- charts


def xmr(
    values: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    screen_outliers: bool = False,
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """XmR (individuals and moving range) chart.

    CL = x̄ of the baseline; UCL/LCL = x̄ ± 2.66·MR̄ where MR̄ is the mean of the
    baseline moving ranges |xᵢ − xᵢ₋₁|; σ = 2.66·MR̄/3. The MR chart
    (``c.mr_chart``) has CL = MR̄, UCL = 3.267·MR̄, LCL = 0.
    ``screen_outliers=True`` drops moving ranges ≥ 3.267·MR̄ and recomputes MR̄
    once (as NHSRplotthedots does); off by default, like the NHS England
    spreadsheet. The LCL is not floored: values may be negative.
    """
    return _individuals(_vector(values, "values"), baseline, _rules(rules), screen_outliers, rebase)


def _individuals(
    x: FloatArray,
    baseline: Baseline,
    ruleset: RuleSet,
    screen_outliers: bool,
    rebase: Sequence[int] | None,
    factor: float = XMR_LIMIT,
) -> ControlChart:
    """The XmR chart of ``x`` with limits x̄ ± factor·MR̄ (2.66 for XmR, 3/1.128 for t)."""
    n = x.shape[0]
    bounds, base = _setup(n, baseline, rebase)
    missing = np.isnan(x)
    center, half, mr_all, mr_bar_pt = (np.full(n, np.nan) for _ in range(4))
    phases: list[Phase] = []
    for start, stop in bounds:
        use = _usable(start, stop, base, missing)
        mean = _mean(x[use])
        mr, mr_base = _moving_ranges(x, start, stop, base)
        kept = np.flatnonzero(mr_base)
        mr_bar = _mean(mr[kept])
        screened: tuple[int, ...] = ()
        if screen_outliers and mr_bar > 0:
            outlier = mr[kept] >= SCREEN_LIMIT * mr_bar
            screened = tuple(int(i) for i in kept[outlier])
            mr_bar = _mean(mr[kept[~outlier]])
        center[start:stop] = mean
        half[start:stop] = factor * mr_bar
        mr_all[start:stop] = mr[start:stop]
        mr_bar_pt[start:stop] = mr_bar
        phases.append(
            Phase(start, stop, tuple(int(i) for i in np.flatnonzero(use)), mean, mr_bar, screened)
        )
    common: dict[str, Any] = {"bounds": bounds, "base": base, "phases": phases, "ruleset": ruleset}
    mr_chart = _build(
        "mr", mr_all, mr_bar_pt, np.zeros(n), missing=np.isnan(mr_all),
        lcl_factor=np.zeros(n), ucl_factor=np.full(n, MR_LIMIT), limits_only=True, **common,
    )  # fmt: skip
    return _build("xmr", x, center, half, missing=missing, dispersion=mr_chart, **common)


def _proportions(
    defectives: npt.ArrayLike, sizes: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    d = _vector(defectives, "defectives", nonnegative=True)
    m = _vector(sizes, "sizes", nonnegative=True)
    _same_length(d, m, "defectives and sizes")
    over = np.flatnonzero(d > m)
    if over.size:
        i = int(over[0])
        raise SpcError(f"defectives exceed the sample size at index {i} ({d[i]} > {m[i]})")
    missing = np.isnan(d) | np.isnan(m) | (m == 0)
    p = np.full(d.shape[0], np.nan)
    np.divide(d, m, out=p, where=~missing)
    return d, m, p, missing


def _pooled_rate(
    num: FloatArray,
    den: FloatArray,
    bounds: list[tuple[int, int]],
    base: BoolArray,
    missing: BoolArray,
) -> tuple[FloatArray, list[BoolArray]]:
    """Σnum/Σden over each phase's usable baseline points, spread over the phase."""
    rate = np.full(num.shape[0], np.nan)
    uses = []
    for start, stop in bounds:
        use = _usable(start, stop, base, missing)
        rate[start:stop] = float(np.sum(num[use]) / np.sum(den[use]))
        uses.append(use)
    return rate, uses


def _sqrt_ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """√(num/den), NaN where den is 0 or NaN (no warnings)."""
    out = np.full(num.shape[0], np.nan)
    ok = (den > 0) & (num >= 0)  # NaN compares False
    np.divide(num, den, out=out, where=ok)
    np.sqrt(out, out=out, where=ok)
    return out


def _attribute_phases(
    bounds: list[tuple[int, int]],
    uses: list[BoolArray],
    center: FloatArray,
    spread: float = math.nan,
) -> list[Phase]:
    return [
        Phase(start, stop, tuple(int(i) for i in np.flatnonzero(use)), float(center[start]), spread)
        for (start, stop), use in zip(bounds, uses, strict=True)
    ]


def p_chart(
    defectives: npt.ArrayLike,
    sizes: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """p chart of the proportion defective, limits per point for varying n.

    pᵢ = dᵢ/nᵢ; CL = p̄ = Σd/Σn over the baseline; UCL/LCL = p̄ ± 3·√(p̄(1−p̄)/nᵢ),
    LCL floored at 0 and UCL capped at 1. A point with nᵢ = 0 is missing.
    """
    ruleset = _rules(rules)
    d, m, p, missing = _proportions(defectives, sizes)
    bounds, base = _setup(d.shape[0], baseline, rebase)
    pbar, uses = _pooled_rate(d, m, bounds, base, missing)
    half = 3.0 * _sqrt_ratio(pbar * (1.0 - pbar), m)
    return _build(
        "p", p, pbar, half, bounds=bounds, base=base, missing=missing,
        phases=_attribute_phases(bounds, uses, pbar), ruleset=ruleset, floor=True, cap=1.0,
        numerators=d, denominators=m,
    )  # fmt: skip


def np_chart(
    defectives: npt.ArrayLike,
    size: float,
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """np chart of the number defective in samples of constant size n.

    CL = n·p̄ (p̄ = Σd/(k·n) over the baseline); UCL/LCL = n·p̄ ± 3·√(n·p̄(1−p̄)),
    LCL floored at 0, UCL capped at n. Use :func:`p_chart` when n varies.
    """
    ruleset = _rules(rules)
    if isinstance(size, bool) or not isinstance(size, int | float | np.number) or not size > 0:
        raise SpcError(
            f"size: expected one positive sample size, got {size!r} (varying n: p_chart)"
        )
    d = _vector(defectives, "defectives", nonnegative=True)
    m = np.full(d.shape[0], float(size))
    _, _, _, missing = _proportions(d, m)
    bounds, base = _setup(d.shape[0], baseline, rebase)
    pbar, uses = _pooled_rate(d, m, bounds, base, missing)
    center = m * pbar
    half = 3.0 * np.sqrt(m * pbar * (1.0 - pbar))
    return _build(
        "np", d, center, half, bounds=bounds, base=base, missing=missing,
        phases=_attribute_phases(bounds, uses, center), ruleset=ruleset, floor=True,
        cap=float(size), numerators=d, denominators=m,
    )  # fmt: skip


def _laney(
    d: FloatArray, m: FloatArray, p: FloatArray, missing: BoolArray,
    bounds: list[tuple[int, int]], base: BoolArray,
) -> tuple[FloatArray, FloatArray, FloatArray, list[BoolArray], list[float]]:  # fmt: skip
    """p̄, σ_pᵢ, σ_z per point; σ_z = mean |zᵢ − zᵢ₋₁| / 1.128 over the baseline."""
    pbar, uses = _pooled_rate(d, m, bounds, base, missing)
    sp = _sqrt_ratio(pbar * (1.0 - pbar), m)
    z = np.full(d.shape[0], np.nan)
    np.divide(p - pbar, sp, out=z, where=sp > 0)
    z = np.where((sp == 0) & ~np.isnan(p), 0.0, z)  # p̄ of 0 or 1: no spread at all
    sigma_z = np.full(d.shape[0], np.nan)
    per_phase = []
    for start, stop in bounds:
        mr, mr_base = _moving_ranges(z, start, stop, base)
        sz = _mean(mr[mr_base]) / LANEY_D2
        sigma_z[start:stop] = sz
        per_phase.append(sz)
    return pbar, sp, sigma_z, uses, per_phase


def laney_p_chart(
    defectives: npt.ArrayLike,
    sizes: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """Laney p′ chart: a p chart widened for over-dispersion (large or varying n).

    σ_pᵢ = √(p̄(1−p̄)/nᵢ); zᵢ = (pᵢ − p̄)/σ_pᵢ; σ_z = mean moving range of z over
    the baseline / 1.128; UCL/LCL = p̄ ± 3·σ_pᵢ·σ_z (floored at 0, capped at 1).
    σ_z ≈ 1 gives the p chart back. ``c.phases[k].spread`` holds σ_z.
    """
    ruleset = _rules(rules)
    d, m, p, missing = _proportions(defectives, sizes)
    bounds, base = _setup(d.shape[0], baseline, rebase)
    pbar, sp, sigma_z, uses, per_phase = _laney(d, m, p, missing, bounds, base)
    phases = [
        dataclasses.replace(ph, spread=sz)
        for ph, sz in zip(_attribute_phases(bounds, uses, pbar), per_phase, strict=True)
    ]
    return _build(
        "p'", p, pbar, 3.0 * sp * sigma_z, bounds=bounds, base=base, missing=missing,
        phases=phases, ruleset=ruleset, floor=True, cap=1.0, numerators=d, denominators=m,
    )  # fmt: skip


def u_chart(
    counts: npt.ArrayLike,
    units: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """u chart of nonconformities per unit, limits per point for varying units.

    uᵢ = cᵢ/aᵢ; CL = ū = Σc/Σa over the baseline; UCL/LCL = ū ± 3·√(ū/aᵢ), LCL
    floored at 0. A point with aᵢ = 0 units is missing.
    """
    ruleset = _rules(rules)
    c = _vector(counts, "counts", nonnegative=True)
    a = _vector(units, "units", nonnegative=True)
    _same_length(c, a, "counts and units")
    missing = np.isnan(c) | np.isnan(a) | (a == 0)
    u = np.full(c.shape[0], np.nan)
    np.divide(c, a, out=u, where=~missing)
    bounds, base = _setup(c.shape[0], baseline, rebase)
    ubar, uses = _pooled_rate(c, a, bounds, base, missing)
    return _build(
        "u", u, ubar, 3.0 * _sqrt_ratio(ubar, a), bounds=bounds, base=base, missing=missing,
        phases=_attribute_phases(bounds, uses, ubar), ruleset=ruleset, floor=True,
        numerators=c, denominators=a,
    )  # fmt: skip


def c_chart(
    counts: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """c chart of nonconformity counts per equal inspection unit.

    CL = c̄ (mean count over the baseline); UCL/LCL = c̄ ± 3·√c̄, LCL floored at 0.
    """
    ruleset = _rules(rules)
    c = _vector(counts, "counts", nonnegative=True)
    n = c.shape[0]
    bounds, base = _setup(n, baseline, rebase)
    missing = np.isnan(c)
    cbar, uses = _pooled_rate(c, np.ones(n), bounds, base, missing)
    return _build(
        "c", c, cbar, 3.0 * np.sqrt(cbar), bounds=bounds, base=base, missing=missing,
        phases=_attribute_phases(bounds, uses, cbar), ruleset=ruleset, floor=True,
    )  # fmt: skip


def _medians(
    x: FloatArray, bounds: list[tuple[int, int]], base: BoolArray, missing: BoolArray
) -> tuple[FloatArray, list[Phase]]:
    """Median of each phase's usable baseline points, spread over the phase."""
    med = np.full(x.shape[0], np.nan)
    phases = []
    for start, stop in bounds:
        use = _usable(start, stop, base, missing)
        m = float(np.median(x[use]))
        med[start:stop] = m
        phases.append(Phase(start, stop, tuple(int(i) for i in np.flatnonzero(use)), m, math.nan))
    return med, phases


def run_chart(
    values: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rules: RuleSet | None = None,
    rebase: Sequence[int] | None = None,
    reason: str = "",
    numerators: npt.ArrayLike | None = None,
    denominators: npt.ArrayLike | None = None,
) -> ControlChart:
    """Run chart: the values around their median, with no process limits.

    CL = median of the baseline's observed values; ``ucl``, ``lcl`` and ``sigma``
    are NaN. Rules (Perla, Provost & Murray 2011, "The run chart", BMJ Qual Saf
    20:46-51; the NHS England run-chart guidance uses the same two): ``run_shift``,
    6 or more points in a row on one side of the median (points on the median
    neither count nor break it); ``run_trend``, 5 or more points all going up or
    all going down (a point equal to the one before is not counted). Every point
    of a shift or trend is flagged. Gaps (NaN) are skipped, as on control charts.
    ``RuleSet("run", run_length=..., trend_length=...)`` changes the lengths.
    ``numerators``/``denominators`` travel with the points (p, u charts shown as
    run charts). :func:`variation` gives ``"run_chart"``, :func:`assurance` None.
    """
    ruleset = rules if rules is not None else RuleSet("run")
    if ruleset.name != "run":
        raise SpcError(f"a run chart uses the 'run' rules, not {ruleset.name!r}")
    x = _vector(values, "values")
    n = x.shape[0]
    bounds, base = _setup(n, baseline, rebase)
    missing = np.isnan(x)
    center, phases = _medians(x, bounds, base, missing)
    nan = np.full(n, np.nan)
    extra: dict[str, Any] = {}
    for name, data in (("numerators", numerators), ("denominators", denominators)):
        if data is not None:
            arr = _vector(data, name)
            _same_length(x, arr, f"values and {name}")
            extra[name] = arr
    chart = _build(
        "run", x, center, nan, bounds=bounds, base=base, missing=missing, phases=phases,
        ruleset=ruleset, limits=(nan, nan, nan), **extra,
    )  # fmt: skip
    return dataclasses.replace(chart, status="run_chart", reason=reason)


def g_chart(
    counts: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """g chart: opportunities (cases, days) between consecutive rare events.

    Geometric model (Kaminsky et al. 1992; Benneyan 2001, Health Care Manag Sci
    4:305-318; Montgomery): ḡ = mean of the baseline counts; UCL = ḡ + 3·√(ḡ(ḡ+1));
    LCL = max(0, ḡ − 3·√(ḡ(ḡ+1))) = 0 (the distribution is skewed: no lower
    limit). The centre line is the median of the baseline counts, as qicharts2
    draws it, so that shift and trend rules keep their meaning on skewed data.
    Zone rules (2 of 3, 4 of 5, Nelson 7 and 8) do not apply: ``sigma`` is NaN.
    Higher is longer between events: pass ``direction="higher_is_better"`` to
    :func:`variation` when the events are unwanted. ``c.phases[k].spread`` = ḡ.
    """
    ruleset = _rules(rules)
    g = _vector(counts, "counts", nonnegative=True)
    n = g.shape[0]
    bounds, base = _setup(n, baseline, rebase)
    missing = np.isnan(g)
    center, phases = _medians(g, bounds, base, missing)
    gbar = np.full(n, np.nan)
    for k, ph in enumerate(phases):
        mean = _mean(g[list(ph.baseline)])
        gbar[ph.start : ph.stop] = mean
        phases[k] = dataclasses.replace(ph, spread=mean)
    half = 3.0 * np.sqrt(gbar * (gbar + 1.0))
    limits = (np.maximum(gbar - half, 0.0), gbar + half, np.full(n, np.nan))
    return _build(
        "g", g, center, half, bounds=bounds, base=base, missing=missing, phases=phases,
        ruleset=ruleset, limits=limits,
    )  # fmt: skip


def t_chart(
    times: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """t chart: time between consecutive rare events (hours, days; each > 0).

    Montgomery (Introduction to SQC, "time between events", Example 7.6 in the
    6th ed.): times between events are roughly exponential/Weibull; yᵢ = xᵢ^(1/3.6)
    is close to normal, and an individuals chart is drawn on y with limits
    ȳ ± 3·MR̄/d₂ (d₂ = 1.128, as Montgomery and qicharts2 compute it, not the
    rounded 2.66 of :func:`xmr`). The rules are judged on y; ``values`` are the
    times themselves and ``center``, ``ucl``, ``lcl`` are transformed back (y^3.6;
    an LCL below 0 on the y scale is 0). ``sigma``, ``phases[k].spread`` (MR̄)
    and the moving-range chart are on the y scale. Higher is longer between
    events. A time of 0 (two events at once) cannot be transformed: SpcError.
    """
    ruleset = _rules(rules)
    x = _vector(times, "times")
    bad = np.flatnonzero(x <= 0)
    if bad.size:
        i = int(bad[0])
        raise SpcError(f"times: time between events must be > 0, got {x[i]} at index {i}")
    y = np.power(x, T_EXPONENT, where=~np.isnan(x), out=np.full(x.shape[0], np.nan))
    chart = _individuals(y, baseline, ruleset, False, rebase, factor=3.0 / LANEY_D2)

    def back(a: FloatArray) -> FloatArray:
        out = np.full(a.shape[0], np.nan)
        ok = ~np.isnan(a)
        out[ok] = np.where(a[ok] > 0, np.abs(a[ok]) ** (1.0 / T_EXPONENT), 0.0)
        return _frozen(out)

    return dataclasses.replace(
        chart,
        chart="t",
        values=_frozen(x),
        center=back(chart.center),
        ucl=back(chart.ucl),
        lcl=back(chart.lcl),
        phases=tuple(
            dataclasses.replace(ph, center=ph.center ** (1.0 / T_EXPONENT)) for ph in chart.phases
        ),
    )


def rare_events(
    counts: npt.ArrayLike, *, baseline: Baseline = None, threshold: float = RARE_MEAN_COUNT
) -> bool:
    """Whether events are too rare for a chart of counts per period.

    Rare: the mean count over the observed baseline periods is below ``threshold``
    (default 1 event per period). Below one event a period most periods are 0,
    the c chart has no lower limit (it needs c̄ > 9) and its upper limit is under
    4, so a single event is flagged (c̄ = 0.04 puts the UCL at 0.64); the rare-event
    charts (:func:`g_chart`, :func:`t_chart`) need the events' dates or the
    opportunities between them, which a monthly count does not keep.
    """
    c = _vector(counts, "counts", nonnegative=True)
    _bounds, base = _setup(c.shape[0], baseline, None)
    use = base & ~np.isnan(c)
    return bool(use.any()) and float(np.mean(c[use])) < threshold


def _xbar(
    subgroups: npt.ArrayLike | Sequence[Sequence[float]],
    baseline: Baseline,
    rules: RuleSetName | RuleSet,
    rebase: Sequence[int] | None,
    kind: Literal["r", "s"],
) -> ControlChart:
    ruleset = _rules(rules)
    data = _subgroups(subgroups)
    k = data.shape[0]
    sizes = np.sum(~np.isnan(data), axis=1).astype(np.int64)
    if sizes.max() > 25:
        raise SpcError(f"subgroups of {int(sizes.max())} measurements: the constants stop at 25")
    missing = sizes < 2
    bounds, base = _setup(k, baseline, rebase)
    means, stat = np.full(k, np.nan), np.full(k, np.nan)
    rows = np.flatnonzero(~missing)
    means[rows] = [_mean(r[~np.isnan(r)]) for r in data[rows]]
    if kind == "r":
        stat[rows] = [float(np.ptp(r[~np.isnan(r)])) for r in data[rows]]
    else:
        stat[rows] = [float(np.std(r[~np.isnan(r)], ddof=1)) for r in data[rows]]
    # unbiasing constant (d2 or c4) and limit factors for each point's own n
    n_eff = sizes.copy()
    center, stat_center, a_factor = np.full(k, np.nan), np.full(k, np.nan), np.full(k, np.nan)
    lo_factor, hi_factor = np.full(k, np.nan), np.full(k, np.nan)
    phases: list[Phase] = []
    for start, stop in bounds:
        use = _usable(start, stop, base, missing)
        seg = slice(start, stop)
        known = n_eff[seg][n_eff[seg] >= 2]
        n_eff[seg] = np.where(n_eff[seg] >= 2, n_eff[seg], np.bincount(known).argmax())
        tab = [constants(int(n)) for n in n_eff[seg]]
        unbias = np.array([t.d2 if kind == "r" else t.c4 for t in tab])
        sigma_hat = float(np.mean(stat[use] / unbias[use[seg]]))
        first = means[use][0]
        grand = float(first + np.sum((means[use] - first) * sizes[use]) / np.sum(sizes[use]))
        center[seg] = grand
        stat_center[seg] = unbias * sigma_hat
        a_factor[seg] = 3.0 / (unbias * np.sqrt(n_eff[seg]))  # A2 or A3, unrounded
        lo_factor[seg] = [t.D3 if kind == "r" else t.B3 for t in tab]
        hi_factor[seg] = [t.D4 if kind == "r" else t.B4 for t in tab]
        spread = float(np.mean(stat[use]))
        phases.append(Phase(start, stop, tuple(int(i) for i in np.flatnonzero(use)), grand, spread))
    common: dict[str, Any] = {
        "bounds": bounds, "base": base, "phases": phases, "ruleset": ruleset,
        "missing": missing, "sizes": sizes,
    }  # fmt: skip
    sub = _build(
        kind, stat, stat_center, np.zeros(k), lcl_factor=lo_factor, ucl_factor=hi_factor,
        limits_only=True, **common,
    )  # fmt: skip
    return _build(
        "xbar_r" if kind == "r" else "xbar_s", means, center, a_factor * stat_center,
        dispersion=sub, **common,
    )  # fmt: skip


def xbar_r(
    subgroups: npt.ArrayLike | Sequence[Sequence[float]],
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """Xbar-R chart of subgroup means, with the R chart as ``c.range_chart``.

    ``subgroups`` is k × n (rows may be ragged or NaN-padded; 2 ≤ n ≤ 25).
    CL = x̿ (mean of the baseline measurements); UCL/LCL = x̿ ± 3·R̄/(d₂√n); R chart
    CL = R̄, UCL = D₄·R̄, LCL = D₃·R̄. A subgroup with < 2 measurements is missing.
    """
    return _xbar(subgroups, baseline, rules, rebase, "r")


def xbar_s(
    subgroups: npt.ArrayLike | Sequence[Sequence[float]],
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
) -> ControlChart:
    """Xbar-S chart of subgroup means, with the S chart as ``c.sd_chart``.

    CL = x̿; UCL/LCL = x̿ ± 3·s̄/(c₄√n) (s: sample SD, n − 1 divisor); S chart CL = s̄,
    UCL = B₄·s̄, LCL = B₃·s̄. A subgroup with < 2 measurements is missing.
    """
    return _xbar(subgroups, baseline, rules, rebase, "s")


# --------------------------------------------------------------------------- choice


@dataclass(frozen=True)
class Overdispersion:
    """Laney's σ_z for a proportion series and the test :func:`auto_chart` uses.

    Under the binomial model σ_z ≈ 1 with standard error ≈ 0.91/√m for m moving
    ranges of z (Var |Δz| = 2 − 4/π, lag-1 covariance 0.163, /1.128). The data
    are over-dispersed when σ_z > 1 + 2·0.91/√m (about a 2.5 % one-sided test;
    e.g. 1.38 for 24 points), and then p′ is used instead of p.
    """

    sigma_z: float
    threshold: float
    moving_ranges: int

    @property
    def overdispersed(self) -> bool:
        return self.moving_ranges > 0 and self.sigma_z > self.threshold


def overdispersion(
    defectives: npt.ArrayLike,
    sizes: npt.ArrayLike,
    *,
    baseline: Baseline = None,
    rebase: Sequence[int] | None = None,
) -> Overdispersion:
    """σ_z of the last phase's baseline and whether it exceeds the threshold."""
    d, m, p, missing = _proportions(defectives, sizes)
    bounds, base = _setup(d.shape[0], baseline, rebase)
    pbar, sp, _, _, per_phase = _laney(d, m, p, missing, bounds, base)
    start, stop = bounds[-1]
    z = np.full(d.shape[0], np.nan)
    np.divide(p - pbar, sp, out=z, where=sp > 0)
    z = np.where((sp == 0) & ~np.isnan(p), 0.0, z)
    count = int(np.sum(_moving_ranges(z, start, stop, base)[1]))
    threshold = 1.0 + 2.0 * OVERDISPERSION_SE / math.sqrt(count) if count else math.inf
    return Overdispersion(per_phase[-1], threshold, count)


def _rescaled(chart: ControlChart, scale: float) -> ControlChart:
    if scale == 1.0:
        return chart
    return dataclasses.replace(
        chart,
        values=_frozen(chart.values * scale),
        center=_frozen(chart.center * scale),
        ucl=_frozen(chart.ucl * scale),
        lcl=_frozen(chart.lcl * scale),
        sigma=_frozen(chart.sigma * scale),
        phases=tuple(dataclasses.replace(ph, center=ph.center * scale) for ph in chart.phases),
    )


def auto_chart(
    kind: KpiKind,
    values: npt.ArrayLike | None = None,
    numerators: npt.ArrayLike | None = None,
    denominators: npt.ArrayLike | None = None,
    *,
    baseline: Baseline = None,
    rules: RuleSetName | RuleSet = "mdc",
    rebase: Sequence[int] | None = None,
    scale: float = 1.0,
    min_points: int | None = MIN_POINTS_FOR_LIMITS,
    rare_below: float | None = RARE_MEAN_COUNT,
) -> ControlChart:
    """The chart for a KPI of the given kind (DESIGN §5).

    ``continuous`` → XmR of ``values``; ``count`` → c chart of ``values`` (or
    ``numerators``); ``rate`` → u chart of numerators per denominator;
    ``proportion`` → p′ when :func:`overdispersion` says so, else p.
    ``scale`` multiplies the plotted rate or proportion (1e6 for ppm); signals
    do not change. ``c.chart`` names the chart chosen ("xmr", "c", "u", "p", "p'").

    Before any limits: a count, rate or proportion whose events (the counts or
    numerators) are :func:`rare_events` below ``rare_below`` gets a chart with
    ``status="rare_events"``: the values, no centre line, no limits, no signal.
    Otherwise a phase with fewer than ``min_points`` observed baseline points
    (default :data:`MIN_POINTS_FOR_LIMITS` = 12) gets a :func:`run_chart` of the
    plotted values (``status="run_chart"``). ``None`` turns either check off.
    ``c.reason`` says why, e.g. "9 points, fewer than the 12 needed for process limits".
    """
    kinds = get_args(KpiKind)
    if kind not in kinds:
        raise SpcError(
            f"unknown KPI kind {kind!r}; available: {', '.join(kinds)}"
            + did_you_mean(str(kind), kinds)
        )
    if not scale > 0 or not math.isfinite(scale):
        raise SpcError(f"scale must be a positive number, got {scale!r}")
    if kind in ("continuous", "count"):
        if scale != 1.0:
            raise SpcError(f"scale applies to rate and proportion KPIs, not {kind!r}")
        data = values if values is not None else numerators
        if data is None:
            raise SpcError(f"a {kind} KPI needs values")
        short = _no_limits(kind, data, None, None, baseline, rebase, min_points, rare_below)
        if short is not None:
            return short
        if kind == "continuous":
            return xmr(data, baseline=baseline, rules=rules, rebase=rebase)
        return c_chart(data, baseline=baseline, rules=rules, rebase=rebase)
    if numerators is None or denominators is None:
        raise SpcError(f"a {kind} KPI needs numerators and denominators")
    short = _no_limits(
        kind, numerators, denominators, scale, baseline, rebase, min_points, rare_below
    )
    if short is not None:
        return short
    if kind == "rate":
        chart = u_chart(numerators, denominators, baseline=baseline, rules=rules, rebase=rebase)
    elif overdispersion(numerators, denominators, baseline=baseline, rebase=rebase).overdispersed:
        chart = laney_p_chart(
            numerators, denominators, baseline=baseline, rules=rules, rebase=rebase
        )
    else:
        chart = p_chart(numerators, denominators, baseline=baseline, rules=rules, rebase=rebase)
    return _rescaled(chart, scale)


def _no_limits(
    kind: KpiKind,
    data: npt.ArrayLike,
    denominators: npt.ArrayLike | None,
    scale: float | None,
    baseline: Baseline,
    rebase: Sequence[int] | None,
    min_points: int | None,
    rare_below: float | None,
) -> ControlChart | None:
    """The rare-event or run chart :func:`auto_chart` draws instead of limits, or None."""
    num = _vector(data, "numerators" if denominators is not None else "values")
    den = None if denominators is None else _vector(denominators, "denominators")
    if den is not None:
        _same_length(num, den, "numerators and denominators")
        shown = np.full(num.shape[0], np.nan)
        np.divide(num, den, out=shown, where=(den > 0) & ~np.isnan(num))
        shown = shown * (scale or 1.0)
        observed = ~np.isnan(shown)
    else:
        shown = num
        observed = ~np.isnan(num)
    counts = np.where(observed, num, np.nan)
    if kind == "proportion" and den is not None:
        # a proportion is rare when either outcome is: few defectives, or few passes
        other = np.where(observed, den - num, np.nan)
        if float(np.nansum(other)) < float(np.nansum(counts)):
            counts = other
    bounds, base = _setup(num.shape[0], baseline, rebase)
    extra: dict[str, Any] = {"numerators": num, "denominators": den} if den is not None else {}
    if (
        kind != "continuous"
        and rare_below is not None
        and rare_events(counts, baseline=baseline, threshold=rare_below)
    ):
        use = base & observed
        mean, periods = float(np.mean(counts[use])), int(np.sum(use))
        reason = (
            f"mean {mean:.2g} a period over {_plural(periods, 'period')}, below {rare_below:g}: "
            "too rare for a chart of counts; the count is stated without a signal"
        )
        n = num.shape[0]
        nan = np.full(n, np.nan)
        chart = _build(
            "run", shown, nan, nan, bounds=bounds, base=base, missing=~observed,
            phases=[Phase(a, b, (), math.nan, math.nan) for a, b in bounds],
            ruleset=RuleSet("run"), limits=(nan, nan, nan), limits_only=True, **extra,
        )  # fmt: skip
        return dataclasses.replace(
            chart, signals=[frozenset()] * n, sides=_frozen(np.zeros(n, dtype=np.int64)),
            status="rare_events", reason=reason,
        )  # fmt: skip
    if min_points is None:
        return None
    fewest = min(int(np.sum((base & observed)[a:b])) for a, b in bounds)
    if fewest >= min_points:
        return None
    reason = f"{_plural(fewest, 'point')}, fewer than the {min_points} needed for process limits"
    if not (base & observed).any():
        return None  # nothing to draw: let the chart raise its own error
    return run_chart(shown, baseline=baseline, rebase=rebase, reason=reason, **extra)


# --------------------------------------------------------------------------- icons


def _direction(direction: str) -> Direction:
    options = get_args(Direction)
    if direction not in options:
        raise SpcError(
            f"unknown direction {direction!r}; available: {', '.join(options)}"
            + did_you_mean(direction, options)
        )
    return direction  # type: ignore[return-value]


def classify(chart: ControlChart, direction: Direction) -> list[SignalLabel | None]:
    """Per point: "improvement", "concern" or "neutral" for a signal, None for none.

    A signal is high when it points up (point above the centre, or a rising
    trend) and low when it points down; high is improvement when higher is
    better. Signals with no direction (Nelson 4, 7, 8) and every signal of a
    ``neutral`` KPI are "neutral".
    """
    direction = _direction(direction)
    out: list[SignalLabel | None] = []
    for names, side in zip(chart.signals, chart.sides, strict=True):
        if not names:
            out.append(None)
        elif direction == "neutral" or side == 0:
            out.append("neutral")
        elif (side > 0) == (direction == "higher_is_better"):
            out.append("improvement")
        else:
            out.append("concern")
    return out


def _last_observed(chart: ControlChart) -> int:
    observed = np.flatnonzero(~np.isnan(chart.values))
    return int(observed[-1]) if observed.size else len(chart) - 1


def variation(chart: ControlChart, direction: Direction) -> Variation:
    """The NHS Making Data Count variation icon of the last observed point.

    A chart without process limits has no MDC icon: a run chart gives
    ``"run_chart"`` and a rare-event chart ``"rare_events"`` (``chart.reason``
    says why); their run-rule signals are still in ``chart.signals``.
    """
    if chart.status != "limits":
        return chart.status
    labels = classify(chart, direction)
    i = _last_observed(chart)
    label = labels[i]
    if label is None:
        return "common_cause"
    side = int(chart.sides[i]) or int(np.sign(chart.values[i] - chart.center[i])) or 1
    return f"{label}_{'high' if side > 0 else 'low'}"  # type: ignore[return-value]


def assurance(chart: ControlChart, target: float | None, direction: Direction) -> Assurance | None:
    """The NHS Making Data Count assurance icon from the last point's limits.

    Target above the UCL: consistent fail when higher is better, consistent
    pass when lower is better; below the LCL the reverse; otherwise
    inconsistent. None without a target, for a neutral KPI, when the last
    limits are undefined (NaN), or for a chart without process limits.
    """
    direction = _direction(direction)
    if not chart.has_limits:
        return None
    if target is None or direction == "neutral" or math.isnan(target):
        return None
    ok = np.flatnonzero(~np.isnan(chart.ucl) & ~np.isnan(chart.lcl))
    if not ok.size:
        return None
    i = int(ok[-1])
    higher = direction == "higher_is_better"
    if target > chart.ucl[i]:
        return "consistent_fail" if higher else "consistent_pass"
    if target < chart.lcl[i]:
        return "consistent_pass" if higher else "consistent_fail"
    return "inconsistent"
