"""archive.names: scope slugs and the scopes a config allows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from archive.helpers import make_config
from qmskpi import archive
from qmskpi.errors import ConfigError


def test_scope_slug() -> None:
    assert archive.scope_slug("all") == "all"
    assert archive.scope_slug("Plant A") == "plant-a"
    assert archive.scope_slug("Site_3.north") == "site_3.north"
    assert archive.scope_slug("Côte d'Ivoire") == "cote-d-ivoire"
    assert archive.scope_slug("Congo, DRC") == "congo-drc"
    tokyo = archive.scope_slug("東京")
    assert tokyo == "site-" + hashlib.sha256("東京".encode()).hexdigest()[:10]
    assert archive.scope_slug("東京") == tokyo  # stable
    assert archive.scope_slug("大阪") != tokyo


@pytest.mark.parametrize("scope", ["../etc", "", ".hidden", "a/b", "x" * 65, "<b>"])
def test_scope_slug_refuses_what_is_not_a_site(scope: str) -> None:
    with pytest.raises(ConfigError):
        archive.scope_slug(scope)


def test_check_scope_refuses_unknown_and_colliding_scopes(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    assert archive.check_scope(cfg, "Plant A") == "plant-a"
    with pytest.raises(ConfigError, match="unknown scope"):
        archive.check_scope(cfg, "Plant C")
    clash = make_config(tmp_path, sites=("Plant A", "plant-a"))
    with pytest.raises(ConfigError, match="share the folder"):
        archive.check_scope(clash, "Plant A")
