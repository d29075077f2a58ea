"""Data contracts: what each dataset must look like, checked with Great Expectations.

One YAML contract per dataset lives in ``data_contracts/`` (shipped inside the
package; the format is explained in ``docs/contracts.md``). :func:`validate`
loads and checks the contracts, compiles each to a Great Expectations 1.x
``ExpectationSuite`` (one per dataset), runs them on the loaded frames and
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

Great Expectations does the checking and produces the per-rule results; the
failing *rows* come from the same contract evaluated in polars, and the two
must agree on every rule's unexpected count (a disagreement raises). That
split was measured (``benchmarks/bench_validation.py``, 1M inspections, 19
rules): GX with ``COMPLETE`` unexpected index lists took 1.6-1.9x (1 % failing
rows) and 3.7-4.4x (5 %) the time of GX with ``BASIC`` counts, and more than
this whole function (GX ``BASIC`` + polars masks + quarantine) takes.

Great Expectations is imported only when :func:`validate` or
:func:`build_suites` runs: ``import qmskpi.contracts`` stays light.

The modules, in the order a run goes through them (imports run the other way):

* ``schema``: the contract model (:class:`Contract`, :class:`Rule`, :class:`Condition`);
* ``loader``: YAML -> checked contracts (one parser per ``check``);
* ``report``: :class:`RuleResult`, :class:`DatasetValidation`, :class:`ValidationReport`
  and the writers of ``quarantine.csv`` and ``validation.json``;
* ``prepare``: a loaded dataset conformed to its canonical dtypes, reader rejects;
* ``rules``: the rows each rule fails, as polars masks;
* ``gx``: the only module importing Great Expectations: suites, runs, results;
* ``judge``: masks + GX counts -> rule results, quarantine, the row ledger;
* ``validation``: :func:`validate`, which chains the above.
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
