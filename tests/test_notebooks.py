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
import subprocess
import sys
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


def _parameters(path: Path) -> dict[str, tuple[str, object]]:
    """Each parameter of the notebook: (its annotation, its default)."""
    nb = _read(path)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    cell = tagged[0]
    assert cell.cell_type == "code"
    values = {}
    for node in ast.parse(cell.source).body:
        assert isinstance(node, ast.AnnAssign), f"{path.name}: parameters are `name: type = value`"
        assert isinstance(node.target, ast.Name)
        assert node.value is not None
        values[node.target.id] = (ast.unparse(node.annotation), ast.literal_eval(node.value))
    for line in cell.source.splitlines():
        assert "  # " in line, f"{path.name}: no help comment: {line}"
        assert line.split("  # ", 1)[1].count("=") == 0, "papermill skips a line with two '='"
    return values


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_one_parameters_cell_with_cli_like_defaults(path: Path) -> None:
    values = _parameters(path)
    assert values["period"] == ("str", "2026-10")
    assert values["scope"] == ("str", "all")
    # like the CLI: $QMSKPI_CONFIG, then ./qmskpi.toml
    assert values["config_path"] == ("str", "")
    if path.stem == "management_review":
        assert values["review_inputs"] == ("str", "")
    if path.stem in ("complaints", "conformity", "objectives", "suppliers"):
        assert values["prepared_path"] == ("str", "")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_papermill_shows_each_parameter_with_its_type_and_help(path: Path) -> None:
    papermill = Path(sys.executable).parent / "papermill"
    done = subprocess.run(
        [str(papermill), "--help-notebook", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    text = " ".join(done.stdout.split())  # click wraps the help column
    assert "Unknown type" not in text
    nb = _read(path)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for line in cell.source.splitlines():
        name, rest = line.split(":", 1)
        default = rest.split("=", 1)[1].split("  # ", 1)[0].strip()
        helptext = " ".join(line.split("  # ", 1)[1].split())
        assert f"{name}: str (default {default}) {helptext}" in text, name


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
def _execute(path: Path, out: Path, cwd: Path, **parameters: object) -> str:
    """Run ``path`` with papermill in ``cwd``; the HTML it displayed, joined."""
    import papermill

    papermill.execute_notebook(
        str(path),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(cwd),
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
    return "\n".join(html)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_on_the_sample_data(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As is, in the folder of the sample data: config_path finds ./qmskpi.toml.
    monkeypatch.delenv("QMSKPI_CONFIG", raising=False)
    joined = _execute(path, tmp_path / path.name, SAMPLE_CONFIG.parent)
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


# ---------------------------------------------------------------- an analyst's copy


@pytest.mark.notebook
@pytest.mark.timeout(600)
@pytest.mark.skipif(not _upstream_ready(), reason="sample data or contracts not there yet")
def test_copied_notebooks_run_from_another_folder_with_qmskpi_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`qmskpi notebooks --out` then JupyterLab in that folder, the config named by the variable."""
    analysis = tmp_path / "analysis"
    qmskpi = Path(sys.executable).parent / "qmskpi"
    done = subprocess.run(
        [str(qmskpi), "notebooks", "--out", str(analysis)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
    )
    assert sorted(p.name for p in analysis.iterdir()) == sorted(p.name for p in NOTEBOOKS)
    for p in NOTEBOOKS:
        assert f"written   {analysis / p.name}" in done.stdout
        assert (analysis / p.name).read_bytes() == p.read_bytes()
    monkeypatch.setenv("QMSKPI_CONFIG", str(SAMPLE_CONFIG))
    joined = _execute(analysis / "suppliers.ipynb", tmp_path / "out.ipynb", analysis)
    assert "Supplier scorecard, every supplier" in joined
    # without the variable, and no qmskpi.toml there: one clear error, not a traceback maze
    monkeypatch.delenv("QMSKPI_CONFIG")
    import papermill

    with pytest.raises(papermill.PapermillExecutionError, match="no config file: none given"):
        _execute(analysis / "suppliers.ipynb", tmp_path / "failed.ipynb", analysis)


@pytest.mark.notebook
@pytest.mark.timeout(600)
@pytest.mark.skipif(not _upstream_ready(), reason="sample data or contracts not there yet")
def test_a_deep_dive_started_by_another_notebook_reuses_its_prepared_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qmskpi import charts, pipeline

    prepared = pipeline.prepare(SAMPLE_CONFIG, "2026-10", "all", save_to=tmp_path / "prepared")
    # no config where the kernel looks: config_path comes from the saved folder
    monkeypatch.delenv("QMSKPI_CONFIG", raising=False)
    joined = _execute(
        NOTEBOOK_DIR / "complaints.ipynb",
        tmp_path / "complaints.ipynb",
        tmp_path,
        prepared_path=str(tmp_path / "prepared"),
    )
    # the section exactly as the saved review draws it (pinned ids; plotly.js in its first chart)
    assert str(charts.Pack(prepared.review).section("c1")) in joined
    assert "Repeat complaints received in the period" in joined


@pytest.mark.notebook
@pytest.mark.timeout(600)
def test_complaints_notebook_with_complaints_pushed_down_shows_what_pulling_shows(
    tmp_path: Path, dirty_inspections: object
) -> None:
    """The complaints deep dive on a config whose complaints (and inspections and receipts)
    are pushed down to a DuckDB file: every table and chart it displays (trends from the
    aggregates, repeat complaints from the period's rows, ageing from the open counts) is
    the one it displays when the same rows are pulled."""
    import polars as pl

    from test_pushdown import _complaints_config, _every_pushable

    assert isinstance(dirty_inspections, pl.DataFrame)
    db, tables = _every_pushable(tmp_path, dirty_inspections)
    shown = {}
    for pushdown in (False, True):
        config = _complaints_config(tmp_path, db, tables, pushdown=pushdown)
        name = config.stem
        shown[name] = _execute(
            NOTEBOOK_DIR / "complaints.ipynb",
            tmp_path / f"complaints-{name}.ipynb",
            tmp_path,
            config_path=str(config),
            period="2026-03",
        )
    assert "Repeat complaints received in the period" in shown["pushed"]
    assert shown["pushed"] == shown["pulled"]
