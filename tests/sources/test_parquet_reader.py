"""qmskpi.sources.parquet_reader: typed columns, corrupt files, duplicate names, rows left out."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmskpi.datasets import SOURCE_ROW
from qmskpi.errors import HeaderError, SourceError
from qmskpi.sources.parquet_reader import _missing_rows
from sources.helpers import D, check_canonical, load_source, sha256_of


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
    r = load_source(
        '[sources.complaints]\npath = "c.parquet"\ndate_formats = { received_date = "%Y%m%d", '
        'closed_date = "%d/%m/%Y" }\nnull_values = { received_date = ["19010101"] }',
        base=tmp_path,
    )
    check_canonical(r)
    assert r.sha256 == sha256_of(tmp_path / "c.parquet")
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
        load_source('[sources.complaints]\npath = "c.parquet"', base=tmp_path)


def test_parquet_with_a_duplicate_column_name_is_a_header_error(tmp_path: Path) -> None:
    columns = [pa.array(["C-1"]), pa.array(["C-2"])]
    table = pa.Table.from_arrays(columns, names=["complaint_id", "complaint_id"])
    pq.write_table(table, tmp_path / "c.parquet")
    with pytest.raises(HeaderError, match=r"c\.parquet, .*duplicate header: .*'complaint_id'"):
        load_source('[sources.complaints]\npath = "c.parquet"', base=tmp_path)


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
    r = load_source('[sources.receipts]\npath = "r.parquet"', "receipts", base=tmp_path)
    check_canonical(r)
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
    r = load_source(toml + 'ignore_columns = ["history"]', "suppliers", base=tmp_path)
    assert r.frame.select("supplier_id", "critical").rows() == [("S-1", True)]
    with pytest.raises(SourceError, match="column 'history' holds"):
        load_source(toml + 'columns = { name = "history" }', "suppliers", base=tmp_path)


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(2, 60)), st.integers(0, 3))
def test_missing_rows_are_the_numbers_not_returned(present: set[int], after: int) -> None:
    end = max(present, default=1) + 1 + after  # rows 2 .. end - 1; none when end is 2
    rows = pl.Series(SOURCE_ROW, sorted(present), dtype=pl.Int64)
    expected = [k for k in range(2, end) if k not in present]
    assert _missing_rows(rows, end).to_list() == expected
    assert rows.to_list() == sorted(present)  # the row numbers given are left as they were
