"""archive.pack: a published pack checked against its manifest."""

from __future__ import annotations

from archive.helpers import KPIS_HEADER, stage_pack
from qmskpi.archive import Archive


def test_verify_detects_a_tampered_pack(arch: Archive) -> None:
    pack = stage_pack(arch)
    target = pack.path / "kpis.csv"
    target.chmod(0o644)
    target.write_text(KPIS_HEADER + "complaints_received,all,2026-10,1,,,count,true\n")
    (pack.path / "management-review.pdf").unlink()
    assert pack.verify() == [
        "kpis.csv: sha256 differs from the manifest",
        "management-review.pdf: missing",
    ]
