"""Input checks and the pieces every chart shares: vectors, subgroups, phases, baselines."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from qmskpi.spc.base import Baseline, BoolArray, FloatArray, RuleSetName, SpcError
from qmskpi.spc.results import RuleSet


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
