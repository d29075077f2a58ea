"""The scheduled run (``qmskpi run``): every scope, the last complete period and the ones
missed (:func:`plan_periods`), one after another, in worker processes or as Dask tasks."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import date

from qmskpi import archive, progress, render, runtemp
from qmskpi.config import EXECUTORS, Config, ExecutorName
from qmskpi.errors import ConfigError, PeriodError, QmsKpiError
from qmskpi.periods import Period, last_complete, parse_period
from qmskpi.pipeline.inputs import RUN_PUSHED, as_config, closed_actions
from qmskpi.pipeline.notify import notify_error, notify_failure
from qmskpi.pipeline.outcomes import RunOutcome
from qmskpi.pipeline.processes import Renderer
from qmskpi.pipeline.run import run_review

log = logging.getLogger("qmskpi.pipeline")  # one logger for the package, as before its split


def plan_periods(
    config: Config,
    *,
    as_of: date | None = None,
    since: Period | str | None = None,
    scopes: Sequence[str] | None = None,
) -> dict[str, list[Period]]:
    """The periods each scope needs, oldest first (every configured scope, or ``scopes``).

    The last complete period (``review.granularity``) as of ``as_of`` (default:
    ``review.as_of``, else today); with ``since``, every period from ``since`` to
    that one. Without it, a scope that has published packs also catches up the
    periods between its newest published pack and the last complete period
    (runs the timer missed). Raises :class:`~qmskpi.errors.PeriodError` when
    ``since`` is not of the configured granularity or is after the last complete period.
    """
    today = as_of or config.review.as_of or date.today()
    gran = config.review.granularity
    last = last_complete(today, gran)
    first: Period | None = None
    if since is not None:
        first = parse_period(since)
        if first.granularity != gran:
            raise PeriodError(
                f"--since {first.label} is a {first.granularity}; this config reviews by {gran}"
            )
        if first > last:
            raise PeriodError(
                f"--since {first.label} is after the last complete {gran} ({last.label}) "
                f"as of {today.isoformat()}"
            )
    arch = archive.Archive(config.reports_dir)
    newest: dict[str, Period] = {}
    if first is None:
        for pack in arch.published():
            try:
                pp = parse_period(pack.period)
            except PeriodError:
                continue
            if pp.granularity == gran and (pack.scope not in newest or pp > newest[pack.scope]):
                newest[pack.scope] = pp
    plan: dict[str, list[Period]] = {}
    for scope in config.scopes if scopes is None else dict.fromkeys(scopes):
        archive.check_scope(config, scope)
        start = first
        if start is None:
            seen = newest.get(scope)
            start = seen.next() if seen is not None and seen < last else last
        periods = [start]
        while periods[-1] < last:
            periods.append(periods[-1].next())
        plan[scope] = periods
    return plan


def _run_one(
    config: Config,
    period: str,
    scope: str,
    as_of: date | None,
    force: bool,
    renderer: Renderer | None,
) -> RunOutcome:
    """One pack in a worker process (module level so a process pool can pickle it)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    try:
        return run_review(config, period, scope, as_of=as_of, force=force, renderer=renderer)
    except QmsKpiError as exc:
        return RunOutcome(period, scope, "failed", error=str(exc), error_type=type(exc).__name__)


def _scope_pool(
    cfg: Config, *, jobs: int | None, executor: ExecutorName | None, scheduler: str | None
) -> Executor | None:
    """Where the scopes of a period run: None (one after another, here), local worker
    processes, or Dask tasks. Arguments left None come from ``[run]`` of the config."""
    executor = executor or cfg.run.executor
    jobs = jobs if jobs is not None else cfg.run.jobs
    scheduler = scheduler or (cfg.run.scheduler if executor == "dask" else None)
    if executor not in EXECUTORS:
        raise ConfigError(
            f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}", key="executor"
        )
    if jobs < 1:
        raise ConfigError(f"jobs must be 1 or more, got {jobs}", key="jobs")
    if executor == "dask":
        if scheduler is not None and jobs > 1:
            raise ConfigError(
                "jobs sets the workers of a local Dask cluster; with a scheduler, "
                "its workers decide how many scopes run at once",
                key="jobs",
            )
        from qmskpi import fanout  # the optional extra: imported only when asked for

        return fanout.DaskExecutor(scheduler=scheduler, workers=jobs)
    if scheduler is not None:
        raise ConfigError("a scheduler address needs executor 'dask'", key="scheduler")
    if jobs == 1:
        return None
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))


# Long by design: plan, then one of two dispatch loops (here, one after another, with a printer
# thread; or a pool of processes / Dask tasks), then index and notification: the two loops
# share the outcome and progress bookkeeping that a split would pass around.
@runtemp.in_run_tmpdir
def run_scheduled(
    config: Config | str | os.PathLike[str],
    *,
    as_of: date | None = None,
    since: Period | str | None = None,
    force: bool = False,
    jobs: int | None = None,
    notify: str | Sequence[str] | None = None,
    renderer: Renderer | None = None,
    executor: ExecutorName | None = None,
    scheduler: str | None = None,
    scopes: Sequence[str] | None = None,
) -> list[RunOutcome]:
    """What ``qmskpi run`` does: every scope, last complete period, catch-up; one outcome each.

    Periods come from :func:`plan_periods` and are rendered oldest first; the
    scopes of one period run in ``jobs`` worker processes, or as Dask tasks with
    ``executor="dask"`` (on the cluster at ``scheduler``, else on a local cluster
    of ``jobs`` workers; :mod:`qmskpi.fanout`). ``jobs``, ``executor`` and
    ``scheduler`` default to ``[run]`` of the config. ``scopes`` limits the run
    to those scopes (default: every configured scope). A pack already
    published with the same inputs is skipped unless ``force``. When any run
    fails and ``notify`` is set, the failure summary is sent (see
    :func:`notify_failure`). Configuration or usage errors found before any
    rendering (an unreachable scheduler, Dask not installed) raise
    :class:`~qmskpi.errors.QmsKpiError`, after sending :func:`error_summary` to ``notify``.
    """
    cfg: Config | None = None
    try:  # a broken config or command line must not fail silently under a scheduler
        cfg = as_config(config)
        as_of = as_of or cfg.review.as_of
        plan = plan_periods(cfg, as_of=as_of, since=since, scopes=scopes)
        pool = _scope_pool(cfg, jobs=jobs, executor=executor, scheduler=scheduler)
    except QmsKpiError as exc:
        if notify:
            notify_error(notify, exc, organisation=cfg.organisation if cfg is not None else "")
        raise
    by_period: dict[Period, list[str]] = {}
    for scope, periods in plan.items():
        for pp in periods:
            by_period.setdefault(pp, []).append(scope)
    arch = archive.Archive(cfg.reports_dir)
    arch.clean_stale()
    outcomes: list[RunOutcome] = []
    total = sum(len(names) for names in by_period.values())
    if pool is None:
        # Printed from a thread of its own: the caller may be a Jupyter kernel
        # (jupyter-scheduler) whose running asyncio loop playwright's sync API refuses.
        printer = (
            render.ThreadedPrinter(launch_timeout_s=cfg.outputs.browser_timeout_s)
            if renderer is None
            else None
        )
        shared = RUN_PUSHED.set({})  # the scopes of a period share the databases' answers
        try:
            for pp in sorted(by_period):
                for scope in by_period[pp]:
                    progress.emit(
                        "pack", period=pp.label, scope=scope, index=len(outcomes) + 1, total=total
                    )
                    o = run_review(
                        cfg,
                        pp,
                        scope,
                        as_of=as_of,
                        force=force,
                        browser=printer,
                        renderer=renderer,
                    )
                    if o.status == "failed" and printer is not None:
                        with contextlib.suppress(Exception):  # it may have crashed
                            printer.close()  # started afresh by the next pack
                    outcomes.append(o)
        finally:
            RUN_PUSHED.reset(shared)
            if printer is not None:
                with contextlib.suppress(Exception):
                    printer.close()
    else:
        with pool:
            for pp in sorted(by_period):
                futures = [
                    (scope, pool.submit(_run_one, cfg, pp.label, scope, as_of, force, renderer))
                    for scope in by_period[pp]
                ]
                for scope, future in futures:
                    progress.emit(
                        "pack", period=pp.label, scope=scope, index=len(outcomes) + 1, total=total
                    )
                    try:
                        outcomes.append(future.result())
                    except Exception as exc:  # a worker died (killed, out of memory)
                        log.error("%s/%s: worker failed: %s", pp.label, scope, exc)
                        outcomes.append(
                            RunOutcome(
                                pp.label,
                                scope,
                                "failed",
                                error=f"{type(exc).__name__}: {exc}",
                                error_type=type(exc).__name__,
                            )
                        )
    try:
        arch.write_index(cfg.organisation, closed_actions=closed_actions(cfg))
    except OSError as exc:
        log.warning("could not rewrite %s: %s", arch.root / archive.INDEX, exc)
    if notify and any(o.status == "failed" for o in outcomes):
        notify_failure(notify, outcomes, organisation=cfg.organisation)
    return outcomes
