"""One pack: :func:`run_review` renders, records and publishes one period and scope under
its lock (load, skip check, prepare, stage the exports, compare, render, manifest, publish)."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from qmskpi import __version__, archive, progress, render, runtemp, sources
from qmskpi.config import Config, PdfPolicy
from qmskpi.periods import Period, parse_period
from qmskpi.pipeline.exports import PDF_NAME, wanted_outputs, write_exports
from qmskpi.pipeline.inputs import (
    as_config,
    closed_actions,
    input_records,
    load_inputs,
    push_inputs,
)
from qmskpi.pipeline.outcomes import (
    RunOutcome,
    Status,
    data_state,
    failed_outcome,
    outcome_for,
    pack_data_state,
)
from qmskpi.pipeline.prepared import Timings, prepare
from qmskpi.pipeline.processes import (
    Renderer,
    children,
    kernel_family,
    pdf_policy,
    reap,
    render_with_retry,
    why_no_pdf,
)
from qmskpi.pipeline.restate import compare, keep_minuted

log = logging.getLogger("qmskpi.pipeline")  # one logger for the package, as before its split


STAGES = (
    "start",
    "loaded",
    "prepared",
    "staged",
    "exported",
    "compared",
    "rendered",
    "manifest",
    "packed",
    "flipped",
    "published",
)
"""Steps a run reports to ``on_stage``, in order (``packed``/``flipped`` come from the archive).

With small inputs the exports are written while the notebook runs: ``exported`` then
comes after ``compared``, just before ``rendered``."""


StageHook = Callable[[str], None]
"""Called with each step name of :data:`STAGES` (progress, fault injection in tests)."""


def run_review(
    config: Config | str | os.PathLike[str],
    period: Period | str,
    scope: str = "all",
    *,
    as_of: date | None = None,
    force: bool = False,
    pdf: bool | PdfPolicy | None = None,
    browser: render.PdfPrinter | None = None,
    renderer: Renderer | None = None,
    on_stage: StageHook | None = None,
) -> RunOutcome:
    """Render, record and publish the pack of one period and scope.

    Prepare (load, validate, compute), stage ``kpis.csv``, ``kpis.xlsx``,
    ``review-inputs.json``, ``quarantine.csv``, ``validation.json`` (and
    ``restatement.csv``/``.json`` when published KPIs change), render the
    notebook, HTML and PDF, write ``manifest.json``, then publish atomically
    into ``<reports>/<period>/<scope>``. Skipped when the published pack has the
    same inputs digest and is intact, unless ``force``.

    Bad arguments (unknown scope, malformed period) raise
    :class:`~qmskpi.errors.ConfigError` / :class:`~qmskpi.errors.PeriodError`;
    any failure after that returns a ``failed`` outcome and leaves the
    published pack as it was. ``pdf`` overrides ``outputs.pdf`` (``True`` is
    ``"required"``, ``False`` is ``"off"``): without a browser, ``"required"``
    fails (nothing published), ``"optional"`` publishes the pack without its PDF
    and says why (``pdf_skipped``, the manifest's ``missing_outputs``); ``browser``
    reuses a running :class:`render.PdfPrinter`; ``renderer`` replaces
    :func:`render.render_pack`; ``on_stage`` is called with each of :data:`STAGES`.
    """
    cfg = as_config(config)
    p = parse_period(period)
    slug = archive.check_scope(cfg, scope)
    started = time.perf_counter()
    hook: StageHook = on_stage or (lambda _step: None)
    before = children()
    try:
        with runtemp.run_tmpdir():  # the kernel's and Chromium's temporary files
            try:
                arch = archive.Archive(cfg.reports_dir)
                with arch.pack_lock(p.label, slug):
                    arch.clean_stale()
                    outcome = _run_locked(
                        cfg,
                        p,
                        scope,
                        slug,
                        arch,
                        as_of=as_of if as_of is not None else cfg.review.as_of,
                        force=force,
                        pdf=pdf_policy(pdf, cfg),
                        browser=browser,
                        renderer=renderer or render.render_pack,
                        hook=hook,
                        before=before,
                    )
            except BaseException:
                reap(before)  # before the temporary folder goes
                raise
    except Exception as exc:
        return failed_outcome(p.label, scope, exc, cfg=cfg, seconds=time.perf_counter() - started)
    progress.emit("done", period=p.label, scope=scope, detail=outcome.status)
    try:  # on a skip too: a run killed just past publishing left the index behind
        arch.write_index(cfg.organisation, closed_actions=closed_actions(cfg))
    except OSError as exc:  # the pack is published; the next run rewrites the index
        log.warning("could not rewrite %s: %s", arch.root / archive.INDEX, exc)
    return replace(outcome, seconds=round(time.perf_counter() - started, 3))


SMALL_INPUTS_BYTES = 256 * 2**20
"""Frames smaller than this in memory (the sample: ~3 MB; a 10M-row month: several GB)
let :func:`run_review` start Chromium before validating and write the exports while the
notebook runs: faster, at the price of Chromium and the frames being resident together."""


def _small_inputs(loaded: sources.LoadedData) -> bool:
    return sum(d.frame.estimated_size() for d in loaded.values()) < SMALL_INPUTS_BYTES


# Long by design: one pack's life under its lock, stage by stage (load, skip check, prepare,
# stage exports, compare, render, manifest, publish) with a hook between stages that the
# kill tests use; split, the stage order and the cleanup on each path would be spread out.
def _run_locked(
    cfg: Config,
    p: Period,
    scope: str,
    slug: str,
    arch: archive.Archive,
    *,
    as_of: date | None,
    force: bool,
    pdf: PdfPolicy,
    browser: render.PdfPrinter | None,
    renderer: Renderer,
    hook: StageHook,
    before: set[int],
) -> RunOutcome:
    hook("start")
    progress.emit("load", period=p.label, scope=scope, rows=0)
    t = Timings()
    with t.stage("load"):
        loaded = load_inputs(cfg, p)
    with t.stage("pushdown"):
        pushed = push_inputs(cfg, p, as_of=as_of, loaded=loaded)
    hook("loaded")
    config_digest = cfg.digest()
    digest = archive.inputs_digest(
        input_records(cfg, loaded, pushed=pushed),
        config_digest=config_digest,
        version=__version__,
        period=p.label,
        scope=scope,
        as_of=as_of,
    )
    link = arch.link_path(p.label, slug)
    current = arch.current(p.label, slug)
    problems = current.verify() if current is not None else []
    if problems:
        log.warning(
            "%s/%s: published pack %s fails verification: %s",
            p.label,
            scope,
            current.id if current else "?",
            "; ".join(problems),
        )
    no_pdf = why_no_pdf(pdf, browser)
    if current is not None and not force and current.inputs_digest == digest:
        missing = [
            n
            for n in wanted_outputs(pdf=no_pdf is None or pdf == "required", xlsx=cfg.outputs.xlsx)
            if not current.file(n).is_file()
        ]
        if not problems and not missing:
            log.info("%s/%s is up to date (%s): skipped", p.label, scope, current.id)
            return outcome_for(current, link, "skipped", **pack_data_state(current))
        log.warning(
            "%s/%s: published pack %s has the same inputs but %s; rendering again",
            p.label,
            scope,
            current.id,
            "; ".join(problems) or "lacks " + ", ".join(missing),
        )

    if no_pdf is not None and pdf == "required":  # fail before anything is staged
        raise render.ChromiumNotFoundError(
            f'PDF required but {no_pdf}; or set [outputs] pdf = "optional" to publish without it'
        )
    if no_pdf is not None and pdf == "optional":
        log.debug("%s/%s: publishing without the PDF: %s", p.label, scope, no_pdf)

    # The default renderer gets a kernel started now: its process start and its
    # imports run on the other core while this one validates and computes.
    kernel = render.start_kernel() if renderer is render.render_pack else None
    # Chromium too, with the page it will print in. For small inputs at once, so that
    # it is up when the notebook ends; for large ones once the data is validated and
    # computed, so that it is not resident (~0.6 GB with its driver) while this
    # process holds its largest frames. A browser that cannot start fails the run
    # before the notebook runs (browser.start() below).
    small = _small_inputs(loaded)
    own_browser: render.ThreadedPrinter | None = None
    if browser is None and no_pdf is None and renderer is render.render_pack:
        own_browser = render.ThreadedPrinter(launch_timeout_s=cfg.outputs.browser_timeout_s)
        browser = own_browser
        if small:
            own_browser.start_soon(warm_up=True)
    exports: concurrent.futures.Future[None] | None = None
    try:
        prepared = prepare(cfg, p, scope, as_of=as_of, loaded=loaded, pushed=pushed)
        if own_browser is not None and not small:
            own_browser.start_soon()  # its page once the frames are let go (below)
        for name, seconds in prepared.timings.items():
            t.seconds[name] = seconds
        inputs = input_records(cfg, loaded, prepared.validation, pushed)
        hook("prepared")

        # The exports' pool is shut down (waited for) before the staging folder is
        # cleaned up or published.
        with (
            arch.stage(p.label, scope) as st,
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="qmskpi-exports") as pool,
        ):
            hook("staged")
            with t.stage("exports"):
                # What the notebook and the restatement read, first.
                review_json = prepared.review.to_json().encode("utf-8")
                st.file("review-inputs.json").write_bytes(review_json)
                render.write_csv(prepared.kpis, st.file("kpis.csv"))
                if small:  # the rest on the other core, while the notebook runs
                    exports = pool.submit(write_exports, prepared, st, review_json)
                    if renderer is render.render_pack:
                        pool.submit(render.warm_up_export)
                else:
                    write_exports(prepared, st, review_json)
            state = data_state(prepared.validation.to_dict())
            # Everything drawn from the rows is written (or, for small inputs, being
            # written): let the frames go, so that their memory is returned while the
            # notebook and Chromium run (the process tree's peak at 10M rows would
            # otherwise hold both).
            del prepared, loaded
            if own_browser is not None and not small:
                own_browser.open_page_soon()  # the frames are let go: off the print's path
            if exports is None:
                hook("exported")

            cmp = compare(st, current, inputs, config_digest=config_digest, problems=problems)
            cmp = keep_minuted(arch, current, cmp)
            hook("compared")

            parameters = {
                "period": p.label,
                "scope": scope,
                "config_path": str(cfg.path) if cfg.path is not None else "",
                "review_inputs": str(st.file("review-inputs.json")),
            }
            title = f"{cfg.organisation} — management review inputs {p.label} ({scope})"
            if browser is not None and no_pdf is None:
                # Started (or its launch awaited) now: a browser that cannot start fails
                # here, before the notebook. The caller's browser is the caller's: the
                # clean-up after a failure must not take it for a leftover.
                progress.emit("browser")
                browser.start()
                if own_browser is None:
                    before.update(children() - kernel_family(kernel))
            extra: dict[str, Any] = {}
            if renderer is render.render_pack:  # the real renderer takes these too
                extra = {"kernel": kernel, "browser_timeout_s": cfg.outputs.browser_timeout_s}
            with t.stage("render"):
                result = render_with_retry(
                    renderer,
                    st.path,
                    parameters=parameters,
                    title=title,
                    pdf=no_pdf is None,
                    timeout_s=cfg.outputs.notebook_timeout_s,
                    browser=browser,
                    **extra,
                )
            for step, seconds in result.timings.items():
                t.seconds[f"render.{step}"] = seconds
            if exports is not None:
                with t.stage("exports"):
                    exports.result()
                hook("exported")
            hook("rendered")

            status: Status = "restated" if cmp.supersede and cmp.restatement else "published"
            manifest = archive.build_manifest(
                st,
                organisation=cfg.organisation,
                inputs=inputs,
                inputs_digest=digest,
                config_digest=config_digest,
                config_path=str(cfg.path) if cfg.path is not None else None,
                # The notebook read the staged copy; the manifest names the pack's own file.
                parameters={**parameters, "review_inputs": "review-inputs.json"},
                timings=t.seconds,
                outcome=status,
                supersedes=cmp.supersedes,
                replaces=cmp.replaces,
                restatement=cmp.restatement,
                missing_outputs={PDF_NAME: no_pdf} if no_pdf is not None else None,
                as_of=as_of,
            )
            st.write_manifest(manifest)
            hook("manifest")
            progress.emit("publish")
            pack = arch.publish(st, keep_previous=cmp.supersede, hook=hook)
            hook("published")
        changed = int(cmp.restatement["changed_kpis"]) if cmp.supersede and cmp.restatement else 0
        skipped = no_pdf if pdf == "optional" else None
        for name in state["empty_datasets"]:
            log.warning("%s/%s: dataset %s has no usable rows", p.label, scope, name)
        return outcome_for(pack, link, status, restated_kpis=changed, pdf_skipped=skipped, **state)
    finally:
        if kernel is not None:
            kernel.shutdown()  # used by the render or not: never outlives the run
        if own_browser is not None:
            own_browser.close()
