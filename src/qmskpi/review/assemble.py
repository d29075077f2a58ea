"""Assembling the review model: :func:`build` (the pack) and :func:`trends` (deep dives).

The import block reads like the build: the measures, their coverage, the
tables, the summary in words and the opportunities, put together in the order
of the clause map.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import polars as pl

from qmskpi.config import WHOLE_SCOPE, Config
from qmskpi.kpis.firstlevel import FirstLevel
from qmskpi.periods import Period, parse_period
from qmskpi.review.appendix import appendix_tables
from qmskpi.review.clauses import ClauseEntry, ClauseMap, clause_map_for
from qmskpi.review.context import Context, Frames
from qmskpi.review.coverage import coverage_row, section_notes
from qmskpi.review.measures import measure_trends, measure_values
from qmskpi.review.model import (
    SCHEMA,
    AnalystInput,
    CoverageRow,
    Meta,
    ReviewModel,
    Section,
    Table,
    Trend,
    normalise,
)
from qmskpi.review.narrative import exception_items, headline_tiles, narrative_lines
from qmskpi.review.opportunities import suggest_opportunities
from qmskpi.review.signals import kept_trends
from qmskpi.review.tables import section_tables

if TYPE_CHECKING:  # contracts imports Great Expectations lazily; the model never needs it
    from qmskpi.contracts import ValidationReport


@dataclass(frozen=True)
class Built:
    """A review model and the registers behind its bounded tables."""

    model: ReviewModel
    registers: Mapping[str, pl.DataFrame]
    """Every row of each bounded table, by table id, ranked as the pack shows them
    (``Table.register`` names the sheet)."""


def build(
    data: Frames,
    *,
    period: Period | str,
    scope: str,
    config: Config,
    validation: ValidationReport | None,
    analyst_inputs: Mapping[str, str] | None = None,
    as_of: date | None = None,
) -> ReviewModel:
    """The review model of :func:`build_pack` (without the registers)."""
    return build_pack(
        data,
        period=period,
        scope=scope,
        config=config,
        validation=validation,
        analyst_inputs=analyst_inputs,
        as_of=as_of,
    ).model


def build_pack(
    data: Frames,
    *,
    period: Period | str,
    scope: str,
    config: Config,
    validation: ValidationReport | None,
    analyst_inputs: Mapping[str, str] | None = None,
    kpi_table: pl.DataFrame | None = None,
    as_of: date | None = None,
    aggregates: Sequence[FirstLevel] = (),
    listed: Mapping[str, pl.DataFrame] | None = None,
) -> Built:
    """Compute everything the management-review pack shows for one period and scope.

    Lists and per-site tables show their first ``config.review.max_rows`` rows
    by a stated rule (``Table.order``); every row is in :attr:`Built.registers`.

    ``data``: the validated frames (``validation.clean``) by dataset name; a
    dataset that is absent or empty is reported as missing, one in
    ``validation.unsound_datasets`` as failed validation (its KPIs are flagged).
    ``analyst_inputs``: markdown by key ``changes`` / ``resources`` / ``risks``
    (9.3.2 b, d, e); None reads the files named in ``config.analyst_inputs``.
    ``kpi_table``: the ``kpis.compute_kpis`` frame of this period and scope with the
    same inputs (validation notes and mapping constants included), when the caller
    has it already; computed otherwise.
    ``as_of``: the day the data is judged on (a backfill's ``--as-of``); None takes
    ``config.review.as_of``, else the newest record of the data.
    ``aggregates``: first levels computed in the database (``pushdown``) of datasets
    not in ``data`` (``Pushed.aggregates`` and ``Pushed.breakdowns``): the KPIs, trends,
    coverage and the defect Pareto table read them instead of rows.
    ``listed``: of those datasets, the rows the pack lists (``Pushed.listed``: the period's
    complaints), validated; the critical complaints list reads them.
    """
    p = parse_period(period)
    scope = config.check_scope(scope)
    cmap = clause_map_for(config)
    unsound = frozenset(validation.unsound_datasets) if validation is not None else frozenset()
    if analyst_inputs is None:
        analyst_inputs = read_analyst_inputs(config)
    ctx = Context(
        config=config,
        period=p,
        scope=scope,
        cmap=cmap,
        unsound=unsound,
        data=data,
        kpi_frame=kpi_table,
        as_of=as_of or config.review.as_of,
        aggregates=tuple(aggregates),
        listed=listed or {},
    )
    # ``based on ... of ...`` notes; a duck-typed report without them gives none.
    notes = getattr(validation, "set_aside_notes", None)
    ctx.set_aside = notes() if notes is not None else {}

    kpi_values = measure_values(ctx)
    ctx.values = kpi_values
    all_trends = measure_trends(ctx)
    coverage = tuple(coverage_row(ctx, e, analyst_inputs, all_trends) for e in _inputs(cmap))
    tables = section_tables(ctx, all_trends) + appendix_tables(ctx, validation)
    kept = kept_trends(ctx, all_trends)
    exceptions = exception_items(ctx, kpi_values, all_trends, coverage)
    model = ReviewModel(
        schema=SCHEMA,
        meta=_meta(ctx, validated=validation is not None),
        sections=_sections(ctx, coverage, kept, tables),
        tiles=headline_tiles(ctx, kpi_values, all_trends, exceptions),
        exceptions=exceptions,
        narrative=narrative_lines(ctx, all_trends, exceptions),
        kpis=kpi_values,
        trends=kept,
        tables=tables,
        opportunities=suggest_opportunities(ctx, all_trends, tables),
        coverage=coverage,
        analyst=_analyst(ctx.cmap, analyst_inputs, coverage),
    )
    return Built(normalise(model), dict(ctx.registers))


def _meta(ctx: Context, *, validated: bool) -> Meta:
    p, scope, config = ctx.period, ctx.scope, ctx.config
    return Meta(
        organisation=config.organisation,
        period=p.label,
        period_start=p.start.isoformat(),
        period_end=p.end.isoformat(),
        granularity=p.granularity,
        scope=scope,
        scope_label="All sites"
        if scope == WHOLE_SCOPE
        else f"Site {scope}"
        if not scope.lower().startswith("site")
        else scope,
        sites=tuple(config.sites) if scope == WHOLE_SCOPE else (scope,),
        clause_map=ctx.cmap.id,
        clause_map_title=ctx.cmap.title,
        trend_months=config.review.trend_months,
        stale_after_days=config.review.stale_after_days,
        validated=validated,
        clause_map_edition=ctx.cmap.edition,
        clause_map_provisional=ctx.cmap.provisional,
    )


def _sections(
    ctx: Context,
    coverage: Sequence[CoverageRow],
    kept: Sequence[Trend],
    tables: Sequence[Table],
) -> tuple[Section, ...]:
    """One section per clause-map entry: its status, KPIs, trends (c5) and tables present."""
    status = {c.section: c.status for c in coverage}
    table_ids = {t.id for t in tables}
    return tuple(
        Section(
            id=e.id,
            ref=e.ref,
            title=e.title,
            wording=e.wording,
            role=e.role,
            status=status.get(e.id),
            kpis=ctx.section_kpis.get(e.id, ()),
            trends=tuple(t.id for t in kept) if e.trends else (),
            tables=tuple(t for t in e.tables if t in table_ids),
            analyst=e.analyst,
            notes=section_notes(e, coverage),
            page_break=e.page_break,
        )
        for e in ctx.cmap.entries
    )


def _analyst(
    cmap: ClauseMap, analyst_inputs: Mapping[str, str], coverage: Sequence[CoverageRow]
) -> tuple[AnalystInput, ...]:
    status = {c.section: c.status for c in coverage}
    return tuple(
        AnalystInput(
            section=e.id,
            key=e.analyst,
            markdown=(analyst_inputs.get(e.analyst) or "").strip("\n"),
            status=status.get(e.id, "missing"),
        )
        for e in cmap.entries
        if e.analyst is not None
    )


def trends(
    data: Frames,
    *,
    period: Period | str,
    scope: str,
    config: Config,
    unsound: Iterable[str] = (),
    section: str | None = None,
    aggregates: Sequence[FirstLevel] = (),
    as_of: date | None = None,
) -> tuple[Trend, ...]:
    """Every SPC series of the scope and (for the whole organisation) of each site.

    The model keeps site series only where the latest month carries a signal;
    the deep-dive notebooks show them all. ``section`` keeps the KPIs of one
    section (e.g. ``"c1"``). ``aggregates``: pushed-down first levels, as for
    :func:`build_pack` (``Prepared.aggregates``). ``as_of``: the day the data is judged
    on, as for :func:`build_pack` (``Prepared.as_of``: the pack's own).
    """
    p = parse_period(period)
    scope = config.check_scope(scope)
    ctx = Context(
        config=config,
        period=p,
        scope=scope,
        cmap=clause_map_for(config),
        unsound=frozenset(unsound),
        data=data,
        aggregates=tuple(aggregates),
        as_of=as_of or config.review.as_of,
    )
    out = measure_trends(ctx)
    if section is not None:
        ctx.cmap.entry(section)  # unknown section: a clear error
        out = tuple(t for t in out if t.section == section)
    scope_order = {s: i for i, s in enumerate(ctx.scopes)}
    return tuple(sorted(out, key=lambda t: scope_order[t.scope]))


def read_analyst_inputs(config: Config) -> dict[str, str]:
    """The markdown files named in ``config.analyst_inputs`` (missing files are skipped)."""
    out: dict[str, str] = {}
    for key in ("changes", "resources", "risks"):
        rel = getattr(config.analyst_inputs, key)
        if rel is None:
            continue
        path = config.resolve(rel)
        if path.is_file():
            out[key] = path.read_text(encoding="utf-8")
    return out


def _inputs(cmap: ClauseMap) -> list[ClauseEntry]:
    return [e for e in cmap.entries if e.role == "input"]
