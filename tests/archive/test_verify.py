"""archive.verify: kept folders checked against their manifests (changed, missing, added, unchained)."""

from __future__ import annotations

import shutil

from archive.helpers import KPIS_HEADER, stage_pack
from qmskpi import archive
from qmskpi.archive import Archive


def test_packs_published_before_chains_are_verified_and_marked_unchained(arch: Archive) -> None:
    pack = stage_pack(arch)
    shutil.rmtree(arch.root / archive.CHAIN_DIR / "all")
    report = arch.verify()
    assert [(f.path.name, f.unchained, f.intact) for f in report.folders] == [(pack.id, True, True)]
    assert report.intact


def test_verify_folder_names_changed_missing_and_added_files(arch: Archive) -> None:
    pack = stage_pack(arch)
    (pack.path / "kpis.csv").chmod(0o644)
    (pack.path / "kpis.csv").write_text(KPIS_HEADER)
    (pack.path / "management-review.pdf").unlink()
    (pack.path / "notes.txt").write_text("added later")
    check = archive.verify_folder(pack.path)
    assert (check.changed, check.missing, check.added) == (
        ("kpis.csv",),
        ("management-review.pdf",),
        ("notes.txt",),
    )
    assert not check.intact
    assert arch.verify("all").problems() == [
        f"{pack.id}/kpis.csv: changed since publication",
        f"{pack.id}/management-review.pdf: missing",
        f"{pack.id}/notes.txt: added after publication",
    ]
