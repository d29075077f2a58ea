"""qmskpi.sources.csv_reader: CSV files, encodings, line endings, quoting, numbers read by polars."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.errors import HeaderError, SourceError
from qmskpi.sources import LoadedDataset, SourceFile
from qmskpi.sources.csv_reader import _read_csv
from sources.helpers import ERP_TOML, FIX, D, check_canonical, load_source, make_config, sha256_of


def test_canonical_csv_loads_with_canonical_dtypes_and_source_rows() -> None:
    r = load_source('[sources.complaints]\npath = "complaints_basic.csv"')
    check_canonical(r)
    assert r.origin == "complaints_basic.csv"
    assert r.sha256 == sha256_of(FIX / "complaints_basic.csv")
    assert r.rows_in == 3
    assert r.rejects.is_empty()
    assert r.frame[SOURCE_ROW].to_list() == [2, 3, 4]
    assert r.frame["received_date"].to_list() == [D(2026, 10, 1), D(2026, 10, 3), D(2026, 10, 5)]
    assert r.frame["closed_date"].to_list() == [D(2026, 10, 15), None, None]
    # values are trimmed; "12.0" is a whole number; blanks are null
    assert r.frame["customer"].to_list() == ["Acme Retail", "Beta Ltd", "Acme Retail"]
    assert r.frame["units_affected"].to_list() == [3, None, 12]
    assert r.frame["description"].to_list() == ["Box dented", "Wrong label", None]
    assert r.files == (SourceFile("complaints_basic.csv", r.sha256, 3),)


def test_erp_export_with_title_block_footer_semicolons_and_value_maps() -> None:
    r = load_source(
        ERP_TOML
        + """
[sources.complaints.value_maps]
status = { Closed = "closed", "Closed - verified" = "closed", "In progress" = "open", New = "open" }
severity = { Minor = "minor", Major = "major", Critical = "critical" }
"""
    )
    check_canonical(r)
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
        load_source('[sources.complaints]\npath = "complaints_basic.csv"\nheader_row = 40')


def test_cr_only_line_endings_and_quoted_line_breaks() -> None:
    assert b"\r" in (FIX / "cr_only.csv").read_bytes()
    assert b"\n" not in (FIX / "cr_only.csv").read_bytes()
    r = load_source('[sources.complaints]\npath = "cr_only.csv"')
    check_canonical(r)
    assert r.frame[SOURCE_ROW].to_list() == [2, 3]
    assert r.frame["description"].to_list() == ["line one\nline two", "plain"]


def test_crlf_multiline_fields_count_as_one_row_and_formula_text_is_kept_verbatim() -> None:
    assert b"\r\n" in (FIX / "multiline_formulas.csv").read_bytes()
    r = load_source('[sources.complaints]\npath = "multiline_formulas.csv"')
    check_canonical(r)
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


def _load_as_text(toml: str, base: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedDataset:
    """The load with every number cell read as text and parsed by the text path, as before."""
    with monkeypatch.context() as m:
        m.setattr("qmskpi.sources.csv_reader._csv_numbers", lambda headers, src, ds: {})
        m.setattr("qmskpi.sources.parse._text_numbers", lambda s, kind: None)
        return load_source(toml, base=base)


def _csv_dtypes(path: Path) -> list[pl.DataType]:
    """How the CSV reader returned each column of a complaints file (before any mapping)."""
    src = make_config(f'[sources.complaints]\npath = "{path.name}"', path.parent).sources[
        "complaints"
    ]
    table = _read_csv(path.read_bytes(), src, DATASETS["complaints"], path.name)
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
    typed = load_source(toml, base=base)
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
    fast = load_source(toml, base=tmp_path)
    text = _load_as_text(toml, tmp_path, monkeypatch)
    check_canonical(fast)
    assert fast.frame.equals(text.frame)
    assert fast.rejects.equals(text.rejects)
    plain = not want_rejects  # the first case is read as numbers indeed
    want: list[pl.DataType] = [pl.Int64(), pl.Float64()] if plain else [pl.String()] * 2
    assert _csv_dtypes(tmp_path / "c.csv")[-2:] == want
    assert fast.frame["units_affected"].to_list() == want_units
    assert fast.frame["cost"].to_list() == want_cost
    assert fast.rejects.select(SOURCE_ROW, "column", "value", "message").rows() == want_rejects


def test_cp1252_file() -> None:
    r = load_source('[sources.complaints]\npath = "cp1252.csv"\nencoding = "cp1252"')
    assert r.frame["customer"].to_list() == ["Société Générale"]
    assert r.frame["description"].to_list() == ["Müller – 5 € short"]


def test_cp1252_read_as_utf8_suggests_the_encoding() -> None:
    with pytest.raises(SourceError, match=r'line 2\) is not valid utf-8.*encoding = "cp1252"'):
        load_source('[sources.complaints]\npath = "cp1252.csv"')


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
        load_source('[sources.complaints]\npath = "c.csv"', base=tmp_path)


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_quoted_field_over_two_lines_in_a_large_file_stays_one_record(
    tmp_path: Path, eol: str
) -> None:
    lines = _big_complaints_csv(20_000)
    lines[12_000] = lines[12_000].replace(",Acme,", ',"Acme' + eol + 'Widgets",')
    (tmp_path / "c.csv").write_bytes((eol.join(lines) + eol).encode("utf-8"))
    r = load_source('[sources.complaints]\npath = "c.csv"', base=tmp_path)
    check_canonical(r)
    assert r.rows_in == 20_000
    assert r.frame.filter(pl.col(SOURCE_ROW) == 12_001)["customer"].to_list() == ["Acme\nWidgets"]
    # the record after it keeps the row number a spreadsheet shows
    assert r.frame.filter(pl.col(SOURCE_ROW) == 12_002)["complaint_id"].to_list() == ["C-012000"]


def test_bom_file_reads_with_utf8_sig() -> None:
    r = load_source('[sources.complaints]\npath = "bom.csv"\nencoding = "utf-8-sig"')
    assert r.frame["complaint_id"].to_list() == ["C-801"]


@pytest.mark.parametrize(("encoding", "residue"), [("utf-8", "\\\\ufeff"), ("cp1252", "ï»¿")])
def test_bom_residue_is_a_header_error_suggesting_utf8_sig(encoding: str, residue: str) -> None:
    with pytest.raises(HeaderError, match=f"residue '{residue}'.*encoding = \"utf-8-sig\""):
        load_source(f'[sources.complaints]\npath = "bom.csv"\nencoding = "{encoding}"')


def test_empty_file_is_a_source_error() -> None:
    with pytest.raises(SourceError, match=re.escape("empty.csv, dataset 'complaints': empty file")):
        load_source('[sources.complaints]\npath = "empty.csv"')


def test_header_only_file_is_a_valid_empty_frame() -> None:
    r = load_source('[sources.complaints]\npath = "header_only.csv"')
    check_canonical(r)
    assert r.rows_in == 0
    assert r.frame.is_empty()


def test_row_with_extra_fields_is_quarantined() -> None:
    r = load_source('[sources.complaints]\npath = "ragged.csv"')
    check_canonical(r)
    assert r.frame["complaint_id"].to_list() == ["C-1", "C-3"]
    assert r.rejects.drop("file").rows() == [
        (3, "(row)", None, "shape:fields", "row has 9 fields, the header has 8")
    ]
    with pytest.raises(SourceError, match="row 3: row has 9 fields"):
        load_source('[sources.complaints]\npath = "ragged.csv"', on_bad_value="raise")


def test_an_unclosed_quote_mid_file_names_the_line_and_the_swallowed_lines() -> None:
    with pytest.raises(
        SourceError, match=r"row 3: line 3: a quoted field .* lines 3-6 and swallows 3 line"
    ):
        load_source('[sources.complaints]\npath = "unclosed_quote.csv"')


def test_stray_quotes_that_pair_up_still_name_the_swallowed_lines() -> None:
    with pytest.raises(SourceError, match=r"line 3: .* lines 3-5 and swallows 2 line"):
        load_source('[sources.complaints]\npath = "stray_quotes.csv"')


def test_a_genuine_multiline_field_is_still_read() -> None:
    r = load_source('[sources.complaints]\npath = "multiline_formulas.csv"\nignore_columns = ["*"]')
    check_canonical(r)
    assert r.frame.height > 0
