"""pipeline.restate: a restated period keeps the approved pack and lists each changed KPI and why."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from pipeline.helpers import (
    AS_OF,
    PERIOD,
    assert_pack_intact,
    fake_render,
    renders,
    reports,
)
from qmskpi import archive, kpis, pipeline


def drop_one_complaint(cfg_file: Path, *, month: str, site: str) -> str:
    """Delete one complaint received in ``month`` at ``site``; return its id."""
    path = cfg_file.parent / "complaints.csv"
    frame = pl.read_csv(path, infer_schema=False)
    victim = frame.filter(
        pl.col("received_date").str.starts_with(month) & (pl.col("site") == site)
    )["complaint_id"][0]
    frame.filter(pl.col("complaint_id") != victim).write_csv(path)
    return str(victim)


def received(cfg_file: Path, month: str, site: str | None = None) -> int:
    """complaints_received counted straight from the CSV (the KPI's definition)."""
    frame = pl.read_csv(cfg_file.parent / "complaints.csv", infer_schema=False)
    frame = frame.filter(pl.col("received_date").str.starts_with(month))
    if site is not None:
        frame = frame.filter(pl.col("site") == site)
    return frame.height


def test_restatement_keeps_the_approved_pack_and_lists_each_changed_kpi(cfg_path: Path) -> None:
    root = reports(cfg_path)
    before_all, before_north = received(cfg_path, PERIOD), received(cfg_path, PERIOD, "North")
    approved = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert approved.status == "published"
    old_manifest = json.loads((root / PERIOD / "all" / "manifest.json").read_text())
    old_sha = {i["dataset"]: i["sha256"] for i in old_manifest["inputs"]}

    drop_one_complaint(cfg_path, month=PERIOD, site="North")
    restated = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)

    assert restated.status == "restated", restated.error
    assert restated.restated_kpis > 0
    assert restated.pack_dir is not None
    assert os.readlink(root / PERIOD / "all") == f"../.packs/{restated.pack_id}"
    # The approved pack is kept, intact, as superseded.
    old = archive.Archive(root).pack(str(approved.pack_id))
    assert_pack_intact(old)
    m = json.loads((restated.pack_dir / "manifest.json").read_text())
    assert m["outcome"] == "restated"
    assert m["supersedes"] == [
        {"id": approved.pack_id, "created_at": old_manifest["created_at"], "reason": "restatement"}
    ]
    assert m["restatement"]["changed_kpis"] == restated.restated_kpis
    new_sha = hashlib.sha256((cfg_path.parent / "complaints.csv").read_bytes()).hexdigest()
    assert m["restatement"]["changed_inputs"] == [
        {
            "dataset": "complaints",
            "old_sha256": old_sha["complaints"],
            "new_sha256": new_sha,
            "old_rows_in": next(
                i["rows_in"] for i in old_manifest["inputs"] if i["dataset"] == "complaints"
            ),
            "new_rows_in": next(i["rows_in"] for i in m["inputs"] if i["dataset"] == "complaints"),
        }
    ]
    assert m["restatement"]["config_changed"] is False
    # restatement.csv: each changed KPI with old and new values, worked out from the CSV.
    table = pl.read_csv(restated.pack_dir / "restatement.csv")
    assert table.columns == [
        *archive.RESTATEMENT_COLUMNS,
        "definition_changed",
        "superseded_pack",
        "superseded_created_at",
        "changed_inputs",
    ]
    rows = {
        (r["kpi"], r["scope"]): r
        for r in table.filter(pl.col("kpi") == "complaints_received").to_dicts()
    }
    assert rows[("complaints_received", "all")]["old_value"] == before_all
    assert rows[("complaints_received", "all")]["new_value"] == before_all - 1
    assert rows[("complaints_received", "North")]["old_value"] == before_north
    assert rows[("complaints_received", "North")]["new_value"] == before_north - 1
    assert ("complaints_received", "South") not in rows
    assert set(table["superseded_pack"]) == {approved.pack_id}
    assert set(table["changed_inputs"]) == {"complaints"}
    assert set(table["definition_changed"]) == {False}  # same qmskpi, same definitions
    # Every listed row really differs between the two kpis.csv.
    diff = archive.compare_kpis(old.file("kpis.csv"), restated.pack_dir / "kpis.csv")
    assert diff.height == table.height == restated.restated_kpis
    detail = json.loads((restated.pack_dir / "restatement.json").read_text())
    assert detail["superseded"]["id"] == approved.pack_id
    assert len(detail["kpis"]) == table.height
    # Staged before the notebook ran, so the pack can show it.
    assert renders(cfg_path)[-1]["restatement_staged"] is True
    assert pipeline.restatement_for(restated.pack_dir / "review-inputs.json") == detail
    assert pipeline.restatement_for(old.file("review-inputs.json")) is None
    assert pipeline.restatement_for("") is None
    # The index lists the superseded pack with its links.
    page = (root / "index.html").read_text()
    assert f".packs/{approved.pack_id}/management-review.html" in page
    assert "restated" in page

    # A later run with the same KPIs (forced) carries the restatement and the superseded pack on.
    restatement_csv = (restated.pack_dir / "restatement.csv").read_bytes()
    later = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, force=True, renderer=fake_render)
    assert later.status == "published"
    assert later.pack_dir is not None
    m3 = json.loads((later.pack_dir / "manifest.json").read_text())
    assert m3["supersedes"] == m["supersedes"]
    assert m3["restatement"]["carried_from"] == restated.pack_id
    assert (later.pack_dir / "restatement.csv").read_bytes() == restatement_csv
    assert not (root / ".packs" / str(restated.pack_id)).exists()  # replaced
    assert_pack_intact(archive.Archive(root).pack(str(approved.pack_id)))  # still kept
    assert archive.Archive(root).clean_stale() == []


def test_restatement_names_the_measures_whose_definition_changed(
    cfg_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release that revises a definition: the restated figures say which definitions moved."""
    approved = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert approved.status == "published"
    spec = kpis.REGISTRY["complaints_received"]
    revised = "Number of complaints received in the period, duplicates of one event counted once."
    monkeypatch.setitem(kpis.REGISTRY, "complaints_received", replace(spec, definition=revised))
    drop_one_complaint(cfg_path, month=PERIOD, site="North")
    restated = pipeline.run_review(cfg_path, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert restated.status == "restated", restated.error
    assert restated.pack_dir is not None
    detail = json.loads((restated.pack_dir / "restatement.json").read_text())
    assert detail["qmskpi_changed"] is False  # the version did not move; the text did
    assert detail["definitions_changed"] == [
        {
            "kpi": "complaints_received",
            "old_definition": " ".join(spec.definition.split()),
            "new_definition": revised,
        }
    ]
    table = pl.read_csv(restated.pack_dir / "restatement.csv")
    flagged = set(table.filter(pl.col("definition_changed"))["kpi"])
    assert flagged == {"complaints_received"}
    assert table.filter(~pl.col("definition_changed")).height > 0  # other moved figures: data
    m = json.loads((restated.pack_dir / "manifest.json").read_text())
    assert m["restatement"]["definitions_changed"] == ["complaints_received"]
