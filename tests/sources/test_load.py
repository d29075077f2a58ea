"""qmskpi.sources: reading files and queries, mapping, header checks, quarantine.

Fixture files live in ``tests/fixtures/sources/`` (byte-exact: see the
``.gitattributes`` there); workbooks, Parquet files and databases are made in
``tmp_path``. The PostgreSQL test needs ``QMSKPI_TEST_PG_URL`` (set by ``make test``).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import os
import re
import tempfile
import tomllib
import uuid
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmskpi import sources
from qmskpi.config import Config, from_dict
from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.errors import ConfigError, HeaderError, SourceError
from qmskpi.sources import REJECT_SCHEMA, LoadedDataset, load_all, load_dataset, sql_window

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
D = dt.date


def _config(toml: str, base: Path = FIX) -> Config:
    data = tomllib.loads('[organisation]\nname = "Test Ltd"\nsites = ["Leeds", "York"]\n' + toml)
    return from_dict(data, path=base / "qmskpi.toml")


def _load(toml: str, dataset: str = "complaints", base: Path = FIX, **kw: Any) -> LoadedDataset:
    return load_dataset(_config(toml, base), dataset, **kw)


def _ledger(r: LoadedDataset) -> None:
    """rows_in = used + quarantined + excluded, each counted independently of the loader."""
    rejected = r.rejects.select("file", SOURCE_ROW).unique().height
    assert r.rows_in == r.frame.height + rejected + r.excluded.height
    assert r.rows_in == r.frame.height + r.rows_rejected + r.rows_excluded
    assert r.excluded.schema == pl.Schema(REJECT_SCHEMA)
    # no record is both excluded and rejected, and none is excluded twice
    out = r.excluded.select("file", SOURCE_ROW)
    assert out.unique().height == out.height
    assert out.join(r.rejects.select("file", SOURCE_ROW), on=["file", SOURCE_ROW]).is_empty()


def _canonical(r: LoadedDataset, *, glob: bool = False) -> None:
    ds = DATASETS[r.dataset]
    schema = {**ds.schema, SOURCE_ROW: pl.Int64()}
    if glob:
        schema[sources.SOURCE_FILE] = pl.String()
    assert r.frame.schema == pl.Schema(schema)
    assert r.rejects.schema == pl.Schema(REJECT_SCHEMA)
    _ledger(r)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- CSV basics


def test_canonical_csv_loads_with_canonical_dtypes_and_source_rows() -> None:
    r = _load('[sources.complaints]\npath = "complaints_basic.csv"')
    _canonical(r)
    assert r.origin == "complaints_basic.csv"
    assert r.sha256 == _sha(FIX / "complaints_basic.csv")
    assert r.rows_in == 3
    assert r.rejects.is_empty()
    assert r.frame[SOURCE_ROW].to_list() == [2, 3, 4]
    assert r.frame["received_date"].to_list() == [D(2026, 10, 1), D(2026, 10, 3), D(2026, 10, 5)]
    assert r.frame["closed_date"].to_list() == [D(2026, 10, 15), None, None]
    # values are trimmed; "12.0" is a whole number; blanks are null
    assert r.frame["customer"].to_list() == ["Acme Retail", "Beta Ltd", "Acme Retail"]
    assert r.frame["units_affected"].to_list() == [3, None, 12]
    assert r.frame["description"].to_list() == ["Box dented", "Wrong label", None]
    assert r.files == (sources.SourceFile("complaints_basic.csv", r.sha256, 3),)


def test_optional_fields_absent_from_the_file_are_null_columns() -> None:
    r = _load('[sources.complaints]\npath = "cp1252.csv"\nencoding = "cp1252"')
    _canonical(r)
    for name in ("closed_date", "root_cause", "capa_id", "units_affected"):
        assert r.frame[name].null_count() == 1
    assert r.frame["closed_date"].dtype == pl.Date
    assert r.frame["units_affected"].dtype == pl.Int64


def test_erp_export_with_title_block_footer_semicolons_and_value_maps() -> None:
    r = _load(
        """
[sources.complaints]
path = "erp_title_block.csv"
delimiter = ";"
header_row = 4
skip_footer_rows = 1
date_formats = { received_date = "%d/%m/%Y", closed_date = "%d/%m/%Y" }
columns = { complaint_id = "Complaint No", received_date = "Date Received", closed_date = "Date Closed", site = "Plant", customer = "Customer Name", product = "Item", category = "Complaint Type", severity = "Severity", status = "Status", description = "Details" }
[sources.complaints.value_maps]
status = { Closed = "closed", "Closed - verified" = "closed", "In progress" = "open", New = "open" }
severity = { Minor = "minor", Major = "major", Critical = "critical" }
"""
    )
    _canonical(r)
    assert r.rows_in == 4  # title rows, header and the "Total" footer are not records
    assert r.frame[SOURCE_ROW].to_list() == [5, 6, 7, 8]
    assert r.frame["complaint_id"].to_list() == ["CC-1001", "CC-1002", "CC-1003", "CC-1004"]
    assert r.frame["received_date"].to_list() == [
        D(2026, 10, 1),
        D(2026, 10, 3),
        D(2026, 10, 12),
        D(2026, 10, 28),
    ]
    assert r.frame["status"].to_list() == ["closed", "open", "open", "closed"]
    assert r.frame["severity"].to_list() == ["minor", "major", "critical", "minor"]
    assert r.frame["description"][2] == "Leak; see photo"  # quoted delimiter


def test_header_row_beyond_the_file_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="header row 40 not found: the file has only 4 rows"):
        _load('[sources.complaints]\npath = "complaints_basic.csv"\nheader_row = 40')


def test_us_and_day_first_dates_are_declared_per_column_and_never_guessed() -> None:
    r = _load(
        '[sources.complaints]\npath = "us_and_dayfirst_dates.csv"\n'
        'date_formats = { received_date = "%m/%d/%Y", closed_date = "%d/%m/%Y" }'
    )
    _canonical(r)
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
    r = _load('[sources.complaints]\npath = "us_and_dayfirst_dates.csv"')
    assert r.frame.is_empty()
    assert r.rejects.filter(pl.col("column") == "received_date")["message"][0] == (
        "'10/5/2026' is not a date in format %Y-%m-%d (no date_formats entry: ISO only)"
    )
    _ledger(r)


def test_raise_mode_names_file_column_row_value_and_format() -> None:
    with pytest.raises(SourceError) as info:
        _load(
            '[sources.complaints]\npath = "us_and_dayfirst_dates.csv"\n'
            'date_formats = { received_date = "%m/%d/%Y", closed_date = "%d/%m/%Y" }',
            on_bad_value="raise",
        )
    err = info.value
    assert (err.path, err.dataset, err.column, err.row) == (
        "us_and_dayfirst_dates.csv",
        "complaints",
        "received_date",
        4,
    )
    assert str(err) == (
        "us_and_dayfirst_dates.csv, dataset 'complaints', column 'received_date', row 4: "
        "'25/10/2026' is not a date in format %m/%d/%Y"
    )


_ERP = """
[sources.complaints]
path = "erp_title_block.csv"
delimiter = ";"
header_row = 4
skip_footer_rows = 1
date_formats = { received_date = "%d/%m/%Y", closed_date = "%d/%m/%Y" }
columns = { complaint_id = "Complaint No", received_date = "Date Received", closed_date = "Date Closed", site = "Plant", customer = "Customer Name", product = "Item", category = "Complaint Type", severity = "Severity", status = "Status", description = "Details" }
"""


def test_raise_mode_names_the_file_header_when_it_differs() -> None:
    # received_date wrongly declared month-first: 01/10, 03/10 and 12/10 parse (as
    # January, March, December); 28/10/2026 in row 8 cannot.
    month_first = _ERP.replace('received_date = "%d/%m/%Y"', 'received_date = "%m/%d/%Y"')
    with pytest.raises(SourceError) as info:
        _load(month_first, on_bad_value="raise")
    assert str(info.value) == (
        "erp_title_block.csv, dataset 'complaints', column 'received_date', row 8: "
        "'28/10/2026' is not a date in format %m/%d/%Y (file column 'Date Received')"
    )


def test_yyyymmdd_integers_and_placeholder_dates() -> None:
    r = _load(
        '[sources.complaints]\npath = "yyyymmdd.csv"\n'
        'date_formats = { received_date = "%Y%m%d", closed_date = "%Y%m%d" }\n'
        'null_values = { closed_date = ["19010101", "9999"] }'
    )
    _canonical(r)
    assert r.frame["received_date"].to_list() == [D(2026, 10, 5), D(2026, 10, 6), D(2026, 10, 7)]
    assert r.frame["closed_date"].to_list() == [D(2026, 10, 20), None, None]
    # seven digits are not guessed into a date
    assert r.rejects.select("source_row", "value", "message").rows() == [
        (5, "2026107", "'2026107' is not a date in format %Y%m%d")
    ]


def test_placeholder_dates_are_rejected_when_not_declared_null() -> None:
    r = _load(
        '[sources.complaints]\npath = "yyyymmdd.csv"\n'
        'date_formats = { received_date = "%Y%m%d", closed_date = "%Y%m%d" }'
    )
    # 19010101 is a real date (kept); 9999 is not
    assert r.frame["closed_date"].to_list() == [D(2026, 10, 20), D(1901, 1, 1)]
    assert r.rejects.select("source_row", "column", "value").rows() == [
        (4, "closed_date", "9999"),
        (5, "received_date", "2026107"),
    ]
    _ledger(r)


def test_value_maps_and_thousands_separators() -> None:
    r = _load(
        """
[sources.inspections]
path = "inspections_value_maps.csv"
[sources.inspections.value_maps]
result = { "-1" = "pass", "0" = "fail" }
stage = { "Incoming Inspection" = "incoming", "In-process" = "in_process", Final = "final" }
""",
        "inspections",
    )
    _canonical(r)
    assert r.frame["stage"].to_list() == ["incoming", "in_process", "final"]
    assert r.frame["result"].to_list() == ["pass", "fail", "pass"]
    assert r.frame["qty_inspected"].to_list() == [50, 50, 40]
    assert r.rejects.drop("file").rows() == [
        (5, "qty_inspected", "1,234", "type:qty_inspected", "'1,234' is not a whole number")
    ]


def test_tab_separated_file_without_header_maps_by_position_with_constants() -> None:
    r = _load(
        """
[sources.complaints]
path = "no_header.tsv"
delimiter = "\\t"
has_header = false
positions = { complaint_id = 1, received_date = 2, customer = 3, product = 4, category = 5, severity = 6, status = 7 }
date_formats = { received_date = "%d/%m/%Y" }
constants = { site = "Leeds" }
value_maps = { status = { Open = "open", Closed = "closed" } }
"""
    )
    _canonical(r)
    assert r.frame[SOURCE_ROW].to_list() == [1, 2]
    assert r.frame.select("complaint_id", "received_date", "site", "status").rows() == [
        ("C-301", D(2026, 10, 5), "Leeds", "open"),
        ("C-302", D(2026, 10, 6), "Leeds", "closed"),
    ]


def test_no_header_needs_a_position_for_every_required_field() -> None:
    with pytest.raises(HeaderError, match="no position for required field\\(s\\) 'site'"):
        _load(
            '[sources.complaints]\npath = "no_header.tsv"\ndelimiter = "\\t"\nhas_header = false\n'
            "positions = { complaint_id = 1, received_date = 2, customer = 3, product = 4, "
            "category = 5, severity = 6, status = 7 }"
        )


def test_position_beyond_the_last_column_is_a_header_error() -> None:
    with pytest.raises(
        HeaderError, match=re.escape("positions.site = 12, but the file has 8 column")
    ) as info:
        _load(
            '[sources.complaints]\npath = "no_header.tsv"\ndelimiter = "\\t"\nhas_header = false\n'
            "positions = { complaint_id = 1, received_date = 2, customer = 3, product = 4, "
            "category = 5, severity = 6, status = 7, site = 12 }"
        )
    assert info.value.column == "site"


def test_cr_only_line_endings_and_quoted_line_breaks() -> None:
    assert b"\r" in (FIX / "cr_only.csv").read_bytes()
    assert b"\n" not in (FIX / "cr_only.csv").read_bytes()
    r = _load('[sources.complaints]\npath = "cr_only.csv"')
    _canonical(r)
    assert r.frame[SOURCE_ROW].to_list() == [2, 3]
    assert r.frame["description"].to_list() == ["line one\nline two", "plain"]


def test_crlf_multiline_fields_count_as_one_row_and_formula_text_is_kept_verbatim() -> None:
    assert b"\r\n" in (FIX / "multiline_formulas.csv").read_bytes()
    r = _load('[sources.complaints]\npath = "multiline_formulas.csv"')
    _canonical(r)
    assert r.frame[SOURCE_ROW].to_list() == [2, 3, 4]
    assert r.frame["description"].to_list() == [
        'Customer wrote:\n"arrived wet"\n\nsee photos',
        "+cmd|' /C calc'!A0",
        "-2+3",
    ]
    assert r.frame["customer"].to_list() == [
        "Acme",
        '=HYPERLINK("http://evil.example","click")',
        "@SUM(1+1)",
    ]
    assert r.frame["root_cause"].to_list() == [None, None, "=1+1"]


def test_not_captured_in_date_and_number_columns_is_quarantined_with_the_rule() -> None:
    r = _load('[sources.complaints]\npath = "not_captured.csv"')
    _canonical(r)
    assert r.rows_in == 5
    assert r.frame["complaint_id"].to_list() == ["C-601", "C-605"]
    assert r.rejects.select("source_row", "column", "value", "rule").rows() == [
        (3, "received_date", "Not captured", "type:received_date"),
        (3, "units_affected", "Not captured", "type:units_affected"),
        (4, "units_affected", "1,234", "type:units_affected"),
        (5, "units_affected", "12.5", "type:units_affected"),
    ]
    assert r.rejects["message"][1] == "'Not captured' is not a whole number"
    assert r.rows_rejected == 3


def test_na_values_make_not_captured_a_null() -> None:
    r = _load('[sources.complaints]\npath = "not_captured.csv"\nna_values = ["", "Not captured"]')
    assert r.frame["complaint_id"].to_list() == ["C-601", "C-602", "C-605"]
    assert r.frame["received_date"][1] is None
    _ledger(r)


def test_value_map_to_empty_string_means_null() -> None:
    r = _load(
        '[sources.complaints]\npath = "not_captured.csv"\n'
        'value_maps = { units_affected = { "Not captured" = "" } }'
    )
    assert r.rejects.filter(pl.col(SOURCE_ROW) == 3)["column"].to_list() == ["received_date"]


# --------------------------------------------------------------------------- trimming


def test_every_character_polars_trims_has_edge_bytes_outside_printable_ascii() -> None:
    """The cheap checks: whitespace anywhere (``_WHITE_SPACE``), a value's first byte (blank).

    Exhaustive over every Unicode scalar value: the characters ``str.strip_chars()``
    removes are the Unicode White_Space set, listed by hand, and exactly the
    characters the loader looks for before its exact trim check; each starts
    (and ends) with a UTF-8 byte outside 0x21-0x7E, so a value whose first byte is
    printable ASCII is not blank.
    """
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    padded = pl.Series([f"{c}x{c}" for c in chars])
    stripped = [
        c for c, changed in zip(chars, padded.str.strip_chars() != padded, strict=True) if changed
    ]
    white_space = [*"\t\n\x0b\x0c\r ", "\x85", "\xa0", "\u1680"]
    white_space += [chr(c) for c in range(0x2000, 0x200B)]
    white_space += ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
    assert stripped == white_space
    assert white_space == sources._WHITE_SPACE
    for c in stripped:
        encoded = c.encode("utf-8")
        assert not 0x21 <= encoded[0] <= 0x7E
        assert not 0x21 <= encoded[-1] <= 0x7E


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=1, max_size=8))
def test_cheap_checks_agree_with_the_full_trim(values: list[str | None]) -> None:
    frame = pl.DataFrame({"v": pl.Series(values, dtype=pl.String)})
    changes = bool((frame["v"].str.strip_chars() != frame["v"]).any())
    nulls = {"v": [""]}
    assert sources._text_facts(frame, ["v"], nulls)["trim:v"] == changes
    assert sources._may_need_trim(frame, ["v"]) == ({"v"} if changes else set())
    # blank (null, empty or whitespace only) exactly where the full trim leaves nothing
    full = frame["v"].is_null() | (frame["v"].str.strip_chars() == "")
    assert sources._blank_mask(frame["v"]).to_list() == full.to_list()


def _load_with_every_text_step(
    toml: str, base: Path, monkeypatch: pytest.MonkeyPatch
) -> LoadedDataset:
    """The load with every text column trimmed and checked for null words and blanks."""
    with monkeypatch.context() as m:
        m.setattr(
            sources, "_text_facts", lambda frame, names, nulls: dict.fromkeys(
                [f"{k}:{n}" for n in names for k in ("trim", "nulls", "blank")], True
            )
        )  # fmt: skip
        return _load(toml, base=base)


def test_values_are_trimmed_the_same_on_the_cheap_path_and_the_full_trim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbsp, ideo = "\u00a0", "\u3000"
    table = pa.table(
        {
            "complaint_id": ["C-1", "C-2", "C-3", "C-4", "C-5", "C-6"],
            "received_date": ["2026-10-01"] * 6,
            "site": ["Leeds", f"{nbsp}York{nbsp}", "Leeds", "York\t", " Leeds", "York"],
            "customer": ["A", "B", "C", "D", "E", "F"],  # nothing to trim here
            "product": ["P", "P", "P", "P", "P", "P"],
            "category": ["c", "c", "c", "c", "c", "c"],
            "severity": ["minor"] * 6,
            "status": ["open"] * 6,
            "description": ["Box  dented", " ", None, f"{ideo}Wet{ideo}", "", "é"],
            "root_cause": ["wet é", "\u00e9t\u00e9 ", None, "x", "y", "z"],
        }
    )
    pq.write_table(table, tmp_path / "c.parquet")
    toml = '[sources.complaints]\npath = "c.parquet"'
    fast = _load(toml, base=tmp_path)
    full = _load_with_every_text_step(toml, tmp_path, monkeypatch)  # the full trim, as before
    assert fast.frame.equals(full.frame)
    _canonical(fast)
    assert fast.frame["site"].to_list() == ["Leeds", "York", "Leeds", "York", "Leeds", "York"]
    assert fast.frame["customer"].to_list() == ["A", "B", "C", "D", "E", "F"]
    # inner spaces kept; whitespace-only and empty become null (a blank cell)
    assert fast.frame["description"].to_list() == ["Box  dented", None, None, "Wet", None, "é"]
    assert fast.frame["root_cause"].to_list() == ["wet é", "été", None, "x", "y", "z"]


def _column_of_few(n: int, common: list[str | None], rare: dict[int, str]) -> list[str | None]:
    """``n`` values cycling through ``common``, with ``rare`` values at the given rows."""
    values = [common[k % len(common)] for k in range(n)]
    for row, value in rare.items():
        values[row] = value
    return values


def test_columns_of_few_values_are_checked_through_their_values_with_the_same_answers() -> None:
    n = 50_000  # sampled every 5th row: the rare values below (rows not divisible by 5) are not
    columns = {
        "edge": _column_of_few(n, ["North", "South", "East"], {3: " North"}),
        "inner": _column_of_few(n, ["North East", "South"], {}),  # whitespace, none at an edge
        "word": _column_of_few(n, ["open", "closed", None], {7: "n/a"}),
        "empty": _column_of_few(n, ["minor", "major"], {11: ""}),
        "wide": _column_of_few(n, [f"code-{k}" for k in range(9)], {13: "code-1\u3000"}),
        "clean": _column_of_few(n, [f"code-{k}" for k in range(9)], {17: "code-77"}),
        "ids": [f"I-{k}" for k in range(n - 1)] + [" I-x"],  # many values: every one checked
        "nulls": _column_of_few(n, [None], {}),
    }
    frame = pl.DataFrame({k: pl.Series(v, dtype=pl.String) for k, v in columns.items()})
    names = list(columns)
    nulls = {k: ["", "n/a"] for k in names}
    few = sources._few_values(frame, names)
    assert set(few) == set(names) - {"ids"}  # the fast path is the one under test
    for name, values in few.items():  # every distinct value is among those checked
        assert set(values.to_list()) == set(columns[name]) - {None}
    found = sources._text_facts(frame, names, nulls)
    assert found == sources._value_facts_of(frame, names, nulls)  # every value, as before
    assert [k for k in names if found[f"trim:{k}"]] == ["edge", "wide", "ids"]
    assert [k for k in names if found[f"nulls:{k}"]] == ["word", "empty"]
    assert [k for k in names if found[f"blank:{k}"]] == ["empty"]


@pytest.mark.parametrize("dictionary", [True, False])
def test_a_rare_value_to_trim_in_a_column_of_few_values_is_trimmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dictionary: bool
) -> None:
    n = 45_000  # 10,000 rows a row group; the values to trim lie in one row group only
    site = _column_of_few(n, ["Leeds", "York"], {20_001: " York", 20_003: "Leeds\t"})
    status = _column_of_few(n, ["open", "closed"], {30_002: "n/a"})
    table = pa.table(
        {
            "complaint_id": [f"C-{k}" for k in range(n)],
            "received_date": ["2026-10-01"] * n,
            "site": site,
            "customer": _column_of_few(n, ["A", "B"], {}),
            "product": ["P"] * n,
            "category": ["c"] * n,
            "severity": _column_of_few(n, ["minor", "major"], {}),
            "status": status,
        }
    )
    pq.write_table(table, tmp_path / "c.parquet", row_group_size=10_000, use_dictionary=dictionary)
    toml = '[sources.complaints]\npath = "c.parquet"\nnull_values = { status = ["n/a"] }'
    fast = _load(toml, base=tmp_path)
    full = _load_with_every_text_step(toml, tmp_path, monkeypatch)
    assert fast.frame.equals(full.frame)
    sites = fast.frame["site"]
    assert (sites[20_001], sites[20_003]) == ("York", "Leeds")
    # rows alternate Leeds (even) and York (odd); row 20,003 was York, now Leeds
    assert sites.value_counts().sort("site").rows() == [("Leeds", 22_501), ("York", 22_499)]
    assert fast.frame["status"][30_002] is None
    assert fast.frame["status"].null_count() == 1
    assert fast.rows_in == fast.frame.height == n


def _load_as_text(toml: str, base: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedDataset:
    """The load with every number cell read as text and parsed by the text path, as before."""
    with monkeypatch.context() as m:
        m.setattr(sources, "_csv_numbers", lambda headers, src, ds: {})
        m.setattr(sources, "_text_numbers", lambda s, kind: None)
        return _load(toml, base=base)


def _csv_dtypes(path: Path) -> list[pl.DataType]:
    """How the CSV reader returned each column of a complaints file (before any mapping)."""
    src = _config(f'[sources.complaints]\npath = "{path.name}"', path.parent).sources["complaints"]
    table = sources._read_csv(path.read_bytes(), src, DATASETS["complaints"], path.name)
    return [c.dtype for c in table.columns if isinstance(c, pl.Series)]


_NUMBER_CELLS = st.text(alphabet=list("0123456789+-.eE _xn/a\t "), max_size=5) | st.sampled_from(
    ["inf", "NaN", "1e400", "99999999999999999999", "9223372036854775808", "1_0", "0x1", '""']
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(_NUMBER_CELLS, _NUMBER_CELLS), min_size=1, max_size=4))
def test_csv_numbers_read_by_polars_equal_the_text_path_cell_by_cell(
    tmp_path_factory: pytest.TempPathFactory, cells: list[tuple[str, str]]
) -> None:
    """Whatever polars' CSV reader accepts as a number, the text path reads to the same value."""
    base = tmp_path_factory.mktemp("numbers")
    _numbers_csv(base / "c.csv", [u for u, _ in cells], [c for _, c in cells])
    toml = '[sources.complaints]\npath = "c.csv"'
    typed = _load(toml, base=base)
    with pytest.MonkeyPatch.context() as m:
        text = _load_as_text(toml, base, m)
    assert typed.frame.equals(text.frame)
    assert typed.rejects.equals(text.rejects)
    assert typed.rows_in == text.rows_in


def _numbers_csv(path: Path, units: list[str], cost: list[str]) -> None:
    head = "complaint_id,received_date,site,customer,product,category,severity,status,"
    lines = [head + "units_affected,cost"]
    for i, (u, c) in enumerate(zip(units, cost, strict=True)):
        lines.append(f"C-{i + 1},2026-10-01,Leeds,A,P,c,minor,open,{u},{c}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("units", "cost", "want_units", "want_cost", "want_rejects"),
    [
        # plain numbers: read as numbers by polars' CSV reader (a missing cell is null)
        (
            ["+5", "05", "-0", ""],
            [".5", "1e3", "+2.25", ""],
            [5, 5, 0, None],
            [0.5, 1000.0, 2.25, None],
            [],
        ),
        # a cell the number read refuses sends the columns through the text path, as before
        (
            ["12.0", " 7 ", '""', "n/a"],
            ["1.5", "inf", " 3 ", "x"],
            [12, None],  # rows 2 and 4; rows 3 and 5 hold a bad value
            [1.5, 3.0],
            [
                (3, "cost", "inf", "'inf' is not a number"),
                (5, "units_affected", "n/a", "'n/a' is not a whole number"),
                (5, "cost", "x", "'x' is not a number"),
            ],
        ),
    ],
)
def test_csv_numbers_read_in_one_pass_equal_the_text_path(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    units: list[str],
    cost: list[str],
    want_units: list[int | None],
    want_cost: list[float | None],
    want_rejects: list[tuple[int, str, str, str]],
) -> None:
    _numbers_csv(tmp_path / "c.csv", units, cost)
    toml = '[sources.complaints]\npath = "c.csv"'
    fast = _load(toml, base=tmp_path)
    text = _load_as_text(toml, tmp_path, monkeypatch)
    _canonical(fast)
    assert fast.frame.equals(text.frame)
    assert fast.rejects.equals(text.rejects)
    plain = not want_rejects  # the first case is read as numbers indeed
    want: list[pl.DataType] = [pl.Int64(), pl.Float64()] if plain else [pl.String()] * 2
    assert _csv_dtypes(tmp_path / "c.csv")[-2:] == want
    assert fast.frame["units_affected"].to_list() == want_units
    assert fast.frame["cost"].to_list() == want_cost
    assert fast.rejects.select(SOURCE_ROW, "column", "value", "message").rows() == want_rejects


# --------------------------------------------------------------------------- surrogate keys

_NO_ID = (
    '[sources.complaints]\npath = "no_id.csv"\nsurrogate_key = true\nconstants = { site = "Leeds" }'
)


def test_surrogate_key_is_stable_and_an_identical_row_is_a_duplicate(tmp_path: Path) -> None:
    r1 = _load(_NO_ID)
    r2 = _load(_NO_ID)
    _canonical(r1)
    ids = r1.frame["complaint_id"].to_list()
    assert ids == r2.frame["complaint_id"].to_list()
    assert all(re.fullmatch(r"sk-[0-9a-f]{16}", i) for i in ids)
    assert ids[1] != ids[0]
    # row 4 repeats row 2: kept once, counted as a duplicate, not given a second id
    assert r1.frame[SOURCE_ROW].to_list() == [2, 3]
    assert r1.excluded.select(SOURCE_ROW, "rule").rows() == [(4, "duplicate")]
    assert "row 2 of no_id.csv" in r1.excluded["message"][0]
    # the key comes from content, not position: reorder the rows and the ids follow them
    lines = (FIX / "no_id.csv").read_text().splitlines(keepends=True)
    (tmp_path / "no_id.csv").write_text(lines[0] + lines[2] + lines[1] + lines[3])
    r3 = _load(_NO_ID, base=tmp_path)
    assert r3.frame["complaint_id"].to_list() == [ids[1], ids[0]]
    assert r3.sha256 != r1.sha256
    # drop_duplicates = false keeps both copies, told apart by -2
    r4 = _load(_NO_ID + "\ndrop_duplicates = false")
    _canonical(r4)
    assert r4.frame["complaint_id"].to_list() == [ids[0], ids[1], ids[0] + "-2"]


def test_missing_id_column_hints_at_surrogate_key() -> None:
    with pytest.raises(HeaderError, match=r"missing column 'complaint_id'.*surrogate_key = true"):
        _load('[sources.complaints]\npath = "no_id.csv"\nconstants = { site = "Leeds" }')


def test_surrogate_key_needs_a_single_column_key() -> None:
    with pytest.raises(ConfigError, match="keyed by \\(site, product, month\\)"):
        _load('[sources.shipments]\npath = "no_id.csv"\nsurrogate_key = true', "shipments")


# --------------------------------------------------------------------------- encodings


def test_cp1252_file() -> None:
    r = _load('[sources.complaints]\npath = "cp1252.csv"\nencoding = "cp1252"')
    assert r.frame["customer"].to_list() == ["Société Générale"]
    assert r.frame["description"].to_list() == ["Müller – 5 € short"]


def test_cp1252_read_as_utf8_suggests_the_encoding() -> None:
    with pytest.raises(SourceError, match=r'line 2\) is not valid utf-8.*encoding = "cp1252"'):
        _load('[sources.complaints]\npath = "cp1252.csv"')


def _big_complaints_csv(n: int) -> list[str]:
    head = "complaint_id,received_date,site,customer,product,category,severity,status"
    return [head] + [f"C-{i:06d},2026-10-01,Leeds,Acme,P,c,minor,open" for i in range(n)]


def test_a_bad_byte_far_into_a_large_utf8_file_names_its_offset_and_line(tmp_path: Path) -> None:
    # 20,000 rows (~850 KB): the bad byte lies far past the header rows decoded up front
    lines = _big_complaints_csv(20_000)
    lines[15_000] = lines[15_000].replace("Acme", "Acm\xe9")
    data = ("\n".join(lines) + "\n").encode("cp1252")
    (tmp_path / "c.csv").write_bytes(data)
    offset = data.index(b"\xe9")
    with pytest.raises(
        SourceError, match=rf"byte 0xe9 at offset {offset} \(line 15001\) is not valid utf-8"
    ):
        _load('[sources.complaints]\npath = "c.csv"', base=tmp_path)


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_quoted_field_over_two_lines_in_a_large_file_stays_one_record(
    tmp_path: Path, eol: str
) -> None:
    lines = _big_complaints_csv(20_000)
    lines[12_000] = lines[12_000].replace(",Acme,", ',"Acme' + eol + 'Widgets",')
    (tmp_path / "c.csv").write_bytes((eol.join(lines) + eol).encode("utf-8"))
    r = _load('[sources.complaints]\npath = "c.csv"', base=tmp_path)
    _canonical(r)
    assert r.rows_in == 20_000
    assert r.frame.filter(pl.col(SOURCE_ROW) == 12_001)["customer"].to_list() == ["Acme\nWidgets"]
    # the record after it keeps the row number a spreadsheet shows
    assert r.frame.filter(pl.col(SOURCE_ROW) == 12_002)["complaint_id"].to_list() == ["C-012000"]


def test_bom_file_reads_with_utf8_sig() -> None:
    r = _load('[sources.complaints]\npath = "bom.csv"\nencoding = "utf-8-sig"')
    assert r.frame["complaint_id"].to_list() == ["C-801"]


@pytest.mark.parametrize(("encoding", "residue"), [("utf-8", "\\\\ufeff"), ("cp1252", "ï»¿")])
def test_bom_residue_is_a_header_error_suggesting_utf8_sig(encoding: str, residue: str) -> None:
    with pytest.raises(HeaderError, match=f"residue '{residue}'.*encoding = \"utf-8-sig\""):
        _load(f'[sources.complaints]\npath = "bom.csv"\nencoding = "{encoding}"')


def test_bom_left_inside_a_header_name_is_caught(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("complaint_id,\ufeffreceived_date\nC-1,2026-10-01\n")
    with pytest.raises(HeaderError, match="byte-order-mark residue"):
        _load('[sources.complaints]\npath = "x.csv"\nignore_columns = ["*"]', base=tmp_path)


# --------------------------------------------------------------------------- header errors


def test_duplicate_header() -> None:
    with pytest.raises(HeaderError) as info:
        _load('[sources.complaints]\npath = "duplicate_header.csv"')
    assert info.value.column == "customer"
    assert "duplicate header 'customer' (columns 4, 9)" in str(info.value)
    assert str(info.value).startswith("duplicate_header.csv, dataset 'complaints'")


def test_duplicate_of_an_ignored_column_is_fine(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(
        "complaint_id,received_date,site,customer,product,category,severity,status,Notes,Notes\n"
        "C-1,2026-10-01,Leeds,Acme,P-1,packaging,minor,open,a,b\n"
    )
    r = _load('[sources.complaints]\npath = "x.csv"\nignore_columns = ["Notes"]', base=tmp_path)
    assert r.frame.height == 1


def test_blank_header() -> None:
    with pytest.raises(HeaderError, match="column 4 has a blank header") as info:
        _load('[sources.complaints]\npath = "blank_header.csv"')
    assert info.value.column == "#4"


_EMPTY_COLUMNS_CSV = (
    ",complaint_id,received_date,,site,customer,product,category,severity,status,\n"
    ",C-1,2026-10-01,,Leeds,Acme,P-1,packaging,minor,open,\n"
    ",,,,,,,,,,\n"
    ",C-2,2026-10-02, ,York,Beta,P-2,labelling,major,open,\n"
)


@pytest.mark.parametrize("extra", ["", 'ignore_columns = ["*"]'])
def test_empty_columns_anywhere_are_not_columns(tmp_path: Path, extra: str) -> None:
    # Columns 1 and 4 (and the trailing 12th) have no header and no value in any row.
    (tmp_path / "x.csv").write_text(_EMPTY_COLUMNS_CSV)
    r = _load(f'[sources.complaints]\npath = "x.csv"\n{extra}', base=tmp_path)
    _canonical(r)
    assert r.rows_in == 2
    assert r.frame.select("complaint_id", "received_date", "site", SOURCE_ROW).rows() == [
        ("C-1", D(2026, 10, 1), "Leeds", 2),
        ("C-2", D(2026, 10, 2), "York", 4),
    ]


def test_positions_count_the_file_columns_empty_ones_included(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(_EMPTY_COLUMNS_CSV)
    r = _load(
        '[sources.complaints]\npath = "x.csv"\npositions = { customer = 6, description = 1 }',
        base=tmp_path,
    )
    assert r.frame.select("customer", "site", "description").rows() == [
        ("Acme", "Leeds", None),
        ("Beta", "York", None),
    ]


def test_blank_header_over_data_in_the_middle_or_first_column_still_raises(
    tmp_path: Path,
) -> None:
    (tmp_path / "x.csv").write_text(
        _EMPTY_COLUMNS_CSV.replace(",C-2,2026-10-02, ,", ",C-2,2026-10-02,x,")
    )
    with pytest.raises(HeaderError, match="column 4 has a blank header") as info:
        _load('[sources.complaints]\npath = "x.csv"\nignore_columns = ["*"]', base=tmp_path)
    assert (info.value.path, info.value.column) == ("x.csv", "#4")
    (tmp_path / "x.csv").write_text(_EMPTY_COLUMNS_CSV.replace(",,,,,,,,,,", "7,,,,,,,,,,"))
    with pytest.raises(HeaderError, match="column 1 has a blank header") as info:
        _load('[sources.complaints]\npath = "x.csv"', base=tmp_path)
    assert info.value.column == "#1"


def test_excel_empty_column_between_columns_is_not_a_column(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["complaint_id", None, "received_date", "site", "customer", "product"])
    ws.append(["C-1", None, dt.date(2026, 10, 1), "Leeds", "Acme", "P-1"])
    ws["B3"].number_format = "0.00"  # formatting only, no value
    wb.save(tmp_path / "x.xlsx")
    r = _load(
        '[sources.complaints]\npath = "x.xlsx"\npositions = { product = 6 }\n'
        'constants = { category = "general", severity = "minor", status = "open" }',
        base=tmp_path,
    )
    assert r.frame.select("complaint_id", "received_date", "product").rows() == [
        ("C-1", D(2026, 10, 1), "P-1")
    ]


def test_missing_required_column_with_did_you_mean_over_the_file_headers() -> None:
    with pytest.raises(HeaderError) as info:
        _load('[sources.complaints]\npath = "misspelled_header.csv"')
    err = info.value
    assert (err.path, err.dataset, err.column) == (
        "misspelled_header.csv",
        "complaints",
        "received_date",
    )
    assert "missing column 'received_date' (did you mean 'recieved_date'?)" in str(err)


def test_missing_mapped_column_names_the_mapping() -> None:
    with pytest.raises(
        HeaderError, match="missing column 'Recieved' \\(mapped to 'received_date'\\)"
    ):
        _load(
            '[sources.complaints]\npath = "complaints_basic.csv"\ncolumns = { received_date = "Recieved" }'
        )


def test_unknown_columns_with_did_you_mean_over_canonical_names() -> None:
    with pytest.raises(HeaderError) as info:
        _load('[sources.complaints]\npath = "unknown_column.csv"')
    msg = str(info.value)
    assert info.value.column == "Priority"
    assert "unexpected columns 'Priority', 'severty' (did you mean 'severity'?)" in msg
    assert "ignore_columns" in msg


@pytest.mark.parametrize("ignore", ['["*"]', '["Priority", "severty"]', '["Prio*", "sev?rty"]'])
def test_ignore_columns_accepts_extra_headers(ignore: str) -> None:
    r = _load(f'[sources.complaints]\npath = "unknown_column.csv"\nignore_columns = {ignore}')
    assert r.frame["complaint_id"].to_list() == ["C-1"]


def test_empty_file_is_a_source_error() -> None:
    with pytest.raises(SourceError, match=re.escape("empty.csv, dataset 'complaints': empty file")):
        _load('[sources.complaints]\npath = "empty.csv"')


def test_header_only_file_is_a_valid_empty_frame() -> None:
    r = _load('[sources.complaints]\npath = "header_only.csv"')
    _canonical(r)
    assert r.rows_in == 0
    assert r.frame.is_empty()


def test_trailing_delimiter_and_blank_rows_are_not_records() -> None:
    r = _load('[sources.complaints]\npath = "trailing_delimiter.csv"')
    _canonical(r)
    assert r.rows_in == 2
    assert r.frame[SOURCE_ROW].to_list() == [2, 4]


def test_row_with_extra_fields_is_quarantined() -> None:
    r = _load('[sources.complaints]\npath = "ragged.csv"')
    _canonical(r)
    assert r.frame["complaint_id"].to_list() == ["C-1", "C-3"]
    assert r.rejects.drop("file").rows() == [
        (3, "(row)", None, "shape:fields", "row has 9 fields, the header has 8")
    ]
    with pytest.raises(SourceError, match="row 3: row has 9 fields"):
        _load('[sources.complaints]\npath = "ragged.csv"', on_bad_value="raise")


def test_row_with_values_only_beyond_the_header_is_not_skipped_as_blank(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(
        "complaint_id,received_date,site,customer,product,category,severity,status\n"
        "C-1,2026-10-01,Leeds,Acme,P-1,packaging,minor,open\n"
        ",,,,,,,,stray value\n"
    )
    r = _load('[sources.complaints]\npath = "x.csv"', base=tmp_path)
    assert r.rows_in == 2
    assert r.rejects.select(SOURCE_ROW, "rule").rows() == [(3, "shape:fields")]
    _ledger(r)


def test_missing_file_and_empty_glob() -> None:
    with pytest.raises(
        SourceError, match=re.escape("nope.csv, dataset 'complaints': file not found")
    ):
        _load('[sources.complaints]\npath = "nope.csv"')
    with pytest.raises(SourceError, match=re.escape("no file matches 'none/*.csv'")):
        _load('[sources.complaints]\npath = "none/*.csv"')


def test_unknown_suffix_asks_for_format(tmp_path: Path) -> None:
    (tmp_path / "x.dat").write_text("a\n")
    with pytest.raises(SourceError, match='set format = "csv"'):
        _load('[sources.complaints]\npath = "x.dat"', base=tmp_path)


# --------------------------------------------------------------------------- globs


def test_glob_concatenates_sorted_files_with_per_file_rows() -> None:
    r = _load('[sources.complaints]\npath = "glob/*.csv"')
    _canonical(r, glob=True)
    names = ["glob/complaints-2026-09.csv", "glob/complaints-2026-10.csv"]
    assert r.origin == f"glob/*.csv [{', '.join(names)}]"
    assert [f.path for f in r.files] == names
    assert [f.rows_in for f in r.files] == [2, 1]
    blob = "".join(f"{n}\t{_sha(FIX / n)}\n" for n in names).encode()
    assert r.sha256 == hashlib.sha256(blob).hexdigest()
    assert r.frame.select("complaint_id", SOURCE_ROW, "source_file").rows() == [
        ("C-901", 2, names[0]),
        ("C-903", 2, names[1]),
    ]
    assert r.rejects.select("source_row", "value", "file").rows() == [
        (3, "31/09/2026", "glob/complaints-2026-09.csv")
    ]
    assert r.rows_in == 3


# --------------------------------------------------------------------------- booleans


def test_booleans_use_declared_true_false_values_case_insensitively() -> None:
    r = _load(
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
    _canonical(r)
    assert r.frame.select("supplier_id", "critical", "approval_status").rows() == [
        ("S-1", True, "approved"),
        ("S-2", False, "conditional"),
    ]
    assert r.rejects["message"].to_list() == [
        "'maybe' is not a true value (true, y) or a false value (false, n)"
    ]


# --------------------------------------------------------------------------- Excel


def _workbook(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Export"
    ws["A1"] = "Complaints register - FY2026"
    ws.merge_cells("A1:H1")
    ws["A2"] = "Complaint"
    ws.merge_cells("A2:B2")
    ws["C2"] = "Dates"
    ws.merge_cells("C2:D2")
    ws.append(["ID", "Customer", "Received", "Closed", "Product", None, "Severity", "Status"])
    ws.merge_cells("E3:F3")  # "Product" spans code and name
    ws.append(
        [
            "X-1",
            "Acme",
            dt.datetime(2026, 10, 5, 14, 30),
            20261020,
            "P-1",
            "Widget",
            "minor",
            "closed",
        ]
    )
    ws.append([17, "Beta", dt.date(2026, 10, 6), None, "P-2", "Gadget", "major", "open"])
    ws.append(["X-3", "Gamma", "Not captured", None, "P-3", "Thing", "minor", "open"])
    ws.append([None] * 8)
    ws["J12"].number_format = "0.00"  # formatting only: no data, no column
    wb.create_sheet("Notes")["A1"] = "nothing here"
    wb.save(path)


_XLSX = """
[sources.complaints]
path = "export.xlsx"
header_row = 3
constants = { site = "Leeds", category = "general" }
columns = { complaint_id = "ID", customer = "Customer", received_date = "Received", closed_date = "Closed", severity = "Severity", status = "Status" }
positions = { product = 5 }
ignore_columns = ["Product"]
date_formats = { closed_date = "%Y%m%d" }
"""


def test_excel_with_title_block_merged_headers_and_native_dates(tmp_path: Path) -> None:
    _workbook(tmp_path / "export.xlsx")
    r = _load(_XLSX, base=tmp_path)
    _canonical(r)
    assert r.sha256 == _sha(tmp_path / "export.xlsx")
    assert r.rows_in == 3
    assert r.frame.select(
        "complaint_id", "received_date", "closed_date", "product", "site", SOURCE_ROW
    ).rows() == [
        ("X-1", D(2026, 10, 5), D(2026, 10, 20), "P-1", "Leeds", 4),
        ("17", D(2026, 10, 6), None, "P-2", "Leeds", 5),
    ]
    assert r.rejects.select("source_row", "column", "value").rows() == [
        (6, "received_date", "Not captured")
    ]


def test_excel_sheet_by_name_and_1_based_index(tmp_path: Path) -> None:
    _workbook(tmp_path / "export.xlsx")
    assert _load(_XLSX + 'sheet = "Export"', base=tmp_path).rows_in == 3
    assert _load(_XLSX + "sheet = 1", base=tmp_path).rows_in == 3
    with pytest.raises(SourceError, match="sheet 'Exprt' not found \\(did you mean 'Export'\\?\\)"):
        _load(_XLSX + 'sheet = "Exprt"', base=tmp_path)
    with pytest.raises(SourceError, match="sheet 3 not found: the workbook has 2 sheet"):
        _load(_XLSX + "sheet = 3", base=tmp_path)
    with pytest.raises(ConfigError, match="1-based"):
        _load(_XLSX + "sheet = 0", base=tmp_path)


def test_excel_sheet_numbers_count_chart_sheets_in_tab_order(tmp_path: Path) -> None:
    from openpyxl.chart import BarChart, Reference

    wb = openpyxl.Workbook()
    header = ["complaint_id", "received_date", "site", "customer", "product", "category"]
    first = wb.active
    first.title = "First"
    first.append(header)
    first.append(["C-1", dt.date(2026, 10, 1), "Leeds", "Acme", "P-1", "packaging"])
    second = wb.create_sheet("Second")
    second.append(header)
    second.append(["C-2", dt.date(2026, 10, 2), "York", "Beta", "P-2", "labelling"])
    chart = BarChart()
    chart.add_data(Reference(first, min_col=1, min_row=1, max_row=2))
    wb.create_chartsheet("Chart", 0).add_chart(chart)  # tabs: Chart, First, Second
    wb.save(tmp_path / "x.xlsx")
    toml = (
        '[sources.complaints]\npath = "x.xlsx"\n'
        'constants = { severity = "minor", status = "open" }\n'
    )

    def ids(sheet: str) -> list[str]:
        return _load(toml + sheet, base=tmp_path).frame["complaint_id"].to_list()

    assert ids("") == ["C-1"]  # the default: the first worksheet
    assert ids("sheet = 2") == ["C-1"]
    assert ids("sheet = 3") == ["C-2"]
    assert ids('sheet = "Second"') == ["C-2"]
    with pytest.raises(
        SourceError,
        match=re.escape(
            "sheet 1 ('Chart') is a chart sheet, not a table of data; worksheets: First, Second"
        ),
    ):
        ids("sheet = 1")
    with pytest.raises(SourceError, match="sheet 'Chart' is a chart sheet"):
        ids('sheet = "Chart"')
    with pytest.raises(SourceError, match="sheet 4 not found: the workbook has 3 sheet"):
        ids("sheet = 4")


def test_excel_merged_header_cell_fills_every_column_it_spans(tmp_path: Path) -> None:
    _workbook(tmp_path / "export.xlsx")
    without_positions = _XLSX.replace("positions = { product = 5 }\n", "").replace(
        'status = "Status"', 'status = "Status", product = "Product"'
    )
    with pytest.raises(HeaderError, match="duplicate header 'Product' \\(columns 5, 6\\)"):
        _load(without_positions, base=tmp_path)


def test_corrupt_workbook_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "export.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(
        SourceError, match=re.escape("export.xlsx, dataset 'complaints': not a readable .xlsx")
    ):
        _load(_XLSX, base=tmp_path)


def _sheet_xml(path: Path, edit: Any) -> None:
    """Rewrite the first worksheet's XML of a workbook (as Excel would have saved it)."""
    import zipfile

    parts = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            parts[name] = z.read(name)
    parts["xl/worksheets/sheet1.xml"] = edit(parts["xl/worksheets/sheet1.xml"])
    with zipfile.ZipFile(path, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)


def test_excel_formula_without_a_saved_result_is_an_error_not_a_blank(tmp_path: Path) -> None:
    # openpyxl (like some ERP exports) writes formulas with no calculated value.
    # Read as blank, row 3 lost its ID and row 4 (all formulas) vanished from
    # rows_in altogether: rows_in was 2 for 3 records, and no reject said why.
    header = ["complaint_id", "received_date", "site", "customer", "product", "category"]
    header += ["severity", "status"]
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(header)
    ws.append(["C-1", dt.date(2026, 10, 1), "Leeds", "Acme", "P-1", "noise", "minor", "open"])
    ws.append(['="C-"&2', dt.date(2026, 10, 2), "Leeds", "Acme", "P-1", "noise", "minor", "open"])
    ws.append(['="C-"&3', "=B3", "=C3", "=D3", "=E3", "=F3", "=G3", "=H3"])
    wb.save(tmp_path / "export.xlsx")
    toml = '[sources.complaints]\npath = "export.xlsx"\n'
    with pytest.raises(SourceError, match=r"export.xlsx, .*cell A3 holds a formula with no saved"):
        _load(toml, base=tmp_path)

    # Saved by Excel, the same cells carry their results: a text result, and an
    # empty-string result (t="str", <v></v>) that is a blank, not an error.
    def saved(xml: bytes) -> bytes:
        xml = xml.replace(b'<c r="A3"><f>"C-"&amp;2</f><v /></c>', b'<c r="A3" t="str"><f>"C-"&amp;2</f><v>C-2</v></c>')  # fmt: skip
        xml = xml.replace(b'<c r="A4"><f>"C-"&amp;3</f><v /></c>', b'<c r="A4" t="str"><f>IF(1,"","")</f><v></v></c>')  # fmt: skip
        return re.sub(rb'<c r="([B-H])4"><f>(\w+)</f><v ?/>', rb'<c r="\g<1>4"><f>\2</f><v>0</v>', xml)  # fmt: skip

    _sheet_xml(tmp_path / "export.xlsx", saved)
    r = _load(toml, base=tmp_path)
    _ledger(r)
    assert r.rows_in == 3
    assert r.frame.select("complaint_id", SOURCE_ROW).rows() == [("C-1", 2), ("C-2", 3)]
    # row 4 is a record: its blank ID is for the contract; its date result 0 is not a date
    assert r.rejects.select(SOURCE_ROW, "column", "value").rows() == [(4, "received_date", "0")]


def test_excel_typed_cells_stay_typed_and_a_cell_that_does_not_fit_names_its_row(
    tmp_path: Path,
) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(
        ["supplier_id", "name", "category", "critical", "approval_status", "next_evaluation_due"]
    )
    ws.append(["S-1", "Acme", "steel", True, "approved", dt.datetime(2026, 11, 3, 8, 0)])
    ws.append(["S-2", "Beta", "resin", False, "approved", dt.datetime(2027, 1, 9)])
    wb.save(tmp_path / "s.xlsx")
    toml = '[sources.suppliers]\npath = "s.xlsx"\n'
    r = _load(toml, "suppliers", base=tmp_path)
    _canonical(r)
    assert r.frame.select("supplier_id", "critical", "next_evaluation_due", SOURCE_ROW).rows() == [
        ("S-1", True, D(2026, 11, 3), 2),
        ("S-2", False, D(2027, 1, 9), 3),
    ]
    ws.append(["S-3", "Gamma", "resin", True, "approved", 45678.5])  # a number, not a date cell
    wb.save(tmp_path / "s.xlsx")
    r = _load(toml, "suppliers", base=tmp_path)
    _canonical(r)
    assert r.frame["supplier_id"].to_list() == ["S-1", "S-2"]
    assert r.rejects.select(SOURCE_ROW, "column", "value").rows() == [
        (4, "next_evaluation_due", "45678.5")
    ]


# --------------------------------------------------------------------------- Parquet


def _parquet(path: Path) -> None:
    table = pa.table(
        {
            "complaint_id": ["P-1", "P-2", "P-3"],
            "received_date": pa.array([20261005, 20261006, 19010101], pa.int64()),
            "closed_date": pa.array([D(2026, 10, 9), None, D(2026, 10, 12)]),
            "site": ["Leeds", "Leeds", "York"],
            "customer": ["A", "B", "C"],
            "product": ["P", "P", "P"],
            "category": ["c", "c", "c"],
            "severity": ["minor", "minor", "major"],
            "status": pa.array(["open", "open", "closed"]).dictionary_encode(),
            "units_affected": pa.array([3.0, None, 2.5]),
        }
    )
    pq.write_table(table, path)


def test_parquet_native_types_map_like_text(tmp_path: Path) -> None:
    _parquet(tmp_path / "c.parquet")
    r = _load(
        '[sources.complaints]\npath = "c.parquet"\ndate_formats = { received_date = "%Y%m%d", '
        'closed_date = "%d/%m/%Y" }\nnull_values = { received_date = ["19010101"] }',
        base=tmp_path,
    )
    _canonical(r)
    assert r.sha256 == _sha(tmp_path / "c.parquet")
    assert r.frame.select(
        "complaint_id", "received_date", "closed_date", "units_affected", SOURCE_ROW
    ).rows() == [
        ("P-1", D(2026, 10, 5), D(2026, 10, 9), 3, 2),
        ("P-2", D(2026, 10, 6), None, None, 3),
    ]
    assert r.rejects.select("source_row", "column", "value").rows() == [
        (4, "units_affected", "2.5")
    ]


def test_truncated_parquet_is_a_source_error_naming_the_file(tmp_path: Path) -> None:
    _parquet(tmp_path / "c.parquet")
    data = (tmp_path / "c.parquet").read_bytes()
    (tmp_path / "c.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        SourceError, match=re.escape("c.parquet, dataset 'complaints': not a readable Parquet")
    ):
        _load('[sources.complaints]\npath = "c.parquet"', base=tmp_path)


def test_parquet_with_a_duplicate_column_name_is_a_header_error(tmp_path: Path) -> None:
    columns = [pa.array(["C-1"]), pa.array(["C-2"])]
    table = pa.Table.from_arrays(columns, names=["complaint_id", "complaint_id"])
    pq.write_table(table, tmp_path / "c.parquet")
    with pytest.raises(HeaderError, match=r"c\.parquet, .*duplicate header: .*'complaint_id'"):
        _load('[sources.complaints]\npath = "c.parquet"', base=tmp_path)


def test_parquet_typed_values_that_do_not_fit_are_quarantined_naming_the_row(
    tmp_path: Path,
) -> None:
    pq.write_table(
        pa.table(
            {
                "receipt_id": ["R-1", "R-2", "R-3", "R-4"],
                "supplier_id": ["S-1", "S-1", "S-2", "S-2"],
                "site": ["Leeds", "Leeds", "York", "York"],
                "promised_date": pa.array([dt.datetime(2026, 10, 1, 9, 30)] * 4),
                "received_date": pa.array([D(2026, 10, 2)] * 4),
                "qty_received": pa.array([10.0, 12.5, float("nan"), 2.0**70], pa.float64()),
                "qty_rejected": pa.array([0, 1, 2, 2**64 - 1], pa.uint64()),
            }
        ),
        tmp_path / "r.parquet",
    )
    r = _load('[sources.receipts]\npath = "r.parquet"', "receipts", base=tmp_path)
    _canonical(r)
    # a date-time keeps its date; whole floats are whole numbers
    assert r.frame.select("receipt_id", "promised_date", "qty_received", SOURCE_ROW).rows() == [
        ("R-1", D(2026, 10, 1), 10, 2)
    ]
    assert r.rejects.select(SOURCE_ROW, "column", "rule").rows() == [
        (3, "qty_received", "type:qty_received"),
        (4, "qty_received", "type:qty_received"),
        (5, "qty_received", "type:qty_received"),  # beyond a 64-bit whole number
        (5, "qty_rejected", "type:qty_rejected"),
    ]
    values = r.rejects["value"].to_list()
    assert values[:2] == ["12.5", "NaN"]
    assert float(values[2]) == 2.0**70
    assert values[3] == str(2**64 - 1)
    assert r.rejects["message"][0] == "'12.5' is not a whole number"


def test_parquet_column_no_field_can_hold_is_refused_when_mapped_fine_when_ignored(
    tmp_path: Path,
) -> None:
    # A nested column no field can hold is refused when mapped, and never read when ignored.
    table = pa.table(
        {
            "supplier_id": ["S-1"],
            "name": ["Acme"],
            "category": ["steel"],
            "critical": [True],
            "approval_status": ["approved"],
            "history": pa.array([[1, 2]], pa.list_(pa.int64())),
        }
    )
    pq.write_table(table, tmp_path / "s.parquet")
    toml = '[sources.suppliers]\npath = "s.parquet"\n'
    r = _load(toml + 'ignore_columns = ["history"]', "suppliers", base=tmp_path)
    assert r.frame.select("supplier_id", "critical").rows() == [("S-1", True)]
    with pytest.raises(SourceError, match="column 'history' holds"):
        _load(toml + 'columns = { name = "history" }', "suppliers", base=tmp_path)


def _windowed(path: Path) -> None:
    """Receipts, inspections and complaints around the 2026-10 window start, 2024-08-03.

    The trend window is the 24 months 2024-11 .. 2026-10; its start less the
    90-day look-back is 2024-08-03 (see ``test_sql_window``).
    """
    pq.write_table(
        pa.table(
            {
                "receipt_id": ["R-1", "R-2", "R-3", "R-4", "R-5"],
                "supplier_id": ["S-1"] * 5,
                "site": ["Leeds"] * 5,
                "promised_date": pa.array(
                    [D(2024, 8, 1), D(2024, 8, 1), D(2024, 8, 5), D(2026, 10, 1), D(2024, 8, 2)]
                ),
                "received_date": pa.array(
                    [D(2024, 8, 2), D(2024, 8, 3), D(2024, 8, 1), D(2026, 10, 2), D(2024, 8, 2)]
                ),
                "qty_received": [10, 10, 10, 10, 0],
                "qty_rejected": [0, 0, 0, 0, 0],
            }
        ),
        path / "receipts.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "inspection_id": ["I-1", "I-2", "I-3"],
                "inspection_date": pa.array([D(2023, 1, 9), D(2023, 1, 9), D(2026, 10, 9)]),
                "site": ["Leeds"] * 3,
                "product": ["P"] * 3,
                "stage": ["final"] * 3,
                "lot_id": [None, "L-7", "L-7"],
                "qty_inspected": [5, 5, 5],
                "qty_defective": [0, 0, 0],
                "result": ["pass", "fail", "pass"],
            }
        ),
        path / "inspections.parquet",
    )


def test_the_trend_window_is_pushed_into_the_parquet_scan_and_counted(tmp_path: Path) -> None:
    _windowed(tmp_path)
    cfg = _config(
        '[sources.receipts]\npath = "receipts.parquet"\n'
        '[sources.inspections]\npath = "inspections.parquet"\n',
        base=tmp_path,
    )
    r = load_dataset(cfg, "receipts", period="2026-10")
    _canonical(r)
    # wholly before 2024-08-03 (received and promised): R-1 (row 2) and R-5 (row 6, which
    # would fail qty_received > 0 too: a record outside the window is not read further)
    assert r.frame["receipt_id"].to_list() == ["R-2", "R-3", "R-4"]
    assert r.excluded.select(SOURCE_ROW, "rule", "file").rows() == [
        (2, "outside_window", "receipts.parquet"),
        (6, "outside_window", "receipts.parquet"),
    ]
    assert "2024-08-03" in r.excluded["message"][0]
    assert (r.rows_in, r.excluded_by) == (5, {"outside_window": 2})
    # an inspection of a lot is kept whatever its date (the lot's first inspection counts)
    i = load_dataset(cfg, "inspections", period="2026-10")
    _canonical(i)
    assert i.frame["inspection_id"].to_list() == ["I-2", "I-3"]
    assert i.excluded.select(SOURCE_ROW, "rule").rows() == [(2, "outside_window")]
    # without a period the file is read whole
    assert load_dataset(cfg, "receipts").frame.height == 5
    # so it is when a date needs the text rules first (here a null value): nothing left out
    toml = '[sources.receipts]\npath = "receipts.parquet"\nnull_values = { received_date = ["x"] }'
    r = load_dataset(_config(toml, base=tmp_path), "receipts", period="2026-10")
    _canonical(r)
    assert (r.rows_excluded, r.frame.height) == (0, 5)


def _receipts_in_row_groups(path: Path, received: list[dt.date]) -> None:
    """A receipts file, one receipt per date in ``received``, in row groups of three rows."""
    n = len(received)
    table = pa.table(
        {
            "receipt_id": [f"R-{k + 1}" for k in range(n)],
            "supplier_id": ["S-1"] * n,
            "site": ["Leeds"] * n,
            "promised_date": pa.array(received),
            "received_date": pa.array(received),
            "qty_received": [10] * n,
            "qty_rejected": [0] * n,
        }
    )
    pq.write_table(table, path / "receipts.parquet", row_group_size=3)


@pytest.mark.parametrize(
    "old",
    [
        {0, 1, 4, 5, 6, 11},  # the first rows, a run across a row group's end, the last row
        set(),  # none
        set(range(12)),  # all
        {2, 3, 8},  # a row group's last and the next one's first row, one alone
    ],
)
def test_rows_outside_the_window_are_the_exact_rows_of_a_file_in_row_groups(
    tmp_path: Path, old: set[int]
) -> None:
    # 12 receipts in 4 row groups; those in ``old`` are wholly before the window start
    # (2024-08-03 for 2026-10), the others inside it
    received = [D(2024, 8, 2) if k in old else D(2026, 10, 2) for k in range(12)]
    _receipts_in_row_groups(tmp_path, received)
    assert pq.ParquetFile(tmp_path / "receipts.parquet").num_row_groups == 4
    cfg = _config('[sources.receipts]\npath = "receipts.parquet"\n', base=tmp_path)
    r = load_dataset(cfg, "receipts", period="2026-10")
    _canonical(r)
    # row k of the file (from 0) is source row k + 2 (row 1 holds the column names)
    assert r.excluded.select(SOURCE_ROW, "rule").rows() == [
        (k + 2, "outside_window") for k in sorted(old)
    ]
    kept = [k for k in range(12) if k not in old]
    assert r.frame.select("receipt_id", SOURCE_ROW).rows() == [(f"R-{k + 1}", k + 2) for k in kept]
    assert (r.rows_in, r.frame.height, r.rows_excluded) == (12, len(kept), len(old))
    # the loaded frame keeps the scan's chunks (no copy), lined up in every column
    assert len({tuple(c.chunk_lengths()) for c in r.frame.get_columns()}) == 1


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(2, 60)), st.integers(0, 3))
def test_missing_rows_are_the_numbers_not_returned(present: set[int], after: int) -> None:
    end = max(present, default=1) + 1 + after  # rows 2 .. end - 1; none when end is 2
    rows = pl.Series(SOURCE_ROW, sorted(present), dtype=pl.Int64)
    expected = [k for k in range(2, end) if k not in present]
    assert sources._missing_rows(rows, end).to_list() == expected
    assert rows.to_list() == sorted(present)  # the row numbers given are left as they were


# --------------------------------------------------------------------------- odds and ends


def test_date_format_with_a_time_part_keeps_the_date(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(
        "complaint_id,received_date,site,customer,product,category,severity,status\n"
        "C-1,05/10/2026 14:32,Leeds,Acme,P-1,packaging,minor,open\n"
        "C-2,05/10/2026,Leeds,Acme,P-1,packaging,minor,open\n"
    )
    r = _load(
        '[sources.complaints]\npath = "x.csv"\ndate_formats = { received_date = "%d/%m/%Y %H:%M" }',
        base=tmp_path,
    )
    assert r.frame["received_date"].to_list() == [D(2026, 10, 5)]
    assert r.rejects[SOURCE_ROW].to_list() == [3]


def test_bad_constant_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=re.escape("sources.complaints.constants.units_affected")):
        _load(
            '[sources.complaints]\npath = "complaints_basic.csv"\nconstants = { units_affected = "many" }'
        )


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
        _load(f'[sources.complaints]\npath = "complaints_basic.csv"\n{extra}')
    assert info.value.key == f"sources.complaints.{key}"


def test_dataset_not_configured() -> None:
    with pytest.raises(
        ConfigError, match=re.escape("no [sources.complaint] table (did you mean 'complaints'?)")
    ):
        _load('[sources.complaints]\npath = "complaints_basic.csv"', "complaint")


def test_load_all_reads_every_configured_dataset_in_order() -> None:
    cfg = _config(
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
        _canonical(r)
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
    _canonical(c)
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
    _canonical(c)
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
    r = _load(toml, base=tmp_path)
    _canonical(r)
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
    r = _load(toml, base=tmp_path)
    _canonical(r)
    assert r.frame.select("product", "customer").rows() == [("F-150", "F-150")]


# --------------------------------------------------------------------------- SQL

_SQL_ROWS = [
    # (id, received, closed, site, units)
    ("C-1", D(2026, 10, 5), D(2026, 10, 20), "Leeds", 3),
    ("C-2", D(2024, 8, 2), None, "Leeds", 1),  # one day before the window
    ("C-3", D(2024, 8, 3), None, "York", None),  # first day of the window
    ("C-4", D(2026, 11, 1), None, "Leeds", 2),  # after the period
    ("C-5", D(2026, 10, 31), None, "York", 7),
]


def _seed(url: str | sa.URL, table: str = "complaints") -> None:
    engine = sa.create_engine(url)
    md = sa.MetaData()
    t = sa.Table(
        table,
        md,
        sa.Column("id", sa.String(20)),
        sa.Column("recv", sa.Date),
        sa.Column("closed", sa.Date),
        sa.Column("site", sa.String(40)),
        sa.Column("customer", sa.String(40)),
        sa.Column("product", sa.String(40)),
        sa.Column("category", sa.String(40)),
        sa.Column("severity", sa.String(20)),
        sa.Column("status", sa.String(20)),
        sa.Column("units", sa.Integer),
    )
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            t.insert(),
            [
                {
                    "id": i,
                    "recv": rd,
                    "closed": cd,
                    "site": s,
                    "customer": "Acme",
                    "product": "P-1",
                    "category": "packaging",
                    "severity": "minor",
                    "status": "closed" if cd else "open",
                    "units": u,
                }
                for i, rd, cd, s, u in _SQL_ROWS
            ],
        )
    engine.dispose()


def _sql_toml(db: str, table: str = "complaints") -> str:
    return f"""
{db}
[sources.complaints]
database = "qms"
query = \"\"\"
SELECT id, recv, closed, site, customer, product, category, severity, status, units
FROM {table}
WHERE recv BETWEEN :period_start AND :period_end
  AND (:site IS NULL OR site = :site)
ORDER BY id
\"\"\"
columns = {{ complaint_id = "id", received_date = "recv", closed_date = "closed", units_affected = "units" }}
"""


def test_sql_window() -> None:
    assert sql_window("2026-10") == (D(2024, 8, 3), D(2026, 10, 31))
    assert sql_window("2026-Q3", trend_months=12, lookback_days=0) == (
        D(2025, 10, 1),
        D(2026, 9, 30),
    )


@pytest.fixture(params=["sqlite", "duckdb"])
def file_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite or DuckDB file in tmp_path, named relative to the config's folder."""
    name = "qms.db" if request.param == "sqlite" else "qms.duckdb"
    _seed(f"{request.param}:///{tmp_path / name}")
    return f'[databases.qms]\nurl = "{request.param}:///{name}"'


def test_sql_pulls_only_the_window_with_bound_parameters(file_db: str, tmp_path: Path) -> None:
    r = _load(_sql_toml(file_db), base=tmp_path, period="2026-10")
    _canonical(r)
    assert r.origin == "sql:qms"
    assert r.files == ()
    assert r.frame.select(
        "complaint_id", "received_date", "closed_date", "units_affected", SOURCE_ROW
    ).rows() == [
        ("C-1", D(2026, 10, 5), D(2026, 10, 20), 3, 1),
        ("C-3", D(2024, 8, 3), None, None, 2),
        ("C-5", D(2026, 10, 31), None, 7, 3),
    ]
    # one site, and a shorter window
    r = _load(
        _sql_toml(file_db),
        base=tmp_path,
        period="2026-10",
        site="York",
        trend_months=3,
        lookback_days=0,
    )
    assert r.frame["complaint_id"].to_list() == ["C-5"]


def test_sql_hash_covers_query_params_and_rows(file_db: str, tmp_path: Path) -> None:
    a = _load(_sql_toml(file_db), base=tmp_path, period="2026-10")
    b = _load(_sql_toml(file_db), base=tmp_path, period="2026-10")
    c = _load(_sql_toml(file_db), base=tmp_path, period="2026-09")
    assert a.sha256 == b.sha256
    assert a.sha256 != c.sha256


def test_sql_site_is_bound_not_executed(file_db: str, tmp_path: Path) -> None:
    evil = "'; DROP TABLE complaints; --"
    r = _load(_sql_toml(file_db), base=tmp_path, period="2026-10", site=evil)
    assert r.rows_in == 0
    assert _load(_sql_toml(file_db), base=tmp_path, period="2026-10").rows_in == 3


def test_sql_query_needs_a_period_and_known_parameters(file_db: str, tmp_path: Path) -> None:
    with pytest.raises(
        SourceError, match="sql:qms, dataset 'complaints': the query uses :period_start"
    ):
        _load(_sql_toml(file_db), base=tmp_path)
    with pytest.raises(ConfigError, match="the query names :plant"):
        _load(_sql_toml(file_db).replace(":site", ":plant"), base=tmp_path, period="2026-10")


def test_sql_results_take_derive_where_and_duplicates(file_db: str, tmp_path: Path) -> None:
    toml = _sql_toml(file_db).replace("SELECT id,", "SELECT id, id AS again,") + (
        "ignore_columns = ['severity', 'status']\n"
        "where = \"again <> 'C-3'\"\n"
        "[sources.complaints.derive]\n"
        "severity = \"CASE WHEN CAST(units AS INT) > 5 THEN 'major' ELSE 'minor' END\"\n"
        "status = \"CASE WHEN closed IS NULL THEN 'open' ELSE 'closed' END\"\n"
    )
    r = _load(toml, base=tmp_path, period="2026-10")
    _canonical(r)
    # native dates and integers are text to an expression: numbers are compared after a CAST
    assert r.frame.select("complaint_id", "severity", "status").rows() == [
        ("C-1", "minor", "closed"),
        ("C-5", "major", "open"),
    ]
    assert r.excluded.select(SOURCE_ROW, "rule").rows() == [(2, "where")]


def test_an_expression_that_fails_on_the_data_names_the_key(tmp_path: Path) -> None:
    toml = _VEHICLES.replace('product = "MODELTXT"', 'product = "CAST(MODELTXT AS INT)"')
    with pytest.raises(ConfigError, match=r"derive\.product.*cannot evaluate"):
        load_dataset(_config(toml), "complaints")


def test_sql_errors_are_source_errors(tmp_path: Path) -> None:
    _seed(f"sqlite:///{tmp_path / 'qms.db'}")
    toml = _sql_toml('[databases.qms]\nurl = "sqlite:///qms.db"', table="no_such_table")
    with pytest.raises(
        SourceError, match="sql:qms, dataset 'complaints': query failed: no such table"
    ):
        _load(toml, base=tmp_path, period="2026-10")


def test_sql_header_checks_apply(tmp_path: Path) -> None:
    _seed(f"sqlite:///{tmp_path / 'qms.db'}")
    toml = _sql_toml('[databases.qms]\nurl = "sqlite:///qms.db"').replace(
        'received_date = "recv", ', ""
    )
    with pytest.raises(HeaderError, match=r"sql:qms.*missing column 'received_date'"):
        _load(toml, base=tmp_path, period="2026-10")


@pytest.mark.postgres
def test_postgresql_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = os.environ.get("QMSKPI_TEST_PG_URL")
    if not url:
        why = os.environ.get("QMSKPI_TEST_PG_UNAVAILABLE", "QMSKPI_TEST_PG_URL is not set")
        pytest.skip(f"{why} (`make test` starts a throwaway PostgreSQL and sets it)")
    table = f"qmskpi_test_{uuid.uuid4().hex[:12]}"
    engine_url = sa.make_url(url)
    if engine_url.drivername == "postgresql":
        engine_url = engine_url.set(drivername="postgresql+psycopg")
    _seed(engine_url, table)
    try:
        toml = _sql_toml('[databases.qms]\nurl_env = "QMSKPI_TEST_PG_URL"', table=table)
        r = _load(toml, base=tmp_path, period="2026-10")
        _canonical(r)
        assert r.origin == "sql:qms"
        assert r.frame.select("complaint_id", "received_date", "units_affected").rows() == [
            ("C-1", D(2026, 10, 5), 3),
            ("C-3", D(2024, 8, 3), None),
            ("C-5", D(2026, 10, 31), 7),
        ]
        assert _load(toml, base=tmp_path, period="2026-10", site="Leeds").frame[
            "complaint_id"
        ].to_list() == ["C-1"]
        evil = f"'; DROP TABLE {table}; --"
        assert _load(toml, base=tmp_path, period="2026-10", site=evil).rows_in == 0
        assert _load(toml, base=tmp_path, period="2026-10").rows_in == 3
    finally:
        engine = sa.create_engine(engine_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


# --------------------------------------------------------------------------- the ledger

_CELL = st.one_of(
    st.text(alphabet='ab1-2/ ,."\n\r:', max_size=12),
    st.sampled_from(["2026-10-05", "31/02/2026", "7", "7.0", "7.5", "", "  ", "Not captured"]),
)
_SURVEY_HEADER = [
    "response_id",
    "response_date",
    "site",
    "customer",
    "score",
    "scale_max",
    "scale_min",
]


def _same_cell(a: str, b: str) -> bool:
    """Two cells that read as the same value: equal text once trimmed, or the same number."""
    a, b = " ".join(a.split()), " ".join(b.split())
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(_CELL, min_size=7, max_size=7), max_size=12))
def test_ledger_always_balances(rows: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        with (base / "surveys.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(_SURVEY_HEADER)
            writer.writerows(rows)
        r = _load('[sources.surveys]\npath = "surveys.csv"', "surveys", base=base)
    _canonical(r)
    expected_rows = {i + 2 for i, row in enumerate(rows) if any(c.strip() for c in row)}
    assert r.rows_in == len(expected_rows)
    used, rejected, excluded = (set(x[SOURCE_ROW]) for x in (r.frame, r.rejects, r.excluded))
    assert used | rejected | excluded == expected_rows
    assert not used & rejected
    assert not used & excluded
    assert not rejected & excluded
    # each duplicate names an earlier used row holding the same values
    fields = list(DATASETS["surveys"].field_names)
    for row, message in r.excluded.select(SOURCE_ROW, "message").rows():
        kept = int(re.search(r"row (\d+) of", message).group(1))  # type: ignore[union-attr]
        assert kept < row
        assert kept in used
        assert all(map(_same_cell, rows[row - 2], rows[kept - 2])), (rows[row - 2], kept)
    assert len(fields) == len(_SURVEY_HEADER)


# --------------------------------------------------------------------------- derive, defaults, where, duplicates

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
    config = _config(_VEHICLES.replace('sites = ["Leeds", "York"]', ""))
    return load_dataset(config, "complaints", **kw)


def test_derived_fields_defaults_where_and_duplicates_on_a_vehicle_export() -> None:
    r = _vehicles()
    _canonical(r)
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
    r = load_dataset(_config(toml.replace('sites = ["Leeds", "York"]', "")), "complaints")
    _canonical(r)
    # the map applies to the derived value ('minor' -> 'major'); 'critical' is untouched
    assert r.frame["severity"].to_list() == ["critical", "major", "critical", "major"]


def test_an_unknown_column_in_an_expression_names_the_key_and_suggests() -> None:
    toml = _VEHICLES.replace("CRASH = 'Y' OR", "CRSH = 'Y' OR")
    with pytest.raises(
        ConfigError,
        match=r"derive\.severity.*'CRSH' is not in vehicle_complaints"
        r"\.csv \(did you mean 'CRASH'\?\)",
    ):
        load_dataset(_config(toml), "complaints")
    toml = _VEHICLES.replace('where = "ODINO IS NOT NULL"', 'where = "odino IS NOT NULL"')
    with pytest.raises(
        ConfigError, match=r"key 'sources\.complaints\.where'.*'odino'.*double quotes"
    ):
        load_dataset(_config(toml), "complaints")


def test_a_where_that_is_not_a_condition_is_a_config_error() -> None:
    toml = _VEHICLES.replace('where = "ODINO IS NOT NULL"', 'where = "MAKETXT"')
    with pytest.raises(ConfigError, match=r"where.*not true/false"):
        load_dataset(_config(toml), "complaints")


def test_derived_field_mapped_twice_is_refused() -> None:
    toml = _VEHICLES.replace(
        'constants = { category = "vehicle safety" }',
        'constants = { category = "x", product = "y" }',
    )
    with pytest.raises(ConfigError, match=r"'product' is mapped twice \(constants and derive\)"):
        load_dataset(_config(toml), "complaints")


def test_a_default_must_parse_as_its_field() -> None:
    toml = _VEHICLES.replace(
        'customer = "unknown"\n', 'customer = "unknown"\nclosed_date = "soon"\n'
    )
    with pytest.raises(ConfigError, match=r"defaults\.closed_date.*'soon' is not a date"):
        load_dataset(_config(toml), "complaints")


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
    r = _load(toml, base=tmp_path)
    _canonical(r)
    assert r.frame["complaint_id"].to_list() == ["V-1"]
    assert r.rejects.is_empty()
    assert r.excluded.select(SOURCE_ROW, "rule").rows() == [(3, "where"), (4, "where")]


def test_duplicates_across_a_glob_of_overlapping_exports() -> None:
    r = _load('[sources.complaints]\npath = "overlap/complaints-*.csv"')
    _canonical(r, glob=True)
    assert r.rows_in == 5
    assert r.frame["complaint_id"].to_list() == ["C-0901", "C-0902", "C-1001"]
    assert r.excluded.select("file", SOURCE_ROW, "rule").rows() == [
        ("overlap/complaints-month-2026-10.csv", 2, "duplicate"),
        ("overlap/complaints-month-2026-10.csv", 4, "duplicate"),
    ]
    assert "row 3 of overlap/complaints-full-2026-09.csv" in r.excluded["message"][0]
    assert "row 3 of overlap/complaints-month-2026-10.csv" in r.excluded["message"][1]


def test_rows_differing_in_one_field_are_not_duplicates(tmp_path: Path) -> None:
    lines = (FIX / "overlap/complaints-month-2026-10.csv").read_text().splitlines()
    lines[3] = lines[3].replace("minor", "major")
    (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
    r = _load('[sources.complaints]\npath = "c.csv"', base=tmp_path)
    _canonical(r)
    assert r.excluded.is_empty()
    assert r.frame.height == 3


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_duplicates_are_found_whether_or_not_the_export_is_sorted_by_id(
    tmp_path: Path, order: str
) -> None:
    head = "complaint_id,received_date,site,customer,product,category,severity,status"
    rows = {
        "C-1": "C-1,2026-10-01,Leeds,A,P,c,minor,open",
        "C-2": "C-2,2026-10-02,York,B,P,c,minor,open",
        "C-2b": "C-2,2026-10-02,York,B,P,c,major,open",  # same key, one field differs
        "C-3": "C-3,2026-10-03,Leeds,C,P,c,minor,open",
    }
    keys = ["C-1", "C-2", "C-2", "C-2b", "C-3", "C-3"]
    if order == "shuffled":
        keys = ["C-3", "C-2", "C-1", "C-2b", "C-3", "C-2"]
    (tmp_path / "c.csv").write_text("\n".join([head, *(rows[k] for k in keys)]) + "\n")
    r = _load('[sources.complaints]\npath = "c.csv"', base=tmp_path)
    _canonical(r)
    # source rows are 2..7; a row identical to an earlier one is excluded, naming that row
    first_of: dict[str, int] = {}
    expected: list[tuple[int, str]] = []
    for row, k in enumerate(keys, start=2):
        if k in first_of:
            expected.append((row, f"identical in every field to row {first_of[k]} of c.csv"))
        else:
            first_of[k] = row
    got = [(n, m.split(":")[0]) for n, m in r.excluded.select(SOURCE_ROW, "message").rows()]
    assert got == expected
    assert len(expected) == 2
    assert r.frame[SOURCE_ROW].to_list() == sorted(first_of.values())


@pytest.mark.parametrize(
    ("ids", "rises"),
    [
        (["R-1", "R-2", "R-3", "R-4", "R-5", "R-6", "R-7"], True),
        (["R-1", "R-2", "R-3", "R-3", "R-5", "R-6", "R-7"], False),  # equal across groups 1|2
        (["R-1", "R-2", "R-4", "R-3", "R-5", "R-6", "R-7"], False),  # falls across groups 1|2
        (["R-1", "R-2", "R-3", "R-4", "R-4", "R-6", "R-7"], False),  # equal inside group 2
        (["R-1", "R-2", "R-3", "R-4", "R-5", "R-6", "R-5"], False),  # falls in the last group
    ],
)
def test_an_identical_row_in_the_next_row_group_is_a_duplicate(
    tmp_path: Path, ids: list[str], rises: bool
) -> None:
    # 7 receipts in row groups of 3 (3 + 3 + 1); the key is checked group by group and
    # across the groups' edges, no copy of the column
    table = pa.table(
        {
            "receipt_id": ids,
            "supplier_id": ["S-1"] * 7,
            "site": ["Leeds"] * 7,
            "promised_date": pa.array([D(2026, 10, 2)] * 7),
            "received_date": pa.array([D(2026, 10, 2)] * 7),
            "qty_received": [10] * 7,
            "qty_rejected": [0] * 7,
        }
    )
    pq.write_table(table, tmp_path / "receipts.parquet", row_group_size=3)
    cfg = _config('[sources.receipts]\npath = "receipts.parquet"\n', base=tmp_path)
    r = load_dataset(cfg, "receipts", period="2026-10")
    _canonical(r)
    frame = pl.read_parquet(tmp_path / "receipts.parquet")
    key = frame.get_column("receipt_id")
    assert key.n_chunks() == 3
    assert sources._rising(key) is rises
    assert sources._rising(key.rechunk()) is rises
    # every later row identical to an earlier one (here: the same ID) is excluded
    seen: set[str] = set()
    dups = []
    for row, k in enumerate(ids, start=2):
        if k in seen:
            dups.append(row)
        seen.add(k)
    assert r.excluded.filter(pl.col("rule") == "duplicate")[SOURCE_ROW].to_list() == dups
    assert r.frame.height == len(seen)


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
    return _config(
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
    assert sum(sources._concurrent(s) for s in cfg.sources.values()) > 1  # read side by side
    together = load_all(cfg, period="2026-10")
    assert list(together) == list(cfg.sources)
    for name, r in together.items():
        alone = load_dataset(cfg, name, period="2026-10")
        assert r.frame.equals(alone.frame), name
        assert r.rejects.equals(alone.rejects), name
        assert r.excluded.equals(alone.excluded), name
        assert (r.rows_in, r.sha256, r.files) == (alone.rows_in, alone.sha256, alone.files)


@pytest.mark.parametrize(
    ("toml", "side_by_side"),
    [
        ('path = "x.parquet"', True),
        ('path = "exports/*.csv"', True),
        ('path = "x.dat"\nformat = "csv"', True),
        ('path = "x.xlsx"', False),  # openpyxl's warnings: silenced through the process's filters
        ('path = "x.csv"\nformat = "excel"', False),
        ('path = "x.*"', False),  # the format is told file by file
    ],
)
def test_which_sources_are_read_side_by_side(toml: str, side_by_side: bool) -> None:
    cfg = _config(f"[sources.complaints]\n{toml}\n")
    assert sources._concurrent(cfg.sources["complaints"]) is side_by_side


# --------------------------------------------------------------------------- malformed files


def test_an_unclosed_quote_mid_file_names_the_line_and_the_swallowed_lines() -> None:
    with pytest.raises(
        SourceError, match=r"row 3: line 3: a quoted field .* lines 3-6 and swallows 3 line"
    ):
        _load('[sources.complaints]\npath = "unclosed_quote.csv"')


def test_stray_quotes_that_pair_up_still_name_the_swallowed_lines() -> None:
    with pytest.raises(SourceError, match=r"line 3: .* lines 3-5 and swallows 2 line"):
        _load('[sources.complaints]\npath = "stray_quotes.csv"')


def test_a_genuine_multiline_field_is_still_read() -> None:
    r = _load('[sources.complaints]\npath = "multiline_formulas.csv"\nignore_columns = ["*"]')
    _canonical(r)
    assert r.frame.height > 0


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        (gzip.compress(b"complaint_id,received_date\nC-1,2026-10-01\n"), "gzip-compressed"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "a PNG image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(40), "old binary Excel"),
        (b"abc\x00\x00def,ghi\n", "binary data"),
    ],
)
def test_binary_files_given_as_csv_are_named_for_what_they_are(
    tmp_path: Path, payload: bytes, what: str
) -> None:
    (tmp_path / "complaints.csv").write_bytes(payload)
    with pytest.raises(SourceError, match=what) as err:
        _load('[sources.complaints]\npath = "complaints.csv"', base=tmp_path)
    assert "Windows-1252" not in str(err.value)


def test_an_xlsx_given_as_csv_suggests_format_excel(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["complaint_id"])  # type: ignore[union-attr]
    wb.save(tmp_path / "complaints.csv")
    with pytest.raises(SourceError, match=r'ZIP archive.*format = "excel"'):
        _load('[sources.complaints]\npath = "complaints.csv"', base=tmp_path)


def test_wrong_delimiter_says_the_header_was_read_as_one_column() -> None:
    with pytest.raises(
        HeaderError,
        match=r"whole header was read as one column.*semicolon-separated.*delimiter = \";\"",
    ):
        _load('[sources.complaints]\npath = "semicolons.csv"')


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
    _canonical(r)
    assert r.frame["site"].to_list() == ["Côte d'Ivoire", "東京"]
    assert r.rejects.select(SOURCE_ROW, "rule").rows() == [(3, "type:site")]
    assert "is not a site name" in r.rejects["message"][0]
    # with a site list, the names in it obey the same rule, and the contract's site_known
    # rule sets aside any other value (the reader lets it through to be named there)
    sites = 'sites = ["Côte d\'Ivoire", "東京"]'
    data = tomllib.loads(f'[organisation]\nname = "T"\n{sites}\n{toml}')
    r = load_dataset(from_dict(data, path=tmp_path / "qmskpi.toml"), "complaints")
    _canonical(r)
    assert r.rejects.is_empty()
    assert r.frame["site"].to_list() == ["Côte d'Ivoire", "Plant/../etc", "東京"]


# --------------------------------------------------------------------------- notebook display


def test_loaded_dataset_repr_is_short_and_html_escapes_the_file_name(tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)>.csv"
    (tmp_path / evil).write_bytes((FIX / "complaints_basic.csv").read_bytes())
    r = _load(f"[sources.complaints]\npath = {evil!r}", base=tmp_path)
    assert repr(r) == (
        f"<LoadedDataset complaints from {evil}: 3 rows in, 3 read, 0 rejected, 0 excluded>"
    )
    page = r._repr_html_()
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in page
    assert r.sha256[:16] in page
    assert r.sha256 not in page


def test_read_only_kwargs_open_duckdb_files_read_only_only() -> None:
    """A DuckDB file is opened read-only (many processes may then read it at once); DuckDB
    in memory cannot be, and other databases take no such argument."""
    from qmskpi.sources import read_only_kwargs

    assert read_only_kwargs("duckdb:////tmp/qms.duckdb") == {"connect_args": {"read_only": True}}
    assert read_only_kwargs("duckdb:///:memory:") == {}
    assert read_only_kwargs("duckdb://") == {}
    assert read_only_kwargs("postgresql+psycopg://u@h/db") == {}
    assert read_only_kwargs("sqlite:////tmp/q.db") == {}
