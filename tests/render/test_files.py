"""render.files: the CSV/XLSX/JSON exports: formula-safe, deterministic, atomic."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from qmskpi import render
from qmskpi.errors import RenderError

FORMULAS = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR", '=HYPERLINK("http://x")']


@pytest.mark.parametrize("text", FORMULAS)
def test_neutralise_formula_prefixes_a_quote(text: str) -> None:
    assert render.neutralise_formula(text) == "'" + text


@pytest.mark.parametrize("text", ["plain", "", " =x", "a=b", "'=x", "1-2"])
def test_neutralise_formula_leaves_other_text(text: str) -> None:
    assert render.neutralise_formula(text) == text


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "kpi": ["complaints_received", *FORMULAS],
            "value": [3.5, -1.0, -2.25, 0.0, 1e6, None, 7.0, 8.0],
            "count": [1, -5, 2, 3, 4, 5, 6, 7],
            "sound": [True, False, True, True, None, True, True, True],
            "day": [dt.date(2026, 10, 31)] * 8,
            "site": pl.Series(
                ["S1", "=S2", "S1", "S1", "S1", "S1", "S1", "S1"], dtype=pl.Categorical
            ),
        }
    )


def test_write_csv_neutralises_strings_keeps_numbers_and_is_deterministic(tmp_path: Path) -> None:
    a = render.write_csv(_frame(), tmp_path / "a.csv")
    b = render.write_csv(_frame(), tmp_path / "b.csv")
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text(encoding="utf-8")
    assert "\r\n" not in text
    assert text.endswith("\n")
    lines = text.split("\n")
    assert lines[0] == "kpi,value,count,sound,day,site"
    assert lines[1] == "complaints_received,3.5,1,true,2026-10-31,S1"
    assert lines[2] == "'=1+1,-1.0,-5,false,2026-10-31,'=S2"  # a negative number stays a number
    back = pl.read_csv(a)
    assert back["value"].dtype == pl.Float64
    assert back["count"].dtype == pl.Int64
    assert back["kpi"].to_list()[1:] == ["'" + f for f in FORMULAS]


def test_write_xlsx_writes_plain_values_no_formula_no_hyperlink(tmp_path: Path) -> None:
    frame = _frame()
    path = render.write_xlsx({"kpis": frame, "other": frame.head(2)}, tmp_path / "k.xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["kpis", "other"]
    ws = wb["kpis"]
    cells = [c for row in ws.iter_rows() for c in row]
    assert [c.data_type for c in cells if c.data_type == "f"] == []
    assert [c.coordinate for c in cells if c.hyperlink is not None] == []
    assert ws._hyperlinks == []
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("kpi", "value", "count", "sound", "day", "site")
    assert rows[2][:3] == ("'=1+1", -1.0, -5)  # numbers stay numbers, negative included
    assert rows[6][1] is None  # null -> empty cell
    assert rows[1][4] == dt.datetime(2026, 10, 31)
    # (XML reads a stored CR back as LF)
    assert [r[0] for r in rows[2:]] == ["'" + f.replace("\r", "\n") for f in FORMULAS]
    assert rows[2][5] == "'=S2"
    assert ws["A1"].font.bold
    assert ws.freeze_panes == "A2"
    with zipfile.ZipFile(path) as z:
        # raw XML: no <f> formula element, no <hyperlink>, no hyperlink relationship
        xml = b"".join(z.read(n) for n in z.namelist())
        assert b"<f>" not in xml
        assert b"<hyperlink" not in xml
        assert b"relationships/hyperlink" not in xml
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_write_xlsx_is_deterministic(tmp_path: Path) -> None:
    a = render.write_xlsx({"kpis": _frame()}, tmp_path / "a.xlsx").read_bytes()
    b = render.write_xlsx({"kpis": _frame()}, tmp_path / "b.xlsx").read_bytes()
    assert a == b
    with zipfile.ZipFile(tmp_path / "a.xlsx") as z:
        core = z.read("docProps/core.xml").decode()
    stamps = re.findall(r"<dcterms:(created|modified)[^>]*>([^<]+)<", core)
    assert stamps == [("created", "2000-01-01T00:00:00Z"), ("modified", "2000-01-01T00:00:00Z")]


def test_write_xlsx_strips_characters_excel_refuses(tmp_path: Path) -> None:
    path = render.write_xlsx(
        {"s": pl.DataFrame({"t": ["bell\x07here", "ok"]})}, tmp_path / "c.xlsx"
    )
    assert openpyxl.load_workbook(path)["s"]["A2"].value == "bellhere"


@pytest.mark.parametrize("name", ["", "a" * 32, "bad/name", "x[1]", "why?"])
def test_write_xlsx_refuses_a_bad_sheet_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(RenderError, match="invalid sheet name"):
        render.write_xlsx({name: pl.DataFrame({"a": [1]})}, tmp_path / "x.xlsx")


def test_write_json_is_sorted_utf8_with_a_final_newline(tmp_path: Path) -> None:
    @dataclasses.dataclass(frozen=True)
    class Item:
        name: str
        when: dt.date

    one = {
        "b": 1,
        "a": [Item("Müller", dt.date(2026, 10, 1))],
        "c": {"z", "y"},
        "nan": float("nan"),
    }
    two = {
        "nan": float("nan"),
        "c": {"y", "z"},
        "a": [Item("Müller", dt.date(2026, 10, 1))],
        "b": 1,
    }
    pa = render.write_json(one, tmp_path / "a.json")
    pb = render.write_json(two, tmp_path / "b.json")
    assert pa.read_bytes() == pb.read_bytes()
    text = pa.read_bytes().decode("utf-8")
    assert text.endswith("}\n")
    assert "Müller" in text
    assert json.loads(text) == {
        "a": [{"name": "Müller", "when": "2026-10-01"}],
        "b": 1,
        "c": ["y", "z"],
        "nan": None,
    }
    assert list(json.loads(text)) == ["a", "b", "c", "nan"]
    frame = render.write_json(
        {"t": pl.DataFrame({"x": [1, 2]}), "p": Path("a/b")}, tmp_path / "f.json"
    )
    assert json.loads(frame.read_text()) == {"p": "a/b", "t": [{"x": 1}, {"x": 2}]}


def test_exports_leave_no_temp_files(tmp_path: Path) -> None:
    render.write_json({"a": 1}, tmp_path / "a.json")
    render.write_csv(pl.DataFrame({"a": [1]}), tmp_path / "a.csv")
    render.write_xlsx({"a": pl.DataFrame({"a": [1]})}, tmp_path / "a.xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json", "a.xlsx"]
