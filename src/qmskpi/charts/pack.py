"""The pack of one review model, section by section, as displayable fragments.

:class:`Pack` puts the other parts together in clause-map order, in one
:class:`~qmskpi.charts.document.Document` (plotly.js inlined once); :func:`show`
gives one section, successive calls with one model sharing that document.
No plotly import here: figures are built by the parts that own plotly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from qmskpi.charts.base import Fragment, _html, _provisional_label, div_id
from qmskpi.charts.document import Document, figure_html
from qmskpi.charts.figures import objectives_figure, pareto_figure, scorecard_figure
from qmskpi.charts.icons import _status_badge, assurance_icon, variation_icon
from qmskpi.charts.pieces import (
    _KIND_TEXT,
    _coverage_row,
    _exception_count,
    _kpi_table,
    _restated_value,
    _rows_change,
    _section,
    _sound_change,
    _text,
    tiles_html,
)
from qmskpi.charts.spc_chart import spc_figure, spc_spec, trend_data_table
from qmskpi.charts.tables import LIST_MAX, _more_list, table_html
from qmskpi.markdown_html import safe_markdown
from qmskpi.review import (
    PACK_SECTIONS,
    AnalystInput,
    ReviewModel,
    Section,
    Trend,
)
from qmskpi.templating import trusted


class Pack:
    """The pack of one review model, section by section, as displayable fragments.

    One :class:`Document` per pack: plotly.js is inlined by the first chart the
    pack emits, and never again; element ids are pinned and unique.
    """

    def __init__(self, model: ReviewModel, *, document: Document | None = None) -> None:
        self.model = model
        self.doc = document if document is not None else Document()

    # ------------------------------------------------------------ notebook API

    def _repr_html_(self) -> str:
        return self.everything().html

    def everything(self) -> Fragment:
        """Every section in clause-map order (a whole pack in one fragment)."""
        return Fragment("\n".join(self._one(s) for s in self.model.sections))

    def cover(self) -> Fragment:
        return self.section("cover")

    def summary(self) -> Fragment:
        return self.section("summary")

    def section(self, section_id: str) -> Fragment:
        """One section (``cover``, ``summary``, ``a``, ``b``, ``c1`` ... ``c7``, ``d``, ``e``,
        ``f``, ``decisions``, ``coverage``, ``appendix``) as a fragment.

        Sections a clause map of the user's own adds (ids not in
        :data:`~qmskpi.review.PACK_SECTIONS`, which the packaged notebook names one
        by one) are shown with the section they follow in the map.
        """
        s = self.model.section(section_id)
        parts = [self._one(s)]
        sections = self.model.sections
        for extra in sections[sections.index(s) + 1 :]:
            if extra.id in PACK_SECTIONS:
                break
            parts.append(self._one(extra))
        return Fragment("\n".join(parts))

    def _one(self, s: Section) -> str:
        render = {
            "cover": self._cover,
            "summary": self._summary,
            "f": self._opportunities,
            "coverage": self._coverage,
            "appendix": self._appendix,
            "decisions": self._decisions,
        }.get(s.id, self._input)
        return render(s)

    def trends(self, *, section: str | None = None, scope: str | None = None) -> Fragment:
        """SPC charts of the model's trends (optionally of one section's KPIs or one scope)."""
        ts = [
            t
            for t in self.model.trends
            if (section is None or t.section == section) and (scope is None or t.scope == scope)
        ]
        return Fragment(self._trend_grid(ts, section or "trends"))

    def charts(self, trends: Sequence[Trend], *, prefix: str = "deep-dive") -> Fragment:
        """SPC charts of any trends (e.g. ``review.trends(...)``), in this pack's document."""
        return Fragment(self._trend_grid(list(trends), prefix))

    def table(self, table_id: str) -> Fragment:
        t = self.model.table(table_id)
        return Fragment(table_html(t) if t is not None else "")

    def restatement(self, detail: Mapping[str, Any] | None) -> Fragment:
        """What this pack restates, when a published period was re-rendered with other figures.

        ``detail`` is the ``restatement.json`` a scheduled run stages beside
        ``review-inputs.json`` (``pipeline.restatement_for``); None gives nothing.
        Every value shows as text, so a director can answer "why is this month's
        figure not what we approved?" from the pack itself.
        """
        if not detail:
            return Fragment("")
        titles = {v.kpi: v.title for v in self.model.kpis}
        old = detail.get("superseded") or {}
        changed = [
            f"{_text(c.get('dataset'))} ({_rows_change(c.get('old_rows_in'), c.get('new_rows_in'))})"
            for c in detail.get("changed_inputs") or []
        ]
        reasons = []
        if changed:
            reasons.append("changed inputs: " + ", ".join(changed))
        if detail.get("config_changed"):
            reasons.append("the configuration changed")
        redefined = {str(d.get("kpi")) for d in detail.get("definitions_changed") or []}
        if redefined:
            n_def = len(redefined)
            reasons.append(
                f"the definition of {n_def} measure{'s' if n_def != 1 else ''} changed "
                "(marked †; old and new definitions in restatement.json)"
            )
        if detail.get("qmskpi_changed"):
            reasons.append(
                f"qmskpi {_text(detail.get('old_qmskpi'))} → {_text(detail.get('new_qmskpi'))}"
            )
        why = "; ".join(reasons) if reasons else "no input, configuration or version change"
        rows = [
            (
                titles.get(str(k.get("kpi")), str(k.get("kpi")))
                + (" †" if str(k.get("kpi")) in redefined else ""),
                k.get("scope"),
                k.get("period"),
                _restated_value(k.get("old_value")),
                _restated_value(k.get("new_value")),
                _sound_change(k.get("old_sound"), k.get("new_sound")),
            )
            for k in detail.get("kpis") or []
        ]
        return Fragment(
            _html(
                "restatement",
                n=len(rows),
                created_at=old.get("created_at"),
                old_id=old.get("id"),
                why=why,
                rows=rows,
            )
        )

    # ------------------------------------------------------------ pieces

    def _header(self, s: Section, *, extra: str = "") -> str:
        return _html(
            "section_head",
            page_break=s.page_break,
            anchor=div_id("section", s.id),
            ref=s.ref,
            title=s.title,
            badge=trusted(_status_badge(s.status)),
            wording=s.wording,
            notes=list(s.notes),
            extra=trusted(extra),
        )

    def _cover(self, s: Section) -> str:
        m = self.model.meta
        serious = [e for e in self.model.exceptions if e.rank <= 2]
        inputs = list(self.model.coverage)
        evidenced = sum(1 for c in inputs if c.status == "evidenced")
        state_cls = "qk-state-alert" if serious else "qk-state-ok"
        state = _exception_count(len(serious), len(self.model.exceptions) - len(serious))
        validated = (
            "data validated against the data contracts"
            if m.validated
            else "data NOT validated against the data contracts"
        )
        return _html(
            "cover",
            m=m,
            state_cls=state_cls,
            state=state,
            evidenced=evidenced,
            inputs=len(inputs),
            validated=validated,
            provisional=trusted(_provisional_label(m)),
        )

    def _summary(self, s: Section) -> str:
        m = self.model
        serious = [e for e in m.exceptions if e.rank <= 2]
        exceptions = (
            {
                "count": _exception_count(len(serious), len(m.exceptions) - len(serious)),
                "entries": [
                    (e.kind, _KIND_TEXT.get(e.kind, e.kind), self._ref(e.section), e.text)
                    for e in m.exceptions[:LIST_MAX]
                ],
                "more": trusted(
                    _more_list(len(m.exceptions), "Exceptions", "exceptions", "most serious")
                ),
            }
            if m.exceptions
            else None
        )
        icons = [
            *(variation_icon(i, size=16) for i in _LEGEND_VARIATION),
            *(assurance_icon(i, size=16) for i in _LEGEND_ASSURANCE),
        ]
        contents = [
            (
                x.ref,
                x.title,
                trusted(_status_badge(x.status)) if x.status not in (None, "evidenced") else None,
            )
            for x in m.sections
            if x.id not in ("cover", "summary")
        ]
        return _html(
            "summary",
            box="qk-exceptions" + ("" if serious else " qk-none"),
            narrative=list(m.narrative),
            meta=m.meta,
            tiles=trusted(tiles_html(m.tiles)),
            legend=trusted(_html("legend", icons=[trusted(i) for i in icons])),
            exceptions=exceptions,
            contents=contents,
        )

    def _input(self, s: Section) -> str:
        m = self.model
        parts = [self._header(s)]
        if s.analyst is not None:
            a = m.analyst_input(s.id)
            parts.append(self._analyst(a))
        parts.append(_kpi_table(m, s))
        for table_id in s.tables:
            parts.append(self._table_block(table_id, s))
        if s.trends:
            parts.append(self._trend_grid([t for t in m.trends if t.id in set(s.trends)], s.id))
        return _section(parts, anchor=div_id("body", s.id))

    def _analyst(self, a: AnalystInput | None) -> str:
        given = a is not None and a.markdown.strip()
        return _html(
            "analyst", markdown=trusted(safe_markdown(a.markdown)) if a and given else None
        )

    def _table_block(self, table_id: str, s: Section) -> str:
        t = self.model.table(table_id)
        if t is None:
            return ""
        if table_id == "defect_pareto" and t.rows:
            return figure_html(pareto_figure(t), self.doc, f"{s.id}-defect-pareto") + table_html(
                t, highlight="vital_few"
            )
        if table_id == "supplier_scorecard" and t.rows:
            return figure_html(
                scorecard_figure(t), self.doc, f"{s.id}-supplier-scorecard"
            ) + table_html(t)
        if table_id == "objective_attainment" and t.rows:
            return figure_html(objectives_figure(t), self.doc, f"{s.id}-objectives") + table_html(
                t, hide=_OBJECTIVE_HIDDEN
            )
        if table_id in ("review_actions",):
            return table_html(t, highlight="overdue")
        if table_id == "site_signals":
            return table_html(t, table_class="qk-matrix")
        return table_html(t)

    def _trend_grid(self, trends: Sequence[Trend], prefix: str) -> str:
        blocks = []
        for t in trends:
            fig = spc_figure(t) if t.rebase else spc_spec(t)  # the spec: no plotly checks
            chart = figure_html(fig, self.doc, f"{prefix}-{t.kpi}-{t.scope}")
            cls = "qk-chart"
            if t.classes and t.classes[-1] == "concern":
                cls += " qk-chart-concern"
            elif t.classes and t.classes[-1] == "improvement":
                cls += " qk-chart-improvement"
            icons = variation_icon(t.variation, size=22) + assurance_icon(t.assurance, size=22)
            blocks.append(
                {
                    "cls": cls,
                    "icons": trusted(icons),
                    "chart": trusted(chart),
                    "explanation": list(t.explanation),
                    "data": trusted(trend_data_table(t)),
                }
            )
        return _html("trend_grid", charts=blocks)

    def _opportunities(self, s: Section) -> str:
        ops = self.model.opportunities
        body = _html(
            "opportunities",
            items=[(o.text, o.basis, self._ref(o.section)) for o in ops[:LIST_MAX]],
            more=trusted(
                _more_list(len(ops), "Opportunities", "opportunities", "in section order")
            ),
        )
        return _section([self._header(s), body])

    def _ref(self, section_id: str) -> str:
        for x in self.model.sections:
            if x.id == section_id:
                return x.ref
        return section_id

    def _decisions(self, s: Section) -> str:
        t = self.model.table("decisions")
        return _section([self._header(s), table_html(t, table_class="qk-decisions") if t else ""])

    def _coverage(self, s: Section) -> str:
        rows = [_coverage_row(c) for c in self.model.coverage]
        return _section([self._header(s), _html("coverage", rows=rows)])

    def _appendix(self, s: Section) -> str:
        parts = [self._header(s)]
        for table_id in s.tables:
            t = self.model.table(table_id)
            if t is None:
                continue
            if table_id == "kpi_definitions":
                parts.append(
                    table_html(t, table_class="qk-small qk-defs", hide=("datasets", "kind"))
                )
            elif table_id == "ledger":
                parts.append(table_html(t, table_class="qk-ledger"))
            else:
                parts.append(table_html(t, table_class="qk-small"))
        return _section(parts, classes="qk-section qk-appendix")


_OBJECTIVE_HIDDEN: Final = ("direction", "unit", "target", "actual", "ytd_actual", "sound")


_LEGEND_VARIATION: Final = ("common_cause", "improvement_high", "concern_high")


_LEGEND_ASSURANCE: Final = ("consistent_pass", "consistent_fail", "inconsistent")


_LAST_PACK: list[Pack] = []


def show(model: ReviewModel, section_id: str) -> Fragment:
    """One section of ``model``; successive calls with the same model share one document."""
    if not _LAST_PACK or _LAST_PACK[0].model is not model:
        _LAST_PACK[:] = [Pack(model)]
    return _LAST_PACK[0].section(section_id)
