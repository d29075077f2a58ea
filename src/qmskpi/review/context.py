"""What every part of the build shares: config, period, scope, clause map and data.

:class:`Context` also assigns each KPI to the section of the clause map that
shows it (``kpi_section``, ``section_kpis``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from qmskpi import kpis
from qmskpi.config import WHOLE_SCOPE, Config
from qmskpi.kpis.firstlevel import MONTH
from qmskpi.periods import Period
from qmskpi.review.clauses import ClauseMap
from qmskpi.review.formatting import as_float
from qmskpi.review.model import KpiValue, Table

Frames = Mapping[str, pl.DataFrame]


@dataclass
class Context:
    """The inputs of one build and the KPI-to-section assignment derived from the clause map."""

    config: Config
    period: Period
    scope: str
    cmap: ClauseMap
    unsound: frozenset[str]
    data: Frames
    set_aside: Mapping[str, str] = field(default_factory=dict)
    """Dataset -> ``based on ... of ...`` note (``ValidationReport.set_aside_notes``)."""
    as_of: date | None = None
    """The day the data is judged on (``--as-of`` or ``[review] as_of``); None: the newest
    record of the data (``kpis.compute_kpis``)."""
    section_kpis: dict[str, tuple[str, ...]] = field(default_factory=dict)
    kpi_section: dict[str, str] = field(default_factory=dict)
    section_order: dict[str, int] = field(default_factory=dict)
    values: tuple[KpiValue, ...] = ()
    kpi_frame: pl.DataFrame | None = None
    """The ``kpis.compute_kpis`` frame of the period and scope (computed once per build)."""
    registers: dict[str, pl.DataFrame] = field(default_factory=dict)
    """Every row of each bounded table, by table id (the pack shows the first rows)."""
    aggregates: tuple[kpis.FirstLevel, ...] = ()
    """First levels computed in the database (``pushdown``) of datasets not in :attr:`data`."""
    listed: Frames = field(default_factory=dict)
    """Of those, the rows the pack lists (the period's complaints), validated."""

    def first_levels(self) -> dict[str, tuple[kpis.FirstLevel, ...]]:
        """The first-level aggregates by dataset (``compute_kpis(aggregates=)``)."""
        out: dict[str, tuple[kpis.FirstLevel, ...]] = {}
        for a in self.aggregates:
            out[a.dataset] = (*out.get(a.dataset, ()), a)
        return out

    def breakdown(self, dataset: str, by: str) -> kpis.FirstLevel | None:
        """The first level of ``dataset`` broken down ``by`` a column, if computed."""
        return next((a for a in self.aggregates if a.dataset == dataset and a.by == by), None)

    def pushed_records(self, name: str) -> kpis.FirstLevel | None:
        """The first level counting a pushed-down dataset's records (``n``) per month and
        site by its period field; None when it is not pushed down (its rows are here)."""
        if name in self.data:
            return None
        agg = kpis.records_level(name, self.first_levels().get(name, ()))
        return agg if agg is not None and "n" in agg.frame.columns else None

    def pushed_rows(self, name: str) -> pl.DataFrame | None:
        """A pushed-down dataset's records per (month, site) in the scope: ``month``,
        ``n`` (records used), ``last`` (newest date); None when it is not pushed down."""
        agg = self.pushed_records(name)
        if agg is None:
            return None
        f = agg.frame
        if self.scope != WHOLE_SCOPE:
            f = f.filter(pl.col("site") == self.scope)
        return f.select(MONTH, "n", "last")

    def __post_init__(self) -> None:
        self.section_order = {e.id: i for i, e in enumerate(self.cmap.entries)}
        registry = kpis.REGISTRY
        for e in self.cmap.entries:
            ids = [k for k in e.kpis if k in registry and self.cmap.listed(k)]
            ids += [
                k
                for k, d in registry.items()
                if _clause_key(d.iso_clause) in {_clause_key(c) for c in e.kpi_clauses}
                and k not in ids
                and k not in self.kpi_section
                and self.cmap.listed(k)
            ]
            for k in ids:
                self.kpi_section.setdefault(k, e.id)
            if ids:
                self.section_kpis[e.id] = tuple(ids)

    @property
    def max_rows(self) -> int:
        return self.config.review.max_rows

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scope itself, then (for the whole organisation) each site."""
        if self.scope == WHOLE_SCOPE:
            return (WHOLE_SCOPE, *self.config.sites)
        return (self.scope,)

    def bounded(
        self,
        table: Table,
        *,
        sheet: str,
        order: str,
        pinned: Iterable[int] = (),
    ) -> Table:
        """``table`` (rows already ranked) cut to ``max_rows`` ranked rows plus its ``pinned`` rows.

        ``pinned`` are indices of rows always shown in place (a total row); every
        row goes to the register ``sheet`` (:attr:`registers`).
        """
        ids = [c.id for c in table.columns]
        self.registers[table.id] = (
            pl.DataFrame(
                [dict(zip(ids, r, strict=True)) for r in table.rows],
                infer_schema_length=None,
                strict=False,
            )
            if table.rows
            else pl.DataFrame(schema=dict.fromkeys(ids, pl.String))
        )
        keep = set(pinned)
        ranked = [i for i in range(len(table.rows)) if i not in keep][: self.max_rows]
        shown = sorted(keep | set(ranked))
        return dataclasses.replace(
            table,
            rows=tuple(table.rows[i] for i in shown),
            order=order,
            more=len(table.rows) - len(shown),
            register=sheet,
        )

    def frame(self, name: str, *, listed: bool = False) -> pl.DataFrame | None:
        """The rows of ``name`` in the scope; ``listed``: of a pushed-down dataset, the rows
        the pack lists (:attr:`listed`) when its rows are not here."""
        f = self.data.get(name)
        if f is None and listed:
            f = self.listed.get(name)
        if f is None:
            return None
        if self.scope != WHOLE_SCOPE and "site" in f.columns:
            f = f.filter(pl.col("site") == self.scope)
        return f

    def target(self, kpi_id: str) -> float | None:
        t = self.config.kpis.targets.get(kpi_id)
        if t is not None:
            return float(t)
        obj = self.data.get("objectives")
        if obj is not None and "kpi" in obj.columns and obj.height:
            hit = obj.filter(pl.col("kpi") == kpi_id)
            if hit.height:
                return as_float(hit.sort("objective_id")["target"][0])
        return None


def _clause_key(clause: str) -> str:
    return clause.replace(" ", "").replace(")", "").lower()
