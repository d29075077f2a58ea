"""archive.manifest: the inputs digest, versions and the one timestamp a manifest records."""

from __future__ import annotations

from datetime import UTC, datetime

from archive.helpers import stage_pack
from qmskpi import archive
from qmskpi.archive import Archive, InputRecord


def test_inputs_digest_covers_inputs_config_version_period_and_scope() -> None:
    a = InputRecord("complaints", "c.csv", "1" * 64, 10)
    b = InputRecord("receipts", "r.csv", "2" * 64, 5)
    base = {"config_digest": "c", "version": "0.1.0", "period": "2026-10", "scope": "all"}
    d = archive.inputs_digest([a, b], **base)
    assert archive.inputs_digest([b, a], **base) == d  # order does not matter
    # Row counts and origin do not decide; content does.
    assert archive.inputs_digest([InputRecord("complaints", "x.csv", "1" * 64, 0), b], **base) == d
    for key, value in [
        ("config_digest", "c2"),
        ("version", "0.2.0"),
        ("period", "2026-09"),
        ("scope", "B2"),
    ]:
        assert archive.inputs_digest([a, b], **{**base, key: value}) != d
    changed = InputRecord("complaints", "c.csv", "3" * 64, 10)
    assert archive.inputs_digest([changed, b], **base) != d


def test_manifest_records_versions_and_timestamps_only_in_created_at(arch: Archive) -> None:
    moment = datetime(2026, 11, 1, 6, 0, 5, tzinfo=UTC)
    pack = stage_pack(arch, created_at=moment)
    m = pack.manifest
    assert m["created_at"] == "2026-11-01T06:00:05Z"
    assert pack.id.startswith("2026-10--all--20261101T060005Z--")
    versions = archive.package_versions()
    assert set(versions) == {*archive.VERSIONED_PACKAGES, "python"}
    assert versions["qmskpi"] is not None
