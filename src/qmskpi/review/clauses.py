"""Clause maps: which sections the pack has, in which order, and what evidences each.

A :class:`ClauseMap` lists the sections of the pack (ISO 9001:2015 9.3.2 a)-f)
and 9.3.3, plus cover, summary, coverage and appendix) as :class:`ClauseEntry`
rows. Maps are data: TOML files shipped in ``qmskpi/review/clause_maps/``
(:data:`STANDARDS`, picked by ``[review] standard`` in ``qmskpi.toml``) or a
file of the user's own (``[review] clause_map``), read and checked by
:func:`load_clause_map`. :data:`CLAUSE_MAPS` holds the shipped maps by id;
:func:`register_clause_map` adds one.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

from qmskpi import kpis
from qmskpi.config import Config
from qmskpi.datasets import DATASETS
from qmskpi.errors import ConfigError, QmsKpiError, did_you_mean
from qmskpi.review.model import AnalystKey, Role


@dataclass(frozen=True)
class ClauseEntry:
    """One section of the pack, as the clause map defines it.

    ``kpi_clauses`` pulls every KPI whose :attr:`kpis.KpiDef.iso_clause` is one
    of them (registry order); ``kpis`` names extra or preferred ones first.
    ``datasets`` are the records that evidence the input in the coverage matrix
    (``coverage_rule`` ``"all"``: the worst dataset decides; ``"any"``: the best).
    ``analyst`` names the analyst markdown input (``config.analyst_inputs``).
    """

    id: str
    ref: str
    title: str
    wording: str
    role: Role = "input"
    datasets: tuple[str, ...] = ()
    kpi_clauses: tuple[str, ...] = ()
    kpis: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    analyst: AnalystKey | None = None
    derived: bool = False
    """Evidenced by the analysis itself (f: opportunities suggested from signals)."""
    coverage_rule: Literal["all", "any"] = "all"
    page_break: bool = False
    trends: bool = False
    """This section charts the SPC series of every measure (9.3.2 c) 5))."""


@dataclass(frozen=True)
class ClauseMap:
    id: str
    title: str
    entries: tuple[ClauseEntry, ...]
    headline_kpis: tuple[str, ...]
    """KPIs shown as tiles in the executive summary, in this order (when computed)."""
    unlisted: tuple[str, ...] = ()
    """KPI id prefixes shown by a table instead of the KPI lists (e.g. ageing buckets)."""
    untrended: tuple[str, ...] = ()
    """KPI id prefixes listed with their value but not charted (breakdowns of a charted KPI)."""
    standard: str = ""
    """The name ``[review] standard`` picks it by (``"ISO 9001:2015"``)."""
    edition: str = ""
    """The edition of the standard the map describes (amendments included)."""
    provisional: bool = False
    """Taken from a draft: every page of the pack says so."""

    def listed(self, kpi_id: str) -> bool:
        return not kpi_id.startswith(self.unlisted) if self.unlisted else True

    def trended(self, kpi_id: str) -> bool:
        return self.listed(kpi_id) and not (self.untrended and kpi_id.startswith(self.untrended))

    def entry(self, section_id: str) -> ClauseEntry:
        for e in self.entries:
            if e.id == section_id:
                return e
        raise QmsKpiError(
            f"no section {section_id!r} in clause map {self.id!r}"
            f"{did_you_mean(section_id, [e.id for e in self.entries])}"
        )

    def section_of_table(self, table_id: str) -> str:
        """The section showing ``table_id`` (else the derived section, f), or ``""``."""
        for e in self.entries:
            if table_id in e.tables:
                return e.id
        return next((e.id for e in self.entries if e.derived), "")


# ============================================================== map files

TABLES: tuple[str, ...] = (
    "review_actions",
    "critical_complaints",
    "complaint_ageing",
    "complaints_by_category",
    "objective_attainment",
    "defect_pareto",
    "overdue_capa",
    "overdue_findings",
    "overdue_actions",
    "site_signals",
    "findings_by_type",
    "supplier_scorecard",
    "decisions",
    "coverage",
    "ledger",
    "failed_rules",
    "kpi_definitions",
    "method_notes",
)
"""Table ids a map may place in a section (the builders in ``tables`` and ``appendix``)."""

STANDARDS: dict[str, str] = {
    "ISO 9001:2015": "iso9001-2015.toml",
    "ISO 9001:2026": "iso9001-2026-provisional.toml",
}
"""Shipped maps by the name ``[review] standard`` takes, and their file in ``clause_maps/``."""

_MAP_KEYS = {"id", "standard", "edition", "title", "provisional", "entries"}
_MAP_KEYS |= {"headline_kpis", "unlisted", "untrended"}
_ENTRY_KEYS = {"id", "ref", "title", "wording"} | {
    "role",
    "datasets",
    "kpi_clauses",
    "kpis",
    "tables",
    "analyst",
    "derived",
    "coverage_rule",
    "page_break",
    "trends",
}


class _Reader:
    """Checked reads from one table of a map file; errors name the file and the key."""

    def __init__(self, data: Mapping[str, Any], path: Path, prefix: str, allowed: set[str]):
        self.data, self.path, self.prefix = data, path, prefix
        section = data.get("id") if prefix else None
        self.where = (
            f" (the [[entries]] table with id {section!r})" if isinstance(section, str) else ""
        )
        for name in data:
            if name not in allowed:
                raise self.err(
                    name,
                    f"unknown key{did_you_mean(name, allowed)}; allowed: "
                    f"{', '.join(sorted(allowed))}",
                )

    def err(self, name: str, message: str) -> ConfigError:
        return ConfigError(message + self.where, path=self.path, key=f"{self.prefix}{name}")

    def text(self, name: str, default: str | None = None) -> str:
        if name not in self.data:
            if default is None:
                raise self.err(name, "is required")
            return default
        value = self.data[name]
        if not isinstance(value, str):
            raise self.err(name, f"must be a string, got {type(value).__name__}")
        return value

    def flag(self, name: str) -> bool:
        value = self.data.get(name, False)
        if not isinstance(value, bool):
            raise self.err(name, f"must be true or false, got {value!r}")
        return value

    def names(self, name: str, known: Mapping[str, Any] | tuple[str, ...] = ()) -> tuple[str, ...]:
        """A list of strings; each one of ``known`` when ``known`` is given."""
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.err(name, "must be a list of strings")
        for v in value if known else ():
            if v not in known:
                raise self.err(name, f"unknown {v!r}{did_you_mean(v, known)}")
        return tuple(value)

    def choice(self, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
        if name not in self.data:
            return default
        value = self.text(name)
        if value not in choices:
            raise self.err(
                name,
                f"must be one of {', '.join(choices)}, got {value!r}{did_you_mean(value, choices)}",
            )
        return value


def load_clause_map(path: str | Path) -> ClauseMap:
    """Read and check a clause-map TOML file; errors name the file and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the clause map: {exc.strerror or exc}", path=path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None
    top = _Reader(data, path, "", _MAP_KEYS)
    raw_entries = data.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise top.err("entries", "must be a list of [[entries]] tables, at least one")
    entries = tuple(_entry(e, path, i) for i, e in enumerate(raw_entries))
    seen: set[str] = set()
    for i, e in enumerate(entries):
        if e.id in seen:
            raise top.err(f"entries[{i}].id", f"section id {e.id!r} is used twice")
        seen.add(e.id)
    missing = [s for s in PACK_SECTIONS if s not in seen]
    if missing:
        raise top.err(
            "entries",
            f"no section with id {', '.join(map(repr, missing))}: the packaged pack shows "
            f"the sections {', '.join(PACK_SECTIONS)}, so a map defines each of them "
            "(with its own ref, title and evidence) and may add more",
        )
    provisional = data.get("provisional", False)
    if not isinstance(provisional, bool):
        raise top.err("provisional", f"must be true or false, got {provisional!r}")
    return ClauseMap(
        id=top.text("id"),
        title=top.text("title"),
        entries=entries,
        headline_kpis=top.names("headline_kpis", kpis.REGISTRY),
        unlisted=top.names("unlisted"),
        untrended=top.names("untrended"),
        standard=top.text("standard"),
        edition=top.text("edition"),
        provisional=provisional,
    )


def _entry(raw: Any, path: Path, i: int) -> ClauseEntry:
    prefix = f"entries[{i}]."
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a table", path=path, key=f"entries[{i}]")
    r = _Reader(raw, path, prefix, _ENTRY_KEYS)
    role = r.choice("role", get_args(Role), "input")
    analyst = r.choice("analyst", get_args(AnalystKey), None)
    rule = r.choice("coverage_rule", ("all", "any"), "all")
    return ClauseEntry(
        id=r.text("id"),
        ref=r.text("ref", ""),
        title=r.text("title"),
        wording=r.text("wording", ""),
        role=role,  # type: ignore[arg-type]
        datasets=r.names("datasets", DATASETS),
        kpi_clauses=r.names("kpi_clauses"),
        kpis=r.names("kpis", kpis.REGISTRY),
        tables=r.names("tables", TABLES),
        analyst=analyst,  # type: ignore[arg-type]
        derived=r.flag("derived"),
        coverage_rule=rule,  # type: ignore[arg-type]
        page_break=r.flag("page_break"),
        trends=r.flag("trends"),
    )


def _shipped(file_name: str) -> ClauseMap:
    resource = importlib.resources.files("qmskpi.review") / "clause_maps" / file_name
    return load_clause_map(Path(str(resource)))


PACK_SECTIONS: tuple[str, ...] = (
    "cover",
    "summary",
    *("a", "b", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "d", "e", "f"),
    "decisions",
    "coverage",
    "appendix",
)
"""Section ids the packaged ``management_review`` notebook shows, in its order."""

_SHIPPED: dict[str, ClauseMap] = {name: _shipped(f) for name, f in STANDARDS.items()}

ISO9001_2015 = _SHIPPED["ISO 9001:2015"]
"""ISO 9001:2015 with Amd 1:2024, the default map (``clause_maps/iso9001-2015.toml``)."""

CLAUSE_MAPS: dict[str, ClauseMap] = {m.id: m for m in _SHIPPED.values()}
"""Known clause maps by id: the shipped ones and any added by :func:`register_clause_map`."""


def register_clause_map(clause_map: ClauseMap) -> None:
    """Add a clause map under its id."""
    ids = [e.id for e in clause_map.entries]
    if len(set(ids)) != len(ids):
        raise QmsKpiError(f"clause map {clause_map.id!r} lists a section id twice")
    CLAUSE_MAPS[clause_map.id] = clause_map


def clause_map(name: str) -> ClauseMap:
    """A known clause map by id (``"iso9001_2015"``) or by standard (``"ISO 9001:2015"``)."""
    if name in _SHIPPED:
        return _SHIPPED[name]
    try:
        return CLAUSE_MAPS[name]
    except KeyError:
        raise QmsKpiError(
            f"unknown clause map {name!r}{did_you_mean(name, [*CLAUSE_MAPS, *STANDARDS])}; "
            f"known: {', '.join([*STANDARDS, *CLAUSE_MAPS])}"
        ) from None


@cache
def _custom(path: Path, mtime_ns: int) -> ClauseMap:
    return load_clause_map(path)


def clause_map_for(config: Config) -> ClauseMap:
    """The map ``qmskpi.toml`` picks: ``[review] clause_map`` (a file) or ``[review] standard``."""
    rv = config.review
    if rv.clause_map is not None:
        path = config.resolve(rv.clause_map)
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            raise ConfigError(
                f"clause map file {path} not found", path=config.path, key="review.clause_map"
            ) from None
        return _custom(path, stamp)
    if rv.standard not in _SHIPPED:
        raise ConfigError(
            f"unknown standard {rv.standard!r}{did_you_mean(rv.standard, STANDARDS)}; shipped: "
            f"{', '.join(map(repr, STANDARDS))}; or point [review] clause_map at a map file "
            "of your own",
            path=config.path,
            key="review.standard",
        )
    return _SHIPPED[rv.standard]
