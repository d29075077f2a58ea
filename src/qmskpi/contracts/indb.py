"""Validation in the database (``pushdown``): GX's SQL execution engine on the source query.

The contract's rules compile to the same GX expectations as in
:mod:`qmskpi.contracts.gx` (one definition), run by a GX 1.x SQL data source
on a query asset (materialised as a temporary table in the database, which
needs the TEMP privilege): the source's own query, its bind values rendered as SQL
literals by the database's SQLAlchemy dialect (GX query assets take no binds;
the values are qmskpi's period dates and site, never a source field). The
database counts; only the failing rows' keys and checked values come back
(``COMPLETE`` results with ``unexpected_index_column_names`` = the dataset's
key), at most ``max_failing_rows`` of them.

What comes back per rule: success, the exact unexpected count, and the
failing keys; plus the exact row count (``ExpectTableRowCountToBeBetween``).
A row failing an ``error`` rule is quarantined; the quarantined count is the
number of distinct failing keys (a null key counts every row without one, as
the key's ``required`` rule sees them). A rule that GX cannot compile or run
here, or that qmskpi checks only in polars (month-text columns; references
across datasets unless :func:`check_references` is given the referenced
values), is listed in :attr:`InDatabaseValidation.not_checked` with the
reason: never skipped silently.

Tested dialects: PostgreSQL (see docs/pushdown.md). GX 1.24 returns no rows
on DuckDB (it closes the connection before fetching a result): every rule is
then reported as not checked, with GX's message.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from qmskpi.contracts.gx import expectation, gx_exception, import_gx
from qmskpi.contracts.report import (
    MAX_VALUE_CHARS,
    QUARANTINE_SCHEMA,
    DatasetValidation,
    RuleResult,
)
from qmskpi.contracts.schema import Contract, Rule, Run
from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.errors import QmsKpiError
from qmskpi.sources import read_only_kwargs

DEFAULT_MAX_FAILING_ROWS = 100_000
"""Failing rows (keys and checked values) one rule may bring back before the run stops."""

_ROW_COUNT = "_row_count"


@dataclass(frozen=True)
class InDatabaseRule:
    """One rule checked by the database."""

    rule_id: str
    columns: tuple[str, ...]
    severity: str
    success: bool
    unexpected_count: int
    failing: pl.DataFrame
    """The failing rows: the key column(s) and the checked column(s), as GX returned them."""
    unexpected_share: float = 0.0
    """GX's ``unexpected_percent`` / 100 (of the rows the rule looks at)."""
    by_gx: bool = True
    """False for a rule qmskpi ran as its own SQL (:func:`check_references`): engine ``sql``."""


@dataclass(frozen=True)
class InDatabaseValidation:
    """What the database found for one dataset."""

    dataset: str
    key: tuple[str, ...]
    rows_in: int
    rules: tuple[InDatabaseRule, ...]
    not_checked: tuple[tuple[str, str], ...]
    """(rule id, why) for every rule of the contract the database did not check."""
    engine: str
    rows_after_as_of: int = 0
    """Rows of the source dated after a backfill's as-of day (:func:`known_on_query`): left
    out before validation and counted by the database, as ``after_as_of`` exclusions."""

    def quarantined_keys(self) -> pl.DataFrame:
        """Keys of the rows failing an ``error`` rule, with ``rows``: how many rows hold each.

        A key listed n times by one rule stands for n rows (a duplicated key fails
        ``unique`` on every row holding it; rows without a key all fail the key's
        ``required`` rule), so ``rows`` is the largest count any one rule gives.
        Exact when the key's ``unique`` and ``required`` rules are ``error`` rules
        (as shipped).
        """
        k = list(self.key)
        parts = [
            r.failing.group_by(k).agg(pl.len().alias("rows"))
            for r in self.rules
            if r.severity == "error" and not r.success and r.failing.height
        ]
        if not parts:
            return pl.DataFrame(schema={**dict.fromkeys(k, pl.String()), "rows": pl.UInt32()})
        return (
            pl.concat(parts, how="vertical_relaxed")
            .group_by(k)
            .agg(pl.col("rows").max())
            .sort(k, nulls_last=True)
        )

    @property
    def rows_quarantined(self) -> int:
        """Rows failing at least one ``error`` rule."""
        return int(self.quarantined_keys()["rows"].sum())


AS_OF_BIND = "qmskpi_as_of"
"""The bind :func:`known_on_query` adds (a backfill's as-of day, qmskpi's own date)."""


def bare_query(query: str) -> str:
    """``query`` without a trailing ``;`` (it is used inside another statement here)."""
    return query.strip().rstrip(";").rstrip()


def known_on_query(
    query: str,
    record: str,
    *,
    later: Sequence[str] = (),
    columns: Sequence[str] = (),
    quote: Callable[[str], str] | None = None,
) -> str:
    """``query`` restricted to the records known on the as-of day (bound as ``:qmskpi_as_of``).

    A backfill run on a later export (``--as-of``) must see the data as it was on that
    day, as :func:`~qmskpi.contracts.prepare.known_on` does for pulled rows: a row whose
    ``record`` date (the contract's first ``max: as_of`` field) is after it did not
    exist yet. A row without a date stays (its ``required`` rule quarantines it, as pulled).
    ``later``: the contract's other ``max: as_of`` dates (a complaint's ``closed_date``):
    one after the as-of day had not happened yet, so it reads as empty, a ``status`` as
    ``open`` and ``effectiveness_verified`` as false (``columns``, the query's result
    columns, :func:`query_columns`, are then listed one by one, quoted by ``quote``: the
    database's :func:`identifier_quoter`). ``record`` and ``later`` are canonical column
    names from the contract, never source values.
    """
    for name in (record, *later):
        if not name.isidentifier():
            raise QmsKpiError(f"not a column name: {name!r}")
    inner = bare_query(query)
    # the configuration's own query, checked identifiers and a bind: no source value in it
    where = f"WHERE qmskpi_known.{record} IS NULL OR qmskpi_known.{record} <= :{AS_OF_BIND}"
    undo = [c for c in later if c in columns]
    if not undo:
        return f"SELECT * FROM (\n{inner}\n) AS qmskpi_known\n{where}"  # noqa: S608
    late = " OR ".join(f"qmskpi_known.{c} > :{AS_OF_BIND}" for c in undo)
    picked = []
    for c in columns:
        quoted = (quote or _double_quoted)(c)
        ref = f"qmskpi_known.{quoted}"
        if c in undo:
            picked.append(f"CASE WHEN {ref} > :{AS_OF_BIND} THEN NULL ELSE {ref} END AS {quoted}")
        elif c == "status":
            picked.append(f"CASE WHEN {late} THEN 'open' ELSE {ref} END AS {quoted}")
        elif c == "effectiveness_verified":
            picked.append(f"CASE WHEN {late} THEN FALSE ELSE {ref} END AS {quoted}")
        else:
            picked.append(f"{ref} AS {quoted}")
    listed = ",\n  ".join(picked)
    return f"SELECT\n  {listed}\nFROM (\n{inner}\n) AS qmskpi_known\n{where}"


def _double_quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def identifier_quoter(url: str) -> Callable[[str], str]:
    """How the database behind ``url`` quotes a column name (its SQLAlchemy dialect's)."""
    from sqlalchemy.engine import make_url

    preparer = make_url(url).get_dialect()().identifier_preparer
    return preparer.quote  # type: ignore[no-any-return]


@dataclass(frozen=True)
class BoolWords:
    """How a bool field's stored values read (a source's ``true_values``/``false_values``).

    Compared lower-cased and trimmed; ``nulls`` (``na_values``, compared trimmed) and the
    empty text stand for no value, as on the pulled path.
    """

    trues: tuple[str, ...]
    falses: tuple[str, ...]
    nulls: tuple[str, ...] = ()


def dated_query(
    query: str,
    columns: Sequence[str],
    dates: Collection[str],
    url: str,
    booleans: Mapping[str, BoolWords] | None = None,
) -> str:
    """``query`` with its ``dates`` columns cut to dates, its ``booleans`` read as booleans,
    by the database.

    The pulled path reads a date field stored as a timestamp (or as ISO text) as its day;
    in the database, a timestamp minus a timestamp is an interval, not days, and a
    timestamp later in the day is after the day's date. So every date field of the
    query's result (``columns``, :func:`query_columns`) is ``CAST(... AS DATE)``
    (``date(...)`` on SQLite, which keeps dates as ISO text) before anything runs on it:
    validation, aggregation, a backfill's cut. A bool field stored as text (``Y``/``N``)
    or a number (1/0) reads as the pulled path reads it (:class:`BoolWords`); a real
    boolean reads as itself. A value none of the words match reads as null here:
    :func:`unreadable_booleans` finds such values first. Column names come from the
    query's own result and the dataset's schema, quoted by the dialect; the words are
    the configuration's, rendered as literals by the dialect; no source value is in it.
    """
    quote = identifier_quoter(url)
    sqlite = url.startswith("sqlite")
    picked = []
    for c in columns:
        ref = f"qmskpi_dated.{quote(c)}"
        if c in dates:
            cast = f"date({ref})" if sqlite else f"CAST({ref} AS DATE)"
            picked.append(f"{cast} AS {quote(c)}")
        elif booleans and c in booleans:
            picked.append(f"{_bool_case(ref, booleans[c], url)} AS {quote(c)}")
        else:
            picked.append(f"{ref} AS {quote(c)}")
    listed = ",\n  ".join(picked)
    inner = bare_query(query)
    return f"SELECT\n  {listed}\nFROM (\n{inner}\n) AS qmskpi_dated"


def _stored_word(ref: Any) -> Any:
    """A stored value as the text it is compared as: trimmed (and lower-cased: :func:`_word`)."""
    from sqlalchemy import String, cast, func

    return func.trim(cast(ref, String()))


def _bool_case(ref: str, words: BoolWords, url: str) -> str:
    """SQL reading the column ``ref`` (quoted) as a boolean by ``words``; null otherwise."""
    from sqlalchemy import case, false, func, literal_column, null, true
    from sqlalchemy.engine import make_url

    stored = _stored_word(literal_column(ref))
    word = func.lower(stored)
    whens: list[tuple[Any, Any]] = [(stored.in_(words.nulls), null())] if words.nulls else []
    whens += [(word.in_(words.trues), true()), (word.in_(words.falses), false())]
    expr = case(*whens, else_=null())
    dialect = make_url(url).get_dialect()()
    return str(expr.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def unreadable_booleans(
    url: str,
    query: str,
    params: Mapping[str, Any],
    key: str,
    booleans: Mapping[str, BoolWords],
) -> dict[str, tuple[int, Any, Any]]:
    """By bool column, (rows, first key, its value) of the values ``booleans`` cannot read.

    A value that is not null, not blank, not a null word and not a true or false word
    (the pulled path would reject its row as not a true or false value). Counted by the
    database over ``query`` (its binds ``params``), the first by key; the words are
    bound, never formatted into the SQL. Columns with none are left out.
    """
    if not booleans:
        return {}
    from sqlalchemy import bindparam, case, column, create_engine, func, literal, select, text

    names = list(dict.fromkeys([key, *booleans]))
    found: dict[str, tuple[int, Any, Any]] = {}
    engine = create_engine(url, **read_only_kwargs(url))
    try:
        with engine.connect() as conn:
            inner = text(query).bindparams(*(bindparam(k, v) for k, v in params.items()))
            src = inner.columns(*(column(n) for n in names)).subquery("src")
            for c, words in booleans.items():
                stored = _stored_word(src.c[c])
                known = [*words.trues, *words.falses]
                bad = (
                    src.c[c].is_not(None)
                    & (stored != literal(""))
                    & func.lower(stored).not_in(known)
                )
                if words.nulls:
                    bad = bad & stored.not_in(list(words.nulls))
                count = int(conn.execute(select(func.sum(case((bad, 1), else_=0)))).scalar() or 0)
                if count:
                    first = conn.execute(
                        select(src.c[key], src.c[c]).where(bad).order_by(src.c[key]).limit(1)
                    ).one()
                    found[c] = (count, first[0], first[1])
            conn.rollback()
    finally:
        engine.dispose()
    return found


def query_columns(url: str, query: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of ``query``'s result columns (the database runs it with no row wanted)."""
    from sqlalchemy import bindparam, create_engine, text

    stmt = text(f"SELECT * FROM (\n{bare_query(query)}\n) AS qmskpi_cols WHERE 1 = 0")  # noqa: S608
    stmt = stmt.bindparams(*(bindparam(k, v) for k, v in params.items()))
    engine = create_engine(url, **read_only_kwargs(url))
    try:
        with engine.connect() as conn:
            names = tuple(str(k) for k in conn.execute(stmt).keys())  # noqa: SIM118
            conn.rollback()
    finally:
        engine.dispose()
    return names


def count_after(url: str, query: str, record: str, as_of: date, params: Mapping[str, Any]) -> int:
    """Rows of ``query`` (its binds ``params``) whose ``record`` date is after ``as_of``,
    counted by the database (one ``SELECT COUNT(*)``; values bound, never formatted in)."""
    from sqlalchemy import Date, bindparam, column, create_engine, func, select, text

    src = (
        text(bare_query(query))
        .bindparams(*(bindparam(k, v) for k, v in params.items()))
        .columns(column(record))
        .subquery("src")
    )
    stmt = (
        select(func.count())
        .select_from(src)
        .where(src.c[record] > bindparam(AS_OF_BIND, as_of, type_=Date()))
    )
    engine = create_engine(url, **read_only_kwargs(url))
    try:
        with engine.connect() as conn:
            n = conn.execute(stmt).scalar_one()
            conn.rollback()
    finally:
        engine.dispose()
    return int(n)


def literal_query(query: str, params: Mapping[str, Any], url: str) -> str:
    """``query`` with its binds rendered as literals by the dialect of ``url`` (GX takes no binds)."""
    if not params:
        return query
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(url, **read_only_kwargs(url))
    try:
        stmt = text(query).bindparams(*(bindparam(k, v) for k, v in params.items()))
        return str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    finally:
        engine.dispose()


def validate_in_database(
    url: str,
    query: str,
    contract: Contract,
    run: Run,
    *,
    max_failing_rows: int = DEFAULT_MAX_FAILING_ROWS,
) -> InDatabaseValidation:
    """Run ``contract``'s rules in the database behind ``url`` on ``query`` (no binds left).

    GX fetches a rule's failing rows with ``LIMIT partial_unexpected_count``: it is
    set to ``max_failing_rows + 1``, so at most that many rows travel per rule, and
    a rule with more failing rows stops the run (never a quarantine cut short).
    """
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    name = contract.dataset
    key = DATASETS[name].key
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "a more specific datasource may be more appropriate"
        # A temporary table of the query's result, in the database: without it GX reads the
        # query's column names by running the whole query and the driver buffers every row
        # here (367 MB at 1M inspections; 2 MB with it, and 40 % faster).
        source = ctx.data_sources.add_sql(
            "qmskpi", connection_string=url, create_temp_table=True, kwargs=_engine_kwargs(url)
        )
    bd = source.add_query_asset(name, query=query).add_batch_definition_whole_table("whole")
    expectations, not_checked = _expectations_in_db(contract, run)
    suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=bd, suite=suite))
    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": list(key),
        "partial_unexpected_count": max_failing_rows + 1,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = vd.run(result_format=result_format)
    finally:
        _close(source)
    rows_in, rules = _read_results(res, contract, max_failing_rows, not_checked)
    return InDatabaseValidation(
        dataset=name,
        key=tuple(key),
        rows_in=rows_in,
        rules=tuple(rules),
        not_checked=tuple(not_checked),
        engine=f"great_expectations {gx.__version__} (SQL)",
    )


def _close(source: Any) -> None:
    """Close GX's connections to the database now, not at exit.

    Disposing the engine closes only the pooled connections; GX's execution engine keeps
    the one it runs on (temporary tables live in a connection). On DuckDB a connection left
    open pins the database file: this process could then not open it again read-only
    (pulling another source from the same file: "a different configuration")."""
    engine = source.get_execution_engine()
    conn = getattr(engine, "_connection", None)
    if conn is not None:
        conn.close()
    engine.close()
    source.get_engine().dispose()


def _engine_kwargs(url: str) -> dict[str, Any]:
    """``create_engine`` arguments GX needs for this database (none but for DuckDB).

    GX 1.24 runs each metric query as ``with engine.connect() as c: result =
    c.execute(q)`` and fetches after the block. Closing the connection rolls its
    transaction back, and duckdb-engine runs statements on the connection itself
    (its cursor is the connection), so DuckDB's rollback drops the pending result:
    every metric came back empty. Here GX's DuckDB connections are duckdb-engine's
    own wrapper with a cursor that fetches each result as it executes
    (:class:`_BufferedCursor`); metric results are a row each, failing rows at most
    ``max_failing_rows + 1`` per rule.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "duckdb":
        return {}
    from duckdb_engine import Dialect

    dialect = Dialect()
    cargs, cparams = dialect.create_connect_args(parsed)
    cparams.update(read_only_kwargs(url).get("connect_args", {}))
    return {"creator": lambda: _Buffered(dialect.connect(*cargs, **cparams))}


class _Buffered:
    """duckdb-engine's connection, handing out :class:`_BufferedCursor` cursors."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def cursor(self) -> _BufferedCursor:
        return _BufferedCursor(self._inner.cursor())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _BufferedCursor:
    """A DB-API cursor over duckdb-engine's that holds each result (see :func:`_engine_kwargs`)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._rows: list[Any] = []
        self.description: Any = None

    def execute(self, statement: str, parameters: Any = None, context: Any = None) -> None:
        self._inner.execute(statement, parameters, context)
        self.description = self._inner.description
        self._rows = list(self._inner.fetchall()) if self.description else []

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        n = size or 1
        rows, self._rows = self._rows[:n], self._rows[n:]
        return rows

    def close(self) -> None:
        self._rows = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _expectations_in_db(contract: Contract, run: Run) -> tuple[list[Any], list[tuple[str, str]]]:
    """The row count and each rule's GX expectation; (rule id, why) for rules left out."""
    gx = import_gx()
    not_checked: list[tuple[str, str]] = []
    expectations = [
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=0, meta={"rule_id": _ROW_COUNT})
    ]
    for rule in contract.rules:
        if rule.check == "reference":
            not_checked.append((rule.id, "references another dataset: checked after pulling"))
            continue
        if rule.check in ("range", "freshness") and any(
            contract.field_type(c) == "str" for c in rule.columns
        ):
            not_checked.append((rule.id, "a YYYY-MM text column: checked after pulling"))
            continue
        exp = expectation(rule, contract, run)
        if exp is None:
            not_checked.append((rule.id, "GX has no expectation for it here (no sites configured)"))
            continue
        expectations.append(exp)
    return expectations, not_checked


def check_references(
    url: str,
    query: str,
    params: Mapping[str, Any],
    found: InDatabaseValidation,
    contract: Contract,
    known: Mapping[tuple[str, str], Sequence[str]],
    *,
    max_failing_rows: int = DEFAULT_MAX_FAILING_ROWS,
) -> InDatabaseValidation:
    """``found`` with the ``reference`` rules whose target values are ``known`` checked too.

    ``known``: by (dataset, column), the values the rows that dataset USES hold (pulled
    and validated here, e.g. the supplier list's ``supplier_id``). As on pulled rows, a
    row fails when its value is not null and not among them; the share is of the rows
    with a value. One SQL statement counts (``COUNT``, ``SUM(CASE ... NOT IN ...)``), a
    second brings back the failing keys and values (at most ``max_failing_rows``, ordered
    by key); the values are an expanding bind and ``query``'s binds bound parameters,
    never formatted into the SQL.
    """
    why_not = dict(found.not_checked)
    rules = [
        r
        for r in contract.rules
        if r.check == "reference" and r.target in known and r.id in why_not
    ]
    if not rules:
        return found
    from sqlalchemy import (
        bindparam,
        case,
        column,
        create_engine,
        func,
        select,
        text,
    )

    key = list(found.key)
    checked: list[InDatabaseRule] = []
    engine = create_engine(url, **read_only_kwargs(url))
    try:
        with engine.connect() as conn:
            for rule in rules:
                assert rule.target is not None
                col = rule.columns[0]
                names = list(dict.fromkeys([*key, col]))
                inner = text(query).bindparams(*(bindparam(k, v) for k, v in params.items()))
                src = inner.columns(*(column(n) for n in names)).subquery("src")
                values: Any = bindparam("_known", list(known[rule.target]), expanding=True)
                bad = src.c[col].is_not(None) & src.c[col].not_in(values)
                seen, count = conn.execute(
                    select(func.count(src.c[col]), func.sum(case((bad, 1), else_=0)))
                ).one()
                count = int(count or 0)
                if count > max_failing_rows:
                    raise QmsKpiError(
                        f"{contract.dataset}: rule {rule.id} fails on {count:,} rows, more "
                        f"than {max_failing_rows:,} to bring back for the quarantine; pull "
                        "the source instead"
                    )
                rows = conn.execute(
                    select(*(src.c[n] for n in names)).where(bad).order_by(*(src.c[k] for k in key))
                ).fetchall()
                failing = pl.DataFrame(
                    [{n: _text(v) for n, v in zip(names, r, strict=True)} for r in rows],
                    schema=dict.fromkeys(names, pl.String()),
                )
                share = count / int(seen) if seen else 0.0
                checked.append(
                    InDatabaseRule(
                        rule.id,
                        (col,),
                        rule.severity,
                        count == 0,
                        count,
                        failing,
                        share,
                        by_gx=False,
                    )
                )
            conn.rollback()
    finally:
        engine.dispose()
    done = {r.rule_id for r in checked}
    return dataclasses.replace(
        found,
        rules=(*found.rules, *checked),
        not_checked=tuple(n for n in found.not_checked if n[0] not in done),
    )


def _read_results(
    res: Any, contract: Contract, max_failing_rows: int, not_checked: list[tuple[str, str]]
) -> tuple[int, list[InDatabaseRule]]:
    """(rows in, rule results) from GX's results; rules GX raised on go to ``not_checked``."""
    name = contract.dataset
    key = DATASETS[name].key
    rules_by_id = {r.id: r for r in contract.rules}
    out: list[InDatabaseRule] = []
    rows_in: int | None = None
    for r in res.results:
        rule_id = str((r.expectation_config.meta or {}).get("rule_id"))
        result = r.result or {}
        error = gx_exception(r.exception_info)
        if rule_id == _ROW_COUNT:
            if error is not None or result.get("observed_value") is None:
                raise QmsKpiError(f"{name}: the database did not count the rows: {error}")
            rows_in = int(result["observed_value"])
            continue
        rule = rules_by_id[rule_id]
        if error is not None:
            not_checked.append((rule_id, f"GX could not run it in the database: {error}"))
            continue
        count = int(result.get("unexpected_count") or 0)
        index = result.get("unexpected_index_list") or []
        if count > max_failing_rows:
            raise QmsKpiError(
                f"{name}: rule {rule_id} fails on {count:,} rows, more than "
                f"{max_failing_rows:,} to bring back for the quarantine; pull the source instead"
            )
        if rule.row_level and len(index) != count:
            raise QmsKpiError(
                f"{name}: rule {rule_id}: GX returned {len(index):,} of its {count:,} failing "
                "rows; the quarantine would be incomplete"
            )
        failing = _failing(index, key, rule.columns)
        percent = result.get("unexpected_percent")
        share = float(percent) / 100 if percent is not None else 0.0
        out.append(
            InDatabaseRule(
                rule_id, tuple(rule.columns), rule.severity, bool(r.success), count, failing, share
            )
        )
    assert rows_in is not None  # the row count is always the first expectation
    return rows_in, out


def _failing(index: list[Any], key: tuple[str, ...], columns: tuple[str, ...]) -> pl.DataFrame:
    names = list(dict.fromkeys([*key, *columns]))
    rows = [{n: _text(row.get(n)) for n in names} for row in index if isinstance(row, Mapping)]
    return pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String()))


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


# --------------------------------------------------------------------------- into the report

ENGINE_LABEL = "gx-sql"
"""``RuleResult.engine`` of a rule GX's SQL engine judged in the database (``validation.json``)."""
SQL_LABEL = "sql"
"""``RuleResult.engine`` of a rule qmskpi's own SQL judged in the database (references)."""
FINDINGS_SCHEMA: dict[str, pl.DataType] = {**QUARANTINE_SCHEMA, "quarantined": pl.Boolean()}

_PULLED_ONLY = ("references another dataset", "a YYYY-MM text column")
"""Reasons (:func:`_expectations_in_db`) for rules that only run on pulled rows."""


def judged_in_database(
    found: InDatabaseValidation, contract: Contract, origin: str
) -> tuple[DatasetValidation, pl.DataFrame]:
    """The ledger and rule results of ``found`` as for pulled rows, and its findings.

    Findings (:data:`FINDINGS_SCHEMA`, for ``quarantine.csv``) name the failing row by
    its key, not a source row: ``file`` is the source (``sql:NAME``), ``source_row``
    empty, ``value`` ``key=...; column=...`` (the checked values GX returned).
    Rules the database did not check are ``checked = False``: those that only run on
    pulled rows pass (not checked with pushdown, said in ``observed``); one GX could
    not run fails, as an unchecked rule does on pulled rows.
    """
    by_id = {r.rule_id: r for r in found.rules}
    why_not = dict(found.not_checked)
    quarantined = found.quarantined_keys()
    keys = list(found.key)
    marked = quarantined.select(keys).with_columns(quarantined=pl.lit(True))
    results: list[RuleResult] = []
    parts: list[pl.DataFrame] = []
    for rule in contract.rules:
        if rule.id in why_not:
            why = why_not[rule.id]
            pulled_only = why.startswith(_PULLED_ONLY)
            results.append(
                _result(
                    rule,
                    success=pulled_only,
                    unexpected_count=0,
                    unexpected_share=0.0,
                    sample_values=(),
                    checked=False,
                    observed=f"not checked{' with pushdown' if pulled_only else ''}: {why}",
                )
            )
            continue
        r = by_id[rule.id]
        rows = _finding_rows(r, found, origin, rule.description)
        if rows.height:
            parts.append(rows.join(marked, on=keys, how="left", nulls_equal=True))
        results.append(
            _result(
                rule,
                engine=ENGINE_LABEL if r.by_gx else SQL_LABEL,
                success=r.success,
                unexpected_count=r.unexpected_count,
                unexpected_share=round(r.unexpected_share, 6),
                sample_values=_samples(r),
            )
        )
    findings = (
        pl.concat(parts, how="vertical_relaxed")
        .with_columns(pl.col("quarantined").fill_null(False))
        .select(list(FINDINGS_SCHEMA))
        .cast(FINDINGS_SCHEMA)  # type: ignore[arg-type]
        if parts
        else pl.DataFrame(schema=FINDINGS_SCHEMA)
    )
    set_aside = (
        findings.filter(pl.col("quarantined"))
        .group_by("rule")
        .agg(pl.len().alias("rows"))
        .sort(["rows", "rule"], descending=[True, False])
    )
    after = found.rows_after_as_of
    dv = DatasetValidation(
        dataset=found.dataset,
        origin=origin,
        rows_in=found.rows_in + after,
        rows_used=found.rows_in - found.rows_quarantined,
        rows_quarantined=found.rows_quarantined,
        rules=tuple(results),
        contract_sha256=contract.sha256,
        set_aside=tuple((str(a), int(b)) for a, b in set_aside.iter_rows()),
        excluded_by={"after_as_of": after} if after else {},
    )
    return dv, findings


def _result(rule: Rule, engine: str = ENGINE_LABEL, **outcome: Any) -> RuleResult:
    """``rule``'s result as the database judged it (``outcome``: the RuleResult fields left)."""
    return RuleResult(
        rule_id=rule.id,
        description=rule.description,
        columns=rule.columns,
        severity=rule.severity,
        source=rule.source,
        check=rule.check,
        mostly=rule.mostly,
        engine=engine,
        **outcome,
    )


def _samples(r: InDatabaseRule) -> tuple[str, ...]:
    """Up to five distinct checked values, as the pulled report shows them (``a=...; b=...``
    for two columns), in the order GX returned the rows."""
    if len(r.columns) == 1:
        values = [v or "" for v in r.failing[r.columns[0]].to_list()]
    else:
        values = [
            "; ".join(f"{c}={row[c] or ''}" for c in r.columns)
            for row in r.failing.iter_rows(named=True)
        ]
    return tuple(dict.fromkeys(values))[:_SAMPLES]


_SAMPLES = 5


def _finding_rows(
    r: InDatabaseRule, found: InDatabaseValidation, origin: str, message: str
) -> pl.DataFrame:
    """One finding per failing row GX returned: ``key=...; column=...`` as the value."""
    f = r.failing
    if f.height == 0:
        return pl.DataFrame(schema={**QUARANTINE_SCHEMA, **dict.fromkeys(found.key, pl.String())})
    names = list(dict.fromkeys([*found.key, *r.columns]))
    value = pl.concat_str(
        [pl.format("{}={}", pl.lit(c), pl.col(c).fill_null("")) for c in names], separator="; "
    ).str.slice(0, MAX_VALUE_CHARS)
    return f.select(
        *found.key,
        dataset=pl.lit(found.dataset),
        file=pl.lit(origin),
        **{SOURCE_ROW: pl.lit(None, pl.Int64())},
        rule=pl.lit(r.rule_id),
        column=pl.lit(",".join(r.columns)),
        value=value,
        severity=pl.lit(r.severity),
        message=pl.lit(message),
    )
