"""Execute a notebook with papermill on the kernel of :mod:`.kernel`.

:func:`execute_notebook` runs a notebook with a timeout per cell; a failing
cell raises :class:`NotebookCellError` naming the cell, and the executed
notebook, error cell included, is kept for diagnosis. papermill and nbclient
are imported here and nowhere else in the package (lazily).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePath
from typing import Any, Final

from qmskpi.errors import RenderError
from qmskpi.render.files import _read_notebook
from qmskpi.render.kernel import (
    _SOCKET_DIR_PREFIX,
    KERNEL_NAME,
    StartedKernel,
    _kernel_manager_class,
    _sweep_stale_socket_dirs,
)

log = logging.getLogger("qmskpi.render")  # one logger for the package, as before its split


class NotebookCellError(RenderError):
    """A notebook cell raised, timed out, or the kernel died while running it.

    ``cell_index`` is the 0-based index of the cell in the *executed* notebook
    (papermill inserts an ``injected-parameters`` cell after the ``parameters``
    cell); ``notebook`` is the executed notebook, kept with the error output.
    """

    def __init__(
        self,
        message: str,
        *,
        notebook: Path,
        cell_index: int | None,
        ename: str,
        evalue: str,
        source: str = "",
        traceback: str = "",
    ) -> None:
        self.notebook = notebook
        self.cell_index = cell_index
        self.ename = ename
        self.evalue = evalue
        self.source = source
        self.traceback = traceback
        super().__init__(message)


_ENGINE_NAME: Final = "qmskpi"


@functools.cache
def _register_engine() -> str:
    """Register (once) the papermill engine that saves the notebook at the end only.

    papermill's default engine rewrites the whole output notebook before and
    after every cell; a pack's notebook carries megabytes of chart HTML, so that
    costs seconds. This engine saves when the run starts, every 30 s during a long
    cell, and when it ends, also after a failure or a timeout (so the notebook
    as far as it ran is always kept).
    """
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    class SaveAtEndManager(NotebookExecutionManager):  # type: ignore[misc]
        _skip_save = False

        @contextlib.contextmanager
        def _no_save(self) -> Iterator[None]:
            self._skip_save = True
            try:
                yield
            finally:
                self._skip_save = False

        # papermill saves at the start and at the end of every cell: ~0.4 s a pack.
        def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
            with self._no_save():
                super().cell_start(cell, cell_index=cell_index, **kwargs)

        def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
            with self._no_save():
                super().cell_complete(cell, cell_index=cell_index, **kwargs)

        def save(self, **kwargs: Any) -> None:
            if not self._skip_save:
                super().save(**kwargs)

    class SaveAtEndEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_notebook(
            cls,
            nb: Any,
            kernel_name: str,
            output_path: str | None = None,
            progress_bar: bool = False,
            log_output: bool = False,
            autosave_cell_every: int = 30,
            **kwargs: Any,
        ) -> Any:
            nb_man = SaveAtEndManager(
                nb,
                output_path=output_path,
                progress_bar=progress_bar,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register(_ENGINE_NAME, SaveAtEndEngine)
    return _ENGINE_NAME


def _jsonish(value: object) -> object:
    """Parameters papermill can write as Python literals (paths and dates as str)."""
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonish(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonish(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise RenderError(
        f"notebook parameter value {value!r} of type {type(value).__name__} cannot be passed; "
        "use str, int, float, bool, None, list, dict, Path or date"
    )


def _running_cell(executed: Path) -> tuple[int | None, str]:
    """Index and source of the last cell papermill started in ``executed``."""
    try:
        nb = _read_notebook(executed)
    except (OSError, ValueError):
        return None, ""
    index: int | None = None
    for i, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("papermill", {}).get("start_time"):
            index = i
    if index is None:
        return None, ""
    return index, str(nb.cells[index].source)


# Long by design: one kernel's life (start or adopt, run cells, collect the error cell,
# always shut down) in one try/finally, so no path can leave a kernel or its sockets behind.
def execute_notebook(
    notebook: Path,
    output: Path,
    parameters: Mapping[str, object],
    *,
    cwd: Path,
    timeout_s: int,
    kernel: StartedKernel | None = None,
) -> Path:
    """Execute ``notebook`` with ``parameters`` into ``output`` and return ``output``.

    Runs on the ``python3`` kernel of this venv, in working directory ``cwd``,
    with ``timeout_s`` as the limit for each cell (kernel start-up gets at most
    60 s of it). Raises :class:`NotebookCellError` (a :class:`RenderError`) when
    a cell raises or times out, or the kernel dies; ``output`` then holds the
    notebook as far as it ran, error cell included. The kernel is shut down in
    every case.

    ``kernel`` is a kernel from :func:`start_kernel` to run the notebook in
    (it is shut down here, used or not); one that died or failed its warm-up
    is dropped and a fresh kernel is started instead.
    """
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillException, PapermillExecutionError

    try:
        notebook, output, cwd = Path(notebook), Path(output), Path(cwd)
        if not notebook.is_file():
            raise RenderError(f"notebook not found: {notebook}")
        if not cwd.is_dir():
            raise RenderError(f"working directory not found: {cwd}")
        if timeout_s <= 0:
            raise RenderError(f"timeout_s must be positive, got {timeout_s}")
        params = {str(k): _jsonish(v) for k, v in parameters.items()}
        output.parent.mkdir(parents=True, exist_ok=True)
    except BaseException:
        if kernel is not None:
            kernel.shutdown()
        raise
    extra: dict[str, Any] = {}
    if kernel is not None:
        if kernel.ready_in(cwd, timeout_s=min(timeout_s, 60)):
            extra["km"] = kernel.manager  # nbclient does not own it: shut down below
        else:
            kernel.shutdown()
            log.warning("%s: pre-started kernel not usable; starting a fresh one", notebook.name)
            kernel = None
    _sweep_stale_socket_dirs(Path(tempfile.gettempdir()))
    sockets = tempfile.TemporaryDirectory(prefix=_SOCKET_DIR_PREFIX)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=params,
            engine_name=_register_engine(),
            kernel_name=KERNEL_NAME,
            language="python",
            progress_bar=False,
            log_output=False,
            start_timeout=min(timeout_s, 60),
            execution_timeout=timeout_s,
            kernel_manager_class=_kernel_manager_class(Path(sockets.name)),
            # The kernel starts in cwd; papermill's own ``cwd=`` would chdir
            # this whole process instead.
            resources={"metadata": {"path": str(cwd.resolve())}},
            shutdown_kernel="immediate",
            **extra,
        )
    except PapermillExecutionError as exc:
        tb = _strip_ansi("\n".join(exc.traceback))
        raise NotebookCellError(
            f"{notebook.name}: cell {exc.cell_index} raised {exc.ename}: {exc.evalue} "
            f"(executed notebook kept at {output})",
            notebook=output,
            cell_index=int(exc.cell_index),
            ename=str(exc.ename),
            evalue=str(exc.evalue),
            source=str(exc.source),
            traceback=tb,
        ) from exc
    except (CellTimeoutError, DeadKernelError, TimeoutError, RuntimeError) as exc:
        index, source = _running_cell(output)
        what = "timed out" if isinstance(exc, CellTimeoutError | TimeoutError) else "failed"
        where = f"cell {index} {what}" if index is not None else f"kernel start {what}"
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise NotebookCellError(
            f"{notebook.name}: {where}: {type(exc).__name__}: {first_line} "
            f"(executed notebook kept at {output})",
            notebook=output,
            cell_index=index,
            ename=type(exc).__name__,
            evalue=str(exc),
            source=source,
        ) from exc
    except (PapermillException, NoSuchKernel, ValueError) as exc:
        raise RenderError(f"{notebook.name}: cannot execute: {type(exc).__name__}: {exc}") from exc
    finally:
        if kernel is not None:
            kernel.shutdown()
        sockets.cleanup()
    return output


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)
