"""qmskpi.sources.excel_reader: workbooks, sheets, merged cells, formulas, typed cells."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from qmskpi.datasets import SOURCE_ROW
from qmskpi.errors import ConfigError, HeaderError, SourceError
from sources.helpers import D, check_canonical, check_ledger, load_source, sha256_of


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
    r = load_source(_XLSX, base=tmp_path)
    check_canonical(r)
    assert r.sha256 == sha256_of(tmp_path / "export.xlsx")
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
    assert load_source(_XLSX + 'sheet = "Export"', base=tmp_path).rows_in == 3
    assert load_source(_XLSX + "sheet = 1", base=tmp_path).rows_in == 3
    with pytest.raises(SourceError, match="sheet 'Exprt' not found \\(did you mean 'Export'\\?\\)"):
        load_source(_XLSX + 'sheet = "Exprt"', base=tmp_path)
    with pytest.raises(SourceError, match="sheet 3 not found: the workbook has 2 sheet"):
        load_source(_XLSX + "sheet = 3", base=tmp_path)
    with pytest.raises(ConfigError, match="1-based"):
        load_source(_XLSX + "sheet = 0", base=tmp_path)


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
        return load_source(toml + sheet, base=tmp_path).frame["complaint_id"].to_list()

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
        load_source(without_positions, base=tmp_path)


def test_corrupt_workbook_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "export.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(
        SourceError, match=re.escape("export.xlsx, dataset 'complaints': not a readable .xlsx")
    ):
        load_source(_XLSX, base=tmp_path)


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
        load_source(toml, base=tmp_path)

    # Saved by Excel, the same cells carry their results: a text result, and an
    # empty-string result (t="str", <v></v>) that is a blank, not an error.
    def saved(xml: bytes) -> bytes:
        xml = xml.replace(b'<c r="A3"><f>"C-"&amp;2</f><v /></c>', b'<c r="A3" t="str"><f>"C-"&amp;2</f><v>C-2</v></c>')  # fmt: skip
        xml = xml.replace(b'<c r="A4"><f>"C-"&amp;3</f><v /></c>', b'<c r="A4" t="str"><f>IF(1,"","")</f><v></v></c>')  # fmt: skip
        return re.sub(rb'<c r="([B-H])4"><f>(\w+)</f><v ?/>', rb'<c r="\g<1>4"><f>\2</f><v>0</v>', xml)  # fmt: skip

    _sheet_xml(tmp_path / "export.xlsx", saved)
    r = load_source(toml, base=tmp_path)
    check_ledger(r)
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
    r = load_source(toml, "suppliers", base=tmp_path)
    check_canonical(r)
    assert r.frame.select("supplier_id", "critical", "next_evaluation_due", SOURCE_ROW).rows() == [
        ("S-1", True, D(2026, 11, 3), 2),
        ("S-2", False, D(2027, 1, 9), 3),
    ]
    ws.append(["S-3", "Gamma", "resin", True, "approved", 45678.5])  # a number, not a date cell
    wb.save(tmp_path / "s.xlsx")
    r = load_source(toml, "suppliers", base=tmp_path)
    check_canonical(r)
    assert r.frame["supplier_id"].to_list() == ["S-1", "S-2"]
    assert r.rejects.select(SOURCE_ROW, "column", "value").rows() == [
        (4, "next_evaluation_due", "45678.5")
    ]
