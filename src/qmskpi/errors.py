"""One error family for everything qmskpi refuses to do.

Every error names *where* the problem is (file, column, row, config key) and,
where a near miss is likely, offers a "did you mean" hint. Catch
:class:`QmsKpiError` to handle them all.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable
from pathlib import Path


def did_you_mean(word: str, choices: Iterable[str], *, n: int = 1) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    pool = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(word, pool, n=n, cutoff=0.6)
    if not close:
        lowered = {c.lower().replace(" ", "_"): c for c in pool}
        key = word.lower().strip().replace(" ", "_")
        if key in lowered:
            close = [lowered[key]]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


class QmsKpiError(Exception):
    """Base class of every error qmskpi raises on purpose."""


class ConfigError(QmsKpiError):
    """``qmskpi.toml`` is missing, unreadable, or a key is wrong."""

    def __init__(self, message: str, *, path: Path | str | None = None, key: str | None = None):
        self.path = Path(path) if path is not None else None
        self.key = key
        where = []
        if path is not None:
            where.append(str(path))
        if key:
            where.append(f"key '{key}'")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ScopeError(ConfigError):
    """A scope asked for on the command line (``--site``) is not a configured site."""


class PeriodError(QmsKpiError, ValueError):
    """A period string such as ``2026-10``, ``2026-Q3`` or ``2026`` is malformed."""


class SourceError(QmsKpiError):
    """A source file or query cannot be read into its dataset.

    The message names the file, and the column and (1-based, as a spreadsheet
    shows it) row when they are known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        dataset: str | None = None,
        column: str | None = None,
        row: int | None = None,
    ):
        self.path = str(path) if path is not None else None
        self.dataset = dataset
        self.column = column
        self.row = row
        parts = []
        if path is not None:
            parts.append(str(path))
        if dataset:
            parts.append(f"dataset '{dataset}'")
        if column is not None:
            parts.append(f"column '{column}'")
        if row is not None:
            parts.append(f"row {row}")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class HeaderError(SourceError):
    """The raw header row is unusable: BOM junk, duplicate, blank or missing columns."""


class ContractError(QmsKpiError):
    """A data contract (``data_contracts/*.yaml``) is malformed."""


class ValidationFailed(QmsKpiError):
    """Data broke an ``error``-severity rule and the caller asked to stop."""


class KpiError(QmsKpiError):
    """A KPI cannot be computed as asked (unknown KPI, period beyond the data, ...)."""


class RenderError(QmsKpiError):
    """Executing a notebook, exporting HTML or printing the PDF failed."""


class PublishError(QmsKpiError):
    """A pack could not be staged or published atomically."""


class DiskFullError(PublishError):
    """A folder ran out of space (or of quota) while a run wrote to it; nothing was published."""

    def __init__(self, folder: Path | str, error: BaseException | None = None):
        self.folder = Path(folder)
        self.error = error
        quota = isinstance(error, OSError) and error.errno == errno.EDQUOT
        super().__init__(
            f"no space left: {folder} is {'over its disk quota' if quota else 'full'}; free "
            "some space there and run again (nothing was published; details in the log)"
        )


_DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded", "os error 28")


def disk_full(exc: BaseException) -> BaseException | None:
    """The "no space left on device" (or quota) error behind ``exc``, if that is what it is.

    An ``OSError`` with ``ENOSPC``/``EDQUOT`` anywhere in the chain, or an error
    whose text says so (polars and pyarrow report it in their own exceptions).
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return seen
        if any(text in str(seen).lower() for text in _DISK_FULL_TEXT):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


# --------------------------------------------------------------------------- exit codes

EXIT_OK = 0
"""Success: every pack published or skipped; the data passed every ``error`` rule."""
EXIT_FAILED = 1
"""A pack failed to render or publish (the others are published); nothing changed for it."""
EXIT_USAGE = 2
"""Bad command line: unknown option, malformed ``--period``, unknown ``--site``."""
EXIT_INPUT = 3
"""The config or a source cannot be read: a config key, a file, a header, a contract."""
EXIT_RULES = 4
"""The data broke an ``error`` rule (with ``validate --strict``, a warning rule too).

``render`` and ``run`` still publish: the rows are set aside, and the figures of that
dataset are struck out when more than ``[kpis] max_quarantined_share`` of them were.
"""
EXIT_NO_DATA = 5
"""A configured dataset has no usable rows: ``render``/``run`` publish with a warning on page 1."""
EXIT_ALTERED = 6
"""``qmskpi verify``: a file changed, is missing or was added, or a chain link is broken."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C, SIGINT)."""

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILED: "a pack failed to render or publish",
    EXIT_USAGE: "bad command line (option, --period, --site)",
    EXIT_INPUT: "config or source error (config key, file, header, contract)",
    EXIT_RULES: "data broke an error rule (--strict: or a warning); packs still publish",
    EXIT_NO_DATA: "a configured dataset has no usable rows; packs publish with a warning",
    EXIT_ALTERED: "verify: a published file changed, is missing or was added, or a chain broke",
    EXIT_INTERRUPTED: "interrupted",
}
"""Every exit code of the ``qmskpi`` command, the same in ``validate``, ``render``, ``run``
and ``minutes``."""

_USAGE_ERRORS = frozenset({"PeriodError", "ScopeError"})


def exit_code_for_error(error_type: str) -> int:
    """The exit code of a run stopped by an error of class ``error_type`` (its name).

    Bad command-line values give :data:`EXIT_USAGE`; any other :class:`QmsKpiError`
    about the inputs (config, source, header, contract) :data:`EXIT_INPUT`;
    anything else (render, publish, an unexpected exception) :data:`EXIT_FAILED`.
    """
    if error_type in _USAGE_ERRORS:
        return EXIT_USAGE
    if error_type in {"ConfigError", "SourceError", "HeaderError", "ContractError", "MinutesError"}:
        return EXIT_INPUT
    return EXIT_FAILED
