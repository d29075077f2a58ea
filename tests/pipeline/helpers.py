"""What the pipeline tests share: the sample copied, the fake renderers, the pack's files.

Most tests drive :func:`pipeline.run_review` with the real load / validate /
compute stages on a copy of ``sample_data/`` and a small fake renderer (the
render is not what they test). The renderers are at module level, so worker
processes (jobs=2, Dask) and the SIGKILL subprocesses can import them
(``pipeline.helpers`` with ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import errno
import hashlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import psutil

from qmskpi import archive, render

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
EXAMPLES = ROOT / "docs" / "examples"
PERIOD = "2026-10"
AS_OF = date(2026, 11, 5)
PACK_FILES = {
    "minutes.xlsx",
    "kpis.csv",
    "kpis.xlsx",
    "review-inputs.json",
    "quarantine.csv",
    "validation.json",
    "management-review.ipynb",
    "management-review.html",
    "management-review.pdf",
}
REGISTER_FILES = {
    "registers.xlsx",
    "register-review-actions.csv",
    "register-critical-complaints.csv",
    "register-complaint-ageing.csv",
    "register-objective-attainment.csv",
    "register-defect-pareto.csv",
    "register-overdue-capa.csv",
    "register-overdue-findings.csv",
    "register-overdue-actions.csv",
    "register-site-signals.csv",
    "register-findings-by-type.csv",
    "register-supplier-scorecard.csv",
    "register-failed-rules.csv",
    "register-exceptions.csv",
    "register-opportunities.csv",
    "register-complaints-by-category.csv",
}
"""Every row of each bounded table of the sample pack (the pack shows the first rows)."""
PACK_FILES |= REGISTER_FILES
DETERMINISTIC_FILES = (
    "kpis.csv",
    "review-inputs.json",
    "quarantine.csv",
    "validation.json",
    "kpis.xlsx",
    *sorted(REGISTER_FILES),
)
"""Pack files that are byte-identical for identical inputs."""
VOLATILE = {"created_at", "pack_id", "timings", "replaces", "previous_manifest"}
"""Manifest keys that may differ between two runs of the same inputs."""


# Module level, so worker processes (jobs=2) and the SIGKILL subprocesses can use them.
def fake_render(
    stage_dir: Path,
    /,
    *,
    parameters: Mapping[str, object],
    title: str,
    pdf: bool,
    timeout_s: int,
    browser: object,
) -> render.RenderResult:
    """Writes a deterministic notebook, HTML and PDF; logs what it saw next to the config."""
    stage_dir = Path(stage_dir)
    review_inputs = Path(str(parameters["review_inputs"]))
    seen = {
        "period": parameters["period"],
        "scope": parameters["scope"],
        "review_inputs_in_stage": review_inputs.parent == stage_dir and review_inputs.is_file(),
        "restatement_staged": (stage_dir / "restatement.json").is_file(),
        "pid": os.getpid(),
    }
    log = Path(str(parameters["config_path"])).parent / "renders.jsonl"
    with log.open("a") as fh:
        fh.write(json.dumps(seen, sort_keys=True) + "\n")
    digest = hashlib.sha256(review_inputs.read_bytes()).hexdigest()
    nb = stage_dir / "management-review.ipynb"
    nb.write_text(json.dumps({"period": parameters["period"], "scope": parameters["scope"]}))
    page = stage_dir / "management-review.html"
    page.write_text(f"<html><title>{html.escape(title)}</title><p>{digest}</p></html>")
    pdf_path = None
    if pdf:
        pdf_path = stage_dir / "management-review.pdf"
        pdf_path.write_bytes(b"%PDF-1.7 fake " + digest.encode())
    return render.RenderResult(nb, page, pdf_path, {"execute": 0.0, "html": 0.0, "pdf": 0.0})


def failing_cell_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """A notebook cell raises after the HTML was half written."""
    (Path(stage_dir) / "management-review.html").write_text("<html><p>half")
    raise render.NotebookCellError(
        "management_review.ipynb: cell 5 raised ZeroDivisionError: division by zero",
        notebook=Path(stage_dir) / "management-review.ipynb",
        cell_index=5,
        ename="ZeroDivisionError",
        evalue="division by zero",
    )


def enospc_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """The disk fills up while the PDF is written."""
    pdf = Path(stage_dir) / "management-review.pdf"
    with pdf.open("wb") as fh:
        fh.write(b"%PDF-1.7 half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(pdf))


def flaky_kernel_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """The first kernel fails to start (a socket clash); the retry works."""
    marker = Path(stage_dir) / "kernel-attempt"
    if not marker.exists():
        marker.write_text("1")
        raise render.NotebookCellError(
            "management_review.ipynb: cell None failed: RuntimeError: "
            "Kernel died before replying to kernel_info",
            notebook=Path(stage_dir) / "management-review.ipynb",
            cell_index=None,
            ename="RuntimeError",
            evalue="Kernel died before replying to kernel_info",
        )
    marker.unlink()
    return fake_render(stage_dir, **kwargs)


LEAKED: list[subprocess.Popen[bytes]] = []


def leaking_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """Starts a process (as a kernel or browser would) and fails without stopping it."""
    proc = subprocess.Popen(["sleep", "300"])
    LEAKED.append(proc)
    (Path(stage_dir).parent.parent / "leaked.pid").write_text(str(proc.pid))
    raise render.RenderError("Chromium crashed while printing")


def killing_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """SIGKILLed in the middle of writing the HTML."""
    with (Path(stage_dir) / "management-review.html").open("w") as fh:
        fh.write("<html><p>half")
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def crashing_chromium_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """The real render with a Chromium that dies as it starts (after the notebook ran)."""
    printer = render.PdfPrinter(executable=Path(os.environ["QMSKPI_TEST_CHROMIUM"]))
    try:
        return render.render_pack(Path(stage_dir), **{**kwargs, "browser": printer})
    finally:
        printer.close()


def printing_then_failing_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """Uses the caller's browser, then fails."""
    printer = kwargs["browser"]
    assert printer is not None
    assert printer.browser.is_connected()
    raise render.RenderError("failed after printing")


def broken_notebook_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """The real render, with review inputs that make the notebook's first data cell raise."""
    params = dict(kwargs.pop("parameters"))
    params["review_inputs"] = str(Path(stage_dir) / "no-such-review-inputs.json")
    return render.render_pack(Path(stage_dir), parameters=params, **kwargs)


def copy_sample(
    dest: Path, *, sites: tuple[str, ...] | None = None, organisation: str = ""
) -> Path:
    """A private copy of sample_data/ (optionally fewer sites / another name); returns the config."""
    shutil.copytree(SAMPLE, dest, ignore=shutil.ignore_patterns("reports"))
    cfg = dest / "qmskpi.toml"
    text = cfg.read_text()
    if sites is not None:
        text = re.sub(r"(?m)^sites = .*$", f"sites = {json.dumps(list(sites))}", text)
    if organisation:
        text = re.sub(r"(?m)^name = .*$", f"name = {json.dumps(organisation)}", text)
    cfg.write_text(text)
    return cfg


def reports(cfg_path: Path) -> Path:
    return cfg_path.parent / "reports"


def visible_tree(root: Path) -> dict[str, str]:
    """What a reader sees: every non-hidden path (links followed) -> sha256."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                p = Path(dirpath, name)
                out[str(p.relative_to(root))] = archive.sha256_file(p)
    return out


def renders(cfg_path: Path) -> list[dict[str, Any]]:
    log = cfg_path.parent / "renders.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def stray_children() -> list[psutil.Process]:
    """Descendants of this test process still running.

    Zombies are excluded, and so is multiprocessing's resource tracker, which a
    process pool starts once and which lives as long as this process does.
    """
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            if "multiprocessing.resource_tracker" in " ".join(p.cmdline()):
                continue
            out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


def without_volatile(manifest: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in manifest.items() if k not in VOLATILE}
    if "outputs" in out:  # the minutes template carries the pack id, so it differs per run
        out["outputs"] = {k: v for k, v in out["outputs"].items() if k != "minutes.xlsx"}
    return out


def assert_pack_intact(pack: archive.Pack | None) -> None:
    assert pack is not None
    assert pack.verify() == []


def kernel_children() -> list[psutil.Process]:
    out = []
    for p in stray_children():
        try:
            if "ipykernel" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out
