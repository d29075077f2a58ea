"""qmskpi.spc.runchart: the run-chart rules by hand (Perla, Provost & Murray 2011), gaps."""

from __future__ import annotations

import math

import pytest

from qmskpi import spc
from spc.helpers import fired


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


def test_gaps_are_left_out_of_limits_and_runs_of_a_run_chart() -> None:
    r = spc.run_chart([1, 9, math.nan, 9, 9, math.nan, 9, 9, 9, 1, 1])
    assert r.missing == (2, 5)
    assert r.center[0] == 9.0  # median of the 9 observed values: 1 1 1 9 9 9 9 9 9
    assert r.signals[2] == frozenset()
