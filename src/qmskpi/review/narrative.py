"""The executive summary: exceptions, headline tiles and the narrative, in words.

Everything here is written from the KPI values, the trends (their current
signals, :mod:`qmskpi.review.signals`) and the coverage matrix; deterministic,
most serious first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qmskpi import kpis
from qmskpi.config import WHOLE_SCOPE
from qmskpi.datasets import DATASETS
from qmskpi.review.context import Context
from qmskpi.review.formatting import format_value, join_words, lower_first
from qmskpi.review.model import CoverageRow, ExceptionItem, KpiTile, KpiValue, Trend
from qmskpi.review.signals import current_signals, is_current, measure_phrase


def _sort_key(ctx: Context) -> Callable[[ExceptionItem], tuple[int, int, int, int, str]]:
    kpi_order = {k: i for i, k in enumerate(kpis.REGISTRY)}
    scope_order = {s: i for i, s in enumerate(ctx.scopes)}

    def key(e: ExceptionItem) -> tuple[int, int, int, int, str]:
        return (
            e.rank,
            ctx.section_order.get(e.section, 99),
            kpi_order.get(e.kpi or "", -1),
            scope_order.get(e.scope or "", -1),
            e.text,
        )

    return key


_NOUNS = {
    "capa_open_overdue": (
        "CAPA is",
        "CAPAs are",
        "open past its due date",
        "open past their due date",
    ),
    "audit_nc_open_overdue": (
        "audit nonconformity (or agreed improvement) is",
        "audit nonconformities (or agreed improvements) are",
        "open past its due date",
        "open past their due date",
    ),
    "review_actions_overdue": (
        "management-review action is",
        "management-review actions are",
        "open past its due date",
        "open past their due date",
    ),
    "supplier_evaluations_overdue_asof": (
        "approved or conditional supplier is",
        "approved or conditional suppliers are",
        "overdue for re-evaluation at period end",
        "overdue for re-evaluation at period end",
    ),
    "supplier_evaluations_overdue_active": (
        "approved or conditional supplier is",
        "approved or conditional suppliers are",
        "overdue for re-evaluation or never evaluated (current supplier list)",
        "overdue for re-evaluation or never evaluated (current supplier list)",
    ),
}
_PREFERRED = {"supplier_evaluations_overdue_active": "supplier_evaluations_overdue_asof"}
"""A measure not reported when its preferred reading has a value (approval history given)."""


def empty_datasets(ctx: Context) -> tuple[str, ...]:
    """Datasets the config maps whose validated data has no row (in canonical order)."""
    return tuple(
        name for name in DATASETS if name in ctx.config.sources and _rows_used(ctx, name) == 0
    )


def _rows_used(ctx: Context, name: str) -> int:
    """Rows of ``name`` in the build (every site, as its frame): its frame's, or the records
    its pushed-down aggregates count."""
    if name in ctx.data:
        return ctx.data[name].height
    agg = ctx.pushed_records(name)
    return int(agg.frame["n"].sum()) if agg is not None else 0


def exception_items(
    ctx: Context,
    values: Sequence[KpiValue],
    trends: Sequence[Trend],
    coverage: Sequence[CoverageRow],
) -> tuple[ExceptionItem, ...]:
    """Everything that needs attention, most serious first.

    Rank 0: a mapped dataset with no usable rows, data that failed validation; 1: a
    concerning signal or a target the
    process cannot meet, at the scope; 2: the same at a site only, and overdue
    items; 3: gaps in the evidence (missing or stale inputs).
    """
    out: list[ExceptionItem] = []
    empty = empty_datasets(ctx)
    for ds in [*empty, *sorted(ctx.unsound - set(empty))]:
        title = DATASETS[ds].title if ds in DATASETS else ds
        named = title if title.lower().replace(" ", "_") == ds else f"{title} ({ds})"
        text = (
            f"{named}: NO USABLE ROWS. The source is mapped, but no row of it could be used "
            "(the export is empty, or every row was quarantined or excluded: see the "
            "data-quality ledger). Every measure that uses it is missing from this pack."
            if ds in empty
            else f"{named} failed validation: measures that use it are not sound."
        )
        out.append(ExceptionItem("unsound", 0, _dataset_section(ctx, ds), None, None, text))
    for sig in current_signals(ctx, trends, "concern"):
        rank = 1 if sig.trend.scope == ctx.scope else 2
        out.append(ExceptionItem("concern", rank, sig.section, sig.kpi, sig.trend.scope, sig.text))
    for t in trends:
        if t.assurance == "consistent_fail" and t.target is not None:
            out.append(
                ExceptionItem(
                    "assurance_fail",
                    1 if t.scope == ctx.scope else 2,
                    t.section,
                    t.kpi,
                    t.scope,
                    f"{measure_phrase(t)} will not meet its target of {format_value(t.target, t.unit)} "
                    "as the process runs now.",
                )
            )
    have = {v.kpi for v in values if v.scope == ctx.scope and v.value is not None}
    for v in values:
        if _PREFERRED.get(v.kpi) in have:
            continue
        if v.kpi in _NOUNS and v.scope == ctx.scope and v.value:
            out.append(
                ExceptionItem(
                    "overdue", 2, v.section, v.kpi, v.scope, _overdue_text(v.kpi, v.value)
                )
            )
    for c in coverage:
        if c.status in ("missing", "stale"):
            out.append(
                ExceptionItem(
                    "coverage",
                    3,
                    c.section,
                    None,
                    None,
                    f"{c.ref} {c.title}: {c.status} ({c.detail}).",
                )
            )
    out.sort(key=_sort_key(ctx))
    return tuple(out)


_SHORT = {
    "capa_open_overdue": ("CAPA", "CAPAs"),
    "audit_nc_open_overdue": ("audit nonconformity", "audit nonconformities"),
    "review_actions_overdue": ("review action", "review actions"),
    "supplier_evaluations_overdue_asof": ("supplier re-evaluation", "supplier re-evaluations"),
    "supplier_evaluations_overdue_active": ("supplier re-evaluation", "supplier re-evaluations"),
}


def _short_overdue(ctx: Context, kpi_id: str) -> str:
    n = 0
    for v in ctx.values:
        if v.kpi == kpi_id and v.scope == ctx.scope and v.value:
            n = int(v.value)
    one, many = _SHORT[kpi_id]
    return f"{n} {one if n == 1 else many}"


def _overdue_text(kpi_id: str, value: float) -> str:
    one, many, verb1, verbn = _NOUNS[kpi_id]
    n = int(value)
    return f"{n} {one} {verb1}." if n == 1 else f"{n} {many} {verbn}."


def _dataset_section(ctx: Context, dataset: str) -> str:
    for e in ctx.cmap.entries:
        if e.role == "input" and e.coverage_rule == "all" and dataset in e.datasets:
            return e.id
    for e in ctx.cmap.entries:
        if dataset in e.datasets:
            return e.id
    return "appendix"


def headline_tiles(
    ctx: Context,
    values: Sequence[KpiValue],
    trends: Sequence[Trend],
    exceptions: Sequence[ExceptionItem],
) -> tuple[KpiTile, ...]:
    by_kpi = {v.kpi: v for v in values if v.scope == ctx.scope}
    by_trend = {t.kpi: t for t in trends if t.scope == ctx.scope}
    flagged = {e.kpi for e in exceptions if e.kpi is not None and e.scope == ctx.scope}
    tiles: list[KpiTile] = []
    for kpi_id in ctx.cmap.headline_kpis:
        v = by_kpi.get(kpi_id)
        if v is None:
            continue
        if ctx.scope != WHOLE_SCOPE and not kpis.REGISTRY[kpi_id].per_site:
            continue  # e.g. review actions: the organisation's, not a site's (shown in a)
        t = by_trend.get(kpi_id)
        exception = (
            kpi_id in flagged
            or not v.sound
            or (t is not None and (is_current(t, "concern") or t.assurance == "consistent_fail"))
        )
        tiles.append(
            KpiTile(
                kpi=kpi_id,
                scope=ctx.scope,
                title=v.title,
                section=v.section,
                value=v.value,
                display=v.display,
                unit=v.unit,
                target=v.target,
                target_display=v.target_display,
                variation=t.variation if t is not None else None,
                assurance=t.assurance if t is not None else None,
                sound=v.sound,
                exception=exception,
                note=v.note,
            )
        )
    # exceptions first; otherwise the clause map's order (stable sort)
    tiles.sort(key=lambda tile: not tile.exception)
    return tuple(tiles)


MAX_ATTENTION = 6
"""Concern and target sentences in the narrative before the rest are summed up."""


MAX_IMPROVEMENTS = 3


def narrative_lines(
    ctx: Context, trends: Sequence[Trend], exceptions: Sequence[ExceptionItem]
) -> tuple[str, ...]:
    """A short, deterministic text: what needs attention, then what improved.

    One sentence per item, in this order: unsound data; concerning signals and
    targets the process cannot meet (scope first, then sites); overdue items in
    one sentence; improvements; measures drawn without limits (too few months, too
    rare) in one sentence each; related measures whose icons disagree, with why;
    gaps in the evidence in one sentence.
    """
    lines: list[str] = [e.text for e in exceptions if e.kind == "unsound"]
    attention = [e.text for e in exceptions if e.kind in ("concern", "assurance_fail")]
    if len(attention) > MAX_ATTENTION:
        more = len(attention) - MAX_ATTENTION + 1
        attention = [
            *attention[: MAX_ATTENTION - 1],
            f"{more} further concerns are listed in the exceptions.",
        ]
    lines += attention
    if not attention:
        lines.append("No measure shows a concerning special cause or a target it cannot meet.")
    overdue = [e for e in exceptions if e.kind == "overdue" and e.kpi is not None]
    if overdue:
        parts = [_short_overdue(ctx, e.kpi) for e in overdue if e.kpi is not None]
        lines.append(f"Overdue at period end: {join_words(parts)}.")
    improvements = [
        f"Improvement: {lower_first(sig.text)}"
        for sig in current_signals(ctx, trends, "improvement")
    ]
    if len(improvements) > MAX_IMPROVEMENTS:
        more = len(improvements) - MAX_IMPROVEMENTS + 1
        improvements = [
            *improvements[: MAX_IMPROVEMENTS - 1],
            f"{more} further measures show improvement (see c) 5)).",
        ]
    lines += improvements
    lines += no_limits_sentences(ctx, trends)
    lines += related_disagreements(ctx, trends)
    gaps = [e for e in exceptions if e.kind == "coverage"]
    if gaps:
        by_status: dict[str, list[str]] = {}
        for e in gaps:
            status = "stale" if ": stale (" in e.text else "missing"
            by_status.setdefault(status, []).append(_ref_of(ctx, e.section))
        said = [f"{st} for {join_words(refs)}" for st, refs in sorted(by_status.items())]
        lines.append(f"Evidence is {'; '.join(said)} (see the coverage matrix).")
    return tuple(lines)


def no_limits_sentences(ctx: Context, trends: Sequence[Trend]) -> list[str]:
    """One sentence for the scope's measures drawn without process limits, one for rare ones."""
    own = [t for t in trends if t.scope == ctx.scope]
    out = []
    short = [t for t in own if t.status == "run_chart"]
    if short:
        parts = [f"{t.title} ({_months_of_data(t)})" for t in short]
        out.append(
            f"Too few months of data for process limits (run chart only): {join_words(parts)}."
        )
    rare = [t for t in own if t.status == "rare_events"]
    if rare:
        parts = []
        for t in rare:
            last = max((i for i, v in enumerate(t.values) if v is not None), default=None)
            value = "no data" if last is None else format_value(t.values[last], t.unit)
            parts.append(f"{lower_first(t.title)} ({value} in {t.months[last or 0]})")
        out.append(
            f"Too few events a month for a chart, stated without a signal: {join_words(parts)}."
        )
    return out


def _months_of_data(t: Trend) -> str:
    n = sum(1 for v in t.values if v is not None)
    return f"{n} month{'s' if n != 1 else ''} of data"


_RELATED = (
    (
        "fpy_share",
        "defect_ppm",
        "first-pass yield counts inspections that passed, defects per million counts "
        "defective units in every unit inspected, so a few large or badly failing lots "
        "move one and not the other",
    ),
    (
        "complaints_received",
        "complaint_rate_ppm",
        "the count moves with the volume shipped, the rate is per million units shipped",
    ),
)
"""Pairs of measures of the same thing with a different denominator or unit of count."""


def _icon_class(variation: str | None) -> str | None:
    if variation is None or variation in ("run_chart", "rare_events"):
        return None
    return "common cause" if variation == "common_cause" else variation.split("_")[0]


def related_disagreements(ctx: Context, trends: Sequence[Trend]) -> list[str]:
    """One sentence when related measures carry different variation icons, saying why."""
    own = {t.kpi: t for t in trends if t.scope == ctx.scope}
    out = []
    for a_id, b_id, why in _RELATED:
        a, b = own.get(a_id), own.get(b_id)
        if a is None or b is None:
            continue
        ca, cb = _icon_class(a.variation), _icon_class(b.variation)
        if ca is None or cb is None or ca == cb:
            continue
        out.append(
            f"{a.title} shows {_a_class(ca)} while {lower_first(b.title)} shows {_a_class(cb)}: "
            f"they can differ because {why}."
        )
    return out


def _a_class(c: str) -> str:
    return {"improvement": "an improvement", "concern": "a concern"}.get(c, c)


def _ref_of(ctx: Context, section_id: str) -> str:
    for e in ctx.cmap.entries:
        if e.id == section_id:
            return e.ref or e.id
    return section_id
