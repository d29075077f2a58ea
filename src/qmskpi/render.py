"""Render the management-review pack: execute the notebook, export HTML, print the PDF.

Three steps, each usable alone, chained by :func:`render_pack`:

1. :func:`execute_notebook` runs a notebook with papermill on the venv's
   ``python3`` kernel, over local IPC sockets (no TCP port is opened), with a
   timeout per cell. A failing cell raises :class:`NotebookCellError` naming the
   cell; the executed notebook, error cell included, is kept for diagnosis.
   :func:`start_kernel` starts (and warms up) that kernel ahead of time, so
   that its start-up overlaps the caller's own work (validation).
2. :func:`export_html` turns the executed notebook into one self-contained HTML
   file with the ``qmskpi`` nbconvert template (no code, no prompts, nothing
   fetched from the network, plotly.js inlined once by the first chart, print CSS
   and ``pack.css`` inlined). Identical notebooks give identical bytes.
3. :func:`print_pdf` prints that HTML to A4 with the system Chromium through
   playwright, after every chart has drawn, with every non-``file:`` request
   aborted. :class:`PdfPrinter` keeps one browser open for many packs;
   :func:`find_chromium` says which browser that is (the order
   ``scripts/system-deps`` uses too).

The exports that sit beside the pack (``kpis.csv``, ``kpis.xlsx``,
``review-inputs.json``, ...) are written by :func:`write_csv`, :func:`write_xlsx`
and :func:`write_json`: deterministic bytes, formula injection neutralised, no
hyperlinks.

papermill, nbconvert, nbclient and playwright are imported here and nowhere else
in the package (and lazily, so ``import qmskpi.render`` stays cheap).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import html
import importlib.resources
import io
import json
import logging
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePath
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import polars as pl

from qmskpi import progress
from qmskpi.errors import RenderError

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, PdfMargins, Playwright

_T = TypeVar("_T")
__all__ = [
    "CHROMIUM_ARGS",
    "CHROMIUM_ENV",
    "CHROMIUM_NAMES",
    "ChartsNotDrawnError",
    "ChromiumNotFoundError",
    "NotebookCellError",
    "PdfPrinter",
    "RenderResult",
    "StartedKernel",
    "ThreadedPrinter",
    "block_network",
    "chromium_missing",
    "execute_notebook",
    "export_html",
    "find_chromium",
    "install_command",
    "neutralise_formula",
    "open_for_print",
    "packaged_notebook",
    "print_loaded_page",
    "print_pdf",
    "render_pack",
    "require_chromium",
    "start_kernel",
    "warm_up_export",
    "write_csv",
    "write_json",
    "write_xlsx",
]

log = logging.getLogger(__name__)

KERNEL_NAME: Final = "python3"
CHROMIUM_ENV: Final = "QMSKPI_CHROMIUM"
CHROMIUM_NAMES: Final = ("chromium", "google-chrome", "google-chrome-stable", "chromium-browser")
_MAC_APPS: Final = (
    Path("/Applications/Chromium.app/Contents/MacOS/Chromium"),
    Path("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"),
)
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
TEMPLATE_DIR: Final = Path(__file__).with_name("templates")
NBCONVERT_TEMPLATES: Final = TEMPLATE_DIR / "nbconvert"
TEMPLATE_NAME: Final = "qmskpi"
PACK_CSS: Final = TEMPLATE_DIR / "pack.css"
PACK_STEM: Final = "management-review"

# A4 in CSS pixels (96 px per inch) and the printed margins. The page is laid
# out at the printable width so that charts are drawn at the size they print.
_MM_PX: Final = 96 / 25.4
A4_WIDTH_MM: Final = 210.0
A4_HEIGHT_MM: Final = 297.0
MARGIN_MM: Final = {"top": 16.0, "right": 14.0, "bottom": 16.0, "left": 14.0}
PRINT_WIDTH_PX: Final = int((A4_WIDTH_MM - MARGIN_MM["left"] - MARGIN_MM["right"]) * _MM_PX)
PRINT_HEIGHT_PX: Final = int((A4_HEIGHT_MM - MARGIN_MM["top"] - MARGIN_MM["bottom"]) * _MM_PX)

_PAPERMILL_TAGS: Final = ("injected-parameters", "papermill-error-cell-tag")
_REMOVE_CELL_TAGS: Final = frozenset({"remove-cell", "remove_cell"})
_REMOVE_OUTPUT_TAGS: Final = frozenset({"remove-output", "remove_output"})


# --------------------------------------------------------------------------- errors


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


class ChromiumNotFoundError(RenderError):
    """No Chromium to print the PDF with; the message says where we looked and how to get one."""


class ChartsNotDrawnError(RenderError):
    """Some ``.plotly-graph-div`` never became a drawn ``.js-plotly-plot`` in time."""

    def __init__(self, message: str, *, chart_ids: tuple[str, ...], page_errors: tuple[str, ...]):
        self.chart_ids = chart_ids
        self.page_errors = page_errors
        super().__init__(message)


# --------------------------------------------------------------------------- execute


def _kernel_manager_class(socket_dir: Path) -> type[Any]:
    """An ``AsyncKernelManager`` that talks to the kernel over IPC sockets in ``socket_dir``.

    Over IPC no TCP port is opened (no clash between parallel runs) and
    ipykernel does not warn "Kernel is running over TCP without encryption".
    The caller owns ``socket_dir`` (a short private temp dir: unix socket paths
    are limited to ~100 bytes) and removes it, sockets and all, even when the
    kernel was killed.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum

    # ipykernel 6 starts debugpy, which prints eight lines of "frozen modules" warnings to
    # the kernel's stderr (which is the CLI's) at every start; the kernel inherits this.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    class IpcKernelManager(AsyncKernelManager):  # type: ignore[misc]
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        def _ip_default(self) -> str:
            return str(socket_dir / "kernel")

    return IpcKernelManager


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


_SOCKET_DIR_PREFIX: Final = "qmskpi-kernel-"


def _sweep_stale_socket_dirs(base: Path, *, min_age_s: float = 300) -> list[Path]:
    """Remove kernel socket dirs that runs killed with SIGKILL left in ``base``; return them.

    A dir counts as stale when it is older than ``min_age_s`` and none of its
    sockets is bound by a live process (Linux ``/proc/net/unix``; elsewhere
    nothing is removed).
    """
    try:
        bound = Path("/proc/net/unix").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    removed = []
    now = time.time()
    for d in base.glob(f"{_SOCKET_DIR_PREFIX}*"):
        try:
            if not d.is_dir() or now - d.stat().st_mtime < min_age_s or f"{d}/" in bound:
                continue
            shutil.rmtree(d)
            removed.append(d)
        except OSError:
            continue
    return removed


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


def _read_notebook(path: Path) -> Any:
    import nbformat

    read: Any = nbformat.read
    return read(str(path), as_version=4)


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


_WARM_UP: Final = "__import__('qmskpi.charts'); __import__('qmskpi.pipeline')"
"""What a pre-started kernel imports while it waits (binds no name in the user namespace)."""
_HIST_FILE_ARG: Final = "--HistoryManager.hist_file=:memory:"  # what nbclient passes


class StartedKernel:
    """A ``python3`` kernel started ahead of its notebook: see :func:`start_kernel`.

    Used once, by :func:`execute_notebook` (``kernel=``), which shuts it down
    whatever happens; whoever started it calls :meth:`shutdown` too, in a
    ``finally`` (it is idempotent), for the paths where the notebook never runs.
    The kernel also exits by itself when this process dies (ipykernel's parent
    poller), so a SIGKILL leaves no kernel behind.
    """

    def __init__(
        self,
        km: Any,
        client: Any,
        clients: list[Any],
        sockets: tempfile.TemporaryDirectory[str],
        pending: list[str],
    ) -> None:
        self._km = km
        self._client = client
        self._clients = clients
        self._sockets = sockets
        self._pending = pending
        self._lock = threading.Lock()
        self._closed = False

    @property
    def manager(self) -> Any:
        """The ``jupyter_client`` kernel manager (for nbclient's ``km=``)."""
        return self._km

    @property
    def pid(self) -> int | None:
        process = getattr(getattr(self._km, "provisioner", None), "process", None)
        pid = getattr(process, "pid", None)
        return int(pid) if pid is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    def _alive(self) -> bool:
        from jupyter_core.utils import run_sync

        try:
            return bool(run_sync(self._km.is_alive)())
        except Exception:
            return False

    def ready_in(self, cwd: Path, *, timeout_s: float) -> bool:
        """Move the kernel to ``cwd`` and wait for the warm-up; False if it cannot be used.

        Both run as silent executions (no execution count, no history, no
        output, no name bound), so the notebook then runs as in a fresh kernel
        started in ``cwd`` whose modules are already imported.
        """
        from jupyter_core.utils import run_sync

        if self._closed or not self._alive():
            return False
        try:
            code = f"__import__('os').chdir({str(Path(cwd).resolve())!r})"
            pending = [*self._pending, self._client.execute(code, silent=True, store_history=False)]
            get_reply = run_sync(self._client.get_shell_msg)
            deadline = time.monotonic() + timeout_s
            while pending:
                if time.monotonic() > deadline:
                    log.warning("pre-started kernel not ready after %.0f s", timeout_s)
                    return False
                try:
                    reply = get_reply(timeout=0.5)
                except Exception:  # queue.Empty on timeout
                    if not self._alive():
                        log.warning("pre-started kernel died before the notebook ran")
                        return False
                    continue
                parent = reply.get("parent_header", {}).get("msg_id")
                if parent not in pending:
                    continue
                pending.remove(parent)
                if reply.get("content", {}).get("status") != "ok":
                    content = reply.get("content", {})
                    log.warning(
                        "pre-started kernel: warm-up failed: %s: %s",
                        content.get("ename"),
                        content.get("evalue"),
                    )
                    return False
        except Exception as exc:
            log.warning("pre-started kernel cannot be used: %s: %s", type(exc).__name__, exc)
            return False
        self._pending = []
        return True

    def shutdown(self) -> None:
        """Stop the kernel, close every client, remove its sockets (idempotent, never raises)."""
        from jupyter_core.utils import run_sync

        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            for kc in self._clients:
                with contextlib.suppress(Exception):
                    kc.stop_channels()
                # jupyter-client < 8.1 leaves a client's own zmq context open on stop_channels
                # (a ResourceWarning when it is collected); later versions destroy it there
                with contextlib.suppress(Exception):
                    if getattr(kc, "_created_context", False) and not kc.context.closed:
                        kc.context.destroy(linger=0)
            with contextlib.suppress(Exception):
                run_sync(self._km.shutdown_kernel)(now=True)
            with contextlib.suppress(Exception):
                run_sync(self._km.cleanup_resources)()
        finally:
            self._sockets.cleanup()

    def __enter__(self) -> StartedKernel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def start_kernel(*, warm_up: bool = True, timeout_s: float = 60) -> StartedKernel | None:
    """Start the ``python3`` kernel now, for a notebook that runs later; None if it fails.

    The kernel process starts and imports on another core while this process
    goes on (validation, KPIs); with ``warm_up`` it also imports
    ``qmskpi.charts`` and ``qmskpi.pipeline`` (silently). Same kernel spec, IPC
    transport and arguments as :func:`execute_notebook` uses. A kernel that
    cannot be started is cleaned up and logged, and None is returned: the
    caller then renders the normal way.
    """
    from jupyter_core.utils import run_sync

    _sweep_stale_socket_dirs(Path(tempfile.gettempdir()))
    sockets = tempfile.TemporaryDirectory(prefix=_SOCKET_DIR_PREFIX)
    clients: list[Any] = []
    km: Any = None
    try:
        base = _kernel_manager_class(Path(sockets.name))

        class StartedKernelManager(base):  # type: ignore[misc,valid-type]
            def client(self, **kwargs: Any) -> Any:
                kc = super().client(**kwargs)
                clients.append(kc)  # closed by StartedKernel.shutdown (nbclient does not own them)
                return kc

        km = StartedKernelManager(kernel_name=KERNEL_NAME)
        # In the private socket dir until ready_in() moves it to the notebook's cwd.
        run_sync(km.start_kernel)(extra_arguments=[_HIST_FILE_ARG], cwd=sockets.name)
        kc = km.client()
        kc.start_channels()
        pending = [kc.execute(_WARM_UP, silent=True, store_history=False)] if warm_up else []
    except Exception as exc:
        log.warning("could not pre-start the kernel (%s: %s)", type(exc).__name__, exc)
        if km is not None:
            StartedKernel(km, None, clients, sockets, []).shutdown()
        else:
            sockets.cleanup()
        return None
    return StartedKernel(km, kc, clients, sockets, pending)


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


# --------------------------------------------------------------------------- HTML


def _stable_id(text: object) -> str:
    return hashlib.sha256(str(text).encode("utf-8")).hexdigest()[:12]


def _normalise_notebook(nb: Any, *, title: str) -> list[str]:
    """Make an executed notebook render deterministically; return its stderr texts.

    papermill gives its own cells random ids and stamps times and kernel details
    into the metadata; none of that belongs in the pack.
    """
    stderr: list[str] = []
    keep = {"kernelspec", "language_info"}
    for key in list(nb.metadata):
        if key not in keep:
            del nb.metadata[key]
    nb.metadata["title"] = title
    nb.metadata.get("language_info", {}).pop("version", None)
    for index, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        for tag in _PAPERMILL_TAGS:
            if tag in tags:
                cell["id"] = f"{tag}-{index}"
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                stderr.append(str(out.get("text", "")))
    return stderr


_PLOTLYJS = re.compile(r"<script[^>]*>\s*/\*\*\s*\*\s*plotly\.js v[\s\S]*?</script>")


def _sub_plotlyjs(nb: Any, replace: Callable[[re.Match[str]], str]) -> None:
    """Replace each inlined plotly.js bundle in the notebook's HTML outputs by ``replace(match)``."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            text = data.get("text/html")
            if not text:
                continue
            joined = "".join(text) if isinstance(text, list) else str(text)
            if "plotly.js v" in joined:
                data["text/html"] = _PLOTLYJS.sub(replace, joined)


def _lift_plotlyjs(nb: Any) -> dict[str, str]:
    """Replace each inlined plotly.js bundle by a short token; return token -> script.

    nbconvert parses and re-serialises the whole page with BeautifulSoup, which
    costs about a second per megabyte; plotly.js is ~4.8 MB and goes through
    untouched, so it is set aside and put back afterwards.
    """
    lifted: dict[str, str] = {}

    def _swap(match: re.Match[str]) -> str:
        token = f"<!--qmskpi-plotlyjs-{len(lifted)}-{uuid.uuid4().hex}-->"
        lifted[token] = match.group(0)
        return token

    _sub_plotlyjs(nb, _swap)
    return lifted


PLOTLYJS_REMOVED: Final = (
    '<script type="text/plain" data-qmskpi="plotly.js removed">plotly.js v{version} ran here; '
    "it is inlined once in {html} and removed from this record to keep one copy.</script>"
)
"""What replaces each inlined plotly.js bundle in the archived executed notebook."""

_PLOTLYJS_VERSION = re.compile(r"plotly\.js v([0-9][0-9A-Za-z.+-]*)")


def strip_plotlyjs(executed: Path, *, html_name: str) -> int:
    """Replace every inlined plotly.js bundle in ``executed`` by a one-line note; return how many.

    Run after :func:`export_html`: the HTML keeps the only copy (~4.8 MB), the
    executed notebook keeps every output as it ran, the library excepted, and
    says so where it was. Same notebook, same bytes.
    """
    import nbformat

    nb = _read_notebook(executed)
    removed = 0

    def _note(match: re.Match[str]) -> str:
        nonlocal removed
        removed += 1
        version = _PLOTLYJS_VERSION.search(match.group(0))
        return PLOTLYJS_REMOVED.format(
            version=version.group(1) if version else "?", html=html.escape(html_name)
        )

    _sub_plotlyjs(nb, _note)
    if removed:
        writes: Any = nbformat.writes
        _write_atomic(executed, (writes(nb) + "\n").encode("utf-8"))
    return removed


@functools.cache
def _html_exporter() -> Any:
    """The pack's HTMLExporter (one per process: compiling the template takes ~0.4 s).

    It skips the BeautifulSoup pass of nbconvert's ``HTMLExporter``, which
    re-parses and re-serialises the whole page to add ``alt`` text to images
    without one and ``tabindex`` to output areas: ~0.7 s for a pack, for
    nothing a printed pack uses (its charts and icons are inline SVG).
    """
    import nbconvert
    import nbconvert.exporters.templateexporter
    import nbconvert.filters.highlight
    import nbconvert.filters.widgetsdatatypefilter
    import nbconvert.preprocessors

    # nbconvert is only partly typed: handle it as Any.
    html_exporter: Any = nbconvert.HTMLExporter
    template_exporter: Any = nbconvert.exporters.templateexporter.TemplateExporter
    highlight2html: Any = nbconvert.filters.highlight.Highlight2HTML
    widgets_filter: Any = nbconvert.filters.widgetsdatatypefilter.WidgetsDataTypeFilter
    tag_remove: Any = nbconvert.preprocessors.TagRemovePreprocessor

    class PackExporter(html_exporter):  # type: ignore[misc]
        def from_notebook_node(
            self, nb: Any, resources: dict[str, Any] | None = None, **kw: Any
        ) -> tuple[str, dict[str, Any]]:
            # HTMLExporter.from_notebook_node (nbconvert 7.17) without the soup pass.
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            highlight_code = self.filters.get(
                "highlight_code", highlight2html(pygments_lexer=lexer, parent=self)
            )
            resources = self._init_resources(resources)
            filter_data_type = widgets_filter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources
            )
            self.register_filter("highlight_code", highlight_code)
            self.register_filter("filter_data_type", filter_data_type)
            html_text, out = template_exporter.from_notebook_node(self, nb, resources, **kw)
            return str(html_text), out

    exporter = PackExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(NBCONVERT_TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        theme="light",
        language_code="en",
        embed_images=False,
        sanitize_html=False,
    )
    exporter.register_filter("qmskpi_stable_id", _stable_id)
    exporter.register_preprocessor(
        tag_remove(
            remove_cell_tags=set(_REMOVE_CELL_TAGS),
            remove_all_outputs_tags=set(_REMOVE_OUTPUT_TAGS),
        ),
        enabled=True,
    )
    return exporter


def warm_up_export() -> None:
    """Import nbconvert and compile the pack's template now (~0.4 s once per process).

    For a thread with nothing else to do while the notebook runs: :func:`export_html`
    then starts at once.
    """
    import nbformat

    new_notebook: Any = nbformat.v4.new_notebook
    resources = {"metadata": {"name": PACK_STEM, "path": "."}, "qmskpi": {"pack_css": ""}}
    with _EXPORTER_LOCK:
        _html_exporter().from_notebook_node(new_notebook(), resources=resources)


_EXPORTER_LOCK: Final = threading.Lock()
"""The exporter is one per process and not thread-safe (it registers filters per call)."""


def export_html(executed: Path, output: Path, *, title: str) -> Path:
    """Export the executed notebook to one offline HTML file and return ``output``.

    No code and no prompts; nothing is fetched from the network (the stock
    template's require.js, MathJax, mermaid and widget loaders are removed);
    print CSS and ``templates/pack.css`` are inlined; ``<title>`` is ``title``,
    escaped. Cells tagged ``remove-cell`` are dropped, outputs of cells tagged
    ``remove-output`` too; stderr output (warnings) is logged, not shown.
    """
    executed, output = Path(executed), Path(output)
    try:
        nb = _read_notebook(executed)
    except (OSError, ValueError) as exc:
        raise RenderError(f"cannot read executed notebook {executed}: {exc}") from exc
    for text in _normalise_notebook(nb, title=title):
        log.warning("%s wrote to stderr: %s", executed.name, text.strip()[:2000])
    lifted = _lift_plotlyjs(nb)
    pack_css = PACK_CSS.read_text(encoding="utf-8") if PACK_CSS.is_file() else ""
    resources = {
        "metadata": {"name": PACK_STEM, "path": str(executed.parent)},
        "qmskpi": {"pack_css": pack_css},
    }
    with _EXPORTER_LOCK:
        body, _ = _html_exporter().from_notebook_node(nb, resources=resources)
    for token, script in lifted.items():
        if body.count(token) != 1:
            raise RenderError(f"plotly.js placeholder lost while exporting {executed}")
        body = body.replace(token, script)
    _write_atomic(output, body.encode("utf-8"))
    return output


# --------------------------------------------------------------------------- PDF


_CHARTS_DRAWN_JS: Final = """() => Array.from(document.querySelectorAll('.plotly-graph-div'))
    .every(el => el.classList.contains('js-plotly-plot'))"""
_CHARTS_NOT_DRAWN_JS: Final = """() => Array.from(document.querySelectorAll('.plotly-graph-div'))
    .filter(el => !el.classList.contains('js-plotly-plot')).map(el => el.id || '(no id)')"""
_PRINT_TEXT_STYLE: Final = (
    "font-family: sans-serif; font-size: 7.5pt; color: #555; width: 100%; "
    f"margin: 0 {MARGIN_MM['left']:g}mm; display: flex; justify-content: space-between;"
)


def _header_template(title: str) -> str:
    return (
        f'<div style="{_PRINT_TEXT_STYLE}"><span>{html.escape(title)}</span>'
        "<span>ISO 9001 &#167;9.3 management review input</span></div>"
    )


def _footer_template(label: str = "") -> str:
    """Page numbers; ``label`` (a provisional clause map, say) on the left of every page."""
    left = f'<span style="font-weight: bold;">{html.escape(label)}</span>' if label else ""
    return (
        f'<div style="{_PRINT_TEXT_STYLE}{"" if label else " justify-content: flex-end;"}">'
        f"{left}"
        '<span>Page <span class="pageNumber"></span> of <span class="totalPages"></span></span>'
        "</div>"
    )


_RUNNING_LABEL_JS: Final = """() => {
    const el = document.querySelector('[data-qk-running-label]');
    return el ? el.getAttribute('data-qk-running-label') : '';
}"""
"""The label the pack asks to be printed on every page (``charts.running_label``)."""


def block_network(page: Page) -> list[str]:
    """Abort every request that is not ``file:`` (or ``data:``/``blob:``); return their URLs."""
    blocked: list[str] = []

    def _route(route: Any) -> None:
        url = str(route.request.url)
        if url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", _route)
    return blocked


def open_for_print(page: Page, html_path: Path, *, timeout_s: float) -> list[str]:
    """Load ``html_path`` in print media at the printed width; wait for every chart.

    Returns the page errors seen. Raises :class:`ChartsNotDrawnError` naming the
    charts that did not draw within ``timeout_s``.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.emulate_media(media="print")
    timeout_ms = timeout_s * 1000
    try:
        page.goto(Path(html_path).resolve().as_uri(), wait_until="load", timeout=timeout_ms)
    except PlaywrightError as exc:
        raise RenderError(f"Chromium could not load {html_path}: {exc}") from exc
    try:
        page.wait_for_function(_CHARTS_DRAWN_JS, timeout=timeout_ms)
    except PlaywrightTimeout as exc:
        missing = tuple(str(i) for i in page.evaluate(_CHARTS_NOT_DRAWN_JS))
        raise ChartsNotDrawnError(
            f"{html_path}: {len(missing)} chart(s) not drawn after {timeout_s:g} s: "
            + ", ".join(missing)
            + (f"; page errors: {'; '.join(page_errors)}" if page_errors else ""),
            chart_ids=missing,
            page_errors=tuple(page_errors),
        ) from exc
    # Let plotly finish the frame it is drawing (text measured, axes placed).
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return page_errors


def print_loaded_page(page: Page, pdf: Path, *, title: str, bookmarks: bool = True) -> Path:
    """Print a page opened with :func:`open_for_print` to an A4 PDF at ``pdf``.

    The footer carries the page's running label (``data-qk-running-label``, set
    by the cover of a pack whose clause map is provisional) on every page.

    ``bookmarks`` makes a tagged (accessible) PDF with an outline from the
    headings; Chromium builds the outline from the tags, so it is both or
    neither. It costs ~0.6 s and doubles the file size for the sample pack.
    """
    pdf = Path(pdf)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    margin: PdfMargins = {
        "top": f"{MARGIN_MM['top']:g}mm",
        "right": f"{MARGIN_MM['right']:g}mm",
        "bottom": f"{MARGIN_MM['bottom']:g}mm",
        "left": f"{MARGIN_MM['left']:g}mm",
    }
    data = page.pdf(
        format="A4",
        print_background=True,
        margin=margin,
        display_header_footer=True,
        header_template=_header_template(title),
        footer_template=_footer_template(str(page.evaluate(_RUNNING_LABEL_JS) or "")),
        outline=bookmarks,
        tagged=bookmarks,
    )
    _write_atomic(pdf, data)
    return pdf


_driver = threading.local()


def _acquire_driver() -> Playwright:
    """The playwright driver of this thread, started on first use and shared.

    playwright's sync API refuses a second ``sync_playwright()`` in a thread
    whose first one is still running, so every :class:`PdfPrinter` of a thread
    shares one driver (each with its own browser); the last one out stops it.
    """
    state: list[Any] | None = getattr(_driver, "state", None)
    if state is None:
        from playwright.sync_api import sync_playwright

        state = [sync_playwright().start(), 0]
        _driver.state = state
    state[1] += 1
    playwright: Playwright = state[0]
    return playwright


def _release_driver() -> None:
    state: list[Any] | None = getattr(_driver, "state", None)
    if state is None:
        return
    state[1] -= 1
    if state[1] <= 0:
        _driver.state = None
        state[0].stop()


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _playwright_chromium(environ: Mapping[str, str]) -> Path | None:
    """The newest playwright-managed Chromium (``chromium-<n>/chrome-linux*/chrome``), if any."""
    base = environ.get("PLAYWRIGHT_BROWSERS_PATH") or str(
        Path(environ.get("HOME") or "/nonexistent") / ".cache" / "ms-playwright"
    )
    found: list[tuple[int, Path]] = []
    for pattern in (
        "chromium-*/chrome-linux*/chrome",
        "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
    ):
        for path in Path(base).glob(pattern):
            build = path.relative_to(base).parts[0].removeprefix("chromium-")
            if build.isdigit() and _is_executable(path):
                found.append((int(build), path))
    return max(found)[1] if found else None


def find_chromium(environ: Mapping[str, str] | None = None) -> Path | None:
    """The Chromium (or Chrome) that prints the PDF, or None when there is none.

    Looked for in this order (``scripts/system-deps`` uses the same):
    ``$QMSKPI_CHROMIUM`` (when set, there only: a wrong path is not silently
    replaced by another browser); ``chromium`` (Debian), ``google-chrome``,
    ``google-chrome-stable``, ``chromium-browser`` on ``PATH``; the macOS apps;
    the newest playwright-managed Chromium (``~/.cache/ms-playwright`` or
    ``$PLAYWRIGHT_BROWSERS_PATH``).
    """
    env = os.environ if environ is None else environ
    chosen = env.get(CHROMIUM_ENV, "")
    if chosen:
        return Path(chosen) if _is_executable(Path(chosen)) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name, path=env.get("PATH", os.defpath))
        if found:
            return Path(found)
    for app in _MAC_APPS:
        if _is_executable(app):
            return app
    return _playwright_chromium(env)


def _os_family() -> str:
    if sys.platform == "darwin":
        return "macos"
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return "unknown"
    words = [release.get("ID", ""), *release.get("ID_LIKE", "").split()]
    for word in words:
        for family, ids in _FAMILIES.items():
            if word in ids:
                return family
    return "unknown"


_FAMILIES: Final = {
    "ubuntu": ("ubuntu",),
    "debian": ("debian",),
    "fedora": ("fedora", "rhel", "centos"),
    "arch": ("arch",),
    "suse": ("suse", "opensuse", "opensuse-leap", "opensuse-tumbleweed"),
    "alpine": ("alpine",),
}
_INSTALL: Final = {
    "debian": "sudo apt-get update && sudo apt-get install -y chromium",
    "ubuntu": "sudo apt-get update && sudo apt-get install -y chromium-browser",
    "fedora": "sudo dnf install -y chromium",
    "arch": "sudo pacman -S --needed chromium",
    "suse": "sudo zypper install -y chromium",
    "alpine": "sudo apk add chromium",
    "macos": "brew install --cask google-chrome",
}


def install_command() -> str:
    """The command that installs Chromium on this platform (as ``scripts/system-deps`` prints it)."""
    command = _INSTALL.get(_os_family(), "install Chromium or Chrome with your package manager")
    return command.removeprefix("sudo ").replace("&& sudo ", "&& ") if _is_root() else command


def _is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


def chromium_missing() -> str:
    """Why no Chromium was found, and how to get one (one line)."""
    chosen = os.environ.get(CHROMIUM_ENV, "")
    if chosen:
        where = f"{CHROMIUM_ENV}={chosen} is not an executable file"
    else:
        where = (
            f"no Chromium found ({CHROMIUM_ENV} not set; none of {', '.join(CHROMIUM_NAMES)} "
            "on PATH; no playwright browser)"
        )
    return (
        f"{where}; install it with `{install_command()}` or point {CHROMIUM_ENV} at a "
        "Chromium or Chrome executable"
    )


def require_chromium() -> Path:
    """:func:`find_chromium`, or :class:`ChromiumNotFoundError` saying how to get one."""
    found = find_chromium()
    if found is None:
        raise ChromiumNotFoundError(chromium_missing())
    return found


class PdfPrinter:
    """One headless Chromium (the system one) for printing many packs.

    Use as a context manager; the browser is closed on exit, also after an
    error (and the playwright driver once no other printer of this thread
    needs it)::

        with PdfPrinter() as printer:
            for scope in scopes:
                printer.print(html, pdf, timeout_s=60)

    Without ``with``, the browser starts on first use and :meth:`close` ends
    it; a closed printer starts a fresh browser when used again. A printer
    belongs to the thread that started it (playwright's sync API).
    """

    def __init__(
        self,
        *,
        executable: Path | None = None,
        launch_timeout_s: float = 60,
        bookmarks: bool = True,
    ) -> None:
        self.executable = Path(executable) if executable is not None else None
        """The browser; None: :func:`find_chromium` when it starts."""
        self.launch_timeout_s = launch_timeout_s
        self.bookmarks = bookmarks
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._spare: tuple[BrowserContext, Page] | None = None

    def __enter__(self) -> PdfPrinter:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def browser(self) -> Browser:
        """The running browser (started on first use)."""
        if self._browser is None:
            self.start()
        assert self._browser is not None
        return self._browser

    def start(self) -> None:
        """Launch Chromium (no-op when already running)."""
        if self._browser is not None:
            return
        if self.executable is None:
            self.executable = require_chromium()
        elif not self.executable.is_file():
            raise ChromiumNotFoundError(
                f"Chromium not found at {self.executable}; install it with "
                f"`{install_command()}` or set {CHROMIUM_ENV}"
            )
        from playwright.sync_api import Error as PlaywrightError

        self._playwright = _acquire_driver()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=str(self.executable),
                args=list(CHROMIUM_ARGS),
                headless=True,
                timeout=self.launch_timeout_s * 1000,
            )
        except PlaywrightError as exc:
            self._close()  # not self.close(): a ThreadedPrinter runs this in its worker
            log.warning("Chromium %s failed to start: %s", self.executable, exc)
            raise RenderError(
                f"cannot start Chromium {self.executable}: {_first_line(exc)} (details in the log)"
            ) from exc

    def close(self) -> None:
        """Close the browser (and the driver when no other printer uses it)."""
        self._close()

    def _close(self) -> None:
        spare, self._spare = self._spare, None
        browser, self._browser = self._browser, None
        pw, self._playwright = self._playwright, None
        try:
            if spare is not None:
                with contextlib.suppress(Exception):
                    spare[0].close()
            if browser is not None:
                with contextlib.suppress(Exception):
                    browser.close()
        finally:
            if pw is not None:
                _release_driver()

    def _open_page(self) -> tuple[BrowserContext, Page]:
        context = self.browser.new_context(
            viewport={"width": PRINT_WIDTH_PX, "height": PRINT_HEIGHT_PX},
            java_script_enabled=True,
            offline=True,
            service_workers="block",
        )
        try:
            page = context.new_page()
            block_network(page)
        except BaseException:
            with contextlib.suppress(Exception):
                context.close()
            raise
        return context, page

    def warm_up(self) -> None:
        """Start the browser and open the page the next :meth:`page` hands out.

        A fresh context and page cost 0.2-1 s (the first in a browser the most);
        opened while something else runs (the notebook), that is off the print's path.
        """
        PdfPrinter.start(self)  # not self.start(): a ThreadedPrinter runs this in its worker
        if self._spare is None:
            self._spare = self._open_page()

    @contextlib.contextmanager
    def page(self, *, timeout_s: float = 60) -> Iterator[Page]:
        """A fresh page at the printed width with the network cut off; closed after use.

        Each page has a context of its own, used once (the one :meth:`warm_up`
        opened, if any).
        """
        spare, self._spare = self._spare, None
        context, page = spare if spare is not None else self._open_page()
        context.set_default_timeout(timeout_s * 1000)
        try:
            yield page
        finally:
            context.close()

    def print(self, html_path: Path, pdf: Path, *, timeout_s: float, title: str = "") -> Path:
        """Print ``html_path`` to ``pdf`` (A4) once every chart has drawn; return ``pdf``."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            with self.page(timeout_s=timeout_s) as page:
                open_for_print(page, Path(html_path), timeout_s=timeout_s)
                return print_loaded_page(
                    page, Path(pdf), title=title or page.title(), bookmarks=self.bookmarks
                )
        except PlaywrightError as exc:
            log.warning("Chromium failed to print %s: %s", html_path, exc)
            raise RenderError(
                f"Chromium failed to print {html_path}: {_first_line(exc)} (details in the log)"
            ) from exc


def _first_line(exc: BaseException) -> str:
    """The first line of a playwright error (its call log follows, ~20 lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ThreadedPrinter(PdfPrinter):
    """A :class:`PdfPrinter` whose browser lives in a worker thread of its own.

    playwright's sync API refuses to run in a thread with a running asyncio
    loop (a Jupyter kernel: the jupyter-scheduler recipe). :meth:`start`,
    :meth:`print` and :meth:`close` may be called from any thread; they run in
    the worker thread (``browser`` and ``page`` are not for other threads).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._launch: concurrent.futures.Future[None] | None = None

    def _submit(
        self, fn: Callable[..., _T], *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[_T]:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="qmskpi-pdf")
        return self._pool.submit(fn, *args, **kwargs)

    def _in_worker(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        return self._submit(fn, *args, **kwargs).result()

    def start_soon(self, *, warm_up: bool = False) -> None:
        """Launch Chromium in the background; :meth:`start` waits for it (and raises its error).

        ``warm_up`` also opens the page the next print uses (:meth:`PdfPrinter.warm_up`).
        """
        if self._launch is None:
            self._launch = self._submit(super().start)
            if warm_up:
                self._submit(self._warm_up_quietly)

    def open_page_soon(self) -> None:
        """Open the page the next print uses, in the background (after :meth:`start_soon`)."""
        if self._pool is not None:
            self._submit(self._warm_up_quietly)

    def _warm_up_quietly(self) -> None:
        if self._browser is None:
            return  # the launch failed: start() raises that
        try:
            super().warm_up()
        except Exception as exc:  # the print opens its own page then (and reports its error)
            log.debug("Chromium: could not open a page ahead: %s", exc)

    def start(self) -> None:
        launch, self._launch = self._launch, None
        if launch is not None:
            launch.result()  # a failed launch is raised once; the next start() tries afresh
            return  # not waiting for the page start_soon() may be opening
        self._in_worker(super().start)

    def print(self, html_path: Path, pdf: Path, *, timeout_s: float, title: str = "") -> Path:
        return self._in_worker(super().print, html_path, pdf, timeout_s=timeout_s, title=title)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        self._launch = None
        if pool is None:
            return
        try:
            pool.submit(super().close).result()
        finally:
            pool.shutdown(wait=True)


def print_pdf(html: Path, pdf: Path, *, timeout_s: int, printer: PdfPrinter | None = None) -> Path:
    """Print ``html`` to an A4 ``pdf`` with the system Chromium and return ``pdf``.

    Every request that is not ``file:`` is aborted; printing waits for the page
    to load and for every ``.plotly-graph-div`` to be drawn (``js-plotly-plot``),
    else raises :class:`ChartsNotDrawnError` naming the charts. The header shows
    the page title, the footer "Page n of N". Pass ``printer`` to reuse a
    running :class:`PdfPrinter`; otherwise one is started and always closed.
    """
    if printer is not None:
        return printer.print(Path(html), Path(pdf), timeout_s=timeout_s)
    with PdfPrinter() as own:
        return own.print(Path(html), Path(pdf), timeout_s=timeout_s)


# --------------------------------------------------------------------------- pack


@dataclasses.dataclass(frozen=True)
class RenderResult:
    """Where :func:`render_pack` put the pack, and how long each step took (seconds)."""

    notebook_path: Path
    html_path: Path
    pdf_path: Path | None
    timings: dict[str, float]


def packaged_notebook(name: str) -> Path:
    """Path of the notebook ``name`` shipped in ``qmskpi/notebooks``."""
    base = importlib.resources.files("qmskpi") / "notebooks"
    resource = base / f"{name}.ipynb"
    if not resource.is_file():
        available = sorted(
            p.name.removesuffix(".ipynb") for p in base.iterdir() if p.name.endswith(".ipynb")
        )
        from qmskpi.errors import did_you_mean

        raise RenderError(
            f"no packaged notebook {name!r}{did_you_mean(name, available)}; "
            f"available: {', '.join(available) or 'none'}"
        )
    return Path(str(resource))


CopyStatus = Literal["written", "unchanged", "replaced"]


def copy_notebooks(
    out: str | os.PathLike[str], *, force: bool = False
) -> list[tuple[CopyStatus, Path]]:
    """Copy the shipped notebooks into ``out`` for an analyst; say what happened to each.

    A notebook already there with other content (the analyst's edits) is kept:
    nothing is written and :class:`RenderError` lists them, unless ``force``.
    Their ``config_path`` defaults to ``$QMSKPI_CONFIG``, then ``./qmskpi.toml``.
    """
    base = importlib.resources.files("qmskpi") / "notebooks"
    shipped = sorted((r.name, r.read_bytes()) for r in base.iterdir() if r.name.endswith(".ipynb"))
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise RenderError(f"{target}: not a folder")
    plan: list[tuple[CopyStatus, Path, bytes]] = []
    for name, data in shipped:
        path = target / name
        if not path.exists():
            plan.append(("written", path, data))
        elif path.read_bytes() == data:
            plan.append(("unchanged", path, data))
        else:
            plan.append(("replaced", path, data))
    changed = [str(p) for status, p, _ in plan if status == "replaced"]
    if changed and not force:
        raise RenderError(
            f"not copied: {len(changed)} notebook(s) differ from the shipped ones "
            f"(your edits?): {', '.join(changed)}; use --force to replace them"
        )
    target.mkdir(parents=True, exist_ok=True)
    for status, path, data in plan:
        if status != "unchanged":
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
    return [(status, path) for status, path, _ in plan]


def render_pack(
    stage_dir: Path,
    *,
    notebook: str = "management_review",
    parameters: Mapping[str, object],
    title: str,
    pdf: bool = True,
    timeout_s: int = 600,
    browser: PdfPrinter | None = None,
    cwd: Path | None = None,
    kernel: StartedKernel | None = None,
    browser_timeout_s: float | None = None,
) -> RenderResult:
    """Execute, export and print the pack into ``stage_dir``.

    Writes ``management-review.ipynb`` (executed; plotly.js removed after the
    export by :func:`strip_plotlyjs`), ``management-review.html`` (plotly.js
    inlined once) and, with ``pdf=True``, ``management-review.pdf``. ``timeout_s`` bounds each
    notebook cell and the wait for charts. ``browser`` reuses a running
    :class:`PdfPrinter`. The kernel runs in ``cwd`` (default ``stage_dir``).
    ``timings`` has the seconds of ``execute``, ``html`` and ``pdf``.
    ``kernel`` is a kernel from :func:`start_kernel` to run the notebook in;
    it is shut down before this returns or raises. ``browser_timeout_s``
    (``[outputs] browser_timeout_s``; default ``timeout_s``) bounds starting
    Chromium and printing.
    """
    stage_dir = Path(stage_dir)
    print_timeout_s = browser_timeout_s if browser_timeout_s is not None else timeout_s
    timings: dict[str, float] = {}
    executed = stage_dir / f"{PACK_STEM}.ipynb"
    html_path = stage_dir / f"{PACK_STEM}.html"
    pdf_path = stage_dir / f"{PACK_STEM}.pdf"

    own: _BackgroundPrinter | None = None
    try:
        stage_dir.mkdir(parents=True, exist_ok=True)
        source = packaged_notebook(notebook)
        own = _BackgroundPrinter(print_timeout_s) if pdf and browser is None else None
        progress.emit("notebook")
        with _timed(timings, "execute"):
            execute_notebook(
                source,
                executed,
                parameters,
                cwd=Path(cwd) if cwd else stage_dir,
                timeout_s=timeout_s,
                kernel=kernel,
            )
        progress.emit("html")
        with _timed(timings, "html"):
            export_html(executed, html_path, title=title)
            strip_plotlyjs(executed, html_name=html_path.name)
        if not pdf:
            return RenderResult(executed, html_path, None, timings)
        progress.emit("pdf")
        with _timed(timings, "pdf"):
            printer = own if own is not None else browser
            assert printer is not None
            printer.print(html_path, pdf_path, timeout_s=print_timeout_s, title=title)
    finally:
        if kernel is not None:
            kernel.shutdown()
        if own is not None:
            own.close()
    return RenderResult(executed, html_path, pdf_path, timings)


class _BackgroundPrinter:
    """A :class:`PdfPrinter` in a thread of its own, launched at once.

    :func:`render_pack` without a ``browser`` starts Chromium while the kernel
    runs (~0.6 s off the critical path). playwright's sync objects never leave
    that thread.
    """

    def __init__(self, launch_timeout_s: float = 60) -> None:
        executable = require_chromium()  # fail before the kernel runs, not after
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="qmskpi-pdf")
        self._printer = PdfPrinter(executable=executable, launch_timeout_s=launch_timeout_s)
        self._started = self._pool.submit(self._printer.start)

    def print(self, html_path: Path, pdf: Path, *, timeout_s: float, title: str) -> Path:
        self._started.result()
        job = self._pool.submit(
            self._printer.print, html_path, pdf, timeout_s=timeout_s, title=title
        )
        return job.result()

    def close(self) -> None:
        try:
            self._pool.submit(self._printer.close).result()
        finally:
            self._pool.shutdown(wait=True)


@contextlib.contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = round(time.perf_counter() - start, 3)


# --------------------------------------------------------------------------- exports

_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula (``= + - @``, tab, CR)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Neutralise formula-looking strings (headers too); leave numbers alone."""
    text_types = (pl.String, pl.Categorical, pl.Enum)
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, text_types):
            s = col.cast(pl.String)
            exprs.append(
                pl.when(s.str.contains(r"^[=+\-@\t\r]"))
                .then(pl.lit("'") + s)
                .otherwise(s)
                .alias(neutralise_formula(name))
            )
        else:
            exprs.append(col.alias(neutralise_formula(name)))
    return frame.select(exprs)


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` as UTF-8 CSV (``\\n`` line ends, ISO dates) with formulas neutralised.

    Same frame, same bytes. Numeric columns stay numeric; a string cell starting
    with ``= + - @``, tab or CR gets a leading ``'``.
    """
    buffer = io.BytesIO()
    _safe_frame(frame).write_csv(
        buffer, include_header=True, line_terminator="\n", date_format="%Y-%m-%d"
    )
    _write_atomic(Path(path), buffer.getvalue())
    return Path(path)


_SHEET_NAME_BAD: Final = re.compile(r"[\[\]:*?/\\]")
_FIXED_TIME: Final = dt.datetime(2000, 1, 1)  # Excel times are naive
_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)


def _xlsx_value(value: object) -> object:
    if isinstance(value, str):
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        return neutralise_formula(ILLEGAL_CHARACTERS_RE.sub("", value))
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds() / 86400
    if isinstance(value, list | dict | tuple):
        return neutralise_formula(json.dumps(value, sort_keys=True, default=str))
    return value


def write_xlsx(sheets: Mapping[str, pl.DataFrame], path: Path) -> Path:
    """Write one worksheet per frame (header row bold and frozen) to ``path``.

    Cells hold plain values: numbers as numbers, dates as dates, text with
    formulas neutralised (leading ``'``) and characters Excel refuses removed;
    no formulas, no hyperlinks. Workbook times and zip entry times are fixed, so
    the same frames give the same bytes.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.excel import ExcelWriter

    if not sheets:
        raise RenderError(f"{path}: no sheets to write")
    wb = Workbook(write_only=True)
    wb.properties.creator = "qmskpi"
    wb.properties.created = _FIXED_TIME
    wb.properties.modified = _FIXED_TIME
    bold = Font(bold=True)
    for name, frame in sheets.items():
        if not name or len(name) > 31 or _SHEET_NAME_BAD.search(name):
            raise RenderError(
                f"{path}: invalid sheet name {name!r} (1-31 characters, none of []:*?/\\)"
            )
        ws = wb.create_sheet(title=name)
        ws.freeze_panes = "A2"
        for i, column in enumerate(frame.columns, start=1):
            width = max([len(column), *(len(str(v)) for v in frame[column].head(200))])
            ws.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 8), 60)
        header = []
        for column in frame.columns:
            cell = WriteOnlyCell(ws, value=_xlsx_value(column))
            cell.font = bold
            header.append(cell)
        ws.append(header)
        for row in frame.iter_rows():
            ws.append([_xlsx_value(v) for v in row])
    buffer = io.BytesIO()
    # ExcelWriter directly: Workbook.save() would stamp "modified" with the clock.
    ExcelWriter(wb, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True)).save()
    _write_atomic(Path(path), _fix_zip_times(buffer.getvalue()))
    return Path(path)


def _fix_zip_times(data: bytes) -> bytes:
    """Re-pack a zip with every entry stamped 1980-01-01, in the same order."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def _to_json(value: object) -> object:
    """Plain JSON data from dataclasses, frames, dates, paths, sets, enums, numpy scalars."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [_to_json(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, pl.DataFrame):
        return [_to_json(row) for row in value.to_dicts()]
    if isinstance(value, pl.Series):
        return [_to_json(v) for v in value.to_list()]
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, enum.Enum):
        return _to_json(value.value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _to_json(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return _to_json(tolist())
    raise RenderError(f"cannot write {type(value).__name__} as JSON: {value!r}")


def write_json(obj: object, path: Path) -> Path:
    """Write ``obj`` as deterministic JSON: sorted keys, UTF-8, 2-space indent, final newline.

    Dataclasses, polars frames, dates, paths, sets (sorted) and enums are
    converted; NaN and infinities become ``null`` (JSON has no NaN).
    """
    text = json.dumps(_to_json(obj), sort_keys=True, ensure_ascii=False, indent=2, allow_nan=False)
    _write_atomic(Path(path), (text + "\n").encode("utf-8"))
    return Path(path)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename (no half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
