"""Pieces of the pack's sections: KPI tiles and tables, exception counts, coverage, restatement.

A section's KPI table shows a column per site up to :data:`SITE_VALUE_COLUMNS`
sites, beyond that the worst and the best site. No plotly here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from qmskpi.charts.base import _html, _num, div_id
from qmskpi.charts.icons import (
    _ASSURANCE_TEXT,
    _VARIATION_TEXT,
    _status_badge,
    assurance_icon,
    variation_icon,
)
from qmskpi.charts.tables import _g
from qmskpi.review import (
    CoverageRow,
    KpiTile,
    KpiValue,
    ReviewModel,
    Section,
    Trend,
)
from qmskpi.templating import trusted


def _rows_change(old: Any, new: Any) -> str:
    def rows(x: Any) -> str:
        return f"{int(x):,}" if _num(x) is not None else "none"

    return f"rows {rows(old)} → {rows(new)}"


def _restated_value(value: Any) -> str:
    """A value of ``kpis.csv`` (text there) shown as a number where it is one."""
    if value is None or value == "":
        return "—"
    try:
        return _g(float(value))
    except (TypeError, ValueError):
        return str(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _sound_change(old: Any, new: Any) -> str:
    if str(old) == str(new):
        return _text(old)
    return f"{_text(old)} → {_text(new)}"


def _tile(t: KpiTile) -> str:
    classes = ["qk-tile"]
    if t.exception:
        classes.append("qk-exception")
    if not t.sound:
        classes.append("qk-unsound")
    labels = []
    if t.variation:
        labels.append(_VARIATION_TEXT.get(t.variation, t.variation))
    if t.assurance:
        labels.append(_ASSURANCE_TEXT.get(t.assurance, t.assurance))
    unmeasured = "not measured:" in (t.note or "")
    # A null value says why; a value says what it is based on or why it is not sound.
    return _html(
        "tile",
        classes=" ".join(classes),
        anchor=div_id("tile", t.kpi, t.scope),
        title=t.title,
        display=t.display,
        icons=trusted(variation_icon(t.variation) + assurance_icon(t.assurance)),
        target=f"Target {t.target_display}" if t.target_display else "No target",
        labels=" · ".join(labels),
        flag=("Not measured" if unmeasured else "Data failed validation") if not t.sound else "",
        note=t.note,
    )


def tiles_html(tiles: Sequence[KpiTile]) -> str:
    return _html("tiles", items=[trusted(_tile(t)) for t in tiles])


def _kpi_table(model: ReviewModel, section: Section) -> str:
    """The section's KPIs: value per scope, target, variation and assurance icons."""
    trends = {(t.kpi, t.scope): t for t in model.trends}
    rows = [v for v in model.kpis if v.kpi in section.kpis]
    if not rows:
        return ""
    # a site column only when some measure of the section has a value there
    scopes = [
        s
        for s in dict.fromkeys(v.scope for v in rows)
        if s == model.meta.scope or any(v.scope == s and v.value is not None for v in rows)
    ]
    multi = len(scopes) > 1
    # Many sites: the worst and the best site instead of a column each (fits A4 with 50).
    spread = len(scopes) - 1 > SITE_VALUE_COLUMNS
    shown = [scopes[0]] if spread else scopes
    by: dict[str, dict[str, KpiValue]] = {}
    for v in rows:
        by.setdefault(v.kpi, {})[v.scope] = v
    body = []
    for kpi_id, per in by.items():
        main = per[model.meta.scope] if model.meta.scope in per else next(iter(per.values()))
        t = _trend_for(model, kpi_id, main.scope, trends)
        cells: list[tuple[str, str]] = []
        if spread:
            cells.extend(_worst_best(main, [per[s] for s in scopes[1:] if s in per]))
        for s in shown:
            cell = per.get(s)
            if cell is None or (cell.value is None and cell.note.startswith("not split by site")):
                cells.append(("qk-num", ""))
                continue
            ts = trends.get((kpi_id, s))
            cls = "qk-num"
            if ts is not None and ts.classes and ts.classes[-1] in ("concern", "improvement"):
                cls += f" qk-sig-{ts.classes[-1]}"
            if not cell.sound:
                cls += " qk-unsound-cell"
            cells.append((cls, cell.display))
        if spread:  # the main scope's cell first, then worst and best
            cells = [*cells[2:], *cells[:2]]
        body.append(
            {
                "title": main.title,
                "sound": main.sound,
                "cells": cells,
                "target": main.target_display,
                "trend": t is not None,
                "var_icon": trusted(variation_icon(t.variation, size=20)) if t else None,
                "var_text": _VARIATION_TEXT.get(t.variation or "", "") if t else "",
                "ass_icon": (
                    trusted(assurance_icon(t.assurance, size=20)) if t and t.assurance else None
                ),
                "ass_text": _ASSURANCE_TEXT.get(t.assurance or "", "") if t else "",
            }
        )
    return _html(
        "kpi_table",
        anchor=div_id("kpis", section.id),
        heads=["All sites" if s == "all" else s for s in shown],
        spread=spread,
        rows=body,
        note={"scope": model.meta.scope_label, "sites": len(scopes) - 1} if multi else None,
    )


SITE_VALUE_COLUMNS: Final = 4
"""A section's KPI table has a column per site up to this many sites; beyond, worst and best."""


def _worst_best(main: KpiValue, sites: Sequence[KpiValue]) -> list[tuple[str, str]]:
    """Two cells (class, text): the site with the worst and the best value (by direction)."""
    valued = [v for v in sites if v.value is not None]
    if not valued:
        return [("qk-num", ""), ("qk-num", "")]
    ranked = sorted(valued, key=lambda v: (float(v.value or 0.0), v.scope))
    low, high = ranked[0], ranked[-1]
    worst, best = (low, high) if main.direction != "lower_is_better" else (high, low)
    return [("qk-num", f"{v.scope}: {v.display}") for v in (worst, best)]


def _trend_for(
    model: ReviewModel, kpi_id: str, scope: str, trends: dict[tuple[str, str], Trend]
) -> Trend | None:
    return trends.get((kpi_id, scope))


def _exception_count(serious: int, gaps: int) -> str:
    """The same count on the cover and over the exceptions list: "3 exceptions need
    attention; 10 gaps in the evidence"."""
    if serious:
        head = f"{serious} exception{'s' if serious != 1 else ''} need"
        head += f"{'s' if serious == 1 else ''} attention"
    else:
        head = "No exception needs attention"
    if gaps:
        head += f"; {gaps} gap{'s' if gaps != 1 else ''} in the evidence"
    return head


_KIND_TEXT: Final = {
    "unsound": "Data",
    "concern": "Concern",
    "assurance_fail": "Target",
    "overdue": "Overdue",
    "coverage": "Evidence",
}


def _coverage_row(c: CoverageRow) -> dict[str, Any]:
    """One row of the coverage matrix: the input, its status and each piece of evidence."""
    evidence = [(trusted(_status_badge(d.status)), d.detail) for d in c.evidence]
    return {
        "status": c.status,
        "ref": c.ref,
        "title": c.title,
        "badge": trusted(_status_badge(c.status)),
        "evidence": evidence or [(None, c.detail)],
    }


def _section(
    parts: Sequence[str], *, anchor: str | None = None, classes: str = "qk-section"
) -> str:
    """``<section>`` around pieces already rendered."""
    return _html("section", anchor=anchor, parts=[trusted(p) for p in parts], classes=classes)
