"""Rare events: the g chart (opportunities between events), the t chart (time between
events) and :func:`rare_events` (too few events for a chart of counts)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from qmskpi.spc.assembly import _build, _frozen, _setup
from qmskpi.spc.base import (
    LANEY_D2,
    RARE_MEAN_COUNT,
    T_EXPONENT,
    Baseline,
    FloatArray,
    RuleSetName,
    SpcError,
)
from qmskpi.spc.individuals import _individuals
from qmskpi.spc.inputs import _mean, _rules, _vector
from qmskpi.spc.results import ControlChart, RuleSet
from qmskpi.spc.runchart import _medians


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
