"""Shared helpers of the qmskpi.sources tests: configs from TOML, loads, ledger and schema checks.

Fixture files live in ``tests/fixtures/sources/`` (byte-exact: see the
``.gitattributes`` there); workbooks, Parquet files and databases are made in
``tmp_path``. The PostgreSQL test needs ``QMSKPI_TEST_PG_URL`` (set by ``make test``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from pathlib import Path
from typing import Any

import polars as pl

from qmskpi.config import Config, from_dict
from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.sources import REJECT_SCHEMA, SOURCE_FILE, LoadedDataset, load_dataset

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
D = dt.date


def make_config(toml: str, base: Path = FIX) -> Config:
    data = tomllib.loads('[organisation]\nname = "Test Ltd"\nsites = ["Leeds", "York"]\n' + toml)
    return from_dict(data, path=base / "qmskpi.toml")


def load_source(
    toml: str, dataset: str = "complaints", base: Path = FIX, **kw: Any
) -> LoadedDataset:
    return load_dataset(make_config(toml, base), dataset, **kw)


def check_ledger(r: LoadedDataset) -> None:
    """rows_in = used + quarantined + excluded, each counted independently of the loader."""
    rejected = r.rejects.select("file", SOURCE_ROW).unique().height
    assert r.rows_in == r.frame.height + rejected + r.excluded.height
    assert r.rows_in == r.frame.height + r.rows_rejected + r.rows_excluded
    assert r.excluded.schema == pl.Schema(REJECT_SCHEMA)
    # no record is both excluded and rejected, and none is excluded twice
    out = r.excluded.select("file", SOURCE_ROW)
    assert out.unique().height == out.height
    assert out.join(r.rejects.select("file", SOURCE_ROW), on=["file", SOURCE_ROW]).is_empty()


def check_canonical(r: LoadedDataset, *, glob: bool = False) -> None:
    ds = DATASETS[r.dataset]
    schema = {**ds.schema, SOURCE_ROW: pl.Int64()}
    if glob:
        schema[SOURCE_FILE] = pl.String()
    assert r.frame.schema == pl.Schema(schema)
    assert r.rejects.schema == pl.Schema(REJECT_SCHEMA)
    check_ledger(r)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


ERP_TOML = """
[sources.complaints]
path = "erp_title_block.csv"
delimiter = ";"
header_row = 4
skip_footer_rows = 1
date_formats = { received_date = "%d/%m/%Y", closed_date = "%d/%m/%Y" }
columns = { complaint_id = "Complaint No", received_date = "Date Received", closed_date = "Date Closed", site = "Plant", customer = "Customer Name", product = "Item", category = "Complaint Type", severity = "Severity", status = "Status", description = "Details" }
"""
"""The ERP export of ``erp_title_block.csv``: title block, semicolons, footer, day-first dates."""
