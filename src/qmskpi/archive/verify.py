"""Checking kept folders against their manifests (:func:`verify_folder`) and what ``qmskpi verify`` reports."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from qmskpi.archive.files import _files, sha256_file
from qmskpi.archive.names import MANIFEST, STAGE_LOCK


def _entry_id(entry: Path) -> str:
    """The pack or minutes id of a chain entry ``<seq>--<id>.json``."""
    return entry.name.split("--", 1)[1].removesuffix(".json")


@dataclass(frozen=True)
class FolderCheck:
    """One pack or minutes folder checked against its manifest."""

    path: Path
    manifest_sha256: str | None
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    unreadable: bool = False
    unchained: bool = False
    """Published but absent from the chain of records (published before chains existed)."""

    @property
    def intact(self) -> bool:
        return not (self.changed or self.missing or self.added or self.unreadable)

    def problems(self) -> list[str]:
        if self.unreadable:
            return [f"{self.path.name}: no readable {MANIFEST}"]
        return [
            *(f"{self.path.name}/{n}: changed since publication" for n in self.changed),
            *(f"{self.path.name}/{n}: missing" for n in self.missing),
            *(f"{self.path.name}/{n}: added after publication" for n in self.added),
        ]


def verify_folder(folder: Path) -> FolderCheck:
    """Recompute every sha256 a folder's manifest lists; name changed, missing and added files."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        outputs = dict(manifest["outputs"])
    except (OSError, ValueError, KeyError, TypeError):
        return FolderCheck(folder, None, unreadable=True)
    changed, missing = [], []
    for name, meta in sorted(outputs.items()):
        p = folder / name
        if not p.is_file():
            missing.append(name)
        elif sha256_file(p) != (meta or {}).get("sha256"):
            changed.append(name)
    present = {p.relative_to(folder).as_posix() for p in _files(folder)}
    added = sorted(present - set(outputs) - {MANIFEST, STAGE_LOCK})
    return FolderCheck(
        folder, sha256_file(manifest_path), tuple(changed), tuple(missing), tuple(added)
    )


@dataclass(frozen=True)
class VerifyReport:
    """What ``qmskpi verify`` found: each folder checked and each scope's chain."""

    folders: tuple[FolderCheck, ...]
    chains: Mapping[str, list[str]]

    @property
    def intact(self) -> bool:
        return all(f.intact for f in self.folders) and not any(self.chains.values())

    def problems(self) -> list[str]:
        out = [p for f in self.folders for p in f.problems()]
        for slug, chain in self.chains.items():
            out.extend(f"chain of scope {slug}: {p}" for p in chain)
        return out
