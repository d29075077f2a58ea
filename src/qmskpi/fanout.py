"""Scopes rendered as Dask distributed tasks: ``qmskpi run --executor dask``.

The only module that imports Dask (the optional extra ``qmskpi[dask]``).
:class:`DaskExecutor` is a :class:`concurrent.futures.Executor`, so
:func:`qmskpi.pipeline.run_scheduled` hands it the same per-scope function it
gives the local process pool; everything a run guarantees (the lock per period
and scope, the atomic publish, the outcome of every scope) happens inside that
function, on the worker, against the shared reports folder. The scheduler only
decides where each scope runs.

Without ``scheduler`` a :class:`distributed.LocalCluster` of ``workers``
processes is started for the run and closed after it; with one, the run
connects to that cluster and leaves it running. Every worker needs the same
qmskpi environment and the same paths (``docs/scheduling.md``).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from qmskpi.errors import ConfigError

MISSING_EXTRA = (
    "executor 'dask' needs Dask: install the extra with pip install 'qmskpi[dask]' "
    "(on the machine that runs qmskpi and on every Dask worker)"
)

try:
    from distributed import Client, LocalCluster
except ImportError as _exc:  # the optional extra is not installed
    raise ConfigError(f"{MISSING_EXTRA} ({_exc})", key="run.executor") from _exc

P = ParamSpec("P")
T = TypeVar("T")

_ONE_SCOPE_AT_A_TIME = threading.Lock()


def _alone(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``fn`` with no other scope running in this worker process.

    A worker started with several threads would otherwise render two scopes in
    one process, and a failed render reaps the child processes started since it
    began: the other scope's kernel or browser among them.
    """
    with _ONE_SCOPE_AT_A_TIME:
        return fn(*args, **kwargs)


class DaskExecutor(cf.Executor):
    """A :class:`concurrent.futures.Executor` whose calls run as Dask distributed tasks.

    ``scheduler`` is a running scheduler's address (``tcp://host:8786``); None
    starts a local cluster of ``workers`` processes (one thread each) for this
    executor's lifetime. Tasks are impure (never deduplicated, never served from
    an earlier run) and one at a time per worker process. An unreachable
    scheduler raises :class:`~qmskpi.errors.ConfigError` naming it.
    """

    def __init__(
        self, *, scheduler: str | None = None, workers: int = 1, timeout_s: float = 30.0
    ) -> None:
        self.cluster: LocalCluster | None = None
        if scheduler is None:
            # memory_limit=0: no per-worker memory cap, as with the local process pool.
            self.cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address="127.0.0.1:0",
                memory_limit=0,
            )
            self.client = Client(self.cluster, timeout=timeout_s)
        else:
            try:
                self.client = Client(scheduler, timeout=timeout_s)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(
                    f"cannot reach the Dask scheduler at {scheduler!r}: {exc}",
                    key="run.scheduler",
                ) from exc
        self._executor = self.client.get_executor(pure=False)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> cf.Future[T]:
        future: cf.Future[T] = self._executor.submit(_alone, fn, *args, **kwargs)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Wait for (or cancel) the submitted tasks, then close the client and own cluster."""
        try:
            self._executor.shutdown(wait=wait and not cancel_futures)
        finally:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()

    def __exit__(self, exc_type: object, exc_val: object, exc_tb: object) -> None:
        # Interrupted (Ctrl-C) or failed: cancel the scopes not yet rendered, do not wait.
        self.shutdown(wait=exc_type is None, cancel_futures=exc_type is not None)

    @property
    def workers(self) -> int:
        """Workers connected to the scheduler now."""
        info: dict[str, Any] = dict(self.client.scheduler_info(n_workers=-1))
        return len(info.get("workers", {}))
