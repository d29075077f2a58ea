"""KPIs of DESIGN §4, computed exactly from the canonical datasets (polars, lazy).

Public API::

    from qmskpi import kpis
    kpis.REGISTRY["complaint_rate_ppm"]            # KpiDef: title, clause, unit, kind, definition
    kpis.compute_kpis(data, "2026-Q3", "all")      # tidy frame: one row per KPI x scope
    kpis.kpi_series(data, "2026-10", months=24)    # the same, per trailing month

and the pack's tables: :func:`supplier_scorecard`, :func:`defect_pareto`,
:func:`complaint_ageing`, :func:`repeat_complaints`, :func:`complaints_by_category`,
:func:`objective_attainment`, :func:`objective_trend`,
:func:`capa_effectiveness`, :func:`overdue_items`.

The tidy frame has exactly the columns ``kpi`` (str), ``scope`` (str),
``period`` (str label), ``value`` (f64, null when undefined), ``numerator``
(f64, null when not applicable), ``denominator`` (f64, null when not
applicable), ``unit`` (str), ``sound`` (bool: no input dataset failed
validation), ``note`` (str: why a value is null or unsound, else null).
Rows are sorted by registry order, then scope (``all`` first, then sites in
sorted order), then period. Conventions are in ``docs/kpis.md``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from qmskpi.config import WHOLE_SCOPE, Config, KpiConfig, SourceConfig
from qmskpi.datasets import DATASETS
from qmskpi.errors import KpiError, did_you_mean
from qmskpi.kpis import actions, audits, capa, conformity, customers, suppliers
from qmskpi.kpis._common import (
    ROW_SCHEMA,
    Context,
    DataProfile,
    Direction,
    Group,
    Kind,
    KpiDef,
    make_context,
    records_level,
)
from qmskpi.kpis.actions import overdue_items
from qmskpi.kpis.capa import capa_effectiveness
from qmskpi.kpis.conformity import PARETO_BY, PARETO_MEASURES, defect_pareto
from qmskpi.kpis.customers import (
    CATEGORY_BY,
    CATEGORY_MEASURES,
    complaint_ageing,
    complaints_by_category,
    repeat_complaints,
)
from qmskpi.kpis.firstlevel import Aggregates, FirstLevel, Level, Measure, count
from qmskpi.kpis.objectives import objective_attainment, objective_trend
from qmskpi.kpis.suppliers import SUPPLIER_BY, supplier_scorecard
from qmskpi.periods import Period, parse_period, trailing_months

__all__ = [
    "BREAKDOWNS",
    "CATEGORY_BY",
    "COLUMNS",
    "PARETO_BY",
    "PARETO_MEASURES",
    "PUSHDOWN",
    "REGISTRY",
    "SUPPLIER_BY",
    "TABLE_LEVELS",
    "Direction",
    "FirstLevel",
    "Kind",
    "KpiDef",
    "Level",
    "capa_effectiveness",
    "complaint_ageing",
    "complaints_by_category",
    "compute_kpis",
    "coverage_of",
    "defect_pareto",
    "kpi_series",
    "mapping_constants",
    "objective_attainment",
    "objective_trend",
    "overdue_items",
    "pushdown_levels",
    "pushed_down",
    "records_level",
    "repeat_complaints",
    "run_ends",
    "supplier_scorecard",
]

_AREAS = (customers, suppliers, conformity, capa, audits, actions)

REGISTRY: dict[str, KpiDef] = {k.id: k for area in _AREAS for k in area.KPIS}
"""Every KPI by id, in the pack's order (DESIGN §4)."""

_GROUPS: tuple[Group, ...] = tuple(g for area in _AREAS for g in area.GROUPS)
_GROUP_OF: dict[str, Group] = {k.id: g for g in _GROUPS for k in g.kpis}

BREAKDOWNS: dict[str, dict[str, tuple[Measure, ...]]] = {
    "inspections": {PARETO_BY: PARETO_MEASURES},
    "complaints": {CATEGORY_BY: CATEGORY_MEASURES},
}
"""By dataset, the first levels of the pack's tables that no KPI reads, by the column each
breaks down by (the defect Pareto's: :func:`defect_pareto` with ``aggregate=``; complaints
per category: :func:`complaints_by_category` with ``aggregate=``), computed with
``pushdown``. (The supplier scorecard reads the receipts' level per supplier and day that
``receipts_from_unapproved`` reads: :data:`SUPPLIER_BY`; the complaint ageing the
complaints open at period ends that ``complaints_open`` reads.)"""

TABLE_LEVELS: dict[str, tuple[Level, ...]] = {"capa": capa.TABLE_LEVELS}
"""By dataset, other first levels of the pack's tables that no KPI reads, dated by another
field than the period field (the CAPA effectiveness table's, by ``closed_date``:
:func:`capa_effectiveness` with ``aggregate=``)."""

_BLANKS = {("complaints", CATEGORY_BY)}
"""Breakdowns that keep every value, blank and null included (a complaint's category is
counted as recorded, as the table from rows does)."""


def _merged(levels: list[Level]) -> tuple[Level, ...]:
    """Levels of the same date, breakdown and grain as one (measures in first-seen order,
    record measures before lot measures)."""
    shapes: dict[tuple[object, ...], tuple[Level, list[Measure]]] = {}
    for lvl in levels:
        shapes.setdefault(lvl.shape, (lvl, []))[1].extend(lvl.measures)
    return tuple(
        dataclasses.replace(
            lvl, measures=tuple(sorted(dict.fromkeys(ms), key=lambda m: m.lots is not None))
        )
        for lvl, ms in shapes.values()
    )


def run_ends(period: Period | str, months: int = 24) -> tuple[date, ...]:
    """The period ends a run for ``period`` counts open items at (the ``ends`` of an
    open-at-ends first level): the end of every month of the ``months``-month trend window
    ending with ``period``'s last month (:func:`kpi_series`) and of every month since 1
    January of its year (the year to date), so the period's, the quarter's, the year to
    date's and each trend month's end are all there."""
    p = parse_period(period)
    window = trailing_months(p, months)
    ytd = p.year_to_date().months()
    return tuple(sorted({m.end for m in (*window, *ytd)}))


def pushdown_levels(
    dataset: str,
    config: KpiConfig | None = None,
    *,
    period: Period | str | None = None,
    months: int = 24,
) -> tuple[Level, ...]:
    """The first levels the database computes for ``dataset`` with ``pushdown``: the KPI
    groups' (:attr:`Group.pushdown` under ``config``; levels of the same date, breakdown and
    grain merged), the one counting records by the period field first, then the tables'
    (:data:`BREAKDOWNS`). Empty for a dataset no KPI reads from aggregates.

    ``period`` (with the trend window's ``months``): the ends of open-at-ends levels
    (``Level.open_until``, e.g. the complaints open at each period end) are those a run of
    that period needs (:func:`run_ends`). Without it they have no ends (a definition, not
    something to run): computing one raises :class:`~qmskpi.errors.KpiError`."""
    cfg = config or KpiConfig()
    pf = DATASETS[dataset].period_field or ""
    found = [lvl for g in _GROUPS for lvl in g.pushdown(cfg).get(dataset, ())]
    if not found:
        return ()
    found += [
        Level(pf, m, by, blanks=(dataset, by) in _BLANKS)
        for by, m in BREAKDOWNS.get(dataset, {}).items()
    ]
    found += TABLE_LEVELS.get(dataset, ())
    # the records per month and site (``n``): what the coverage matrix and the "no usable
    # rows" check read of a dataset known only by its aggregates
    found.append(Level(pf, (count("n"),)))
    ends = run_ends(period, months) if period is not None else ()
    merged = (
        dataclasses.replace(lvl, ends=ends) if lvl.open_until is not None else lvl
        for lvl in _merged(found)
    )
    return tuple(sorted(merged, key=lambda lvl: lvl.shape != (pf, None, False, False)))


PUSHDOWN: dict[str, tuple[Measure, ...]] = {
    d: pushdown_levels(d)[0].measures
    for d in sorted({d for g in _GROUPS for d in g.pushdown(KpiConfig())})
}
"""By dataset, the measures the database computes with ``pushdown`` per month and site by
the dataset's period field (:data:`PUSHDOWN_DATE`), under the default configuration: the
first of :func:`pushdown_levels`. One definition: the
:class:`~qmskpi.kpis.firstlevel.Measure` tuples the groups aggregate in polars; record
measures first, then lot measures."""
PUSHDOWN_DATE: dict[str, str] = {d: DATASETS[d].period_field or "" for d in PUSHDOWN}
"""By dataset, the date its :data:`PUSHDOWN` measures are bucketed by (its period field)."""


def pushed_down(dataset: str) -> tuple[str, ...]:
    """KPI ids that can read ``dataset`` from its first-level aggregates (registry order)."""
    return tuple(k for k in REGISTRY if dataset in _GROUP_OF[k].pushdown(KpiConfig()))


COLUMNS: dict[str, pl.DataType] = {
    "kpi": pl.String(),
    "scope": pl.String(),
    "period": pl.String(),
    "value": pl.Float64(),
    "numerator": pl.Float64(),
    "denominator": pl.Float64(),
    "unit": pl.String(),
    "sound": pl.Boolean(),
    "note": pl.String(),
}
"""The tidy frame's columns and types, in order."""


def compute_kpis(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    scope: str = WHOLE_SCOPE,
    *,
    config: KpiConfig | None = None,
    unsound: Collection[str] = (),
    set_aside: Mapping[str, str] | None = None,
    constants: Mapping[str, Collection[str]] | None = None,
    aggregates: Aggregates | None = None,
    only: Collection[str] | None = None,
    as_of: date | None = None,
) -> pl.DataFrame:
    """Every KPI of :data:`REGISTRY` for one period (month, quarter or year).

    ``data``: canonical frames by dataset name (``datasets.DATASETS``); a
    dataset left out gives its KPIs null values with note ``no data: <name>``.
    ``scope``: ``"all"`` gives the whole scope and every site found in the
    data; a site name gives that site only. ``unsound``: datasets that failed
    validation (``ValidationReport.unsound_datasets``); KPIs reading them get
    ``sound=False``. ``set_aside``: by dataset, the ``based on 5,022 of 5,300
    complaints (...)`` note of a sound dataset that had rows quarantined
    (``ValidationReport.set_aside_notes()``), added to the note of every sound
    KPI reading it. ``constants``: by dataset, columns the mapping filled with
    one value (:func:`mapping_constants`); a KPI whose definition reads one is
    ``sound=False`` with note ``not measured: <column> is a mapping constant``.

    ``aggregates``: by dataset, first-level aggregates computed in the database
    (``kpis.sql.first_level_sql`` of each of :func:`pushdown_levels`: one
    :class:`FirstLevel` or several); KPIs whose group reads them
    (:func:`pushed_down`) use them instead of rows, with the same result; the other KPIs of that dataset need its rows in ``data``
    (pulled), else they are null with note ``not pushed down: needs <dataset> rows``.

    ``only``: these KPI ids (in registry order) instead of every KPI; only the
    groups computing them run. An unknown id raises :class:`~qmskpi.errors.KpiError`.

    ``as_of``: the day the data is judged on (the run's as-of date): an open order
    line whose delivery window closed before it is late. None takes the newest record
    date of the data, so the same data always gives the same figures.

    Quarter and year values are recomputed from the rows of the whole period,
    never averaged from months. Raises :class:`~qmskpi.errors.KpiError` for a
    period that starts after the newest record, or an unknown scope.
    """
    p = parse_period(period)
    caveats = _Caveats(set_aside or {}, constants or {})
    return _compute(
        data,
        [p],
        scope,
        config,
        unsound,
        asked=p,
        caveats=caveats,
        aggregates=aggregates,
        only=only,
        as_of=as_of,
    )


def kpi_series(
    data: Mapping[str, pl.DataFrame],
    period: Period | str,
    scope: str = WHOLE_SCOPE,
    *,
    months: int = 24,
    config: KpiConfig | None = None,
    unsound: Collection[str] = (),
    coverage: Mapping[str, str | None] | None = None,
    set_aside: Mapping[str, str] | None = None,
    constants: Mapping[str, Collection[str]] | None = None,
    aggregates: Aggregates | None = None,
    as_of: date | None = None,
) -> pl.DataFrame:
    """The :func:`compute_kpis` frame for each of the trailing ``months`` months.

    The months end with the last month of ``period``; the ``period`` column
    holds month labels. Each KPI's months come from one group-by over the rows,
    not one call per month. A month ending before a dataset's first date is
    null with note ``before data: ...``.

    Gaps are not zeros: a month in which a dataset the KPI reads has no rows at
    all (any site) is a gap, null with note ``gap: no <dataset> records in
    <month>``, unless the source declares that it covers that month.
    ``coverage`` maps a dataset to the first month it covers (``"YYYY-MM"``, the
    source's ``coverage_start``) or to None (covered from its first record on,
    ``zero_means_zero``); in a covered month no rows is a zero (or a null ratio
    with its reason), and a covered month before the first record is a zero too.
    """
    p = parse_period(period)
    covered = dict(coverage or {})
    for name, start in covered.items():
        if name not in DATASETS:
            raise KpiError(
                f"coverage names an unknown dataset {name!r}{did_you_mean(name, DATASETS)}"
            )
        if start is not None:
            parse_period(start)  # a YYYY-MM label, or PeriodError naming it
    caveats = _Caveats(set_aside or {}, constants or {})
    return _compute(
        data,
        trailing_months(p, months),
        scope,
        config,
        unsound,
        asked=p,
        coverage=covered,
        caveats=caveats,
        aggregates=aggregates,
        as_of=as_of,
    )


def coverage_of(sources: Mapping[str, SourceConfig]) -> dict[str, str | None]:
    """The ``coverage`` argument of :func:`kpi_series` from the configured sources:
    ``coverage_start`` (a month) or, with ``zero_means_zero``, None (from the first record)."""
    return {
        name: sc.coverage_start
        for name, sc in sources.items()
        if sc.coverage_start is not None or sc.zero_means_zero
    }


def _compute(
    data: Mapping[str, pl.DataFrame],
    periods: list[Period],
    scope: str,
    config: KpiConfig | None,
    unsound: Collection[str],
    *,
    asked: Period,
    coverage: Mapping[str, str | None] | None = None,
    caveats: _Caveats | None = None,
    aggregates: Aggregates | None = None,
    only: Collection[str] | None = None,
    as_of: date | None = None,
) -> pl.DataFrame:
    """``coverage`` None: no gap detection (one period); a mapping: a series (see kpi_series)."""
    wanted = None if only is None else _wanted(only)
    bad = {unsound} if isinstance(unsound, str) else set(unsound)
    for name in sorted(bad - set(DATASETS)):
        raise KpiError(f"unsound names an unknown dataset {name!r}{did_you_mean(name, DATASETS)}")
    for name in sorted(set(aggregates or {}) - set(PUSHDOWN)):  # nothing reads them
        raise KpiError(f"no KPI of dataset {name!r} is computed from first-level aggregates")
    ctx, prof = make_context(
        data, periods, scope, config, asked=asked, aggregates=aggregates, as_of=as_of
    )
    parts = [
        g.compute(ctx).select(list(ROW_SCHEMA))
        for g in _GROUPS
        if g.runs_on(ctx) and (wanted is None or any(k.id in wanted for k in g.kpis))
    ]
    computed = (
        pl.concat(parts, how="vertical_relaxed").collect()
        if parts
        else pl.DataFrame(schema=ROW_SCHEMA)
    )
    return _assemble(ctx, prof, computed, bad, coverage, caveats or _Caveats({}, {}), wanted)


def _wanted(only: Collection[str]) -> frozenset[str]:
    ids = [only] if isinstance(only, str) else list(only)
    for k in ids:
        if k not in REGISTRY:
            raise KpiError(f"unknown KPI {k!r}{did_you_mean(k, REGISTRY)}")
    return frozenset(ids)


@dataclass(frozen=True)
class _Caveats:
    set_aside: Mapping[str, str]
    constants: Mapping[str, Collection[str]]

    def notes(self, kpi: KpiDef, failed: list[str]) -> tuple[bool, str | None]:
        """(sound?, the note soundness adds) for ``kpi`` whose inputs ``failed`` validation."""
        text = " ".join(filter(None, (kpi.definition, kpi.numerator, kpi.denominator)))
        unmeasured = [
            c
            for d in kpi.inputs
            for c in sorted(self.constants.get(d, ()))
            if re.search(rf"\b{re.escape(c)}\b", text)
        ]
        notes: list[str] = []
        if failed:
            notes.append(f"inputs failed validation: {', '.join(failed)}")
        if unmeasured:
            verb = "is a mapping constant" if len(unmeasured) == 1 else "are mapping constants"
            notes.append(f"not measured: {', '.join(unmeasured)} {verb}")
        sound = not failed and not unmeasured
        if sound:
            notes.extend(self.set_aside[d] for d in kpi.inputs if d in self.set_aside)
        return sound, "; ".join(notes) or None


def mapping_constants(config: Config) -> dict[str, tuple[str, ...]]:
    """By dataset, the columns ``[sources.X] constants`` fills with one value, ``site`` excepted.

    A constant site is where a one-site export comes from, not a measurement;
    any other constant column (``qty_rejected = 0``) means the KPIs reading it
    are not measured.
    """
    return {
        ds: cols
        for ds, src in config.sources.items()
        if (cols := tuple(sorted(c for c in src.constants if c != "site")))
    }


# Long by design: one pass that turns computed values into the tidy table, applying soundness,
# coverage and caveat notes in a fixed order; split, the order of the notes would be implicit.
def _assemble(
    ctx: Context,
    prof: DataProfile,
    computed: pl.DataFrame,
    unsound: set[str],
    coverage: Mapping[str, str | None] | None = None,
    caveats: _Caveats | None = None,
    wanted: frozenset[str] | None = None,
) -> pl.DataFrame:
    """Join computed rows onto the full KPI x scope x period grid; add notes, units, soundness."""
    periods = ctx.buckets.periods
    scopes = ctx.scopes
    grid_rows: dict[str, list[object]] = {
        k: [] for k in ("kpi", "scope", "key", "period", "unit", "sound", "override", "extra")
    }
    for kpi in REGISTRY.values():
        if wanted is not None and kpi.id not in wanted:
            continue
        group = _GROUP_OF[kpi.id]
        missing = [d for d in kpi.datasets if d not in ctx.frames and d not in ctx.aggregates]
        unpushed = [
            d
            for d in kpi.datasets
            if d not in ctx.frames and d in ctx.aggregates and not group.reads_aggregates(ctx, d)
        ]
        failed = sorted(set(kpi.inputs) & unsound)
        sound, extra = (caveats or _Caveats({}, {})).notes(kpi, failed)
        for s in scopes:
            for key, per in enumerate(periods):
                override = None
                if missing:
                    override = f"no data: {', '.join(missing)}"
                elif unpushed:
                    override = f"not pushed down: needs {', '.join(unpushed)} rows"
                elif not kpi.per_site and s != WHOLE_SCOPE:
                    sources = ", ".join(d for d in kpi.datasets if not DATASETS[d].site_level)
                    override = f"not split by site: {sources} has no site"
                else:
                    override = _before_data(kpi, per, prof, coverage)
                    if override is None and coverage is not None:
                        override = _gap(kpi, per, prof, coverage)
                grid_rows["kpi"].append(kpi.id)
                grid_rows["scope"].append(s)
                grid_rows["key"].append(key)
                grid_rows["period"].append(per.label)
                grid_rows["unit"].append(kpi.unit)
                grid_rows["sound"].append(sound)
                grid_rows["override"].append(override)
                grid_rows["extra"].append(extra)
    grid = pl.DataFrame(
        grid_rows,
        schema={
            "kpi": pl.String(),
            "scope": pl.String(),
            "key": pl.Int32(),
            "period": pl.String(),
            "unit": pl.String(),
            "sound": pl.Boolean(),
            "override": pl.String(),
            "extra": pl.String(),
        },
    ).with_row_index("_order")
    hits = computed.with_columns(_hit=pl.lit(True))
    joined = grid.join(hits, on=["kpi", "scope", "key"], how="left")
    blank = pl.col("override").is_not_null() | pl.col("_hit").is_null()
    base_note = (
        pl.when(pl.col("override").is_not_null())
        .then(pl.col("override"))
        .when(pl.col("_hit").is_null())
        .then(pl.lit("not computed"))
        .otherwise(pl.col("note"))
    )
    note = pl.concat_str([base_note, pl.col("extra")], separator="; ", ignore_nulls=True)
    return (
        joined.sort("_order")
        .select(
            "kpi",
            "scope",
            "period",
            *[
                pl.when(blank).then(pl.lit(None, pl.Float64())).otherwise(pl.col(c)).alias(c)
                for c in ("value", "numerator", "denominator")
            ],
            "unit",
            "sound",
            pl.when(note == "").then(pl.lit(None, pl.String())).otherwise(note).alias("note"),
        )
        .cast(COLUMNS)  # type: ignore[arg-type]
    )


def _before_data(
    kpi: KpiDef, per: Period, prof: DataProfile, coverage: Mapping[str, str | None] | None = None
) -> str | None:
    late = [
        (name, first)
        for name in kpi.datasets
        if (first := prof.first.get(name)) is not None
        and per.end < first
        and not _covered(name, per, prof, coverage)
    ]
    if not late:
        return None
    return "before data: " + ", ".join(f"{n} starts {_iso(d)}" for n, d in late)


def _covered(
    name: str, per: Period, prof: DataProfile, coverage: Mapping[str, str | None] | None
) -> bool:
    """Whether the source of ``name`` declares that it covers the month ``per``."""
    if coverage is None or name not in coverage:
        return False
    start = coverage[name]
    if start is None:  # zero_means_zero: from the first record on
        first = prof.first.get(name)
        return first is not None and per.end >= first
    return per.end >= parse_period(start).start


def _gap(
    kpi: KpiDef, per: Period, prof: DataProfile, coverage: Mapping[str, str | None]
) -> str | None:
    """A month with no rows at all in a dataset the KPI reads, not declared covered."""
    empty = [
        name
        for name in kpi.datasets
        if (months := prof.months.get(name)) is not None
        and per.label not in months
        and not _covered(name, per, prof, coverage)
    ]
    if not empty:
        return None
    return f"gap: no {', '.join(empty)} records in {per.label}"


def _iso(d: date) -> str:
    return d.isoformat()
