"""qmskpi.sources.mapping: canonical columns, rejects, raise mode, blank rows, the row ledger."""

from __future__ import annotations

import csv
import re
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.errors import SourceError
from sources.helpers import ERP_TOML, check_canonical, check_ledger, load_source


def test_optional_fields_absent_from_the_file_are_null_columns() -> None:
    r = load_source('[sources.complaints]\npath = "cp1252.csv"\nencoding = "cp1252"')
    check_canonical(r)
    for name in ("closed_date", "root_cause", "capa_id", "units_affected"):
        assert r.frame[name].null_count() == 1
    assert r.frame["closed_date"].dtype == pl.Date
    assert r.frame["units_affected"].dtype == pl.Int64


def test_raise_mode_names_file_column_row_value_and_format() -> None:
    with pytest.raises(SourceError) as info:
        load_source(
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


def test_raise_mode_names_the_file_header_when_it_differs() -> None:
    # received_date wrongly declared month-first: 01/10, 03/10 and 12/10 parse (as
    # January, March, December); 28/10/2026 in row 8 cannot.
    month_first = ERP_TOML.replace('received_date = "%d/%m/%Y"', 'received_date = "%m/%d/%Y"')
    with pytest.raises(SourceError) as info:
        load_source(month_first, on_bad_value="raise")
    assert str(info.value) == (
        "erp_title_block.csv, dataset 'complaints', column 'received_date', row 8: "
        "'28/10/2026' is not a date in format %m/%d/%Y (file column 'Date Received')"
    )


def test_not_captured_in_date_and_number_columns_is_quarantined_with_the_rule() -> None:
    r = load_source('[sources.complaints]\npath = "not_captured.csv"')
    check_canonical(r)
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


def test_trailing_delimiter_and_blank_rows_are_not_records() -> None:
    r = load_source('[sources.complaints]\npath = "trailing_delimiter.csv"')
    check_canonical(r)
    assert r.rows_in == 2
    assert r.frame[SOURCE_ROW].to_list() == [2, 4]


def test_row_with_values_only_beyond_the_header_is_not_skipped_as_blank(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(
        "complaint_id,received_date,site,customer,product,category,severity,status\n"
        "C-1,2026-10-01,Leeds,Acme,P-1,packaging,minor,open\n"
        ",,,,,,,,stray value\n"
    )
    r = load_source('[sources.complaints]\npath = "x.csv"', base=tmp_path)
    assert r.rows_in == 2
    assert r.rejects.select(SOURCE_ROW, "rule").rows() == [(3, "shape:fields")]
    check_ledger(r)


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
        r = load_source('[sources.surveys]\npath = "surveys.csv"', "surveys", base=base)
    check_canonical(r)
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
