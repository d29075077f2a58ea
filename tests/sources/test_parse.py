"""qmskpi.sources.parse: dates (declared formats, never guessed), numbers, booleans, constants, site names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import polars as pl
import pytest

from qmskpi.config import from_dict
from qmskpi.datasets import SOURCE_ROW
from qmskpi.errors import ConfigError
from qmskpi.sources import load_dataset
from sources.helpers import D, check_canonical, check_ledger, load_source


def test_us_and_day_first_dates_are_declared_per_column_and_never_guessed() -> None:
    r = load_source(
        '[sources.complaints]\npath = "us_and_dayfirst_dates.csv"\n'
        'date_formats = { received_date = "%m/%d/%Y", closed_date = "%d/%m/%Y" }'
    )
    check_canonical(r)
    assert r.frame["complaint_id"].to_list() == ["C-101", "C-102"]
    assert r.frame["received_date"].to_list() == [D(2026, 10, 5), D(2025, 12, 31)]
    assert r.frame["closed_date"].to_list() == [D(2026, 10, 20), D(2026, 1, 2)]
    assert r.rejects.drop("file").rows() == [
        (
            4,
            "received_date",
            "25/10/2026",
            "type:received_date",
            "'25/10/2026' is not a date in format %m/%d/%Y",
        ),
        (
            5,
            "closed_date",
            "31/02/2026",
            "type:closed_date",
            "'31/02/2026' is not a date in format %d/%m/%Y",
        ),
    ]
    assert r.rejects["file"].unique().to_list() == ["us_and_dayfirst_dates.csv"]


def test_undeclared_date_column_accepts_iso_only() -> None:
    r = load_source('[sources.complaints]\npath = "us_and_dayfirst_dates.csv"')
    assert r.frame.is_empty()
    assert r.rejects.filter(pl.col("column") == "received_date")["message"][0] == (
        "'10/5/2026' is not a date in format %Y-%m-%d (no date_formats entry: ISO only)"
    )
    check_ledger(r)


def test_yyyymmdd_integers_and_placeholder_dates() -> None:
    r = load_source(
        '[sources.complaints]\npath = "yyyymmdd.csv"\n'
        'date_formats = { received_date = "%Y%m%d", closed_date = "%Y%m%d" }\n'
        'null_values = { closed_date = ["19010101", "9999"] }'
    )
    check_canonical(r)
    assert r.frame["received_date"].to_list() == [D(2026, 10, 5), D(2026, 10, 6), D(2026, 10, 7)]
    assert r.frame["closed_date"].to_list() == [D(2026, 10, 20), None, None]
    # seven digits are not guessed into a date
    assert r.rejects.select("source_row", "value", "message").rows() == [
        (5, "2026107", "'2026107' is not a date in format %Y%m%d")
    ]


def test_placeholder_dates_are_rejected_when_not_declared_null() -> None:
    r = load_source(
        '[sources.complaints]\npath = "yyyymmdd.csv"\n'
        'date_formats = { received_date = "%Y%m%d", closed_date = "%Y%m%d" }'
    )
    # 19010101 is a real date (kept); 9999 is not
    assert r.frame["closed_date"].to_list() == [D(2026, 10, 20), D(1901, 1, 1)]
    assert r.rejects.select("source_row", "column", "value").rows() == [
        (4, "closed_date", "9999"),
        (5, "received_date", "2026107"),
    ]
    check_ledger(r)


def test_booleans_use_declared_true_false_values_case_insensitively() -> None:
    r = load_source(
        """
[sources.suppliers]
path = "suppliers_flags.csv"
true_values = ["Y"]
false_values = ["N"]
columns = { supplier_id = "Supplier Code", name = "Supplier Name", category = "Commodity", critical = "Critical?", approval_status = "Approval", last_evaluation_date = "Last Eval", next_evaluation_due = "Next Eval" }
value_maps = { approval_status = { Approved = "approved", Conditional = "conditional" } }
""",
        "suppliers",
    )
    check_canonical(r)
    assert r.frame.select("supplier_id", "critical", "approval_status").rows() == [
        ("S-1", True, "approved"),
        ("S-2", False, "conditional"),
    ]
    assert r.rejects["message"].to_list() == [
        "'maybe' is not a true value (true, y) or a false value (false, n)"
    ]


def test_date_format_with_a_time_part_keeps_the_date(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(
        "complaint_id,received_date,site,customer,product,category,severity,status\n"
        "C-1,05/10/2026 14:32,Leeds,Acme,P-1,packaging,minor,open\n"
        "C-2,05/10/2026,Leeds,Acme,P-1,packaging,minor,open\n"
    )
    r = load_source(
        '[sources.complaints]\npath = "x.csv"\ndate_formats = { received_date = "%d/%m/%Y %H:%M" }',
        base=tmp_path,
    )
    assert r.frame["received_date"].to_list() == [D(2026, 10, 5)]
    assert r.rejects[SOURCE_ROW].to_list() == [3]


def test_bad_constant_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=re.escape("sources.complaints.constants.units_affected")):
        load_source(
            '[sources.complaints]\npath = "complaints_basic.csv"\nconstants = { units_affected = "many" }'
        )


def test_site_names_follow_one_rule_with_or_without_a_site_list(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(
        "complaint_id,received_date,site,customer,product,category,severity,status\n"
        "C-1,2026-10-01,Côte d'Ivoire,a,p,c,minor,open\n"
        "C-2,2026-10-01,Plant/../etc,a,p,c,minor,open\n"
        "C-3,2026-10-01,東京,a,p,c,minor,open\n",
        encoding="utf-8",
    )
    toml = '[sources.complaints]\npath = "c.csv"'
    data = tomllib.loads(f'[organisation]\nname = "T"\n{toml}')
    r = load_dataset(from_dict(data, path=tmp_path / "qmskpi.toml"), "complaints")
    check_canonical(r)
    assert r.frame["site"].to_list() == ["Côte d'Ivoire", "東京"]
    assert r.rejects.select(SOURCE_ROW, "rule").rows() == [(3, "type:site")]
    assert "is not a site name" in r.rejects["message"][0]
    # with a site list, the names in it obey the same rule, and the contract's site_known
    # rule sets aside any other value (the reader lets it through to be named there)
    sites = 'sites = ["Côte d\'Ivoire", "東京"]'
    data = tomllib.loads(f'[organisation]\nname = "T"\n{sites}\n{toml}')
    r = load_dataset(from_dict(data, path=tmp_path / "qmskpi.toml"), "complaints")
    check_canonical(r)
    assert r.rejects.is_empty()
    assert r.frame["site"].to_list() == ["Côte d'Ivoire", "Plant/../etc", "東京"]
