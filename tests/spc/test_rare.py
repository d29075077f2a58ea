"""qmskpi.spc.rare: the t chart (Montgomery's valve example) and the g chart by hand."""

from __future__ import annotations

import math

import pytest

from qmskpi import spc
from spc.helpers import fired

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
