"""qmskpi.sources.keys: surrogate keys and duplicate rows."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qmskpi.datasets import SOURCE_ROW
from qmskpi.errors import ConfigError, HeaderError
from qmskpi.sources import load_dataset
from qmskpi.sources.keys import _rising
from sources.helpers import FIX, D, check_canonical, load_source, make_config

_NO_ID = (
    '[sources.complaints]\npath = "no_id.csv"\nsurrogate_key = true\nconstants = { site = "Leeds" }'
)


def test_surrogate_key_is_stable_and_an_identical_row_is_a_duplicate(tmp_path: Path) -> None:
    r1 = load_source(_NO_ID)
    r2 = load_source(_NO_ID)
    check_canonical(r1)
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
    r3 = load_source(_NO_ID, base=tmp_path)
    assert r3.frame["complaint_id"].to_list() == [ids[1], ids[0]]
    assert r3.sha256 != r1.sha256
    # drop_duplicates = false keeps both copies, told apart by -2
    r4 = load_source(_NO_ID + "\ndrop_duplicates = false")
    check_canonical(r4)
    assert r4.frame["complaint_id"].to_list() == [ids[0], ids[1], ids[0] + "-2"]


def test_missing_id_column_hints_at_surrogate_key() -> None:
    with pytest.raises(HeaderError, match=r"missing column 'complaint_id'.*surrogate_key = true"):
        load_source('[sources.complaints]\npath = "no_id.csv"\nconstants = { site = "Leeds" }')


def test_surrogate_key_needs_a_single_column_key() -> None:
    with pytest.raises(ConfigError, match="keyed by \\(site, product, month\\)"):
        load_source('[sources.shipments]\npath = "no_id.csv"\nsurrogate_key = true', "shipments")


def test_duplicates_across_a_glob_of_overlapping_exports() -> None:
    r = load_source('[sources.complaints]\npath = "overlap/complaints-*.csv"')
    check_canonical(r, glob=True)
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
    r = load_source('[sources.complaints]\npath = "c.csv"', base=tmp_path)
    check_canonical(r)
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
    r = load_source('[sources.complaints]\npath = "c.csv"', base=tmp_path)
    check_canonical(r)
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
    cfg = make_config('[sources.receipts]\npath = "receipts.parquet"\n', base=tmp_path)
    r = load_dataset(cfg, "receipts", period="2026-10")
    check_canonical(r)
    frame = pl.read_parquet(tmp_path / "receipts.parquet")
    key = frame.get_column("receipt_id")
    assert key.n_chunks() == 3
    assert _rising(key) is rises
    assert _rising(key.rechunk()) is rises
    # every later row identical to an earlier one (here: the same ID) is excluded
    seen: set[str] = set()
    dups = []
    for row, k in enumerate(ids, start=2):
        if k in seen:
            dups.append(row)
        seen.add(k)
    assert r.excluded.filter(pl.col("rule") == "duplicate")[SOURCE_ROW].to_list() == dups
    assert r.frame.height == len(seen)
