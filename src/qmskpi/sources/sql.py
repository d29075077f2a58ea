"""SQL sources: the query run through SQLAlchemy with the period's window and the site
bound (never formatted into the SQL), the result mapped like a file and hashed with
the query and its parameters.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from qmskpi.config import Config, SourceConfig
from qmskpi.datasets import Dataset
from qmskpi.errors import ConfigError, SourceError, did_you_mean
from qmskpi.periods import Period
from qmskpi.sources.keys import _drop_duplicates, _key_mapped, _with_surrogate
from qmskpi.sources.mapping import _map_table
from qmskpi.sources.model import LoadedDataset, OnBadValue
from qmskpi.sources.table import _Column, _rows, _Table
from qmskpi.sources.text import _cell_text
from qmskpi.sources.window import sql_window

_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
"""Bind parameters as SQLAlchemy's ``text()`` finds them."""


def read_only_kwargs(url: Any) -> dict[str, Any]:
    """``create_engine`` arguments that open a DuckDB file read-only (none for any other
    database, nor for DuckDB in memory).

    DuckDB lets one process write a file, or many read it: pushdown only reads (its GX
    temporary tables live in memory), so scopes rendered in parallel (``--jobs``, Dask
    workers) can all query the same file, as pulling does."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    memory = parsed.database in (None, "", ":memory:")
    if parsed.get_backend_name() != "duckdb" or memory:
        return {}
    return {"connect_args": {"read_only": True}}


def db_url(config: Config, name: str) -> Any:
    """The SQLAlchemy URL of ``[databases.NAME]`` (relative SQLite/DuckDB files beside the config)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    db = config.databases[name]
    raw = db.resolve_url(config_path=config.path)
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            "not a database URL (expected e.g. sqlite:///qms.db, duckdb:///qms.duckdb, "
            "postgresql+psycopg://user@host/db)",
            path=config.path,
            key=f"databases.{name}.{'url_env' if db.url_env else 'url'}",
        ) from None
    backend = url.get_backend_name()
    database = url.database
    if (
        backend in ("sqlite", "duckdb")
        and database
        and database != ":memory:"
        and not database.startswith("file:")
        and not Path(database).is_absolute()
    ):
        url = url.set(database=str(config.base_dir / database))
    if url.drivername == "postgresql":
        try:
            import psycopg2  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: F401
        except ImportError:
            url = url.set(drivername="postgresql+psycopg")
    return url


def _load_sql(
    config: Config,
    src: SourceConfig,
    ds: Dataset,
    *,
    period: Period | str | None,
    trend_months: int | None,
    lookback_days: int | None,
    site: str | None,
    on_bad_value: OnBadValue,
) -> LoadedDataset:
    from sqlalchemy import Date, String, bindparam, create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    assert src.query is not None
    assert src.database is not None
    origin = f"sql:{src.database}"
    query = src.query
    params = sql_params(
        config,
        ds,
        query,
        origin,
        period=period,
        trend_months=trend_months,
        lookback_days=lookback_days,
        site=site,
    )
    url = db_url(config, src.database)
    # Typed binds: PostgreSQL can then type ":site IS NULL", SQLite gets ISO date text.
    types: dict[str, Any] = {"period_start": Date(), "period_end": Date(), "site": String()}
    statement = text(query).bindparams(*(bindparam(k, type_=types[k]) for k in params))
    try:
        engine = create_engine(url, **read_only_kwargs(url))
    except Exception as exc:
        raise SourceError(
            f"cannot open database '{src.database}': {type(exc).__name__}: {exc}",
            path=origin,
            dataset=ds.name,
        ) from None
    try:
        with engine.connect() as conn:
            result = conn.execute(statement, params)
            headers = [str(k) for k in result.keys()]  # noqa: SIM118
            rows = [tuple(r) for r in result.fetchall()]
            conn.rollback()
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise SourceError(
            f"query failed: {detail[0] if detail else type(exc).__name__}",
            path=origin,
            dataset=ds.name,
        ) from None
    finally:
        engine.dispose()
    sha256 = _sql_digest(query, params, headers, rows)
    columns: list[_Column] = [[r[j] for r in rows] for j in range(len(headers))]
    table = _Table(origin, headers, columns, _rows(1, len(rows)))
    frame, rejects, excluded, rows_in = _map_table(table, src, ds, config, on_bad_value)
    if src.drop_duplicates:
        frame, dups = _drop_duplicates(frame, ds, origin)
        excluded = pl.concat([excluded, dups], how="vertical")
    frame = _with_surrogate(frame, src, ds, _key_mapped(table, src, ds))
    return LoadedDataset(
        dataset=ds.name,
        frame=frame,
        rejects=rejects,
        origin=origin,
        sha256=sha256,
        rows_in=rows_in,
        excluded=excluded,
    )


def sql_params(
    config: Config,
    ds: Dataset,
    query: str,
    origin: str,
    *,
    period: Period | str | None,
    trend_months: int | None,
    lookback_days: int | None,
    site: str | None,
) -> dict[str, Any]:
    """Values for the binds the query names (:period_start, :period_end, :site; no others)."""
    named = list(dict.fromkeys(_BIND.findall(query)))
    available = ("period_start", "period_end", "site")
    unknown = [n for n in named if n not in available]
    if unknown:
        raise ConfigError(
            f"the query names :{unknown[0]}{did_you_mean(unknown[0], available)}; "
            f"qmskpi binds :period_start, :period_end and :site",
            path=config.path,
            key=f"sources.{ds.name}.query",
        )
    params: dict[str, Any] = {}
    if "period_start" in named or "period_end" in named:
        if period is None:
            raise SourceError(
                "the query uses :period_start/:period_end: give a period",
                path=origin,
                dataset=ds.name,
            )
        start, end = sql_window(
            period,
            trend_months=trend_months if trend_months is not None else config.review.trend_months,
            lookback_days=lookback_days
            if lookback_days is not None
            else config.kpis.repeat_window_days,
        )
        if "period_start" in named:
            params["period_start"] = start
        if "period_end" in named:
            params["period_end"] = end
    if "site" in named:
        params["site"] = None if site in (None, "all") else site
    return params


def _sql_digest(
    query: str, params: Mapping[str, Any], headers: list[str], rows: list[tuple[Any, ...]]
) -> str:
    """sha256 of the query, its bound parameters and the result as canonical CSV."""
    h = hashlib.sha256()
    h.update(query.encode("utf-8"))
    h.update(b"\n")
    h.update(
        json.dumps({k: _cell_text(v, None) for k, v in params.items()}, sort_keys=True).encode(
            "utf-8"
        )
    )
    h.update(b"\n")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    for i, r in enumerate(rows):
        writer.writerow(["" if v is None else _cell_text(v, None) for v in r])
        if i % 10_000 == 9_999:
            h.update(buf.getvalue().encode("utf-8"))
            buf.seek(0)
            buf.truncate()
    h.update(buf.getvalue().encode("utf-8"))
    return h.hexdigest()
