"""The one place that chains the stages: sources -> contracts -> review (kpis, spc) -> render -> archive.

Notebooks call :func:`review_for`; the CLI calls :func:`run_review` (one pack)
and the scheduled run (every scope, catch-up). Each stage is a plain function
call on plain data; every stage module knows nothing of the ones after it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import dataclasses
import hashlib
import io
import json
import logging
import multiprocessing
import os
import pickle
import platform
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import polars as pl
import psutil

from qmskpi import (
    __version__,
    _reprs,
    archive,
    contracts,
    kpis,
    minutes,
    progress,
    render,
    review,
    runtemp,
    sources,
)
from qmskpi.config import EXECUTORS, Config, ExecutorName, PdfPolicy, load_config
from qmskpi.config import config_path as resolve_config
from qmskpi.errors import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_NO_DATA,
    EXIT_OK,
    EXIT_RULES,
    EXIT_USAGE,
    ConfigError,
    DiskFullError,
    PeriodError,
    PublishError,
    QmsKpiError,
    RenderError,
    SourceError,
    disk_full,
    exit_code_for_error,
)
from qmskpi.kpis.firstlevel import FirstLevel
from qmskpi.periods import Period, last_complete, parse_period

if TYPE_CHECKING:
    from qmskpi import pushdown

log = logging.getLogger(__name__)


@dataclass
class Timings:
    """Wall-clock seconds per stage, in the order the stages ran."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 4)


@dataclass(frozen=True)
class Prepared:
    """Everything computed for one period and scope, before rendering."""

    config: Config
    period: Period
    scope: str
    loaded: Mapping[str, sources.LoadedDataset]
    validation: contracts.ValidationReport
    kpis: pl.DataFrame
    review: review.ReviewModel
    timings: Mapping[str, float]
    registers: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    """Every row of each bounded table of the pack, by table id."""
    aggregates: tuple[FirstLevel, ...] = ()
    """First levels the databases computed for the sources with ``pushdown = true`` (whose
    rows are not in :attr:`loaded` nor in ``validation.clean``)."""
    as_of: date | None = None
    """The day the data was judged on (``--as-of``, else ``[review] as_of``; None: the newest
    record): pass it on (``kpis.objective_attainment(..., as_of=prepared.as_of)``) to get
    the pack's figures."""
    listed: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    """Of a pushed-down source whose rows the pack lists (complaints), the validated rows
    of the period and the repeat look-back before it (``pushdown.listed_rows``): what
    ``kpis.repeat_complaints(prepared.rows(), ...)`` needs, not the whole history."""

    def rows(self) -> dict[str, pl.DataFrame]:
        """The validated rows by dataset (``validation.clean``), with the listed rows of
        pushed-down sources (:attr:`listed`) for those not pulled: the ``data`` of the
        table functions that list rows."""
        return {**self.listed, **self.validation.clean}

    def aggregate(self, dataset: str, by: str | None = None) -> FirstLevel | None:
        """The pushed-down first level of ``dataset`` (``by`` a column: a table's), or None.

        ``kpis.defect_pareto(..., aggregate=prepared.aggregate("inspections",
        kpis.PARETO_BY))`` draws the Pareto table of a pushed-down inspections source."""
        return next((a for a in self.aggregates if a.dataset == dataset and a.by == by), None)

    @property
    def first_levels(self) -> dict[str, tuple[FirstLevel, ...]]:
        """The pushed-down first levels by dataset (``compute_kpis(aggregates=)``)."""
        out: dict[str, tuple[FirstLevel, ...]] = {}
        for a in self.aggregates:
            out[a.dataset] = (*out.get(a.dataset, ()), a)
        return out

    def __repr__(self) -> str:
        v = self.validation
        sound_kpis = int(self.kpis["sound"].sum()) if "sound" in self.kpis.columns else 0
        return (
            f"<Prepared {self.period.label} {_reprs.clip(self.scope, 40)!r} of "
            f"{_reprs.clip(self.config.organisation, 40)!r}: "
            f"{_reprs.count(len(v.datasets), 'dataset')} ({len(v.unsound_datasets)} unsound), "
            f"{_reprs.count(self.kpis.height, 'KPI row')} ({sound_kpis:,} sound), "
            f"{_reprs.count(len(self.review.trends), 'trend')}; "
            f"{sum(self.timings.values()):.1f} s>"
        )

    def _repr_html_(self) -> str:
        v = self.validation
        sound_kpis = int(self.kpis["sound"].sum()) if "sound" in self.kpis.columns else 0
        lines = [
            ("period", f"{self.period.label} (as of {v.as_of})"),
            ("scope", self.scope),
            ("organisation", self.config.organisation),
            ("datasets", f"{len(v.datasets)} ({len(v.unsound_datasets)} unsound)"),
            ("unsound", _reprs.names(sorted(v.unsound_datasets))),
            (
                "rows",
                f"{sum(d.rows_in for d in v.datasets.values()):,} in, "
                f"{sum(d.rows_used for d in v.datasets.values()):,} used, "
                f"{v.rows_quarantined:,} quarantined",
            ),
            ("KPI rows", f"{self.kpis.height:,} ({sound_kpis:,} sound)"),
            ("review", f"{len(self.review.sections)} sections, {len(self.review.trends)} trends"),
            ("seconds", ", ".join(f"{k} {t:.1f}" for k, t in self.timings.items())),
        ]
        return _reprs.html_summary("Prepared review", lines)


def as_config(config: Config | str | os.PathLike[str] | None = None) -> Config:
    """``config`` itself, or the file it names; ``None`` or ``""``: as the CLI finds it
    (``$QMSKPI_CONFIG``, then ``./qmskpi.toml``; :func:`qmskpi.config.config_path`)."""
    return config if isinstance(config, Config) else load_config(resolve_config(config))


def prepare(
    config: Config | str | os.PathLike[str] | None,
    period: Period | str,
    scope: str = "all",
    *,
    as_of: date | None = None,
    loaded: sources.LoadedData | None = None,
    save_to: str | os.PathLike[str] | None = None,
    pushed: Mapping[str, pushdown.Pushed] | None = None,
) -> Prepared:
    """Load, validate and compute the review for one period and scope.

    A source with ``pushdown = true`` is not read: :func:`qmskpi.pushdown.push_down`
    validates and aggregates it in its database (``pushed`` reuses results already
    fetched), and the KPIs, trends, coverage and defect Pareto table use the aggregates.

    ``save_to``: also save it there (:func:`save_prepared`), so that notebooks
    started from this one reuse it (their ``prepared_path``) instead of reloading.

    ``loaded`` reuses data already read by :func:`sources.load_all` (the
    scheduled run reads once to decide whether a pack is up to date). With an
    ``as_of`` the export may be newer (a backfill): records dated after it are
    left out (excluded as ``after_as_of`` in the ledger), not quarantined.
    """
    cfg = as_config(config)
    p = parse_period(period)
    cfg.check_scope(scope)
    review.clause_map_for(cfg)  # a wrong [review] standard or map file fails before any reading
    t = Timings()
    if loaded is None:
        progress.emit("load", period=p.label, scope=scope, rows=0)
        with t.stage("load"):
            loaded = load_inputs(cfg, p)
    if pushed is None:
        with t.stage("pushdown"):
            pushed = push_inputs(cfg, p, as_of=as_of, loaded=loaded)
    progress.emit("validate", period=p.label, scope=scope)
    with t.stage("validate"):
        validation = contracts.validate(
            loaded,
            period=p,
            config=cfg,
            as_of=as_of,
            backfill=as_of is not None,
            in_database={n: (x.validation, x.origin) for n, x in pushed.items()},
        )
    aggregates = tuple(a for x in pushed.values() for a in x.first_levels)
    listed = {n: x.listed for n, x in pushed.items() if x.listed is not None}
    progress.emit("compute", period=p.label, scope=scope)
    with t.stage("compute"):
        table = kpis.compute_kpis(
            validation.clean,
            p,
            scope,
            config=cfg.kpis,
            unsound=validation.unsound_datasets,
            set_aside=validation.set_aside_notes(),
            constants=kpis.mapping_constants(cfg),
            as_of=as_of or cfg.review.as_of,
            aggregates={n: x.first_levels for n, x in pushed.items()},
        )
        built = review.build_pack(
            validation.clean,
            period=p,
            scope=scope,
            config=cfg,
            validation=validation,
            analyst_inputs=review.read_analyst_inputs(cfg),
            kpi_table=table,
            as_of=as_of,
            aggregates=aggregates,
            listed=listed,
        )
    prepared = Prepared(
        cfg,
        p,
        scope,
        loaded,
        validation,
        table,
        built.model,
        dict(t.seconds),
        built.registers,
        aggregates,
        as_of or cfg.review.as_of,
        listed,
    )
    if save_to is not None:
        save_prepared(prepared, save_to, as_of=as_of)
    return prepared


# --------------------------------------------------------------------------- reuse

PREPARED_FORMAT = "qmskpi.prepared/1"
PREPARED_META = "prepared.json"
"""What a saved folder was computed from (human-readable; written last)."""
PREPARED_DATA = "prepared.pickle"

_UNPICKLE_ALLOWED = frozenset(
    {
        ("datetime", "date"),
        ("datetime", "datetime"),
        ("pathlib", "PosixPath"),
        ("pathlib", "WindowsPath"),
        ("polars.dataframe.frame", "DataFrame"),
    }
)


class PreparedError(QmsKpiError):
    """A saved prepared review cannot be reused: another period or scope, or it is stale."""


class _PreparedUnpickler(pickle.Unpickler):
    """Rebuilds only qmskpi's dataclasses, polars frames and dates (no other callable)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _UNPICKLE_ALLOWED:
            return super().find_class(module, name)
        if module.startswith("qmskpi."):
            found = super().find_class(module, name)
            if isinstance(found, type) and dataclasses.is_dataclass(found):
                return found
        raise PreparedError(f"{PREPARED_DATA}: refuses to load {module}.{name}")


def _input_files(prepared: Prepared) -> list[dict[str, str]]:
    return [
        {"dataset": name, "path": str(prepared.config.resolve(f.path)), "sha256": f.sha256}
        for name, ds in sorted(prepared.loaded.items())
        for f in ds.files
    ]


def save_prepared(
    prepared: Prepared, folder: str | os.PathLike[str], *, as_of: date | None = None
) -> Path:
    """Save ``prepared`` in ``folder`` for another notebook to reuse (:func:`load_prepared`).

    ``prepared.json`` says what it was computed from (config file and digest, each
    input file's sha256, period, scope, qmskpi version); ``prepared.pickle`` holds
    the frames and the review (not the config: it is read again on reuse). A
    cache of your own run, like any pickle: reuse only folders you wrote.
    """
    cfg = prepared.config
    if cfg.path is None:
        raise PreparedError("only a review prepared from a config file can be saved")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = {f.name: getattr(prepared, f.name) for f in dataclasses.fields(prepared)}
    state.pop("config")
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    meta = {
        "format": PREPARED_FORMAT,
        "qmskpi": __version__,
        "period": prepared.period.label,
        "scope": prepared.scope,
        "as_of": as_of.isoformat() if as_of else None,
        "config_path": str(cfg.path),
        "config_digest": cfg.digest(),
        "inputs": _input_files(prepared),
        "not_rechecked": sorted(
            {n for n, ds in prepared.loaded.items() if not ds.files} | set(prepared.first_levels)
        ),
        "data_sha256": hashlib.sha256(blob).hexdigest(),
    }
    for name, data in (
        (PREPARED_DATA, blob),
        (PREPARED_META, json.dumps(meta, indent=2, sort_keys=True).encode("utf-8")),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, out / name)  # the metadata last: a half-written folder is never read
    return out


def load_prepared(
    folder: str | os.PathLike[str],
    *,
    period: Period | str | None = None,
    scope: str | None = None,
    config: Config | str | os.PathLike[str] | None = None,
) -> Prepared:
    """The review :func:`save_prepared` wrote, if it still matches its inputs.

    Refuses (:class:`PreparedError`) another period or scope than asked, a
    different qmskpi version, a config whose content changed, or an input file
    whose sha256 changed. SQL sources are not queried again (listed in
    ``not_rechecked``). ``config``: the notebook's own ``config_path``, which must
    then match the saved one; empty uses the saved config file.
    """
    where = Path(folder)
    meta_path = where / PREPARED_META
    if not meta_path.is_file():
        raise PreparedError(
            f"{where}: no {PREPARED_META}; save one with pipeline.prepare(save_to=)"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != PREPARED_FORMAT or meta.get("qmskpi") != __version__:
        raise PreparedError(
            f"{meta_path}: saved by qmskpi {meta.get('qmskpi')} ({meta.get('format')}); "
            f"this is {__version__}: prepare it again"
        )
    for key, want in (("period", period), ("scope", scope)):
        wanted = parse_period(want).label if key == "period" and want else want
        if wanted and meta[key] != wanted:
            raise PreparedError(f"{meta_path}: prepared for {key} {meta[key]!r}, not {wanted!r}")
    cfg = as_config(config or meta["config_path"])
    if cfg.digest() != meta["config_digest"]:
        raise PreparedError(
            f"{meta_path}: stale: {cfg.path} is not the config it was prepared with"
        )
    for record in meta["inputs"]:
        path = Path(record["path"])
        if not path.is_file() or archive.sha256_file(path) != record["sha256"]:
            raise PreparedError(f"{meta_path}: stale: {path} changed since it was prepared")
    blob = (where / PREPARED_DATA).read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["data_sha256"]:
        raise PreparedError(f"{where / PREPARED_DATA}: does not match {PREPARED_META}")
    state = _PreparedUnpickler(io.BytesIO(blob)).load()
    return Prepared(config=cfg, **state)


def prepared_for(
    config_path: str | os.PathLike[str] | None,
    period: Period | str,
    scope: str = "all",
    *,
    prepared_path: str | os.PathLike[str] = "",
) -> Prepared:
    """What a deep-dive notebook shows: the saved review in ``prepared_path`` (checked by
    :func:`load_prepared`), or, without one, :func:`prepare` from the config."""
    if prepared_path:
        return load_prepared(prepared_path, period=period, scope=scope, config=config_path)
    return prepare(config_path, period, scope)


def write_registers(prepared: Prepared, st: archive.Stage) -> list[str]:
    """Stage every register of the pack: ``register-<id>.csv`` each and ``registers.xlsx``.

    One sheet per register, named as the pack names it under each table; same
    formula neutralisation as ``kpis.csv`` / ``kpis.xlsx``. ``registers.xlsx``
    is written even with ``outputs.xlsx = false``: the pack's text points to it.
    Returns the file names.
    """
    sheets: dict[str, pl.DataFrame] = {}
    names: list[str] = []
    for t in prepared.review.tables:
        frame = prepared.registers.get(t.id)
        if not t.register or frame is None:
            continue
        name = review.register_file(t.id)
        render.write_csv(frame, st.file(name))
        names.append(name)
        sheets[t.register] = frame
    # The summary's exceptions and 9.3.2 f)'s opportunities: lists the pack also cuts short.
    for table_id, sheet, items in (
        ("exceptions", "Exceptions", prepared.review.exceptions),
        ("opportunities", "Opportunities", prepared.review.opportunities),
    ):
        if not items:
            continue
        frame = pl.DataFrame([dataclasses.asdict(i) for i in items], infer_schema_length=None)
        name = review.register_file(table_id)
        render.write_csv(frame, st.file(name))
        names.append(name)
        sheets[sheet] = frame
    if sheets:
        render.write_xlsx(sheets, st.file(review.REGISTERS_XLSX))
        names.append(review.REGISTERS_XLSX)
    return names


def _pushed_sources(cfg: Config) -> tuple[str, ...]:
    """:func:`qmskpi.pushdown.pushed_sources`, importing :mod:`qmskpi.pushdown` (and
    SQLAlchemy with it, ~0.2 s) only when a source has ``pushdown = true``."""
    if not any(s.pushdown for s in cfg.sources.values()):
        return ()
    from qmskpi import pushdown

    return pushdown.pushed_sources(cfg)


def load_inputs(cfg: Config, period: Period) -> sources.LoadedData:
    """Every configured source but those with ``pushdown = true`` (:func:`push_inputs`), with
    the review-actions register merged into ``review_actions``.

    The register (``<reports>/review-actions.csv``) holds the accepted actions
    of approved minutes: the next pack shows them under 9.3.2 a) with no retyping.
    """
    return minutes.with_register(
        sources.load_all(cfg, period=period, skip=_pushed_sources(cfg)),
        cfg.reports_dir / archive.REGISTER,
        until=period.end,
    )


def push_inputs(
    cfg: Config,
    period: Period,
    *,
    as_of: date | None = None,
    loaded: Mapping[str, sources.LoadedDataset] | None = None,
    backfill: bool | None = None,
) -> dict[str, pushdown.Pushed]:
    """Each source with ``pushdown = true``, validated and aggregated in its database.

    ``loaded``: the pulled sources; the values the pushed sources' ``reference`` rules
    look up come from them (:func:`qmskpi.pushdown.known_values`: the receipts'
    ``supplier_exists`` is then checked in the database), else those rules are not
    checked. ``backfill``: as for ``contracts.validate`` (default: an ``as_of`` given)."""
    names = _pushed_sources(cfg)
    if not names:
        return {}
    from qmskpi import pushdown

    back = as_of is not None if backfill is None else backfill
    shared = _RUN_PUSHED.get()
    key = (
        cfg.digest(),
        period.label,
        as_of,
        back,
        tuple(sorted((n, str(d.sha256)) for n, d in (loaded or {}).items())),
    )
    if shared is not None and key in shared:  # another scope of this run asked already
        return dict(shared[key])
    known = pushdown.known_values(cfg, period, loaded, as_of=as_of, backfill=back) if loaded else {}
    out: dict[str, pushdown.Pushed] = {}
    for name in names:
        progress.emit("load", detail=f"{name} (pushdown)", rows=0)
        out[name] = pushdown.push_down(cfg, name, period, as_of=as_of, known=known)
    if shared is not None:
        shared[key] = dict(out)
    return out


_RUN_PUSHED: contextvars.ContextVar[dict[tuple[object, ...], dict[str, pushdown.Pushed]] | None] = (
    contextvars.ContextVar("qmskpi_run_pushed", default=None)
)
"""What the databases returned, shared by the scopes of one :func:`run_scheduled` in this
process: every scope of a period asks the same question (the query binds no ``:site``; each
scope filters the aggregates), so the database answers it once per run, not once per scope."""


def closed_actions(cfg: Config) -> frozenset[str]:
    """Action ids the analyst's ``review_actions`` source reports closed (empty without one)."""
    if "review_actions" not in cfg.sources:
        return frozenset()
    try:
        frame = sources.load_dataset(cfg, "review_actions").frame
    except (QmsKpiError, OSError) as exc:
        log.warning("could not read review_actions to count open actions: %s", exc)
        return frozenset()
    return frozenset(frame.filter(pl.col("status") == "closed")["action_id"].drop_nulls().to_list())


def open_review_actions(
    config: Config | str | os.PathLike[str], *, as_of: date | str | None = None
) -> pl.DataFrame:
    """Review actions still open on ``as_of`` (default: ``[review] as_of`` or today), with ageing.

    Across periods: the analyst's ``review_actions`` source merged with the
    review-actions register of approved minutes (the analyst's row wins for an
    action id in both). See :func:`qmskpi.minutes.open_actions` for the columns.
    """
    cfg = as_config(config)
    loaded: sources.LoadedData = {}
    if "review_actions" in cfg.sources:
        loaded["review_actions"] = sources.load_dataset(cfg, "review_actions")
    register = cfg.reports_dir / archive.REGISTER
    merged = minutes.with_register(loaded, register)
    # Without either source the (absent) register gives an empty frame of the right shape.
    frame = (
        merged["review_actions"].frame
        if "review_actions" in merged
        else minutes.read_register(register)
    )
    day = date.fromisoformat(as_of) if isinstance(as_of, str) and as_of else as_of
    return minutes.open_actions(frame, as_of=day or cfg.review.as_of or date.today())


def review_for(
    config_path: str | os.PathLike[str],
    period: Period | str,
    scope: str = "all",
    *,
    review_inputs: str | os.PathLike[str] = "",
) -> review.ReviewModel:
    """The review model a notebook presents.

    A scheduled run passes ``review_inputs``, the ``review-inputs.json`` it has
    already computed, so the kernel neither re-reads the data nor imports
    Great Expectations; an analyst leaves it empty and the model is computed
    from the data the config names.
    """
    if review_inputs:
        return review.ReviewModel.from_json(Path(review_inputs))
    return prepare(config_path, period, scope).review


# =========================================================================== one pack

Status = Literal["published", "restated", "skipped", "failed"]
"""What a run did with one period and scope.

``published``: a new pack is visible; ``restated``: a new pack is visible and
some KPI values differ from the pack it superseded (kept, listed in the
manifest and the index); ``skipped``: the published pack already has the same
inputs; ``failed``: nothing changed for readers (the previous pack, if any,
is still the published one).
"""

# The exit codes live in qmskpi.errors (one list for validate, render and run).

STAGES = (
    "start",
    "loaded",
    "prepared",
    "staged",
    "exported",
    "compared",
    "rendered",
    "manifest",
    "packed",
    "flipped",
    "published",
)
"""Steps a run reports to ``on_stage``, in order (``packed``/``flipped`` come from the archive).

With small inputs the exports are written while the notebook runs: ``exported`` then
comes after ``compared``, just before ``rendered``."""


@dataclass(frozen=True)
class RunOutcome:
    """The result of rendering one period and scope (see :data:`Status`)."""

    period: str
    scope: str
    status: Status
    pack_dir: Path | None = None
    """The visible folder ``<reports>/<period>/<scope>`` (a link to the pack)."""
    pack_id: str | None = None
    html_path: Path | None = None
    pdf_path: Path | None = None
    error: str | None = None
    error_type: str | None = None
    restated_kpis: int = 0
    seconds: float = 0.0
    pdf_skipped: str | None = None
    """Why the pack was published without its PDF (``outputs.pdf = "optional"`` and no
    browser); None when it has one or none was asked for."""
    unsound_datasets: tuple[str, ...] = ()
    """Datasets whose figures are struck out in the pack (too many rows set aside, or a
    whole-table ``error`` rule failed)."""
    failed_datasets: tuple[str, ...] = ()
    """Datasets that broke an ``error`` rule (exit code 4), struck out or not."""
    empty_datasets: tuple[str, ...] = ()
    """Configured datasets with no usable rows: the pack says so on page 1."""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "scope": self.scope,
            "status": self.status,
            "pack_dir": str(self.pack_dir) if self.pack_dir else None,
            "pack_id": self.pack_id,
            "html_path": str(self.html_path) if self.html_path else None,
            "pdf_path": str(self.pdf_path) if self.pdf_path else None,
            "error": self.error,
            "error_type": self.error_type,
            "restated_kpis": self.restated_kpis,
            "seconds": self.seconds,
            "pdf_skipped": self.pdf_skipped,
            "unsound_datasets": list(self.unsound_datasets),
            "failed_datasets": list(self.failed_datasets),
            "empty_datasets": list(self.empty_datasets),
        }


class Renderer(Protocol):
    """What :func:`run_review` calls to render a staged pack (``render.render_pack`` by default)."""

    def __call__(
        self,
        stage_dir: Path,
        /,
        *,
        parameters: Mapping[str, object],
        title: str,
        pdf: bool,
        timeout_s: int,
        browser: render.PdfPrinter | None,
    ) -> render.RenderResult: ...


StageHook = Callable[[str], None]
"""Called with each step name of :data:`STAGES` (progress, fault injection in tests)."""

_KERNEL_START_FAILURES = (
    "address already in use",
    "eaddrinuse",
    "kernel didn't respond",
    "kernel died before replying to kernel_info",
    "zmqerror",
)


def _is_kernel_start_failure(exc: BaseException) -> bool:
    """A kernel that never started (a port or socket clash): worth one retry.

    A failure inside a cell (``cell_index`` set) is the notebook's fault and is
    not retried.
    """
    if getattr(exc, "cell_index", None) is not None:
        return False
    seen: BaseException | None = exc
    while seen is not None:
        detail = (getattr(seen, "ename", ""), getattr(seen, "evalue", ""))
        text = f"{type(seen).__name__}: {seen} {detail}".lower()
        if any(marker in text for marker in _KERNEL_START_FAILURES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _render_with_retry(renderer: Renderer, stage_dir: Path, **kwargs: Any) -> render.RenderResult:
    try:
        return renderer(stage_dir, **kwargs)
    except Exception as exc:
        if not _is_kernel_start_failure(exc):
            raise
        log.warning("kernel failed to start (%s); retrying once", exc)
        return renderer(stage_dir, **kwargs)


def _children() -> set[int]:
    """Pids of this process's descendants."""
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _kernel_family(kernel: render.StartedKernel | None) -> set[int]:
    """The pre-started kernel's pid and its descendants' (never mistaken for the caller's)."""
    pid = kernel.pid if kernel is not None else None
    if pid is None:
        return set()
    try:
        return {pid} | {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return {pid}


def _reap(before: set[int], *, grace_s: float = 3.0) -> list[int]:
    """Terminate descendants started since ``before`` (a kernel or browser left by a failure)."""
    stray = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    for proc in stray:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(stray, timeout=grace_s)  # also reaps this process's children
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace_s)
    if stray:
        log.warning("terminated %d process(es) left behind by a failed render", len(stray))
    return sorted(p.pid for p in stray)


def _input_records(
    cfg: Config,
    loaded: Mapping[str, sources.LoadedDataset],
    validation: contracts.ValidationReport | None = None,
    pushed: Mapping[str, pushdown.Pushed] | None = None,
) -> list[archive.InputRecord]:
    out = []
    for name, x in sorted((pushed or {}).items()):
        v = x.validation
        src = cfg.sources.get(name)
        out.append(
            archive.InputRecord(
                dataset=name,
                origin=x.origin,
                sha256=x.sha256,
                rows_in=v.rows_in,
                rows_used=v.rows_in - v.rows_quarantined,
                rows_quarantined=v.rows_quarantined,
                query=src.query if src is not None else None,
                pushdown=True,
            )
        )
    for name, ds in sorted(loaded.items()):
        src = cfg.sources.get(name)
        used = quarantined = None
        if validation is not None and name in validation.datasets:
            used = int(validation.datasets[name].rows_used)
            quarantined = int(validation.datasets[name].rows_quarantined)
        out.append(
            archive.InputRecord(
                dataset=name,
                origin=str(ds.origin),
                sha256=str(ds.sha256),
                rows_in=int(ds.rows_in),
                rows_used=used,
                rows_quarantined=quarantined,
                query=src.query if src is not None else None,
                files=tuple(
                    {"path": f.path, "sha256": f.sha256, "rows_in": f.rows_in} for f in ds.files
                ),
            )
        )
    return out


PDF_NAME = "management-review.pdf"
_PDF_OFF = 'not asked for (outputs.pdf = "off" or --no-pdf)'


def _wanted_outputs(*, pdf: bool, xlsx: bool) -> tuple[str, ...]:
    names = ["management-review.html", "kpis.csv", "review-inputs.json"]
    if pdf:
        names.append(PDF_NAME)
    if xlsx:
        names.append("kpis.xlsx")
    return tuple(names)


def _pdf_policy(pdf: bool | PdfPolicy | None, cfg: Config) -> PdfPolicy:
    if pdf is None:
        return cfg.outputs.pdf
    if isinstance(pdf, bool):
        return "required" if pdf else "off"
    return pdf


def _why_no_pdf(policy: PdfPolicy, browser: render.PdfPrinter | None) -> str | None:
    """Why the pack cannot have its PDF (no browser, or none asked for); None: print it."""
    if policy == "off":
        return _PDF_OFF
    if browser is not None and browser.executable is not None:
        return None
    return None if render.find_chromium() is not None else render.chromium_missing()


def _outcome_for(pack: archive.Pack, link: Path, status: Status, **extra: Any) -> RunOutcome:
    outputs = pack.manifest.get("outputs", {})
    return RunOutcome(
        period=pack.period,
        scope=pack.scope,
        status=status,
        pack_dir=link,
        pack_id=pack.id,
        html_path=link / "management-review.html" if "management-review.html" in outputs else None,
        pdf_path=link / PDF_NAME if PDF_NAME in outputs else None,
        **extra,
    )


def run_review(
    config: Config | str | os.PathLike[str],
    period: Period | str,
    scope: str = "all",
    *,
    as_of: date | None = None,
    force: bool = False,
    pdf: bool | PdfPolicy | None = None,
    browser: render.PdfPrinter | None = None,
    renderer: Renderer | None = None,
    on_stage: StageHook | None = None,
) -> RunOutcome:
    """Render, record and publish the pack of one period and scope.

    Prepare (load, validate, compute), stage ``kpis.csv``, ``kpis.xlsx``,
    ``review-inputs.json``, ``quarantine.csv``, ``validation.json`` (and
    ``restatement.csv``/``.json`` when published KPIs change), render the
    notebook, HTML and PDF, write ``manifest.json``, then publish atomically
    into ``<reports>/<period>/<scope>``. Skipped when the published pack has the
    same inputs digest and is intact, unless ``force``.

    Bad arguments (unknown scope, malformed period) raise
    :class:`~qmskpi.errors.ConfigError` / :class:`~qmskpi.errors.PeriodError`;
    any failure after that returns a ``failed`` outcome and leaves the
    published pack as it was. ``pdf`` overrides ``outputs.pdf`` (``True`` is
    ``"required"``, ``False`` is ``"off"``): without a browser, ``"required"``
    fails (nothing published), ``"optional"`` publishes the pack without its PDF
    and says why (``pdf_skipped``, the manifest's ``missing_outputs``); ``browser``
    reuses a running :class:`render.PdfPrinter`; ``renderer`` replaces
    :func:`render.render_pack`; ``on_stage`` is called with each of :data:`STAGES`.
    """
    cfg = as_config(config)
    p = parse_period(period)
    slug = archive.check_scope(cfg, scope)
    started = time.perf_counter()
    hook: StageHook = on_stage or (lambda _step: None)
    before = _children()
    try:
        with runtemp.run_tmpdir():  # the kernel's and Chromium's temporary files
            try:
                arch = archive.Archive(cfg.reports_dir)
                with arch.pack_lock(p.label, slug):
                    arch.clean_stale()
                    outcome = _run_locked(
                        cfg,
                        p,
                        scope,
                        slug,
                        arch,
                        as_of=as_of if as_of is not None else cfg.review.as_of,
                        force=force,
                        pdf=_pdf_policy(pdf, cfg),
                        browser=browser,
                        renderer=renderer or render.render_pack,
                        hook=hook,
                        before=before,
                    )
            except BaseException:
                _reap(before)  # before the temporary folder goes
                raise
    except Exception as exc:
        return _failed(p.label, scope, exc, cfg=cfg, seconds=time.perf_counter() - started)
    progress.emit("done", period=p.label, scope=scope, detail=outcome.status)
    try:  # on a skip too: a run killed just past publishing left the index behind
        arch.write_index(cfg.organisation, closed_actions=closed_actions(cfg))
    except OSError as exc:  # the pack is published; the next run rewrites the index
        log.warning("could not rewrite %s: %s", arch.root / archive.INDEX, exc)
    return replace(outcome, seconds=round(time.perf_counter() - started, 3))


def _failed(period: str, scope: str, exc: Exception, *, cfg: Config, seconds: float) -> RunOutcome:
    """The ``failed`` outcome of ``exc``, logged: one line for an expected error, a full disk too.

    A full disk (``ENOSPC``, a quota) becomes :class:`~qmskpi.errors.DiskFullError` naming the
    folder: the one the error names, else whichever of the reports folder and the temporary
    folder has less space left. Its traceback goes to the log at debug level (``-v``).
    """
    full = disk_full(exc)
    if full is not None and not isinstance(exc, DiskFullError):
        log.debug("%s/%s: disk full", period, scope, exc_info=exc)
        exc = DiskFullError(_full_folder(full, cfg), full)
    if isinstance(exc, QmsKpiError):
        log.error("%s/%s failed: %s", period, scope, exc)
    else:
        log.exception("%s/%s failed", period, scope)
    progress.emit("done", period=period, scope=scope, detail="failed")
    return RunOutcome(
        period,
        scope,
        "failed",
        error=f"{type(exc).__name__}: {exc}" if not isinstance(exc, QmsKpiError) else str(exc),
        error_type=type(exc).__name__,
        seconds=round(seconds, 3),
    )


def _full_folder(error: BaseException, cfg: Config) -> Path:
    """The folder a disk-full ``error`` is about (see :func:`_failed`)."""
    roots = [cfg.reports_dir.resolve(), Path(tempfile.gettempdir()).resolve()]
    filename = getattr(error, "filename", None)
    if filename:
        path = Path(filename).resolve()
        return next((r for r in roots if path.is_relative_to(r)), path.parent)
    free: list[tuple[int, int, Path]] = []
    for i, folder in enumerate(roots):
        with contextlib.suppress(OSError):
            free.append((shutil.disk_usage(folder).free, i, folder))
    return min(free)[2] if free else roots[0]


# Long by design: one pack's life under its lock, stage by stage (load, skip check, prepare,
# stage exports, compare, render, manifest, publish) with a hook between stages that the
# kill tests use; split, the stage order and the cleanup on each path would be spread out.
SMALL_INPUTS_BYTES = 256 * 2**20
"""Frames smaller than this in memory (the sample: ~3 MB; a 10M-row month: several GB)
let :func:`run_review` start Chromium before validating and write the exports while the
notebook runs: faster, at the price of Chromium and the frames being resident together."""


def _small_inputs(loaded: sources.LoadedData) -> bool:
    return sum(d.frame.estimated_size() for d in loaded.values()) < SMALL_INPUTS_BYTES


def _write_exports(prepared: Prepared, st: archive.Stage, review_json: bytes) -> None:
    """The files beside the pack drawn from the rows but ``review-inputs.json`` and ``kpis.csv``."""
    cfg = prepared.config
    if cfg.outputs.xlsx:
        render.write_xlsx({"kpis": prepared.kpis}, st.file("kpis.xlsx"))
    write_registers(prepared, st)
    minutes.write_template(
        prepared.review,
        st.file(minutes.TEMPLATE),
        minutes.identity_of(prepared.review, pack_id=st.pack_id, review_json=review_json),
    )
    contracts.write_quarantine_csv(prepared.validation, st.file("quarantine.csv"))
    contracts.write_validation_json(prepared.validation, st.file("validation.json"))


def _run_locked(
    cfg: Config,
    p: Period,
    scope: str,
    slug: str,
    arch: archive.Archive,
    *,
    as_of: date | None,
    force: bool,
    pdf: PdfPolicy,
    browser: render.PdfPrinter | None,
    renderer: Renderer,
    hook: StageHook,
    before: set[int],
) -> RunOutcome:
    hook("start")
    progress.emit("load", period=p.label, scope=scope, rows=0)
    t = Timings()
    with t.stage("load"):
        loaded = load_inputs(cfg, p)
    with t.stage("pushdown"):
        pushed = push_inputs(cfg, p, as_of=as_of, loaded=loaded)
    hook("loaded")
    config_digest = cfg.digest()
    digest = archive.inputs_digest(
        _input_records(cfg, loaded, pushed=pushed),
        config_digest=config_digest,
        version=__version__,
        period=p.label,
        scope=scope,
        as_of=as_of,
    )
    link = arch.link_path(p.label, slug)
    current = arch.current(p.label, slug)
    problems = current.verify() if current is not None else []
    if problems:
        log.warning(
            "%s/%s: published pack %s fails verification: %s",
            p.label,
            scope,
            current.id if current else "?",
            "; ".join(problems),
        )
    no_pdf = _why_no_pdf(pdf, browser)
    if current is not None and not force and current.inputs_digest == digest:
        missing = [
            n
            for n in _wanted_outputs(pdf=no_pdf is None or pdf == "required", xlsx=cfg.outputs.xlsx)
            if not current.file(n).is_file()
        ]
        if not problems and not missing:
            log.info("%s/%s is up to date (%s): skipped", p.label, scope, current.id)
            return _outcome_for(current, link, "skipped", **_pack_data_state(current))
        log.warning(
            "%s/%s: published pack %s has the same inputs but %s; rendering again",
            p.label,
            scope,
            current.id,
            "; ".join(problems) or "lacks " + ", ".join(missing),
        )

    if no_pdf is not None and pdf == "required":  # fail before anything is staged
        raise render.ChromiumNotFoundError(
            f'PDF required but {no_pdf}; or set [outputs] pdf = "optional" to publish without it'
        )
    if no_pdf is not None and pdf == "optional":
        log.debug("%s/%s: publishing without the PDF: %s", p.label, scope, no_pdf)

    # The default renderer gets a kernel started now: its process start and its
    # imports run on the other core while this one validates and computes.
    kernel = render.start_kernel() if renderer is render.render_pack else None
    # Chromium too, with the page it will print in. For small inputs at once, so that
    # it is up when the notebook ends; for large ones once the data is validated and
    # computed, so that it is not resident (~0.6 GB with its driver) while this
    # process holds its largest frames. A browser that cannot start fails the run
    # before the notebook runs (browser.start() below).
    small = _small_inputs(loaded)
    own_browser: render.ThreadedPrinter | None = None
    if browser is None and no_pdf is None and renderer is render.render_pack:
        own_browser = render.ThreadedPrinter(launch_timeout_s=cfg.outputs.browser_timeout_s)
        browser = own_browser
        if small:
            own_browser.start_soon(warm_up=True)
    exports: concurrent.futures.Future[None] | None = None
    try:
        prepared = prepare(cfg, p, scope, as_of=as_of, loaded=loaded, pushed=pushed)
        if own_browser is not None and not small:
            own_browser.start_soon()  # its page once the frames are let go (below)
        for name, seconds in prepared.timings.items():
            t.seconds[name] = seconds
        inputs = _input_records(cfg, loaded, prepared.validation, pushed)
        hook("prepared")

        # The exports' pool is shut down (waited for) before the staging folder is
        # cleaned up or published.
        with (
            arch.stage(p.label, scope) as st,
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="qmskpi-exports") as pool,
        ):
            hook("staged")
            with t.stage("exports"):
                # What the notebook and the restatement read, first.
                review_json = prepared.review.to_json().encode("utf-8")
                st.file("review-inputs.json").write_bytes(review_json)
                render.write_csv(prepared.kpis, st.file("kpis.csv"))
                if small:  # the rest on the other core, while the notebook runs
                    exports = pool.submit(_write_exports, prepared, st, review_json)
                    if renderer is render.render_pack:
                        pool.submit(render.warm_up_export)
                else:
                    _write_exports(prepared, st, review_json)
            state = _data_state(prepared.validation.to_dict())
            # Everything drawn from the rows is written (or, for small inputs, being
            # written): let the frames go, so that their memory is returned while the
            # notebook and Chromium run (the process tree's peak at 10M rows would
            # otherwise hold both).
            del prepared, loaded
            if own_browser is not None and not small:
                own_browser.open_page_soon()  # the frames are let go: off the print's path
            if exports is None:
                hook("exported")

            cmp = _restatement(st, current, inputs, config_digest=config_digest, problems=problems)
            cmp = _keep_minuted(arch, current, cmp)
            hook("compared")

            parameters = {
                "period": p.label,
                "scope": scope,
                "config_path": str(cfg.path) if cfg.path is not None else "",
                "review_inputs": str(st.file("review-inputs.json")),
            }
            title = f"{cfg.organisation} — management review inputs {p.label} ({scope})"
            if browser is not None and no_pdf is None:
                # Started (or its launch awaited) now: a browser that cannot start fails
                # here, before the notebook. The caller's browser is the caller's: the
                # clean-up after a failure must not take it for a leftover.
                progress.emit("browser")
                browser.start()
                if own_browser is None:
                    before.update(_children() - _kernel_family(kernel))
            extra: dict[str, Any] = {}
            if renderer is render.render_pack:  # the real renderer takes these too
                extra = {"kernel": kernel, "browser_timeout_s": cfg.outputs.browser_timeout_s}
            with t.stage("render"):
                result = _render_with_retry(
                    renderer,
                    st.path,
                    parameters=parameters,
                    title=title,
                    pdf=no_pdf is None,
                    timeout_s=cfg.outputs.notebook_timeout_s,
                    browser=browser,
                    **extra,
                )
            for step, seconds in result.timings.items():
                t.seconds[f"render.{step}"] = seconds
            if exports is not None:
                with t.stage("exports"):
                    exports.result()
                hook("exported")
            hook("rendered")

            status: Status = "restated" if cmp.supersede and cmp.restatement else "published"
            manifest = archive.build_manifest(
                st,
                organisation=cfg.organisation,
                inputs=inputs,
                inputs_digest=digest,
                config_digest=config_digest,
                config_path=str(cfg.path) if cfg.path is not None else None,
                # The notebook read the staged copy; the manifest names the pack's own file.
                parameters={**parameters, "review_inputs": "review-inputs.json"},
                timings=t.seconds,
                outcome=status,
                supersedes=cmp.supersedes,
                replaces=cmp.replaces,
                restatement=cmp.restatement,
                missing_outputs={PDF_NAME: no_pdf} if no_pdf is not None else None,
                as_of=as_of,
            )
            st.write_manifest(manifest)
            hook("manifest")
            progress.emit("publish")
            pack = arch.publish(st, keep_previous=cmp.supersede, hook=hook)
            hook("published")
        changed = int(cmp.restatement["changed_kpis"]) if cmp.supersede and cmp.restatement else 0
        skipped = no_pdf if pdf == "optional" else None
        for name in state["empty_datasets"]:
            log.warning("%s/%s: dataset %s has no usable rows", p.label, scope, name)
        return _outcome_for(pack, link, status, restated_kpis=changed, pdf_skipped=skipped, **state)
    finally:
        if kernel is not None:
            kernel.shutdown()  # used by the render or not: never outlives the run
        if own_browser is not None:
            own_browser.close()


def restatement_for(review_inputs: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The restatement staged beside ``review_inputs`` (``restatement.json``), or None.

    For the notebook: a scheduled run stages ``restatement.json`` next to
    ``review-inputs.json`` before the kernel starts, when the KPIs of an already
    published period changed; the pack can then show what changed and why.
    """
    if not str(review_inputs):
        return None
    path = Path(review_inputs).with_name("restatement.json")
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class _Comparison:
    """How a new pack relates to the published one (for the manifest and the publish)."""

    supersede: bool = False
    """KPI values changed: keep the published pack as superseded."""
    restatement: dict[str, Any] | None = None
    supersedes: list[dict[str, Any]] = field(default_factory=list)
    replaces: dict[str, Any] | None = None


def _keep_minuted(
    arch: archive.Archive, current: archive.Pack | None, cmp: _Comparison
) -> _Comparison:
    """A pack its minutes refer to is what was reviewed: keep it as superseded, never remove it."""
    if current is None or cmp.supersede:
        return cmp
    try:
        minuted = arch.current_minutes(current.period, archive.scope_slug(current.scope))
    except PublishError:
        minuted = None
    if minuted is None or minuted.manifest.get("pack", {}).get("id") != current.id:
        return cmp
    old_ref = {"id": current.id, "created_at": current.created_at, "reason": "minuted"}
    return replace(cmp, supersede=True, supersedes=[old_ref, *current.superseded], replaces=None)


def _definition_changes(old_inputs: Path, kpi_ids: Sequence[str]) -> list[dict[str, str | None]]:
    """The measures among ``kpi_ids`` whose written definition is not the one the old pack used.

    The old definition is read from the superseded pack's own ``review-inputs.json``
    (its KPI definitions table), so a restatement caused by a revised definition
    says so even when qmskpi's version number did not move. ``None`` on one side:
    the measure is new, or no longer computed. A pack without that table (or
    unreadable) gives no entries: nothing is claimed that cannot be shown.
    """
    try:
        model = json.loads(old_inputs.read_text(encoding="utf-8"))
        table = next(t for t in model.get("tables", []) if t.get("id") == "kpi_definitions")
        cols = [c["id"] for c in table["columns"]]
        at_kpi, at_def = cols.index("kpi"), cols.index("definition")
        old = {str(r[at_kpi]): " ".join(str(r[at_def]).split()) for r in table["rows"]}
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return []
    out: list[dict[str, str | None]] = []
    for kpi in sorted(set(kpi_ids)):
        spec = kpis.REGISTRY.get(kpi)
        new = " ".join(str(spec.definition).split()) if spec is not None else None
        if old.get(kpi) != new:
            out.append({"kpi": kpi, "old_definition": old.get(kpi), "new_definition": new})
    return out


def _replacement(
    st: archive.Stage, current: archive.Pack, old_ref: Mapping[str, Any]
) -> _Comparison:
    """Same KPIs as the published pack: it is replaced; a restatement it carried (still true
    of the same figures) and its superseded packs are carried on."""
    carried = current.manifest.get("restatement")
    if carried:
        for name in ("restatement.csv", "restatement.json"):
            if current.file(name).is_file():
                shutil.copyfile(current.file(name), st.file(name))
        carried = {**carried, "carried_from": current.id}
    return _Comparison(
        restatement=carried,
        supersedes=current.superseded,
        replaces={**old_ref, "kpis_changed": False},
    )


def _restatement(
    st: archive.Stage,
    current: archive.Pack | None,
    inputs: Sequence[archive.InputRecord],
    *,
    config_digest: str,
    problems: Sequence[str] = (),
) -> _Comparison:
    """Compare the staged KPIs with the published pack's; stage the restatement files.

    When KPI values differ, the published pack is superseded (kept under
    ``.packs/``) and ``restatement.csv`` / ``restatement.json`` list each
    changed KPI with its old and new value and the inputs whose sha256 changed.
    When they do not, the published pack is replaced (removed once the new one
    is visible): its superseded packs, and a restatement it carried (still true
    of the same figures), are carried on. A published pack that fails
    verification (``problems``: a file changed or missing) cannot be compared
    with; it is kept as superseded, as evidence, with the problems as the reason.
    """
    if current is None:
        return _Comparison()
    old_ref = {"id": current.id, "created_at": current.created_at}
    if problems:
        reason = "failed verification: " + "; ".join(problems)
        return _Comparison(
            supersede=True, supersedes=[{**old_ref, "reason": reason}, *current.superseded]
        )
    old_csv = current.file("kpis.csv")
    if not old_csv.is_file():
        raise PublishError(f"published pack {current.id} has no kpis.csv to compare with")
    changes = archive.compare_kpis(old_csv, st.file("kpis.csv"))
    if changes.height == 0:
        return _replacement(st, current, old_ref)
    changed_inputs = archive.changed_inputs(current.manifest, inputs)
    definitions = _definition_changes(
        current.file("review-inputs.json"), changes["kpi"].unique().to_list()
    )
    old_config = current.manifest.get("config", {}).get("digest")
    old_version = current.manifest.get("versions", {}).get("qmskpi")
    detail = {
        "superseded": old_ref,
        "period": st.period,
        "scope": st.scope,
        "changed_inputs": changed_inputs,
        "config_changed": old_config != config_digest,
        "old_config_digest": old_config,
        "new_config_digest": config_digest,
        "qmskpi_changed": old_version != __version__,
        "old_qmskpi": old_version,
        "new_qmskpi": __version__,
        "definitions_changed": definitions,
        "kpis": changes.to_dicts(),
    }
    datasets = ";".join(c["dataset"] for c in changed_inputs)
    redefined = [d["kpi"] for d in definitions]
    table = changes.with_columns(
        pl.col("kpi").is_in(redefined).alias("definition_changed"),
        pl.lit(current.id).alias("superseded_pack"),
        pl.lit(current.created_at).alias("superseded_created_at"),
        pl.lit(datasets).alias("changed_inputs"),
    )
    render.write_csv(table, st.file("restatement.csv"))
    render.write_json(detail, st.file("restatement.json"))
    return _Comparison(
        supersede=True,
        restatement={
            "changed_kpis": changes.height,
            "superseded": old_ref,
            "changed_inputs": changed_inputs,
            "config_changed": detail["config_changed"],
            "definitions_changed": redefined,
            "files": ["restatement.csv", "restatement.json"],
        },
        supersedes=[{**old_ref, "reason": "restatement"}, *current.superseded],
    )


# =========================================================================== scheduled run


def _data_state(validation: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Unsound, failed and empty datasets from a report's ``to_dict()`` form (``validation.json``)."""
    datasets = validation.get("datasets", {})
    return {
        "unsound_datasets": tuple(sorted(validation.get("unsound_datasets", ()))),
        "failed_datasets": tuple(
            sorted(
                n
                for n, d in datasets.items()
                if not d.get("loaded", True) or d.get("errors_failed")
            )
        ),
        "empty_datasets": tuple(
            n for n, d in datasets.items() if d.get("loaded", True) and not d.get("rows_used")
        ),
    }


def _pack_data_state(pack: archive.Pack) -> dict[str, tuple[str, ...]]:
    """The data state of a published pack, read from its ``validation.json``."""
    try:
        return _data_state(json.loads(pack.file("validation.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def validation_exit_code(validation: Mapping[str, Any], *, strict: bool = False) -> int:
    """``qmskpi validate``'s exit code from a report's ``to_dict()`` form.

    :data:`EXIT_NO_DATA` (5) when a configured dataset has no usable rows,
    :data:`EXIT_RULES` (4) when an ``error`` rule failed (or, with ``strict``,
    a warning rule), else :data:`EXIT_OK` (0): the same meaning as for ``render``.
    """
    state = _data_state(validation)
    if state["empty_datasets"]:
        return EXIT_NO_DATA
    if state["failed_datasets"]:
        return EXIT_RULES
    datasets = validation.get("datasets", {}).values()
    if strict and any(d.get("warnings_failed") for d in datasets):
        return EXIT_RULES
    return EXIT_OK


def exit_code(outcomes: Sequence[RunOutcome]) -> int:
    """The process exit code for cron, systemd and Airflow (:data:`qmskpi.errors.EXIT_CODES`).

    A failed run decides first: :data:`EXIT_USAGE` (2) for a bad command line,
    :data:`EXIT_INPUT` (3) for a config or source error, else :data:`EXIT_FAILED`
    (1). When every pack was published or skipped: :data:`EXIT_NO_DATA` (5) when
    a configured dataset had no usable rows, :data:`EXIT_RULES` (4) when a
    dataset broke an ``error`` rule, else :data:`EXIT_OK` (0).
    """
    codes = {exit_code_for_error(o.error_type or "") for o in outcomes if o.status == "failed"}
    for code in (EXIT_USAGE, EXIT_INPUT, EXIT_FAILED):
        if code in codes:
            return code
    if any(o.empty_datasets for o in outcomes):
        return EXIT_NO_DATA
    if any(o.failed_datasets for o in outcomes):
        return EXIT_RULES
    return EXIT_OK


def plan_periods(
    config: Config,
    *,
    as_of: date | None = None,
    since: Period | str | None = None,
    scopes: Sequence[str] | None = None,
) -> dict[str, list[Period]]:
    """The periods each scope needs, oldest first (every configured scope, or ``scopes``).

    The last complete period (``review.granularity``) as of ``as_of`` (default:
    ``review.as_of``, else today); with ``since``, every period from ``since`` to
    that one. Without it, a scope that has published packs also catches up the
    periods between its newest published pack and the last complete period
    (runs the timer missed). Raises :class:`~qmskpi.errors.PeriodError` when
    ``since`` is not of the configured granularity or is after the last complete period.
    """
    today = as_of or config.review.as_of or date.today()
    gran = config.review.granularity
    last = last_complete(today, gran)
    first: Period | None = None
    if since is not None:
        first = parse_period(since)
        if first.granularity != gran:
            raise PeriodError(
                f"--since {first.label} is a {first.granularity}; this config reviews by {gran}"
            )
        if first > last:
            raise PeriodError(
                f"--since {first.label} is after the last complete {gran} ({last.label}) "
                f"as of {today.isoformat()}"
            )
    arch = archive.Archive(config.reports_dir)
    newest: dict[str, Period] = {}
    if first is None:
        for pack in arch.published():
            try:
                pp = parse_period(pack.period)
            except PeriodError:
                continue
            if pp.granularity == gran and (pack.scope not in newest or pp > newest[pack.scope]):
                newest[pack.scope] = pp
    plan: dict[str, list[Period]] = {}
    for scope in config.scopes if scopes is None else dict.fromkeys(scopes):
        archive.check_scope(config, scope)
        start = first
        if start is None:
            seen = newest.get(scope)
            start = seen.next() if seen is not None and seen < last else last
        periods = [start]
        while periods[-1] < last:
            periods.append(periods[-1].next())
        plan[scope] = periods
    return plan


def _run_one(
    config: Config,
    period: str,
    scope: str,
    as_of: date | None,
    force: bool,
    renderer: Renderer | None,
) -> RunOutcome:
    """One pack in a worker process (module level so a process pool can pickle it)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    try:
        return run_review(config, period, scope, as_of=as_of, force=force, renderer=renderer)
    except QmsKpiError as exc:
        return RunOutcome(period, scope, "failed", error=str(exc), error_type=type(exc).__name__)


def _scope_pool(
    cfg: Config, *, jobs: int | None, executor: ExecutorName | None, scheduler: str | None
) -> Executor | None:
    """Where the scopes of a period run: None (one after another, here), local worker
    processes, or Dask tasks. Arguments left None come from ``[run]`` of the config."""
    executor = executor or cfg.run.executor
    jobs = jobs if jobs is not None else cfg.run.jobs
    scheduler = scheduler or (cfg.run.scheduler if executor == "dask" else None)
    if executor not in EXECUTORS:
        raise ConfigError(
            f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}", key="executor"
        )
    if jobs < 1:
        raise ConfigError(f"jobs must be 1 or more, got {jobs}", key="jobs")
    if executor == "dask":
        if scheduler is not None and jobs > 1:
            raise ConfigError(
                "jobs sets the workers of a local Dask cluster; with a scheduler, "
                "its workers decide how many scopes run at once",
                key="jobs",
            )
        from qmskpi import fanout  # the optional extra: imported only when asked for

        return fanout.DaskExecutor(scheduler=scheduler, workers=jobs)
    if scheduler is not None:
        raise ConfigError("a scheduler address needs executor 'dask'", key="scheduler")
    if jobs == 1:
        return None
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))


# Long by design: plan, then one of two dispatch loops (here, one after another, with a printer
# thread; or a pool of processes / Dask tasks), then index and notification: the two loops
# share the outcome and progress bookkeeping that a split would pass around.
@runtemp.in_run_tmpdir
def run_scheduled(
    config: Config | str | os.PathLike[str],
    *,
    as_of: date | None = None,
    since: Period | str | None = None,
    force: bool = False,
    jobs: int | None = None,
    notify: str | Sequence[str] | None = None,
    renderer: Renderer | None = None,
    executor: ExecutorName | None = None,
    scheduler: str | None = None,
    scopes: Sequence[str] | None = None,
) -> list[RunOutcome]:
    """What ``qmskpi run`` does: every scope, last complete period, catch-up; one outcome each.

    Periods come from :func:`plan_periods` and are rendered oldest first; the
    scopes of one period run in ``jobs`` worker processes, or as Dask tasks with
    ``executor="dask"`` (on the cluster at ``scheduler``, else on a local cluster
    of ``jobs`` workers; :mod:`qmskpi.fanout`). ``jobs``, ``executor`` and
    ``scheduler`` default to ``[run]`` of the config. ``scopes`` limits the run
    to those scopes (default: every configured scope). A pack already
    published with the same inputs is skipped unless ``force``. When any run
    fails and ``notify`` is set, the failure summary is sent (see
    :func:`notify_failure`). Configuration or usage errors found before any
    rendering (an unreachable scheduler, Dask not installed) raise
    :class:`~qmskpi.errors.QmsKpiError`, after sending :func:`error_summary` to ``notify``.
    """
    cfg: Config | None = None
    try:  # a broken config or command line must not fail silently under a scheduler
        cfg = as_config(config)
        as_of = as_of or cfg.review.as_of
        plan = plan_periods(cfg, as_of=as_of, since=since, scopes=scopes)
        pool = _scope_pool(cfg, jobs=jobs, executor=executor, scheduler=scheduler)
    except QmsKpiError as exc:
        if notify:
            notify_error(notify, exc, organisation=cfg.organisation if cfg is not None else "")
        raise
    by_period: dict[Period, list[str]] = {}
    for scope, periods in plan.items():
        for pp in periods:
            by_period.setdefault(pp, []).append(scope)
    arch = archive.Archive(cfg.reports_dir)
    arch.clean_stale()
    outcomes: list[RunOutcome] = []
    total = sum(len(names) for names in by_period.values())
    if pool is None:
        # Printed from a thread of its own: the caller may be a Jupyter kernel
        # (jupyter-scheduler) whose running asyncio loop playwright's sync API refuses.
        printer = (
            render.ThreadedPrinter(launch_timeout_s=cfg.outputs.browser_timeout_s)
            if renderer is None
            else None
        )
        shared = _RUN_PUSHED.set({})  # the scopes of a period share the databases' answers
        try:
            for pp in sorted(by_period):
                for scope in by_period[pp]:
                    progress.emit(
                        "pack", period=pp.label, scope=scope, index=len(outcomes) + 1, total=total
                    )
                    o = run_review(
                        cfg,
                        pp,
                        scope,
                        as_of=as_of,
                        force=force,
                        browser=printer,
                        renderer=renderer,
                    )
                    if o.status == "failed" and printer is not None:
                        with contextlib.suppress(Exception):  # it may have crashed
                            printer.close()  # started afresh by the next pack
                    outcomes.append(o)
        finally:
            _RUN_PUSHED.reset(shared)
            if printer is not None:
                with contextlib.suppress(Exception):
                    printer.close()
    else:
        with pool:
            for pp in sorted(by_period):
                futures = [
                    (scope, pool.submit(_run_one, cfg, pp.label, scope, as_of, force, renderer))
                    for scope in by_period[pp]
                ]
                for scope, future in futures:
                    progress.emit(
                        "pack", period=pp.label, scope=scope, index=len(outcomes) + 1, total=total
                    )
                    try:
                        outcomes.append(future.result())
                    except Exception as exc:  # a worker died (killed, out of memory)
                        log.error("%s/%s: worker failed: %s", pp.label, scope, exc)
                        outcomes.append(
                            RunOutcome(
                                pp.label,
                                scope,
                                "failed",
                                error=f"{type(exc).__name__}: {exc}",
                                error_type=type(exc).__name__,
                            )
                        )
    try:
        arch.write_index(cfg.organisation, closed_actions=closed_actions(cfg))
    except OSError as exc:
        log.warning("could not rewrite %s: %s", arch.root / archive.INDEX, exc)
    if notify and any(o.status == "failed" for o in outcomes):
        notify_failure(notify, outcomes, organisation=cfg.organisation)
    return outcomes


def failure_summary(outcomes: Sequence[RunOutcome], *, organisation: str = "") -> dict[str, Any]:
    """The JSON a notification carries: what failed, what else happened, the exit code."""
    return {
        "event": "qmskpi.run.failed",
        "organisation": organisation,
        "host": platform.node(),
        "qmskpi": __version__,
        "exit_code": exit_code(outcomes),
        "failed": [o.to_dict() for o in outcomes if o.status == "failed"],
        "outcomes": [o.to_dict() for o in outcomes],
    }


def notify_failure(
    notify: str | Sequence[str],
    outcomes: Sequence[RunOutcome],
    *,
    organisation: str = "",
    timeout_s: float = 30.0,
) -> bool:
    """Send the failure summary; return True when the receiver accepted it.

    ``notify`` is a webhook URL (``http://`` or ``https://``; the summary is
    POSTed as JSON) or a command (an argv list, or a string split like a shell
    would but run without one): it gets the summary as JSON on stdin, and no
    data is ever put on its command line. A failing notification is logged,
    never raised: it must not hide the run's own exit code.
    """
    summary = failure_summary(outcomes, organisation=organisation)
    return _send_notification(notify, summary, timeout_s=timeout_s)


def error_summary(
    error: BaseException, *, organisation: str = "", exit_code: int | None = None
) -> dict[str, Any]:
    """The JSON a notification carries when a configuration or usage error stopped the run."""
    return {
        "event": "qmskpi.run.error",
        "organisation": organisation,
        "host": platform.node(),
        "qmskpi": __version__,
        "exit_code": exit_code
        if exit_code is not None
        else exit_code_for_error(type(error).__name__),
        "error": str(error),
        "error_type": type(error).__name__,
        "failed": [],
        "outcomes": [],
    }


def notify_error(
    notify: str | Sequence[str],
    error: BaseException,
    *,
    organisation: str = "",
    exit_code: int | None = None,
    timeout_s: float = 30.0,
) -> bool:
    """Send :func:`error_summary` like :func:`notify_failure` (a broken config must not be silent)."""
    summary = error_summary(error, organisation=organisation, exit_code=exit_code)
    return _send_notification(notify, summary, timeout_s=timeout_s)


def _send_notification(
    notify: str | Sequence[str], summary: Mapping[str, Any], *, timeout_s: float
) -> bool:
    """POST ``summary`` to a webhook URL, or give it on stdin to a command; log a failure."""
    body = json.dumps(summary, sort_keys=True).encode()
    if isinstance(notify, str) and notify.lower().startswith(("http://", "https://")):
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            notify,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"qmskpi/{__version__}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                ok = 200 <= int(response.status) < 300
        except (OSError, ValueError) as exc:
            log.error("failure notification to %s failed: %s", notify, exc)
            return False
        if not ok:
            log.error("failure notification to %s: HTTP %s", notify, response.status)
        return ok
    argv = shlex.split(notify) if isinstance(notify, str) else [str(a) for a in notify]
    if not argv:
        log.error("failure notification: empty command")
        return False
    try:
        done = subprocess.run(argv, input=body, capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("failure notification command %s failed: %s", argv[0], exc)
        return False
    if done.returncode != 0:
        log.error(
            "failure notification command %s exited %d: %s",
            argv[0],
            done.returncode,
            done.stderr.decode(errors="replace").strip()[:500],
        )
    return done.returncode == 0


def outcomes_frame(outcomes: Sequence[RunOutcome]) -> pl.DataFrame:
    """One row per outcome (period, scope, status, pack, error): for a notebook or a log."""
    schema = {
        "period": pl.String,
        "scope": pl.String,
        "status": pl.String,
        "pack_id": pl.String,
        "restated_kpis": pl.Int64,
        "seconds": pl.Float64,
        "error": pl.String,
    }
    rows = [{k: v for k, v in o.to_dict().items() if k in schema} for o in outcomes]
    return pl.DataFrame(rows, schema=schema)


def require_success(outcomes: Sequence[RunOutcome]) -> list[RunOutcome]:
    """Return ``outcomes``, or raise :class:`~qmskpi.errors.PublishError` naming each failure.

    For schedulers that judge a job by an exception rather than an exit code
    (a jupyter-scheduler notebook job).
    """
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        lines = "; ".join(f"{o.period}/{o.scope}: {o.error}" for o in failed)
        raise PublishError(f"{len(failed)} of {len(outcomes)} pack(s) failed: {lines}")
    return list(outcomes)


# =========================================================================== minutes


@dataclass(frozen=True)
class MinutesOutcome:
    """What ``qmskpi minutes`` did: a new version published, or nothing changed."""

    period: str
    scope: str
    status: Literal["published", "unchanged"]
    minutes_id: str
    version: int
    approved: bool
    path: Path
    changes: int = 0
    actions_registered: int = 0


@runtemp.in_run_tmpdir
def publish_minutes(
    config: Config | str | os.PathLike[str],
    period: Period | str,
    scope: str,
    source: str | os.PathLike[str],
    *,
    pdf: bool | PdfPolicy | None = None,
    printer: render.PdfPrinter | None = None,
) -> MinutesOutcome:
    """Validate a filled ``minutes.xlsx`` and publish the minutes beside the pack.

    The template must belong to the published pack of ``period`` and
    ``scope`` (:class:`~qmskpi.minutes.MinutesError` otherwise, naming sheet,
    row and column). Every call that changes the record publishes a new
    version (``minutes.html``, ``minutes.pdf``, ``minutes.json``, the filled
    workbook, ``changes.json`` for a correction) atomically under
    ``<reports>/<period>/_minutes/<scope>``, with a manifest that records the
    pack's manifest sha256. An approved version is never changed or removed:
    a correction is a new version that shows what changed. The accepted
    actions of an approved version are appended to the review-actions register.
    ``pdf`` overrides ``outputs.pdf`` as for packs: without a browser, ``required``
    raises :class:`~qmskpi.errors.RenderError` and ``optional`` publishes HTML only.
    """
    cfg = as_config(config)
    p = parse_period(period)
    slug = archive.check_scope(cfg, scope)
    arch = archive.Archive(cfg.reports_dir)
    src = Path(source)
    if not src.is_file():
        raise SourceError(f"{src}: no such file (the filled minutes.xlsx of the pack)")
    with arch.pack_lock(p.label, slug):
        pack = arch.current(p.label, slug)
        if pack is None:
            raise PeriodError(  # a --period/--site with nothing to minute: a usage error (2)
                f"no published pack for {p.label} ({scope}): render it first, then fill in "
                f"its {minutes.TEMPLATE}"
            )
        problems = pack.verify()
        if problems:
            raise PublishError(f"the published pack {pack.id} fails verification: {problems}")
        expected = minutes.PackIdentity(
            p.label, scope, pack.id, archive.sha256_file(pack.file("review-inputs.json"))
        )
        record = minutes.read_filled(src, expected=expected)
        current = arch.current_minutes(p.label, slug)
        previous = (
            minutes.Minutes.from_dict(json.loads(current.file("minutes.json").read_text("utf-8")))
            if current is not None
            else None
        )
        if current is not None and previous is not None and previous == record:
            return MinutesOutcome(
                p.label,
                scope,
                "unchanged",
                current.id,
                int(current.manifest.get("version", 1)),
                previous.approved,
                arch.minutes_link_path(p.label, slug),
            )
        outcome = _stage_minutes(cfg, arch, pack, record, src, current, previous, pdf, printer)
    try:
        arch.write_index(cfg.organisation, closed_actions=closed_actions(cfg))
    except OSError as exc:
        log.warning("could not rewrite %s: %s", arch.root / archive.INDEX, exc)
    return outcome


# Long by design: the minutes' stage -> files -> manifest -> publish -> register sequence
# reads top to bottom like _run_locked's; the manifest literal is most of it.
def _stage_minutes(
    cfg: Config,
    arch: archive.Archive,
    pack: archive.Pack,
    record: minutes.Minutes,
    src: Path,
    current: archive.Pack | None,
    previous: minutes.Minutes | None,
    pdf: bool | PdfPolicy | None,
    printer: render.PdfPrinter | None,
) -> MinutesOutcome:
    version = int(current.manifest.get("version", 0)) + 1 if current is not None else 1
    changed = minutes.changes(previous, record) if previous is not None else []
    was_approved = current is not None and current.manifest.get("status") == "approved"
    supersedes: list[dict[str, Any]] = []
    if current is not None:
        kept = list(current.manifest.get("supersedes", []))
        supersedes = (
            [{"id": current.id, "version": version - 1, "status": "approved"}, *kept]
            if was_approved
            else kept
        )
    policy = _pdf_policy(pdf, cfg)
    no_pdf = _why_no_pdf(policy, printer)
    if no_pdf is not None and policy == "required":
        raise RenderError(f"the minutes PDF cannot be printed: {no_pdf}")
    source_sha = archive.sha256_file(src)
    meeting = record.meeting
    with arch.stage(pack.period, pack.scope, kind="minutes") as st:
        shutil.copyfile(src, st.file("minutes-filled.xlsx"))
        st.file("minutes.json").write_text(record.to_json(), encoding="utf-8")
        if changed:
            st.file("changes.json").write_text(archive.dumps(changed), encoding="utf-8")
        page = minutes.minutes_html(
            record,
            organisation=cfg.organisation,
            version=version,
            pack_manifest_sha256=archive.sha256_file(pack.file(archive.MANIFEST)),
            template_sha256=source_sha,
            changed=changed,
            previous_id=current.id if current is not None else None,
        )
        html_path = st.file("minutes.html")
        html_path.write_text(page, encoding="utf-8")
        if no_pdf is None:
            render.print_pdf(
                html_path,
                st.file("minutes.pdf"),
                timeout_s=int(cfg.outputs.browser_timeout_s),
                printer=printer,
            )
        manifest = {
            "schema": archive.MINUTES_SCHEMA,
            "minutes_id": st.pack_id,
            "organisation": cfg.organisation,
            "period": pack.period,
            "scope": pack.scope,
            "version": version,
            "status": "approved" if record.approved else "draft",
            "approval": {"by": meeting.approved_by, "on": meeting.approved_on.isoformat()}
            if meeting.approved_on is not None
            else None,
            "meeting_date": meeting.meeting_date.isoformat(),
            "created_at": archive.iso_utc(st.created_at),
            "pack": {
                "id": pack.id,
                "manifest_sha256": archive.sha256_file(pack.file(archive.MANIFEST)),
            },
            "source": {"sha256": source_sha},
            "actions": [record.action_id(d) for d in record.actions],
            "changes": len(changed),
            "no_pdf": no_pdf,
            "supersedes": supersedes,
            "versions": archive.package_versions(),
            "outputs": st.outputs(),
        }
        st.write_manifest(manifest)
        published = arch.publish(st, keep_previous=was_approved)
    registered = 0
    if record.approved:
        rows = minutes.register_rows(record, minutes_id=published.id)
        if rows:
            arch.append_register(rows, minutes.REGISTER_COLUMNS)
        registered = len(rows)
    log.info(
        "minutes %s/%s version %d published as %s", pack.period, pack.scope, version, published.id
    )
    return MinutesOutcome(
        pack.period,
        pack.scope,
        "published",
        published.id,
        version,
        record.approved,
        arch.minutes_link_path(pack.period, archive.scope_slug(pack.scope)),
        changes=len(changed),
        actions_registered=registered,
    )
