"""Short notebook displays shared by the analyst-facing objects (``__repr__``, ``_repr_html_``).

A repr names what an object is about (period, scope, datasets, rows, sound or
failed counts) in a few lines, never its arrays or frames: Jupyter keeps the
text beside the HTML in every output. Every value goes through
:func:`html.escape` (names, sites and paths can come from a source or a config).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

MAX_NAMES = 4
"""How many names a repr lists before "and N more"."""
MAX_TEXT = 60
"""Longest single name or path a repr shows (cut with an ellipsis)."""


def clip(text: object, limit: int = MAX_TEXT) -> str:
    """``text`` as a string of at most ``limit`` characters (an ellipsis marks a cut)."""
    s = str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def tail(path: object, limit: int = MAX_TEXT) -> str:
    """A path cut from the left (the file name matters most): ``"…/data/qmskpi.toml"``."""
    s = str(path)
    return s if len(s) <= limit else "…" + s[-(limit - 1) :]


def names(items: Iterable[object], limit: int = MAX_NAMES) -> str:
    """``"a, b, c and 5 more"``; ``"none"`` for nothing."""
    shown = [clip(x, 30) for x in items]
    if not shown:
        return "none"
    more = len(shown) - limit
    head = ", ".join(shown[:limit])
    return f"{head} and {more} more" if more > 0 else head


def count(n: int, noun: str) -> str:
    """``"1 dataset"``, ``"12,000 rows"``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def html_summary(
    title: str,
    lines: Sequence[tuple[str, object]],
    *,
    header: Sequence[str] = (),
    rows: Sequence[Sequence[object]] = (),
) -> str:
    """A titled key/value list, then an optional small table; every value escaped."""
    e = html.escape
    items = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{e(str(k))}</th>"
        f"<td style='text-align:left'>{e(str(v))}</td></tr>"
        for k, v in lines
    )
    out = f"<div class='qk-repr'><strong>{e(title)}</strong><table>{items}</table>"
    if header:
        head = "".join(f"<th>{e(str(h))}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows
        )
        out += f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return out + "</div>"
