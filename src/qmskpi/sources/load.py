""":func:`load_dataset` and :func:`load_all`: each configured source checked, then read
by :mod:`~qmskpi.sources.files` or :mod:`~qmskpi.sources.sql`.
"""

from __future__ import annotations

import codecs
import concurrent.futures
from collections.abc import Collection

from qmskpi import progress
from qmskpi.config import Config, SourceConfig
from qmskpi.datasets import DATASETS, Dataset
from qmskpi.errors import ConfigError, did_you_mean
from qmskpi.periods import Period
from qmskpi.sources.files import _concurrent, _load_files
from qmskpi.sources.model import LoadedData, LoadedDataset, OnBadValue, _config_error
from qmskpi.sources.parse import _typed_constant
from qmskpi.sources.sql import _load_sql
from qmskpi.sources.window import _window


def load_dataset(
    config: Config,
    dataset: str,
    *,
    period: Period | str | None = None,
    trend_months: int | None = None,
    lookback_days: int | None = None,
    site: str | None = None,
    on_bad_value: OnBadValue = "quarantine",
) -> LoadedDataset:
    """Read the source of ``dataset`` and map it onto the canonical schema.

    For a Parquet file, ``period`` pushes the trend window into the scan:
    records no KPI of the period reads are excluded as ``outside_window``
    (``docs/sources.md``, "The trend window"). For a SQL source, ``period`` sets the window the
    query pulls (see :func:`sql_window`): ``:period_start`` is bound to the
    first day of the trend window (``trend_months`` months ending with the
    period's last month, default ``[review] trend_months``) minus
    ``lookback_days`` (default ``[kpis] repeat_window_days``, 90), and
    ``:period_end`` to the period's last day. ``:site`` is bound to ``site``
    (``None`` for the whole organisation). Only the parameters the query
    names are passed, always bound, never formatted into the SQL.
    """
    if on_bad_value not in ("quarantine", "raise"):
        raise ValueError(f"on_bad_value must be 'quarantine' or 'raise', got {on_bad_value!r}")
    if dataset not in config.sources:
        raise ConfigError(
            f"no [sources.{dataset}] table{did_you_mean(dataset, config.sources)}; "
            f"configured: {', '.join(config.sources) or 'none'}",
            path=config.path,
            key=f"sources.{dataset}",
        )
    src = config.sources[dataset]
    ds = DATASETS[dataset]
    _check_source(config, src, ds)
    if src.kind == "sql":
        return _load_sql(
            config,
            src,
            ds,
            period=period,
            trend_months=trend_months,
            lookback_days=lookback_days,
            site=site,
            on_bad_value=on_bad_value,
        )
    window = _window(config, ds, period) if period is not None else None
    return _load_files(config, src, ds, on_bad_value=on_bad_value, window=window)


def load_all(
    config: Config,
    *,
    period: Period | str | None = None,
    site: str | None = None,
    on_bad_value: OnBadValue = "quarantine",
    skip: Collection[str] = (),
) -> LoadedData:
    """Every dataset in ``config.sources`` but those in ``skip``, in the order the config
    lists them (``skip``: sources with ``pushdown = true`` the caller validates and
    aggregates in their database instead, :mod:`qmskpi.pushdown`).

    Parquet and CSV files are read two at a time (:data:`_FILE_READERS`): much of a file's
    mapping (the text checks) runs on one core, and the next file's scan uses the other.
    Excel files and SQL sources are read one after the other, in this thread, meanwhile.
    The datasets, and the first error in the config's order, are those a one-by-one read
    gives.

    Reports each dataset, in the config's order, to :mod:`qmskpi.progress` as it is
    awaited (``load``, rows read so far).
    """
    names = [n for n in config.sources if n not in skip]

    def one(name: str) -> LoadedDataset:
        return load_dataset(config, name, period=period, site=site, on_bad_value=on_bad_value)

    files = [n for n in names if _concurrent(config.sources[n])]
    loaded: LoadedData = {}
    rows = 0
    with concurrent.futures.ThreadPoolExecutor(
        _FILE_READERS, thread_name_prefix="qmskpi-load"
    ) as pool:
        futures = {n: pool.submit(one, n) for n in files} if len(files) > 1 else {}
        try:
            for name in names:  # each dataset reported in the config's order, as it is awaited
                progress.emit("load", detail=name, rows=rows)
                loaded[name] = futures[name].result() if name in futures else one(name)
                rows += loaded[name].rows_in
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    progress.emit("load", detail="", rows=rows)
    return loaded


_FILE_READERS = 2
"""Files read at once by :func:`load_all` (polars' own threads work inside each)."""


def _check_source(config: Config, src: SourceConfig, ds: Dataset) -> None:
    """Mapping rules that need the dataset and the source kind together."""
    for name in ds.field_names:
        ways = [
            k
            for k, m in (
                ("columns", src.columns),
                ("positions", src.positions),
                ("constants", src.constants),
                ("derive", src.derive),
            )
            if name in m
        ]
        if len(ways) > 1:
            raise _config_error(
                src,
                ways[1],
                f"'{name}' is mapped twice ({' and '.join(ways)}): map it once",
                config,
            )
    for name in src.defaults:
        if name in src.constants:
            raise _config_error(
                src,
                f"defaults.{name}",
                f"'{name}' is a constant, so it is never blank: drop the default",
                config,
            )
        _typed_constant(name, src.defaults[name], ds.field(name), src, config, key="defaults")
    if src.surrogate_key and len(ds.key) != 1:
        raise _config_error(
            src,
            "surrogate_key",
            f"dataset '{ds.name}' is keyed by ({', '.join(ds.key)}): "
            "a surrogate key only replaces a single ID column",
            config,
        )
    if src.skip_footer_rows < 0:
        raise _config_error(src, "skip_footer_rows", "must be zero or more", config)
    if src.kind == "sql":
        return
    if not src.has_header and src.columns:
        raise _config_error(
            src,
            "columns",
            "has_header = false: a file without a header maps columns with positions",
            config,
        )
    if len(src.delimiter) != 1:
        raise _config_error(src, "delimiter", 'must be one character ("\\t" for a tab)', config)
    if len(src.quote_char) > 1:
        raise _config_error(src, "quote_char", 'must be one character, or "" for none', config)
    if isinstance(src.sheet, int) and src.sheet < 1:
        raise _config_error(src, "sheet", "sheet numbers are 1-based: 1 is the first sheet", config)
    try:
        codecs.lookup(src.encoding)
    except LookupError:
        raise _config_error(
            src,
            "encoding",
            f"unknown encoding {src.encoding!r}; use utf-8, utf-8-sig, cp1252 or latin-1",
            config,
        ) from None
