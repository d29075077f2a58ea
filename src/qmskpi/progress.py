"""Stage events a run reports while it works, for a progress display.

``sources``, ``render`` and ``pipeline`` call :func:`emit` at each step (a
no-op when nobody listens); a display subscribes with :func:`listening`. The
terminal display lives in ``cli`` (rich, on a terminal only: under cron,
systemd or Airflow the output is unchanged); :func:`notebook_bar` shows the
same events in Jupyter. Only the standard library is imported here.

Each event says the stage (:data:`STAGES`), and when known the period and
scope, the pack's place in a scheduled run (``index`` of ``total``) and the
rows read so far; :class:`Tracker` folds them into what a display shows.
"""

from __future__ import annotations

import contextlib
import html
import importlib
import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

log = logging.getLogger(__name__)

Stage = Literal[
    "pack", "load", "validate", "compute", "browser", "notebook", "html", "pdf", "publish", "done"
]
STAGES: Final[tuple[Stage, ...]] = (
    "pack",
    "load",
    "validate",
    "compute",
    "browser",
    "notebook",
    "html",
    "pdf",
    "publish",
    "done",
)
"""In the order a pack goes through them. ``pack``: a pack starts (``index`` of ``total`` in a
scheduled run); ``load``: one dataset read (``detail``), ``rows`` read so far; ``browser``:
waiting for Chromium to start; ``done``: the pack's status in ``detail``."""


@dataclass(frozen=True)
class Event:
    """One step of a run (and, folded by :class:`Tracker`, where the run is)."""

    stage: Stage | Literal[""]
    period: str = ""
    scope: str = ""
    index: int = 0
    """This pack's place in the run (1-based); 0 outside a scheduled run."""
    total: int = 0
    """Packs in the run; 0 outside a scheduled run."""
    rows: int | None = None
    """Rows read so far for this pack (``load``)."""
    detail: str = ""

    def describe(self) -> str:
        """One line: ``2026-10 all · pack 2 of 4 · load complaints · 12,345 rows``."""
        parts = [f"{self.period} {self.scope}".strip()]
        if self.total:
            parts.append(f"pack {self.index} of {self.total}")
        parts.append(f"{self.stage} {self.detail}".strip())
        if self.rows is not None:
            parts.append(f"{self.rows:,} rows read")
        return " · ".join(p for p in parts if p)


Listener = Callable[[Event], object]

_listeners: list[Listener] = []
_lock = threading.Lock()


def emit(stage: Stage, **fields: Any) -> None:
    """Tell every listener that ``stage`` started (``fields``: those of :class:`Event`).

    A listener that raises is logged at debug level and never stops the run.
    """
    if not _listeners:
        return
    event = Event(stage, **fields)
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            log.debug("progress listener %r failed", listener, exc_info=True)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call ``listener`` with every event emitted (from any thread) while the block runs."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


Snapshot = Event
"""What a display shows: the latest stage, where the run is, the rows read (see :class:`Tracker`)."""


class Tracker:
    """Folds events into a snapshot (a new pack resets the rows; known fields stay)."""

    def __init__(self) -> None:
        self.snapshot = Event("")
        self.started = time.monotonic()

    def update(self, event: Event) -> Event:
        s = self.snapshot
        new_pack = event.stage == "pack" or (
            bool(event.period) and (event.period, event.scope) != (s.period, s.scope)
        )
        rows = event.rows if event.rows is not None else None if new_pack else s.rows
        self.snapshot = replace(
            s,
            stage=event.stage,
            period=event.period or s.period,
            scope=event.scope or s.scope,
            index=event.index or s.index,
            total=event.total or s.total,
            rows=rows,
            detail=event.detail,
        )
        return self.snapshot

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


def _format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


@contextlib.contextmanager
def notebook_bar() -> Iterator[Tracker]:
    """Show the run's progress in a Jupyter notebook while the block runs::

        with progress.notebook_bar():
            outcomes = pipeline.run_scheduled("qmskpi.toml")

    A tqdm bar (``tqdm.auto``) when tqdm and ipywidgets are installed; else a
    line of HTML updated in place (``IPython.display``); else nothing shown.
    The bar counts packs in a scheduled run; its text is the stage and the rows read.
    """
    tracker = Tracker()
    show = _tqdm_display(tracker) or _html_display(tracker)
    if show is None:
        with listening(tracker.update):
            yield tracker
        return
    update, close = show
    try:
        with listening(lambda e: update(tracker.update(e))):
            yield tracker
    finally:
        close()


_Display = tuple[Callable[[Snapshot], None], Callable[[], None]]


def _tqdm_display(tracker: Tracker) -> _Display | None:
    if importlib.util.find_spec("ipywidgets") is None:  # tqdm's notebook bar needs it
        return None
    try:
        tqdm: Any = importlib.import_module("tqdm.auto").tqdm
    except ImportError:
        return None
    bar = tqdm(total=None, unit="pack", desc="qmskpi")
    lock = threading.Lock()

    def update(s: Snapshot) -> None:
        with lock:
            if s.total and bar.total != s.total:
                bar.total = s.total
            if s.stage == "done" and s.total:
                bar.update(1)
            bar.set_postfix_str(s.describe(), refresh=True)

    return update, bar.close


def _html_display(tracker: Tracker) -> _Display | None:
    try:
        ipython: Any = importlib.import_module("IPython")
        shown: Any = importlib.import_module("IPython.display")
    except ImportError:
        return None
    if ipython.get_ipython() is None:
        return None
    HTML, display = shown.HTML, shown.display  # noqa: N806

    def page(s: Snapshot, *, final: bool = False) -> Any:
        done = s.index - (0 if s.stage == "done" else 1) if s.total else 0
        share = f"{100 * done / s.total:.0f}%" if s.total else ""
        bar = (
            f'<progress value="{done}" max="{s.total}" style="width:12em"></progress> {share} '
            if s.total
            else ""
        )
        text = html.escape(s.describe() or "starting")
        state = "finished" if final else "running"
        elapsed = _format_elapsed(tracker.elapsed_s)
        return HTML(
            f'<div class="qmskpi-progress" data-state="{state}" style="font-family:monospace">'
            f"qmskpi {bar}{text} · {elapsed}</div>"
        )

    handle = display(page(tracker.snapshot), display_id=True)

    def update(s: Snapshot) -> None:
        handle.update(page(s))

    def close() -> None:
        handle.update(page(tracker.snapshot, final=True))

    return update, close


__all__ = [
    "STAGES",
    "Event",
    "Listener",
    "Snapshot",
    "Stage",
    "Tracker",
    "emit",
    "listening",
    "notebook_bar",
]
