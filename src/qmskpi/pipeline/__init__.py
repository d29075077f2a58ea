"""The one place that chains the stages: sources -> contracts -> review (kpis, spc) -> render -> archive.

Notebooks call :func:`review_for`; the CLI calls :func:`run_review` (one pack)
and the scheduled run (every scope, catch-up). Each stage is a plain function
call on plain data; every stage module knows nothing of the ones after it.

The parts, in the order they import each other (import-linter enforces it):

- :mod:`~qmskpi.pipeline.schedule`: :func:`run_scheduled` and :func:`plan_periods`;
- :mod:`~qmskpi.pipeline.run` (:func:`run_review`: one pack under its lock),
  :mod:`~qmskpi.pipeline.meeting` (:func:`publish_minutes`) and
  :mod:`~qmskpi.pipeline.notify` (the failure notification);
- :mod:`~qmskpi.pipeline.outcomes` (:class:`RunOutcome`, :func:`exit_code`) and
  :mod:`~qmskpi.pipeline.restate` (restatement against the published pack);
- :mod:`~qmskpi.pipeline.exports` (the files staged from the prepared data) and
  :mod:`~qmskpi.pipeline.processes` (the kernel and the browser, stray processes);
- :mod:`~qmskpi.pipeline.prepared`: :func:`prepare` and a saved :class:`Prepared`;
- :mod:`~qmskpi.pipeline.inputs`: the config and the sources a run reads.
"""

from __future__ import annotations

from qmskpi.errors import EXIT_FAILED, EXIT_INPUT, EXIT_NO_DATA, EXIT_OK, EXIT_RULES, EXIT_USAGE
from qmskpi.pipeline.exports import PDF_NAME, write_registers
from qmskpi.pipeline.inputs import (
    as_config,
    closed_actions,
    load_inputs,
    open_review_actions,
    push_inputs,
)
from qmskpi.pipeline.meeting import MinutesOutcome, publish_minutes
from qmskpi.pipeline.notify import error_summary, failure_summary, notify_error, notify_failure
from qmskpi.pipeline.outcomes import (
    RunOutcome,
    Status,
    exit_code,
    outcomes_frame,
    require_success,
    validation_exit_code,
)
from qmskpi.pipeline.prepared import (
    PREPARED_DATA,
    PREPARED_FORMAT,
    PREPARED_META,
    Prepared,
    PreparedError,
    Timings,
    load_prepared,
    prepare,
    prepared_for,
    review_for,
    save_prepared,
)
from qmskpi.pipeline.processes import Renderer
from qmskpi.pipeline.restate import restatement_for
from qmskpi.pipeline.run import SMALL_INPUTS_BYTES, STAGES, StageHook, run_review
from qmskpi.pipeline.schedule import plan_periods, run_scheduled

__all__ = [
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_NO_DATA",
    "EXIT_OK",
    "EXIT_RULES",
    "EXIT_USAGE",
    "PDF_NAME",
    "PREPARED_DATA",
    "PREPARED_FORMAT",
    "PREPARED_META",
    "SMALL_INPUTS_BYTES",
    "STAGES",
    "MinutesOutcome",
    "Prepared",
    "PreparedError",
    "Renderer",
    "RunOutcome",
    "StageHook",
    "Status",
    "Timings",
    "as_config",
    "closed_actions",
    "error_summary",
    "exit_code",
    "failure_summary",
    "load_inputs",
    "load_prepared",
    "notify_error",
    "notify_failure",
    "open_review_actions",
    "outcomes_frame",
    "plan_periods",
    "prepare",
    "prepared_for",
    "publish_minutes",
    "push_inputs",
    "require_success",
    "restatement_for",
    "review_for",
    "run_review",
    "run_scheduled",
    "save_prepared",
    "validation_exit_code",
    "write_registers",
]
