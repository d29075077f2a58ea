"""Render the pack: execute the notebook, export the HTML, print the PDF (:func:`render_pack`).

Also where the shipped notebooks are found (:func:`packaged_notebook`) and
copied for an analyst (:func:`copy_notebooks`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import importlib.resources
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

from qmskpi import progress
from qmskpi.errors import RenderError
from qmskpi.render.chromium import require_chromium
from qmskpi.render.html import PACK_STEM, export_html, strip_plotlyjs
from qmskpi.render.kernel import StartedKernel
from qmskpi.render.notebook import execute_notebook
from qmskpi.render.pdf import PdfPrinter


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
