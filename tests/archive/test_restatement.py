"""archive.restatement: which KPI values and which inputs changed between two packs."""

from __future__ import annotations

from pathlib import Path

from archive.helpers import KPIS_HEADER
from qmskpi import archive
from qmskpi.archive import InputRecord


def write_kpis(path: Path, rows: str) -> Path:
    path.write_text(KPIS_HEADER + rows)
    return path


def test_compare_kpis_lists_changed_added_removed_and_soundness(tmp_path: Path) -> None:
    old = write_kpis(
        tmp_path / "old.csv",
        "a,all,2026-03,10,,,count,true\n"
        "b,all,2026-03,0.5,1,2,share,true\n"
        "c,all,2026-03,,,,count,false\n"
        "d,all,2026-03,7,,,count,true\n"
        "e,all,2026-03,3,,,count,true\n",
    )
    new = write_kpis(
        tmp_path / "new.csv",
        "a,all,2026-03,10,,,count,true\n"  # unchanged
        "b,all,2026-03,0.25,1,4,share,true\n"  # value changed
        "c,all,2026-03,,,,count,false\n"  # both null: unchanged
        "d,all,2026-03,7,,,count,false\n"  # soundness changed
        "f,all,2026-03,1,,,count,true\n",  # added; e removed
    )
    diff = archive.compare_kpis(old, new)
    assert diff.columns == list(archive.RESTATEMENT_COLUMNS)
    assert diff.rows() == [
        ("b", "all", "2026-03", 0.5, 0.25, True, True),
        ("d", "all", "2026-03", 7.0, 7.0, True, False),
        ("e", "all", "2026-03", 3.0, None, True, None),
        ("f", "all", "2026-03", None, 1.0, None, True),
    ]
    assert archive.compare_kpis(old, old).height == 0


def test_changed_inputs_names_each_dataset_with_both_hashes() -> None:
    old_manifest = {
        "inputs": [
            {"dataset": "complaints", "sha256": "1" * 64, "rows_in": 10},
            {"dataset": "receipts", "sha256": "2" * 64, "rows_in": 5},
            {"dataset": "capa", "sha256": "3" * 64, "rows_in": 4},
        ]
    }
    new = [
        InputRecord("complaints", "c.csv", "1" * 64, 10),
        InputRecord("receipts", "r.csv", "9" * 64, 6),
        InputRecord("surveys", "s.csv", "8" * 64, 2),
    ]
    assert archive.changed_inputs(old_manifest, new) == [
        {
            "dataset": "capa",
            "old_sha256": "3" * 64,
            "new_sha256": None,
            "old_rows_in": 4,
            "new_rows_in": None,
        },
        {
            "dataset": "receipts",
            "old_sha256": "2" * 64,
            "new_sha256": "9" * 64,
            "old_rows_in": 5,
            "new_rows_in": 6,
        },
        {
            "dataset": "surveys",
            "old_sha256": None,
            "new_sha256": "8" * 64,
            "old_rows_in": None,
            "new_rows_in": 2,
        },
    ]
