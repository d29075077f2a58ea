"""One temporary folder per run, swept by the next run when its owner died.

A run's kernel (its connection file and socket folder) and its Chromium
(``playwright_chromiumdev_profile-*``, ``playwright-artifacts-*``,
``org.chromium.Chromium.*``) write their temporary files under ``$TMPDIR``.
:func:`run_tmpdir` points ``$TMPDIR`` (and :mod:`tempfile`) at a folder of its
own, ``<tmp>/qmskpi-run-XXXXXXXX``, for as long as the run lasts, and removes
it at the end. A run killed with SIGKILL (or a whole process group killed by
systemd or a timeout) cannot clean up: the next run removes every
``qmskpi-run-*`` folder whose owner is gone. The owner holds an ``flock`` on
the folder's ``.owner`` file, which the kernel releases when the process dies,
however it dies; a live run's folder is never touched.

Only the standard library here: imported by ``pipeline`` before anything heavy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, ParamSpec, TypeVar

from qmskpi.errors import DiskFullError

log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")

PREFIX: Final = "qmskpi-run-"
OWNER: Final = ".owner"
ENV: Final = "QMSKPI_RUN_TMP"
"""Set to the run's folder while it lasts: a nested run (or a worker process) reuses it."""
_YOUNG_S: Final = 60.0
"""A folder without its ``.owner`` file younger than this may be one being created."""


def lock_held(lock: Path) -> bool | None:
    """True when a live process holds an ``flock`` on ``lock``; None when the file is missing.

    The kernel releases a process's locks when it dies, even by SIGKILL.
    """
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)


def _owned(folder: Path) -> bool:
    """True when a live process holds ``folder``'s owner lock (or may be creating it)."""
    held = lock_held(folder / OWNER)
    if held is not None:
        return held
    try:
        return time.time() - folder.stat().st_mtime < _YOUNG_S
    except OSError:
        return False


def sweep(root: Path) -> list[Path]:
    """Remove the ``qmskpi-run-*`` folders in ``root`` whose owner process is gone; return them."""
    removed = []
    for folder in sorted(root.glob(f"{PREFIX}*")):
        try:
            if folder.is_symlink() or not folder.is_dir() or _owned(folder):
                continue
            shutil.rmtree(folder)
        except OSError as exc:
            log.debug("could not remove %s: %s", folder, exc)
            continue
        removed.append(folder)
    if removed:
        log.info("removed %d temporary folder(s) of killed runs from %s", len(removed), root)
    return removed


def _active() -> Path | None:
    """The folder of the run this process belongs to (this one's, or a parent's), if any."""
    active = os.environ.get(ENV, "")
    if active and os.environ.get("TMPDIR") == active and Path(active).is_dir():
        return Path(active)
    return None


@dataclass
class _Owned:
    """This process's run folder: its owner lock, what it replaced, how many runs use it."""

    path: Path
    fd: int
    saved: dict[str, str | None]
    saved_tempdir: str | None
    users: int = 1


_OWNED: _Owned | None = None
_OWNED_LOCK: Final = threading.Lock()
"""Runs in threads of one process (a Dask worker with several threads runs several scopes)
share the process's folder, as ``$TMPDIR`` is the process's: the last to end removes it."""


@contextlib.contextmanager
def run_tmpdir(root: Path | None = None) -> Iterator[Path]:
    """A private temporary folder for one run; ``$TMPDIR`` and :mod:`tempfile` point at it.

    ``root`` defaults to :func:`tempfile.gettempdir`. Runs nest: inside a run
    (or in a worker process it started) the run's folder is reused, and runs in
    threads of one process share it until the last ends. The environment is
    changed for the whole process while a run lasts (child processes, Chromium
    and the kernel, inherit it) and restored afterwards. Raises
    :class:`~qmskpi.errors.DiskFullError` naming ``root`` when it is full.
    """
    global _OWNED
    owned: _Owned | None
    with _OWNED_LOCK:
        if _OWNED is not None:
            _OWNED.users += 1
            owned = _OWNED
        else:
            active = _active()
            owned = None if active is not None else _own(root)
            _OWNED = owned
    if owned is None:
        assert active is not None
        yield active  # a parent process's run: its folder, its to remove
        return
    try:
        yield owned.path
    finally:
        with _OWNED_LOCK:
            owned.users -= 1
            if not owned.users:
                _OWNED = None
                _release(owned)


def _own(root: Path | None) -> _Owned:
    """A new run folder, its owner lock taken, ``$TMPDIR`` and :mod:`tempfile` pointed at it.

    The lock is taken on a file of another name, then renamed ``.owner``: a run sweeping at
    that moment sees a young folder without its owner file (left alone), never an owner
    file nobody holds yet (which it would take for a killed run's and remove).
    """
    base = Path(root) if root is not None else Path(tempfile.gettempdir())
    sweep(base)
    try:
        path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
        fd = os.open(path / f"{OWNER}.new", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(base, exc) from exc
        raise
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    os.replace(path / f"{OWNER}.new", path / OWNER)
    owned = _Owned(path, fd, {k: os.environ.get(k) for k in ("TMPDIR", ENV)}, tempfile.tempdir)
    os.environ["TMPDIR"] = os.environ[ENV] = str(path)
    tempfile.tempdir = str(path)
    return owned


def _release(owned: _Owned) -> None:
    for key, value in owned.saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    tempfile.tempdir = owned.saved_tempdir
    shutil.rmtree(owned.path, ignore_errors=True)
    os.close(owned.fd)


def in_run_tmpdir(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` inside :func:`run_tmpdir` (a decorator)."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with run_tmpdir():
            return fn(*args, **kwargs)

    return wrapper


__all__ = ["ENV", "OWNER", "PREFIX", "in_run_tmpdir", "lock_held", "run_tmpdir", "sweep"]
