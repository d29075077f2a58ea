"""The tables of the 9.3.2 input sections and 9.3.3, from the records of the period.

Each builder reads the scope's frames (or a ``kpis`` table) and returns a
:class:`Table` (or None when its dataset is absent). Table builders show
records and figures only: they never write narrative (import-linter enforces it).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from qmskpi import kpis
from qmskpi.config import WHOLE_SCOPE
from qmskpi.periods import Period
from qmskpi.review.context import Context
from qmskpi.review.formatting import as_float, as_scalar, format_pair, slug
from qmskpi.review.model import Column, Scalar, Table, Trend


def section_tables(ctx: Context, trends: Sequence[Trend]) -> tuple[Table, ...]:
    """The tables of sections a) to 9.3.3 that have data, in the order the pack shows them."""
    out: list[Table | None] = [
        _review_actions(ctx),
        _critical_complaints(ctx),
        _complaint_ageing(ctx),
        _complaints_by_category(ctx),
        _objective_attainment(ctx),
        _defect_pareto(ctx),
        *_overdue(ctx),
        _site_signals(ctx, trends),
        _findings_by_type(ctx),
        _supplier_scorecard(ctx),
        _decisions(),
    ]
    return tuple(t for t in out if t is not None)


def _in_period(col: str, p: Period) -> pl.Expr:
    return pl.col(col).is_between(p.start, p.end)


def _open_at(p: Period, opened: str) -> pl.Expr:
    """Open at period end: opened by then and not closed by then."""
    return (pl.col(opened) <= p.end) & (
        pl.col("closed_date").is_null() | (pl.col("closed_date") > p.end)
    )


def _rows(frame: pl.DataFrame, columns: Sequence[str]) -> tuple[tuple[Scalar, ...], ...]:
    cols = list(columns)
    return tuple(tuple(as_scalar(v) for v in row) for row in frame.select(cols).iter_rows())


def _frame_table(
    ctx: Context,
    table_id: str,
    title: str,
    frame: pl.DataFrame,
    spec: Sequence[tuple[str, str, str]],
    *,
    sheet: str,
    order: str,
    note: str = "",
    empty_text: str = "None.",
) -> Table:
    """A bounded model table from a ranked frame: its first ``max_rows`` rows.

    ``spec`` is (column, label, format); absent columns are skipped. Every row
    goes to the register ``sheet`` (``ctx.registers``), ranked the same way.
    """
    present = [s for s in spec if s[0] in frame.columns]
    cols = [c for c, _, _ in present]
    ctx.registers[table_id] = frame.select(cols)
    n = ctx.max_rows
    return Table(
        id=table_id,
        title=title,
        columns=tuple(Column(c, label, fmt) for c, label, fmt in present),
        rows=_rows(frame.head(n), cols),
        note=note,
        empty_text=empty_text,
        order=order,
        more=max(0, frame.height - n),
        register=sheet,
    )


def _review_actions(ctx: Context) -> Table | None:
    f = ctx.frame("review_actions")
    if f is None:
        return None
    p = ctx.period
    f = f.filter(_open_at(p, "review_date") | _in_period("closed_date", p).fill_null(False))
    f = f.with_columns(
        status_at_end=pl.when(pl.col("closed_date").is_null() | (pl.col("closed_date") > p.end))
        .then(pl.lit("open"))
        .otherwise(pl.lit("closed")),
    ).with_columns(
        overdue=(pl.col("status_at_end") == "open") & (pl.col("due_date") < p.end),
    )
    f = f.sort(["overdue", "due_date", "action_id"], descending=[True, False, False])
    return _frame_table(
        ctx,
        "review_actions",
        "Actions from previous management reviews: open at period end or closed in the period",
        f,
        [
            ("action_id", "Action", "text"),
            ("review_date", "Raised", "date"),
            ("description", "Description", "longtext"),
            ("owner", "Owner", "text"),
            ("due_date", "Due", "date"),
            ("status_at_end", "Status", "text"),
            ("closed_date", "Closed", "date"),
            ("overdue", "Overdue", "bool"),
        ],
        sheet="Review actions",
        order="Overdue first, then by due date.",
        empty_text="No actions from previous reviews are open or were closed in the period.",
    )


_SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2}


def _critical_complaints(ctx: Context) -> Table | None:
    f = ctx.frame("complaints", listed=True)
    if f is None:
        return None
    f = f.filter(
        _in_period("received_date", ctx.period) & pl.col("severity").is_in(["critical", "major"])
    )
    f = f.with_columns(
        _rank=pl.col("severity").replace_strict(_SEVERITY_RANK, default=9, return_dtype=pl.Int64)
    ).sort(["_rank", "received_date", "complaint_id"])
    return _frame_table(
        ctx,
        "critical_complaints",
        f"Critical and major complaints received in {ctx.period.label}",
        f,
        [
            ("complaint_id", "Complaint", "text"),
            ("received_date", "Received", "date"),
            ("severity", "Severity", "text"),
            ("site", "Site", "text"),
            ("customer", "Customer", "text"),
            ("product", "Product", "text"),
            ("category", "Category", "text"),
            ("status", "Status", "text"),
            ("description", "Description", "longtext"),
        ],
        sheet="Critical complaints",
        order="Critical before major, then oldest first.",
        empty_text="No critical or major complaints were received in the period.",
    )


def _pushed_complaints(ctx: Context) -> tuple[kpis.FirstLevel, ...] | None:
    """The complaints' first levels when they were pushed down (no rows here), else None."""
    if ctx.data.get("complaints") is not None:
        return None
    return ctx.first_levels().get("complaints") or None


def _complaint_ageing(ctx: Context) -> Table | None:
    pushed = _pushed_complaints(ctx)
    if ctx.data.get("complaints") is None and pushed is None:
        return None
    f = kpis.complaint_ageing(
        ctx.data, ctx.period, ctx.scope, config=ctx.config.kpis, aggregate=pushed
    )
    buckets = list(dict.fromkeys(f["bucket"].to_list()))
    rows: list[tuple[Scalar, ...]] = []
    for s in ctx.scopes:
        g = f.filter(pl.col("scope") == s)
        if g.height == 0:
            continue
        counts = dict(zip(g["bucket"].to_list(), g["open"].to_list(), strict=True))
        total = sum(int(v or 0) for v in counts.values())
        rows.append(
            (
                "All sites" if s == WHOLE_SCOPE else s,
                *(int(counts.get(b) or 0) for b in buckets),
                total,
            )
        )
    whole = [r for r in rows if r[0] == "All sites"]
    sites = sorted((r for r in rows if r[0] != "All sites"), key=lambda r: -int(r[-1] or 0))
    table = Table(
        "complaint_ageing",
        "Complaints open at period end, by days since received",
        (
            Column("scope", "Scope"),
            *(Column(slug("age", b), f"{b} days", "int") for b in buckets),
            Column("open", "Open", "int"),
        ),
        (*whole, *sites),
        empty_text="No complaint is open at period end.",
    )
    return ctx.bounded(
        table,
        sheet="Complaint ageing",
        order="Sites with the most open complaints first.",
        pinned=range(len(whole)),
    )


def _complaints_by_category(ctx: Context) -> Table | None:
    pushed = _pushed_complaints(ctx)
    if ctx.data.get("complaints") is None and pushed is None:
        return None
    f = kpis.complaints_by_category(ctx.data, ctx.period, ctx.scope, aggregate=pushed).with_columns(
        pl.when(pl.col("category") == "all")
        .then(pl.lit("All categories"))
        .otherwise(pl.col("category"))
        .alias("category")
    )
    # The total first, so it stays in the pack however many categories the list cuts.
    f = pl.concat(
        [
            f.filter(pl.col("category") == "All categories"),
            f.filter(pl.col("category") != "All categories"),
        ]
    )
    return _frame_table(
        ctx,
        "complaints_by_category",
        f"Complaints received in {ctx.period.label}, by category and severity",
        f if f.height > 1 else f.head(0),
        (
            ("category", "Category", "text"),
            ("critical", "Critical", "int"),
            ("major", "Major", "int"),
            ("minor", "Minor", "int"),
            ("received", "Received", "int"),
            ("share", "Share", "share"),
        ),
        sheet="Complaints by category",
        order="The total first, then the largest category (ties: more critical first).",
        empty_text="No complaint was received in the period.",
    )


def _objective_attainment(ctx: Context) -> Table | None:
    if ctx.data.get("objectives") is None:
        return None
    f = kpis.objective_attainment(
        ctx.data,
        ctx.period,
        config=ctx.config.kpis,
        unsound=ctx.unsound,
        kpi_values=ctx.kpi_frame if ctx.scope == WHOLE_SCOPE else None,
        as_of=ctx.as_of,
        aggregates=ctx.first_levels(),
    )
    rows: list[tuple[Scalar, ...]] = []
    for r in f.iter_rows(named=True):
        unit = str(r.get("unit") or "")
        target, ytd = as_float(r.get("target")), as_float(r.get("ytd_actual"))
        actual_display, target_display = format_pair(as_float(r.get("actual")), target, unit)
        rows.append(
            (
                as_scalar(r.get("objective_id")),
                as_scalar(r.get("name")),
                as_scalar(r.get("clause")),
                as_scalar(r.get("owner")),
                as_scalar(r.get("direction")),
                as_scalar(unit),
                as_float(r.get("target")),
                as_float(r.get("actual")),
                as_float(r.get("ytd_actual")),
                target_display,
                actual_display,
                format_pair(ytd, target, unit)[0],
                as_scalar(r.get("met")),
                as_scalar(r.get("ytd_met")),
                bool(r.get("sound", True)),
                as_scalar(r.get("note")) or "",
            )
        )
    note = "Objectives are set for the whole organisation." if ctx.scope != WHOLE_SCOPE else ""
    rows.sort(key=lambda r: 0 if r[12] is False else 1 if r[12] is None else 2)
    table = Table(
        "objective_attainment",
        f"Quality objectives in {ctx.period.label}: actual against target",
        (
            Column("objective_id", "Objective"),
            Column("name", "Name"),
            Column("clause", "Clause"),
            Column("owner", "Owner"),
            Column("direction", "Better"),
            Column("unit", "Unit"),
            Column("target", "Target value", "float"),
            Column("actual", "Actual value", "float"),
            Column("ytd_actual", "YTD value", "float"),
            Column("target_display", "Target", "value"),
            Column("actual_display", "Actual", "value"),
            Column("ytd_display", "Year to date", "value"),
            Column("met", "Met", "bool"),
            Column("ytd_met", "Met YTD", "bool"),
            Column("sound", "Sound", "bool"),
            Column("note", "Note", "longtext"),
        ),
        tuple(rows),
        note=note,
        empty_text="No quality objectives are defined.",
    )
    return ctx.bounded(
        table,
        sheet="Objectives",
        order="Objectives missed in the period first, then as defined.",
    )


def _defect_pareto(ctx: Context) -> Table | None:
    pushed = ctx.breakdown("inspections", kpis.PARETO_BY)
    if ctx.data.get("inspections") is None and pushed is None:
        return None
    f = kpis.defect_pareto(ctx.data, ctx.period, ctx.scope, aggregate=pushed)
    return _frame_table(
        ctx,
        "defect_pareto",
        f"Defect codes in {ctx.period.label} (Pareto: inspections recording each code)",
        f,
        [
            ("rank", "#", "int"),
            ("defect_code", "Defect code", "text"),
            ("count", "Inspections with the code", "int"),
            ("qty_defective", "Defective units", "int"),
            ("share", "Share", "share"),
            ("cumulative_share", "Cumulative", "share"),
            ("vital_few", "Vital few", "bool"),
        ],
        note="Vital few: the top codes that together make up 80 % of the count.",
        sheet="Defect codes",
        order="Most inspections with the code first.",
        empty_text="No defect code was recorded in the period.",
    )


_OVERDUE_TITLES = {
    "capa": (
        "overdue_capa",
        "Corrective actions open past their due date at period end",
        "Overdue CAPA",
    ),
    "audit_finding": (
        "overdue_findings",
        "Audit findings open past their due date at period end",
        "Overdue findings",
    ),
    "review_action": (
        "overdue_actions",
        "Review actions open past their due date at period end",
        "Overdue review actions",
    ),
}


def _overdue(ctx: Context) -> list[Table]:
    data = dict(ctx.data)
    if data.get("capa") is None and "capa" in ctx.listed:  # pushed down: its listed rows
        data["capa"] = ctx.listed["capa"]
    if not any(data.get(n) is not None for n in ("capa", "audit_findings", "review_actions")):
        return []
    f = kpis.overdue_items(data, ctx.period, ctx.scope, config=ctx.config.kpis)
    out = []
    for item_type, (table_id, title, sheet) in _OVERDUE_TITLES.items():
        g = f.filter(pl.col("item_type") == item_type)
        out.append(
            _frame_table(
                ctx,
                table_id,
                title,
                g,
                [
                    ("item_id", "Item", "text"),
                    ("site", "Site", "text"),
                    ("owner", "Owner", "text"),
                    ("detail", "Detail", "longtext"),
                    ("opened_date", "Opened", "date"),
                    ("due_date", "Due", "date"),
                    ("days_overdue", "Days overdue", "int"),
                ]
                if item_type == "review_action"
                else [
                    ("item_id", "Item", "text"),
                    ("site", "Site", "text"),
                    ("detail", "Detail", "longtext"),
                    ("opened_date", "Opened", "date"),
                    ("due_date", "Due", "date"),
                    ("days_overdue", "Days overdue", "int"),
                ],
                sheet=sheet,
                order="Most days overdue first.",
                empty_text="None overdue.",
            )
        )
    return out


SITE_COLUMNS = 8
"""At most this many site columns in the site-signals matrix (it must fit A4 with 50 sites)."""


def _site_signals(ctx: Context, trends: Sequence[Trend]) -> Table | None:
    """Measures by site: the variation icon of the latest month.

    Every site is in the register; the pack shows the sites with the most
    concern signals, then the most special-cause signals (at most
    :data:`SITE_COLUMNS`, or ``max_rows`` when fewer), in configuration order
    among equals.
    """
    if ctx.scope != WHOLE_SCOPE or not ctx.config.sites:
        return None
    grid: dict[str, dict[str, str]] = {}
    titles: dict[str, str] = {}
    for t in trends:
        grid.setdefault(t.kpi, {})[t.scope] = t.variation or ""
        titles[t.kpi] = t.title
    label = {s: "All sites" if s == WHOLE_SCOPE else s for s in ctx.scopes}
    ctx.registers["site_signals"] = pl.DataFrame(
        {
            "kpi": list(grid),
            "measure": [titles[k] for k in grid],
            **{label[s]: [grid[k].get(s, "") for k in grid] for s in ctx.scopes},
        },
        schema={
            "kpi": pl.String,
            "measure": pl.String,
            **{label[s]: pl.String for s in ctx.scopes},
        },
    )

    def weight(site: str) -> tuple[int, int]:
        icons = [grid[k].get(site, "") for k in grid]
        return (
            -sum(i.startswith("concern") for i in icons),
            -sum(bool(i) and i != "common_cause" for i in icons),
        )

    sites = [s for s in ctx.scopes if s != WHOLE_SCOPE]
    keep = min(SITE_COLUMNS, ctx.max_rows)
    shown = sorted(sorted(sites, key=weight)[:keep], key=sites.index)
    scopes = [WHOLE_SCOPE, *shown]
    rows = tuple((titles[k], *(grid[k].get(s, "") for s in scopes)) for k in grid)
    hidden = len(sites) - len(shown)
    return Table(
        "site_signals",
        "Variation in the latest month, by measure and site",
        (
            Column("kpi", "Measure"),
            *(Column(slug(s), label[s], "icon") for s in scopes),
        ),
        rows,
        note="Icons as in NHS Making Data Count: grey = common cause; blue = improvement; "
        "orange = concern; H/L = high/low.",
        order=f"Sites shown: the {keep} with the most concern, then special-cause signals."
        if hidden
        else "",
        more=hidden,
        register="Site signals",
    )


_FINDING_TYPES = ("major_nc", "minor_nc", "observation", "ofi")


def _findings_by_type(ctx: Context) -> Table | None:
    f = ctx.frame("audit_findings")
    if f is None:
        return None
    f = f.filter(_in_period("audit_date", ctx.period))
    sites = sorted(set(f["site"].to_list())) if f.height else []
    rows: list[tuple[Scalar, ...]] = []
    for s in sites:
        g = f.filter(pl.col("site") == s)
        rows.append((s, *(int((g["type"] == t).sum()) for t in _FINDING_TYPES), g.height))
    rows.sort(key=lambda r: (-int(r[1] or 0), -int(r[2] or 0), -int(r[5] or 0)))
    if len(sites) > 1:
        rows.append(("All sites", *(int((f["type"] == t).sum()) for t in _FINDING_TYPES), f.height))
    table = Table(
        "findings_by_type",
        f"Audit findings dated in {ctx.period.label}, by type",
        (
            Column("site", "Site"),
            Column("major_nc", "Major NC", "int"),
            Column("minor_nc", "Minor NC", "int"),
            Column("observation", "Observation", "int"),
            Column("ofi", "OFI", "int"),
            Column("total", "Total", "int"),
        ),
        tuple(rows),
        empty_text="No audit findings are dated in the period.",
    )
    return ctx.bounded(
        table,
        sheet="Findings by site",
        order="Sites with the most major, then minor nonconformities, then findings first.",
        pinned=[len(rows) - 1] if len(sites) > 1 else (),
    )


def _supplier_scorecard(ctx: Context) -> Table | None:
    pushed = ctx.breakdown("receipts", kpis.SUPPLIER_BY)
    if ctx.data.get("receipts") is None and ctx.data.get("suppliers") is None and pushed is None:
        return None
    f = kpis.supplier_scorecard(
        ctx.data, ctx.period, ctx.scope, config=ctx.config.kpis, aggregate=pushed
    )
    if "receipts" in f.columns:
        f = f.filter(pl.col("receipts") > 0)
    if "score" in f.columns:
        f = f.sort(["score", "supplier_id"], descending=[False, False], nulls_last=True)
    sc = ctx.config.kpis.scorecard
    return _frame_table(
        ctx,
        "supplier_scorecard",
        f"Supplier scorecard, receipts in {ctx.period.label} (lowest score first)",
        f,
        [
            ("supplier_id", "Supplier", "text"),
            ("name", "Name", "text"),
            ("category", "Category", "text"),
            ("critical", "Critical", "bool"),
            ("approval_status", "Approval", "text"),
            ("receipts", "Receipts", "int"),
            ("otd_share", "On time", "share"),
            ("ppm", "Rejects", "ppm"),
            ("score", "Score", "float"),
            ("rating", "Rating", "text"),
            ("evaluation_overdue", "Evaluation overdue", "bool"),
        ],
        note=f"Score = {sc.otd_weight:g} x on-time score + {sc.quality_weight:g} x quality score "
        f"(100 at 0 ppm, 0 at {sc.ppm_zero_score:,.0f} ppm); A >= {sc.rating_a_min:g}, "
        f"B >= {sc.rating_b_min:g}, else C. Suppliers with receipts in the period.",
        sheet="Supplier scorecard",
        order="Lowest score first.",
        empty_text="No receipts in the period.",
    )


def _decisions() -> Table:
    topics = (
        ("9.3.3 a) opportunities for improvement", 3),
        ("9.3.3 b) changes to the quality management system", 2),
        ("9.3.3 c) resource needs", 2),
    )
    rows = tuple((topic, "", "", "", "") for topic, n in topics for _ in range(n))
    return Table(
        "decisions",
        "Decisions and actions (to be minuted at the review)",
        (
            Column("topic", "ISO 9001 9.3.3"),
            Column("decision", "Decision / action", "longtext"),
            Column("owner", "Owner"),
            Column("due_date", "Due date"),
            Column("resources", "Resources"),
        ),
        rows,
    )
