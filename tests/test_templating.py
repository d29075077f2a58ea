"""Jinja2 pages: autoescape on, values never evaluated as templates, undefined names raise."""

from __future__ import annotations

import html

import jinja2
import pytest
from markupsafe import Markup

from qmskpi import templating

HOSTILE = [
    "<script>alert(1)</script>",
    "{{ 'ab' ~ 'cd' }}",
    "{% if true %}YES{% endif %}",
    "{# gone #}",
    '" onmouseover="alert(1)',
    "' autofocus onfocus='alert(1)",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_value_reaches_the_page_escaped_and_inert(value: str) -> None:
    page = templating.render("reports_index.html.j2", title=value, rows=[])
    # escaped exactly as html.escape does (the rest of the pack escapes the same way)
    assert f"<title>{html.escape(value, quote=True)}</title>" in page
    assert "<script" not in page
    assert "abcd" not in page  # the expression was not evaluated
    assert "<title>YES</title>" not in page


def test_markup_built_by_qmskpi_is_kept_and_undefined_names_raise() -> None:
    env = templating.environment()
    tpl = env.from_string("{{ a }}|{{ b }}|{{ c }}")
    assert tpl.render(a=Markup("<b>ok</b>"), b="<b>", c=None) == "<b>ok</b>|&lt;b&gt;|"
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()
    assert env.autoescape is True
