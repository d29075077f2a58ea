"""qmskpi.sources.text: trimming, null words, value maps; the cheap checks agree with the full ones."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmskpi.datasets import SOURCE_ROW
from qmskpi.sources import LoadedDataset
from qmskpi.sources.text import (
    _WHITE_SPACE,
    _blank_mask,
    _few_values,
    _may_need_trim,
    _text_facts,
    _value_facts_of,
)
from sources.helpers import check_canonical, check_ledger, load_source


def test_value_maps_and_thousands_separators() -> None:
    r = load_source(
        """
[sources.inspections]
path = "inspections_value_maps.csv"
[sources.inspections.value_maps]
result = { "-1" = "pass", "0" = "fail" }
stage = { "Incoming Inspection" = "incoming", "In-process" = "in_process", Final = "final" }
""",
        "inspections",
    )
    check_canonical(r)
    assert r.frame["stage"].to_list() == ["incoming", "in_process", "final"]
    assert r.frame["result"].to_list() == ["pass", "fail", "pass"]
    assert r.frame["qty_inspected"].to_list() == [50, 50, 40]
    assert r.rejects.drop("file").rows() == [
        (5, "qty_inspected", "1,234", "type:qty_inspected", "'1,234' is not a whole number")
    ]


def test_na_values_make_not_captured_a_null() -> None:
    r = load_source(
        '[sources.complaints]\npath = "not_captured.csv"\nna_values = ["", "Not captured"]'
    )
    assert r.frame["complaint_id"].to_list() == ["C-601", "C-602", "C-605"]
    assert r.frame["received_date"][1] is None
    check_ledger(r)


def test_value_map_to_empty_string_means_null() -> None:
    r = load_source(
        '[sources.complaints]\npath = "not_captured.csv"\n'
        'value_maps = { units_affected = { "Not captured" = "" } }'
    )
    assert r.rejects.filter(pl.col(SOURCE_ROW) == 3)["column"].to_list() == ["received_date"]


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
    assert white_space == _WHITE_SPACE
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
    assert _text_facts(frame, ["v"], nulls)["trim:v"] == changes
    assert _may_need_trim(frame, ["v"]) == ({"v"} if changes else set())
    # blank (null, empty or whitespace only) exactly where the full trim leaves nothing
    full = frame["v"].is_null() | (frame["v"].str.strip_chars() == "")
    assert _blank_mask(frame["v"]).to_list() == full.to_list()


def _load_with_every_text_step(
    toml: str, base: Path, monkeypatch: pytest.MonkeyPatch
) -> LoadedDataset:
    """The load with every text column trimmed and checked for null words and blanks."""
    with monkeypatch.context() as m:
        m.setattr(
            "qmskpi.sources.text._text_facts", lambda frame, names, nulls: dict.fromkeys(
                [f"{k}:{n}" for n in names for k in ("trim", "nulls", "blank")], True
            )
        )  # fmt: skip
        return load_source(toml, base=base)


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
    fast = load_source(toml, base=tmp_path)
    full = _load_with_every_text_step(toml, tmp_path, monkeypatch)  # the full trim, as before
    assert fast.frame.equals(full.frame)
    check_canonical(fast)
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
    few = _few_values(frame, names)
    assert set(few) == set(names) - {"ids"}  # the fast path is the one under test
    for name, values in few.items():  # every distinct value is among those checked
        assert set(values.to_list()) == set(columns[name]) - {None}
    found = _text_facts(frame, names, nulls)
    assert found == _value_facts_of(frame, names, nulls)  # every value, as before
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
    fast = load_source(toml, base=tmp_path)
    full = _load_with_every_text_step(toml, tmp_path, monkeypatch)
    assert fast.frame.equals(full.frame)
    sites = fast.frame["site"]
    assert (sites[20_001], sites[20_003]) == ("York", "Leeds")
    # rows alternate Leeds (even) and York (odd); row 20,003 was York, now Leeds
    assert sites.value_counts().sort("site").rows() == [("Leeds", 22_501), ("York", 22_499)]
    assert fast.frame["status"][30_002] is None
    assert fast.frame["status"].null_count() == 1
    assert fast.rows_in == fast.frame.height == n
