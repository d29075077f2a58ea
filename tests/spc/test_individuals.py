"""qmskpi.spc.individuals: XmR charts against published examples; invariants under shift and scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmskpi import spc
from spc.helpers import ANTIFREEZE, VISCOSITY, fired


def test_xmr_viscosity() -> None:
    # qcc ?qcc example (viscosity, Montgomery p. 242), xbar.one: center 33.52333,
    # σ = MR̄/1.128 = 0.4261651, so MR̄ = 0.4261651 × 1.128 = 0.4807142.
    # By hand: ΣMR = 6.73 over 14 moving ranges, MR̄ = 0.4807143;
    # 2.66 MR̄ = 1.2787000 -> LCL 32.244633, UCL 34.802033 (Montgomery: 32.24, 34.80;
    # qcc's 3/1.128 = 2.6596 gives 32.24484 / 34.80183). MR chart UCL = 3.267 MR̄ = 1.5704936.
    c = spc.xmr(VISCOSITY)
    assert c.chart == "xmr"
    assert c.center[0] == pytest.approx(33.52333, abs=5e-6)
    assert c.phases[0].spread == pytest.approx(0.4261651 * 1.128, rel=1e-6)
    assert c.lcl[0] == pytest.approx(32.244633, abs=5e-7)
    assert c.ucl[0] == pytest.approx(34.802033, abs=5e-7)
    assert (round(c.lcl[0], 2), round(c.ucl[0], 2)) == (32.24, 34.80)
    assert abs(c.lcl[0] - 32.24484) < 3e-4
    assert abs(c.ucl[0] - 34.80183) < 3e-4
    mr = c.mr_chart
    assert mr.chart == "mr"
    assert math.isnan(mr.values[0])
    assert mr.values[1] == pytest.approx(0.70)
    assert mr.ucl[1] == pytest.approx(1.5704936, abs=5e-8)
    assert mr.lcl[1] == 0.0
    assert not fired(c)


def test_xmr_antifreeze() -> None:
    # qcc ?stats.xbar.one (Wetherill & Brown 1991 p. 120): center 2.569706, σ 0.1794541
    # -> MR̄ = 0.1794541 × 1.128 = 0.2024242; qcc limits 2.031344 / 3.108068 (3σ).
    # Here 2.569706 ± 2.66 × 0.2024242 = ± 0.5384484 -> 2.031258, 3.108154.
    c = spc.xmr(ANTIFREEZE)
    assert c.center[0] == pytest.approx(2.569706, abs=5e-7)
    assert c.phases[0].spread == pytest.approx(0.1794541 * 1.128, rel=1e-6)
    assert c.lcl[0] == pytest.approx(2.031258, abs=2e-6)
    assert c.ucl[0] == pytest.approx(3.108154, abs=2e-6)
    assert abs(c.lcl[0] - 2.031344) < 2e-4
    assert abs(c.ucl[0] - 3.108068) < 2e-4


# Wheeler, *Understanding Statistical Process Control*, 3rd ed. (Wheeler & Chambers), p. 386:
# sixteen monthly values as quoted in the test data of the public spctools_py project.
# The book's printed limits were not available to us; the expected values below are
# worked by hand from Wheeler's formulas (average ± 2.66 × average moving range).
WHEELER_P386 = [
    5045,
    4350,
    4350,
    3975,
    4290,
    4430,
    4485,
    4285,
    3980,
    3925,
    3645,
    3760,
    3300,
    3685,
    3463,
    5200,
]


def test_xmr_wheeler_understanding_spc_p386() -> None:
    # Sum = 66168 -> average = 66168 / 16 = 4135.5.
    # Moving ranges: 695, 0, 375, 315, 140, 55, 200, 305, 55, 280, 115, 460, 385, 222, 1737;
    # sum 5339 -> MR̄ = 5339 / 15 = 355.9333...
    # UNPL = 4135.5 + 2.66 × 355.9333 = 5082.2827; LNPL = 4135.5 − 946.7827 = 3188.7173.
    # URL (moving ranges) = 3.267 × 355.9333 = 1162.8342.
    c = spc.xmr(WHEELER_P386)
    assert c.center[0] == pytest.approx(4135.5)
    assert c.ucl[0] == pytest.approx(4135.5 + 2.66 * 5339 / 15)
    assert c.ucl[0] == pytest.approx(5082.2827, abs=1e-4)
    assert c.lcl[0] == pytest.approx(3188.7173, abs=1e-4)
    # Only the last value (5200) lies beyond a limit.
    beyond = [i for i, s in enumerate(c.signals) if "beyond_limits" in s]
    assert beyond == [15]
    # Values 9 to 15 (3980 ... 3463) are all below 4135.5 and value 8 (4285) is above:
    # a run of 7 on one side, so MDC flags every point of it (0-based 8..14).
    assert [i for i, s in enumerate(c.signals) if "shift" in s] == list(range(8, 15))
    assert c.mr_chart is not None
    assert c.mr_chart.ucl[1] == pytest.approx(1162.8342, abs=1e-4)


def test_xmr_outlier_screening_as_nhsr() -> None:
    # NHSRplotthedots ptd_spc_standard: drop moving ranges >= 3.267 × MR̄, recompute once.
    # By hand: MRs 1,1,1,1,20,20,1,1,1 -> MR̄ = 47/9 = 5.222222; 3.267 × 5.222222 = 17.06
    # -> the two 20s are screened; MR̄ = 7/7 = 1. Mean = 124/10 = 12.4.
    values = [10, 11, 10, 11, 10, 30, 10, 11, 10, 11]
    plain = spc.xmr(values)
    assert plain.phases[0].spread == pytest.approx(47 / 9)
    assert plain.ucl[0] == pytest.approx(12.4 + 2.66 * 47 / 9)
    screened = spc.xmr(values, screen_outliers=True)
    assert screened.phases[0].spread == pytest.approx(1.0)
    assert screened.phases[0].screened == (5, 6)
    assert screened.ucl[0] == pytest.approx(12.4 + 2.66)
    assert screened.center[0] == pytest.approx(12.4)


def test_xmr_baseline_freezes_limits_and_rebase_makes_phases() -> None:
    values = [10, 12, 11, 13, 12, 30, 31, 29, 30, 31, 32]
    # baseline=4: mean (10+12+11+13)/4 = 11.5, MRs 2,1,2 -> MR̄ = 5/3
    c = spc.xmr(values, baseline=4)
    assert np.all(c.center == 11.5)
    assert c.ucl[-1] == pytest.approx(11.5 + 2.66 * 5 / 3)
    assert list(c.in_baseline) == [True] * 4 + [False] * 7
    # rebase at point 5: phase 0 = 10..12 (mean 58/5 = 11.6, MRs 2,1,2,1 -> 1.5),
    # phase 1 = 30,31,29,30,31,32 (mean 30.5, MRs 1,2,1,1,1 -> 1.2); no MR across phases.
    r = spc.xmr(values, rebase=[5])
    assert [(p.start, p.stop) for p in r.phases] == [(0, 5), (5, 11)]
    assert list(r.phase) == [0] * 5 + [1] * 6
    assert r.center[0] == pytest.approx(11.6)
    assert r.center[5] == pytest.approx(30.5)
    assert r.phases[0].spread == pytest.approx(1.5)
    assert r.phases[1].spread == pytest.approx(1.2)
    assert math.isnan(r.mr_chart.values[5])
    # baseline=3 with a rebase: first 3 points of each phase
    b = spc.xmr(values, rebase=[5], baseline=3)
    assert b.phases[1].baseline == (5, 6, 7)
    assert b.center[5] == pytest.approx(30.0)


def test_single_point() -> None:
    x = spc.xmr([5.0])
    assert x.center[0] == 5.0
    assert math.isnan(x.ucl[0])
    assert math.isnan(x.lcl[0])
    assert x.signals == [frozenset()]
    assert spc.variation(x, "higher_is_better") == "common_cause"
    assert spc.assurance(x, 6.0, "higher_is_better") is None
    c = spc.c_chart([4])
    assert c.ucl[0] == pytest.approx(10.0)
    assert c.lcl[0] == 0.0


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


series = st.lists(finite, min_size=2, max_size=40)


@settings(max_examples=60, deadline=None)
@given(series)
def test_xmr_limits_symmetric_about_the_centre(values: list[float]) -> None:
    c = spc.xmr(values)
    np.testing.assert_allclose(c.ucl - c.center, c.center - c.lcl, atol=1e-9)
    assert np.all(c.ucl >= c.lcl)


@settings(max_examples=60, deadline=None)
@given(series, st.floats(min_value=-1e3, max_value=1e3))
def test_xmr_shifting_the_data_shifts_the_limits(values: list[float], k: float) -> None:
    a, b = spc.xmr(values), spc.xmr([v + k for v in values])
    for field in ("center", "ucl", "lcl"):
        np.testing.assert_allclose(getattr(b, field), getattr(a, field) + k, atol=1e-8)


@settings(max_examples=60, deadline=None)
@given(series, st.floats(min_value=1e-3, max_value=1e3))
def test_xmr_scaling_the_data_scales_the_limits(values: list[float], k: float) -> None:
    a, b = spc.xmr(values), spc.xmr([v * k for v in values])
    for field in ("center", "ucl", "lcl", "sigma"):
        np.testing.assert_allclose(getattr(b, field), getattr(a, field) * k, rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(finite, st.integers(min_value=1, max_value=40))
def test_constant_series_has_zero_width_limits_and_no_signal(value: float, n: int) -> None:
    for rules in ("mdc", "western_electric", "nelson"):
        c = spc.xmr([value] * n, rules=rules)  # type: ignore[arg-type]
        assert np.all(c.center == value)
        if n > 1:
            assert np.all(c.ucl == value)
            assert np.all(c.lcl == value)
        assert not fired(c)


@settings(max_examples=30, deadline=None)
@given(series, st.sampled_from(["mdc", "western_electric", "nelson"]))
def test_results_are_deterministic(values: list[float], rules: str) -> None:
    a = spc.xmr(values, rules=rules)  # type: ignore[arg-type]
    b = spc.xmr(values, rules=rules)  # type: ignore[arg-type]
    assert a.signals == b.signals
    assert a.to_frame().equals(b.to_frame())
