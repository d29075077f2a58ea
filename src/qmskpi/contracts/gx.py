"""Great Expectations: each contract as a GX 1.x ``ExpectationSuite``, exported or run.

The only module of qmskpi that imports ``great_expectations`` (import-linter
checks it), and only when a suite is built, exported or run (``[contracts]
engine = "gx"``, ``qmskpi validate --engine gx``, ``qmskpi contracts export``):
the default ``polars`` engine never imports it. GX runs with ``BASIC`` results
(counts, no row lists); the rows come from :mod:`qmskpi.contracts.rules` (see
the package docstring for why).

:func:`compile_contract` is the one translation of a contract into GX
expectations; a runner on another GX execution engine (e.g. SQL next to the
data) builds its suite with it and hands its results to
:func:`qmskpi.contracts.judge.judge_all` as :class:`~qmskpi.contracts.rules.Counted`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from qmskpi.contracts.loader import configured_contracts
from qmskpi.contracts.prepare import ROW, Prepared
from qmskpi.contracts.rules import Counted, month_first, month_helper
from qmskpi.contracts.schema import DEFAULT_STALE_DAYS, Condition, Contract, Rule, Run, Scalar
from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.periods import Period, parse_period

if TYPE_CHECKING:
    from qmskpi.config import Config

_GX_SEVERITY = {"error": "critical", "warn": "warning"}
ENGINE = "great_expectations"
"""How ``validation.json`` names this engine."""

NotExpressed = tuple[str, str]
"""(rule id, why): a contract rule with no expectation in the GX suite (judged in polars)."""


def import_gx() -> Any:
    os.environ["GX_ANALYTICS_ENABLED"] = "False"  # no telemetry, ever (DESIGN §8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import great_expectations as gx
    return gx


def _gx_value(value: int | float | date) -> int | float | datetime:
    """GX compares pandas timestamps: dates go in as midnight datetimes."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time())
    return value


def _gx_condition(c: Condition) -> Any:
    from great_expectations.expectations.row_conditions import Column

    col = Column(c.column)
    if c.op == "present":
        return col.is_not_null()
    if c.op == "missing":
        return col.is_null()
    return {
        "=": lambda: col == c.value,
        "!=": lambda: col != c.value,
        ">": lambda: col > c.value,
        ">=": lambda: col >= c.value,
        "<": lambda: col < c.value,
        "<=": lambda: col <= c.value,
    }[c.op]()


def expectation(rule: Rule, contract: Contract, run: Run) -> Any | None:
    """The GX expectation of ``rule`` (None for rules GX cannot express: :func:`_not_expressed`)."""
    gx = import_gx()
    gxe = gx.expectations
    common: dict[str, Any] = {
        "meta": {"rule_id": rule.id, "check": rule.check, "severity": rule.severity},
        "description": rule.description,
        "severity": _GX_SEVERITY[rule.severity],
    }
    if rule.mostly is not None and rule.row_level:
        common["mostly"] = rule.mostly
    if rule.when is not None:
        common["row_condition"] = _gx_condition(rule.when)
    col = rule.columns[0]
    if rule.check == "required":
        return gxe.ExpectColumnValuesToNotBeNull(column=col, **common)
    if rule.check == "empty":
        return gxe.ExpectColumnValuesToBeNull(column=col, **common)
    if rule.check == "unique":
        if len(rule.columns) == 1:
            return gxe.ExpectColumnValuesToBeUnique(column=col, **common)
        return gxe.ExpectCompoundColumnsToBeUnique(
            column_list=list(rule.columns), ignore_row_if="all_values_are_missing", **common
        )
    if rule.check == "allowed":
        if rule.values_from == "sites":
            if not run.sites:
                return None
            values: list[Scalar] = list(run.sites)
        else:
            values = list(rule.values or ())
        return gxe.ExpectColumnValuesToBeInSet(column=col, value_set=values, **common)
    if rule.check == "range":
        bounds = {
            k: _gx_value(run.bound(v))
            for k, v in (("min_value", rule.min_value), ("max_value", rule.max_value))
            if v is not None
        }
        if contract.field_type(col) == "str":
            col = month_helper(col, "first")
        return gxe.ExpectColumnValuesToBeBetween(column=col, **bounds, **common)
    if rule.check == "pattern":
        return gxe.ExpectColumnValuesToMatchRegex(column=col, regex=rule.regex, **common)
    if rule.check == "compare":
        a, b = rule.columns
        if rule.op in ("<=", "<"):
            a, b = b, a
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=a,
            column_B=b,
            or_equal=rule.op in (">=", "<="),
            ignore_row_if="either_value_is_missing",
            **common,
        )
    if rule.check == "freshness":
        days = rule.within_days if rule.within_days is not None else run.stale_days
        bound = run.period.end - timedelta(days=days)
        target = col if contract.field_type(col) == "date" else month_helper(col, "last")
        return gxe.ExpectColumnMaxToBeBetween(column=target, min_value=_gx_value(bound), **common)
    return None  # reference: checked across datasets in polars


def _not_expressed(rule: Rule) -> str:
    if rule.check == "reference":
        return (
            "a value that must exist in another dataset: GX 1.x has no expectation across "
            "batches, so qmskpi checks it in polars under every engine"
        )
    return "values: sites, and no sites are configured: skipped (not checked) by every engine"


def compile_contract(contract: Contract, run: Run) -> tuple[list[Any], list[NotExpressed]]:
    """The GX expectations of ``contract`` for ``run``, and the rules GX cannot express.

    Each expectation carries ``meta`` ``{"rule_id", "check", "severity"}``; the
    first is ``columns_present`` (``ExpectTableColumnsToMatchSet``). A ``range``
    or ``freshness`` rule on a ``YYYY-MM`` text month reads a helper date column
    (:func:`~qmskpi.contracts.rules.month_helper`) the runner must add.
    """
    gx = import_gx()
    ds = DATASETS[contract.dataset]
    out = [
        gx.expectations.ExpectTableColumnsToMatchSet(
            column_set=[*ds.field_names, SOURCE_ROW],
            exact_match=False,
            meta={"rule_id": "columns_present", "check": "columns_present", "severity": "error"},
            description="Every column of the canonical dataset is present.",
            severity="critical",
        )
    ]
    missing: list[NotExpressed] = []
    for rule in contract.rules:
        exp = expectation(rule, contract, run)
        if exp is None:
            missing.append((rule.id, _not_expressed(rule)))
        else:
            out.append(exp)
    return out, missing


def _suite_run(period: Period | str, as_of: date, config: Config | None) -> Run:
    return Run(
        parse_period(period),
        as_of,
        tuple(config.sites) if config is not None else (),
        config.review.stale_after_days if config is not None else DEFAULT_STALE_DAYS,
    )


def build_suites(
    *,
    period: Period | str,
    as_of: date,
    config: Config | None = None,
    contracts_dir: Path | None = None,
) -> dict[str, Any]:
    """The GX ``ExpectationSuite`` of every contract, as :func:`validate` runs them.

    Bounds such as ``as_of`` and the freshness date depend on the run, so a
    suite belongs to one period and as-of date. ``suite.to_json_dict()`` shows
    it in GX's own terms; ``suite.meta["qmskpi"]`` names the period, the as-of
    date, the contract's sha256 and every rule not in the suite, with why
    (``not_expressed``).
    """
    gx = import_gx()
    run = _suite_run(period, as_of, config)
    suites: dict[str, Any] = {}
    for name, contract in configured_contracts(config, contracts_dir).items():
        expectations, missing = compile_contract(contract, run)
        meta = {
            "qmskpi": {
                "dataset": name,
                "period": run.period.label,
                "as_of": as_of.isoformat(),
                "contract_sha256": contract.sha256,
                "not_expressed": [{"rule_id": r, "why": why} for r, why in missing],
            }
        }
        suites[name] = gx.ExpectationSuite(name=name, expectations=expectations, meta=meta)
    return suites


def export_suites(out_dir: Path, suites: Mapping[str, Any]) -> list[Path]:
    """Write each suite of :func:`build_suites` as ``<dataset>.json`` in ``out_dir``.

    The files are GX's own suite JSON (``gx.ExpectationSuite(**json.load(f))``
    reads one back) with sorted keys, so the same contracts, period and as-of
    date give the same bytes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, suite in suites.items():
        path = out_dir / f"{name}.json"
        text = json.dumps(suite.to_json_dict(), sort_keys=True, indent=2, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def gx_exception(info: Any) -> str | None:
    """The message of an exception GX caught, in either shape GX reports it.

    Flat: ``{"raised_exception": True, "exception_message": ...}``; keyed by
    metric (a missing column): ``{"MetricConfigurationID(...)": {"raised_exception": ...}}``.
    """
    if not isinstance(info, Mapping) or not info:
        return None
    if "raised_exception" in info:
        if not info.get("raised_exception"):
            return None
        return str(info.get("exception_message") or "an exception")
    messages = sorted(
        {
            str(v.get("exception_message") or "an exception")
            for v in info.values()
            if isinstance(v, Mapping) and v.get("raised_exception")
        }
    )
    return "; ".join(messages) or None


def _observed(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if text in ("NaT", "nan", "None"):
        return "no rows"
    return text.removesuffix("T00:00:00")


_NS_MIN, _NS_MAX = date(1678, 1, 1), date(2261, 12, 31)


def _for_gx(frame: pl.DataFrame) -> Any:
    """The pandas frame GX checks.

    Dates go over as ``datetime64[ns]`` when every value fits that range: only
    then does GX compare them vectorised (``datetime64[ms]``, what polars gives,
    takes a per-value Python path, 7.6 s instead of 0.1 s on 1M rows). A
    column holding e.g. ``9999-12-31`` stays in ms: slower, still right.
    """
    casts = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Date:
            lo, hi = frame.select(
                pl.col(name).min().alias("lo"), pl.col(name).max().alias("hi")
            ).row(0)
            if (lo is None or lo >= _NS_MIN) and (hi is None or hi <= _NS_MAX):
                casts.append(pl.col(name).cast(pl.Datetime("ns")))
    return (frame.with_columns(casts) if casts else frame).to_pandas()


def run_gx(prepared: Mapping[str, Prepared], run: Run) -> tuple[dict[str, dict[str, Counted]], str]:
    """Run each dataset's suite in one ephemeral context (pandas engine); results by dataset
    and rule id, and the engine with its version."""
    if not prepared:
        return {}, ""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("qmskpi")
    out: dict[str, dict[str, Counted]] = {}
    for name, prep in prepared.items():
        expectations, _ = compile_contract(prep.contract, run)
        bd = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
        suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=bd, suite=suite)
        )
        months = {
            r.columns[0]
            for r in prep.contract.rules
            if r.check in ("freshness", "range")
            and prep.contract.field_type(r.columns[0]) == "str"
            and r.columns[0] in prep.frame.columns
        }
        helpers = [
            e
            for m in sorted(months)
            for e in (
                month_first(m).alias(month_helper(m, "first")),
                month_first(m).dt.month_end().alias(month_helper(m, "last")),
            )
        ]
        pdf = _for_gx(prep.frame.drop(ROW, "file", strict=False).with_columns(helpers))
        with warnings.catch_warnings():
            # Warnings raised inside GX's metric code would otherwise turn into
            # caught exceptions (and failed rules) wherever warnings are errors.
            warnings.simplefilter("ignore")
            res = vd.run(batch_parameters={"dataframe": pdf}, result_format="BASIC")
        del pdf
        by_rule: dict[str, Counted] = {}
        for r in res.results:
            rule_id = str((r.expectation_config.meta or {}).get("rule_id"))
            result = r.result or {}
            count = result.get("unexpected_count")
            percent = result.get("unexpected_percent")
            by_rule[rule_id] = Counted(
                success=bool(r.success),
                unexpected_count=int(count) if count is not None else None,
                unexpected_share=float(percent) / 100 if percent is not None else 0.0,
                observed=_observed(result.get("observed_value"))
                if "observed_value" in result and not isinstance(result["observed_value"], list)
                else None,
                exception=gx_exception(r.exception_info),
                engine=ENGINE,
            )
        out[name] = by_rule
    return out, f"{ENGINE} {gx.__version__}"
