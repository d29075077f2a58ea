"""validate(): load the contracts, conform the data, judge (polars, or GX), build the report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import polars as pl

from qmskpi.config import ValidationEngine
from qmskpi.contracts.gx import run_gx
from qmskpi.contracts.indb import InDatabaseValidation, judged_in_database
from qmskpi.contracts.judge import (
    FINDINGS_SCHEMA,
    POLARS,
    as_findings,
    judge_all,
    missing_dataset,
)
from qmskpi.contracts.loader import configured_contracts
from qmskpi.contracts.prepare import LoadedLike, known_on, prepare
from qmskpi.contracts.report import QUARANTINE_SCHEMA, DatasetValidation, ValidationReport
from qmskpi.contracts.schema import DEFAULT_STALE_DAYS, Run
from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.errors import QmsKpiError, did_you_mean
from qmskpi.periods import Period, parse_period

if TYPE_CHECKING:
    from qmskpi.config import Config

DEFAULT_SHARE = 0.10
"""``max_quarantined_share`` when no config gives one (as ``[kpis]`` defaults)."""

ENGINES: tuple[str, ...] = get_args(ValidationEngine)
"""``polars`` (default: each rule's polars expression, no Great Expectations import) or
``gx`` (the contracts' GX suites, run by Great Expectations)."""


def _engine(engine: str | None, config: Config | None) -> ValidationEngine:
    chosen = engine or (config.contracts.engine if config is not None else None) or "polars"
    if chosen not in ENGINES:
        raise QmsKpiError(
            f"unknown validation engine {chosen!r}{did_you_mean(chosen, ENGINES)}; "
            f"choose one of {', '.join(ENGINES)}"
        )
    return chosen  # type: ignore[return-value]


def _run(p: Period, config: Config | None, as_of: date | None) -> Run:
    """The period, as-of day, sites and freshness window every rule is checked against."""
    return Run(
        period=p,
        as_of=as_of or (config.review.as_of if config is not None else None) or date.today(),
        sites=tuple(config.sites) if config is not None else (),
        stale_days=config.review.stale_after_days if config is not None else DEFAULT_STALE_DAYS,
    )


# Long by design: the validation sequence (contracts, prepare, evaluate with the chosen
# engine, judge, report) reads top to bottom; each step is a call, the rest is its arguments.
def validate(
    data: Mapping[str, LoadedLike],
    *,
    period: Period | str,
    config: Config | None = None,
    as_of: date | None = None,
    contracts_dir: Path | None = None,
    max_quarantined_share: float | None = None,
    backfill: bool = False,
    engine: ValidationEngine | None = None,
    in_database: Mapping[str, tuple[InDatabaseValidation, str]] | None = None,
) -> ValidationReport:
    """Check every loaded dataset against its contract; quarantine what breaks ``error`` rules.

    ``as_of`` (default ``config.review.as_of``, else today) is the day the data
    was taken: no event may be dated after it. Rows dated after the period end
    but not after ``as_of`` are fine (a later extract of the same records).
    With ``backfill`` (an export newer than ``as_of``: ``--as-of`` given),
    records dated after ``as_of`` are left out and excluded as ``after_as_of``
    and closures after it are not known yet (the record is open), see
    :func:`~qmskpi.contracts.prepare.known_on`; without it they are quarantined
    by the ``*_not_future`` rules (a date typed wrong).
    ``config`` supplies the sites (``values: sites``), the default freshness
    window (``[review] stale_after_days``) and the configured datasets: one
    configured but missing from ``data`` is reported and unsound.

    A dataset whose rows broke ``error`` rules stays sound while the share of
    its rows set aside is at most ``max_quarantined_share`` (default
    ``config.kpis.max_quarantined_share``, else 0.10). The contracts are the
    shipped ones, ``contracts_dir``'s, or those the config names in
    ``[contracts]`` (with its per-rule overrides).

    ``engine`` (default ``[contracts] engine``, else ``polars``) judges the
    rules: ``polars`` evaluates each rule once, as a polars expression;
    ``gx`` runs the contracts' Great Expectations suites and takes each rule's
    verdict from GX (the failing rows still come from the polars masks, whose
    counts must equal GX's). Both give the same results (the test suite checks
    it); ``reference`` rules are judged in polars under both.

    ``in_database``: by dataset, what validation in the database found
    (``pushdown``; :func:`~qmskpi.contracts.indb.validate_in_database`) and the
    source's origin (``sql:NAME``), for datasets not in ``data``: their ledger,
    rule results (engine ``gx-sql``) and quarantine (by key) come from it; they
    have no rows in :attr:`ValidationReport.clean`.
    """
    p = parse_period(period)
    chosen = _engine(engine, config)
    run = _run(p, config, as_of)
    for name in data:
        if name not in DATASETS:
            raise QmsKpiError(f"unknown dataset {name!r}{did_you_mean(name, DATASETS)}")
    contracts = configured_contracts(config, contracts_dir)
    prepared = {
        name: prepare(name, data[name], contracts[name]) for name in DATASETS if name in data
    }
    if backfill:
        prepared = {name: known_on(prep, run.as_of) for name, prep in prepared.items()}

    if chosen == "gx":
        counted, engine_label = run_gx(prepared, run)
        judged = judge_all(prepared, run, counted)
    else:
        engine_label = f"{POLARS} {pl.__version__}"
        judged = judge_all(prepared, run)
    results: dict[str, DatasetValidation] = {n: judged[n][0] for n in prepared}
    clean: dict[str, pl.DataFrame] = {n: judged[n][1] for n in prepared}
    findings_parts: list[pl.DataFrame] = [judged[n][2] for n in prepared]
    for name, (found, origin) in (in_database or {}).items():
        if name in data:
            raise QmsKpiError(
                f"dataset {name!r} given both as rows and as validated in the database"
            )
        results[name], in_db_findings = judged_in_database(found, contracts[name], origin)
        findings_parts.append(in_db_findings)
    configured = tuple(config.sources) if config is not None else ()
    for name in DATASETS:
        if name in configured and name not in data and name not in results:
            results[name] = missing_dataset(name, contracts[name])
    threshold = max_quarantined_share
    if threshold is None:
        threshold = config.kpis.max_quarantined_share if config is not None else DEFAULT_SHARE
    results = {
        n: replace(results[n], max_quarantined_share=threshold) for n in DATASETS if n in results
    }

    findings = (
        pl.concat(findings_parts, how="vertical")
        if findings_parts
        else pl.DataFrame(schema=FINDINGS_SCHEMA)
    ).sort("dataset", "file", SOURCE_ROW, "rule", "column")
    quarantine = findings.filter(pl.col("quarantined")).drop("quarantined")
    unsound = frozenset(n for n, d in results.items() if not d.sound)
    excluded = pl.concat(
        [pl.DataFrame(schema=QUARANTINE_SCHEMA)]
        + [
            as_findings(p.excluded, n, "excluded").cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
            for n, p in prepared.items()
        ],
        how="vertical",
    ).sort("dataset", "file", SOURCE_ROW)
    return ValidationReport(
        period=p,
        as_of=run.as_of,
        datasets=results,
        clean=clean,
        quarantine=quarantine,
        findings=findings,
        unsound_datasets=unsound,
        engine=engine_label,
        excluded=excluded,
    )
