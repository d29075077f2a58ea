"""The names of the reports folder: its hidden folders and files, period labels and scope slugs."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from typing import Literal

from qmskpi.config import SITE_PATTERN, SITE_RULE_TEXT, WHOLE_SCOPE, Config
from qmskpi.errors import ConfigError
from qmskpi.periods import Period, parse_period

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "qmskpi.manifest/1"
INDEX = "index.html"
PACKS_DIR = ".packs"
STAGING_DIR = ".staging"
LOCKS_DIR = ".locks"
GLOBAL_LOCK = ".lock"
STAGE_LOCK = ".stage.lock"
MINUTES_DIR = ".minutes"
"""Published minutes (every version kept when approved), beside ``.packs``."""
MINUTES_LINKS = "_minutes"
"""``<period>/_minutes/<slug>``: the visible link to the current minutes of a pack."""
CHAIN_DIR = ".manifests"
"""``.manifests/<slug>/<seq>--<id>.json``: a copy of every manifest published for a scope, in order."""
REGISTER = "review-actions.csv"
"""The review-actions register: accepted actions of approved minutes, read by the next pack."""
MINUTES_SCHEMA = "qmskpi.minutes-manifest/1"

Kind = Literal["pack", "minutes"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PACK_ID = re.compile(
    r"^(?P<period>\d{4}(?:-\d{2}|-Q[1-4])?)--(?P<slug>[a-z0-9][a-z0-9._-]{0,63})"
    r"--\d{8}T\d{6}Z--[0-9a-f]{6}$"
)
_STAGE_NAME = re.compile(r"^(?P<key>.+)--[0-9a-f]{12}$")

StageHook = Callable[[str], None]
"""Called with a step name as publishing progresses (fault injection, progress)."""


def period_label(period: Period | str) -> str:
    """The canonical label of ``period``; raises :class:`~qmskpi.errors.PeriodError`."""
    return parse_period(period).label


def scope_slug(scope: str) -> str:
    """The path component of a scope: ``all`` or a site name, lower-cased, ``-`` for spaces.

    >>> scope_slug("Plant A")
    'plant-a'
    >>> scope_slug("Côte d'Ivoire")
    'cote-d-ivoire'

    Accents are dropped (Unicode NFKD); a name with no Latin letter or digit
    left (``東京``) gets ``site-`` and 10 hex digits of its sha256, so the
    folder is stable and never holds anything taken verbatim from the name.
    """
    if scope != WHOLE_SCOPE and not SITE_PATTERN.fullmatch(scope):
        raise ConfigError(
            f"scope {scope!r} is not a valid site name ({SITE_RULE_TEXT})",
            key="organisation.sites",
        )
    plain = unicodedata.normalize("NFKD", scope).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9._-]+", "-", plain.lower()).strip("-._")[:64].rstrip("-._")
    if not slug:
        slug = "site-" + hashlib.sha256(scope.encode("utf-8")).hexdigest()[:10]
    if not _SLUG.match(slug):  # pragma: no cover - the lines above make this unreachable
        raise ConfigError(f"scope {scope!r} gives no usable folder name", key="organisation.sites")
    return slug


def check_scope(config: Config, scope: str) -> str:
    """Validate ``scope`` against the config and return its slug.

    Raises :class:`~qmskpi.errors.ConfigError` for an unknown scope or when two
    configured scopes would share a folder (``Plant A`` and ``plant-a``).
    """
    config.check_scope(scope)
    slug = scope_slug(scope)
    for other in config.scopes:
        if other != scope and scope_slug(other) == slug:
            raise ConfigError(
                f"scopes {scope!r} and {other!r} would share the folder {slug!r}; rename one",
                path=config.path,
                key="organisation.sites",
            )
    return slug
