"""Helpers shared by the qmskpi.charts tests: a hand-made trend and Pareto table, plotly.js found in a page."""

from __future__ import annotations

import re

from qmskpi import review

PLOTLYJS = re.compile(r"<script[^>]*>\s*/\*\*\s*\*\s*plotly\.js v[\s\S]*?</script>")


def _trend() -> review.Trend:
    months = tuple(f"2025-{m:02d}" for m in range(1, 13))
    values: tuple[float | None, ...] = (5, 6, 5, 7, 6, 5, 6, 5, 6, 7, 6, 12)
    return review.Trend(
        id="x",
        kpi="defect_ppm",
        scope="South <b>",
        title="Defect <i>ppm</i>",
        section="c3",
        unit="ppm",
        direction="lower_is_better",
        kind="rate",
        chart="u",
        months=months,
        values=values,
        center=(6.0,) * 12,
        ucl=(9.0,) * 12,
        lcl=(3.0,) * 12,
        signals=((),) * 11 + (("beyond_limits",),),
        classes=("none",) * 11 + ("concern",),
        variation="concern_high",
        assurance="inconsistent",
        target=7.0,
        rebase=(6,),
        sound=True,
        explanation=("2025-12: 12 ppm.",),
    )


def _pareto() -> review.Table:
    return review.Table(
        id="defect_pareto",
        title="Defects",
        columns=(
            review.Column("defect_code", "Defect code"),
            review.Column("count", "Count", "int"),
            review.Column("cumulative_share", "Cumulative", "share"),
            review.Column("vital_few", "Vital few", "bool"),
        ),
        rows=(("SCRATCH", 8, 0.5, True), ("<b>DENT</b>", 6, 0.875, True), ("BURR", 2, 1.0, False)),
    )
