"""What a chart returns: :class:`ControlChart`, its phases, rule set and baseline statement.

Also the chart's one-line summary (``repr``) and inline SVG (``_repr_html_``).
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from qmskpi.errors import did_you_mean
from qmskpi.spc.base import (
    _DEFAULT_LENGTHS,
    _RULE_ORDER,
    RULE_NAMES,
    BoolArray,
    ChartName,
    ChartStatus,
    FloatArray,
    IntArray,
    RuleSetName,
    SpcError,
)

if TYPE_CHECKING:
    import polars as pl


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
