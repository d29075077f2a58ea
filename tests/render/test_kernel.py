"""render.kernel: the kernel over IPC sockets, started ahead and swept when left behind.

Real kernels; the demo pack (conftest.py) is rendered once for the package.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from qmskpi import render
from qmskpi.render.kernel import _sweep_stale_socket_dirs
from render.helpers import Pack, kernel_processes, make_notebook


@pytest.mark.notebook
@pytest.mark.browser
def test_kernel_runs_in_the_stage_dir_over_ipc_and_is_gone(pack: Pack) -> None:
    record = json.loads((pack.work / "kernel.json").read_text())
    assert record == {
        "cwd": str((pack.work / "stage").resolve()),
        "transport": "ipc",
        "sockets_listed": True,  # what the stale-socket sweep relies on
    }
    assert kernel_processes() == []
    assert list((pack.work / "tmp").iterdir()) == []  # IPC sockets removed


def test_sweep_removes_only_socket_dirs_of_dead_kernels(tmp_path: Path) -> None:
    """Socket dirs a SIGKILLed run left behind go; live or fresh ones stay."""
    import os
    import socket

    dead, fresh, live, other = (
        tmp_path / n
        for n in ("qmskpi-kernel-dead", "qmskpi-kernel-fresh", "qmskpi-kernel-live", "other")
    )
    for d in (dead, fresh, live, other):
        d.mkdir()
    (dead / "kernel-1").write_text("")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(live / "kernel-1"))
        old = 1_000_000_000
        for d in (dead, live, other):
            os.utime(d, (old, old))
        assert _sweep_stale_socket_dirs(tmp_path) == [dead]
    finally:
        server.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other",
        "qmskpi-kernel-fresh",
        "qmskpi-kernel-live",
    ]


@pytest.mark.notebook
def test_a_pre_started_kernel_runs_the_notebook_as_a_fresh_one_and_is_gone(
    tmp_path: Path,
) -> None:
    """Warmed up and moved to cwd silently: same counts, cwd and namespace as a fresh kernel."""
    source = make_notebook(
        tmp_path / "pre.ipynb",
        ("code", "n = 1", ["parameters"]),
        (
            "code",
            "import os, sys\nprint(os.getcwd(), n, 'qmskpi' in dir(), 'qmskpi.charts' in sys.modules)",
        ),
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    kernel = render.start_kernel()
    assert kernel is not None
    assert len(kernel_processes()) == 1
    out = render.execute_notebook(
        source, tmp_path / "out.ipynb", {"n": 7}, cwd=cwd, timeout_s=60, kernel=kernel
    )
    assert kernel.closed
    assert kernel_processes() == []
    cells = nbformat.read(out, as_version=4).cells
    assert [c.execution_count for c in cells] == [1, 2, 3]
    assert cells[2].outputs[0]["text"] == f"{cwd.resolve()} 7 False True\n"


@pytest.mark.notebook
def test_a_failing_cell_in_a_pre_started_kernel_leaves_no_kernel(tmp_path: Path) -> None:
    source = make_notebook(
        tmp_path / "fail.ipynb",
        ("code", "n = 1", ["parameters"]),
        ("code", "raise ValueError(f'boom {n}')"),
    )
    kernel = render.start_kernel(warm_up=False)
    assert kernel is not None
    with pytest.raises(render.NotebookCellError) as info:
        render.execute_notebook(
            source, tmp_path / "out.ipynb", {"n": 7}, cwd=tmp_path, timeout_s=60, kernel=kernel
        )
    assert info.value.cell_index == 2
    assert kernel_processes() == []


@pytest.mark.notebook
def test_a_dead_pre_started_kernel_falls_back_to_a_fresh_one(tmp_path: Path) -> None:
    source = make_notebook(tmp_path / "ok.ipynb", ("code", "n = 1", ["parameters"]), ("code", "n"))
    kernel = render.start_kernel()
    assert kernel is not None
    (proc,) = kernel_processes()
    proc.kill()
    proc.wait(timeout=10)
    out = render.execute_notebook(
        source, tmp_path / "out.ipynb", {"n": 7}, cwd=tmp_path, timeout_s=60, kernel=kernel
    )
    assert nbformat.read(out, as_version=4).cells[2].outputs[0]["data"]["text/plain"] == "7"
    assert kernel_processes() == []
