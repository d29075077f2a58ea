"""Clause maps as data: the shipped maps, picking one in qmskpi.toml, a map of your own, bad files.

Expected section lists are ISO 9001:2015 9.3.2 as the standard numbers it
(a) to f), c) 1) to 7)), written out here by hand.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLE_CONFIG
from qmskpi import charts, pipeline, review
from qmskpi.config import Config, ReviewConfig, load_config
from qmskpi.errors import ConfigError

MAPS = ROOT / "src" / "qmskpi" / "review" / "clause_maps"
ISO_2015 = (MAPS / "iso9001-2015.toml").read_text(encoding="utf-8")

INPUT_REFS = [
    "9.3.2 a)",
    "9.3.2 b)",
    *(f"9.3.2 c) {i})" for i in range(1, 8)),
    "9.3.2 d)",
    "9.3.2 e)",
    "9.3.2 f)",
]


@pytest.mark.parametrize("standard", ["ISO 9001:2015", "ISO 9001:2026"])
def test_each_shipped_map_loads_with_every_section_of_the_pack(standard: str) -> None:
    m = review.load_clause_map(MAPS / review.STANDARDS[standard])
    assert m.standard == standard
    assert review.clause_map(standard) == m == review.CLAUSE_MAPS[m.id]
    assert [e.id for e in m.entries] == list(review.PACK_SECTIONS)
    assert [e.ref for e in m.entries if e.role == "input"] == INPUT_REFS
    assert m.entry("decisions").ref == "9.3.3"
    assert [e.id for e in m.entries if e.trends] == ["c5"]


def test_the_2015_map_is_the_2015_edition_with_the_climate_amendment() -> None:
    m = review.ISO9001_2015
    assert m.id == "iso9001_2015"
    assert "Amendment 1:2024" in m.edition
    assert not m.provisional
    assert "climate change is a relevant issue" in m.entry("b").wording
    assert "climate change" not in m.entry("c1").wording


def test_the_2026_map_is_provisional_and_says_so() -> None:
    m = review.clause_map("ISO 9001:2026")
    assert m.provisional
    assert "provisional" in m.title.lower()
    assert m.edition.startswith("Provisional")
    text = (MAPS / review.STANDARDS["ISO 9001:2026"]).read_text(encoding="utf-8")
    assert "PROVISIONAL" in text  # the file itself says where its structure comes from


@pytest.fixture(scope="module")
def prepared() -> pipeline.Prepared:
    if not SAMPLE_CONFIG.is_file():
        pytest.skip("sample data not there yet")
    return pipeline.prepare(SAMPLE_CONFIG, "2026-10", "all")


def _build(prepared: pipeline.Prepared, **review_keys: object) -> review.ReviewModel:
    cfg = prepared.config
    cfg = dataclasses.replace(cfg, review=dataclasses.replace(cfg.review, **review_keys))
    return review.build(
        prepared.validation.clean,
        period="2026-10",
        scope="all",
        config=cfg,
        validation=prepared.validation,
    )


def test_the_default_standard_is_2015_and_2026_is_picked_by_name(
    prepared: pipeline.Prepared,
) -> None:
    assert prepared.config.review.standard == "ISO 9001:2015"
    assert prepared.review.meta.clause_map == "iso9001_2015"
    assert not prepared.review.meta.clause_map_provisional
    model = _build(prepared, standard="ISO 9001:2026")
    assert model.meta.clause_map == "iso9001_2026_provisional"
    assert model.meta.clause_map_provisional
    assert model.meta.clause_map_title.endswith("(provisional)")
    assert model.section_ids == prepared.review.section_ids
    assert model.kpis == prepared.review.kpis  # the figures do not depend on the map


def test_an_unknown_standard_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "qmskpi.toml"
    path.write_text(
        '[organisation]\nname = "X"\n[sources.capa]\npath = "capa.csv"\n'
        '[review]\nstandard = "ISO 9001:2051"\n',
        encoding="utf-8",
    )
    cfg = load_config(path)
    with pytest.raises(ConfigError) as info:
        review.clause_map_for(cfg)
    message = str(info.value)
    assert str(path) in message
    assert "key 'review.standard'" in message
    assert "did you mean 'ISO 9001:2015'" in message


IATF_SECTION = """
[[entries]]
id = "g"
ref = "9.3.2.1 a)"
title = "Cost of poor quality"
wording = "Cost of poor quality (cost of internal and external nonconformance)."
datasets = ["capa"]

"""


def _own_map(tmp_path: Path) -> Path:
    text = ISO_2015.replace('id = "iso9001_2015"', 'id = "acme_iatf16949"')
    text = text.replace('standard = "ISO 9001:2015"', 'standard = "IATF 16949:2016"')
    text = text.replace('\n[[entries]]\nid = "d"', IATF_SECTION + '[[entries]]\nid = "d"')
    path = tmp_path / "maps" / "acme-iatf.toml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    return path


def test_a_map_file_of_your_own_is_used(prepared: pipeline.Prepared, tmp_path: Path) -> None:
    path = _own_map(tmp_path)
    model = _build(prepared, clause_map=str(path))
    assert model.meta.clause_map == "acme_iatf16949"
    ids = model.section_ids
    assert ids[ids.index("c7") + 1] == "g"
    g = model.section("g")
    assert (g.ref, g.title, g.role) == ("9.3.2.1 a)", "Cost of poor quality", "input")
    assert [c.section for c in model.coverage if c.section == "g"] == ["g"]
    assert [d.dataset for d in next(c for c in model.coverage if c.section == "g").evidence] == [
        "capa"
    ]
    # the packaged notebook names the 2015 sections; the new one is shown after c7
    shown = charts.Pack(model).section("c7").html
    assert "Cost of poor quality" in shown
    assert "Cost of poor quality" not in charts.Pack(model).section("c6").html


def test_a_relative_map_path_is_read_from_the_config_folder(tmp_path: Path) -> None:
    path = _own_map(tmp_path)
    cfg = Config(
        organisation="X",
        sites=(),
        sources={},
        review=ReviewConfig(clause_map="maps/acme-iatf.toml"),
        path=tmp_path / "qmskpi.toml",
    )
    assert review.clause_map_for(cfg).id == "acme_iatf16949"
    missing = dataclasses.replace(cfg, review=ReviewConfig(clause_map="maps/nope.toml"))
    with pytest.raises(ConfigError, match="not found") as info:
        review.clause_map_for(missing)
    assert "key 'review.clause_map'" in str(info.value)
    assert path.parent.name in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        (
            'title = "Status of actions',
            'titel = "Status of actions',
            "entries[2].titel",
            "did you mean 'title'",
        ),
        ('role = "front"', 'role = "frnot"', "entries[0].role", "did you mean 'front'"),
        (
            'datasets = ["capa"]',
            'datasets = ["capas"]',
            "entries[7].datasets",
            "did you mean 'capa'",
        ),
        ('"defect_ppm",\n', '"defect_ppms",\n', "headline_kpis", "did you mean 'defect_ppm'"),
        (
            'tables = ["overdue_capa"]',
            'tables = ["overdue_capas"]',
            "entries[7].tables",
            "did you mean",
        ),
        ('id = "c6"', 'id = "c4"', "entries[9].id", "used twice"),
        ("trends = true", "trends = 'yes'", "entries[8].trends", "true or false"),
        ('id = "e"', 'id = "e2"', "entries", "no section with id 'e'"),
        ('title = "ISO 9001:2015 clause 9.3 Management review"\n', "", "title", "is required"),
        ("provisional = false", "provisonal = false", "provisonal", "did you mean 'provisional'"),
    ],
)
def test_a_bad_map_file_names_the_file_and_the_key(
    tmp_path: Path, old: str, new: str, key: str, words: str
) -> None:
    assert old in ISO_2015
    path = tmp_path / "bad.toml"
    path.write_text(ISO_2015.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        review.load_clause_map(path)
    message = str(info.value)
    assert message.startswith(f"{path}: key '{key}': ")
    assert words in message


def test_a_map_file_that_is_not_toml_or_not_there(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('id = "x"\n[[entries]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        review.load_clause_map(path)
    assert str(path) in str(info.value)
    with pytest.raises(ConfigError, match="cannot read"):
        review.load_clause_map(tmp_path / "none.toml")
