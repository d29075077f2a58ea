"""An installed wheel works without a git checkout: contracts, notebooks and templates ship inside it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_wheel_ships_contracts_notebooks_and_templates(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("qmskpi-*.whl")
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    for contract in (ROOT / "data_contracts").glob("*.yaml"):
        assert f"qmskpi/data_contracts/{contract.name}" in names
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        # what `qmskpi notebooks --out` copies for an analyst: the committed notebook, byte for byte
        assert archive.read(f"qmskpi/notebooks/{notebook.name}") == notebook.read_bytes()
    templates = ROOT / "src" / "qmskpi" / "templates"
    for f in templates.rglob("*"):
        if f.is_file():
            assert f"qmskpi/templates/{f.relative_to(templates).as_posix()}" in names
    maps = sorted((ROOT / "src" / "qmskpi" / "review" / "clause_maps").glob("*.toml"))
    assert [m.name for m in maps] == ["iso9001-2015.toml", "iso9001-2026-provisional.toml"]
    for m in maps:
        assert f"qmskpi/review/clause_maps/{m.name}" in names
    assert "qmskpi/py.typed" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    assert len(list((ROOT / "data_contracts").glob("*.yaml"))) == 13  # one per dataset


def test_python_dash_m_and_console_script_show_help() -> None:
    for cmd in (
        [sys.executable, "-m", "qmskpi", "--help"],
        [str(Path(sys.executable).parent / "qmskpi"), "--help"],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
        for word in ("sample", "validate", "render", "run", "demo"):
            assert word in done.stdout


def test_import_is_light() -> None:
    """`import qmskpi` loads no heavy dependency: they load when a stage needs them."""
    code = (
        "import sys, qmskpi; heavy = [m for m in ('great_expectations', 'plotly', 'papermill', "
        "'nbconvert', 'playwright', 'pandas') if m in sys.modules]; print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_tab_completion_and_help_list_the_lazy_api() -> None:
    """`dir(qmskpi)` (tab completion) shows what `__getattr__` serves; each name resolves."""
    code = (
        "import sys, qmskpi; names = dir(qmskpi); "
        "heavy = [m for m in ('great_expectations', 'plotly', 'papermill') if m in sys.modules]; "
        "print(','.join(names)); print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    listed, heavy = done.stdout.splitlines()
    names = set(listed.split(","))
    import qmskpi

    assert set(qmskpi.__all__) <= names
    for name in ("prepare", "load_config", "config_path", "validate", "spc", "charts", "minutes"):
        assert name in qmskpi.__all__
    assert heavy == ""  # listing them imports nothing
    for name in qmskpi.__all__:
        assert getattr(qmskpi, name) is not None, name
    assert "prepare" in (qmskpi.__doc__ or "")
