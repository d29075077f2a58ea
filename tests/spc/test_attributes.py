"""qmskpi.spc.attributes: p, np, Laney p′, c and u charts against qcc, Montgomery and hand sums."""

from __future__ import annotations

import numpy as np
import pytest

from qmskpi import spc
from spc.helpers import (
    CIRCUIT,
    DYEDCLOTH_UNITS,
    DYEDCLOTH_X,
    ORANGEJUICE,
    ORANGEJUICE2,
    PCMANUFACT,
    fired,
)


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
