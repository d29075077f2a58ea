"""qmskpi.sources.files: missing files, globs, formats, binary files, files read side by side."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import openpyxl
import pytest

from qmskpi.datasets import SOURCE_ROW
from qmskpi.errors import SourceError
from qmskpi.sources.files import _concurrent
from sources.helpers import FIX, check_canonical, load_source, make_config, sha256_of


def test_missing_file_and_empty_glob() -> None:
    with pytest.raises(
        SourceError, match=re.escape("nope.csv, dataset 'complaints': file not found")
    ):
        load_source('[sources.complaints]\npath = "nope.csv"')
    with pytest.raises(SourceError, match=re.escape("no file matches 'none/*.csv'")):
        load_source('[sources.complaints]\npath = "none/*.csv"')


def test_unknown_suffix_asks_for_format(tmp_path: Path) -> None:
    (tmp_path / "x.dat").write_text("a\n")
    with pytest.raises(SourceError, match='set format = "csv"'):
        load_source('[sources.complaints]\npath = "x.dat"', base=tmp_path)


def test_glob_concatenates_sorted_files_with_per_file_rows() -> None:
    r = load_source('[sources.complaints]\npath = "glob/*.csv"')
    check_canonical(r, glob=True)
    names = ["glob/complaints-2026-09.csv", "glob/complaints-2026-10.csv"]
    assert r.origin == f"glob/*.csv [{', '.join(names)}]"
    assert [f.path for f in r.files] == names
    assert [f.rows_in for f in r.files] == [2, 1]
    blob = "".join(f"{n}\t{sha256_of(FIX / n)}\n" for n in names).encode()
    assert r.sha256 == hashlib.sha256(blob).hexdigest()
    assert r.frame.select("complaint_id", SOURCE_ROW, "source_file").rows() == [
        ("C-901", 2, names[0]),
        ("C-903", 2, names[1]),
    ]
    assert r.rejects.select("source_row", "value", "file").rows() == [
        (3, "31/09/2026", "glob/complaints-2026-09.csv")
    ]
    assert r.rows_in == 3


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
    cfg = make_config(f"[sources.complaints]\n{toml}\n")
    assert _concurrent(cfg.sources["complaints"]) is side_by_side


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
        load_source('[sources.complaints]\npath = "complaints.csv"', base=tmp_path)
    assert "Windows-1252" not in str(err.value)


def test_an_xlsx_given_as_csv_suggests_format_excel(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["complaint_id"])  # type: ignore[union-attr]
    wb.save(tmp_path / "complaints.csv")
    with pytest.raises(SourceError, match=r'ZIP archive.*format = "excel"'):
        load_source('[sources.complaints]\npath = "complaints.csv"', base=tmp_path)
