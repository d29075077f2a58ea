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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, ValidationError

from qmskpi import _reprs
from qmskpi.datasets import DATASETS, SEVERITIES
from qmskpi.errors import ConfigError, ScopeError, did_you_mean
from qmskpi.periods import Granularity
from qmskpi.schemas import StrictTable, json_schema, problem, schema_error_text

FileFormat = Literal["csv", "parquet", "excel"]
PdfPolicy = Literal["required", "optional", "off"]
"""``[outputs] pdf``: no browser fails the run / publishes without the PDF (the manifest
says why) / never print. ``true`` means ``"required"``, ``false`` means ``"off"``."""
PDF_POLICIES: tuple[PdfPolicy, ...] = ("required", "optional", "off")
ExecutorName = Literal["local", "dask"]
"""``[run] executor``: scopes rendered in local worker processes, or as Dask distributed tasks."""
EXECUTORS: tuple[ExecutorName, ...] = ("local", "dask")
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
    pushdown: bool = False
    """Validate and aggregate in the database (SQL sources of :data:`PUSHDOWN_DATASETS`)."""

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


ValidationEngine = Literal["polars", "gx"]
"""``[contracts] engine``: who judges the rules (``docs/contracts.md``)."""


@dataclass(frozen=True)
class ContractsConfig:
    """``[contracts]``: your own contracts folder, the validation engine, per-rule overrides."""

    dir: str | None = None
    """Folder of YAML contracts, relative to the config file; a dataset without a file
    there uses the shipped contract."""
    engine: ValidationEngine = "polars"
    """``polars`` (default: each rule evaluated once in polars, no Great Expectations
    import) or ``gx`` (the contracts' Great Expectations suites judge the rules)."""
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
class RunConfig:
    """``[run]``: how ``qmskpi run`` spreads the scopes of a period (not part of the digest:
    where a pack is rendered does not change it)."""

    executor: ExecutorName = "local"
    jobs: int = 1
    """Worker processes (``local``), or the workers of the local Dask cluster started
    when no ``scheduler`` is given (``dask``)."""
    scheduler: str | None = None
    """A running Dask scheduler's address (``tcp://host:8786``); ``dask`` only."""


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
    run: RunConfig = field(default_factory=RunConfig)
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
        """sha256 of the canonical JSON form of this config (path and ``[run]`` excluded)."""
        d = self.to_dict()
        d.pop("path", None)
        d.pop("run", None)
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


# --------------------------------------------------------------------------- the file's schema
#
# pydantic models state what each table of qmskpi.toml may hold: its keys (extra="forbid"),
# their types (strict: no "30" for 30, no true for 1) and simple bounds. They also give the
# JSON Schema editors use (``qmskpi schema config``). What needs more than one key or knowledge
# of the datasets (a column that is no field of the dataset, a date format, a SQL expression,
# a database that no table declares) is checked after, in the functions below the models.


def _scalar(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    raise problem("must be a string, number or boolean")


def _pdf_word(value: Any) -> Any:
    if isinstance(value, bool):
        return "required" if value else "off"
    if isinstance(value, str) and value in PDF_POLICIES:
        return value
    raise problem(
        f'must be "required", "optional", "off", true or false, got {value!r}'
        f"{did_you_mean(str(value), PDF_POLICIES)}"
    )


_SEVERITY_WORDS = {"warning": "warn"}


def _one_of(words: tuple[str, ...]) -> Callable[[Any], Any]:
    """A validator for a key that takes one of ``words``, with a did-you-mean."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and value in words:
            return value
        raise problem(
            f"must be one of {', '.join(words)}, got {value!r}"
            f"{did_you_mean(str(value), list(words))}"
        )

    return check


def _severity_word(value: Any) -> Any:
    return _SEVERITY_WORDS.get(value, value) if isinstance(value, str) else value


NonNegative = Annotated[int, Field(ge=0)]
OneBased = Annotated[int, Field(ge=1)]
Share = Annotated[float, Field(ge=0, le=1)]
PositiveShare = Annotated[float, Field(gt=0, le=1)]
Constant = Annotated[ConstantValue, BeforeValidator(_scalar)]
PdfWord = Annotated[PdfPolicy, BeforeValidator(_pdf_word, json_schema_input_type=PdfPolicy | bool)]
SeverityWord = Annotated[
    Literal["error", "warn"],
    BeforeValidator(_severity_word, json_schema_input_type=Literal["error", "warn", "warning"]),
]


class OrganisationTable(StrictTable):
    """``[organisation]``."""

    name: str = Field(
        default="", description="The organisation's name, on the pack's cover (required)."
    )
    sites: list[str] = Field(
        default_factory=list,
        description=f"Site names, each a scope of its own: {SITE_RULE_TEXT}.",
    )


class DatabaseTable(StrictTable):
    """``[databases.NAME]``: give exactly one of ``url`` (no password) or ``url_env``."""

    url: str | None = Field(
        default=None, description="A URL without credentials, e.g. sqlite:///qms.db."
    )
    url_env: str | None = Field(
        default=None, description="The environment variable holding the URL."
    )


class SourceTable(StrictTable):
    """``[sources.DATASET]``: a file (``path``) or a SQL ``query``, and how to read it."""

    path: str | None = Field(
        default=None, description="File path or glob, relative to the config file."
    )
    format: FileFormat | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    quote_char: str = '"'
    sheet: str | int | None = None
    header_row: OneBased = Field(default=1, description="1-based row that holds the header.")
    has_header: bool = True
    skip_footer_rows: NonNegative = 0
    columns: dict[str, str] = Field(default_factory=dict, description="field -> source header")
    positions: dict[str, OneBased] = Field(
        default_factory=dict, description="field -> 1-based column number"
    )
    date_formats: dict[str, str] = Field(
        default_factory=dict, description="date field -> strptime format, e.g. %d/%m/%Y"
    )
    value_maps: dict[str, dict[str, str]] = Field(default_factory=dict)
    null_values: dict[str, list[str]] = Field(default_factory=dict)
    na_values: list[str] = Field(default_factory=lambda: [""])
    true_values: list[str] = Field(default_factory=lambda: list(SourceConfig.true_values))
    false_values: list[str] = Field(default_factory=lambda: list(SourceConfig.false_values))
    constants: dict[str, Constant] = Field(default_factory=dict)
    ignore_columns: list[str] = Field(default_factory=list)
    surrogate_key: bool = False
    derive: dict[str, str] = Field(
        default_factory=dict, description="field -> SQL expression over the source's columns"
    )
    defaults: dict[str, Constant] = Field(default_factory=dict)
    where: str | None = None
    drop_duplicates: bool = True
    database: str | None = None
    query: str | None = None
    coverage_start: str | None = Field(
        default=None, description="First month (YYYY-MM) fully covered."
    )
    zero_means_zero: bool = False
    pushdown: bool = Field(
        default=False,
        description=(
            "validate and aggregate in the database (SQL sources of inspections, receipts, "
            "complaints, surveys or capa)"
        ),
    )


PUSHDOWN_DATASETS = ("inspections", "receipts", "complaints", "surveys", "capa")
"""Datasets whose first KPI aggregation levels can run in the database
(``kpis.pushdown_levels``)."""

_MAPPING_KEYS = (
    "columns",
    "positions",
    "date_formats",
    "value_maps",
    "null_values",
    "constants",
    "derive",
    "defaults",
    "where",
    "surrogate_key",
)
"""Mapping keys done in polars after reading: a pushed-down query must not need them."""


class ScorecardTable(StrictTable):
    """``[kpis.scorecard]``: weights that add up to 1 and the A/B rating floors."""

    otd_weight: float = 0.5
    quality_weight: float = 0.5
    ppm_zero_score: float = 10_000.0
    rating_a_min: float = 90.0
    rating_b_min: float = 75.0


class SeverityTargetsTable(StrictTable):
    """``[kpis.complaint_close_target_days_by_severity]``: days by complaint severity."""

    minor: NonNegative | None = None
    major: NonNegative | None = None
    critical: NonNegative | None = None


assert tuple(SeverityTargetsTable.model_fields) == SEVERITIES


class KpisTable(StrictTable):
    """``[kpis]``."""

    complaint_close_target_days: NonNegative = 30
    complaint_close_target_days_by_severity: SeverityTargetsTable = Field(
        default_factory=SeverityTargetsTable
    )
    supplier_otd_tolerance_days: NonNegative = 0
    supplier_otd_early_days: NonNegative = 7
    repeat_window_days: NonNegative = 90
    finding_due_days: NonNegative = 60
    scorecard: ScorecardTable = Field(default_factory=ScorecardTable)
    targets: dict[str, float] = Field(default_factory=dict, description="KPI id -> target")
    max_quarantined_share: Share = 0.10


class ReviewTable(StrictTable):
    """``[review]``."""

    granularity: Granularity = "month"
    trend_months: Annotated[int, Field(ge=3, le=120)] = 24
    as_of: date | None = None
    standard: str | None = Field(
        default=None, description='A shipped clause map, e.g. "ISO 9001:2015".'
    )
    clause_map: str | None = Field(default=None, description="A clause-map .toml file of your own.")
    stale_after_days: NonNegative = 45
    max_rows: Annotated[int, Field(ge=1, le=200)] = 10


class AnalystInputsTable(StrictTable):
    """``[analyst_inputs]``: markdown files for inputs the data cannot give."""

    changes: str | None = None
    resources: str | None = None
    risks: str | None = None


class OutputsTable(StrictTable):
    """``[outputs]``."""

    reports_dir: str = "reports"
    pdf: PdfWord = "required"
    xlsx: bool = True
    notebook_timeout_s: NonNegative = 600
    browser_timeout_s: NonNegative = 120


class RuleOverrideTable(StrictTable):
    """``[contracts.DATASET.RULE_ID]``: give ``severity`` and/or ``mostly``."""

    severity: SeverityWord | None = None
    mostly: PositiveShare | None = None


class ContractsTable(StrictTable):
    """``[contracts]``: ``dir`` and a table of rule overrides per dataset."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        frozen=True,
        json_schema_extra={"propertyNames": {"enum": ["dir", "engine", *DATASETS]}},
    )
    __pydantic_extra__: dict[str, dict[str, RuleOverrideTable]] = Field(init=False)

    dir: str | None = Field(
        default=None, description="Your contracts folder, relative to this file."
    )
    engine: Annotated[
        ValidationEngine,
        BeforeValidator(
            _one_of(get_args(ValidationEngine)), json_schema_input_type=ValidationEngine
        ),
    ] = Field(
        default="polars",
        description="who judges the rules: polars (default) or gx (Great Expectations suites)",
    )


def _jobs_count(value: int) -> int:
    if value < 1:
        raise problem(f"must be 1 or more, got {value}")
    return value


class RunTable(StrictTable):
    """``[run]``: how ``qmskpi run`` spreads the scopes of a period."""

    executor: Annotated[
        ExecutorName, BeforeValidator(_one_of(EXECUTORS), json_schema_input_type=ExecutorName)
    ] = Field(default="local", description="local (worker processes) or dask")
    jobs: Annotated[int, AfterValidator(_jobs_count)] = Field(
        default=1, description="worker processes, or the workers of a local Dask cluster"
    )
    scheduler: str | None = Field(
        default=None, description="a running Dask scheduler's address, e.g. tcp://host:8786"
    )


class ConfigFile(StrictTable):
    """``qmskpi.toml``, as read: every table and key it may hold."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, title="qmskpi.toml")

    organisation: OrganisationTable = Field(default_factory=OrganisationTable)
    databases: dict[str, DatabaseTable] = Field(default_factory=dict)
    sources: dict[str, SourceTable] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"enum": list(DATASETS)}}
    )
    kpis: KpisTable = Field(default_factory=KpisTable)
    review: ReviewTable = Field(default_factory=ReviewTable)
    analyst_inputs: AnalystInputsTable = Field(default_factory=AnalystInputsTable)
    outputs: OutputsTable = Field(default_factory=OutputsTable)
    contracts: ContractsTable = Field(default_factory=ContractsTable)
    run: RunTable = Field(default_factory=RunTable)


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``qmskpi.toml`` (for editors: Even Better TOML, Taplo, VS Code)."""
    return json_schema(ConfigFile)


# --------------------------------------------------------------------------- loading


def _err(path: Path | None, key: str, message: str) -> ConfigError:
    return ConfigError(message, path=path, key=key)


def _check_columns(path: Path | None, key: str, keys: Iterable[str], dataset: str) -> None:
    """Every key of a source's per-column table must be a field of its dataset."""
    known = DATASETS[dataset].field_names
    for col in keys:
        if col not in known:
            raise _err(
                path,
                f"{key}.{col}",
                f"{col!r} is not a field of dataset '{dataset}'{did_you_mean(col, known)}; "
                f"fields: {', '.join(known)}",
            )


def _check_sql(path: Path | None, key: str, text: str) -> None:
    """A derive expression or ``where`` condition must parse as a polars SQL expression.

    Column names are checked later, against the file's header.
    """
    import polars as pl

    if not text.strip():
        raise _err(path, key, "is empty: give a SQL expression over the source's columns")
    try:
        pl.sql_expr(text)
        # polars 1.x reads "a b c" as "a AS b" and drops the rest (so a CASE without END
        # passes); a whole statement is parsed strictly by every version. The text is the
        # config's own expression, planned by polars over an empty frame: no database.
        pl.SQLContext(t=pl.LazyFrame()).execute(f"SELECT {text} FROM t")  # noqa: S608
    except pl.exceptions.ColumnNotFoundError:
        pass  # polars 1.x resolves columns here: they are checked later, against the header
    except Exception as exc:  # polars raises SQLInterfaceError / SQLSyntaxError / others
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _err(
            path, key, f"not a SQL expression polars can read: {detail} (in {text!r})"
        ) from None


_DATE_DIRECTIVES = {
    "year": set("YyGC"),
    "month": set("mbBh"),
    "day": set("de"),
}
_KNOWN_DIRECTIVES = set("YyCGmbBhdejaAuwHIMSfpzZTFDVU%")


def date_formatproblem(fmt: str) -> str | None:
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

    The file's shape (keys, types, bounds) is checked first by :class:`ConfigFile`;
    then what needs the datasets or more than one key, table by table in file order
    (organisation, databases, sources, kpis, review, outputs, contracts). The first
    problem found is raised as a :class:`~qmskpi.errors.ConfigError` naming the key.
    """
    _check_contracts_keys(data, path)
    try:
        raw = ConfigFile.model_validate(data)
    except ValidationError as exc:
        key, message = schema_error_text(
            exc,
            ConfigFile,
            extras={ContractsTable: dict[str, RuleOverrideTable]},
            hints={"date_type": " (a TOML date has no quotes: as_of = 2026-10-31)"},
        )
        raise ConfigError(message, path=path, key=key) from None
    name, sites = _organisation(raw.organisation, path)
    databases = _databases(raw.databases, path)
    sources = _sources(raw.sources, databases, path)
    ai = raw.analyst_inputs
    return Config(
        organisation=name,
        sites=sites,
        sources=sources,
        databases=databases,
        kpis=_kpis(raw.kpis, path),
        review=_review(raw.review, path),
        analyst_inputs=AnalystInputs(ai.changes, ai.resources, ai.risks),
        outputs=OutputConfig(**raw.outputs.model_dump()),
        contracts=_contracts(raw.contracts, path),
        run=_run(raw.run, path),
        path=path,
    )


def _organisation(org: OrganisationTable, path: Path | None) -> tuple[str, tuple[str, ...]]:
    """The ``[organisation]`` table: its name (required) and its distinct site names."""
    if not org.name:
        raise _err(
            path,
            "organisation.name",
            "is required: the organisation's name appears on the pack's cover",
        )
    for s in org.sites:
        if not SITE_PATTERN.fullmatch(s) or s.casefold() == WHOLE_SCOPE:
            raise _err(
                path,
                "organisation.sites",
                f"site name {s!r} must be {SITE_RULE_TEXT} "
                f"(and not '{WHOLE_SCOPE}', which means the whole organisation)",
            )
    if len(set(org.sites)) != len(org.sites):
        raise _err(path, "organisation.sites", "lists a site twice")
    return org.name, tuple(org.sites)


def _databases(tables: Mapping[str, DatabaseTable], path: Path | None) -> dict[str, DatabaseConfig]:
    """The ``[databases.NAME]`` tables: a URL without credentials, or the variable holding one."""
    databases: dict[str, DatabaseConfig] = {}
    for db_name, d in tables.items():
        key = f"databases.{db_name}.url"
        if (d.url is None) == (d.url_env is None):
            raise _err(path, key, "give exactly one of 'url' (no credentials) or 'url_env'")
        if d.url is not None and _PASSWORD_IN_URL.match(d.url):
            raise _err(
                path,
                key,
                "carries a password; put the URL in an environment variable and name it in 'url_env'",
            )
        databases[db_name] = DatabaseConfig(db_name, d.url, d.url_env)
    return databases


def _sources(
    tables: Mapping[str, SourceTable],
    databases: Mapping[str, DatabaseConfig],
    path: Path | None,
) -> dict[str, SourceConfig]:
    """The ``[sources.DATASET]`` tables (at least one), each naming a known dataset and database."""
    for ds in tables:
        if ds not in DATASETS:
            raise _err(
                path,
                f"sources.{ds}",
                f"unknown dataset{did_you_mean(ds, DATASETS)}; known: {', '.join(DATASETS)}",
            )
    sources = {ds: _source(src, ds, path) for ds, src in tables.items()}
    for ds, src in sources.items():
        if src.database is not None and src.database not in databases:
            raise _err(
                path,
                f"sources.{ds}.database",
                f"no [databases.{src.database}] table{did_you_mean(src.database, databases)}",
            )
    if not sources:
        raise _err(path, "sources", "no [sources.DATASET] table: name at least one dataset to read")
    return sources


def _check_pushdown(s: SourceTable, dataset: str, path: Path | None) -> None:
    """``pushdown = true``: a SQL source of a pushable dataset whose query needs no mapping."""
    at = f"sources.{dataset}"
    if s.query is None:
        raise _err(path, f"{at}.pushdown", "works on SQL sources only (a 'query'), not on files")
    if dataset not in PUSHDOWN_DATASETS:
        raise _err(
            path,
            f"{at}.pushdown",
            f"no KPI of {dataset} runs in the database yet; "
            f"pushdown works for: {', '.join(PUSHDOWN_DATASETS)}",
        )
    for key in _MAPPING_KEYS:
        if key in s.model_fields_set:
            raise _err(
                path,
                f"{at}.{key}",
                "cannot be used with pushdown = true: the database validates and aggregates "
                "the query's own columns, so the query must return the canonical names and "
                "values (rename and convert in SQL, e.g. SELECT insp_no AS inspection_id)",
            )


def _source(s: SourceTable, dataset: str, path: Path | None) -> SourceConfig:
    """One source's keys that depend on its dataset, or on each other."""
    at = f"sources.{dataset}"
    if (s.path is None) == (s.query is None):
        raise _err(path, f"{at}.path", "give exactly one of 'path' (a file) or 'query' (SQL)")
    for name in ("columns", "positions", "date_formats", "derive", "defaults"):
        _check_columns(path, f"{at}.{name}", getattr(s, name), dataset)
    for col, fmt in s.date_formats.items():
        if DATASETS[dataset].field(col).type != "date":
            raise _err(path, f"{at}.date_formats.{col}", f"{col!r} is not a date field")
        problem = date_formatproblem(fmt)
        if problem:
            raise _err(path, f"{at}.date_formats.{col}", problem)
    for col, text in s.derive.items():
        _check_sql(path, f"{at}.derive.{col}", text)
    if s.where is not None:
        _check_sql(path, f"{at}.where", s.where)
    for name in ("value_maps", "null_values", "constants"):
        _check_columns(path, f"{at}.{name}", getattr(s, name), dataset)
    if s.query is not None and s.database is None:
        raise _err(
            path,
            f"{at}.database",
            "a 'query' source needs 'database', the name of a [databases.NAME] table",
        )
    if s.coverage_start is not None and not re.fullmatch(
        r"\d{4}-(0[1-9]|1[0-2])", s.coverage_start
    ):
        raise _err(
            path, f"{at}.coverage_start", f"must be a month YYYY-MM, got {s.coverage_start!r}"
        )
    if s.pushdown:
        _check_pushdown(s, dataset, path)
    raw = s.model_dump()  # fresh dicts and lists; the frozen dataclass holds tuples
    for name in ("na_values", "true_values", "false_values", "ignore_columns"):
        raw[name] = tuple(raw[name])
    raw["null_values"] = {col: tuple(v) for col, v in raw["null_values"].items()}
    return SourceConfig(dataset=dataset, **raw)


def _kpis(k: KpisTable, path: Path | None) -> KpiConfig:
    """The ``[kpis]`` table; the scorecard's weights add up to 1, its rating bands in order."""
    sc = k.scorecard
    if abs(sc.otd_weight + sc.quality_weight - 1.0) > 1e-9:
        raise _err(
            path, "kpis.scorecard.otd_weight", "otd_weight + quality_weight must add up to 1"
        )
    if not sc.rating_a_min >= sc.rating_b_min:
        raise _err(path, "kpis.scorecard.rating_a_min", "must be at least rating_b_min")
    by_severity = {
        name: days
        for name, days in k.complaint_close_target_days_by_severity.model_dump().items()
        if days is not None
    }
    return KpiConfig(
        complaint_close_target_days=k.complaint_close_target_days,
        complaint_close_target_days_by_severity=by_severity,
        supplier_otd_tolerance_days=k.supplier_otd_tolerance_days,
        supplier_otd_early_days=k.supplier_otd_early_days,
        repeat_window_days=k.repeat_window_days,
        finding_due_days=k.finding_due_days,
        scorecard=ScorecardConfig(**sc.model_dump()),
        targets=dict(k.targets),
        max_quarantined_share=k.max_quarantined_share,
    )


def _review(rv: ReviewTable, path: Path | None) -> ReviewConfig:
    """The ``[review]`` table: a shipped ``standard`` or a ``clause_map`` file, not both."""
    if rv.clause_map is not None and not rv.clause_map.endswith(".toml"):
        raise _err(
            path,
            "review.clause_map",
            f"must be the path of a clause-map .toml file, got {rv.clause_map!r}; to pick a "
            'shipped map write standard = "ISO 9001:2015" (or "ISO 9001:2026", provisional)',
        )
    if rv.standard is not None and rv.clause_map is not None:
        raise _err(
            path, "review.clause_map", "give either standard or clause_map (a map file), not both"
        )
    return ReviewConfig(
        granularity=rv.granularity,
        trend_months=rv.trend_months,
        as_of=rv.as_of,
        standard=rv.standard if rv.standard is not None else ReviewConfig.standard,
        clause_map=rv.clause_map,
        stale_after_days=rv.stale_after_days,
        max_rows=rv.max_rows,
    )


def _run(r: RunTable, path: Path | None) -> RunConfig:
    """``[run]``: a scheduler needs the Dask executor, and then sets the workers itself."""
    if r.scheduler is not None and r.executor != "dask":
        raise _err(path, "run.scheduler", 'is a Dask scheduler address: set executor = "dask" too')
    if r.scheduler is not None and r.jobs > 1:
        raise _err(
            path,
            "run.jobs",
            "sets the workers of a local Dask cluster; with a scheduler, its "
            "workers decide how many scopes run at once",
        )
    return RunConfig(executor=r.executor, jobs=r.jobs, scheduler=r.scheduler)


def _check_contracts_keys(data: Mapping[str, Any], path: Path | None) -> None:
    """``[contracts]`` holds ``dir``, ``engine`` and one table per dataset: any other key is
    named with a did-you-mean before the model reads it (the model would only say that a
    dataset's overrides must be a table)."""
    table = data.get("contracts")
    if not isinstance(table, Mapping):
        return
    allowed = ["dir", "engine", *DATASETS]
    for key in table:
        if key not in allowed:
            raise _err(
                path,
                f"contracts.{key}",
                f"unknown dataset{did_you_mean(str(key), allowed)}; [contracts] takes 'dir', "
                f"'engine' and a table per dataset: {', '.join(DATASETS)}",
            )


def _contracts(c: ContractsTable, path: Path | None) -> ContractsConfig:
    """``[contracts]``: ``dir``, ``engine``, and ``[contracts.<dataset>.<rule_id>]`` severity /
    mostly."""
    overrides: dict[str, dict[str, RuleOverride]] = {}
    for ds, rules in (c.model_extra or {}).items():
        overrides[ds] = {}
        for rule_id, o in rules.items():
            if o.severity is None and o.mostly is None:
                raise _err(
                    path,
                    f"contracts.{ds}.{rule_id}.severity",
                    "give 'severity' and/or 'mostly' to change the rule",
                )
            overrides[ds][rule_id] = RuleOverride(o.severity, o.mostly)
    return ContractsConfig(dir=c.dir, engine=c.engine, overrides=overrides)


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
