"""What a manifest records about a run: its inputs (:class:`InputRecord`), their digest, versions, times."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import metadata
from typing import Any

VERSIONED_PACKAGES = (
    "qmskpi",
    "polars",
    "pandas",
    "great-expectations",
    "papermill",
    "nbconvert",
    "plotly",
)
"""Distributions whose versions every manifest records (plus ``python``)."""


@dataclass(frozen=True)
class InputRecord:
    """One input of a run, as the manifest lists it.

    ``origin`` is the file path or ``sql:<database>``; ``query`` the SQL text of
    a query source. ``sha256`` was taken before the input was read (for a query:
    of the query, its bound parameters and the result).
    """

    dataset: str
    origin: str
    sha256: str
    rows_in: int
    rows_used: int | None = None
    rows_quarantined: int | None = None
    query: str | None = None
    files: tuple[Mapping[str, Any], ...] = ()
    """Each file read (path, sha256, rows_in): several for a glob, none for a query."""
    pushdown: bool = False
    """Validated and aggregated in its database (``pushdown = true``), its rows not read:
    ``sha256`` is then of what the database returned (counts, failing keys, aggregates)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "origin": self.origin,
            "query": self.query,
            "files": [dict(f) for f in self.files],
            "sha256": self.sha256,
            "rows_in": self.rows_in,
            "rows_used": self.rows_used,
            "rows_quarantined": self.rows_quarantined,
        }
        if self.pushdown:
            out["pushdown"] = True
        return out


def inputs_digest(
    inputs: Sequence[InputRecord],
    *,
    config_digest: str,
    version: str,
    period: str,
    scope: str,
    as_of: date | None = None,
) -> str:
    """sha256 over what decides a pack's content: input hashes, config, qmskpi version, period, scope.

    A published pack with the same digest need not be rendered again. An explicit
    ``as_of`` (a backfill: later rows are left out) is part of it too.
    """
    blob: dict[str, object] = {
        "inputs": sorted([i.dataset, i.sha256] for i in inputs),
        "config": config_digest,
        "qmskpi": version,
        "period": period,
        "scope": scope,
    }
    if as_of is not None:
        blob["as_of"] = as_of.isoformat()
    return hashlib.sha256(
        json.dumps(blob, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that shape a pack (None when one is not installed)."""
    out: dict[str, str | None] = {}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def utc_now() -> datetime:
    """The current time in UTC, to the second (the only clock a pack records)."""
    return datetime.now(UTC).replace(microsecond=0)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
