"""qmskpi.spc.subgroups: Xbar-R and Xbar-S charts against qcc and Montgomery's piston rings."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from qmskpi import spc
from spc.helpers import PISTONRINGS, PISTONRINGS_MONTGOMERY, fired


def test_xbar_r_pistonrings_qcc() -> None:
    # qcc (mistat comparison with R): xbar chart of samples 1-25: center 74.00118,
    # σ = R̄/d2 = 0.009785039, limits [73.98805, 74.0143]; R chart center 0.02276.
    # By hand: 3·R̄/(d2√5) = 3 × 0.02276/(2.326 × 2.2360680) = 0.0131280
    # -> 73.988048, 74.014304. (The 74.01431 sometimes quoted comes from A2 = 0.577,
    # which with the same R̄ gives LCL 73.98804, not 73.98805.)
    c = spc.xbar_r(PISTONRINGS)
    assert c.chart == "xbar_r"
    assert c.center[0] == pytest.approx(74.00118, abs=5e-6)
    assert c.lcl[0] == pytest.approx(73.98805, abs=5e-6)
    assert c.ucl[0] == pytest.approx(74.0143, abs=5e-5)
    assert c.ucl[0] == pytest.approx(74.014304, abs=1e-6)
    assert c.sigma[0] * math.sqrt(5) == pytest.approx(0.009785039, abs=5e-10)  # σ̂ = R̄/d2
    r = c.range_chart
    assert r.chart == "r"
    assert r.center[0] == pytest.approx(0.02276, abs=5e-9)
    # qcc's R UCL 0.04812533 uses d2σ + 3d3σ with unrounded d3; D4·R̄ = 2.114 × 0.02276
    # = 0.04811464 (relative difference 2e-4, the rounding of D4).
    assert r.ucl[0] == pytest.approx(2.114 * 0.02276, rel=1e-9)
    assert r.ucl[0] == pytest.approx(0.04812533, rel=5e-4)
    assert r.lcl[0] == 0.0
    # qcc quick tour: 2-sigma warning limits 73.99242 74.00993
    assert c.center[0] - 2 * c.sigma[0] == pytest.approx(73.99242, abs=5e-6)
    assert c.center[0] + 2 * c.sigma[0] == pytest.approx(74.00993, abs=5e-6)
    assert not fired(c)
    assert not fired(r)


def test_xbar_r_pistonrings_montgomery_table() -> None:
    # Montgomery (Table 6.3 data): x̿ = 74.001, R̄ = 0.023, UCL = 74.001 + 0.577(0.023)
    # = 74.014, LCL = 73.988; R chart UCL = 2.114(0.023) = 0.049 (all from rounded R̄).
    # Unrounded: ΣR = 0.581, R̄ = 0.02324; 3R̄/(d2√5) = 0.0134049 -> UCL 74.014581.
    c = spc.xbar_r(PISTONRINGS_MONTGOMERY)
    assert c.range_chart.center[0] == pytest.approx(0.581 / 25)
    assert c.center[0] == pytest.approx(74.001, abs=5e-4)
    assert c.ucl[0] == pytest.approx(74.014, abs=1e-3)
    assert c.lcl[0] == pytest.approx(73.988, abs=1e-3)
    assert c.range_chart.ucl[0] == pytest.approx(0.049, abs=5e-4)


def test_xbar_s_pistonrings() -> None:
    # qcc (mistat comparison) S chart: center s̄ = 0.009240037, UCL 0.019302416
    # (qcc: B4 from unrounded c4; B4 = 2.089 gives 0.01930244, relative diff 1e-6).
    # Xbar by hand: x̿ ± 3·s̄/(c4√5) = 74.001176 ± 3 × 0.009240037/(0.9400 × 2.2360680)
    # = ± 0.0131881 -> 73.987988, 74.014364 (A3 = 1.427 would give ± 0.0131855).
    c = spc.xbar_s(PISTONRINGS)
    s = c.sd_chart
    assert (c.chart, s.chart) == ("xbar_s", "s")
    assert s.center[0] == pytest.approx(0.009240037, abs=5e-10)
    assert s.ucl[0] == pytest.approx(0.019302416, rel=2e-6)
    assert s.lcl[0] == 0.0
    assert c.lcl[0] == pytest.approx(73.987988, abs=1e-6)
    assert c.ucl[0] == pytest.approx(74.014364, abs=1e-6)


def test_xbar_s_pistonrings_montgomery_table() -> None:
    # Montgomery Example (x̄ and s charts, Table 6.3): s̄ = 0.0094, UCL = 74.001 +
    # 1.427(0.0094) = 74.014, LCL = 73.988; s chart UCL = 2.089(0.0094) = 0.0196.
    c = spc.xbar_s(PISTONRINGS_MONTGOMERY)
    assert c.sd_chart.center[0] == pytest.approx(0.0094, abs=5e-5)
    assert c.ucl[0] == pytest.approx(74.014, abs=1e-3)
    assert c.lcl[0] == pytest.approx(73.988, abs=1e-3)
    assert c.sd_chart.ucl[0] == pytest.approx(0.0196, abs=5e-5)


def test_xbar_accepts_arrays_and_frames_row_wise() -> None:
    expected = spc.xbar_r(PISTONRINGS)
    frame = pl.DataFrame(np.array(PISTONRINGS), schema=[f"x{i}" for i in range(5)], orient="row")
    for data in (np.array(PISTONRINGS), frame):
        c = spc.xbar_r(data)
        np.testing.assert_array_equal(c.ucl, expected.ucl)
        assert len(c) == 25


def test_xbar_unequal_subgroups_use_their_own_constants() -> None:
    # Rows of 2 and 3 measurements. By hand: R = 2, 2, 4, 2 (n = 2, 3, 3, 2).
    # σ̂ = mean(R/d2) = (1.7730496 + 1.1813349 + 2.3626698 + 1.7730496)/4 = 1.7725260
    # row 0 (n=2): R̄_0 = 1.128σ̂ = 1.9994093; UCL_R = 3.267 × 1.9994093 = 6.5320703
    # row 1 (n=3): Xbar half-width = 3σ̂/√3 = 5.3175780/1.7320508 = 3.0701051
    c = spc.xbar_r([[10, 12], [10, 11, 12], [9, 11, 13], [11, 13]])
    assert c.range_chart.center[0] == pytest.approx(1.9994093, abs=5e-8)
    assert c.range_chart.ucl[0] == pytest.approx(6.5320703, abs=5e-8)
    assert c.ucl[1] - c.center[1] == pytest.approx(3.0701051, abs=5e-8)
    assert c.sizes is not None
    assert list(c.sizes) == [2, 3, 3, 2]
