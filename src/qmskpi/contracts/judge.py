"""Judging: polars row masks (and, under the ``gx`` engine, GX's counts) -> rule results,
rows used, quarantine, the row ledger.

For each dataset, every rule gets an outcome (:func:`_outcomes`); the rows it
fails are flagged by its mask (:func:`_flag`), which also counts them: under
the ``polars`` engine these counts judge the rule, under another engine (GX)
they must equal that engine's (:class:`~qmskpi.contracts.rules.Counted`); a
row failing an ``error`` rule is quarantined (:func:`_findings`); and
``rows_in == rows_used + rows_quarantined + rows_excluded`` is checked before
the :class:`~qmskpi.contracts.report.DatasetValidation` is returned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from qmskpi.contracts.prepare import ROW, Prepared
from qmskpi.contracts.report import QUARANTINE_SCHEMA, DatasetValidation, RuleResult
from qmskpi.contracts.rules import Counted, domain_expr, freshness, mask_expr, passes, value_expr
from qmskpi.contracts.schema import WORD_OF_TYPE, Contract, Rule, Run
from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.errors import QmsKpiError

_SAMPLE_SIZE = 5
POLARS = "polars"
"""The engine name of a rule judged by its polars expressions (:mod:`qmskpi.contracts.rules`)."""
FINDINGS_SCHEMA: dict[str, pl.DataType] = {**QUARANTINE_SCHEMA, "quarantined": pl.Boolean()}
"""Columns of the findings: the quarantine's, plus whether the row was quarantined."""

Judged = tuple[DatasetValidation, pl.DataFrame, pl.DataFrame]
"""One dataset judged: its ledger and rule results, the rows used, its findings."""


@dataclass
class _Outcome:
    """What the checks found for one rule."""

    rule: Rule
    success: bool
    unexpected_count: int
    unexpected_share: float
    checked: bool = True
    observed: str | None = None
    mask: str | None = None
    """Column of the mask frame that flags the rule's failing rows."""
    message: pl.Expr | None = None
    """Per-row finding message (reference rules); else the rule's description."""
    engine: str = POLARS
    """Who judged the rule (``validation.json``)."""
    domain: pl.Expr | None = None
    """Rows the rule looks at, when its count and share are worked out here (polars
    engine, reference rules); None when another engine counted them."""


def _referenced(prep: Prepared) -> list[str]:
    """Datasets ``prep``'s reference rules point at."""
    return [r.target[0] for r in prep.contract.rules if r.check == "reference" and r.target]


def judge_all(
    prepared: Mapping[str, Prepared],
    run: Run,
    counted: Mapping[str, Mapping[str, Counted]] | None = None,
) -> dict[str, Judged]:
    """Judge every dataset; a reference matches only the rows the other dataset USES.

    ``counted`` holds, for the datasets another engine judged (GX, or a SQL
    engine next to the data), that engine's result by rule id; every other
    dataset is judged by its polars expressions. Either way the failing rows
    come from the polars masks.

    A row quarantined in the referenced dataset (a supplier with an unknown
    approval status) is not there for its referrers (the receipts naming it).
    Referenced datasets are judged first; a dataset whose used rows shrink
    after a referrer was judged (a cycle of references) has that referrer
    judged again. Used rows only ever shrink, so this ends.
    """
    order: list[str] = []

    def visit(name: str, seen: set[str]) -> None:
        if name in seen or name not in prepared:
            return
        seen.add(name)
        for target in _referenced(prepared[name]):
            visit(target, seen)
        order.append(name)

    seen: set[str] = set()
    for name in prepared:
        visit(name, seen)
    referrers = {n: [m for m in prepared if n in _referenced(prepared[m])] for n in prepared}
    used: dict[str, pl.DataFrame] = {n: p.frame for n, p in prepared.items()}
    judged: dict[str, Judged] = {}
    pending = list(order)
    while pending:
        name = pending.pop(0)
        judged[name] = _judge(prepared[name], (counted or {}).get(name), prepared, used, run)
        rows_used = judged[name][1]
        if rows_used.height != used[name].height:
            used[name] = rows_used
            pending.extend(m for m in referrers[name] if m in judged and m not in pending)
    return judged


def missing_dataset(name: str, contract: Contract) -> DatasetValidation:
    rule = RuleResult(
        rule_id="dataset_present",
        description=f"The configured source of {name} was loaded.",
        columns=(),
        severity="error",
        success=False,
        unexpected_count=0,
        unexpected_share=0.0,
        sample_values=(),
        source="reader",
        check="dataset_present",
        observed="not loaded",
        engine="reader",
    )
    return DatasetValidation(
        dataset=name,
        origin="(not loaded)",
        rows_in=0,
        rows_used=0,
        rows_quarantined=0,
        rules=(rule,),
        contract_sha256=contract.sha256,
        loaded=False,
    )


def _reference_outcome(
    rule: Rule,
    prep: Prepared,
    prepared: Mapping[str, Prepared],
    used: Mapping[str, pl.DataFrame],
) -> tuple[_Outcome, pl.Expr | None]:
    assert rule.target is not None
    target_ds, target_col = rule.target
    col = rule.columns[0]
    if col in prep.missing:
        return _not_checked(rule, f"column '{col}' is missing"), None
    target = prepared.get(target_ds)
    if target is None:
        return _skipped(rule, f"not checked: dataset '{target_ds}' was not supplied"), None
    if target_col in target.missing:
        return _not_checked(rule, f"column '{target_ds}.{target_col}' is missing"), None
    # Only the rows the other dataset uses count: a quarantined row is not there.
    known = used[target_ds].get_column(target_col).drop_nulls().unique()
    every = target.frame.get_column(target_col).drop_nulls().unique()
    expr = pl.col(col).is_not_null() & ~pl.col(col).is_in(known.implode())
    domain = pl.col(col).is_not_null()
    value = pl.col(col).cast(pl.String)
    message = pl.concat_str(
        pl.lit(f"{rule.description} ({target_ds}.{target_col} '"),
        value,
        pl.when(pl.col(col).is_in(every.implode()))
        .then(pl.lit(f"' is only on {target_ds} rows that were quarantined)"))
        .otherwise(pl.lit(f"' is missing from {target_ds})")),
    )
    outcome = _Outcome(rule, True, 0, 0.0, mask=rule.id, message=message, domain=domain)
    return outcome, expr.fill_null(False)


def _not_checked(rule: Rule, why: str, engine: str = POLARS) -> _Outcome:
    return _Outcome(
        rule, False, 0, 0.0, checked=False, observed=f"not checked: {why}", engine=engine
    )


def _skipped(rule: Rule, why: str, engine: str = POLARS) -> _Outcome:
    return _Outcome(rule, True, 0, 0.0, checked=False, observed=why, engine=engine)


# --------------------------------------------------------------------------- judging one dataset


def _judge(
    prep: Prepared,
    counted: Mapping[str, Counted] | None,
    prepared: Mapping[str, Prepared],
    used_rows: Mapping[str, pl.DataFrame],
    run: Run,
) -> Judged:
    """Row masks (+ another engine's counts) -> rule results, clean rows, findings; checks
    the ledger."""
    outcomes, masks = _outcomes(prep, counted, prepared, used_rows, run)
    flagged = _flag(prep, counted or {}, outcomes, masks)
    quarantined, found = _findings(prep, outcomes, flagged)
    results = _rule_results(prep, counted, outcomes, _samples(found))
    used = prep.frame.filter(~quarantined).drop(ROW, "file", strict=False)
    used = _canonical_columns(prep.name, used)
    dv = DatasetValidation(
        dataset=prep.name,
        origin=prep.origin,
        rows_in=int(prep.loaded.rows_in),
        rows_used=used.height,
        rows_quarantined=prep.rows_rejected + int(quarantined.sum()),
        rules=tuple(results),
        sha256=str(prep.loaded.sha256) if prep.loaded.sha256 is not None else None,
        contract_sha256=prep.contract.sha256,
        set_aside=_set_aside(found),
        excluded_by=dict(Counter(prep.excluded.get_column("rule").to_list())),
    )
    if dv.rows_in != dv.rows_used + dv.rows_quarantined + dv.rows_excluded:
        raise QmsKpiError(
            f"dataset '{prep.name}': the row ledger does not balance: rows_in {dv.rows_in} != "
            f"used {dv.rows_used} + quarantined {dv.rows_quarantined} + excluded "
            f"{dv.rows_excluded}"
        )
    return dv, used, found


def _outcomes(
    prep: Prepared,
    counted: Mapping[str, Counted] | None,
    prepared: Mapping[str, Prepared],
    used_rows: Mapping[str, pl.DataFrame],
    run: Run,
) -> tuple[list[_Outcome], dict[str, pl.Expr]]:
    """Each rule's outcome, and the mask of failing rows of each row-level rule (by rule id)."""
    outcomes: list[_Outcome] = []
    masks: dict[str, pl.Expr] = {}
    for rule in prep.contract.rules:
        if rule.check == "reference":  # across datasets: no GX expectation says this
            outcome, expr = _reference_outcome(rule, prep, prepared, used_rows)
        elif counted is None:
            outcome, expr = _polars_outcome(rule, prep, run)
        else:
            outcome, expr = _gx_outcome(rule, counted.get(rule.id), prep, run)
        if expr is not None:
            masks[rule.id] = expr
            outcome.mask = rule.id
        outcomes.append(outcome)
    return outcomes, masks


def _cannot_check(rule: Rule, prep: Prepared, run: Run, engine: str) -> _Outcome | None:
    """The outcome of a rule that cannot be applied here (the same under every engine)."""
    if rule.check == "allowed" and rule.values_from == "sites" and not run.sites:
        return _skipped(rule, "not checked: no sites configured", engine)
    gone = [c for c in rule.needed_columns if c in prep.missing]
    if gone:
        return _not_checked(rule, f"column {', '.join(repr(c) for c in gone)} is missing", engine)
    return None


def _freshness_seen(rule: Rule, prep: Prepared, run: Run) -> tuple[bool, str]:
    """(fresh?, what was seen) of a freshness rule, worked out in polars."""
    newest, bound, fresh = freshness(rule, prep, run)
    seen = (
        f"newest {rule.columns[0]} {newest or 'none (no rows)'}; needs {bound.isoformat()} or later"
    )
    return fresh, seen


def _polars_outcome(rule: Rule, prep: Prepared, run: Run) -> tuple[_Outcome, pl.Expr | None]:
    """A rule judged by its polars expressions; a row rule's count is filled in by :func:`_flag`."""
    cannot = _cannot_check(rule, prep, run, POLARS)
    if cannot is not None:
        return cannot, None
    if not rule.row_level:  # freshness
        fresh, seen = _freshness_seen(rule, prep, run)
        return _Outcome(rule, fresh, 0, 0.0, observed=seen), None
    outcome = _Outcome(rule, True, 0, 0.0, domain=domain_expr(rule, prep.contract))
    return outcome, mask_expr(rule, prep.contract, run, prep.frame)


def _gx_outcome(
    rule: Rule, result: Counted | None, prep: Prepared, run: Run
) -> tuple[_Outcome, pl.Expr | None]:
    """The outcome of a rule another engine (GX) judged, and its row mask (None for a
    table-level rule)."""
    engine = result.engine if result is not None else "great_expectations"
    cannot = _cannot_check(rule, prep, run, engine)
    if cannot is not None:
        return cannot, None
    if result is None:
        raise QmsKpiError(
            f"dataset '{prep.name}', rule '{rule.id}': {engine} returned no result for it"
        )
    if result.exception is not None:
        return _not_checked(rule, f"{engine} raised: {result.exception}", engine), None
    outcome = _Outcome(
        rule,
        result.success,
        result.unexpected_count or 0,
        result.unexpected_share,
        observed=result.observed,
        engine=engine,
    )
    if rule.check == "freshness":
        fresh, outcome.observed = _freshness_seen(rule, prep, run)
        if fresh != result.success:
            raise QmsKpiError(
                f"dataset '{prep.name}', rule '{rule.id}': {engine} and qmskpi disagree on "
                f"freshness ({outcome.observed})"
            )
    expr = mask_expr(rule, prep.contract, run, prep.frame) if rule.row_level else None
    return outcome, expr


def _flag(
    prep: Prepared,
    counted: Mapping[str, Counted],
    outcomes: list[_Outcome],
    masks: Mapping[str, pl.Expr],
) -> pl.DataFrame:
    """The mask frame (ROW + one boolean column per masked rule), and each rule's count.

    A rule with a ``domain`` (polars engine, reference rules) is counted and
    judged here; another engine's count must equal the mask's.
    """
    frame = prep.frame
    flagged = frame.select(ROW, *[e.alias(k) for k, e in masks.items()])
    counts = (
        flagged.select([pl.col(k).sum().alias(k) for k in masks]).row(0, named=True)
        if masks
        else {}
    )
    domains = {o.mask: o.domain for o in outcomes if o.mask is not None and o.domain is not None}
    looked_at = (
        frame.select([d.sum().alias(k) for k, d in domains.items()]).row(0, named=True)
        if domains
        else {}
    )
    for o in outcomes:
        if o.mask is None:
            continue
        n = int(counts[o.mask] or 0)
        if o.domain is not None:
            seen = int(looked_at[o.mask] or 0)
            o.unexpected_count = n
            o.unexpected_share = n / seen if seen else 0.0
            o.success = passes(n, seen, o.rule.mostly)
            continue
        other = counted[o.rule.id].unexpected_count
        if other != n:
            raise QmsKpiError(
                f"dataset '{prep.name}', rule '{o.rule.id}': {o.engine} counted {other} failing "
                f"rows, qmskpi's row mask {n}; the quarantine would not match the report, so "
                "validation stops (please report this)"
            )
    return flagged


def _findings(
    prep: Prepared, outcomes: list[_Outcome], flagged: pl.DataFrame
) -> tuple[pl.Series, pl.DataFrame]:
    """(quarantined?, per row of the frame; every finding, reader rejects included)."""
    frame = prep.frame
    error_masks = [pl.col(o.mask) for o in outcomes if o.mask and o.rule.severity == "error"]
    any_error = pl.any_horizontal(error_masks) if error_masks else pl.lit(False)
    # The mask frame is row-aligned with ``frame``: put them side by side (no join).
    combined = pl.concat(
        [frame, flagged.drop(ROW).with_columns(any_error.alias("_quarantined"))],
        how="horizontal",
    )
    parts: list[pl.LazyFrame] = []
    lazy = combined.lazy()
    file_expr = (
        pl.col("file")
        if "file" in frame.columns
        else pl.lit(prep.origin, dtype=pl.String).alias("file")
    )
    for o in outcomes:
        if o.mask is None:
            continue
        parts.append(
            lazy.filter(pl.col(o.mask)).select(
                pl.lit(prep.name).alias("dataset"),
                file_expr,
                pl.col(SOURCE_ROW),
                pl.lit(o.rule.id).alias("rule"),
                pl.lit(",".join(o.rule.columns)).alias("column"),
                value_expr(o.rule.columns).alias("value"),
                pl.lit(o.rule.severity).alias("severity"),
                (o.message if o.message is not None else pl.lit(o.rule.description)).alias(
                    "message"
                ),
                pl.col("_quarantined").alias("quarantined"),
            )
        )
    row_findings = pl.concat(pl.collect_all(parts)) if parts else None
    reader_findings = as_findings(prep.rejects, prep.name, "error").with_columns(
        pl.lit(True).alias("quarantined")
    )
    found = pl.concat(
        [f.cast(FINDINGS_SCHEMA) for f in (row_findings, reader_findings) if f is not None],  # type: ignore[arg-type]
        how="vertical",
    )
    return combined.get_column("_quarantined"), found


def as_findings(rows: pl.DataFrame, dataset: str, severity: str) -> pl.DataFrame:
    """Reader rejects (or excluded records) in the columns of :data:`QUARANTINE_SCHEMA`."""
    return rows.select(
        pl.lit(dataset).alias("dataset"),
        pl.col("file"),
        pl.col(SOURCE_ROW),
        pl.col("rule"),
        pl.col("column"),
        pl.col("value").fill_null(""),
        pl.lit(severity).alias("severity"),
        pl.col("message").fill_null(""),
    )


def _rule_results(
    prep: Prepared,
    counted: Mapping[str, Counted] | None,
    outcomes: list[_Outcome],
    samples: Mapping[str, tuple[str, ...]],
) -> list[RuleResult]:
    """Reader rules first, then ``columns_present``, then the contract's rules."""
    results: list[RuleResult] = _reader_results(prep, samples)
    columns_rule = (
        Counted(not prep.missing, 0, 0.0, None, None, POLARS)
        if counted is None
        else counted.get("columns_present")
    )
    if columns_rule is not None:
        results.append(
            RuleResult(
                rule_id="columns_present",
                description="Every column of the canonical dataset is present.",
                columns=(),
                severity="error",
                success=columns_rule.success,
                unexpected_count=0,
                unexpected_share=0.0,
                sample_values=tuple(prep.missing[:_SAMPLE_SIZE]),
                source="gx",
                check="columns_present",
                observed=(f"missing: {', '.join(prep.missing)}" if prep.missing else None),
                engine=columns_rule.engine,
            )
        )
    for o in outcomes:
        results.append(
            RuleResult(
                rule_id=o.rule.id,
                description=o.rule.description,
                columns=o.rule.columns,
                severity=o.rule.severity,
                success=o.success,
                unexpected_count=o.unexpected_count,
                unexpected_share=round(o.unexpected_share, 6),
                sample_values=samples.get(o.rule.id, ()),
                source=o.rule.source,
                check=o.rule.check,
                mostly=o.rule.mostly,
                checked=o.checked,
                observed=o.observed,
                engine=o.engine,
            )
        )
    return results


def _set_aside(found: pl.DataFrame) -> tuple[tuple[str, int], ...]:
    """(rule id, quarantined rows that broke it), most rows first, then by rule id."""
    counts = (
        found.filter(pl.col("quarantined"))
        .group_by("rule")
        .agg(pl.struct("file", SOURCE_ROW).n_unique().alias("rows"))
        .sort(["rows", "rule"], descending=[True, False])
    )
    return tuple((str(rule), int(rows)) for rule, rows in counts.iter_rows())


def _canonical_columns(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Canonical columns in canonical order (a missing one as nulls) + source_row."""
    ds = DATASETS[name]
    cols = [
        pl.col(f.name) if f.name in frame.columns else pl.lit(None, dtype=f.dtype).alias(f.name)
        for f in ds.fields
    ]
    return frame.select(*cols, pl.col(SOURCE_ROW))


def _samples(found: pl.DataFrame) -> dict[str, tuple[str, ...]]:
    """Up to five distinct offending values per rule, in (file, source_row) order."""
    if found.is_empty():
        return {}
    firsts = (
        found.sort("file", SOURCE_ROW)
        .filter(pl.col("value").is_not_null())
        .unique(subset=["rule", "value"], keep="first", maintain_order=True)
        .group_by("rule", maintain_order=True)
        .agg(pl.col("value").head(_SAMPLE_SIZE))
    )
    return {r: tuple(v) for r, v in firsts.iter_rows()}


def _reader_results(prep: Prepared, samples: Mapping[str, tuple[str, ...]]) -> list[RuleResult]:
    """One failed ``error`` rule per reader rule found in the rejects (e.g. ``type:received_date``)."""
    if prep.rejects.is_empty():
        return []
    out: list[RuleResult] = []
    grouped = (
        prep.rejects.group_by("rule")
        .agg(
            pl.struct("file", SOURCE_ROW).n_unique().alias("rows"),
            pl.col("column").unique().sort().alias("columns"),
            pl.col("message").first().alias("message"),
        )
        .sort("rule")
    )
    rows_in = max(int(prep.loaded.rows_in), 1)
    for rule_id, rows, columns, message in grouped.iter_rows():
        out.append(
            RuleResult(
                rule_id=str(rule_id),
                description=_reader_description(prep.name, str(rule_id), message),
                columns=tuple(str(c) for c in columns if c),
                severity="error",
                success=False,
                unexpected_count=int(rows),
                unexpected_share=round(int(rows) / rows_in, 6),
                sample_values=samples.get(str(rule_id), ()),
                source="reader",
                check=str(rule_id).partition(":")[0],
                engine="reader",
            )
        )
    return out


def _reader_description(dataset: str, rule_id: str, message: str | None) -> str:
    kind, _, col = rule_id.partition(":")
    if kind == "type" and col in DATASETS[dataset].field_names:
        word = WORD_OF_TYPE[DATASETS[dataset].field(col).type]
        return f"Values of {col} that could not be read as a {word}: the row cannot be used."
    if rule_id == "shape:fields":
        return "Rows with more fields than the header: the row cannot be used."
    return f"The reader could not use these rows ({message or rule_id})."


# --------------------------------------------------------------------------- Great Expectations
