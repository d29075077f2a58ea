"""Present the review model: one house plotly style, SPC charts, tiles, tables, safe HTML.

Everything here reads a :class:`~qmskpi.review.ReviewModel` and returns HTML
fragments (objects with ``_repr_html_``) for the notebooks, or plotly figures.
Nothing is computed that a reader needs: values, limits and signal
explanations sit in visible text beside each chart, never only behind hover.

Safety (DESIGN §8): every data-derived string reaches HTML through
:func:`html.escape` (also the text put *into* plotly figures, since plotly.js
reads a subset of HTML tags in titles, labels and hover text); analyst markdown
goes through :func:`safe_markdown` (:mod:`qmskpi.markdown_html`: markdown-it-py with
raw HTML off, every character escaped, links shown as text).

Offline (STACK.md): figures are emitted with :func:`plotly.io.to_html`,
``full_html=False``, ``include_mathjax=False``, a pinned ``div_id``, and
plotly.js inlined by the first figure of a :class:`Document` only: the official
partial bundle of the trace types the pack draws (:data:`PLOTLYJS_BUNDLE`,
``templates/plotly/``), which Chromium evaluates ~1.5 s faster than the full one.

Notebook API::

    pack = charts.Pack(model)
    display(pack.cover()); display(pack.summary()); display(pack.section("c1")); ...
"""

from __future__ import annotations

from qmskpi.charts.base import COLOURS, Fragment, div_id, running_label
from qmskpi.charts.document import (
    BUNDLE_TRACES,
    PLOTLYJS_BUNDLE,
    Document,
    bundle_script,
    figure_html,
)
from qmskpi.charts.figures import FONT as FONT
from qmskpi.charts.figures import FULL_WIDTH as FULL_WIDTH
from qmskpi.charts.figures import HALF_WIDTH as HALF_WIDTH
from qmskpi.charts.figures import HOUSE_TEMPLATE, objectives_figure, pareto_figure, scorecard_figure
from qmskpi.charts.figures import OKABE_ITO as OKABE_ITO
from qmskpi.charts.figures import figure_spec as figure_spec
from qmskpi.charts.icons import assurance_icon, variation_icon
from qmskpi.charts.pack import Pack, show
from qmskpi.charts.pieces import SITE_VALUE_COLUMNS as SITE_VALUE_COLUMNS
from qmskpi.charts.pieces import tiles_html as tiles_html
from qmskpi.charts.spc_chart import control_chart, spc_figure, spc_spec
from qmskpi.charts.spc_chart import trend_data_table as trend_data_table
from qmskpi.charts.tables import LIST_MAX as LIST_MAX
from qmskpi.charts.tables import format_cell as format_cell
from qmskpi.charts.tables import frame_html, table_html
from qmskpi.markdown_html import safe_markdown
from qmskpi.templating import esc

__all__ = [
    "BUNDLE_TRACES",
    "COLOURS",
    "HOUSE_TEMPLATE",
    "PLOTLYJS_BUNDLE",
    "Document",
    "Fragment",
    "Pack",
    "assurance_icon",
    "bundle_script",
    "control_chart",
    "div_id",
    "esc",
    "figure_html",
    "frame_html",
    "objectives_figure",
    "pareto_figure",
    "running_label",
    "safe_markdown",
    "scorecard_figure",
    "show",
    "spc_figure",
    "spc_spec",
    "table_html",
    "variation_icon",
]
