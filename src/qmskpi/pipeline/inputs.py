"""What a run reads: the config, the sources (pulled, or pushed down to their database) and
their records for the manifest, and the review actions still open."""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING

import polars as pl

from qmskpi import archive, contracts, minutes, progress, sources
from qmskpi.config import Config, load_config
from qmskpi.config import config_path as resolve_config
from qmskpi.errors import QmsKpiError
from qmskpi.periods import Period

if TYPE_CHECKING:
    from qmskpi import pushdown

log = logging.getLogger("qmskpi.pipeline")  # one logger for the package, as before its split


def as_config(config: Config | str | os.PathLike[str] | None = None) -> Config:
    """``config`` itself, or the file it names; ``None`` or ``""``: as the CLI finds it
    (``$QMSKPI_CONFIG``, then ``./qmskpi.toml``; :func:`qmskpi.config.config_path`)."""
    return config if isinstance(config, Config) else load_config(resolve_config(config))


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
    shared = RUN_PUSHED.get()
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


RUN_PUSHED: contextvars.ContextVar[dict[tuple[object, ...], dict[str, pushdown.Pushed]] | None] = (
    contextvars.ContextVar("qmskpi_run_pushed", default=None)
)
"""What the databases returned, shared by the scopes of one :func:`run_scheduled` in this
process: every scope of a period asks the same question (the query binds no ``:site``; each
scope filters the aggregates), so the database answers it once per run, not once per scope."""


def input_records(
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
