"""Values and phrases as a reader sees them: units, digits, scopes, lists of words."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np

from qmskpi.config import WHOLE_SCOPE
from qmskpi.review.model import Scalar


def format_value(value: float | None, unit: str, *, extra: int = 0) -> str:
    """A KPI value as a reader sees it, by unit: ``share`` -> ``"93.4 %"``, ``ppm`` -> ``"1,250 ppm"``.

    ``extra`` adds that many digits (see :func:`format_pair`).
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    u = unit.lower()
    d = max(0, extra)
    if u in ("fraction", "proportion", "ratio") or u.startswith("share"):
        return f"{value * 100:.{1 + d}f} %"
    if u in ("percent", "%", "pct"):
        return f"{value:.{1 + d}f} %"
    if u == "ppm":
        return f"{value:,.{d}f} ppm"
    if u in ("count", "number", "n", "items"):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.{1 + d}f}"
    if u in ("days", "day", "d"):
        return f"{value:,.{1 + d}f} d"
    if u in ("nps", "nps points"):
        return f"{value:+.{d}f}"
    if u in ("score", "mean", "points"):
        return f"{value:,.{2 + d}f}"
    if abs(value) >= 100:
        return f"{value:,.{d}f}"
    return f"{value:,.{3 + d}g}"


def format_pair(value: float | None, target: float | None, unit: str) -> tuple[str, str]:
    """A value and its target, with just enough digits that different numbers never read the same.

    ``(1.52, 1.5, "percent")`` -> ``("1.52 %", "1.50 %")``, not ``("1.5 %", "1.5 %")``
    beside "not met".
    """
    for extra in range(7):
        a, b = format_value(value, unit, extra=extra), format_value(target, unit, extra=extra)
        if a != b or value is None or target is None or value == target:
            return a, b
    return a, b


def as_float(x: Any) -> float | None:
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def as_scalar(x: Any) -> Scalar:
    if x is None:
        return None
    if isinstance(x, bool | str | int):
        return x
    if isinstance(x, float | np.floating):
        return as_float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, date):
        return x.isoformat()
    return str(x)


def scope_phrase(scope: str) -> str:
    """``" at site North"`` for a site (``" at Site North"`` when named so), ``""`` for all."""
    if scope == WHOLE_SCOPE:
        return ""
    if scope.lower().startswith("site"):
        return f" at {scope}"
    return f" at site {scope}"


def slug(*parts: str) -> str:
    text = "-".join(p for p in parts if p)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def lower_first(title: str) -> str:
    """``"Supplier on-time delivery"`` -> ``"supplier on-time delivery"``; ``"CAPAs ..."`` stays."""
    if len(title) > 1 and title[0].isupper() and not title[1].isupper():
        return title[0].lower() + title[1:]
    return title


def join_words(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
