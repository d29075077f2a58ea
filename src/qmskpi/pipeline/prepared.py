"""One period and scope prepared (load, validate, compute the KPIs, build the review model),
and a prepared review saved for notebooks started by another (:func:`save_prepared`,
:func:`load_prepared`, :func:`prepared_for`)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pickle
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from qmskpi import __version__, _reprs, archive, contracts, kpis, progress, review, sources
from qmskpi.config import Config
from qmskpi.errors import QmsKpiError
from qmskpi.kpis.firstlevel import FirstLevel
from qmskpi.periods import Period, parse_period
from qmskpi.pipeline.inputs import as_config, load_inputs, push_inputs

if TYPE_CHECKING:
    from qmskpi import pushdown


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
