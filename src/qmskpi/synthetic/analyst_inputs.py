"""The analyst inputs written beside a data set: ``inputs/changes.md``, ``inputs/resources.md``
and ``inputs/risks.md``, telling the story of the spec."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from qmskpi.synthetic.planted import planted_structure
from qmskpi.synthetic.spec import (
    CUSTOMER_CATALOGUE,
    SUPPLIER_CATALOGUE,
    SyntheticSpec,
    _supplier_def,
    _supplier_ids,
)

_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _month_words(label: str) -> str:
    return f"{_MONTH_NAMES[int(label[5:7]) - 1]} {label[:4]}"


def _supplier_name(frames: Mapping[str, pl.DataFrame], supplier_id: str) -> str:
    if "suppliers" in frames:
        hit = frames["suppliers"].filter(pl.col("supplier_id") == supplier_id)["name"]
        if hit.len():
            return str(hit[0])
    return _supplier_def(_supplier_ids(len(SUPPLIER_CATALOGUE)).index(supplier_id)).name


def _changes_md(spec: SyntheticSpec, frames: Mapping[str, pl.DataFrame]) -> str:
    p = planted_structure(spec)
    otd = _supplier_name(frames, p.otd_supplier_id)
    lines = [
        "# Changes in external and internal issues (9.3.2 b)",
        "",
        f"Prepared by the Quality Manager for the management review of {_month_words(p.end_month)}.",
        "",
        "## External",
        "",
        f"- **Customers.** {CUSTOMER_CATALOGUE[0]} now asks for PPAP level 3 on every new part"
        " number; two other automotive customers are expected to follow within the year.",
        f"- **Supply market.** Casting capacity in Central Europe is tight. {otd}"
        f" ({p.otd_supplier_id}) moved part of its moulding to a second plant in"
        f" {_month_words(p.otd_decline_from)}; its deliveries have been late more often since.",
        "- **Standards.** ISO 9001:2015/Amd 1:2024 asks us to consider climate change when"
        " determining our context (4.1, 4.2). Assessed by the management team: no significant"
        " effect on product conformity found; flood risk at the warehouse noted in the risk register.",
        "- **Energy.** New tariffs from January raise energy costs by about 12 %; no effect on"
        " product quality expected.",
        "",
        "## Internal",
        "",
        f"- **{p.step_site}.** A new 5-axis machining cell went into production in"
        f" {_month_words(p.step_from)}. In-process and final defect rates at {p.step_site} have"
        " been higher since, mostly dimensional (DIM-OOT).",
        f"- **Complaint handling.** One of three complaint coordinators left in"
        f" {_month_words(p.backlog_from)}; the post is still vacant.",
    ]
    if p.disapproved_supplier_id is not None and p.disapproved_from is not None:
        name = _supplier_name(frames, p.disapproved_supplier_id)
        lines.append(
            f"- **Suppliers.** {name} ({p.disapproved_supplier_id}) was disapproved in"
            f" {_month_words(p.disapproved_from)} after repeated transport damage; its work moved"
            " to the remaining packaging suppliers."
        )
    lines.append("")
    return "\n".join(lines)


def _resources_md(spec: SyntheticSpec, frames: Mapping[str, pl.DataFrame]) -> str:
    p = planted_structure(spec)
    n_sup = frames["suppliers"].height if "suppliers" in frames else spec.suppliers
    return "\n".join(
        [
            "# Adequacy of resources (9.3.2 d)",
            "",
            "| Area | Assessment | Comment |",
            "|---|---|---|",
            f"| Complaint handling | Not adequate | Two of three coordinator posts filled since"
            f" {_month_words(p.backlog_from)}; closure times and the open backlog are rising."
            " Recruitment approved. |",
            f"| Final inspection, {p.step_site} | Stretched | One CMM for two shifts since the new"
            " machining cell started; a second CMM is quoted. |",
            "| Metrology and calibration | Adequate | Calibration on schedule (objective OBJ-07). |",
            "| Training | Adequate | Training plan completion close to target (objective OBJ-06);"
            " new starters' matrix being completed. |",
            f"| Supplier quality | Stretched | One supplier quality engineer for {n_sup} suppliers;"
            f" an on-site visit to {p.otd_supplier_id} is planned. |",
            "| Infrastructure | Adequate | Preventive maintenance on plan at all sites. |",
            "",
        ]
    )


def _risks_md(spec: SyntheticSpec, frames: Mapping[str, pl.DataFrame]) -> str:
    p = planted_structure(spec)
    otd = _supplier_name(frames, p.otd_supplier_id)
    return "\n".join(
        [
            "# Effectiveness of actions taken to address risks and opportunities (9.3.2 e)",
            "",
            "| Risk or opportunity | Action taken | Effective? | Evidence |",
            "|---|---|---|---|",
            f"| Single source for castings ({otd}) | Second source qualification started |"
            f" Not yet | On-time delivery of {p.otd_supplier_id} still falling since"
            f" {_month_words(p.otd_decline_from)}. |",
            f"| Ramp-up of the new machining cell at {p.step_site} | Process FMEA and first-article"
            " inspection | Partly | Defect rate stepped up after the start; containment in place,"
            " root cause under investigation. |",
            "| Loss of key staff in complaint handling | Cross-training of two customer-service staff"
            " | No | Complaint backlog growing. |",
            "| Customer PPAP requirements | PPAP coordinator role created | Yes | All submissions"
            " this year accepted first time. |",
            "| Opportunity: automated final leak test | Business case approved | Pending |"
            " Installation planned next quarter. |",
            "",
        ]
    )
