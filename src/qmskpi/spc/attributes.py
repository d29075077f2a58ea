"""Attribute charts: p, np and Laney p′ (proportions), u (rates) and c (counts)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from qmskpi.spc.assembly import _build, _setup
from qmskpi.spc.base import LANEY_D2, Baseline, BoolArray, FloatArray, RuleSetName, SpcError
from qmskpi.spc.inputs import _mean, _moving_ranges, _rules, _same_length, _usable, _vector
from qmskpi.spc.results import ControlChart, Phase, RuleSet


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
