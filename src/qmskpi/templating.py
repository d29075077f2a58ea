"""HTML pages from Jinja2 templates (``templates/html/``), every value escaped.

Autoescape is on: a value reaches the page escaped unless it is :class:`markupsafe.Markup`
(HTML qmskpi built itself). Values are escaped with :func:`html.escape` (``&quot;``,
``&#x27;``), as the rest of the pack escapes them, so a page reads the same whichever
code wrote it. A value is never evaluated as a template: ``{{ }}`` or ``{% %}`` in a
field from a source is text like any other. Undefined names raise (``StrictUndefined``).
"""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


def esc(value: object) -> str:
    """HTML-escape any value (quotes too); None becomes an empty string.

    For HTML written in code (the minutes, text plotly shows: it reads a subset of
    HTML tags in titles and labels); templates escape the same way (:func:`_escaped`).
    """
    return "" if value is None else html.escape(str(value), quote=True)


def _escaped(value: Any) -> Any:
    """Every ``{{ value }}``: Markup as it is, anything else through :func:`html.escape`."""
    if isinstance(value, Markup) or value is None:
        return "" if value is None else value
    return Markup(html.escape(str(value), quote=True))  # noqa: S704 - escaped on this line


@cache
def environment() -> Environment:
    """The one Jinja2 environment: package templates, autoescape, strict undefined."""
    return Environment(
        loader=PackageLoader("qmskpi", "templates/html"),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=_escaped,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def render(template: str, **context: Any) -> str:
    """``templates/html/<template>`` rendered with ``context``."""
    return environment().get_template(template).render(**context)


def trusted(fragment: str) -> Markup:
    """HTML qmskpi built itself (a rendered piece, an icon, a chart), kept as it is."""
    return Markup(fragment)  # noqa: S704 - only for HTML built by qmskpi's own templates/code


def macro(template: str, name: str, /, **context: Any) -> str:
    """The macro ``name`` of ``templates/html/<template>`` called with ``context``."""
    return str(getattr(_module(template), name)(**context))


@cache
def _module(template: str) -> Any:
    return environment().get_template(template).module
