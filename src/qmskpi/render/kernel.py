"""The notebook's kernel: the ``python3`` kernel over IPC sockets, started ahead of time.

:func:`start_kernel` starts (and warms up) the kernel :func:`execute_notebook`
then runs the notebook in, so that its start-up overlaps the caller's own work
(validation). jupyter_client is imported here and in :mod:`.notebook` only,
lazily.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Final

log = logging.getLogger("qmskpi.render")  # one logger for the package, as before its split

KERNEL_NAME: Final = "python3"


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
