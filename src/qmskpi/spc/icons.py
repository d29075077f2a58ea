"""The NHS Making Data Count icons: each signal's class, the variation and assurance icons."""

from __future__ import annotations

import math
from typing import get_args

import numpy as np

from qmskpi.errors import did_you_mean
from qmskpi.spc.base import Assurance, Direction, SignalLabel, SpcError, Variation
from qmskpi.spc.results import ControlChart


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
