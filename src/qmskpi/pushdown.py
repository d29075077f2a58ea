"""``pushdown = true``: validate and aggregate a SQL source where it lives.

For a SQL source with ``pushdown = true`` (``[sources.inspections]``,
``[sources.receipts]``), one call does in the database what pulling does on
this machine:

1. the contract's rules run through GX's SQL engine on the source query
   (:func:`qmskpi.contracts.indb.validate_in_database`): rule results, exact
   unexpected counts, the exact row count, the failing rows' keys;
2. the first KPI aggregation levels (:func:`qmskpi.kpis.pushdown_levels`: per
   month and site by the period field; receipts also by promised_date, and per
   supplier and day) run as SQL over the same query without the quarantined
   rows (:func:`qmskpi.kpis.sql.first_level_sql`).

Only the aggregates and the failing keys travel. ``kpis.compute_kpis(...,
aggregates={name: pushed.first_levels})`` then gives the KPIs of
:func:`~qmskpi.kpis.pushed_down` (every inspection and receipt KPI) equal to
those of the pulled, validated rows; :attr:`Pushed.pulled_kpis` lists any of
the dataset's KPIs that still need its rows (none). The tables' first levels
come back too (:attr:`Pushed.breakdowns`: the defect Pareto's; the supplier
scorecard reads the receipts per supplier and day). The pipeline
(``qmskpi render`` / ``run``) calls :func:`push_down` for every source with
``pushdown = true`` instead of reading its rows. See docs/pushdown.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

import polars as pl

from qmskpi import contracts, kpis, sources
from qmskpi.config import PUSHDOWN_DATASETS, Config, SourceConfig
from qmskpi.contracts.indb import (
    AS_OF_BIND,
    BoolWords,
    InDatabaseValidation,
    bare_query,
    check_references,
    count_after,
    dated_query,
    identifier_quoter,
    known_on_query,
    literal_query,
    query_columns,
    unreadable_booleans,
    validate_in_database,
)
from qmskpi.contracts.loader import configured_contracts
from qmskpi.contracts.schema import Run
from qmskpi.datasets import DATASETS
from qmskpi.errors import ConfigError, SourceError, did_you_mean
from qmskpi.kpis.firstlevel import FirstLevel
from qmskpi.kpis.sql import Exclude, level_sql
from qmskpi.periods import Period, parse_period


@dataclass(frozen=True)
class Pushed:
    """What the database returned for one pushed-down source."""

    dataset: str
    validation: InDatabaseValidation
    aggregates: FirstLevel
    """First-level aggregates of the rows used (quarantined rows left out), per month and
    site by the dataset's period field: its records counted (``n``)."""
    origin: str = ""
    """Where the rows are: ``sql:NAME`` (the ``[databases]`` entry)."""
    breakdowns: tuple[FirstLevel, ...] = ()
    """The other first levels, same rows: by another date (receipts by promised_date), by a
    column (the defect Pareto's by ``defect_code``), per day (receipts per supplier)."""
    listed: pl.DataFrame | None = None
    """The rows the pack lists (:func:`listed_rows`, :data:`LISTED`: the period's complaints
    and the repeat look-back before it; the CAPAs open in the period), validated; None for a
    dataset the pack lists no rows of."""

    @property
    def first_levels(self) -> tuple[FirstLevel, ...]:
        """Every first level, :attr:`aggregates` first (what ``compute_kpis(aggregates=)``
        and ``review.build_pack(aggregates=)`` take)."""
        return (self.aggregates, *self.breakdowns)

    @property
    def sha256(self) -> str:
        """sha256 of what the database returned: the row count, each rule's verdict, count and
        failing rows, and every aggregate (the manifest's input hash of a pushed-down source)."""
        v = self.validation
        h = hashlib.sha256()
        head = {
            "rows_in": v.rows_in,
            "rows_after_as_of": v.rows_after_as_of,
            "rules": [[r.rule_id, r.success, r.unexpected_count] for r in v.rules],
            "not_checked": [list(n) for n in v.not_checked],
        }
        h.update(json.dumps(head, sort_keys=True).encode("utf-8"))
        listed = () if self.listed is None else (self.listed,)
        for frame in (
            *(r.failing for r in v.rules),
            *(a.frame for a in self.first_levels),
            *listed,
        ):
            h.update(frame.write_csv().encode("utf-8"))
        return h.hexdigest()

    @property
    def pulled_kpis(self) -> tuple[str, ...]:
        """KPIs of this dataset that still need its rows (not pushed down yet)."""
        pushed = set(kpis.pushed_down(self.dataset))
        return tuple(
            k for k, d in kpis.REGISTRY.items() if self.dataset in d.datasets and k not in pushed
        )


def pushed_sources(config: Config) -> tuple[str, ...]:
    """Datasets whose source has ``pushdown = true``, in config order."""
    return tuple(n for n, s in config.sources.items() if s.pushdown)


Known = Mapping[tuple[str, str], Sequence[str]]
"""By (dataset, column), the values the rows of that (pulled) dataset use."""


def references(config: Config, dataset: str) -> tuple[tuple[str, str], ...]:
    """(dataset, column) pairs ``dataset``'s ``reference`` rules point at."""
    contract = configured_contracts(config)[dataset]
    return tuple(r.target for r in contract.rules if r.check == "reference" and r.target)


def known_values(
    config: Config,
    period: Period | str,
    loaded: Mapping[str, sources.LoadedDataset],
    *,
    as_of: date | None = None,
    backfill: bool = False,
) -> Known:
    """The values the pushed-down sources' ``reference`` rules look up, from pulled data.

    Each referenced dataset that was loaded (pulled) is validated here with the datasets
    it references in turn (a supplier on the list but quarantined is not there, as when
    pulling), and the values of its used rows are returned (the supplier list's
    ``supplier_id``). A target not loaded (pushed down too, or not configured) is left
    out: its rule stays ``not_checked``.
    """
    targets = {t for name in pushed_sources(config) for t in references(config, name)}
    wanted: set[str] = set()
    todo = [ds for ds, _ in targets if ds in loaded]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += [ds for ds, _ in references(config, name) if ds in loaded]
    if not wanted:
        return {}
    report = contracts.validate(
        {n: loaded[n] for n in wanted}, period=period, config=config, as_of=as_of, backfill=backfill
    )
    return {
        (ds, col): tuple(
            str(v) for v in report.clean[ds].get_column(col).drop_nulls().unique().to_list()
        )
        for ds, col in targets
        if ds in report.clean and col in report.clean[ds].columns
    }


def push_down(
    config: Config,
    dataset: str,
    period: Period | str,
    *,
    as_of: date | None = None,
    site: str | None = None,
    known: Known | None = None,
) -> Pushed:
    """Validate ``dataset``'s SQL source in its database and aggregate its rows used there.

    ``known`` (:func:`known_values`): the values its ``reference`` rules look up; those
    rules are then checked in the database too (else listed as not checked).
    """
    src = config.sources.get(dataset)
    if src is None or not src.pushdown:
        raise ConfigError(
            f"[sources.{dataset}] has no pushdown = true"
            f"{did_you_mean(dataset, pushed_sources(config))}",
            path=config.path,
            key=f"sources.{dataset}.pushdown",
        )
    assert dataset in PUSHDOWN_DATASETS  # config refuses pushdown on any other dataset
    assert src.query is not None  # and on file sources
    assert src.database is not None
    p = parse_period(period)
    ds = DATASETS[dataset]
    url = sources.db_url(config, src.database)
    rendered = url.render_as_string(hide_password=False)
    params = sources.sql_params(
        config,
        ds,
        src.query,
        f"sql:{src.database}",
        period=p,
        trend_months=None,
        lookback_days=None,
        site=site,
    )
    run = Run(
        period=p,
        as_of=as_of or config.review.as_of or date.today(),
        sites=tuple(config.sites),
        stale_days=config.review.stale_after_days,
    )
    contract = configured_contracts(config)[dataset]
    query, after = bare_query(src.query), 0  # a trailing ; would end the statements built on it
    # date fields as dates, whatever the database stores them as (a timestamp: its day)
    columns = query_columns(rendered, query, params)
    dates = {f.name for f in ds.fields if f.type == "date"}
    # bool fields as the pulled path reads them (Y/N, 1/0, true/false: the source's words)
    booleans = {f.name: bool_words(src, f.name) for f in ds.fields if f.type == "bool"}
    booleans = {c: w for c, w in booleans.items() if c in columns}
    for c, (n, first, value) in unreadable_booleans(
        rendered, query, params, ds.key[0], booleans
    ).items():
        w = booleans[c]
        raise SourceError(
            f"{n:,} row(s) hold a value that is neither a true value ({', '.join(w.trues)}) "
            f"nor a false value ({', '.join(w.falses)}), e.g. {str(value)[:40]!r} in "
            f"{ds.key[0]} {str(first)[:40]!r}; add the word to [sources.{dataset}] "
            "true_values or false_values, or convert it in the query",
            path=f"sql:{src.database}",
            dataset=dataset,
            column=c,
        )
    query = dated = dated_query(query, columns, dates, rendered, booleans)
    if as_of is not None and contract.dated_by_as_of:  # a backfill: the data as known on as_of
        record, *later = contract.dated_by_as_of
        after = count_after(rendered, query, record, as_of, params)
        query = known_on_query(
            query, record, later=later, columns=columns, quote=identifier_quoter(rendered)
        )
        params = {**params, AS_OF_BIND: as_of}
    found = validate_in_database(rendered, literal_query(query, params, rendered), contract, run)
    found = replace(found, rows_after_as_of=after)
    found = check_references(rendered, query, params, found, contract, known or {})
    keys = found.quarantined_keys()
    key = ds.key[0]
    exclude = Exclude(
        key,
        tuple(str(k) for k in keys[key].to_list() if k is not None),
        null=keys[key].null_count() > 0,
    )
    primary, *others = (
        level_sql(url, query, dataset, level, params=params, exclude=exclude)
        for level in kpis.pushdown_levels(
            dataset, config.kpis, period=p, months=config.review.trend_months
        )
    )
    listed = None
    if dataset in LISTED:
        listed = listed_rows(
            config, dataset, p, exclude=exclude, as_of=as_of, site=site, query=dated
        )
    return Pushed(dataset, found, primary, f"sql:{src.database}", tuple(others), listed)


def bool_words(src: SourceConfig, column: str) -> BoolWords:
    """The words a bool ``column`` of ``src`` reads as, as the pulled path reads them."""
    trues, falses = sources.bool_words(src)
    nulls = sorted({v.strip() for v in (*src.na_values, *src.null_values.get(column, ()))})
    return BoolWords(tuple(trues), tuple(falses), tuple(nulls))


@dataclass(frozen=True)
class Listing:
    """Which rows of a pushed-down dataset the pack lists: those of the source's query
    meeting ``where``, a condition on its canonical columns with the period's dates as binds
    (``:period_start``, ``:period_end``: never formatted in)."""

    where: str
    lookback: bool = False
    """Whether ``:period_start`` is moved back by ``[kpis] repeat_window_days`` (the repeat
    complaints' look-back)."""


LISTED: dict[str, Listing] = {
    "complaints": Listing(
        "received_date >= :period_start AND received_date <= :period_end", lookback=True
    ),
    "capa": Listing(
        "opened_date <= :period_end AND (closed_date IS NULL OR closed_date >= :period_start)"
    ),
}
"""Pushed-down datasets whose rows the pack lists, and which: the critical and major
complaints of the period (and, in the complaints notebook, the repeat complaints: the
look-back of ``[kpis] repeat_window_days`` before the period too); the CAPAs open past due
at the period end (the overdue list): those open at some time in the period, a superset
that stays right in a backfill, where a closure after the as-of day is undone."""


def listed_rows(
    config: Config,
    dataset: str,
    period: Period,
    *,
    exclude: Exclude,
    as_of: date | None = None,
    site: str | None = None,
    query: str | None = None,
) -> pl.DataFrame:
    """The validated rows of ``dataset`` a list of the pack shows, fetched by a bounded query.

    ``query``: the source's query as :func:`push_down` reads it (its date fields cut to
    dates: a complaint received at 16:30 on the period's last day is in the period);
    default the configured one.

    Only the rows of the source's query meeting the dataset's :data:`LISTED` condition
    travel (complaints: received from ``[kpis] repeat_window_days`` before the period's
    start to its end; CAPAs: open at some time in the period); they are typed, mapped and
    validated as pulled rows are (a backfill's ``as_of`` applied the same way), and the
    rows the database's validation quarantined (``exclude``: a key duplicated outside
    these rows too) are left out. Their number grows with a period's records, not with
    the history's.
    """
    listing = LISTED[dataset]
    src = config.sources[dataset]
    assert src.query is not None
    # the configuration's own query and a fixed condition on canonical columns; the dates
    # are binds
    bounded = (
        f"SELECT * FROM (\n{bare_query(query or src.query)}\n) AS qmskpi_listed\n"  # noqa: S608
        f"WHERE {listing.where}"
    )
    narrowed = replace(
        config, sources={**config.sources, dataset: replace(src, query=bounded, pushdown=False)}
    )
    loaded = sources.load_dataset(
        narrowed,
        dataset,
        period=period,
        trend_months=len(period.months()),
        lookback_days=config.kpis.repeat_window_days if listing.lookback else 0,
        site=site,
    )
    report = contracts.validate(
        {dataset: loaded},
        period=period,
        config=narrowed,
        as_of=as_of,
        backfill=as_of is not None,
    )
    rows = report.clean[dataset]
    key = pl.col(DATASETS[dataset].key[0])
    gone = key.cast(pl.String).is_in(list(exclude.values))
    if exclude.null:
        gone = gone | key.is_null()
    return rows.filter(~gone.fill_null(False))
