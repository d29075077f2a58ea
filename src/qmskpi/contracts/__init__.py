"""Data contracts: what each dataset must look like, judged in polars or by Great Expectations.

One YAML contract per dataset lives in ``data_contracts/`` (shipped inside the
package; the format is explained in ``docs/contracts.md``). :func:`validate`
loads and checks the contracts, judges every rule on the loaded frames and
returns a frozen :class:`ValidationReport`::

    from qmskpi import contracts, sources
    data = sources.load_all(cfg, period="2026-10")
    report = contracts.validate(data, period="2026-10", config=cfg)
    report.clean["complaints"]        # rows used: canonical columns + source_row
    report.quarantine                 # rows set aside, one line per broken rule
    report.unsound_datasets           # datasets that failed an ``error`` rule

How a row is judged:

* a value the reader could not parse (``LoadedDataset.rejects``) quarantines
  its row under the reader's rule, e.g. ``type:received_date``;
* a row failing an ``error`` rule is quarantined (even when the rule passes
  thanks to ``mostly``); a row failing only ``warn`` rules is kept and reported;
* a record the reader set aside on purpose (``LoadedDataset.excluded``: the
  source's ``where`` condition, or a duplicate) is counted as excluded, not
  quarantined, and is no error;
* nothing is dropped silently: ``rows_in == rows_used + rows_quarantined +
  rows_excluded`` for every dataset, checked here on every run.

Two engines judge the rules, with the same results (the test suite runs both
and compares them rule by rule and row by row): ``polars`` (the default,
``[contracts] engine``) evaluates each rule once as a polars expression;
``gx`` runs each contract's Great Expectations 1.x ``ExpectationSuite``
(:func:`build_suites`; ``qmskpi contracts export`` writes them) and takes the
verdicts and counts from GX, while the failing *rows* still come from the
polars expressions, whose counts must equal GX's (a disagreement raises).
Rules GX cannot express (references across datasets) are judged in polars
under both engines; every rule says which engine judged it. Why polars is the
default is measured in ``docs/contracts.md`` (``benchmarks/bench_validation.py``):
at 1.5M rows the single polars pass takes ~1 s, GX ~25 s plus its import.

Great Expectations is imported only by the ``gx`` engine, :func:`build_suites`
and :func:`export_suites`: ``import qmskpi.contracts`` and a default
:func:`validate` stay light.

The modules, in the order a run goes through them (imports run the other way):

* ``schema``: the contract model (:class:`Contract`, :class:`Rule`, :class:`Condition`);
* ``loader``: YAML -> checked contracts (one parser per ``check``);
* ``report``: :class:`RuleResult`, :class:`DatasetValidation`, :class:`ValidationReport`
  and the writers of ``quarantine.csv`` and ``validation.json``;
* ``prepare``: a loaded dataset conformed to its canonical dtypes, reader rejects;
* ``rules``: the rows each rule fails and the rows it looks at, as polars expressions;
* ``gx``: the only module importing Great Expectations: suites, export, runs, results;
* ``judge``: masks (+ GX's counts under ``gx``) -> rule results, quarantine, the row ledger;
* ``validation``: :func:`validate`, which picks the engine and chains the above.
"""

from __future__ import annotations

from qmskpi.contracts.gx import build_suites, export_suites
from qmskpi.contracts.loader import contracts_root, load_contract, load_contracts
from qmskpi.contracts.prepare import LoadedLike
from qmskpi.contracts.report import (
    QUARANTINE_SCHEMA,
    DatasetValidation,
    RuleResult,
    ValidationReport,
    write_quarantine_csv,
    write_validation_json,
)
from qmskpi.contracts.schema import (
    Check,
    Condition,
    Contract,
    ContractField,
    Rule,
    RuleSource,
    Severity,
)
from qmskpi.contracts.validation import validate

__all__ = [
    "QUARANTINE_SCHEMA",
    "Check",
    "Condition",
    "Contract",
    "ContractField",
    "DatasetValidation",
    "LoadedLike",
    "Rule",
    "RuleResult",
    "RuleSource",
    "Severity",
    "ValidationReport",
    "build_suites",
    "contracts_root",
    "export_suites",
    "load_contract",
    "load_contracts",
    "validate",
    "write_quarantine_csv",
    "write_validation_json",
]
