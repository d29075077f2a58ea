"""SPC signals in words: the sentences beside each chart and the current signals.

Deterministic sentences for the signals of one :class:`Trend`
(:func:`signal_sentences`, :func:`explain`), and the current signals of a
class across the scope and its sites (:func:`current_signals`), which the
narrative, the exceptions and the opportunities are written from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qmskpi.review.context import Context
from qmskpi.review.formatting import format_value, join_words, scope_phrase
from qmskpi.review.model import SignalClass, Trend


def _last_index(t: Trend) -> int | None:
    for i in range(len(t.values) - 1, -1, -1):
        if t.values[i] is not None:
            return i
    return None


def measure_phrase(t: Trend) -> str:
    return f"{t.title}{scope_phrase(t.scope)}"


def _run_length(t: Trend, end: int) -> tuple[int, int]:
    """Points in a row on one side of the centre ending at ``end``: (length, side)."""
    side = 0
    n = 0
    for i in range(end, -1, -1):
        v, c = t.values[i], t.center[i]
        if v is None or c is None:
            continue
        s = (v > c) - (v < c)
        if s == 0 and t.status == "run_chart":
            continue  # run-chart rules: a point on the median neither counts nor breaks a run
        if s == 0 or (side and s != side):
            break
        side = s
        n += 1
    return n, side


def _trend_length(t: Trend, end: int) -> tuple[int, int]:
    """Points strictly rising (+1) or falling (-1) in a row ending at ``end``."""
    pts = [v for v in t.values[: end + 1] if v is not None]
    if len(pts) < 2:
        return 1, 0
    step = (pts[-1] > pts[-2]) - (pts[-1] < pts[-2])
    if step == 0:
        return 1, 0
    n = 2
    for i in range(len(pts) - 2, 0, -1):
        s = (pts[i] > pts[i - 1]) - (pts[i] < pts[i - 1])
        if s != step:
            break
        n += 1
    return n, step


RECENT_MONTHS = 3
"""A signal counts as current when it touches one of the last this-many points."""


def signal_sentences(t: Trend) -> list[tuple[SignalClass, str]]:
    """Deterministic sentences for the current signals of one trend, most serious first.

    Worded without number agreement ("ran", "rose", "came close", "the upper limit"),
    since the subject is a measure's title, singular or plural ("Complaints received",
    "Complaint rate").
    """
    last = _last_index(t)
    if last is None:
        return []
    out: list[tuple[SignalClass, str]] = []
    where = measure_phrase(t)
    recent = range(max(0, last - RECENT_MONTHS + 1), last + 1)
    # a point beyond a limit among the last few
    for i in reversed(recent):
        v, u, lo = t.values[i], t.ucl[i], t.lcl[i]
        if v is None or "beyond_limits" not in t.signals[i]:
            continue
        if u is not None and v > u:
            out.append((t.classes[i], f"{where} rose above the upper limit in {t.months[i]}."))
        elif lo is not None and v < lo:
            out.append((t.classes[i], f"{where} fell below the lower limit in {t.months[i]}."))
        break
    if "shift" in t.signals[last] or "run_shift" in t.signals[last]:
        n, side = _run_length(t, last)
        word = "above" if side > 0 else "below"
        line = "median" if t.status == "run_chart" else "average"
        out.append((t.classes[last], f"{where} ran {word} the {line} for the last {n} months."))
    if "trend" in t.signals[last] or "run_trend" in t.signals[last]:
        n, step = _trend_length(t, last)
        word = "rose" if step > 0 else "fell"
        out.append((t.classes[last], f"{where} {word} for {n} months in a row."))
    if "two_of_three" in t.signals[last] and not out:
        v, c = t.values[last], t.center[last]
        word = "upper" if v is not None and c is not None and v > c else "lower"
        out.append(
            (
                t.classes[last],
                f"{where} came close to the {word} limit in 2 of the last 3 months.",
            )
        )
    return out


def explain(t: Trend) -> list[str]:
    """Plain sentences shown next to a chart: the latest point, limits, signals, assurance."""
    last = _last_index(t)
    if last is None:
        return ["No data in the trend window."]
    v, c, u, lo = t.values[last], t.center[last], t.ucl[last], t.lcl[last]
    if t.status == "rare_events":
        return [f"{t.months[last]}: {format_value(v, t.unit)}.", t.baseline] + (
            [] if t.sound else ["Data behind this measure failed validation: read it with care."]
        )
    if t.status == "run_chart":
        lines = [f"{t.months[last]}: {format_value(v, t.unit)}; median {format_value(c, t.unit)}."]
        lines.append(t.baseline)
    else:
        lines = [
            f"{t.months[last]}: {format_value(v, t.unit)}; average {format_value(c, t.unit)}, "
            f"process limits {format_value(lo, t.unit)} to {format_value(u, t.unit)}."
        ]
        if t.baseline:
            lines.append(t.baseline)
    sentences = signal_sentences(t)
    if sentences:
        lines += [
            f"{s} ({cls})" if cls in ("improvement", "concern") else s for cls, s in sentences
        ]
    elif t.status == "run_chart":
        lines.append("No run-chart signal (shift or trend) in the latest month.")
    else:
        lines.append("Common-cause variation only: no signal in the latest month.")
    if t.assurance is not None and t.target is not None:
        tgt = format_value(t.target, t.unit)
        lines.append(
            {
                "consistent_pass": f"Target {tgt}: met consistently (target outside the limits).",
                "consistent_fail": f"Target {tgt}: not met consistently; it lies outside the "
                "process limits, so the process must change to meet it.",
                "inconsistent": f"Target {tgt}: met in some months and missed in others "
                "(target within the limits).",
            }.get(t.assurance, "")
        )
    if t.status == "limits" and t.variation:
        fired = [r for r in t.signals[last] if r in _RULE_WORDS]
        why = "; ".join(_RULE_WORDS[r] for r in sorted(fired)) or "no rule fired"
        lines.append(
            f"Variation icon ({t.variation.replace('_', ' ')}): {why} in {t.months[last]}."
        )
    if not t.sound:
        lines.append("Data behind this measure failed validation: read it with care.")
    return [line for line in lines if line]


_RULE_WORDS = {
    "beyond_limits": "a point beyond a process limit",
    "shift": "7 or more months in a row on one side of the average",
    "trend": "7 or more months rising or falling in a row",
    "two_of_three": "2 of 3 months close to a limit (beyond 2 sigma)",
    "run_shift": "6 or more months on one side of the median",
    "run_trend": "5 or more months rising or falling",
}
"""The MDC and run-chart rules in words, for the sentence that says what set an icon."""


def is_current(t: Trend, cls: SignalClass) -> bool:
    last = _last_index(t)
    return last is not None and t.classes[last] == cls


def kept_trends(ctx: Context, trends: Sequence[Trend]) -> tuple[Trend, ...]:
    """The scope's own trends, then site trends whose latest month carries a signal.

    At most ``max_rows`` site trends: concerns first (the pack's length must not
    grow with the number of sites); the others stay in the deep-dive notebooks.
    """
    own = [t for t in trends if t.scope == ctx.scope]
    sites = [t for t in trends if t.scope != ctx.scope and _current_signal(t)]
    ranked = sorted(sites, key=lambda t: 0 if is_current(t, "concern") else 1)
    keep = set(map(id, ranked[: ctx.max_rows]))
    return (*own, *(t for t in sites if id(t) in keep))


def _current_signal(t: Trend) -> bool:
    return is_current(t, "concern") or is_current(t, "improvement")


@dataclass(frozen=True)
class _Signal:
    """A current signal of one KPI: the scope's own trend, or a site when the scope has none."""

    kpi: str
    section: str
    trend: Trend
    sentence: str
    sites: tuple[str, ...]
    """Sites where the same sentence holds (when ``trend`` is the scope's own)."""

    @property
    def text(self) -> str:
        if not self.sites:
            return self.sentence
        return f"{self.sentence[:-1]} (also at {_sites_phrase(self.sites)})."


def _sites_phrase(sites: Sequence[str]) -> str:
    """``"site North"``, ``"sites North and South"`` (names already saying "Site" kept as they are)."""
    if all(s.lower().startswith("site") for s in sites):
        return join_words(list(sites))
    return ("site " if len(sites) == 1 else "sites ") + join_words(list(sites))


def current_signals(ctx: Context, trends: Sequence[Trend], cls: SignalClass) -> list[_Signal]:
    """Current signals of class ``cls``, one per KPI at the scope, plus site-only ones."""
    by_kpi: dict[str, list[Trend]] = {}
    for t in trends:
        if is_current(t, cls) and any(c == cls for c, _ in signal_sentences(t)):
            by_kpi.setdefault(t.kpi, []).append(t)
    out: list[_Signal] = []
    for kpi_id, ts in by_kpi.items():
        own = [t for t in ts if t.scope == ctx.scope]
        sites = [t for t in ts if t.scope != ctx.scope]
        if own:
            t = own[0]
            sentence = next(s for c, s in signal_sentences(t) if c == cls)
            # "(also at site X)" repeats the sentence's claim for X: only sites where it holds
            # (same rule, same month, same run length); the others are said on their own.
            claim = sentence[len(measure_phrase(t)) :]
            same = [x for x in sites if (cls, measure_phrase(x) + claim) in signal_sentences(x)]
            out.append(_Signal(kpi_id, t.section, t, sentence, tuple(x.scope for x in same)))
            sites = [x for x in sites if x not in same]
        for t in sites:
            sentence = next(s for c, s in signal_sentences(t) if c == cls)
            out.append(_Signal(kpi_id, t.section, t, sentence, ()))
    return out
