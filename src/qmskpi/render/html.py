"""Export the executed notebook to one self-contained, offline HTML file.

:func:`export_html` uses the ``qmskpi`` nbconvert template (no code, no
prompts, nothing fetched from the network, plotly.js inlined once by the first
chart, print CSS and ``pack.css`` inlined). Identical notebooks give identical
bytes. nbconvert is imported here and nowhere else in the package (lazily).
"""

from __future__ import annotations

import functools
import hashlib
import html
import logging
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from qmskpi.errors import RenderError
from qmskpi.render.files import _read_notebook, _write_atomic

log = logging.getLogger("qmskpi.render")  # one logger for the package, as before its split

TEMPLATE_DIR: Final = Path(__file__).parent.parent / "templates"
NBCONVERT_TEMPLATES: Final = TEMPLATE_DIR / "nbconvert"
TEMPLATE_NAME: Final = "qmskpi"
PACK_CSS: Final = TEMPLATE_DIR / "pack.css"
PACK_STEM: Final = "management-review"

_PAPERMILL_TAGS: Final = ("injected-parameters", "papermill-error-cell-tag")
_REMOVE_CELL_TAGS: Final = frozenset({"remove-cell", "remove_cell"})
_REMOVE_OUTPUT_TAGS: Final = frozenset({"remove-output", "remove_output"})


def _stable_id(text: object) -> str:
    return hashlib.sha256(str(text).encode("utf-8")).hexdigest()[:12]


def _normalise_notebook(nb: Any, *, title: str) -> list[str]:
    """Make an executed notebook render deterministically; return its stderr texts.

    papermill gives its own cells random ids and stamps times and kernel details
    into the metadata; none of that belongs in the pack.
    """
    stderr: list[str] = []
    keep = {"kernelspec", "language_info"}
    for key in list(nb.metadata):
        if key not in keep:
            del nb.metadata[key]
    nb.metadata["title"] = title
    nb.metadata.get("language_info", {}).pop("version", None)
    for index, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        for tag in _PAPERMILL_TAGS:
            if tag in tags:
                cell["id"] = f"{tag}-{index}"
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                stderr.append(str(out.get("text", "")))
    return stderr


_PLOTLYJS = re.compile(r"<script[^>]*>\s*/\*\*\s*\*\s*plotly\.js v[\s\S]*?</script>")


def _sub_plotlyjs(nb: Any, replace: Callable[[re.Match[str]], str]) -> None:
    """Replace each inlined plotly.js bundle in the notebook's HTML outputs by ``replace(match)``."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            text = data.get("text/html")
            if not text:
                continue
            joined = "".join(text) if isinstance(text, list) else str(text)
            if "plotly.js v" in joined:
                data["text/html"] = _PLOTLYJS.sub(replace, joined)


def _lift_plotlyjs(nb: Any) -> dict[str, str]:
    """Replace each inlined plotly.js bundle by a short token; return token -> script.

    nbconvert parses and re-serialises the whole page with BeautifulSoup, which
    costs about a second per megabyte; plotly.js is ~4.8 MB and goes through
    untouched, so it is set aside and put back afterwards.
    """
    lifted: dict[str, str] = {}

    def _swap(match: re.Match[str]) -> str:
        token = f"<!--qmskpi-plotlyjs-{len(lifted)}-{uuid.uuid4().hex}-->"
        lifted[token] = match.group(0)
        return token

    _sub_plotlyjs(nb, _swap)
    return lifted


PLOTLYJS_REMOVED: Final = (
    '<script type="text/plain" data-qmskpi="plotly.js removed">plotly.js v{version} ran here; '
    "it is inlined once in {html} and removed from this record to keep one copy.</script>"
)
"""What replaces each inlined plotly.js bundle in the archived executed notebook."""

_PLOTLYJS_VERSION = re.compile(r"plotly\.js v([0-9][0-9A-Za-z.+-]*)")


def strip_plotlyjs(executed: Path, *, html_name: str) -> int:
    """Replace every inlined plotly.js bundle in ``executed`` by a one-line note; return how many.

    Run after :func:`export_html`: the HTML keeps the only copy (~4.8 MB), the
    executed notebook keeps every output as it ran, the library excepted, and
    says so where it was. Same notebook, same bytes.
    """
    import nbformat

    nb = _read_notebook(executed)
    removed = 0

    def _note(match: re.Match[str]) -> str:
        nonlocal removed
        removed += 1
        version = _PLOTLYJS_VERSION.search(match.group(0))
        return PLOTLYJS_REMOVED.format(
            version=version.group(1) if version else "?", html=html.escape(html_name)
        )

    _sub_plotlyjs(nb, _note)
    if removed:
        writes: Any = nbformat.writes
        _write_atomic(executed, (writes(nb) + "\n").encode("utf-8"))
    return removed


@functools.cache
def _html_exporter() -> Any:
    """The pack's HTMLExporter (one per process: compiling the template takes ~0.4 s).

    It skips the BeautifulSoup pass of nbconvert's ``HTMLExporter``, which
    re-parses and re-serialises the whole page to add ``alt`` text to images
    without one and ``tabindex`` to output areas: ~0.7 s for a pack, for
    nothing a printed pack uses (its charts and icons are inline SVG).
    """
    import nbconvert
    import nbconvert.exporters.templateexporter
    import nbconvert.filters.highlight
    import nbconvert.filters.widgetsdatatypefilter
    import nbconvert.preprocessors

    # nbconvert is only partly typed: handle it as Any.
    html_exporter: Any = nbconvert.HTMLExporter
    template_exporter: Any = nbconvert.exporters.templateexporter.TemplateExporter
    highlight2html: Any = nbconvert.filters.highlight.Highlight2HTML
    widgets_filter: Any = nbconvert.filters.widgetsdatatypefilter.WidgetsDataTypeFilter
    tag_remove: Any = nbconvert.preprocessors.TagRemovePreprocessor

    class PackExporter(html_exporter):  # type: ignore[misc]
        def from_notebook_node(
            self, nb: Any, resources: dict[str, Any] | None = None, **kw: Any
        ) -> tuple[str, dict[str, Any]]:
            # HTMLExporter.from_notebook_node (nbconvert 7.17) without the soup pass.
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            highlight_code = self.filters.get(
                "highlight_code", highlight2html(pygments_lexer=lexer, parent=self)
            )
            resources = self._init_resources(resources)
            filter_data_type = widgets_filter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources
            )
            self.register_filter("highlight_code", highlight_code)
            self.register_filter("filter_data_type", filter_data_type)
            html_text, out = template_exporter.from_notebook_node(self, nb, resources, **kw)
            return str(html_text), out

    exporter = PackExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(NBCONVERT_TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        theme="light",
        language_code="en",
        embed_images=False,
        sanitize_html=False,
    )
    exporter.register_filter("qmskpi_stable_id", _stable_id)
    exporter.register_preprocessor(
        tag_remove(
            remove_cell_tags=set(_REMOVE_CELL_TAGS),
            remove_all_outputs_tags=set(_REMOVE_OUTPUT_TAGS),
        ),
        enabled=True,
    )
    return exporter


def warm_up_export() -> None:
    """Import nbconvert and compile the pack's template now (~0.4 s once per process).

    For a thread with nothing else to do while the notebook runs: :func:`export_html`
    then starts at once.
    """
    import nbformat

    new_notebook: Any = nbformat.v4.new_notebook
    resources = {"metadata": {"name": PACK_STEM, "path": "."}, "qmskpi": {"pack_css": ""}}
    with _EXPORTER_LOCK:
        _html_exporter().from_notebook_node(new_notebook(), resources=resources)


_EXPORTER_LOCK: Final = threading.Lock()
"""The exporter is one per process and not thread-safe (it registers filters per call)."""


def export_html(executed: Path, output: Path, *, title: str) -> Path:
    """Export the executed notebook to one offline HTML file and return ``output``.

    No code and no prompts; nothing is fetched from the network (the stock
    template's require.js, MathJax, mermaid and widget loaders are removed);
    print CSS and ``templates/pack.css`` are inlined; ``<title>`` is ``title``,
    escaped. Cells tagged ``remove-cell`` are dropped, outputs of cells tagged
    ``remove-output`` too; stderr output (warnings) is logged, not shown.
    """
    executed, output = Path(executed), Path(output)
    try:
        nb = _read_notebook(executed)
    except (OSError, ValueError) as exc:
        raise RenderError(f"cannot read executed notebook {executed}: {exc}") from exc
    for text in _normalise_notebook(nb, title=title):
        log.warning("%s wrote to stderr: %s", executed.name, text.strip()[:2000])
    lifted = _lift_plotlyjs(nb)
    pack_css = PACK_CSS.read_text(encoding="utf-8") if PACK_CSS.is_file() else ""
    resources = {
        "metadata": {"name": PACK_STEM, "path": str(executed.parent)},
        "qmskpi": {"pack_css": pack_css},
    }
    with _EXPORTER_LOCK:
        body, _ = _html_exporter().from_notebook_node(nb, resources=resources)
    for token, script in lifted.items():
        if body.count(token) != 1:
            raise RenderError(f"plotly.js placeholder lost while exporting {executed}")
        body = body.replace(token, script)
    _write_atomic(output, body.encode("utf-8"))
    return output
