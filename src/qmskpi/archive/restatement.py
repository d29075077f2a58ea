"""Restatements: which KPI values changed between two packs (:func:`compare_kpis`), which inputs changed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from qmskpi.archive.manifest import InputRecord
from qmskpi.errors import PublishError

RESTATEMENT_COLUMNS = (
    "kpi",
    "scope",
    "period",
    "old_value",
    "new_value",
    "old_sound",
    "new_sound",
)


def _read_kpis(path: Path) -> pl.DataFrame:
    frame = pl.read_csv(path, infer_schema=False)
    missing = {"kpi", "scope", "period", "value"} - set(frame.columns)
    if missing:
        raise PublishError(f"{path}: not a kpis.csv (missing {', '.join(sorted(missing))})")
    sound = (
        pl.col("sound").str.to_lowercase().is_in(["true", "1"])
        if "sound" in frame.columns
        else pl.lit(None, dtype=pl.Boolean)
    )
    return frame.select(
        pl.col("kpi"),
        pl.col("scope"),
        pl.col("period"),
        pl.col("value").cast(pl.Float64, strict=False).alias("value"),
        sound.alias("sound"),
    )


def compare_kpis(old_csv: Path, new_csv: Path) -> pl.DataFrame:
    """Rows of ``kpis.csv`` whose value or soundness differs, matched by kpi + scope + period.

    A row present on one side only appears with a null on the other. The result
    has :data:`RESTATEMENT_COLUMNS`, sorted by kpi, scope and period.
    """
    key = ["kpi", "scope", "period"]
    old = _read_kpis(old_csv).rename({"value": "old_value", "sound": "old_sound"})
    new = _read_kpis(new_csv).rename({"value": "new_value", "sound": "new_sound"})
    joined = old.join(new, on=key, how="full", coalesce=True, nulls_equal=True)
    value_changed = (pl.col("old_value").is_null() != pl.col("new_value").is_null()) | (
        pl.col("old_value") != pl.col("new_value")
    ).fill_null(False)
    sound_changed = (pl.col("old_sound") != pl.col("new_sound")).fill_null(False) | (
        pl.col("old_sound").is_null() != pl.col("new_sound").is_null()
    )
    return (
        joined.filter(value_changed | sound_changed)
        .select(RESTATEMENT_COLUMNS)
        .sort(key, nulls_last=True)
    )


def changed_inputs(
    old_manifest: Mapping[str, Any], new_inputs: Sequence[InputRecord]
) -> list[dict[str, Any]]:
    """Inputs whose sha256 differs between a published pack and a new run (added/removed too)."""
    old = {str(i["dataset"]): i for i in old_manifest.get("inputs", [])}
    new = {i.dataset: i for i in new_inputs}
    out: list[dict[str, Any]] = []
    for name in sorted(set(old) | set(new)):
        o, n = old.get(name), new.get(name)
        old_sha = o.get("sha256") if o else None
        new_sha = n.sha256 if n else None
        if old_sha != new_sha:
            out.append(
                {
                    "dataset": name,
                    "old_sha256": old_sha,
                    "new_sha256": new_sha,
                    "old_rows_in": o.get("rows_in") if o else None,
                    "new_rows_in": n.rows_in if n else None,
                }
            )
    return out
