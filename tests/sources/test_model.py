"""qmskpi.sources.model: what loading returns, as a notebook shows it."""

from __future__ import annotations

from pathlib import Path

from sources.helpers import FIX, load_source


def test_loaded_dataset_repr_is_short_and_html_escapes_the_file_name(tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)>.csv"
    (tmp_path / evil).write_bytes((FIX / "complaints_basic.csv").read_bytes())
    r = load_source(f"[sources.complaints]\npath = {evil!r}", base=tmp_path)
    assert repr(r) == (
        f"<LoadedDataset complaints from {evil}: 3 rows in, 3 read, 0 rejected, 0 excluded>"
    )
    page = r._repr_html_()
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in page
    assert r.sha256[:16] in page
    assert r.sha256 not in page
