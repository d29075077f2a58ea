"""Tests of qmskpi.charts.pack: the pack's sections as fragments, escaping everywhere, restatements."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from charts.helpers import PLOTLYJS
from qmskpi import charts, review
from test_review import (  # the hand-made data set of the review tests
    XSS,
)


def test_pack_is_deterministic(model: review.ReviewModel) -> None:
    a = charts.Pack(model).everything().html
    b = charts.Pack(review.ReviewModel.from_json(model.to_json())).everything().html
    assert a == b


def test_fragments_display_in_notebooks(model: review.ReviewModel) -> None:
    pack = charts.Pack(model)
    cover = pack.cover()
    assert cover._repr_html_() == cover.html
    assert "Hand-made Ltd" in cover.html
    assert "exceptions need attention" in cover.html
    summary = pack.summary().html
    # exceptions first: the in-brief box comes before the tiles
    assert summary.index("qk-exceptions") < summary.index("qk-tiles")
    tiles = re.findall(r'<div class="(qk-tile(?: [^"]*)?)"', summary)
    flags = ["qk-exception" in t for t in tiles]
    assert flags == sorted(flags, reverse=True)
    assert "<svg" in summary  # MDC icons drawn inline
    assert "<img" not in summary
    with pytest.raises(review.QmsKpiError, match="did you mean 'c1'"):
        pack.section("C1")
    assert charts.show(model, "c1").html.startswith("<section")


def test_values_limits_and_signals_are_visible_text(model: review.ReviewModel) -> None:
    html = charts.Pack(model).section("c5").html
    visible = PLOTLYJS.sub("", html)
    visible = re.sub(r"<script[\s\S]*?</script>", "", visible)
    assert "process limits" in visible
    assert "rose above the upper limit in 2026-10" in visible
    assert "Variation in the latest month, by measure and site" in visible


def _without_plotlyjs(html: str) -> str:
    return PLOTLYJS.sub("", html)


def test_hostile_text_is_escaped_everywhere(evil_html: str) -> None:
    html = _without_plotlyjs(evil_html)
    assert "<script>alert" not in html
    assert not re.search(r"<[^>]*\sonerror\s*=", html)
    assert not re.search(r"<[^>]*\sonload\s*=", html)
    assert "<svg onload" not in html
    assert "<img src=x" not in html
    assert 'href="javascript:' not in html
    # ... and they are there, escaped, for the reader to see
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&quot;&#x27;&gt;&lt;svg onload=alert(1)&gt;" in html


def test_safe_markdown_subset() -> None:
    out = charts.safe_markdown(
        "# Title\n\nSome **bold** and *italic* and `code`.\n\n- one\n- two\n\n1. first\n2. second"
    )
    assert out == (
        "<h3>Title</h3>\n"
        "<p>Some <strong>bold</strong> and <em>italic</em> and <code>code</code>.</p>\n"
        "<ul><li>one</li><li>two</li></ul>\n"
        "<ol><li>first</li><li>second</li></ol>"
    )


@pytest.mark.parametrize("attack", [*XSS, '<a href="javascript:alert(1)">x</a>'])
def test_safe_markdown_escapes_html(attack: str) -> None:
    out = charts.safe_markdown(f"{attack}\n\n**{attack}**\n\n- {attack}")
    assert "<script" not in out
    assert "<img" not in out
    assert "<svg" not in out
    assert "<a " not in out
    assert out.count("&lt;") >= 3


def test_safe_markdown_pipe_tables() -> None:
    out = charts.safe_markdown(f"| Area | Note |\n|---|---|\n| QA | **ok** {XSS[0]} |\n\nAfter.")
    assert out == (
        '<table class="qk-table"><thead><tr><th>Area</th><th>Note</th></tr></thead>'
        "<tbody><tr><td>QA</td><td><strong>ok</strong> "
        "&lt;script&gt;alert(1)&lt;/script&gt;</td></tr></tbody></table>\n<p>After.</p>"
    )


def test_safe_markdown_links_are_text() -> None:
    out = charts.safe_markdown("See [the plan](javascript:alert(1)) and [docs](https://x.example).")
    assert "<a" not in out
    assert "the plan (javascript:alert(1))" in out


TEMPLATE_SYNTAX = "{{ 'ab' ~ 'cd' }} {% if true %}YES{% endif %} {# c #} <script>alert(1)</script>"


def test_template_syntax_in_a_field_reaches_the_pack_as_text(model: review.ReviewModel) -> None:
    # the pack's HTML comes from Jinja2 templates: a value is never evaluated as a template
    import html

    import polars as pl

    t = TEMPLATE_SYNTAX
    tile = replace(model.tiles[0], title=t, note=t, display=t)
    hostile = replace(model, narrative=(t,), tiles=(tile, *model.tiles[1:]))
    detail = {
        "superseded": {"id": t, "created_at": t},
        "changed_inputs": [{"dataset": t, "old_rows_in": 1, "new_rows_in": 2}],
        "kpis": [
            {
                "kpi": t,
                "scope": t,
                "period": t,
                "old_value": t,
                "new_value": t,
                "old_sound": t,
                "new_sound": "x",
            }
        ],
    }
    pages = [
        charts.Pack(hostile).summary().html,
        charts.Pack(hostile).restatement(detail).html,
        charts.frame_html(pl.DataFrame({t: [t]}), title=t).html,
    ]
    for page in pages:
        assert html.escape(t, quote=True) in page
        assert "<script" not in page
        assert "abcd" not in page
        assert ">YES<" not in page


def test_restatement_shows_what_changed_escaped(model: review.ReviewModel) -> None:
    """A restated pack says which figures moved, from what to what, and why — all as text."""
    pack = charts.Pack(model)
    assert pack.restatement(None).html == ""
    detail = {
        "superseded": {"id": "old<pack>", "created_at": "2026-11-02T06:00:00Z"},
        "changed_inputs": [
            {"dataset": "complaints<script>", "old_rows_in": 1200, "new_rows_in": 1199}
        ],
        "config_changed": True,
        "qmskpi_changed": False,
        "kpis": [
            {
                "kpi": "complaints_received",
                "scope": "all",
                "period": "2026-10",
                "old_value": "83.0",
                "new_value": "82.0",
                "old_sound": "true",
                "new_sound": "true",
            },
            {
                "kpi": "x<img src=x onerror=alert(1)>",
                "scope": "North",
                "period": "2026-10",
                "old_value": None,
                "new_value": "0.5",
                "old_sound": "true",
                "new_sound": "false",
            },
        ],
    }
    html = pack.restatement(detail).html
    assert "Restatement: 2 figures differ from the pack published 2026-11-02T06:00:00Z" in html
    assert "supersedes pack old&lt;pack&gt;" in html
    assert "complaints&lt;script&gt; (rows 1,200 → 1,199); the configuration changed" in html
    assert '<td class="qk-f-float">83</td><td class="qk-f-float">82</td>' in html
    assert "true → false" in html
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "†" not in html  # no definition changed
    detail["definitions_changed"] = [
        {"kpi": "complaints_received", "old_definition": "a", "new_definition": "b"}
    ]
    html = pack.restatement(detail).html
    assert "the definition of 1 measure changed (marked †;" in html
    assert html.count("†") == 2  # the reason, and the one redefined row
    assert "Complaints received †</td>" in html
