"""qmskpi.sources.load: load_dataset and load_all, config mistakes, the documented examples."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from qmskpi.config import Config
from qmskpi.datasets import SOURCE_ROW
from qmskpi.errors import ConfigError, HeaderError
from qmskpi.sources import load_all, load_dataset
from qmskpi.sources.files import _concurrent
from sources.helpers import FIX, D, check_canonical, load_source, make_config


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('delimiter = ";;"', "delimiter"),
        ('encoding = "klingon"', "encoding"),
        ('columns = { site = "Plant" }\npositions = { site = 4 }', "positions"),
        ('has_header = false\ncolumns = { site = "Plant" }', "columns"),
    ],
)
def test_mapping_mistakes_are_config_errors(extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_source(f'[sources.complaints]\npath = "complaints_basic.csv"\n{extra}')
    assert info.value.key == f"sources.complaints.{key}"


def test_dataset_not_configured() -> None:
    with pytest.raises(
        ConfigError, match=re.escape("no [sources.complaint] table (did you mean 'complaints'?)")
    ):
        load_source('[sources.complaints]\npath = "complaints_basic.csv"', "complaint")


def test_load_all_reads_every_configured_dataset_in_order() -> None:
    cfg = make_config(
        '[sources.inspections]\npath = "inspections_value_maps.csv"\n'
        'value_maps = { result = { "-1" = "pass", "0" = "fail" } }\n'
        '[sources.complaints]\npath = "complaints_basic.csv"'
    )
    data = load_all(cfg)
    assert list(data) == ["inspections", "complaints"]
    assert data["complaints"].rows_in == 3


def test_load_all_on_the_sample_data(sample_config_path: Path) -> None:
    if not sample_config_path.exists():
        pytest.skip("sample_data/ not generated yet")
    from qmskpi.config import load_config

    data = load_all(load_config(sample_config_path))
    for r in data.values():
        check_canonical(r)
        assert r.rejects.is_empty(), r.rejects.head()
        assert r.rows_in > 0


def _doc_example(doc: Path, name: str) -> str:
    """The fenced block after ``<!-- example: NAME -->`` in a doc page."""
    text = doc.read_text(encoding="utf-8")
    m = re.search(rf"<!-- example: {re.escape(name)} -->\n```\w*\n(.*?)```", text, re.DOTALL)
    assert m, f"no example {name!r} in {doc}"
    return m.group(1)


def test_bring_your_own_data_worked_example_works_as_documented(tmp_path: Path) -> None:
    doc = FIX.parents[2] / "docs" / "bring-your-own-data.md"
    (tmp_path / "exports").mkdir()
    export = _doc_example(doc, "exports/complaints.csv").replace("\n", "\r\n")
    (tmp_path / "exports" / "complaints.csv").write_bytes(export.encode("cp1252"))
    (tmp_path / "qmskpi.toml").write_text(_doc_example(doc, "qmskpi.toml"), encoding="utf-8")
    from qmskpi.config import load_config

    c = load_dataset(load_config(tmp_path / "qmskpi.toml"), "complaints")
    check_canonical(c)
    assert (c.rows_in, c.frame.height, c.rows_rejected) == (4, 3, 1)
    assert c.frame.select(
        "complaint_id", "received_date", "closed_date", "customer", "status", SOURCE_ROW
    ).rows() == [
        ("CC-1001", D(2026, 10, 1), D(2026, 10, 15), "Société Générale", "closed", 5),
        ("CC-1002", D(2026, 10, 3), None, "Beta Ltd", "open", 6),
        ("CC-1004", D(2026, 10, 28), D(2026, 10, 30), "Gamma plc", "closed", 8),
    ]
    assert c.frame["category"].to_list() == ["packaging", "labelling", "delivery"]
    assert c.frame["units_affected"].to_list() == [3, None, 1]
    assert c.rejects.drop("file").rows() == [
        (
            7,
            "received_date",
            "Not captured",
            "type:received_date",
            "'Not captured' is not a date in format %d/%m/%Y",
        )
    ]


def test_bring_your_own_data_derive_where_defaults_duplicates_example(tmp_path: Path) -> None:
    doc = FIX.parents[2] / "docs" / "bring-your-own-data.md"
    (tmp_path / "exports").mkdir()
    export = _doc_example(doc, "exports/vehicle_complaints.csv")
    (tmp_path / "exports" / "vehicle_complaints.csv").write_text(export, encoding="utf-8")
    (tmp_path / "vehicles.toml").write_text(_doc_example(doc, "vehicles.toml"), encoding="utf-8")
    from qmskpi.config import load_config

    c = load_dataset(load_config(tmp_path / "vehicles.toml"), "complaints")
    check_canonical(c)
    assert (c.rows_in, c.frame.height, c.rows_rejected, c.rows_excluded) == (6, 4, 0, 2)
    assert c.frame.select(
        "complaint_id", "severity", "status", "customer", "closed_date", "site"
    ).rows() == [
        ("11590001", "critical", "open", "FORD F-150", None, "Ohio"),
        ("11590002", "minor", "closed", "HONDA CIVIC", D(2026, 10, 20), "California"),
        ("11590003", "critical", "closed", "unknown", D(2026, 10, 28), "Côte d'Ivoire"),
        ("11590004", "minor", "closed", "FORD F-150", D(2026, 10, 9), "Congo, DRC"),
    ]
    assert c.excluded.select(SOURCE_ROW, "rule").rows() == [(7, "where"), (6, "duplicate")]
    assert "row 3 of exports/vehicle_complaints.csv" in c.excluded["message"][1]
    assert c.frame["received_date"].to_list() == [
        D(2026, 10, 2),
        D(2026, 10, 3),
        D(2026, 10, 5),
        D(2026, 10, 7),
    ]


def _bad_and_good(tmp_path: Path, first: str, second: str) -> Config:
    """Receipts and inspections (Parquet) and complaints (CSV), read in the order given."""
    pl.DataFrame(
        {
            "receipt_id": ["R-1"],
            "supplier_id": ["S-1"],
            "site": ["Leeds"],
            "received_date": [D(2026, 10, 2)],
            "qty_received": [3],
            "qty_rejected": [0],
        }
    ).write_parquet(tmp_path / "receipts.parquet")  # no promised_date: a header error
    pl.DataFrame(
        {
            "inspection_id": ["I-1"],
            "site": ["Leeds"],
            "product": ["P"],
            "stage": ["final"],
            "lot_id": [None],
            "qty_inspected": [5],
            "qty_defective": [0],
            "result": ["pass"],
        }
    ).write_parquet(tmp_path / "inspections.parquet")  # no inspection_date: a header error
    (tmp_path / "complaints.csv").write_bytes((FIX / "complaints_basic.csv").read_bytes())
    blocks = {
        "receipts": '[sources.receipts]\npath = "receipts.parquet"\n',
        "inspections": '[sources.inspections]\npath = "inspections.parquet"\n',
    }
    return make_config(
        '[sources.complaints]\npath = "complaints.csv"\n' + blocks[first] + blocks[second],
        base=tmp_path,
    )


@pytest.mark.parametrize(
    ("first", "second"), [("receipts", "inspections"), ("inspections", "receipts")]
)
def test_load_all_reads_files_side_by_side_and_raises_the_first_error_in_config_order(
    tmp_path: Path, first: str, second: str
) -> None:
    cfg = _bad_and_good(tmp_path, first, second)
    with pytest.raises(HeaderError) as err:
        load_all(cfg)
    assert err.value.dataset == first
    assert f"{first}.parquet" in str(err.value)


def test_load_all_gives_what_loading_one_dataset_at_a_time_gives(sample_config_path: Path) -> None:
    if not sample_config_path.exists():
        pytest.skip("sample_data/ not generated yet")
    from qmskpi.config import load_config

    cfg = load_config(sample_config_path)
    assert sum(_concurrent(s) for s in cfg.sources.values()) > 1  # read side by side
    together = load_all(cfg, period="2026-10")
    assert list(together) == list(cfg.sources)
    for name, r in together.items():
        alone = load_dataset(cfg, name, period="2026-10")
        assert r.frame.equals(alone.frame), name
        assert r.rejects.equals(alone.rejects), name
        assert r.excluded.equals(alone.excluded), name
        assert (r.rows_in, r.sha256, r.files) == (alone.rows_in, alone.sha256, alone.files)
