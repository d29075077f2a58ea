"""qmskpi.spc.choice: auto_chart picks the chart; run and rare-event charts instead of limits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qmskpi import spc
from spc.helpers import CIRCUIT, ORANGEJUICE2, PCMANUFACT, VISCOSITY, fired


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
