"""Analyst markdown to safe HTML, with markdown-it-py (CommonMark + pipe tables).

The text is untrusted (DESIGN §8): raw HTML is off (``html=False``: a tag is shown as
text), every character of the input is escaped (quotes too), links and images are shown
as "text (url)", never as anchors or images (the pack works offline and follows nothing),
and headings move down ``heading_offset`` levels to sit under the section's heading.
Block elements are joined by one newline and hold no newline inside, as the pack's CSS
and the review snapshots expect.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any, Final

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

_BETWEEN_TAGS: Final = re.compile(r">\n+<")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _text(
    self: RendererHTML, tokens: Sequence[Token], idx: int, o: OptionsDict, env: EnvType
) -> str:
    return _esc(tokens[idx].content)


def _code_inline(
    self: RendererHTML, tokens: Sequence[Token], idx: int, o: OptionsDict, env: EnvType
) -> str:
    return f"<code>{_esc(tokens[idx].content)}</code>"


def _softbreak(
    self: RendererHTML, tokens: Sequence[Token], idx: int, o: OptionsDict, env: EnvType
) -> str:
    return " "


def _link_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, o: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    # an autolink's text is its URL already; a [text](url) shows the URL after the text
    env.setdefault("links", []).append(
        "" if token.markup == "autolink" else str(token.attrGet("href"))
    )
    return ""


def _link_close(
    self: RendererHTML, tokens: Sequence[Token], idx: int, o: OptionsDict, env: EnvType
) -> str:
    href = env["links"].pop()
    return f" ({_esc(href)})" if href else ""


def _image(
    self: RendererHTML, tokens: Sequence[Token], idx: int, o: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], o, env)
    return f"{_esc(alt)} ({_esc(str(token.attrGet('src')))})"


def _heading_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, o: OptionsDict, env: EnvType
) -> str:
    return f"<h{_level(tokens[idx], env)}>"


def _heading_close(
    self: RendererHTML, tokens: Sequence[Token], idx: int, o: OptionsDict, env: EnvType
) -> str:
    return f"</h{_level(tokens[idx], env)}>"


def _level(token: Token, env: EnvType) -> int:
    return min(6, int(token.tag[1]) + int(env["heading_offset"]))


def _plain(tag: str) -> Any:
    """A renderer rule writing ``tag`` with no attributes (table cells: no inline style)."""

    def rule(
        self: RendererHTML, tokens: Sequence[Token], idx: int, o: OptionsDict, env: EnvType
    ) -> str:
        return tag

    return rule


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table")
    # Links are shown as text, never followed: any URL may be shown, as written (escaped).
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    md.normalizeLink = lambda url: url  # type: ignore[method-assign]
    rules = {
        "text": _text,
        "code_inline": _code_inline,
        "softbreak": _softbreak,
        "link_open": _link_open,
        "link_close": _link_close,
        "image": _image,
        "heading_open": _heading_open,
        "heading_close": _heading_close,
        "table_open": _plain('<table class="qk-table">'),
        "th_open": _plain("<th>"),
        "td_open": _plain("<td>"),
    }
    for name, rule in rules.items():
        md.add_render_rule(name, rule)
    return md


_MD: Final = _parser()


def safe_markdown(text: str, *, heading_offset: int = 2) -> str:
    """Render analyst markdown to HTML, escaping every character of the input.

    CommonMark (paragraphs, ``#`` headings shifted down by ``heading_offset`` levels,
    bullet and numbered lists, emphasis, code) plus ``| a | b |`` pipe tables. Raw HTML
    is shown as text; links and images are shown as "text (url)", never followed.
    """
    env: dict[str, Any] = {"heading_offset": heading_offset}
    tokens = _MD.parse(text, env)
    blocks: list[str] = []
    start = 0
    for i, token in enumerate(tokens):
        if token.level == 0 and token.nesting <= 0:  # a top-level block ends here
            rendered = _MD.renderer.render(tokens[start : i + 1], _MD.options, env)
            blocks.append(_BETWEEN_TAGS.sub("><", rendered.strip()))
            start = i + 1
    return "\n".join(blocks)
