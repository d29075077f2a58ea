"""Render the management-review pack: execute the notebook, export HTML, print the PDF.

Three steps, each usable alone, chained by :func:`render_pack`:

1. :func:`execute_notebook` runs a notebook with papermill on the venv's
   ``python3`` kernel, over local IPC sockets (no TCP port is opened), with a
   timeout per cell. A failing cell raises :class:`NotebookCellError` naming the
   cell; the executed notebook, error cell included, is kept for diagnosis.
   :func:`start_kernel` starts (and warms up) that kernel ahead of time, so
   that its start-up overlaps the caller's own work (validation).
2. :func:`export_html` turns the executed notebook into one self-contained HTML
   file with the ``qmskpi`` nbconvert template (no code, no prompts, nothing
   fetched from the network, plotly.js inlined once by the first chart, print CSS
   and ``pack.css`` inlined). Identical notebooks give identical bytes.
3. :func:`print_pdf` prints that HTML to A4 with the system Chromium through
   playwright, after every chart has drawn, with every non-``file:`` request
   aborted. :class:`PdfPrinter` keeps one browser open for many packs;
   :func:`find_chromium` says which browser that is (the order
   ``scripts/system-deps`` uses too).

The exports that sit beside the pack (``kpis.csv``, ``kpis.xlsx``,
``review-inputs.json``, ...) are written by :func:`write_csv`, :func:`write_xlsx`
and :func:`write_json`: deterministic bytes, formula injection neutralised, no
hyperlinks.

The parts, in the order they import each other (import-linter enforces it):

- :mod:`~qmskpi.render.pack`: :func:`render_pack`, the shipped notebooks;
- :mod:`~qmskpi.render.notebook` (:func:`execute_notebook`: papermill, nbclient),
  :mod:`~qmskpi.render.html` (:func:`export_html`: nbconvert) and
  :mod:`~qmskpi.render.pdf` (:class:`PdfPrinter`, :func:`print_pdf`: playwright);
- :mod:`~qmskpi.render.kernel` (:func:`start_kernel`) and
  :mod:`~qmskpi.render.chromium` (:func:`find_chromium`: which browser, how to get one);
- :mod:`~qmskpi.render.files`: reading notebooks, writing files atomically, the
  CSV/XLSX/JSON exports (openpyxl).

papermill, nbconvert, nbclient, playwright and openpyxl are imported in one part
each and nowhere else in the package (and lazily, so ``import qmskpi.render``
stays cheap).
"""

from __future__ import annotations

from qmskpi.errors import RenderError as RenderError
from qmskpi.render.chromium import (
    CHROMIUM_ENV,
    CHROMIUM_NAMES,
    ChromiumNotFoundError,
    chromium_missing,
    find_chromium,
    install_command,
    require_chromium,
)
from qmskpi.render.files import neutralise_formula, write_csv, write_json, write_xlsx
from qmskpi.render.html import (
    NBCONVERT_TEMPLATES as NBCONVERT_TEMPLATES,
)
from qmskpi.render.html import (
    PACK_CSS as PACK_CSS,
)
from qmskpi.render.html import (
    PACK_STEM as PACK_STEM,
)
from qmskpi.render.html import (
    PLOTLYJS_REMOVED as PLOTLYJS_REMOVED,
)
from qmskpi.render.html import (
    TEMPLATE_DIR as TEMPLATE_DIR,
)
from qmskpi.render.html import (
    TEMPLATE_NAME as TEMPLATE_NAME,
)
from qmskpi.render.html import (
    export_html,
    warm_up_export,
)
from qmskpi.render.html import (
    strip_plotlyjs as strip_plotlyjs,
)
from qmskpi.render.kernel import KERNEL_NAME as KERNEL_NAME
from qmskpi.render.kernel import StartedKernel, start_kernel
from qmskpi.render.notebook import NotebookCellError, execute_notebook
from qmskpi.render.pack import (
    CopyStatus as CopyStatus,
)
from qmskpi.render.pack import (
    RenderResult,
    packaged_notebook,
    render_pack,
)
from qmskpi.render.pack import (
    copy_notebooks as copy_notebooks,
)
from qmskpi.render.pdf import (
    A4_HEIGHT_MM as A4_HEIGHT_MM,
)
from qmskpi.render.pdf import (
    A4_WIDTH_MM as A4_WIDTH_MM,
)
from qmskpi.render.pdf import (
    CHROMIUM_ARGS,
    ChartsNotDrawnError,
    PdfPrinter,
    ThreadedPrinter,
    block_network,
    open_for_print,
    print_loaded_page,
    print_pdf,
)
from qmskpi.render.pdf import (
    MARGIN_MM as MARGIN_MM,
)
from qmskpi.render.pdf import (
    PRINT_HEIGHT_PX as PRINT_HEIGHT_PX,
)
from qmskpi.render.pdf import (
    PRINT_WIDTH_PX as PRINT_WIDTH_PX,
)

__all__ = [
    "CHROMIUM_ARGS",
    "CHROMIUM_ENV",
    "CHROMIUM_NAMES",
    "ChartsNotDrawnError",
    "ChromiumNotFoundError",
    "NotebookCellError",
    "PdfPrinter",
    "RenderResult",
    "StartedKernel",
    "ThreadedPrinter",
    "block_network",
    "chromium_missing",
    "execute_notebook",
    "export_html",
    "find_chromium",
    "install_command",
    "neutralise_formula",
    "open_for_print",
    "packaged_notebook",
    "print_loaded_page",
    "print_pdf",
    "render_pack",
    "require_chromium",
    "start_kernel",
    "warm_up_export",
    "write_csv",
    "write_json",
    "write_xlsx",
]
