"""Analyst markdown as the pack shows it: markdown-it-py, raw HTML off, nothing followed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT
from qmskpi.markdown_html import safe_markdown

FIXTURES = Path(__file__).parent / "fixtures" / "markdown"


@pytest.mark.parametrize("name", ["changes", "resources", "risks"])
def test_sample_inputs_render_as_the_former_renderer_did(name: str) -> None:
    # tests/fixtures/markdown/*.html were written by the hand-written renderer this replaced
    text = (ROOT / "sample_data" / "inputs" / f"{name}.md").read_text(encoding="utf-8")
    expected = (FIXTURES / f"{name}.html").read_text(encoding="utf-8").rstrip("\n")
    assert safe_markdown(text) == expected


def test_links_images_and_autolinks_are_text_never_followed() -> None:
    out = safe_markdown(
        "[plan](javascript:alert(1)) ![logo](https://t.example/p.png) <https://x.example/a>"
    )
    assert out == (
        "<p>plan (javascript:alert(1)) logo (https://t.example/p.png) https://x.example/a</p>"
    )


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "<svg onload=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<!-- c --><iframe src=//e.example></iframe>",
    ],
)
def test_raw_html_is_shown_as_text_in_every_block(attack: str) -> None:
    text = f"{attack}\n\n# {attack}\n\n- {attack}\n\n| a |\n|---|\n| {attack} |\n\n`{attack}`\n\n```\n{attack}\n```"
    out = safe_markdown(text)
    for tag in ("<script", "<img", "<svg", "<a ", "<iframe", "<!--"):
        assert tag not in out
    assert out.count("&lt;") >= 6


def test_heading_offset_and_quotes_escaped() -> None:
    assert safe_markdown("# One\n## Two 'x'", heading_offset=1) == (
        "<h2>One</h2>\n<h3>Two &#x27;x&#x27;</h3>"
    )
    assert safe_markdown("###### Deep") == "<h6>Deep</h6>"
