"""qmskpi.spc.icons: the NHS Making Data Count variation and assurance icons."""

from __future__ import annotations

import math

import pytest

from qmskpi import spc
from spc.helpers import chart, fired


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
