"""The signal rules (MDC, Western Electric, Nelson, run-chart) judged on each phase's points."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from qmskpi.spc.base import _SIDELESS, _TRENDS, BoolArray, FloatArray, IntArray
from qmskpi.spc.results import RuleSet


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
