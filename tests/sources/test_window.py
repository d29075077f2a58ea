"""qmskpi.sources.window: the trend window, for SQL sources and pushed into Parquet scans."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qmskpi.datasets import SOURCE_ROW
from qmskpi.sources import load_dataset, sql_window
from sources.helpers import D, check_canonical, make_config


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
    cfg = make_config(
        '[sources.receipts]\npath = "receipts.parquet"\n'
        '[sources.inspections]\npath = "inspections.parquet"\n',
        base=tmp_path,
    )
    r = load_dataset(cfg, "receipts", period="2026-10")
    check_canonical(r)
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
    check_canonical(i)
    assert i.frame["inspection_id"].to_list() == ["I-2", "I-3"]
    assert i.excluded.select(SOURCE_ROW, "rule").rows() == [(2, "outside_window")]
    # without a period the file is read whole
    assert load_dataset(cfg, "receipts").frame.height == 5
    # so it is when a date needs the text rules first (here a null value): nothing left out
    toml = '[sources.receipts]\npath = "receipts.parquet"\nnull_values = { received_date = ["x"] }'
    r = load_dataset(make_config(toml, base=tmp_path), "receipts", period="2026-10")
    check_canonical(r)
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
    cfg = make_config('[sources.receipts]\npath = "receipts.parquet"\n', base=tmp_path)
    r = load_dataset(cfg, "receipts", period="2026-10")
    check_canonical(r)
    # row k of the file (from 0) is source row k + 2 (row 1 holds the column names)
    assert r.excluded.select(SOURCE_ROW, "rule").rows() == [
        (k + 2, "outside_window") for k in sorted(old)
    ]
    kept = [k for k in range(12) if k not in old]
    assert r.frame.select("receipt_id", SOURCE_ROW).rows() == [(f"R-{k + 1}", k + 2) for k in kept]
    assert (r.rows_in, r.frame.height, r.rows_excluded) == (12, len(kept), len(old))
    # the loaded frame keeps the scan's chunks (no copy), lined up in every column
    assert len({tuple(c.chunk_lengths()) for c in r.frame.get_columns()}) == 1


def test_sql_window() -> None:
    assert sql_window("2026-10") == (D(2024, 8, 3), D(2026, 10, 31))
    assert sql_window("2026-Q3", trend_months=12, lookback_days=0) == (
        D(2025, 10, 1),
        D(2026, 9, 30),
    )
