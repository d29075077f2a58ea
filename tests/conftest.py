"""Shared test set-up: UTC, no GX analytics, paths to the sample data."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

os.environ["TZ"] = "UTC"
os.environ["GX_ANALYTICS_ENABLED"] = "False"

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = ROOT / "sample_data"
SAMPLE_CONFIG = SAMPLE_DATA / "qmskpi.toml"


@pytest.fixture
def sample_config_path() -> Path:
    """The committed sample configuration (3 sites x 36 months ending 2026-10)."""
    return SAMPLE_CONFIG


@contextmanager
def mounted_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real small tmpfs at ``where`` (a full disk on demand); skips the test unless root."""
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP receiver on 127.0.0.1 that records JSON POSTs."""
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(
                {
                    "path": self.path,
                    "content_type": self.headers["Content-Type"],
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/qmskpi", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --------------------------------------------------------------------------- PostgreSQL


class PgTable:
    """A uniquely named table in the throwaway PostgreSQL of ``make test`` (dropped after)."""

    def __init__(self, url: str) -> None:
        import uuid

        self.url = url
        self.name = f"qmskpi_t_{uuid.uuid4().hex[:12]}"

    def load(self, frame: Any) -> str:
        """Create the table from a polars frame; its SELECT."""
        return create_table(self.url, self.name, frame)


def create_table(url: str, name: str, frame: Any) -> str:
    """Table ``name`` in the database at ``url`` from a polars frame (dates, timestamps, Int64,
    Float64, booleans, text), created through SQLAlchemy; returns ``SELECT * FROM name``."""
    import polars as pl
    import sqlalchemy as sa

    types = {
        pl.Date(): sa.Date(),
        pl.Datetime("us"): sa.DateTime(),
        pl.Int64(): sa.BigInteger(),
        pl.Float64(): sa.Float(),
        pl.Boolean(): sa.Boolean(),
    }
    table = sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(c, types.get(t, sa.Text())) for c, t in frame.schema.items()),
    )
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), frame.to_dicts())
    engine.dispose()
    return f"SELECT * FROM {name}"


@pytest.fixture
def pg_table() -> Iterator[PgTable]:
    """A table to fill in the PostgreSQL at ``QMSKPI_TEST_PG_URL`` (skips when unset)."""
    import sqlalchemy as sa

    url = os.environ.get("QMSKPI_TEST_PG_URL")
    if not url:
        why = os.environ.get("QMSKPI_TEST_PG_UNAVAILABLE", "QMSKPI_TEST_PG_URL is not set")
        pytest.skip(f"{why} (`make test` starts a throwaway PostgreSQL and sets it)")
    engine_url = sa.make_url(url)
    if engine_url.drivername == "postgresql":
        engine_url = engine_url.set(drivername="postgresql+psycopg")
    table = PgTable(engine_url.render_as_string(hide_password=False))
    yield table
    engine = sa.create_engine(table.url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table.name}"))
    engine.dispose()


@pytest.fixture
def dirty_inspections() -> Any:
    """400 canonical inspections (3 sites, 2025-04 .. 2026-03) with 11 faulty rows, 0-10.

    Row 0 negative cost; 1 no id; 2 repeats row 3's id (both rows fail unique);
    4 site Mars; 5 stage bogus; 6 more defective than inspected; 7 result maybe;
    8 dated 2026-05-01 (after an as-of of 2026-04-05); 9 qty_inspected 0;
    10 site Mars and stage bogus (one row, two rules).
    """
    from datetime import date, timedelta

    import numpy as np
    import polars as pl

    rng = np.random.default_rng(7)
    n = 400
    qty = rng.integers(1, 200, n)
    bad = rng.binomial(qty, 0.02)
    sites, stages = ("North", "South", "East"), ("incoming", "in_process", "final")
    rows = [
        {
            "inspection_id": f"I{i:04d}",
            "inspection_date": date(2025, 4, 1) + timedelta(days=int(rng.integers(0, 365))),
            "site": sites[int(rng.integers(0, 3))],
            "product": "p1",
            "stage": stages[int(rng.integers(0, 3))],
            "lot_id": f"L{i // 3}",
            "qty_inspected": int(qty[i]),
            "qty_defective": int(bad[i]),
            "defect_code": "D1" if bad[i] else None,
            "result": "fail" if bad[i] else "pass",
            "cost": float(c) / 4 if (c := int(rng.integers(1, 900))) % 3 == 0 else None,
        }
        for i in range(n)
    ]
    faults: dict[int, dict[str, Any]] = {
        0: {"cost": -2.5},
        1: {"inspection_id": None},
        2: {"inspection_id": "I0003"},
        4: {"site": "Mars"},
        5: {"stage": "bogus"},
        6: {"qty_defective": 500, "result": "fail"},
        7: {"result": "maybe"},
        8: {"inspection_date": date(2026, 5, 1)},
        9: {"qty_inspected": 0, "qty_defective": 0, "result": "pass"},
        10: {"site": "Mars", "stage": "bogus"},
    }
    for i, change in faults.items():
        rows[i] |= change
    schema = {
        "inspection_id": pl.String(),
        "inspection_date": pl.Date(),
        "site": pl.String(),
        "product": pl.String(),
        "stage": pl.String(),
        "lot_id": pl.String(),
        "qty_inspected": pl.Int64(),
        "qty_defective": pl.Int64(),
        "defect_code": pl.String(),
        "result": pl.String(),
        "cost": pl.Float64(),
    }
    return pl.DataFrame(rows, schema=schema)
