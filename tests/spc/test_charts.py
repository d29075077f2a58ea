"""Tests for qmskpi.spc: published worked examples, rules, icons, edge cases, invariants.

Sources of expected numbers (cited again at each test):

- qcc: the R package qcc (L. Scrucca, github.com/luca-scr/qcc), datasets in its
  data/ folder; printed results from qcc's summaries: orangejuice p chart
  ("Center of group statistics: 0.2313333 ... Control limits: 0.05242755
  0.4102391"), the quick-tour vignette (qcc 2.7, pistonrings 2-sigma warning
  limits 73.99242 / 74.00993), and qcc outputs reproduced in the mistat
  package's comparison-with-R tests (Kenett, Zacks & Gedeck 2022, mistat/qcc/tests).
- Montgomery, D.C., Introduction to Statistical Quality Control (qcc cites the
  2nd ed., 1991, for the datasets: orangejuice pp. 152-155, circuit pp. 173-175,
  pcmanufact pp. 181-182, dyedcloth pp. 183-184, pistonrings pp. 206-213;
  viscosity "pag. 242"); Table 6.3 of later editions for the piston rings.
- Wetherill, G.B. & Brown, D.W. (1991) Statistical Process Control, p. 120
  (antifreeze water content, via qcc).
- NHS England "Making Data Count" as implemented by NHSRplotthedots
  (github.com/nhs-r-community/NHSRplotthedots): 2.66/3.267 constants, outlier
  screening, the 2-of-3 same-side test case, and the assurance logic.
Where no published number was available the expected value is computed by hand
in a comment from the formulas in the spc module docstring.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmskpi import spc
from qmskpi.errors import QmsKpiError

# --------------------------------------------------------------------------- data

# qcc data/orangejuice.txt, trial samples 1-30 (n = 50 cans each); Montgomery 2nd ed pp. 152-155.
ORANGEJUICE = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22,
               8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12, 7, 13, 9, 6]  # fmt: skip
# qcc data/orangejuice2.txt, trial samples 31-54 (after the machine adjustment).
ORANGEJUICE2 = [9, 6, 12, 5, 6, 4, 6, 3, 7, 6, 2, 4, 3, 6, 5, 4, 8, 5, 6, 7, 5, 6, 3, 5]
# qcc data/circuit.txt, trial samples 1-26 (nonconformities per 100 boards).
CIRCUIT = [21, 24, 16, 12, 15, 5, 28, 20, 31, 25, 20, 24, 16,
           19, 10, 17, 13, 22, 18, 39, 30, 24, 16, 19, 17, 15]  # fmt: skip
# qcc data/pcmanufact.txt: nonconformities in 20 samples of 5 computers.
PCMANUFACT = [10, 12, 8, 14, 10, 16, 11, 7, 10, 15, 9, 5, 7, 11, 12, 6, 8, 10, 7, 5]
# qcc data/dyedcloth.txt: nonconformities and 50 m² inspection units per roll.
DYEDCLOTH_X = [14, 12, 20, 11, 7, 10, 21, 16, 19, 23]
DYEDCLOTH_UNITS = [10, 8, 13, 10, 9.5, 10, 12, 10.5, 12, 12.5]
# qcc ?qcc example "viscosity data (Montgomery, pag. 242)": 15 batches of primer paint.
VISCOSITY = [33.75, 33.05, 34, 33.81, 33.46, 34.02, 33.68, 33.27,
             33.49, 33.20, 33.62, 33.00, 33.54, 33.12, 33.84]  # fmt: skip
# qcc antifreeze water content (Wetherill & Brown 1991, p. 120).
ANTIFREEZE = [2.23, 2.53, 2.62, 2.63, 2.58, 2.44, 2.49, 2.34, 2.95, 2.54, 2.60, 2.45,
              2.17, 2.58, 2.57, 2.44, 2.38, 2.23, 2.23, 2.54, 2.66, 2.84, 2.81, 2.39,
              2.56, 2.70, 3.00, 2.81, 2.77, 2.89, 2.54, 2.98, 2.35, 2.53]  # fmt: skip
# qcc data/pistonrings.txt, trial samples 1-25 of 5 inside diameters (mm).
PISTONRINGS = [
    [74.030, 74.002, 74.019, 73.992, 74.008], [73.995, 73.992, 74.001, 74.011, 74.004],
    [73.988, 74.024, 74.021, 74.005, 74.002], [74.002, 73.996, 73.993, 74.015, 74.009],
    [73.992, 74.007, 74.015, 73.989, 74.014], [74.009, 73.994, 73.997, 73.985, 73.993],
    [73.995, 74.006, 73.994, 74.000, 74.005], [73.985, 74.003, 73.993, 74.015, 73.988],
    [74.008, 73.995, 74.009, 74.005, 74.004], [73.998, 74.000, 73.990, 74.007, 73.995],
    [73.994, 73.998, 73.994, 73.995, 73.990], [74.004, 74.000, 74.007, 74.000, 73.996],
    [73.983, 74.002, 73.998, 73.997, 74.012], [74.006, 73.967, 73.994, 74.000, 73.984],
    [74.012, 74.014, 73.998, 73.999, 74.007], [74.000, 73.984, 74.005, 73.998, 73.996],
    [73.994, 74.012, 73.986, 74.005, 74.007], [74.006, 74.010, 74.018, 74.003, 74.000],
    [73.984, 74.002, 74.003, 74.005, 73.997], [74.000, 74.010, 74.013, 74.020, 74.003],
    [73.988, 74.001, 74.009, 74.005, 73.996], [74.004, 73.999, 73.990, 74.006, 74.009],
    [74.010, 73.989, 73.990, 74.009, 74.014], [74.015, 74.008, 73.993, 74.000, 74.010],
    [73.982, 73.984, 73.995, 74.017, 74.013],
]  # fmt: skip
# Montgomery's Table 6.3 prints sample 21 as 73.982 74.001 74.015 74.005 73.996
# (qcc's file has 73.988 ... 74.009): same mean, larger range.
PISTONRINGS_MONTGOMERY = [
    *PISTONRINGS[:20],
    [73.982, 74.001, 74.015, 74.005, 73.996],
    *PISTONRINGS[21:],
]


def fired(chart: spc.ControlChart) -> dict[int, set[str]]:
    """Points with a signal -> their rule names."""
    return {i: set(s) for i, s in enumerate(chart.signals) if s}


# --------------------------------------------------------------------------- constants


def _phi(x: np.ndarray) -> np.ndarray:
    erf: np.ndarray = np.vectorize(math.erf)(x / math.sqrt(2.0))
    return 0.5 * (1.0 + erf)


@pytest.mark.parametrize("n", range(2, 26))
def test_constants_match_their_definitions(n: int) -> None:
    k = spc.constants(n)
    # c4 = sqrt(2/(n-1)) Γ(n/2)/Γ((n-1)/2), printed to 4 decimals
    c4 = math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))
    assert k.c4 == pytest.approx(c4, abs=5e-5)
    # d2 = ∫ 1 - Φ(x)^n - (1 - Φ(x))^n dx, printed to 3 decimals
    x = np.linspace(-10, 10, 20001)
    big_phi = _phi(x)
    d2 = float(np.sum(1 - big_phi**n - (1 - big_phi) ** n) * (x[1] - x[0]))
    assert k.d2 == pytest.approx(d2, abs=5e-4)
    a2, a3, d3_, d4_, b3, b4 = k.A2, k.A3, k.D3, k.D4, k.B3, k.B4
    # A2 = 3/(d2 √n), A3 = 3/(c4 √n): the table rounds each factor separately
    assert a2 == pytest.approx(3 / (k.d2 * math.sqrt(n)), abs=1e-3)
    assert a3 == pytest.approx(3 / (k.c4 * math.sqrt(n)), abs=1e-3)
    # D3, D4 = max(0, 1 ∓ 3 d3/d2) from the printed d3, d2: their rounding (±0.0005)
    # moves 3·d3/d2 by up to ~0.0017 (n = 2: 1 + 3·0.853/1.128 = 3.2686 vs 3.267).
    assert d3_ == pytest.approx(max(0.0, 1 - 3 * k.d3 / k.d2), abs=2e-3)
    assert d4_ == pytest.approx(1 + 3 * k.d3 / k.d2, abs=2e-3)
    # B3, B4 = max(0, 1 ∓ 3 √(1 - c4²)/c4)
    spread = 3 * math.sqrt(1 - c4**2) / c4
    assert b3 == pytest.approx(max(0.0, 1 - spread), abs=1e-3)
    assert b4 == pytest.approx(1 + spread, abs=1e-3)


def test_constants_for_n5_are_the_printed_table() -> None:
    # Montgomery Appendix VI, n = 5: A2 0.577, A3 1.427, c4 0.9400, B4 2.089,
    # d2 2.326, d3 0.864, D4 2.114; and the XmR factors 2.66 = 3/1.128, 3.267 = D4(2).
    k = spc.constants(5)
    assert (k.A2, k.A3, k.c4, k.B3, k.B4, k.d2, k.d3, k.D3, k.D4) == (
        0.577, 1.427, 0.9400, 0.0, 2.089, 2.326, 0.864, 0.0, 2.114,
    )  # fmt: skip
    assert spc.constants(2).D4 == spc.MR_LIMIT == 3.267
    assert round(3 / spc.constants(2).d2, 2) == spc.XMR_LIMIT


@pytest.mark.parametrize("n", [0, 1, 26])
def test_constants_outside_table_raise(n: int) -> None:
    with pytest.raises(spc.SpcError, match=r"2\.\.25"):
        spc.constants(n)


# --------------------------------------------------------------------------- p, np


def test_p_chart_orangejuice_trial_samples() -> None:
    # qcc summary(qcc(D[trial], sizes=size[trial], type="p")):
    # Center 0.2313333, LCL 0.05242755, UCL 0.4102391; samples 15 and 23 above the UCL.
    c = spc.p_chart(ORANGEJUICE, [50] * 30)
    assert c.chart == "p"
    assert c.center[0] == pytest.approx(0.2313333, abs=5e-8)
    assert c.lcl[0] == pytest.approx(0.05242755, abs=5e-9)
    assert c.ucl[0] == pytest.approx(0.4102391, abs=5e-8)
    assert [i for i, s in enumerate(c.signals) if "beyond_limits" in s] == [14, 22]


def test_p_chart_revised_limits_leave_out_special_causes() -> None:
    # Montgomery 2nd ed p. 154 / qcc (mistat comparison): dropping samples 15 and 23
    # (new cardboard stock; inexperienced operator) gives p̄ 0.215, LCL 0.04070284,
    # UCL 0.3892972, and sample 21 (p = 20/50 = 0.40) is then above the UCL.
    keep = [i for i in range(30) if i not in (14, 22)]
    c = spc.p_chart(ORANGEJUICE, [50] * 30, baseline=keep)
    assert c.center[0] == pytest.approx(0.215, abs=5e-9)
    assert c.lcl[0] == pytest.approx(0.04070284, abs=5e-9)
    assert c.ucl[0] == pytest.approx(0.3892972, abs=5e-8)
    assert [i for i, s in enumerate(c.signals) if "beyond_limits" in s] == [14, 20, 22]
    assert c.in_baseline.sum() == 28
    assert c.phases[0].baseline == tuple(keep)


def test_p_chart_lcl_floored_at_zero_orangejuice2() -> None:
    # qcc (mistat comparison) orangejuice2 trial samples: center 0.1108333,
    # limits [0, 0.2440207]. By hand: p̄ = 133/1200 = 0.1108333;
    # 3·√(0.1108333·0.8891667/50) = 0.1331874, so LCL = max(0, -0.0223541) = 0.
    c = spc.p_chart(ORANGEJUICE2, [50] * 24)
    assert c.center[0] == pytest.approx(0.1108333, abs=5e-8)
    assert c.lcl[0] == 0.0
    assert c.ucl[0] == pytest.approx(0.2440207, abs=5e-8)
    assert c.sigma[0] == pytest.approx(0.1331874 / 3, abs=1e-7)  # sigma is never floored
    assert not fired(c)


def test_p_chart_varying_sizes_gives_limits_per_point() -> None:
    # By hand: d = 5, 20, 3; n = 100, 400, 50 -> p̄ = 28/550 = 0.0509091.
    # σ_i = √(p̄(1-p̄)/n_i) = √(0.0483174/n_i): 0.0219812, 0.0109906, 0.0310861.
    c = spc.p_chart([5, 20, 3], [100, 400, 50])
    pbar = 28 / 550
    assert c.center[0] == pytest.approx(pbar)
    np.testing.assert_allclose(c.sigma, [0.0219812, 0.0109906, 0.0310861], atol=5e-8)
    np.testing.assert_allclose(
        c.ucl, pbar + 3 * np.array([0.0219812, 0.0109906, 0.0310861]), atol=2e-7
    )
    assert c.lcl[0] == 0.0
    assert c.lcl[1] == pytest.approx(pbar - 3 * 0.0109906, abs=2e-7)


def test_np_chart_orangejuice() -> None:
    # np limits are n × the p limits above (qcc): 50 × 0.2313333 = 11.566665,
    # 50 × 0.05242755 = 2.6213775, 50 × 0.4102391 = 20.511955 (qcc's rounding × 50).
    c = spc.np_chart(ORANGEJUICE, 50)
    assert c.chart == "np"
    assert c.center[0] == pytest.approx(11.566665, abs=2.5e-6)
    assert c.lcl[0] == pytest.approx(2.6213775, abs=2.5e-7)
    assert c.ucl[0] == pytest.approx(20.511955, abs=2.5e-6)
    assert [i for i, s in enumerate(c.signals) if "beyond_limits" in s] == [14, 22]


# --------------------------------------------------------------------------- Laney p′


def test_laney_p_chart_hand_computed() -> None:
    # d = 10, 30, 20, 40; n = 100, 200, 100, 200; p = 0.10, 0.15, 0.20, 0.20.
    # p̄ = 100/600 = 0.1666667; σ_p = √(0.1388889/n) = 0.0372678 (n=100), 0.0263523 (n=200).
    # z = (p - p̄)/σ_p = -1.788854, -0.632456, 0.894427, 1.264911
    # |Δz| = 1.156399, 1.526883, 0.370484; mean 1.017922; σ_z = 1.017922/1.128 = 0.902413
    # n=100: p̄ ± 3·0.0372678·0.902413 = 0.1666667 ± 0.1008928 -> 0.0657738, 0.2675595
    # n=200: p̄ ± 3·0.0263523·0.902413 = 0.1666667 ± 0.0713420 -> 0.0953247, 0.2380087
    c = spc.laney_p_chart([10, 30, 20, 40], [100, 200, 100, 200])
    assert c.chart == "p'"
    assert c.phases[0].spread == pytest.approx(0.902413, abs=5e-7)
    np.testing.assert_allclose(c.ucl, [0.2675595, 0.2380087, 0.2675595, 0.2380087], atol=5e-8)
    np.testing.assert_allclose(c.lcl, [0.0657738, 0.0953247, 0.0657738, 0.0953247], atol=5e-8)


def test_laney_with_sigma_z_one_is_the_p_chart() -> None:
    # σ_z scales the p limits: p′ half-width / p half-width == σ_z at every point.
    p = spc.p_chart(ORANGEJUICE, [50] * 30)
    lp = spc.laney_p_chart(ORANGEJUICE, [50] * 30)
    np.testing.assert_allclose(lp.sigma / p.sigma, lp.phases[0].spread)
    np.testing.assert_allclose(lp.center, p.center)


# --------------------------------------------------------------------------- c, u


def test_c_chart_circuit_boards_trial_and_revised() -> None:
    # Montgomery 2nd ed pp. 173-175 (qcc ?circuit: "Sample 6 and 20 are outside
    # the control limits"). By hand: c̄ = 516/26 = 19.8461538; √c̄ = 4.4549022;
    # 3√c̄ = 13.3647067 -> UCL 33.2108605, LCL 6.4814472 (with c̄ rounded to 19.85:
    # 33.22 / 6.48).
    c = spc.c_chart(CIRCUIT)
    assert c.center[0] == pytest.approx(516 / 26)
    assert c.ucl[0] == pytest.approx(33.2108605, abs=5e-8)
    assert c.lcl[0] == pytest.approx(6.4814472, abs=5e-8)
    assert abs(c.ucl[0] - 33.22) <= 0.01
    assert abs(c.lcl[0] - 6.48) <= 0.01
    assert [i for i, s in enumerate(c.signals) if "beyond_limits" in s] == [5, 19]
    # Revised without samples 6 and 20: c̄ = (516-5-39)/24 = 472/24 = 19.666667;
    # 3√c̄ = 13.304135 -> UCL 32.970801, LCL 6.362532 (to 2 dp: 32.97 / 6.36).
    r = spc.c_chart(CIRCUIT, baseline=[i for i in range(26) if i not in (5, 19)])
    assert r.center[0] == pytest.approx(472 / 24)
    assert r.ucl[0] == pytest.approx(32.970801, abs=5e-7)
    assert r.lcl[0] == pytest.approx(6.362532, abs=5e-7)


def test_u_chart_pc_manufacturer() -> None:
    # Montgomery 2nd ed pp. 181-182 (qcc pcmanufact): 193 nonconformities in 100 computers.
    # By hand: ū = 193/100 = 1.93; 3√(1.93/5) = 3·0.6212890 = 1.8638670
    # -> UCL 3.793867, LCL 0.066133.
    c = spc.u_chart(PCMANUFACT, [5] * 20)
    assert c.chart == "u"
    assert c.center[0] == pytest.approx(1.93)
    assert c.ucl[0] == pytest.approx(3.793867, abs=5e-7)
    assert c.lcl[0] == pytest.approx(0.066133, abs=5e-7)
    assert not any("beyond_limits" in s for s in c.signals)


def test_u_chart_dyed_cloth_varying_units() -> None:
    # Montgomery 2nd ed pp. 183-184 (qcc dyedcloth). By hand: ū = 153/107.5 = 1.4232558.
    # n = 10:   ū/n = 0.1423256, √ = 0.3772606, × 3 = 1.1317819 -> 2.5550377, 0.2914739
    # n = 8:    ū/n = 0.1779070, √ = 0.4217902, × 3 = 1.2653706 -> 2.6886264, 0.1578852
    # n = 12.5: ū/n = 0.1138605, √ = 0.3374322, × 3 = 1.0122965 -> 2.4355523, 0.4109593
    c = spc.u_chart(DYEDCLOTH_X, DYEDCLOTH_UNITS)
    assert c.center[0] == pytest.approx(153 / 107.5)
    assert (c.ucl[0], c.lcl[0]) == pytest.approx((2.5550377, 0.2914739), abs=5e-7)
    assert (c.ucl[1], c.lcl[1]) == pytest.approx((2.6886264, 0.1578852), abs=5e-7)
    assert (c.ucl[9], c.lcl[9]) == pytest.approx((2.4355523, 0.4109593), abs=5e-7)
    assert c.values[4] == pytest.approx(7 / 9.5)


# --------------------------------------------------------------------------- Xbar


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


# --------------------------------------------------------------------------- XmR


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


def test_rules_do_not_cross_a_rebase() -> None:
    # 4 points above the centre at the end of phase 0 and 4 at the start of phase 1
    # would be 8 in a row (WE4) without the rebase.
    values = [1, 0, 1, 0, 1, 2, 2, 2, 2, 12, 12, 12, 12, 11, 12, 11, 12]
    flat = spc.xmr(values, baseline=5, rules="western_electric")
    assert any("we4" in s for s in flat.signals)
    phased = spc.xmr(values, rebase=[9], baseline=5, rules="western_electric")
    assert not any("we4" in s for s in phased.signals)


# --------------------------------------------------------------------------- rules
#
# A benign baseline for XmR: CL = 11, MR̄ = 1 (all moving ranges 1), so UCL 13.66,
# LCL 8.34, σ = 2.66/3 = 0.886667; 1σ band 10.1133..11.8867, 2σ band 9.2267..12.7733.
# It triggers no rule of any set (runs of 1, slopes in pairs, 10/12 alternate with 11s).
BASE = [11, 10, 11, 12] * 3  # indices 0..11; point 11 is 12 (above, reached rising)


def chart(tail: list[float], rules: str | spc.RuleSet = "mdc") -> spc.ControlChart:
    return spc.xmr(BASE + tail, baseline=len(BASE), rules=rules)  # type: ignore[arg-type]


@pytest.mark.parametrize("rules", ["mdc", "western_electric", "nelson"])
def test_baseline_of_rule_tests_is_quiet(rules: str) -> None:
    c = chart([11.0], rules)
    assert c.center[0] == 11.0
    assert c.phases[0].spread == 1.0
    assert c.ucl[0] == pytest.approx(13.66)
    assert c.sigma[0] == pytest.approx(2.66 / 3)
    assert not fired(c)


ABOVE = [11.5, 11.5, 11.2, 11.2, 11.5, 11.5, 11.2, 11.2, 11.5]  # inside 1σ, above CL
RISING = [10.2, 10.4, 10.6, 10.8, 11.2, 11.4, 11.6]  # inside 1σ, strictly rising


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ([11, 14, 11], {13: {"beyond_limits"}}),
        ([11, *ABOVE[:7], 11], {i: {"shift"} for i in range(13, 20)}),  # every point of the run
        ([11, *ABOVE[:6], 11], {}),  # 6 in a row: not enough
        ([11, 11.5, 11.2, 11.5, 11, 11.5, 11.2, 11.5, 11.2, 11], {}),  # centre point breaks it
        ([11, *RISING, 11], {i: {"trend"} for i in range(13, 20)}),  # every point of the trend
        ([11, *RISING[1:], 11], {}),  # 6 rising: not enough
        ([11, 10.2, 10.4, 10.6, 10.6, 10.8, 11.2, 11.4, 11], {}),  # a tie breaks a trend
        ([11, 13, 11.5, 13, 11], {13: {"two_of_three"}, 15: {"two_of_three"}}),  # the close points
        ([11, 13, 10.5, 13, 11], {}),  # middle point on the other side
        ([11, 9], {}),  # 9 is beyond 2σ low but alone
    ],
)
def test_mdc_rules(tail: list[float], expected: dict[int, set[str]]) -> None:
    assert fired(chart(tail)) == expected


def test_mdc_run_and_trend_lengths_are_configurable() -> None:
    six = spc.RuleSet("mdc", run_length=6, trend_length=6)
    assert fired(chart([11, *ABOVE[:6], 11], six)) == {i: {"shift"} for i in range(13, 19)}
    assert fired(chart([11, *RISING[1:], 11], six)) == {i: {"trend"} for i in range(13, 19)}
    eight = spc.RuleSet(run_length=8)
    assert fired(chart([11, *ABOVE[:7], 11], eight)) == {}


def test_mdc_two_of_three_needs_all_three_on_one_side_nhsr_case() -> None:
    # NHSRplotthedots test "it only reports special cause for 2 of 3 points close to
    # limits when they are on the same side of the mean": 1,-1 × 8 with the last two
    # set to 5.5 and -5.5 -> both common cause. (Mean 0; MR̄ = (13×2 + 6.5 + 11)/15 = 2.9;
    # 2σ = 2/3 × 2.66 × 2.9 = 5.143 < 5.5.)
    data = [1.0, -1.0] * 8
    data[14], data[15] = 5.5, -5.5
    c = spc.xmr(data)
    assert c.center[0] == pytest.approx(0.0, abs=1e-12)
    assert c.phases[0].spread == pytest.approx(2.9)
    assert c.signals[14] == frozenset()
    assert c.signals[15] == frozenset()
    assert spc.variation(c, "higher_is_better") == "common_cause"


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ([11, 14, 11], {13: {"we1"}}),
        ([11, 13, 11.5, 13, 11], {15: {"we2"}}),  # the completing point only
        ([11, 13, 10.5, 13, 11], {15: {"we2"}}),  # WE: the third point may be anywhere
        ([11, 12.2, 12.2, 11.5, 12.2, 12.2, 11], {17: {"we3"}}),
        ([11, *ABOVE[:8], 11], {20: {"we4"}}),
        ([11, *ABOVE[:9], 11], {20: {"we4"}, 21: {"we4"}}),
        ([11, *ABOVE[:7], 11], {}),
        ([11, *RISING, 11], {}),  # no trend rule in WE 1-4
    ],
)
def test_western_electric_rules(tail: list[float], expected: dict[int, set[str]]) -> None:
    assert fired(chart(tail, "western_electric")) == expected


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ([11, 14, 11], {13: {"nelson1"}}),
        ([11, *ABOVE, 11], {21: {"nelson2"}}),
        ([11, *ABOVE[:8], 11], {}),
        ([11, *RISING[1:], 11], {18: {"nelson3"}}),
        ([11, 11, *[12.0, 10.8] * 6, 12.0], {26: {"nelson4"}}),
        ([11, 11, *[12.0, 10.8] * 6], {}),  # 13 alternating points
        ([11, 13, 11.5, 13, 11], {15: {"nelson5"}}),
        ([11, 12.2, 12.2, 11.5, 12.2, 12.2, 11], {17: {"nelson6"}}),
        ([11.3, 11.3, 10.7, 10.7] * 3 + [11.3, 11.3, 10.7], {26: {"nelson7"}}),
        ([11.3, 11.3, 10.7, 10.7] * 3 + [11.3, 11.3], {}),
        ([11, 12.2, 12.2, 9.8, 9.8, 12.2, 12.2, 9.8, 9.8], {20: {"nelson8"}}),
    ],
)
def test_nelson_rules(tail: list[float], expected: dict[int, set[str]]) -> None:
    assert fired(chart(tail, "nelson")) == expected


def test_nelson_lengths_configurable() -> None:
    rs = spc.RuleSet("nelson", run_length=7, trend_length=7)
    assert fired(chart([11, *ABOVE[:7], 11], rs)) == {19: {"nelson2"}}
    assert fired(chart([11, *RISING, 11], rs)) == {19: {"nelson3"}}
    assert rs.names == tuple(f"nelson{i}" for i in range(1, 9))


def test_rule_set_validation() -> None:
    with pytest.raises(spc.SpcError, match="did you mean 'nelson'"):
        spc.xmr([1, 2, 3], rules="nelsen")  # type: ignore[arg-type]
    with pytest.raises(spc.SpcError, match="no trend rule"):
        spc.RuleSet("western_electric", trend_length=6)
    with pytest.raises(spc.SpcError, match="at least 2"):
        spc.RuleSet(run_length=1)


def test_fewer_points_than_a_rule_needs() -> None:
    for rules in ("mdc", "western_electric", "nelson"):
        c = spc.xmr([5.0, 6.0, 7.0], rules=rules)  # type: ignore[arg-type]
        assert not fired(c)
    assert not fired(spc.c_chart([3]))


def test_dispersion_charts_check_limits_only() -> None:
    # Moving ranges 1,1,1,1,1,1,1,1,9: MR̄ = 17/9 = 1.888889, MR UCL = 6.171 < 9.
    c = spc.xmr([1, 2, 1, 2, 1, 2, 1, 2, 1, 10])
    assert c.mr_chart.signals[9] == frozenset({"beyond_limits"})
    assert fired(c.mr_chart) == {9: {"beyond_limits"}}


# --------------------------------------------------------------------------- icons


def test_classify_and_variation_icons() -> None:
    high = chart([11, 14])  # last point beyond the UCL
    assert spc.classify(high, "higher_is_better")[-1] == "improvement"
    assert spc.variation(high, "higher_is_better") == "improvement_high"
    assert spc.variation(high, "lower_is_better") == "concern_high"
    assert spc.variation(high, "neutral") == "neutral_high"
    low = chart([11, 8])
    assert spc.variation(low, "higher_is_better") == "concern_low"
    assert spc.variation(low, "lower_is_better") == "improvement_low"
    assert spc.variation(low, "neutral") == "neutral_low"
    quiet = chart([11, 11.5])
    assert spc.variation(quiet, "higher_is_better") == "common_cause"
    assert spc.classify(quiet, "lower_is_better")[-1] is None


def test_trend_direction_counts_not_side_when_only_a_trend_fires() -> None:
    # Nelson 3 (6 rising) entirely below the centre, no other rule: the signal points up.
    c = chart([11, 9.6, 9.8, 10.0, 10.2, 10.4, 10.6], "nelson")
    assert fired(c) == {18: {"nelson3"}}
    assert spc.variation(c, "higher_is_better") == "improvement_high"
    assert spc.classify(c, "lower_is_better")[18] == "concern"


def test_variation_uses_the_last_observed_point() -> None:
    c = chart([11, 14, math.nan])
    assert c.missing == (14,)
    assert spc.variation(c, "higher_is_better") == "improvement_high"


def test_sideless_nelson_signals_are_neutral() -> None:
    c = chart([11.3, 11.3, 10.7, 10.7] * 3 + [11.3, 11.3, 10.7], "nelson")
    assert spc.classify(c, "higher_is_better")[26] == "neutral"
    assert spc.variation(c, "higher_is_better") == "neutral_low"  # 10.7 < CL


@pytest.mark.parametrize(
    ("target", "direction", "expected"),
    [
        # NHSRplotthedots ptd_calculate_assurance_type: target > UCL -> fail if
        # higher is better else pass; target < LCL -> the reverse; else inconsistent.
        (14.0, "higher_is_better", "consistent_fail"),
        (14.0, "lower_is_better", "consistent_pass"),
        (8.0, "higher_is_better", "consistent_pass"),
        (8.0, "lower_is_better", "consistent_fail"),
        (12.0, "higher_is_better", "inconsistent"),
        (13.66, "higher_is_better", "inconsistent"),
        (None, "higher_is_better", None),
        (14.0, "neutral", None),
    ],
)
def test_assurance(target: float | None, direction: spc.Direction, expected: str | None) -> None:
    c = chart([11.0])  # UCL 13.66, LCL 8.34
    assert spc.assurance(c, target, direction) == expected


def test_assurance_uses_the_last_points_limits() -> None:
    # p chart with varying n: the last point (n = 1000) has the narrowest limits.
    # p̄ = 110/1200 = 0.0916667; p̄(1-p̄) = 0.0832639; /1000 -> √ = 0.0091249;
    # last UCL = 0.0916667 + 3 × 0.0091249 = 0.0916667 + 0.0273747 = 0.1190414
    c = spc.p_chart([10, 100], [200, 1000])
    assert c.ucl[-1] == pytest.approx(0.1190414, abs=5e-8)
    assert spc.assurance(c, 0.125, "lower_is_better") == "consistent_pass"
    assert spc.assurance(c, 0.11, "lower_is_better") == "inconsistent"


def test_unknown_direction() -> None:
    with pytest.raises(spc.SpcError, match="did you mean 'higher_is_better'"):
        spc.variation(chart([11.0]), "higher_is_beter")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- auto_chart


def test_auto_chart_picks_by_kind() -> None:
    assert spc.auto_chart("continuous", VISCOSITY).chart == "xmr"
    assert spc.auto_chart("count", CIRCUIT).chart == "c"
    assert spc.auto_chart("rate", numerators=PCMANUFACT, denominators=[5] * 20).chart == "u"
    # orangejuice2 is in control: σ_z = 1.007 < 1 + 2·0.91/√23 = 1.3795 -> plain p
    od = spc.overdispersion(ORANGEJUICE2, [50] * 24)
    assert od.moving_ranges == 23
    assert od.threshold == pytest.approx(1 + 1.82 / math.sqrt(23))
    assert od.sigma_z == pytest.approx(1.0071, abs=1e-4)
    assert not od.overdispersed
    assert (
        spc.auto_chart("proportion", numerators=ORANGEJUICE2, denominators=[50] * 24).chart == "p"
    )


def test_auto_chart_uses_laney_when_over_dispersed() -> None:
    # Large denominators, proportions 0.10..0.12: binomial σ_p = 0.003, spread far larger.
    num = [1000, 1200, 1050, 1150, 1100, 1000, 1200, 1080, 1120, 1010, 1190, 1100]
    den = [10_000] * 12
    od = spc.overdispersion(num, den)
    assert od.overdispersed
    assert od.sigma_z > 3
    c = spc.auto_chart("proportion", numerators=num, denominators=den)
    assert c.chart == "p'"
    assert c.phases[0].spread == pytest.approx(od.sigma_z)


def test_auto_chart_scale_for_ppm() -> None:
    base = spc.u_chart(PCMANUFACT, [5] * 20)
    ppm = spc.auto_chart("rate", numerators=PCMANUFACT, denominators=[5] * 20, scale=1e6)
    np.testing.assert_allclose(ppm.values, base.values * 1e6)
    np.testing.assert_allclose(ppm.ucl, base.ucl * 1e6)
    assert ppm.signals == base.signals
    assert ppm.phases[0].center == pytest.approx(1.93e6)


def test_auto_chart_errors() -> None:
    with pytest.raises(spc.SpcError, match="did you mean 'proportion'"):
        spc.auto_chart("proportions", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(spc.SpcError, match="numerators and denominators"):
        spc.auto_chart("rate", numerators=[1, 2])
    with pytest.raises(spc.SpcError, match="needs values"):
        spc.auto_chart("continuous")
    with pytest.raises(spc.SpcError, match="scale"):
        spc.auto_chart("count", [1, 2], scale=100)


# --------------------------------------------------------------------------- to_frame


def test_to_frame_columns_and_rows() -> None:
    # p̄ = 24/120 = 0.2, σ = √(0.16/20) = 0.0894427, UCL 0.4683282: 12/20 = 0.6 is above.
    c = spc.p_chart([2, 0, 3, 2, 3, 2, 12], [20, 0, 20, 20, 20, 20, 20])
    df = c.to_frame()
    assert df.columns == [
        "index", "phase", "value", "center", "lcl", "ucl", "sigma", "baseline", "missing",
        "signal", "numerator", "denominator",
    ]  # fmt: skip
    assert df.height == 7
    assert df["value"][1] is None
    assert df["missing"].to_list() == [False, True] + [False] * 5
    assert df["ucl"][0] == pytest.approx(0.4683282, abs=5e-8)
    assert df["signal"].to_list() == [""] * 6 + ["beyond_limits"]
    assert df["denominator"].to_list() == [20.0, 0.0] + [20.0] * 5
    assert df.schema["index"] == pl.Int64


def test_to_frame_signal_order_and_subgroup_size() -> None:
    c = chart([11, 14, 14, 14], "mdc")  # beyond limits and two_of_three on the same points
    assert c.to_frame()["signal"][14] == "beyond_limits,two_of_three"
    xs = spc.xbar_r(PISTONRINGS).to_frame()
    assert "subgroup_size" in xs.columns
    assert xs["subgroup_size"].unique().to_list() == [5]
    assert "numerator" not in xs.columns


def test_chart_is_frozen() -> None:
    c = spc.c_chart(CIRCUIT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.chart = "u"  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        c.ucl[0] = 1.0
    with pytest.raises(AttributeError, match="range_chart"):
        _ = c.range_chart
    assert len(c) == 26


# --------------------------------------------------------------------------- edge cases


def test_all_zero_counts() -> None:
    for c in (
        spc.c_chart([0] * 12),
        spc.u_chart([0] * 12, [3] * 12),
        spc.p_chart([0] * 12, [20] * 12),
        spc.np_chart([0] * 12, 20),
        spc.laney_p_chart([0] * 12, [20] * 12),
    ):
        assert np.all(c.center == 0)
        assert np.all(c.ucl == 0)
        assert np.all(c.lcl == 0)
        assert not fired(c), c.chart
    assert spc.variation(spc.c_chart([0] * 12), "lower_is_better") == "common_cause"


def test_all_defective_proportions_are_zero_width() -> None:
    c = spc.laney_p_chart([20] * 6, [20] * 6)
    assert np.all(c.center == 1)
    assert np.all(c.ucl == 1)
    assert np.all(c.lcl == 1)
    assert not fired(c)


def test_zero_size_subgroups_are_missing() -> None:
    c = spc.p_chart([1, 0, 2], [10, 0, 10])
    assert c.missing == (1,)
    assert math.isnan(c.values[1])
    assert math.isnan(c.ucl[1])
    assert c.center[1] == pytest.approx(3 / 20)
    u = spc.u_chart([4, 2, 0], [2, 0, 1])
    assert u.missing == (1,)
    rows: list[list[float]] = [[1, 2, 3], [math.nan, math.nan, math.nan], [4], [2, 3, 4]]
    x = spc.xbar_r(rows)
    assert x.missing == (1, 2)
    assert math.isnan(x.values[1])
    assert math.isnan(x.range_chart.values[2])
    assert not math.isnan(x.ucl[1])  # limits of the phase's usual n continue through the gap


def test_missing_values_are_skipped_for_limits_and_moving_ranges() -> None:
    # Observed 10, 12, 11, 13: mean 11.5. Moving ranges only between adjacent observed
    # points: |12-10| = 2 and |13-11| = 2 (none across the gap) -> MR̄ = 2.
    c = spc.xmr([10, 12, math.nan, 11, 13])
    assert c.missing == (2,)
    assert c.center[0] == pytest.approx(11.5)
    assert c.phases[0].spread == pytest.approx(2.0)
    assert c.phases[0].baseline == (0, 1, 3, 4)
    assert c.signals[2] == frozenset()
    # a missing point is skipped by the rules (the run continues over the gap)
    s = chart([11, *ABOVE[:3], math.nan, *ABOVE[3:7], 11])
    assert set(fired(s)) == {13, 14, 15, 17, 18, 19, 20}


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


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: spc.xmr([]), "empty"),
        (lambda: spc.c_chart([]), "empty"),
        (lambda: spc.xbar_r([]), "empty"),
        (lambda: spc.xmr([math.nan, math.nan]), "no usable baseline point"),
        (lambda: spc.xmr([1.0, math.inf]), "infinite value at index 1"),
        (lambda: spc.c_chart([1, -2]), "negative value"),
        (lambda: spc.p_chart([5, 11], [10, 10]), "exceed the sample size at index 1"),
        (lambda: spc.p_chart([1, 2], [10]), "lengths differ"),
        (lambda: spc.u_chart([1, 2], [1, 2, 3]), "lengths differ"),
        (lambda: spc.np_chart([1, 2], 0), "positive sample size"),
        (lambda: spc.xmr([[1, 2], [3, 4]]), "1-D"),
        (lambda: spc.xbar_r([1.0, 2.0]), "2-D"),
        (lambda: spc.xbar_r([list(range(26))] * 2), "25"),
        (lambda: spc.xmr([1, 2, 3], baseline=0), "at least 1"),
        (lambda: spc.xmr([1, 2, 3], baseline=[0, 3]), "outside 0..2"),
        (lambda: spc.xmr([1, 2, 3], baseline=[True, False]), "indices"),
        (lambda: spc.xmr([1, 2, 3], rebase=[5]), "outside"),
        (lambda: spc.xmr([1, 2, 3, 4], rebase=[2], baseline=[0, 1]), "no usable baseline"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call: object, message: str) -> None:
    with pytest.raises(spc.SpcError, match=message) as info:
        call()  # type: ignore[operator]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, QmsKpiError)


# --------------------------------------------------------------------------- invariants

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


# ----------------------------------------------------------- short, gappy and rare series

# Montgomery, Introduction to SQC, Table 7.14 (6th ed., Example 7.6): hours between
# failures of a valve; also qicharts2's tbl_07.14 and its reference output
# tests/testthat/ex_7.6_1.rds (qic(failure, hours, chart = "t")): cl 430.040952,
# ucl 6937.933488, lcl 0, no point beyond the limits.
VALVE_HOURS = [286, 948, 536, 124, 816, 729, 4, 143, 431, 8,
               2837, 596, 81, 227, 603, 492, 1199, 1214, 2831, 96]  # fmt: skip


def test_t_chart_reproduces_montgomery_valve_example() -> None:
    t = spc.t_chart(VALVE_HOURS)
    assert t.chart == "t"
    assert t.values.tolist() == [float(v) for v in VALVE_HOURS]  # the hours themselves
    assert t.center[0] == pytest.approx(430.040952, abs=1e-6)
    assert t.ucl[0] == pytest.approx(6937.933488, abs=1e-6)
    assert t.lcl[0] == 0.0  # 5.3893 - 3(2.3609)/1.128 < 0 on the transformed scale
    # Montgomery's transformed-scale numbers: ȳ = 5.3893, MR̄ = 2.3609 (y = x^(1/3.6))
    assert t.phases[0].spread == pytest.approx(2.3609, abs=5e-5)
    assert t.mr_chart.center[1] == pytest.approx(2.3609, abs=5e-5)
    assert not any("beyond_limits" in s for s in t.signals)
    assert spc.variation(t, "higher_is_better") == "common_cause"


def test_t_chart_flags_a_short_time_and_rejects_zero() -> None:
    t = spc.t_chart([*VALVE_HOURS, 0.001])  # an event 0.001 h after the last one
    assert "beyond_limits" not in t.signals[-1]  # LCL is 0: short times show as trends, runs
    long = spc.t_chart(VALVE_HOURS, baseline=20)
    assert long.lcl[0] == 0.0
    with pytest.raises(spc.SpcError, match=r"must be > 0, got 0.0 at index 2"):
        spc.t_chart([5, 3, 0, 4])


def test_g_chart_limits_by_hand() -> None:
    # Operations between surgical-site infections: 10 22 27 12 17 43 13 34. By hand:
    # ḡ = 178/8 = 22.25; σ = √(22.25·23.25) = √517.3125 = 22.744505; UCL = 22.25 + 68.233514
    # = 90.483514; LCL = max(0, 22.25 - 68.233514) = 0; median = (17 + 22)/2 = 19.5.
    g = spc.g_chart([10, 22, 27, 12, 17, 43, 13, 34, 120], baseline=8)
    assert g.chart == "g"
    assert g.phases[0].spread == pytest.approx(22.25)
    assert g.center[0] == pytest.approx(19.5)
    assert g.ucl[0] == pytest.approx(90.483514, abs=1e-6)
    assert g.lcl[0] == 0.0
    assert math.isnan(g.sigma[0])  # zone rules do not apply on the skewed geometric scale
    assert fired(g) == {8: {"beyond_limits"}}  # 120 cases without an infection
    assert spc.variation(g, "higher_is_better") == "improvement_high"


def test_run_chart_rules_by_hand() -> None:
    # sorted 1 1 1 2 2 3 3 6 7 7 8 9 9: median 3 (the 7th of 13). Above it 7 8 6 9 7,
    # then 3 on the median, then 9: six points above with the median point inside.
    values = [1, 2, 1, 2, 1, 7, 8, 6, 9, 7, 3, 9, 3]
    r = spc.run_chart(values)
    assert r.chart == "run"
    assert r.status == "run_chart"
    assert r.center[0] == 3.0
    assert all(math.isnan(x) for x in (*r.ucl, *r.lcl, *r.sigma))
    assert fired(r) == {i: {"run_shift"} for i in range(5, 12)}
    assert spc.run_chart(values[:10]).signals == [frozenset()] * 10  # median 4: only 5 above
    # sorted 1 1 1 1 2 2 5 8 8 9 9 9 9: median 5. 9 8 (5) 9 9 8 9 is six points above
    # with one on the median inside: it neither counts nor breaks the run (Perla et al.).
    shift = spc.run_chart([1, 1, 2, 1, 9, 8, 5, 9, 9, 8, 9, 2, 1])  # median 5
    assert fired(shift) == {i: {"run_shift"} for i in range(4, 11)}
    # trend: 5 points rising, a repeated value is not counted and does not break it
    trend = spc.run_chart([5, 5, 1, 2, 2, 3, 4, 6, 5, 5, 5])
    assert fired(trend) == {i: {"run_trend"} for i in range(2, 8)}  # 1 2 (2) 3 4 6
    four = spc.run_chart([5, 5, 1, 2, 3, 4, 4, 3, 5, 5])  # only 4 distinct rising points
    assert not any("run_trend" in s for s in four.signals)
    assert spc.variation(shift, "higher_is_better") == "run_chart"
    assert spc.assurance(shift, 3.0, "higher_is_better") is None
    with pytest.raises(spc.SpcError, match="run charts"):
        spc.xmr([1, 2, 3], rules="run")


def test_too_few_points_give_a_run_chart() -> None:
    # 9 monthly values: fewer than the 12 NHSRplotthedots asks for (short-group warning)
    values = [4.0, 5.0, 4.5, 6.0, 5.5, 4.0, 5.0, 9.0, 5.0]
    c = spc.auto_chart("continuous", values=values)
    assert c.status == "run_chart"
    assert not c.has_limits
    assert c.reason == "9 points, fewer than the 12 needed for process limits"
    assert c.center[0] == 5.0
    assert spc.variation(c, "higher_is_better") == "run_chart"
    assert spc.assurance(c, 20.0, "higher_is_better") is None
    months = [f"2026-{m:02d}" for m in range(1, 10)]
    assert c.baseline_statement().describe(months) == (
        "No process limits: 9 points, fewer than the 12 needed for process limits; "
        "centre line: median of 9 points (2026-01 to 2026-09)."
    )
    # the minimum is configurable, and gaps do not count as points
    assert spc.auto_chart("continuous", values=values, min_points=9).chart == "xmr"
    gappy = [*values, math.nan, math.nan, 5.0, 4.0]
    assert spc.auto_chart("continuous", values=gappy).reason.startswith("11 points,")
    assert spc.auto_chart("continuous", values=gappy, min_points=None).has_limits


def test_rare_events_are_counted_without_a_signal() -> None:
    # The vehicle complaints: one complaint in 24 months. A c chart puts the
    # UCL at 1/24 + 3·√(1/24) = 0.654 and calls the complaint a special cause.
    counts = [0.0] * 8 + [1.0] + [0.0] * 15
    assert fired(spc.c_chart(counts))[8] == {"beyond_limits"}
    assert spc.rare_events(counts)
    c = spc.auto_chart("count", values=counts)
    assert c.status == "rare_events"
    assert c.signals == [frozenset()] * 24
    assert all(math.isnan(x) for x in (*c.center, *c.ucl, *c.lcl))
    assert c.reason.startswith("mean 0.042 a period over 24 periods, below 1: too rare")
    assert spc.variation(c, "lower_is_better") == "rare_events"
    assert spc.assurance(c, 0.0, "lower_is_better") is None
    # a rate: complaints per million units; the denominator travels with each point
    units = [2.0e5] * 24
    r = spc.auto_chart("rate", numerators=counts, denominators=units, scale=1e6)
    assert r.status == "rare_events"
    assert r.values[8] == pytest.approx(5.0)  # 1 / 200 000 × 1e6
    assert r.to_frame()["denominator"].to_list() == units
    # a proportion is rare when either outcome is: 1 failure in 24 months of 50 inspections
    passes = [50.0 - x for x in counts]
    p = spc.auto_chart("proportion", numerators=passes, denominators=[50.0] * 24)
    assert p.status == "rare_events"
    assert not spc.rare_events([1.0, 0.0, 2.0, 1.0])  # mean 1: not rare
    assert spc.auto_chart("count", values=counts, rare_below=None).chart == "c"


def test_p_chart_denominators_travel_with_each_point() -> None:
    sizes = [50.0] * 6 + [0.0] + [40.0] * 6
    defects = [5.0, 4.0, 6.0, 5.0, 3.0, 7.0, 0.0, 4.0, 5.0, 3.0, 6.0, 4.0, 5.0]
    c = spc.auto_chart("proportion", numerators=defects, denominators=sizes)
    assert c.has_limits
    df = c.to_frame()
    assert df["denominator"].to_list() == sizes
    assert df["numerator"].to_list() == defects
    assert df["missing"][6]  # n = 0: a gap with its denominator still shown
    short = spc.auto_chart("proportion", numerators=defects[:8], denominators=sizes[:8])
    assert short.status == "run_chart"
    assert short.to_frame()["denominator"].to_list() == sizes[:8]


def test_baseline_statement_says_where_limits_come_from() -> None:
    values = [float(10 + (i % 3)) for i in range(24)]
    values[5] = math.nan
    months = [f"{2025 + (i + 10) // 12}-{(i + 10) % 12 + 1:02d}" for i in range(24)]
    every = spc.xmr(values).baseline_statement()
    assert every.describe(months) == (
        "Limits from all 23 points (2025-11 to 2027-10), recalculated each run. 1 gap left out."
    )
    frozen = spc.xmr(values, baseline=12).baseline_statement()
    assert frozen.phases[0].method == "first"
    assert frozen.phases[0].points == 11  # 12 points, one a gap
    assert frozen.describe(months).startswith("Limits frozen after the first 11 points")
    rebased = spc.xmr(values, rebase=[12], baseline=[0, 1, 2, 3, 4, 6, 12, 13, 14, 15])
    d = rebased.baseline_statement().to_dict(months)
    assert [ph["method"] for ph in d["phases"]] == ["selected", "first"]
    assert d["rebase"] == [months[12]]
    assert d["gaps"] == [months[5]]
    assert "rebased at " + months[12] in d["text"]
    assert d["phases"][0]["baseline"] == [months[i] for i in (0, 1, 2, 3, 4, 6)]


def test_gaps_are_left_out_of_limits_and_runs_of_a_run_chart() -> None:
    r = spc.run_chart([1, 9, math.nan, 9, 9, math.nan, 9, 9, 9, 1, 1])
    assert r.missing == (2, 5)
    assert r.center[0] == 9.0  # median of the 9 observed values: 1 1 1 9 9 9 9 9 9
    assert r.signals[2] == frozenset()


# --------------------------------------------------------------------------- notebook display


ALTERNATING_THEN_SPIKE = [9.0, 11.0] * 10 + [30.0]


def test_control_chart_repr_is_short_and_says_what_matters() -> None:
    # 9, 11 ten times, then 30: centre = (200 + 30)/21 = 10.952; moving ranges 19 x 2 and
    # 19 -> MR-bar = 57/20 = 2.85; limits 10.952 -/+ 2.66 * 2.85 = 3.371 and 18.53. Only the
    # last point signals (beyond the upper limit); the alternation breaks every run.
    c = spc.xmr(ALTERNATING_THEN_SPIKE)
    text = repr(c)
    assert len(text) < 200
    assert text == (
        "<ControlChart xmr: 21 points, centre 10.95, limits 3.371 to 18.53, "
        "1 signal point (beyond_limits 1)>"
    )
    assert "array" not in text
    assert "[" not in text


def test_control_chart_repr_names_varying_limits_and_missing_points() -> None:
    # p chart, p-bar = 30/600 = 0.05; n = 100: UCL = 0.05 + 3*sqrt(0.05*0.95/100) = 0.1154;
    # n = 200: 0.05 + 3*sqrt(0.0475/200) = 0.05 + 0.046233 = 0.09623, LCL 0.003767;
    # n = 100: LCL 0.05 - 0.0654 < 0, floored at 0.
    c = spc.p_chart([5, 10, 5, 10], [100, 200, 100, 200])
    assert "limits 0–0.003767 to 0.09623–0.1154" in repr(c)
    gap = spc.xmr([1.0, 2.0, float("nan"), 2.0, 1.0])
    assert repr(gap).endswith("1 missing>")


def test_control_chart_html_draws_each_point_offline() -> None:
    c = spc.xmr(ALTERNATING_THEN_SPIKE)
    page = c._repr_html_()
    assert page.count("<circle") == 21  # one marker a point
    assert page.count("fill='#E69F00'") == 1  # the one signal, in the concern colour
    assert "<script" not in page.lower()
    assert "src=" not in page
    assert "http://www.w3.org/2000/svg" in page  # the namespace, the only URL
    assert page.count("http") == 1
    assert len(page) < 10_000  # no plotly.js (4 MB) in every output
