"""A published pack in ``.packs/`` (:class:`Pack`): its id, folder and manifest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmskpi.archive.files import sha256_file


@dataclass(frozen=True)
class Pack:
    """A pack in ``.packs/``: its id, folder and manifest."""

    id: str
    path: Path
    manifest: Mapping[str, Any]

    @property
    def period(self) -> str:
        return str(self.manifest.get("period", ""))

    @property
    def scope(self) -> str:
        return str(self.manifest.get("scope", ""))

    @property
    def created_at(self) -> str:
        return str(self.manifest.get("created_at", ""))

    @property
    def inputs_digest(self) -> str | None:
        value = self.manifest.get("inputs_digest")
        return str(value) if value is not None else None

    @property
    def superseded(self) -> list[dict[str, Any]]:
        """Packs this one superseded (restatements), newest first."""
        return list(self.manifest.get("supersedes", []))

    def file(self, name: str) -> Path:
        return self.path / name

    def verify(self) -> list[str]:
        """Problems with the pack's files against its manifest (empty when intact)."""
        problems: list[str] = []
        outputs = self.manifest.get("outputs", {})
        for name, meta in sorted(outputs.items()):
            p = self.path / name
            if not p.is_file():
                problems.append(f"{name}: missing")
            elif sha256_file(p) != meta.get("sha256"):
                problems.append(f"{name}: sha256 differs from the manifest")
        return problems
