"""What a run did with each period and scope (:class:`RunOutcome`) and the exit code it
gives cron, systemd and Airflow."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from qmskpi import archive, progress
from qmskpi.config import Config
from qmskpi.errors import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_NO_DATA,
    EXIT_OK,
    EXIT_RULES,
    EXIT_USAGE,
    DiskFullError,
    PublishError,
    QmsKpiError,
    disk_full,
    exit_code_for_error,
)
from qmskpi.pipeline.exports import PDF_NAME

log = logging.getLogger("qmskpi.pipeline")  # one logger for the package, as before its split


Status = Literal["published", "restated", "skipped", "failed"]
"""What a run did with one period and scope.

``published``: a new pack is visible; ``restated``: a new pack is visible and
some KPI values differ from the pack it superseded (kept, listed in the
manifest and the index); ``skipped``: the published pack already has the same
inputs; ``failed``: nothing changed for readers (the previous pack, if any,
is still the published one).
"""

# The exit codes live in qmskpi.errors (one list for validate, render and run).


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


def outcome_for(pack: archive.Pack, link: Path, status: Status, **extra: Any) -> RunOutcome:
    """The outcome of a published (or skipped) ``pack``, seen through its ``link``."""
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


def failed_outcome(
    period: str, scope: str, exc: Exception, *, cfg: Config, seconds: float
) -> RunOutcome:
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
    """The folder a disk-full ``error`` is about (see :func:`failed_outcome`)."""
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


def data_state(validation: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
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


def pack_data_state(pack: archive.Pack) -> dict[str, tuple[str, ...]]:
    """The data state of a published pack, read from its ``validation.json``."""
    try:
        return data_state(json.loads(pack.file("validation.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def validation_exit_code(validation: Mapping[str, Any], *, strict: bool = False) -> int:
    """``qmskpi validate``'s exit code from a report's ``to_dict()`` form.

    :data:`EXIT_NO_DATA` (5) when a configured dataset has no usable rows,
    :data:`EXIT_RULES` (4) when an ``error`` rule failed (or, with ``strict``,
    a warning rule), else :data:`EXIT_OK` (0): the same meaning as for ``render``.
    """
    state = data_state(validation)
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
