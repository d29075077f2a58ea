"""qmskpi.sources.expressions: derived fields and the where condition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qmskpi.datasets import SOURCE_ROW
from qmskpi.errors import ConfigError
from qmskpi.sources import LoadedDataset, load_dataset
from sources.helpers import D, check_canonical, load_source, make_config


def test_one_column_feeds_two_fields_and_headerless_derive(tmp_path: Path) -> None:
    (tmp_path / "c.tsv").write_text(
        "C-1\t2026-10-01\tLeeds\tP-9\tY\nC-2\t2026-10-02\tYork\tP-8\tN\n", encoding="utf-8"
    )
    toml = """
[sources.complaints]
path = "c.tsv"
delimiter = "\\t"
has_header = false
positions = { complaint_id = 1, received_date = 2, site = 3, product = 4, customer = 4 }
constants = { category = "c", status = "open" }
[sources.complaints.derive]
severity = "CASE WHEN column_5 = 'Y' THEN 'major' ELSE 'minor' END"
"""
    r = load_source(toml, base=tmp_path)
    check_canonical(r)
    assert r.frame.select("product", "customer", "severity").rows() == [
        ("P-9", "P-9", "major"),
        ("P-8", "P-8", "minor"),
    ]
    # the same by header: one column named for two fields
    (tmp_path / "h.csv").write_text("id,date,MODEL,site\nC-1,2026-10-01,F-150,Leeds\n")
    toml = """
[sources.complaints]
path = "h.csv"
columns = { complaint_id = "id", received_date = "date", product = "MODEL", customer = "MODEL" }
constants = { category = "c", severity = "minor", status = "open" }
"""
    r = load_source(toml, base=tmp_path)
    check_canonical(r)
    assert r.frame.select("product", "customer").rows() == [("F-150", "F-150")]


def test_an_expression_that_fails_on_the_data_names_the_key(tmp_path: Path) -> None:
    toml = _VEHICLES.replace('product = "MODELTXT"', 'product = "CAST(MODELTXT AS INT)"')
    with pytest.raises(ConfigError, match=r"derive\.product.*cannot evaluate"):
        load_dataset(make_config(toml), "complaints")


_VEHICLES = """
[sources.complaints]
path = "vehicle_complaints.csv"
columns = { complaint_id = "ODINO", received_date = "LDATE", site = "STATE", description = "CDESCR" }
date_formats = { received_date = "%Y%m%d", closed_date = "%m/%d/%Y" }
constants = { category = "vehicle safety" }
ignore_columns = ["INJURED"]
where = "ODINO IS NOT NULL"
[sources.complaints.derive]
severity = "CASE WHEN CRASH = 'Y' OR FIRE = 'Y' THEN 'critical' ELSE 'minor' END"
status = "CASE WHEN COALESCE(CLOSED, RESOLVED) IS NULL THEN 'open' ELSE 'closed' END"
closed_date = "COALESCE(CLOSED, RESOLVED)"
customer = "MAKETXT || ' ' || MODELTXT"
product = "MODELTXT"
[sources.complaints.defaults]
customer = "unknown"
product = "unknown"
"""


def _vehicles(**kw: Any) -> LoadedDataset:
    config = make_config(_VEHICLES.replace('sites = ["Leeds", "York"]', ""))
    return load_dataset(config, "complaints", **kw)


def test_derived_fields_defaults_where_and_duplicates_on_a_vehicle_export() -> None:
    r = _vehicles()
    check_canonical(r)
    # 7 records: row 6 repeats row 3, row 7 has no ODINO (where), row 8 has an ISO date
    assert r.rows_in == 7
    assert r.frame.select(
        SOURCE_ROW, "complaint_id", "severity", "status", "customer", "product"
    ).rows() == [
        (2, "11590001", "critical", "open", "FORD F-150", "F-150"),  # crash
        (3, "11590002", "minor", "closed", "HONDA CIVIC", "CIVIC"),
        (4, "11590003", "critical", "closed", "unknown", "unknown"),  # fire; no model
        (5, "11590004", "minor", "closed", "FORD F-150", "F-150"),
    ]
    # a derived date is text first, then parsed with the field's own date format
    assert r.frame["closed_date"].to_list() == [
        None,
        D(2026, 10, 20),
        D(2026, 10, 28),
        D(2026, 10, 9),
    ]
    assert r.frame["site"].to_list() == ["OH", "CA", "Côte d'Ivoire", "Congo, DRC"]
    assert r.excluded.select(SOURCE_ROW, "rule").rows() == [(7, "where"), (6, "duplicate")]
    assert r.excluded_by == {"duplicate": 1, "where": 1}
    assert "ODINO IS NOT NULL" in r.excluded["message"][0]
    assert "row 3 of vehicle_complaints.csv" in r.excluded["message"][1]
    assert r.rejects.select(SOURCE_ROW, "rule", "value").rows() == [
        (8, "type:received_date", "2026-10-11")
    ]


def test_derive_sees_raw_text_before_value_maps_and_the_result_is_mapped_after() -> None:
    toml = _VEHICLES + '[sources.complaints.value_maps]\nseverity = { minor = "major" }\n'
    r = load_dataset(make_config(toml.replace('sites = ["Leeds", "York"]', "")), "complaints")
    check_canonical(r)
    # the map applies to the derived value ('minor' -> 'major'); 'critical' is untouched
    assert r.frame["severity"].to_list() == ["critical", "major", "critical", "major"]


def test_an_unknown_column_in_an_expression_names_the_key_and_suggests() -> None:
    toml = _VEHICLES.replace("CRASH = 'Y' OR", "CRSH = 'Y' OR")
    with pytest.raises(
        ConfigError,
        match=r"derive\.severity.*'CRSH' is not in vehicle_complaints"
        r"\.csv \(did you mean 'CRASH'\?\)",
    ):
        load_dataset(make_config(toml), "complaints")
    toml = _VEHICLES.replace('where = "ODINO IS NOT NULL"', 'where = "odino IS NOT NULL"')
    with pytest.raises(
        ConfigError, match=r"key 'sources\.complaints\.where'.*'odino'.*double quotes"
    ):
        load_dataset(make_config(toml), "complaints")


def test_a_where_that_is_not_a_condition_is_a_config_error() -> None:
    toml = _VEHICLES.replace('where = "ODINO IS NOT NULL"', 'where = "MAKETXT"')
    with pytest.raises(ConfigError, match=r"where.*not true/false"):
        load_dataset(make_config(toml), "complaints")


def test_derived_field_mapped_twice_is_refused() -> None:
    toml = _VEHICLES.replace(
        'constants = { category = "vehicle safety" }',
        'constants = { category = "x", product = "y" }',
    )
    with pytest.raises(ConfigError, match=r"'product' is mapped twice \(constants and derive\)"):
        load_dataset(make_config(toml), "complaints")


def test_a_default_must_parse_as_its_field() -> None:
    toml = _VEHICLES.replace(
        'customer = "unknown"\n', 'customer = "unknown"\nclosed_date = "soon"\n'
    )
    with pytest.raises(ConfigError, match=r"defaults\.closed_date.*'soon' is not a date"):
        load_dataset(make_config(toml), "complaints")


def test_where_applies_to_a_derived_field_and_before_type_checks(tmp_path: Path) -> None:
    (tmp_path / "visits.csv").write_text(
        "id,date,outcome\n"
        "V-1,2026-10-01,fail\n"
        "V-2,not a date,\n"  # a visit with no outcome is not a record: excluded, never parsed
        "V-3,2026-10-03,pass\n",
        encoding="utf-8",
    )
    toml = """
[sources.complaints]
path = "visits.csv"
columns = { complaint_id = "id", received_date = "date" }
constants = { site = "Leeds", customer = "c", product = "p", category = "inspection" }
where = "status = 'open' AND outcome IS NOT NULL"
[sources.complaints.derive]
status = "CASE WHEN outcome = 'fail' THEN 'open' ELSE 'closed' END"
severity = "'minor'"
"""
    r = load_source(toml, base=tmp_path)
    check_canonical(r)
    assert r.frame["complaint_id"].to_list() == ["V-1"]
    assert r.rejects.is_empty()
    assert r.excluded.select(SOURCE_ROW, "rule").rows() == [(3, "where"), (4, "where")]
