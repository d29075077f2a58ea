"""A :class:`ControlChart` built from values, centre and limits: floors, caps, phases, signals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from qmskpi.spc.base import Baseline, BoolArray, ChartName, FloatArray, IntArray
from qmskpi.spc.inputs import _baseline_mask, _phase_bounds
from qmskpi.spc.results import ControlChart, Phase, RuleSet
from qmskpi.spc.rules import _signals


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
