"""The ``qmskpi.toml`` written beside a synthetic data set: :func:`config_toml`, and the
targets of the KPIs no objective targets (:data:`KPI_TARGETS`)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from qmskpi.datasets import DATASETS
from qmskpi.synthetic.spec import DATE_FORMAT, OutputFormat, SyntheticSpec

KPI_TARGETS: dict[str, float] = {
    # satisfaction_mean is a 0-1 share of the scale (score / scale_max), as qmskpi.kpis defines it
    "complaints_closed_on_time_share": 0.85,
    "complaints_on_time_incl_backlog_share": 0.85,
    "satisfaction_score_mean": 8.0,
    "complaint_days_to_close_median": 20.0,
    "complaints_repeat_share": 0.25,
    "defect_ppm": 1500.0,
    "satisfaction_mean": 0.8,
    "nps": 30.0,
}
"""``[kpis.targets]`` written to the config: KPIs that no objective targets."""


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def config_toml(
    spec: SyntheticSpec = SyntheticSpec(),
    *,
    datasets: Sequence[str] = tuple(DATASETS),
    format: OutputFormat = "csv",
) -> str:
    """The ``qmskpi.toml`` text for a data set written by :func:`write`."""
    lines = [
        "# qmskpi configuration for a synthetic data set written by qmskpi.synthetic",
        "# (`qmskpi sample`). Paths are relative to this file. Dates are ISO (YYYY-MM-DD);",
        "# their format is declared per column, because qmskpi never guesses one.",
        "# The generated registers are complete: zero_means_zero says a month with no",
        "# rows is a true zero in the trends, not a gap in the records.",
        "",
        "[organisation]",
        f"name = {_toml_str(spec.organisation)}",
        "sites = [" + ", ".join(_toml_str(s) for s in spec.site_names) + "]",
    ]
    for name in datasets:
        ds = DATASETS[name]
        lines += ["", f"[sources.{name}]", f'path = "{name}.{format}"', f'format = "{format}"']
        date_cols = [f.name for f in ds.fields if f.type == "date"]
        if format == "csv" and date_cols:
            pairs = ", ".join(f'{c} = "{DATE_FORMAT}"' for c in date_cols)
            lines.append(f"date_formats = {{ {pairs} }}")
        if ds.period_field is not None and not ds.forward_dated:
            lines.append("zero_means_zero = true")
    lines += [
        "",
        "[kpis]",
        "complaint_close_target_days = 30",
        "supplier_otd_tolerance_days = 0",
        "supplier_otd_early_days = 7",
        "repeat_window_days = 90",
        "finding_due_days = 60",
        "",
        "[kpis.complaint_close_target_days_by_severity]",
        "# days to close by severity; a severity not listed uses complaint_close_target_days",
        "critical = 15",
        "minor = 45",
        "",
        "[kpis.targets]",
        "# KPIs that no quality objective targets (objectives carry their own targets).",
    ]
    lines += [f"{k} = {v!r}" for k, v in KPI_TARGETS.items()]
    lines += [
        "",
        "[review]",
        'granularity = "month"',
        f"trend_months = {min(24, max(3, spec.months))}",
        "",
        "[analyst_inputs]",
        'changes = "inputs/changes.md"',
        'resources = "inputs/resources.md"',
        'risks = "inputs/risks.md"',
        "",
        "[outputs]",
        'reports_dir = "reports"',
        "",
    ]
    return "\n".join(lines)
