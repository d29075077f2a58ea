"""Print the HTML to an A4 PDF with the system Chromium through playwright.

:func:`print_pdf` prints after every chart has drawn, with every non-``file:``
request aborted. :class:`PdfPrinter` keeps one browser open for many packs;
:class:`ThreadedPrinter` keeps it in a worker thread of its own. playwright is
imported here and nowhere else in the package (lazily).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import html
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from qmskpi.errors import RenderError
from qmskpi.render.chromium import (
    CHROMIUM_ENV,
    ChromiumNotFoundError,
    install_command,
    require_chromium,
)
from qmskpi.render.files import _write_atomic

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, PdfMargins, Playwright

_T = TypeVar("_T")


log = logging.getLogger("qmskpi.render")  # one logger for the package, as before its split

CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

# A4 in CSS pixels (96 px per inch) and the printed margins. The page is laid
# out at the printable width so that charts are drawn at the size they print.
_MM_PX: Final = 96 / 25.4
A4_WIDTH_MM: Final = 210.0
A4_HEIGHT_MM: Final = 297.0
MARGIN_MM: Final = {"top": 16.0, "right": 14.0, "bottom": 16.0, "left": 14.0}
PRINT_WIDTH_PX: Final = int((A4_WIDTH_MM - MARGIN_MM["left"] - MARGIN_MM["right"]) * _MM_PX)
PRINT_HEIGHT_PX: Final = int((A4_HEIGHT_MM - MARGIN_MM["top"] - MARGIN_MM["bottom"]) * _MM_PX)


class ChartsNotDrawnError(RenderError):
    """Some ``.plotly-graph-div`` never became a drawn ``.js-plotly-plot`` in time."""

    def __init__(self, message: str, *, chart_ids: tuple[str, ...], page_errors: tuple[str, ...]):
        self.chart_ids = chart_ids


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
