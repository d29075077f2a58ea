"""A new pack against the published one: restated (KPI values changed: the old pack is kept
as superseded, ``restatement.csv``/``.json`` say what changed and why), replaced, or kept
because its minutes refer to it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from qmskpi import __version__, archive, kpis, render
from qmskpi.errors import PublishError


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
class Comparison:
    """How a new pack relates to the published one (for the manifest and the publish)."""

    supersede: bool = False
    """KPI values changed: keep the published pack as superseded."""
    restatement: dict[str, Any] | None = None
    supersedes: list[dict[str, Any]] = field(default_factory=list)
    replaces: dict[str, Any] | None = None


def keep_minuted(
    arch: archive.Archive, current: archive.Pack | None, cmp: Comparison
) -> Comparison:
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
) -> Comparison:
    """Same KPIs as the published pack: it is replaced; a restatement it carried (still true
    of the same figures) and its superseded packs are carried on."""
    carried = current.manifest.get("restatement")
    if carried:
        for name in ("restatement.csv", "restatement.json"):
            if current.file(name).is_file():
                shutil.copyfile(current.file(name), st.file(name))
        carried = {**carried, "carried_from": current.id}
    return Comparison(
        restatement=carried,
        supersedes=current.superseded,
        replaces={**old_ref, "kpis_changed": False},
    )


def compare(
    st: archive.Stage,
    current: archive.Pack | None,
    inputs: Sequence[archive.InputRecord],
    *,
    config_digest: str,
    problems: Sequence[str] = (),
) -> Comparison:
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
        return Comparison()
    old_ref = {"id": current.id, "created_at": current.created_at}
    if problems:
        reason = "failed verification: " + "; ".join(problems)
        return Comparison(
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
    return Comparison(
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
