"""The kernel and the browser a run starts: whether a PDF can be printed, one retry of a
kernel that never started, and the clean-up of processes a failed render left behind."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import psutil

from qmskpi import render
from qmskpi.config import Config, PdfPolicy

log = logging.getLogger("qmskpi.pipeline")  # one logger for the package, as before its split


_PDF_OFF = 'not asked for (outputs.pdf = "off" or --no-pdf)'


def pdf_policy(pdf: bool | PdfPolicy | None, cfg: Config) -> PdfPolicy:
    """What the caller asked (``True``: required, ``False``: off), else ``[outputs] pdf``."""
    if pdf is None:
        return cfg.outputs.pdf
    if isinstance(pdf, bool):
        return "required" if pdf else "off"
    return pdf


def why_no_pdf(policy: PdfPolicy, browser: render.PdfPrinter | None) -> str | None:
    """Why the pack cannot have its PDF (no browser, or none asked for); None: print it."""
    if policy == "off":
        return _PDF_OFF
    if browser is not None and browser.executable is not None:
        return None
    return None if render.find_chromium() is not None else render.chromium_missing()


class Renderer(Protocol):
    """What :func:`run_review` calls to render a staged pack (``render.render_pack`` by default)."""

    def __call__(
        self,
        stage_dir: Path,
        /,
        *,
        parameters: Mapping[str, object],
        title: str,
        pdf: bool,
        timeout_s: int,
        browser: render.PdfPrinter | None,
    ) -> render.RenderResult: ...


_KERNEL_START_FAILURES = (
    "address already in use",
    "eaddrinuse",
    "kernel didn't respond",
    "kernel died before replying to kernel_info",
    "zmqerror",
)


def _is_kernel_start_failure(exc: BaseException) -> bool:
    """A kernel that never started (a port or socket clash): worth one retry.

    A failure inside a cell (``cell_index`` set) is the notebook's fault and is
    not retried.
    """
    if getattr(exc, "cell_index", None) is not None:
        return False
    seen: BaseException | None = exc
    while seen is not None:
        detail = (getattr(seen, "ename", ""), getattr(seen, "evalue", ""))
        text = f"{type(seen).__name__}: {seen} {detail}".lower()
        if any(marker in text for marker in _KERNEL_START_FAILURES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def render_with_retry(renderer: Renderer, stage_dir: Path, **kwargs: Any) -> render.RenderResult:
    try:
        return renderer(stage_dir, **kwargs)
    except Exception as exc:
        if not _is_kernel_start_failure(exc):
            raise
        log.warning("kernel failed to start (%s); retrying once", exc)
        return renderer(stage_dir, **kwargs)


def children() -> set[int]:
    """Pids of this process's descendants."""
    return {p.pid for p in psutil.Process().children(recursive=True)}


def kernel_family(kernel: render.StartedKernel | None) -> set[int]:
    """The pre-started kernel's pid and its descendants' (never mistaken for the caller's)."""
    pid = kernel.pid if kernel is not None else None
    if pid is None:
        return set()
    try:
        return {pid} | {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return {pid}


def reap(before: set[int], *, grace_s: float = 3.0) -> list[int]:
    """Terminate descendants started since ``before`` (a kernel or browser left by a failure)."""
    stray = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    for proc in stray:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(stray, timeout=grace_s)  # also reaps this process's children
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace_s)
    if stray:
        log.warning("terminated %d process(es) left behind by a failed render", len(stray))
    return sorted(p.pid for p in stray)
