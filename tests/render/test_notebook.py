"""render.notebook: executing a notebook, its failing or timed-out cell, what it refuses.

Real kernels, small notebooks written by the tests.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from qmskpi import render
from qmskpi.errors import RenderError
from render.helpers import gone, kernel_processes, make_notebook


@pytest.mark.notebook
def test_failing_cell_raises_with_cell_index_and_keeps_the_notebook(tmp_path: Path) -> None:
    source = make_notebook(
        tmp_path / "fail.ipynb",
        ("code", "n = 1", ["parameters"]),
        ("code", "x = n + 1"),
        ("code", "raise ValueError(f'boom {n}')"),
        ("code", "print('never')"),
    )
    out = tmp_path / "out" / "fail.ipynb"
    with pytest.raises(render.NotebookCellError) as info:
        render.execute_notebook(source, out, {"n": 7}, cwd=tmp_path, timeout_s=60)
    err = info.value
    assert isinstance(err, RenderError)
    # 0 parameters, 1 injected-parameters, 2 x = ..., 3 raise
    assert err.cell_index == 3
    assert (err.ename, err.evalue) == ("ValueError", "boom 7")
    assert "raise ValueError" in err.source
    assert "cell 3" in str(err)
    assert "ValueError: boom 7" in str(err)
    assert err.notebook == out
    kept = nbformat.read(out, as_version=4)
    assert any(o.get("ename") == "ValueError" for c in kept.cells for o in c.get("outputs", []))
    assert kernel_processes() == []


@pytest.mark.notebook
def test_cell_timeout_raises_and_kills_the_kernel_and_its_children(tmp_path: Path) -> None:
    source = make_notebook(
        tmp_path / "slow.ipynb",
        ("code", "print('fast')"),
        (
            "code",
            "import pathlib, subprocess, time\n"
            "child = subprocess.Popen(['sleep', '300'])\n"
            "pathlib.Path('child.pid').write_text(str(child.pid))\n"
            "time.sleep(300)",
        ),
    )
    out = tmp_path / "slow.out.ipynb"
    with pytest.raises(render.NotebookCellError) as info:
        render.execute_notebook(source, out, {}, cwd=tmp_path, timeout_s=2)
    assert info.value.cell_index == 1
    assert info.value.ename == "CellTimeoutError"
    assert "timed out" in str(info.value)
    kept = nbformat.read(out, as_version=4)  # saved as far as it ran
    assert kept.cells[0].outputs[0]["text"] == "fast\n"
    assert kernel_processes() == []
    assert gone(int((tmp_path / "child.pid").read_text()))


def test_execute_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "a.ipynb", ("code", "1"))
    with pytest.raises(RenderError, match="notebook not found"):
        render.execute_notebook(
            tmp_path / "nope.ipynb", tmp_path / "o.ipynb", {}, cwd=tmp_path, timeout_s=5
        )
    with pytest.raises(RenderError, match="cannot be passed"):
        render.execute_notebook(
            nb, tmp_path / "o.ipynb", {"x": object()}, cwd=tmp_path, timeout_s=5
        )
    with pytest.raises(RenderError, match="working directory"):
        render.execute_notebook(nb, tmp_path / "o.ipynb", {}, cwd=tmp_path / "no", timeout_s=5)
