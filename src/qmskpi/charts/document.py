"""Figures as offline HTML: plotly.js inlined once per :class:`Document`, ids pinned.

:func:`figure_html` writes a figure (or a spec qmskpi built itself) with
:func:`plotly.io.to_html`; the first figure of a document inlines the partial
bundle :data:`PLOTLYJS_BUNDLE` (:func:`bundle_script`), the first figure with a
trace type outside :data:`BUNDLE_TRACES` the full plotly.js. One of the three
parts that import plotly.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import plotly.graph_objects as go
import plotly.io as pio

from qmskpi.charts.base import div_id

_PLOTLY_CONFIG: Final = {"displayModeBar": False, "responsive": False, "displaylogo": False}


PLOTLYJS_BUNDLE: Final = (
    Path(__file__).parent.with_name("templates") / "plotly" / "plotly-finance.min.js"
)
"""The partial plotly.js the pack inlines (``templates/plotly/README.md``): 1.3 MB, not 4.8."""


BUNDLE_TRACES: Final = frozenset(
    {
        "bar",
        "candlestick",
        "funnel",
        "funnelarea",
        "histogram",
        "indicator",
        "ohlc",
        "pie",
        "scatter",
        "waterfall",
    }
)
"""The trace types :data:`PLOTLYJS_BUNDLE` draws; a figure with another gets the full plotly.js."""


_BUNDLE_VERSION = re.compile(r"plotly\.js \(finance - minified\) v([0-9][0-9A-Za-z.+-]*)")


@functools.cache
def bundle_script() -> str:
    """:data:`PLOTLYJS_BUNDLE` as one inline ``<script>``, headed ``plotly.js v<version>``.

    The header is the one the full plotly.js carries, so that ``render`` finds the
    library in a page or notebook output the same way whichever was inlined.
    """
    code = PLOTLYJS_BUNDLE.read_text(encoding="utf-8")
    found = _BUNDLE_VERSION.search(code[:400])
    version = found.group(1) if found else "?"
    traces = ", ".join(sorted(BUNDLE_TRACES))
    return (
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
        f"<script>/**\n* plotly.js v{version} (finance bundle: {traces})\n*/\n{code}</script>"
    )


@dataclass
class Document:
    """Per-document state: plotly.js is inlined by the first figure only; ids stay unique.

    The first figure inlines the partial bundle (:data:`PLOTLYJS_BUNDLE`); the first
    figure with a trace type outside :data:`BUNDLE_TRACES` inlines the full plotly.js
    (``full_plotlyjs``), which then draws it and every later figure.
    """

    plotlyjs_included: bool = False
    ids: set[str] = field(default_factory=set)
    full_plotlyjs: bool = False

    def unique_id(self, wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate in self.ids:
            n += 1
            candidate = f"{wanted}-{n}"
        self.ids.add(candidate)
        return candidate


def figure_html(fig: go.Figure | Mapping[str, Any], doc: Document, wanted_id: str) -> str:
    """The figure as an offline HTML fragment with a pinned id (plotly.js once per document).

    ``fig`` is a figure, or a spec qmskpi built itself (:func:`spc_spec`), written as it is.
    """
    validated = isinstance(fig, go.Figure)
    traces = fig.data if isinstance(fig, go.Figure) else fig.get("data", [])
    types = {str((t.type if validated else t.get("type")) or "scatter") for t in traces}
    needs_full = not doc.full_plotlyjs and not types <= BUNDLE_TRACES
    out: str = pio.to_html(
        fig if validated else dict(fig),
        full_html=False,
        include_plotlyjs=needs_full,
        include_mathjax=False,
        div_id=doc.unique_id(div_id(wanted_id)),
        config=_PLOTLY_CONFIG,
        validate=validated,
    )
    if needs_full:
        doc.full_plotlyjs = True
    elif not doc.plotlyjs_included:
        out = bundle_script() + out
    doc.plotlyjs_included = True
    return out
