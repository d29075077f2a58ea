"""Judging: GX counts + polars row masks -> rule results, rows used, quarantine, the row ledger.

For each dataset, every rule gets an outcome (:func:`_outcomes`); the rows it
fails are flagged by its mask and the counts checked against Great
Expectations' (:func:`_flag`); a row failing an ``error`` rule is quarantined
(:func:`_findings`); and ``rows_in == rows_used + rows_quarantined +
rows_excluded`` is checked
before the :class:`~qmskpi.contracts.report.DatasetValidation` is returned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from qmskpi.contracts.gx import GxResult
from qmskpi.contracts.prepare import ROW, Prepared
from qmskpi.contracts.report import QUARANTINE_SCHEMA, DatasetValidation, RuleResult
from qmskpi.contracts.rules import freshness, mask_expr, value_expr
from qmskpi.contracts.schema import WORD_OF_TYPE, Contract, Rule, Run
from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.errors import QmsKpiError

_SAMPLE_SIZE = 5
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


def _referenced(prep: Prepared) -> list[str]:
    """Datasets ``prep``'s reference rules point at."""
    return [r.target[0] for r in prep.contract.rules if r.check == "reference" and r.target]


def judge_all(
    prepared: Mapping[str, Prepared], gx: Mapping[str, Mapping[str, GxResult]], run: Run
) -> dict[str, Judged]:
    """Judge every dataset; a reference matches only the rows the other dataset USES.

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
        judged[name] = _judge(prepared[name], gx[name], prepared, used, run)
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
    value = pl.col(col).cast(pl.String)
    message = pl.concat_str(
        pl.lit(f"{rule.description} ({target_ds}.{target_col} '"),
        value,
        pl.when(pl.col(col).is_in(every.implode()))
        .then(pl.lit(f"' is only on {target_ds} rows that were quarantined)"))
        .otherwise(pl.lit(f"' is missing from {target_ds})")),
    )
    return _Outcome(rule, True, 0, 0.0, mask=rule.id, message=message), expr.fill_null(False)


def _not_checked(rule: Rule, why: str) -> _Outcome:
    return _Outcome(rule, False, 0, 0.0, checked=False, observed=f"not checked: {why}")


def _skipped(rule: Rule, why: str) -> _Outcome:
    return _Outcome(rule, True, 0, 0.0, checked=False, observed=why)


# --------------------------------------------------------------------------- judging one dataset


def _judge(
    prep: Prepared,
    gx: Mapping[str, GxResult],
    prepared: Mapping[str, Prepared],
    used_rows: Mapping[str, pl.DataFrame],
    run: Run,
) -> Judged:
    """Row masks + GX results -> rule results, clean rows, findings; checks the ledger."""
    outcomes, masks = _outcomes(prep, gx, prepared, used_rows, run)
    flagged = _flag(prep, gx, outcomes, masks)
    quarantined, found = _findings(prep, outcomes, flagged)
    results = _rule_results(prep, gx, outcomes, _samples(found))
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
    gx: Mapping[str, GxResult],
    prepared: Mapping[str, Prepared],
    used_rows: Mapping[str, pl.DataFrame],
    run: Run,
) -> tuple[list[_Outcome], dict[str, pl.Expr]]:
    """Each rule's outcome, and the mask of failing rows of each row-level rule (by rule id)."""
    outcomes: list[_Outcome] = []
    masks: dict[str, pl.Expr] = {}
    for rule in prep.contract.rules:
        if rule.check == "reference":  # checked across datasets here, not by GX
            outcome, expr = _reference_outcome(rule, prep, prepared, used_rows)
        else:
            outcome, expr = _gx_outcome(rule, gx.get(rule.id), prep, run)
        if expr is not None:
            masks[rule.id] = expr
            outcome.mask = rule.id
        outcomes.append(outcome)
    return outcomes, masks


def _gx_outcome(
    rule: Rule, result: GxResult | None, prep: Prepared, run: Run
) -> tuple[_Outcome, pl.Expr | None]:
    """The outcome of a rule GX checked, and its row mask (None for a table-level rule)."""
    if result is None:  # not sent to GX: skipped
        return _skipped(rule, "not checked: no sites configured"), None
    gone = [c for c in rule.needed_columns if c in prep.missing]
    if gone:
        return _not_checked(rule, f"column {', '.join(repr(c) for c in gone)} is missing"), None
    if result.exception is not None:
        return _not_checked(rule, f"Great Expectations raised: {result.exception}"), None
    outcome = _Outcome(
        rule,
        result.success,
        result.unexpected_count or 0,
        result.unexpected_share,
        observed=result.observed,
    )
    if rule.check == "freshness":
        newest, bound, fresh = freshness(rule, prep, run)
        if fresh != result.success:
            raise QmsKpiError(
                f"dataset '{prep.name}', rule '{rule.id}': Great Expectations and qmskpi "
                f"disagree on freshness (newest {newest}, needed {bound} or later)"
            )
        outcome.observed = (
            f"newest {rule.columns[0]} {newest or 'none (no rows)'}; "
            f"needs {bound.isoformat()} or later"
        )
    expr = mask_expr(rule, prep.contract, run) if rule.row_level else None
    return outcome, expr


def _flag(
    prep: Prepared,
    gx: Mapping[str, GxResult],
    outcomes: list[_Outcome],
    masks: Mapping[str, pl.Expr],
) -> pl.DataFrame:
    """The mask frame (ROW + one boolean column per masked rule); counts checked against GX.

    A reference rule is counted and judged here (GX does not see it).
    """
    frame = prep.frame
    flagged = frame.select(ROW, *[e.alias(k) for k, e in masks.items()])
    counts = (
        flagged.select([pl.col(k).sum().alias(k) for k in masks]).row(0, named=True)
        if masks
        else {}
    )
    for o in outcomes:
        if o.mask is None:
            continue
        n = int(counts[o.mask] or 0)
        if o.rule.source == "gx":
            gx_count = gx[o.rule.id].unexpected_count
            if gx_count != n:
                raise QmsKpiError(
                    f"dataset '{prep.name}', rule '{o.rule.id}': Great Expectations counted "
                    f"{gx_count} failing rows, qmskpi's row mask {n}; the quarantine would not "
                    "match the report, so validation stops (please report this)"
                )
        else:  # reference: counted and judged here
            looked_at = int(frame.select(pl.col(o.rule.columns[0]).is_not_null().sum()).item())
            share = n / looked_at if looked_at else 0.0
            o.unexpected_count = n
            o.unexpected_share = share
            o.success = n == 0 if o.rule.mostly is None else (1 - share) >= o.rule.mostly - 1e-12
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
    gx: Mapping[str, GxResult],
    outcomes: list[_Outcome],
    samples: Mapping[str, tuple[str, ...]],
) -> list[RuleResult]:
    """Reader rules first, then ``columns_present`` (when GX ran), then the contract's rules."""
    results: list[RuleResult] = _reader_results(prep, samples)
    columns_rule = gx.get("columns_present")
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
