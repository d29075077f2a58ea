"""``qmskpi.toml``: organisation, scope, sources and their mappings, KPI settings, outputs.

The file is checked on load: an unknown key, a wrong type or a missing source
gives one :class:`~qmskpi.errors.ConfigError` naming the file and the key, with
a did-you-mean hint. Relative paths are relative to the config file's folder.

A minimal file::

    [organisation]
    name = "Acme Components Ltd"

    [sources.complaints]
    path = "complaints.csv"
    date_formats = { received_date = "%d/%m/%Y", closed_date = "%d/%m/%Y" }

See ``docs/configuration.md`` for every key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

from qmskpi import _reprs
from qmskpi.datasets import DATASETS, SEVERITIES
from qmskpi.errors import ConfigError, ScopeError, did_you_mean
from qmskpi.periods import Granularity

FileFormat = Literal["csv", "parquet", "excel"]
PdfPolicy = Literal["required", "optional", "off"]
"""``[outputs] pdf``: no browser fails the run / publishes without the PDF (the manifest
says why) / never print. ``true`` means ``"required"``, ``false`` means ``"off"``."""
PDF_POLICIES: tuple[PdfPolicy, ...] = ("required", "optional", "off")
ConstantValue = str | int | float | bool

SITE_REGEX = r"[^\W_][\w .,'’&()+-]{0,63}"
"""What a site name may look like, as a regex both Python and polars read (anchor it).

1-64 characters: letters and digits of any script, spaces and ``_ . , ' ’ & ( ) + -``,
starting with a letter or digit. The same rule holds for the sites listed in
``[organisation] sites`` and for every ``site`` value read from a source, whether or
not a site list is configured. Output paths use :func:`qmskpi.archive.scope_slug`,
never the name itself.
"""

SITE_PATTERN = re.compile(SITE_REGEX)
""":data:`SITE_REGEX` compiled (use ``fullmatch``)."""

SITE_RULE_TEXT = (
    "1-64 letters or digits (any script), spaces and _ . , ' & ( ) + -, "
    "starting with a letter or digit"
)
"""The site-name rule in words, for error messages."""

WHOLE_SCOPE = "all"
"""The scope id of the whole organisation (every site together)."""


@dataclass(frozen=True)
class DatabaseConfig:
    """A database that SQL sources read from.

    ``url`` may be given in the file only when it carries no password (for
    example ``sqlite:///qms.db`` or ``duckdb:///qms.duckdb``); credentials come
    from the environment variable named by ``url_env``.
    """

    name: str
    url: str | None = None
    url_env: str | None = None

    def resolve_url(self, *, config_path: Path | None = None) -> str:
        if self.url_env:
            value = os.environ.get(self.url_env)
            if not value:
                raise ConfigError(
                    f"environment variable {self.url_env} is not set",
                    path=config_path,
                    key=f"databases.{self.name}.url_env",
                )
            return value
        assert self.url is not None
        return self.url


@dataclass(frozen=True)
class SourceConfig:
    """Where one dataset comes from and how its columns map onto the canonical names."""

    dataset: str
    path: str | None = None
    """File path or glob, relative to the config file."""
    format: FileFormat | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    quote_char: str = '"'
    sheet: str | int | None = None
    header_row: int = 1
    """1-based row that holds the header; rows above it (a title block) are skipped."""
    has_header: bool = True
    skip_footer_rows: int = 0
    columns: Mapping[str, str] = field(default_factory=dict)
    """canonical name -> source header."""
    positions: Mapping[str, int] = field(default_factory=dict)
    """canonical name -> 1-based column position (files without a usable header)."""
    date_formats: Mapping[str, str] = field(default_factory=dict)
    """canonical date column -> strptime format; ``%Y%m%d`` for YYYYMMDD integers."""
    value_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """canonical column -> {source value: canonical value}."""
    null_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """canonical column -> source values that mean 'no value' (e.g. placeholder dates)."""
    na_values: tuple[str, ...] = ("",)
    """Source values read as null in every column."""
    true_values: tuple[str, ...] = ("true", "yes", "y", "1", "t")
    false_values: tuple[str, ...] = ("false", "no", "n", "0", "f")
    constants: Mapping[str, ConstantValue] = field(default_factory=dict)
    """canonical column -> one value for every row (e.g. the site of a one-site export)."""
    ignore_columns: tuple[str, ...] = ()
    """Source headers present in the file that qmskpi should not read."""
    surrogate_key: bool = False
    """No ID column in the export: derive a stable key from the row's content."""
    derive: Mapping[str, str] = field(default_factory=dict)
    """canonical name -> SQL expression over the source's columns (``pl.sql_expr``)."""
    defaults: Mapping[str, ConstantValue] = field(default_factory=dict)
    """canonical name -> value for a blank cell of that field."""
    where: str | None = None
    """SQL condition over the source's columns: rows where it is not true are excluded."""
    drop_duplicates: bool = True
    """Rows identical in every field are kept once (the others counted as ``duplicate``)."""
    database: str | None = None
    query: str | None = None
    """SQL with bound parameters :period_start, :period_end, :site."""
    coverage_start: str | None = None
    """First month (``YYYY-MM``) the source covers completely: from then on a month
    with no rows is a zero, not a gap (trends)."""
    zero_means_zero: bool = False
    """The source covers every month from its first record on: no rows is a zero."""

    @property
    def kind(self) -> Literal["file", "sql"]:
        return "sql" if self.query is not None else "file"


@dataclass(frozen=True)
class ScorecardConfig:
    """Supplier scorecard: a weighted score out of 100 and A/B/C rating thresholds."""

    otd_weight: float = 0.5
    quality_weight: float = 0.5
    ppm_zero_score: float = 10_000.0
    """PPM at which the quality score reaches 0 (linear from 100 at 0 ppm)."""
    rating_a_min: float = 90.0
    rating_b_min: float = 75.0


@dataclass(frozen=True)
class KpiConfig:
    complaint_close_target_days: int = 30
    complaint_close_target_days_by_severity: Mapping[str, int] = field(default_factory=dict)
    """Severity -> close target in days; a severity not listed uses complaint_close_target_days."""
    supplier_otd_tolerance_days: int = 0
    supplier_otd_early_days: int = 7
    """A delivery received more than this many days before its promised date is not on time
    (``supplier_otd_due_share``)."""
    repeat_window_days: int = 90
    finding_due_days: int = 60
    """Due date of an audit finding with no due date of its own: audit date + this."""
    scorecard: ScorecardConfig = field(default_factory=ScorecardConfig)
    targets: Mapping[str, float] = field(default_factory=dict)
    """KPI id -> target, for KPIs that no objective targets."""
    max_quarantined_share: float = 0.10
    """A KPI is struck out (unsound) when more than this share (0-1) of the rows of one of
    its datasets was set aside by validation; below it the KPI is shown with the count."""


@dataclass(frozen=True)
class ReviewConfig:
    granularity: Granularity = "month"
    trend_months: int = 24
    as_of: date | None = None
    standard: str = "ISO 9001:2015"
    """The shipped clause map the pack follows (``qmskpi.review.clauses.STANDARDS``)."""
    clause_map: str | None = None
    """A clause-map TOML file of your own (relative to the config file), instead of ``standard``."""
    stale_after_days: int = 45
    """An input whose newest record is older than this at period end is 'stale'."""
    max_rows: int = 10
    """Rows each list and per-site table of the pack shows; the rest are in the registers."""


@dataclass(frozen=True)
class AnalystInputs:
    """Markdown files written by the quality team for inputs the data cannot give."""

    changes: str | None = None
    """9.3.2 b) changes in external and internal issues."""
    resources: str | None = None
    """9.3.2 d) adequacy of resources."""
    risks: str | None = None
    """9.3.2 e) effectiveness of actions on risks and opportunities."""


@dataclass(frozen=True)
class RuleOverride:
    """``[contracts.<dataset>.<rule_id>]``: a contract rule's severity or ``mostly``, changed."""

    severity: Literal["error", "warn"] | None = None
    mostly: float | None = None


@dataclass(frozen=True)
class ContractsConfig:
    """``[contracts]``: your own contracts folder and per-rule overrides."""

    dir: str | None = None
    """Folder of YAML contracts, relative to the config file; a dataset without a file
    there uses the shipped contract."""
    overrides: Mapping[str, Mapping[str, RuleOverride]] = field(default_factory=dict)
    """dataset -> rule id -> override (rule ids are checked when the contracts load)."""


@dataclass(frozen=True)
class OutputConfig:
    reports_dir: str = "reports"
    pdf: PdfPolicy = "required"
    xlsx: bool = True
    notebook_timeout_s: int = 600
    browser_timeout_s: int = 120


@dataclass(frozen=True)
class Config:
    organisation: str
    sites: tuple[str, ...]
    sources: Mapping[str, SourceConfig]
    databases: Mapping[str, DatabaseConfig] = field(default_factory=dict)
    kpis: KpiConfig = field(default_factory=KpiConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    analyst_inputs: AnalystInputs = field(default_factory=AnalystInputs)
    outputs: OutputConfig = field(default_factory=OutputConfig)
    contracts: ContractsConfig = field(default_factory=ContractsConfig)
    path: Path | None = None
    """The file this config was read from (None when built in code)."""

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(relative)
        return p if p.is_absolute() else self.base_dir / p

    @property
    def reports_dir(self) -> Path:
        return self.resolve(self.outputs.reports_dir)

    @property
    def scopes(self) -> tuple[str, ...]:
        """Every scope a run renders: the whole organisation, then each site."""
        return (WHOLE_SCOPE, *self.sites)

    def check_scope(self, scope: str) -> str:
        """Return ``scope`` if it is the whole organisation or a configured site."""
        if scope in self.scopes:
            return scope
        raise ScopeError(
            f"unknown scope {scope!r}{did_you_mean(scope, self.scopes)}; "
            f"known: {', '.join(self.scopes)}",
            path=self.path,
            key="organisation.sites",
        )

    def with_reports_dir(self, reports_dir: Path) -> Config:
        """The same config writing its packs to ``reports_dir`` (CLI ``--output``)."""
        outputs = replace(self.outputs, reports_dir=str(Path(reports_dir).resolve()))
        return replace(self, outputs=outputs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view (for the manifest)."""
        d = asdict(self)
        d["path"] = str(self.path) if self.path else None
        out: dict[str, Any] = _jsonable(d)
        return out

    def digest(self) -> str:
        """sha256 of the canonical JSON form of this config (path excluded)."""
        d = self.to_dict()
        d.pop("path", None)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def _summary(self) -> list[tuple[str, object]]:
        return [
            ("file", _reprs.tail(self.path) if self.path else "built in code"),
            ("sites", _reprs.names(self.sites)),
            ("sources", _reprs.names(sorted(self.sources))),
            ("granularity", self.review.granularity),
            ("reports", _reprs.tail(self.reports_dir)),
        ]

    def __repr__(self) -> str:
        where = f"from {_reprs.tail(self.path)}" if self.path else "built in code"
        return (
            f"<Config {_reprs.clip(self.organisation, 40)!r} {where}: "
            f"{_reprs.count(len(self.sites), 'site')}, {_reprs.count(len(self.sources), 'source')}>"
        )

    def _repr_html_(self) -> str:
        return _reprs.html_summary(f"Config: {self.organisation}", self._summary())


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --------------------------------------------------------------------------- loading


class _Reader:
    """Typed access to one TOML table, remembering the dotted key for errors."""

    def __init__(self, table: Mapping[str, Any], key: str, path: Path | None):
        self.table = table
        self.key = key
        self.path = path

    def _k(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def err(self, name: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, key=self._k(name))

    def only(self, allowed: set[str]) -> None:
        for name in self.table:
            if name not in allowed:
                raise ConfigError(
                    f"unknown key{did_you_mean(name, allowed)}; allowed here: "
                    f"{', '.join(sorted(allowed))}",
                    path=self.path,
                    key=self._k(name),
                )

    def sub(self, name: str) -> _Reader:
        value = self.table.get(name, {})
        if not isinstance(value, Mapping):
            raise self.err(name, f"must be a table, got {type(value).__name__}")
        return _Reader(value, self._k(name), self.path)

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        if name not in self.table:
            return default
        value = self.table[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.err(name, f"must be {_names(kinds)}, got a boolean")
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kinds):
            raise self.err(name, f"must be {_names(kinds)}, got {type(value).__name__} {value!r}")
        return value

    def str_list(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(name, list, None)
        if value is None:
            return default
        if not all(isinstance(v, str) for v in value):
            raise self.err(name, "must be a list of strings")
        return tuple(value)

    def str_map(self, name: str) -> dict[str, str]:
        table = self.get(name, dict, {})
        out: dict[str, str] = {}
        for k, v in table.items():
            if not isinstance(v, str):
                raise ConfigError(
                    f"must be a string, got {v!r}", path=self.path, key=f"{self._k(name)}.{k}"
                )
            out[str(k)] = v
        return out


def _names(kinds: tuple[type, ...]) -> str:
    words = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(words.get(k, k.__name__) for k in kinds)


def _check_columns(r: _Reader, name: str, keys: Any, dataset: str) -> None:
    known = set(DATASETS[dataset].field_names)
    for col in keys:
        if col not in known:
            raise ConfigError(
                f"{col!r} is not a field of dataset '{dataset}'{did_you_mean(col, known)}; "
                f"fields: {', '.join(DATASETS[dataset].field_names)}",
                path=r.path,
                key=f"{r._k(name)}.{col}",
            )


_SOURCE_KEYS = {
    "path",
    "format",
    "encoding",
    "delimiter",
    "quote_char",
    "sheet",
    "header_row",
    "has_header",
    "skip_footer_rows",
    "columns",
    "positions",
    "date_formats",
    "value_maps",
    "null_values",
    "na_values",
    "true_values",
    "false_values",
    "constants",
    "ignore_columns",
    "surrogate_key",
    "derive",
    "defaults",
    "where",
    "drop_duplicates",
    "database",
    "query",
    "coverage_start",
    "zero_means_zero",
}


def _positions(r: _Reader, dataset: str) -> dict[str, int]:
    """A source's ``positions`` table: dataset column -> 1-based column number."""
    positions_raw = r.get("positions", dict, {})
    positions: dict[str, int] = {}
    for k, v in positions_raw.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(
                "must be a 1-based column number", path=r.path, key=f"{r._k('positions')}.{k}"
            )
        positions[k] = v
    _check_columns(r, "positions", positions, dataset)
    return positions


def _date_formats(r: _Reader, dataset: str) -> dict[str, str]:
    """A source's ``date_formats`` table: date field -> strptime format."""
    date_formats = r.str_map("date_formats")
    _check_columns(r, "date_formats", date_formats, dataset)
    for col, date_fmt in date_formats.items():
        key = f"{r._k('date_formats')}.{col}"
        if DATASETS[dataset].field(col).type != "date":
            raise ConfigError(f"{col!r} is not a date field", path=r.path, key=key)
        problem = date_format_problem(date_fmt)
        if problem:
            raise ConfigError(problem, path=r.path, key=key)
    return date_formats


def _check_scalars(r: _Reader, **tables: Mapping[str, Any]) -> None:
    """Values in ``constants`` / ``defaults`` must be a string, number or boolean."""
    for name, table in tables.items():
        for k, v in table.items():
            if not isinstance(v, str | int | float | bool):
                raise ConfigError(
                    "must be a string, number or boolean", path=r.path, key=f"{r._k(name)}.{k}"
                )


def _source(r: _Reader, dataset: str) -> SourceConfig:
    r.only(_SOURCE_KEYS)
    path = r.get("path", str)
    query = r.get("query", str)
    if (path is None) == (query is None):
        raise r.err("path", "give exactly one of 'path' (a file) or 'query' (SQL)")
    fmt = r.get("format", str)
    if fmt is not None and fmt not in ("csv", "parquet", "excel"):
        raise r.err(
            "format",
            f"must be csv, parquet or excel{did_you_mean(fmt, ['csv', 'parquet', 'excel'])}",
        )
    header_row = r.get("header_row", int, 1)
    if header_row < 1:
        raise r.err("header_row", "is 1-based: the first row of the file is 1")
    columns = r.str_map("columns")
    _check_columns(r, "columns", columns, dataset)
    positions = _positions(r, dataset)
    date_formats = _date_formats(r, dataset)
    derive = r.str_map("derive")
    _check_columns(r, "derive", derive, dataset)
    for col, text in derive.items():
        _check_sql(r, f"derive.{col}", text)
    where = r.get("where", str)
    if where is not None:
        _check_sql(r, "where", where)
    defaults_raw = r.get("defaults", dict, {})
    _check_columns(r, "defaults", defaults_raw, dataset)
    vm = r.sub("value_maps")
    value_maps = {col: vm.str_map(col) for col in vm.table}
    _check_columns(r, "value_maps", value_maps, dataset)
    nv = r.sub("null_values")
    null_values = {col: nv.str_list(col) for col in nv.table}
    _check_columns(r, "null_values", null_values, dataset)
    constants_raw = r.get("constants", dict, {})
    _check_columns(r, "constants", constants_raw, dataset)
    _check_scalars(r, constants=constants_raw, defaults=defaults_raw)
    database = r.get("database", str)
    if query is not None and database is None:
        raise r.err(
            "database", "a 'query' source needs 'database', the name of a [databases.NAME] table"
        )
    sheet = r.get("sheet", (str, int))
    coverage_start = r.get("coverage_start", str)
    if coverage_start is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", coverage_start):
        raise r.err("coverage_start", f"must be a month YYYY-MM, got {coverage_start!r}")
    return SourceConfig(
        dataset=dataset,
        path=path,
        format=fmt,
        encoding=r.get("encoding", str, "utf-8"),
        delimiter=r.get("delimiter", str, ","),
        quote_char=r.get("quote_char", str, '"'),
        sheet=sheet,
        header_row=header_row,
        has_header=r.get("has_header", bool, True),
        skip_footer_rows=r.get("skip_footer_rows", int, 0),
        columns=columns,
        positions=positions,
        date_formats=date_formats,
        value_maps=value_maps,
        null_values=null_values,
        na_values=r.str_list("na_values", ("",)),
        true_values=r.str_list("true_values", SourceConfig.true_values),
        false_values=r.str_list("false_values", SourceConfig.false_values),
        constants=dict(constants_raw),
        ignore_columns=r.str_list("ignore_columns"),
        surrogate_key=r.get("surrogate_key", bool, False),
        derive=derive,
        defaults=dict(defaults_raw),
        where=where,
        drop_duplicates=r.get("drop_duplicates", bool, True),
        database=database,
        query=query,
        coverage_start=coverage_start,
        zero_means_zero=r.get("zero_means_zero", bool, False),
    )


def _check_sql(r: _Reader, name: str, text: str) -> None:
    """A derive expression or ``where`` condition must parse as a polars SQL expression.

    Column names are checked later, against the file's header.
    """
    import polars as pl

    if not text.strip():
        raise r.err(name, "is empty: give a SQL expression over the source's columns")
    try:
        pl.sql_expr(text)
    except Exception as exc:  # polars raises SQLInterfaceError / SQLSyntaxError / others
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise r.err(name, f"not a SQL expression polars can read: {detail} (in {text!r})") from None


_DATE_DIRECTIVES = {
    "year": set("YyGC"),
    "month": set("mbBh"),
    "day": set("de"),
}
_KNOWN_DIRECTIVES = set("YyCGmbBhdejaAuwHIMSfpzZTFDVU%")


def date_format_problem(fmt: str) -> str | None:
    """Why ``fmt`` cannot be a date format (strptime syntax), or None when it can.

    ``dd/mm/yyyy`` (no ``%`` directives) and formats with no year, month and
    day are refused: they would quarantine every row.
    """
    directives = re.findall(r"%-?(.)", fmt)
    if not directives:
        example = (
            re.sub(r"(?i)yyyy", "%Y", fmt)
            .replace("yy", "%y")
            .replace("YY", "%y")
            .replace("mm", "%m")
            .replace("MM", "%m")
            .replace("dd", "%d")
            .replace("DD", "%d")
        )
        hint = f" (did you mean {example!r}?)" if "%" in example else ""
        return (
            f"{fmt!r} is not a date format: use strptime directives such as %d/%m/%Y "
            f"(%d day, %m month, %Y four-digit year){hint}"
        )
    unknown = sorted({d for d in directives if d not in _KNOWN_DIRECTIVES})
    if unknown:
        return f"{fmt!r} uses unknown directive(s) {', '.join('%' + d for d in unknown)}"
    found = set(directives)
    if "F" in found or "D" in found or "j" in found:
        return None
    lacking = [part for part, chars in _DATE_DIRECTIVES.items() if not found & chars]
    if lacking:
        return f"{fmt!r} has no {' and no '.join(lacking)}: a date needs a year, a month and a day"
    return None


_PASSWORD_IN_URL = re.compile(r"^[a-z0-9+]+://[^/@:]*:[^/@]+@", re.IGNORECASE)


def from_dict(data: Mapping[str, Any], *, path: Path | None = None) -> Config:
    """Build and check a :class:`Config` from parsed TOML.

    Tables are checked in file order (organisation, databases, sources, kpis,
    review, analyst_inputs, outputs, contracts): the first error found is raised.
    """
    root = _Reader(data, "", path)
    root.only(
        {
            "organisation",
            "sources",
            "databases",
            "kpis",
            "review",
            "analyst_inputs",
            "outputs",
            "contracts",
        }
    )
    name, sites = _organisation(root.sub("organisation"))
    databases = _databases(root.sub("databases"))
    sources = _sources(root, databases)
    kpis = _kpis(root.sub("kpis"))
    review = _review(root.sub("review"))
    ai = root.sub("analyst_inputs")
    ai.only({"changes", "resources", "risks"})
    analyst = AnalystInputs(ai.get("changes", str), ai.get("resources", str), ai.get("risks", str))
    outputs = _outputs(root.sub("outputs"))
    return Config(
        organisation=name,
        sites=sites,
        sources=sources,
        databases=databases,
        kpis=kpis,
        review=review,
        analyst_inputs=analyst,
        outputs=outputs,
        contracts=_contracts(root.sub("contracts")),
        path=path,
    )


def _organisation(org: _Reader) -> tuple[str, tuple[str, ...]]:
    """The ``[organisation]`` table: its name (required) and its distinct site names."""
    org.only({"name", "sites"})
    name = org.get("name", str)
    if not name:
        raise org.err("name", "is required: the organisation's name appears on the pack's cover")
    sites = org.str_list("sites")
    for s in sites:
        if not SITE_PATTERN.fullmatch(s) or s.casefold() == WHOLE_SCOPE:
            raise org.err(
                "sites",
                f"site name {s!r} must be {SITE_RULE_TEXT} "
                f"(and not '{WHOLE_SCOPE}', which means the whole organisation)",
            )
    if len(set(sites)) != len(sites):
        raise org.err("sites", "lists a site twice")
    return name, sites


def _databases(dbs: _Reader) -> dict[str, DatabaseConfig]:
    """The ``[databases.NAME]`` tables: a URL without credentials, or the variable holding one."""
    databases: dict[str, DatabaseConfig] = {}
    for db_name in dbs.table:
        d = dbs.sub(db_name)
        d.only({"url", "url_env"})
        url, url_env = d.get("url", str), d.get("url_env", str)
        if (url is None) == (url_env is None):
            raise d.err("url", "give exactly one of 'url' (no credentials) or 'url_env'")
        if url is not None and _PASSWORD_IN_URL.match(url):
            raise d.err(
                "url",
                "carries a password; put the URL in an environment variable and name it in 'url_env'",
            )
        databases[db_name] = DatabaseConfig(db_name, url, url_env)
    return databases


def _sources(root: _Reader, databases: Mapping[str, DatabaseConfig]) -> dict[str, SourceConfig]:
    """The ``[sources.DATASET]`` tables (at least one), each naming a known dataset and database."""
    path = root.path
    srcs = root.sub("sources")
    for ds in srcs.table:
        if ds not in DATASETS:
            raise srcs.err(
                ds, f"unknown dataset{did_you_mean(ds, DATASETS)}; known: {', '.join(DATASETS)}"
            )
    sources = {ds: _source(srcs.sub(ds), ds) for ds in srcs.table}
    for ds, src in sources.items():
        if src.database is not None and src.database not in databases:
            raise ConfigError(
                f"no [databases.{src.database}] table{did_you_mean(src.database, databases)}",
                path=path,
                key=f"sources.{ds}.database",
            )
    if not sources:
        raise root.err("sources", "no [sources.DATASET] table: name at least one dataset to read")
    return sources


def _kpis(k: _Reader) -> KpiConfig:
    """The ``[kpis]`` table with its ``scorecard``, ``targets`` and per-severity sub-tables."""
    k.only(
        {
            "complaint_close_target_days",
            "complaint_close_target_days_by_severity",
            "supplier_otd_tolerance_days",
            "supplier_otd_early_days",
            "repeat_window_days",
            "finding_due_days",
            "scorecard",
            "targets",
            "max_quarantined_share",
        }
    )
    scorecard = _scorecard(k.sub("scorecard"))
    sev = k.sub("complaint_close_target_days_by_severity")
    sev.only(set(SEVERITIES))
    by_severity = {name: _nonneg(sev, name, 0) for name in SEVERITIES if name in sev.table}
    tg = k.sub("targets")
    targets: dict[str, float] = {}
    for kpi_id in tg.table:
        targets[kpi_id] = tg.get(kpi_id, float)
    return KpiConfig(
        complaint_close_target_days=_nonneg(k, "complaint_close_target_days", 30),
        complaint_close_target_days_by_severity=by_severity,
        supplier_otd_tolerance_days=_nonneg(k, "supplier_otd_tolerance_days", 0),
        supplier_otd_early_days=_nonneg(k, "supplier_otd_early_days", 7),
        repeat_window_days=_nonneg(k, "repeat_window_days", 90),
        finding_due_days=_nonneg(k, "finding_due_days", 60),
        scorecard=scorecard,
        targets=targets,
        max_quarantined_share=_share(k, "max_quarantined_share", 0.10, zero_ok=True),
    )


def _scorecard(sc: _Reader) -> ScorecardConfig:
    """The ``[kpis.scorecard]`` table: weights that add up to 1, rating bands in order."""
    sc.only({"otd_weight", "quality_weight", "ppm_zero_score", "rating_a_min", "rating_b_min"})
    scorecard = ScorecardConfig(
        otd_weight=sc.get("otd_weight", float, 0.5),
        quality_weight=sc.get("quality_weight", float, 0.5),
        ppm_zero_score=sc.get("ppm_zero_score", float, 10_000.0),
        rating_a_min=sc.get("rating_a_min", float, 90.0),
        rating_b_min=sc.get("rating_b_min", float, 75.0),
    )
    if abs(scorecard.otd_weight + scorecard.quality_weight - 1.0) > 1e-9:
        raise sc.err("otd_weight", "otd_weight + quality_weight must add up to 1")
    if not scorecard.rating_a_min >= scorecard.rating_b_min:
        raise sc.err("rating_a_min", "must be at least rating_b_min")
    return scorecard


def _review(rv: _Reader) -> ReviewConfig:
    """The ``[review]`` table: period granularity, trend length, clause map, row bounds."""
    rv.only(
        {
            "granularity",
            "trend_months",
            "as_of",
            "standard",
            "clause_map",
            "stale_after_days",
            "max_rows",
        }
    )
    gran = rv.get("granularity", str, "month")
    if gran not in ("month", "quarter", "year"):
        raise rv.err(
            "granularity",
            f"must be month, quarter or year{did_you_mean(gran, ['month', 'quarter', 'year'])}",
        )
    as_of = rv.get("as_of", date)
    trend = rv.get("trend_months", int, 24)
    if not 3 <= trend <= 120:
        raise rv.err("trend_months", "must be between 3 and 120")
    max_rows = rv.get("max_rows", int, 10)
    if not 1 <= max_rows <= 200:
        raise rv.err("max_rows", "must be between 1 and 200")
    review = ReviewConfig(
        granularity=gran,
        trend_months=trend,
        as_of=as_of,
        standard=rv.get("standard", str, "ISO 9001:2015"),
        clause_map=_clause_map_file(rv),
        stale_after_days=_nonneg(rv, "stale_after_days", 45),
        max_rows=max_rows,
    )

    if "standard" in rv.table and review.clause_map is not None:
        raise rv.err("clause_map", "give either standard or clause_map (a map file), not both")
    return review


def _outputs(out: _Reader) -> OutputConfig:
    """The ``[outputs]`` table: where the pack goes, which formats, and time limits."""
    out.only({"reports_dir", "pdf", "xlsx", "notebook_timeout_s", "browser_timeout_s"})
    return OutputConfig(
        reports_dir=out.get("reports_dir", str, "reports"),
        pdf=_pdf_policy(out),
        xlsx=out.get("xlsx", bool, True),
        notebook_timeout_s=_nonneg(out, "notebook_timeout_s", 600),
        browser_timeout_s=_nonneg(out, "browser_timeout_s", 120),
    )


def _pdf_policy(r: _Reader) -> PdfPolicy:
    value = r.get("pdf", (str, bool), "required")
    if isinstance(value, bool):
        return "required" if value else "off"
    for policy in PDF_POLICIES:
        if value == policy:
            return policy
    raise r.err(
        "pdf",
        f'must be "required", "optional", "off", true or false, got {value!r}'
        f"{did_you_mean(value, list(PDF_POLICIES))}",
    )


def _clause_map_file(rv: _Reader) -> str | None:
    """``[review] clause_map``: the path of a map file (the map is read and checked by review)."""
    value: str | None = rv.get("clause_map", str)
    if value is not None and not value.endswith(".toml"):
        raise rv.err(
            "clause_map",
            f"must be the path of a clause-map .toml file, got {value!r}; to pick a shipped "
            'map write standard = "ISO 9001:2015" (or "ISO 9001:2026", provisional)',
        )
    return value


def _nonneg(r: _Reader, name: str, default: int) -> int:
    value: int = r.get(name, int, default)
    if value < 0:
        raise r.err(name, f"must be zero or more, got {value}")
    return value


def _share(r: _Reader, name: str, default: float, *, zero_ok: bool) -> float:
    value: float = r.get(name, float, default)
    if not (0 <= value <= 1 if zero_ok else 0 < value <= 1):
        low = "0" if zero_ok else "above 0"
        raise r.err(name, f"must be a share from {low} to 1 (e.g. 0.05 for 5 %), got {value}")
    return value


_SEVERITY_WORDS = {"error": "error", "warn": "warn", "warning": "warn"}


def _contracts(r: _Reader) -> ContractsConfig:
    """``[contracts]``: ``dir``, and ``[contracts.<dataset>.<rule_id>]`` severity / mostly."""
    folder = r.get("dir", str)
    overrides: dict[str, dict[str, RuleOverride]] = {}
    for ds in r.table:
        if ds == "dir":
            continue
        if ds not in DATASETS:
            allowed = ["dir", *DATASETS]
            raise r.err(
                ds,
                f"unknown dataset{did_you_mean(ds, allowed)}; [contracts] takes 'dir' and a "
                f"table per dataset: {', '.join(DATASETS)}",
            )
        d = r.sub(ds)
        overrides[ds] = {}
        for rule_id in d.table:
            o = d.sub(rule_id)
            o.only({"severity", "mostly"})
            word = o.get("severity", str)
            if word is not None and word not in _SEVERITY_WORDS:
                raise o.err(
                    "severity", f"must be error or warn{did_you_mean(word, _SEVERITY_WORDS)}"
                )
            severity = _SEVERITY_WORDS[word] if word is not None else None
            mostly = _share(o, "mostly", 1.0, zero_ok=False) if "mostly" in o.table else None
            if severity is None and mostly is None:
                raise o.err("severity", "give 'severity' and/or 'mostly' to change the rule")
            overrides[ds][rule_id] = RuleOverride(severity, mostly)  # type: ignore[arg-type]
    return ContractsConfig(dir=folder, overrides=overrides)


DEFAULT_CONFIG = "qmskpi.toml"
"""The config file looked for in the working folder when none is named."""
CONFIG_ENV = "QMSKPI_CONFIG"
"""The environment variable naming the config file when none is given."""


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file a command or notebook uses.

    ``path`` when given (not empty), else ``$QMSKPI_CONFIG``, else ``./qmskpi.toml``:
    the ``--config`` of every command and the ``config_path`` of every notebook.
    With none of them there, the error says where it looked.
    """
    chosen = path or os.environ.get(CONFIG_ENV)
    if chosen:
        return Path(chosen)
    default = Path(DEFAULT_CONFIG)
    if not default.is_file():
        raise ConfigError(
            f"no config file: none given (--config, or a notebook's config_path), "
            f"${CONFIG_ENV} is not set and there is no {DEFAULT_CONFIG} in {Path.cwd()}"
        )
    return default


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check ``qmskpi.toml``."""
    p = Path(path).resolve()
    if not p.is_file():
        raise ConfigError("config file not found", path=p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=p) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=p) from None
    return from_dict(data, path=p)
