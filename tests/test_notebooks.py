"""Notebooks are views (STYLE.md): thin, parameterised, committed without outputs, and they run.

The thinness rules are read from every notebook's cells: no ``def``/``class``,
no loops, no ``with``, no ``open``/file I/O, imports only of ``qmskpi`` and
``IPython.display``, exactly one cell tagged ``parameters`` whose defaults run
against ``sample_data/``. The ``notebook`` tests execute each one with
papermill on the sample data.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SAMPLE_CONFIG = ROOT / "sample_data" / "qmskpi.toml"
DEEP_DIVES = ("complaints", "conformity", "objectives", "suppliers", "review_actions")

ALLOWED_IMPORTS = ("qmskpi", "IPython.display")
BANNED_NODES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.Global,
    ast.Nonlocal,
)
BANNED_CALLS = {"open", "exec", "eval", "compile", "__import__", "input", "HTML", "Markdown"}
BANNED_ATTRIBUTES = {
    "read_text",
    "write_text",
    "read_bytes",
    "write_bytes",
    "to_csv",
    "write_csv",
    "write_parquet",
    "write_excel",
    "unlink",
    "mkdir",
    "system",
}


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_the_notebooks_are_there() -> None:
    assert {p.stem for p in NOTEBOOKS} == {"management_review", *DEEP_DIVES}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_without_outputs(path: Path) -> None:
    nb = _read(path)
    nbformat.validate(nb)
    for cell in _code_cells(nb):
        assert cell.outputs == [], f"{path.name}: outputs committed"
        assert cell.execution_count is None, f"{path.name}: execution count committed"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_thin_views(path: Path) -> None:
    for cell in _code_cells(_read(path)):
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, BANNED_NODES), (
                f"{path.name}: {type(node).__name__} in a cell; put it in the package:\n"
                f"{cell.source}"
            )
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.startswith(ALLOWED_IMPORTS), (
                        f"{path.name}: import {alias.name}"
                    )
            if isinstance(node, ast.ImportFrom):
                assert node.module is not None
                assert node.module.startswith(ALLOWED_IMPORTS), f"{path.name}: from {node.module}"
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.id if isinstance(fn, ast.Name) else None
                attr = fn.attr if isinstance(fn, ast.Attribute) else None
                assert name not in BANNED_CALLS, f"{path.name}: {name}() in a cell"
                assert attr not in BANNED_ATTRIBUTES, f"{path.name}: .{attr}() in a cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_one_parameters_cell_with_sample_defaults(path: Path) -> None:
    nb = _read(path)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    cell = tagged[0]
    assert cell.cell_type == "code"
    values = {}
    for node in ast.parse(cell.source).body:
        assert isinstance(node, ast.Assign), f"{path.name}: parameters cell only assigns"
        target = node.targets[0]
        assert isinstance(target, ast.Name)
        values[target.id] = ast.literal_eval(node.value)
    assert values["period"] == "2026-10"
    assert values["scope"] == "all"
    assert values["config_path"] == "../sample_data/qmskpi.toml"
    assert (NOTEBOOK_DIR / values["config_path"]).resolve() == SAMPLE_CONFIG.resolve()
    if path.stem == "management_review":
        assert values["review_inputs"] == ""


def test_management_review_shows_every_section_in_order() -> None:
    from qmskpi import review

    nb = _read(NOTEBOOK_DIR / "management_review.ipynb")
    shown = []
    for cell in _code_cells(nb):
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "section"
            ):
                arg = node.args[0]
                assert isinstance(arg, ast.Constant)
                shown.append(arg.value)
    expected = [e.id for e in review.clause_map("iso9001_2015").entries]
    assert shown == expected
    sources = [c.source for c in _code_cells(nb)]
    assert (
        "model = pipeline.review_for(config_path, period, scope, review_inputs=review_inputs)"
        in sources
    )
    # markdown stays minimal and out of the pack: headings come from the model
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            assert "remove-cell" in cell.metadata.get("tags", [])


# ---------------------------------------------------------------- execution


def _upstream_ready() -> bool:
    return (
        SAMPLE_CONFIG.is_file()
        and (ROOT / "src" / "qmskpi" / "contracts" / "__init__.py").is_file()
    )


@pytest.mark.notebook
@pytest.mark.timeout(600)
@pytest.mark.skipif(not _upstream_ready(), reason="sample data or contracts not there yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_on_the_sample_data(path: Path, tmp_path: Path) -> None:
    import papermill

    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters={"period": "2026-10", "scope": "all"},
        kernel_name="python3",
        cwd=str(NOTEBOOK_DIR),
        execution_timeout=300,
        progress_bar=False,
        log_output=False,
    )
    nb = _read(out)
    html = [
        "".join(o["data"]["text/html"])
        for c in _code_cells(nb)
        for o in c.outputs
        if o.get("output_type") == "display_data" and "text/html" in o.get("data", {})
    ]
    assert html, f"{path.name} displayed nothing"
    errors = [o for c in _code_cells(nb) for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
    joined = "\n".join(html)
    assert joined.count("plotly.js v") <= 1
    if path.stem == "management_review":
        assert joined.count("plotly.js v") == 1
        assert "Management review inputs" in joined
        assert "Coverage of the review inputs" in joined


@pytest.mark.notebook
@pytest.mark.timeout(600)
@pytest.mark.skipif(not _upstream_ready(), reason="sample data or contracts not there yet")
def test_management_review_runs_from_review_inputs(tmp_path: Path) -> None:
    """A scheduled run passes a precomputed review-inputs.json: the kernel only presents it."""
    import papermill

    from qmskpi import pipeline

    model = pipeline.prepare(SAMPLE_CONFIG, "2026-10", "all").review
    inputs = tmp_path / "review-inputs.json"
    inputs.write_text(model.to_json(), encoding="utf-8")
    # A restated period: the scheduled run stages restatement.json beside the inputs.
    restatement = {
        "superseded": {"id": "2026-10--all--20261102T060000Z--abc123", "created_at": "2026-11-02"},
        "changed_inputs": [{"dataset": "complaints", "old_rows_in": 5000, "new_rows_in": 4999}],
        "config_changed": False,
        "qmskpi_changed": False,
        "kpis": [
            {
                "kpi": "complaints_received",
                "scope": "all",
                "period": "2026-10",
                "old_value": "83.0",
                "new_value": "82.0",
                "old_sound": "true",
                "new_sound": "true",
            }
        ],
    }
    (tmp_path / "restatement.json").write_text(json.dumps(restatement), encoding="utf-8")
    out = tmp_path / "management_review.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK_DIR / "management_review.ipynb"),
        str(out),
        parameters={"review_inputs": str(inputs)},
        kernel_name="python3",
        cwd=str(NOTEBOOK_DIR),
        execution_timeout=300,
        progress_bar=False,
        log_output=False,
    )
    nb = _read(out)
    texts = "".join(
        "".join(o["data"].get("text/html", ""))
        for c in _code_cells(nb)
        for o in c.outputs
        if o.get("output_type") == "display_data"
    )
    assert model.meta.organisation in texts
    assert "Restatement: 1 figure differs from the pack published 2026-11-02" in texts
    assert "2026-10--all--20261102T060000Z--abc123" in texts
    assert "complaints (rows 5,000 → 4,999)" in texts
