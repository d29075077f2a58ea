"""qmskpi.spc.rules: the MDC, Western Electric and Nelson rules, point by point, and their lengths."""

from __future__ import annotations

import pytest

from qmskpi import spc
from spc.helpers import ABOVE, RISING, chart, fired


def test_rules_do_not_cross_a_rebase() -> None:
    # 4 points above the centre at the end of phase 0 and 4 at the start of phase 1
    # would be 8 in a row (WE4) without the rebase.
    values = [1, 0, 1, 0, 1, 2, 2, 2, 2, 12, 12, 12, 12, 11, 12, 11, 12]
    flat = spc.xmr(values, baseline=5, rules="western_electric")
    assert any("we4" in s for s in flat.signals)
    phased = spc.xmr(values, rebase=[9], baseline=5, rules="western_electric")
    assert not any("we4" in s for s in phased.signals)


@pytest.mark.parametrize("rules", ["mdc", "western_electric", "nelson"])
def test_baseline_of_rule_tests_is_quiet(rules: str) -> None:
    c = chart([11.0], rules)
    assert c.center[0] == 11.0
    assert c.phases[0].spread == 1.0
    assert c.ucl[0] == pytest.approx(13.66)
    assert c.sigma[0] == pytest.approx(2.66 / 3)
    assert not fired(c)


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
