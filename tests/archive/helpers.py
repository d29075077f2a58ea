"""Helpers shared by the archive tests: a config, a fake pack staged and published, what a reader sees."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

from qmskpi import archive
from qmskpi.archive import Archive, InputRecord
from qmskpi.config import Config, SourceConfig

KPIS_HEADER = "kpi,scope,period,value,numerator,denominator,unit,sound\n"


def make_config(tmp_path: Path, *, organisation: str = "Acme", sites=("Plant A", "B2")) -> Config:
    return Config(
        organisation=organisation,
        sites=tuple(sites),
        sources={"complaints": SourceConfig("complaints", path="c.csv")},
        path=tmp_path / "qmskpi.toml",
    )


def stage_pack(
    arch: Archive,
    period: str = "2026-10",
    scope: str = "all",
    *,
    kpis: str = "complaints_received,all,2026-10,12,,,count,true\n",
    extra: dict[str, bytes] | None = None,
    created_at: datetime | None = None,
    supersedes: list[dict[str, object]] | None = None,
    restatement: dict[str, object] | None = None,
    keep_previous: bool = False,
) -> archive.Pack:
    """Stage a fake pack and publish it."""
    with arch.stage(period, scope, created_at=created_at) as st:
        st.file("kpis.csv").write_text(KPIS_HEADER + kpis)
        st.file("management-review.html").write_text("<html>pack</html>")
        st.file("management-review.pdf").write_bytes(b"%PDF-1.7 fake")
        for name, data in (extra or {}).items():
            st.file(name).write_bytes(data)
        st.write_manifest(
            archive.build_manifest(
                st,
                organisation="Acme",
                inputs=[InputRecord("complaints", "c.csv", "ab" * 32, 3, 3, 0)],
                inputs_digest="d" * 64,
                config_digest="c" * 64,
                config_path=None,
                parameters={"period": period, "scope": scope},
                timings={"render": 1.0},
                outcome="restated" if restatement else "published",
                supersedes=supersedes or [],
                restatement=restatement,
                versions={"qmskpi": "0.1.0", "python": "3.11"},
            )
        )
        return arch.publish(st, keep_previous=keep_previous)


def visible(root: Path) -> list[str]:
    """Every path a reader sees (nothing hidden), following the pack links."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                out.append(str(Path(dirpath, name).relative_to(root)))
    return sorted(out)


def manifest_sha(pack: archive.Pack) -> str:
    return hashlib.sha256((pack.path / "manifest.json").read_bytes()).hexdigest()
