"""The ground every part stands on: the house colours, pinned element ids, fragments.

:data:`COLOURS` (NHS Making Data Count blue/orange/purple and greys), :func:`div_id`
(a pinned id sanitised to ``[a-z0-9-]``), :class:`Fragment` (HTML a notebook
displays), :func:`running_label` (the provisional clause map's page label) and
``_html``, which renders one macro of ``templates/html/pack.html.j2`` with every
value escaped. No plotly here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from qmskpi.review import (
    Meta,
)
from qmskpi.templating import macro

COLOURS: Final = {
    "improvement": "#0072B2",  # MDC blue
    "concern": "#E69F00",  # MDC orange
    "concern_text": "#9A5B00",  # orange dark enough for text on white
    "neutral": "#CC79A7",  # MDC purple
    "common": "#7F7F7F",
    "line": "#4D4D4D",
    "limit": "#8C8C8C",
    "target": "#D55E00",
    "grid": "#E6E6E6",
    "text": "#1A1A1A",
    "muted": "#595959",
    "bar": "#56B4E9",
}


def running_label(meta: Meta) -> str:
    """The label printed on every page of a pack whose clause map is provisional, else ``""``."""
    if not meta.clause_map_provisional:
        return ""
    return f"PROVISIONAL clause map: {meta.clause_map_title}"


def _provisional_label(meta: Meta) -> str:
    """The cover's notice; ``data-qk-running-label`` is what ``render`` prints on every page."""
    label = running_label(meta)
    if not label:
        return ""
    return _html("provisional", label=label, edition=meta.clause_map_edition)


def _html(name: str, /, **context: Any) -> str:
    """The pack piece ``name`` (a macro of ``templates/html/pack.html.j2``), values escaped."""
    return macro("pack.html.j2", name, **context)


_ID_BAD = re.compile(r"[^a-z0-9-]+")


def div_id(*parts: str) -> str:
    """A pinned element id from section, KPI and scope, sanitised to ``[a-z0-9-]``."""
    text = "-".join(str(p) for p in parts if p)
    return _ID_BAD.sub("-", text.lower()).strip("-") or "chart"


@dataclass(frozen=True, repr=False)
class Fragment:
    """A piece of the pack as HTML; notebooks display it (``_repr_html_``).

    The text repr is short on purpose: Jupyter stores it beside the HTML in every
    output, and the HTML can hold all of plotly.js.
    """

    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"<qmskpi pack fragment: {len(self.html):,} characters of HTML>"

    def __str__(self) -> str:
        return self.html


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, int | float):
        f = float(x)
        return f if math.isfinite(f) else None
    return None
