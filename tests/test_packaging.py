"""An installed wheel works without a git checkout: contracts, notebooks and templates ship inside it."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

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
    assert len(list((ROOT / "data_contracts").glob("*.yaml"))) == 14  # one per dataset


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


# -- declared dependencies -----------------------------------------------------------------

_PROBED_ONLY = {
    "psycopg2": "sources only checks whether SQLAlchemy's default PostgreSQL driver is present",
}
"""Modules the package tries to import without needing them (an ImportError is handled)."""


def _third_party_imports() -> dict[str, set[str]]:
    """Every top-level module imported by the package's code and its notebooks' cells."""
    package = ROOT / "src" / "qmskpi"
    sources = [(p, p.read_text(encoding="utf-8")) for p in package.rglob("*.py")]
    for nb in (package / "notebooks").glob("*.ipynb"):  # a symlink rglob does not follow
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        code = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "code"
        )  # no magics in the shipped notebooks: plain Python
        sources.append((nb, code))
    found: dict[str, set[str]] = {}
    for path, text in sources:
        for node in ast.walk(ast.parse(text, filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "qmskpi" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def _declared() -> dict[str, str]:
    """Normalised distribution name -> where pyproject.toml declares it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {
        canonicalize_name(Requirement(r).name): "dependencies" for r in project["dependencies"]
    }
    for extra, reqs in project["optional-dependencies"].items():
        if extra == "dev":
            continue  # test tools: not something the package may import
        for r in reqs:
            declared.setdefault(canonicalize_name(Requirement(r).name), f"extra {extra!r}")
    return declared


def test_every_imported_package_is_declared() -> None:
    """Relying on a transitive dependency breaks the day that dependency drops it."""
    declared = _declared()
    distributions = importlib.metadata.packages_distributions()
    imports = _third_party_imports()
    assert {"polars", "jupyter_client", "traitlets", "IPython"} <= imports.keys()  # the walk works
    missing = []
    for module, files in sorted(imports.items()):
        if module in _PROBED_ONLY:
            continue
        dists = {canonicalize_name(d) for d in distributions.get(module, [])}
        if not dists & declared.keys():
            missing.append(
                f"{module} (from {sorted(dists) or 'no installed distribution'}), imported by {sorted(files)}"
            )
    assert missing == [], "imported but not declared in pyproject.toml:\n" + "\n".join(missing)


def test_oldest_constraints_are_the_declared_lower_bounds() -> None:
    """constraints-oldest.txt pins each runtime dependency at the lowest version pyproject allows."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = {}
    for line in (ROOT / "constraints-oldest.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    for text in project["dependencies"]:
        req = Requirement(text)
        lower = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert lower, f"{req.name}: no lower bound in pyproject.toml"
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"{req.name} is not pinned in constraints-oldest.txt"
        assert pin in req.specifier, f"{req.name}=={pin} is outside {req.specifier}"
        assert pin.release[: len(lower[0].release)] == lower[0].release, (req.name, pin, lower[0])


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
