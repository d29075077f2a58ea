"""The appendix tables: how the figures were obtained.

The data-quality ledger (every row read is used or quarantined), the
validation rules that failed, the KPI definitions and the method notes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmskpi import kpis
from qmskpi.datasets import DATASETS
from qmskpi.review.context import Context
from qmskpi.review.formatting import as_scalar
from qmskpi.review.methods import method_notes
from qmskpi.review.model import Column, Scalar, Table

if TYPE_CHECKING:  # contracts imports Great Expectations lazily; the model never needs it
    from qmskpi.contracts import ValidationReport


def appendix_tables(ctx: Context, validation: ValidationReport | None) -> tuple[Table, ...]:
    """The appendix: ledger, failed rules (when validated), KPI definitions, method notes."""
    out: list[Table | None] = [
        _ledger(ctx, validation),
        _failed_rules(ctx, validation),
        _kpi_definitions(ctx),
        _method_notes(ctx),
    ]
    return tuple(t for t in out if t is not None)


def _ledger(ctx: Context, validation: ValidationReport | None) -> Table:
    rows: list[tuple[Scalar, ...]] = []
    names = sorted(
        set(ctx.data) | (set(validation.datasets) if validation is not None else set()),
        key=lambda n: (list(DATASETS).index(n) if n in DATASETS else 99, n),
    )
    for name in names:
        excluded = ""
        if validation is not None and name in validation.datasets:
            dv = validation.datasets[name]
            rows_in, used, quarantined = (
                int(dv.rows_in),
                int(dv.rows_used),
                int(dv.rows_quarantined),
            )
            by_rule = getattr(dv, "excluded_by", None) or {}  # a duck-typed report may lack it
            excluded = ", ".join(f"{n} {rule}" for rule, n in sorted(by_rule.items()))
        else:
            used = ctx.data[name].height
            rows_in, quarantined = used, 0
        sound = name not in ctx.unsound
        rows.append((name, rows_in, used, quarantined, excluded or "0", sound))
    return Table(
        "ledger",
        "Data-quality ledger: every row read is used, quarantined or excluded",
        (
            Column("dataset", "Dataset"),
            Column("rows_in", "Rows in", "int"),
            Column("rows_used", "Used", "int"),
            Column("rows_quarantined", "Quarantined", "int"),
            Column("rows_excluded", "Excluded (where, duplicate)"),
            Column("sound", "Sound", "bool"),
        ),
        tuple(rows),
        note="" if validation is not None else "Not validated: no validation report was given.",
    )


def _failed_rules(ctx: Context, validation: ValidationReport | None) -> Table | None:
    if validation is None:
        return None
    rows: list[tuple[Scalar, ...]] = []
    for name in sorted(validation.datasets):
        for r in validation.datasets[name].rules:
            if r.success:
                continue
            samples = ", ".join(str(v) for v in list(r.sample_values or ())[:5])
            rows.append(
                (
                    name,
                    str(r.rule_id),
                    str(r.description),
                    as_scalar(r.column),
                    str(r.severity),
                    int(r.unexpected_count or 0),
                    samples,
                )
            )
    rows.sort(key=lambda r: (0 if r[4] == "error" else 1, str(r[0]), str(r[1]), str(r[3])))
    table = Table(
        "failed_rules",
        "Validation rules that failed",
        (
            Column("dataset", "Dataset"),
            Column("rule", "Rule"),
            Column("description", "What it checks", "longtext"),
            Column("column", "Column"),
            Column("severity", "Severity"),
            Column("unexpected_count", "Rows", "int"),
            Column("sample_values", "Examples", "longtext"),
        ),
        tuple(rows),
        note="error: the rows are quarantined and the measures that use the dataset are "
        "flagged; warn: shown only.",
        empty_text="Every validation rule passed.",
    )
    return ctx.bounded(
        table, sheet="Failed rules", order="error before warn, then by dataset and rule."
    )


def _kpi_definitions(ctx: Context) -> Table:
    rows = tuple(
        (
            d.id,
            d.title,
            str(d.iso_clause),
            str(d.unit),
            str(d.direction),
            str(d.kind),
            ", ".join([*d.datasets, *(f"{o} (optional)" for o in d.optional_datasets)]),
            " ".join(str(d.definition).split()),
            ctx.target(d.id),
        )
        for d in kpis.REGISTRY.values()
    )
    return Table(
        "kpi_definitions",
        "KPI definitions",
        (
            Column("kpi", "KPI"),
            Column("title", "Title"),
            Column("iso_clause", "ISO"),
            Column("unit", "Unit"),
            Column("direction", "Better"),
            Column("kind", "Kind"),
            Column("datasets", "Data"),
            Column("definition", "Definition", "longtext"),
            Column("target", "Target", "float"),
        ),
        rows,
    )


def _method_notes(ctx: Context) -> Table:
    present = [name for name, frame in ctx.data.items() if frame is not None]
    present += [name for name in ctx.first_levels() if name not in present]
    return Table(
        "method_notes",
        "Method notes",
        (Column("topic", "Topic"), Column("note", "Note", "longtext")),
        method_notes(ctx.config, datasets=present),
    )
