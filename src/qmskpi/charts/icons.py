"""The NHS Making Data Count variation and assurance icons as inline SVG, and status badges.

Every icon carries its meaning as text too (a title, or the words beside it). No plotly here.
"""

from __future__ import annotations

from typing import Final

from qmskpi.charts.base import COLOURS, _html

_VARIATION_TEXT: Final = {
    "common_cause": "Common cause",
    "improvement_high": "Improvement (high)",
    "improvement_low": "Improvement (low)",
    "concern_high": "Concern (high)",
    "concern_low": "Concern (low)",
    "neutral_high": "Special cause (high)",
    "neutral_low": "Special cause (low)",
}


_ASSURANCE_TEXT: Final = {
    "consistent_pass": "Target met consistently",
    "consistent_fail": "Target missed consistently",
    "inconsistent": "Target met some months",
}


def _variation_colour(icon: str) -> str:
    for key in ("improvement", "concern", "neutral"):
        if icon.startswith(key):
            return COLOURS[key]
    return COLOURS["common"]


_NO_ICON: Final = {
    "run_chart": "run chart: too few months for limits",
    "rare_events": "too rare to chart",
}


def variation_icon(icon: str | None, *, size: int = 30) -> str:
    """The NHS Making Data Count variation icon as inline SVG (with a text title)."""
    if not icon:
        return ""
    if icon in _NO_ICON:  # no process limits: no MDC icon, say why instead
        return _html("no_icon", text=_NO_ICON[icon])
    colour = _variation_colour(icon)
    label = _VARIATION_TEXT.get(icon, icon)
    high = icon.endswith("_high")
    low = icon.endswith("_low")
    ys = (
        (22, 19, 23, 20, 21)
        if not (high or low)
        else ((24, 23, 21, 17, 12) if high else (12, 13, 16, 20, 25))
    )
    dots = [
        (8 + i * 4, y, colour if (high or low) and i >= 2 else COLOURS["common"])
        for i, y in enumerate(ys)
    ]
    return _html(
        "variation_icon",
        size=size,
        label=label,
        colour=colour,
        common=COLOURS["common"],
        points=" ".join(f"{8 + i * 4},{y}" for i, y in enumerate(ys)),
        dots=dots,
        letter=(12 if high else 29, "H" if high else "L") if high or low else None,
    )


def assurance_icon(icon: str | None, *, size: int = 30) -> str:
    """The NHS Making Data Count assurance icon as inline SVG (P / F / ?)."""
    if not icon:
        return ""
    colour = {
        "consistent_pass": COLOURS["improvement"],
        "consistent_fail": COLOURS["concern"],
    }.get(icon, COLOURS["common"])
    letter = {"consistent_pass": "P", "consistent_fail": "F"}.get(icon, "?")
    label = _ASSURANCE_TEXT.get(icon, icon)
    return _html(
        "assurance_icon",
        size=size,
        label=label,
        colour=colour,
        target=COLOURS["target"],
        letter=letter,
    )


def _status_badge(status: str | None) -> str:
    if not status:
        return ""
    label = {
        "evidenced": "Evidenced",
        "missing": "Missing",
        "stale": "Stale",
        "failed": "Failed validation",
    }.get(status, status)
    return _html("status_badge", status=status, label=label)
