"""pipeline.inputs: what a run records of its inputs (a SQL source's database and query, the inputs digest)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import polars as pl

from pipeline.helpers import (
    AS_OF,
    PERIOD,
    copy_sample,
    fake_render,
)
from qmskpi import archive, pipeline


def test_a_sql_source_is_recorded_with_its_database_and_query(tmp_path: Path) -> None:
    import sqlite3

    cfg_file = copy_sample(tmp_path / "data")
    complaints = pl.read_csv(cfg_file.parent / "complaints.csv", infer_schema=False)
    with sqlite3.connect(cfg_file.parent / "qms.db") as db:
        db.execute(f"CREATE TABLE complaints ({', '.join(complaints.columns)})")
        db.executemany(
            f"INSERT INTO complaints VALUES ({', '.join('?' * complaints.width)})",
            complaints.rows(),
        )
    db.close()
    query = "SELECT * FROM complaints WHERE received_date <= :period_end"
    text = cfg_file.read_text()
    text = re.sub(
        r'(?ms)^\[sources\.complaints\]\npath = "complaints.csv"\nformat = "csv"\n',
        f'[databases.qms]\nurl = "sqlite:///qms.db"\n\n'
        f'[sources.complaints]\ndatabase = "qms"\nquery = {json.dumps(query)}\n',
        text,
    )
    assert "sqlite:///qms.db" in text
    cfg_file.write_text(text)
    out = pipeline.run_review(cfg_file, PERIOD, as_of=AS_OF, renderer=fake_render)
    assert out.status == "published", out.error
    assert out.pack_dir is not None
    m = json.loads((out.pack_dir / "manifest.json").read_text())
    (item,) = [i for i in m["inputs"] if i["dataset"] == "complaints"]
    assert item["origin"] == "sql:qms"
    assert item["query"] == query
    assert item["files"] == []
    assert re.fullmatch(r"[0-9a-f]{64}", item["sha256"])
    assert item["rows_in"] == complaints.height


def test_as_of_is_part_of_the_inputs_digest() -> None:
    rec = archive.InputRecord("complaints", "x.csv", "ab" * 32, 10)
    base = {"config_digest": "c", "version": "1", "period": "2026-10", "scope": "all"}
    now = archive.inputs_digest([rec], **base)
    assert archive.inputs_digest([rec], **base, as_of=None) == now
    backfill = archive.inputs_digest([rec], **base, as_of=date(2026, 11, 2))
    assert backfill != now
    assert backfill != archive.inputs_digest([rec], **base, as_of=date(2026, 11, 3))
