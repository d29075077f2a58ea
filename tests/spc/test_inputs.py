"""qmskpi.spc.inputs: gaps, zero sizes and bad input (one clear SpcError each)."""

from __future__ import annotations

import math

import pytest

from qmskpi import spc
from qmskpi.errors import QmsKpiError
from spc.helpers import ABOVE, chart, fired


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
