"""9.3.2 f) Opportunities for improvement, suggested from the signals and tables of the pack.

Each :class:`Opportunity` names its basis (the signal or table row behind it);
the review decides which to take up.
"""

from __future__ import annotations

from collections.abc import Sequence

from qmskpi import kpis
from qmskpi.config import WHOLE_SCOPE
from qmskpi.review.context import Context
from qmskpi.review.formatting import as_float, format_value, lower_first, scope_phrase
from qmskpi.review.model import Opportunity, Table, Trend
from qmskpi.review.signals import current_signals


def suggest_opportunities(
    ctx: Context, trends: Sequence[Trend], tables: Sequence[Table]
) -> tuple[Opportunity, ...]:
    """Opportunities in section order: special causes, unreachable targets, then tables."""
    by_id = {t.id: t for t in tables}
    out = [
        *_special_causes(ctx, trends),
        *_unreachable_targets(ctx, trends),
        *_vital_few(ctx, by_id.get("defect_pareto")),
        *_missed_objectives(ctx, by_id.get("objective_attainment")),
        *_c_rated_suppliers(ctx, by_id.get("supplier_scorecard")),
    ]
    order = {k: i for i, k in enumerate(kpis.REGISTRY)}
    scope_order = {s: i for i, s in enumerate(ctx.scopes)}
    out.sort(
        key=lambda o: (
            ctx.section_order.get(o.section, 99),
            order.get(o.kpi or "", 999),
            scope_order.get(o.scope or "", 0),
        )
    )
    return tuple(out)


def _special_causes(ctx: Context, trends: Sequence[Trend]) -> list[Opportunity]:
    out: list[Opportunity] = []
    for sig in current_signals(ctx, trends, "concern"):
        t = sig.trend
        out.append(
            Opportunity(
                t.section,
                t.kpi,
                t.scope,
                f"Find and remove the special cause behind {lower_first(t.title)}"
                f"{scope_phrase(t.scope)}.",
                sig.text,
            )
        )
    return out


def _unreachable_targets(ctx: Context, trends: Sequence[Trend]) -> list[Opportunity]:
    return [
        Opportunity(
            t.section,
            t.kpi,
            t.scope,
            f"Redesign the process behind {lower_first(t.title)}{scope_phrase(t.scope)}: "
            f"as it runs it cannot meet the target of {format_value(t.target, t.unit)}.",
            "Target outside the process limits (assurance: consistent fail).",
        )
        for t in trends
        if t.assurance == "consistent_fail" and t.target is not None and t.scope == ctx.scope
    ]


def _vital_few(ctx: Context, pareto: Table | None) -> list[Opportunity]:
    if pareto is None or not pareto.rows:
        return []
    vital = [r for r in pareto.records() if r.get("vital_few")]
    if not vital:
        return []
    codes = ", ".join(str(r["defect_code"]) for r in vital)
    share = as_float(vital[-1].get("cumulative_share")) or 0.0
    return [
        Opportunity(
            ctx.cmap.section_of_table("defect_pareto"),
            None,
            ctx.scope,
            f"Reduce the vital few defect codes ({codes}).",
            f"They account for {share * 100:.0f} % of the inspections recording a defect "
            "code in the period.",
        )
    ]


def _missed_objectives(ctx: Context, objectives: Table | None) -> list[Opportunity]:
    if objectives is None:
        return []
    # objectives are the organisation's: in a site pack their actuals are not the site's
    whole = "" if ctx.scope == WHOLE_SCOPE else " for the whole organisation"
    return [
        Opportunity(
            ctx.cmap.section_of_table("objective_attainment"),
            None,
            WHOLE_SCOPE,
            f"Plan how to reach the objective '{r.get('name')}'.",
            f"Actual {r.get('actual_display')} against target {r.get('target_display')}{whole}.",
        )
        for r in objectives.records()
        if r.get("met") is False
    ]


def _c_rated_suppliers(ctx: Context, suppliers: Table | None) -> list[Opportunity]:
    if suppliers is None:
        return []
    return [
        Opportunity(
            ctx.cmap.section_of_table("supplier_scorecard"),
            None,
            ctx.scope,
            f"Develop or re-source supplier {r.get('name')} (rating C).",
            f"On-time {format_value(as_float(r.get('otd_share')), 'share')}, "
            f"{format_value(as_float(r.get('ppm')), 'ppm')}.",
        )
        for r in suppliers.records()
        if r.get("rating") == "C"
    ]
