"""qmskpi.sources.header: the raw header checks (blank, duplicate, missing, unknown columns), positions."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import openpyxl
import pytest

from qmskpi.datasets import SOURCE_ROW
from qmskpi.errors import HeaderError
from sources.helpers import D, check_canonical, load_source


def test_tab_separated_file_without_header_maps_by_position_with_constants() -> None:
    r = load_source(
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
    check_canonical(r)
    assert r.frame[SOURCE_ROW].to_list() == [1, 2]
    assert r.frame.select("complaint_id", "received_date", "site", "status").rows() == [
        ("C-301", D(2026, 10, 5), "Leeds", "open"),
        ("C-302", D(2026, 10, 6), "Leeds", "closed"),
    ]


def test_no_header_needs_a_position_for_every_required_field() -> None:
    with pytest.raises(HeaderError, match="no position for required field\\(s\\) 'site'"):
        load_source(
            '[sources.complaints]\npath = "no_header.tsv"\ndelimiter = "\\t"\nhas_header = false\n'
            "positions = { complaint_id = 1, received_date = 2, customer = 3, product = 4, "
            "category = 5, severity = 6, status = 7 }"
        )


def test_position_beyond_the_last_column_is_a_header_error() -> None:
    with pytest.raises(
        HeaderError, match=re.escape("positions.site = 12, but the file has 8 column")
    ) as info:
        load_source(
            '[sources.complaints]\npath = "no_header.tsv"\ndelimiter = "\\t"\nhas_header = false\n'
            "positions = { complaint_id = 1, received_date = 2, customer = 3, product = 4, "
            "category = 5, severity = 6, status = 7, site = 12 }"
        )
    assert info.value.column == "site"


def test_bom_left_inside_a_header_name_is_caught(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("complaint_id,\ufeffreceived_date\nC-1,2026-10-01\n")
    with pytest.raises(HeaderError, match="byte-order-mark residue"):
        load_source('[sources.complaints]\npath = "x.csv"\nignore_columns = ["*"]', base=tmp_path)


def test_duplicate_header() -> None:
    with pytest.raises(HeaderError) as info:
        load_source('[sources.complaints]\npath = "duplicate_header.csv"')
    assert info.value.column == "customer"
    assert "duplicate header 'customer' (columns 4, 9)" in str(info.value)
    assert str(info.value).startswith("duplicate_header.csv, dataset 'complaints'")


def test_duplicate_of_an_ignored_column_is_fine(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(
        "complaint_id,received_date,site,customer,product,category,severity,status,Notes,Notes\n"
        "C-1,2026-10-01,Leeds,Acme,P-1,packaging,minor,open,a,b\n"
    )
    r = load_source(
        '[sources.complaints]\npath = "x.csv"\nignore_columns = ["Notes"]', base=tmp_path
    )
    assert r.frame.height == 1


def test_blank_header() -> None:
    with pytest.raises(HeaderError, match="column 4 has a blank header") as info:
        load_source('[sources.complaints]\npath = "blank_header.csv"')
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
    r = load_source(f'[sources.complaints]\npath = "x.csv"\n{extra}', base=tmp_path)
    check_canonical(r)
    assert r.rows_in == 2
    assert r.frame.select("complaint_id", "received_date", "site", SOURCE_ROW).rows() == [
        ("C-1", D(2026, 10, 1), "Leeds", 2),
        ("C-2", D(2026, 10, 2), "York", 4),
    ]


def test_positions_count_the_file_columns_empty_ones_included(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text(_EMPTY_COLUMNS_CSV)
    r = load_source(
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
        load_source('[sources.complaints]\npath = "x.csv"\nignore_columns = ["*"]', base=tmp_path)
    assert (info.value.path, info.value.column) == ("x.csv", "#4")
    (tmp_path / "x.csv").write_text(_EMPTY_COLUMNS_CSV.replace(",,,,,,,,,,", "7,,,,,,,,,,"))
    with pytest.raises(HeaderError, match="column 1 has a blank header") as info:
        load_source('[sources.complaints]\npath = "x.csv"', base=tmp_path)
    assert info.value.column == "#1"


def test_excel_empty_column_between_columns_is_not_a_column(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["complaint_id", None, "received_date", "site", "customer", "product"])
    ws.append(["C-1", None, dt.date(2026, 10, 1), "Leeds", "Acme", "P-1"])
    ws["B3"].number_format = "0.00"  # formatting only, no value
    wb.save(tmp_path / "x.xlsx")
    r = load_source(
        '[sources.complaints]\npath = "x.xlsx"\npositions = { product = 6 }\n'
        'constants = { category = "general", severity = "minor", status = "open" }',
        base=tmp_path,
    )
    assert r.frame.select("complaint_id", "received_date", "product").rows() == [
        ("C-1", D(2026, 10, 1), "P-1")
    ]


def test_missing_required_column_with_did_you_mean_over_the_file_headers() -> None:
    with pytest.raises(HeaderError) as info:
        load_source('[sources.complaints]\npath = "misspelled_header.csv"')
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
        load_source(
            '[sources.complaints]\npath = "complaints_basic.csv"\ncolumns = { received_date = "Recieved" }'
        )


def test_unknown_columns_with_did_you_mean_over_canonical_names() -> None:
    with pytest.raises(HeaderError) as info:
        load_source('[sources.complaints]\npath = "unknown_column.csv"')
    msg = str(info.value)
    assert info.value.column == "Priority"
    assert "unexpected columns 'Priority', 'severty' (did you mean 'severity'?)" in msg
    assert "ignore_columns" in msg


@pytest.mark.parametrize("ignore", ['["*"]', '["Priority", "severty"]', '["Prio*", "sev?rty"]'])
def test_ignore_columns_accepts_extra_headers(ignore: str) -> None:
    r = load_source(f'[sources.complaints]\npath = "unknown_column.csv"\nignore_columns = {ignore}')
    assert r.frame["complaint_id"].to_list() == ["C-1"]


def test_wrong_delimiter_says_the_header_was_read_as_one_column() -> None:
    with pytest.raises(
        HeaderError,
        match=r"whole header was read as one column.*semicolon-separated.*delimiter = \";\"",
    ):
        load_source('[sources.complaints]\npath = "semicolons.csv"')
