"""The notification sent when a scheduled run fails: a webhook POST or a command given the
summary on stdin; a failing notification is logged, never raised."""

from __future__ import annotations

import json
import logging
import platform
import shlex
import subprocess
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from qmskpi import __version__
from qmskpi.errors import exit_code_for_error
from qmskpi.pipeline.outcomes import RunOutcome, exit_code

log = logging.getLogger("qmskpi.pipeline")  # one logger for the package, as before its split


def failure_summary(outcomes: Sequence[RunOutcome], *, organisation: str = "") -> dict[str, Any]:
    """The JSON a notification carries: what failed, what else happened, the exit code."""
    return {
        "event": "qmskpi.run.failed",
        "organisation": organisation,
        "host": platform.node(),
        "qmskpi": __version__,
        "exit_code": exit_code(outcomes),
        "failed": [o.to_dict() for o in outcomes if o.status == "failed"],
        "outcomes": [o.to_dict() for o in outcomes],
    }


def notify_failure(
    notify: str | Sequence[str],
    outcomes: Sequence[RunOutcome],
    *,
    organisation: str = "",
    timeout_s: float = 30.0,
) -> bool:
    """Send the failure summary; return True when the receiver accepted it.

    ``notify`` is a webhook URL (``http://`` or ``https://``; the summary is
    POSTed as JSON) or a command (an argv list, or a string split like a shell
    would but run without one): it gets the summary as JSON on stdin, and no
    data is ever put on its command line. A failing notification is logged,
    never raised: it must not hide the run's own exit code.
    """
    summary = failure_summary(outcomes, organisation=organisation)
    return _send_notification(notify, summary, timeout_s=timeout_s)


def error_summary(
    error: BaseException, *, organisation: str = "", exit_code: int | None = None
) -> dict[str, Any]:
    """The JSON a notification carries when a configuration or usage error stopped the run."""
    return {
        "event": "qmskpi.run.error",
        "organisation": organisation,
        "host": platform.node(),
        "qmskpi": __version__,
        "exit_code": exit_code
        if exit_code is not None
        else exit_code_for_error(type(error).__name__),
        "error": str(error),
        "error_type": type(error).__name__,
        "failed": [],
        "outcomes": [],
    }


def notify_error(
    notify: str | Sequence[str],
    error: BaseException,
    *,
    organisation: str = "",
    exit_code: int | None = None,
    timeout_s: float = 30.0,
) -> bool:
    """Send :func:`error_summary` like :func:`notify_failure` (a broken config must not be silent)."""
    summary = error_summary(error, organisation=organisation, exit_code=exit_code)
    return _send_notification(notify, summary, timeout_s=timeout_s)


def _send_notification(
    notify: str | Sequence[str], summary: Mapping[str, Any], *, timeout_s: float
) -> bool:
    """POST ``summary`` to a webhook URL, or give it on stdin to a command; log a failure."""
    body = json.dumps(summary, sort_keys=True).encode()
    if isinstance(notify, str) and notify.lower().startswith(("http://", "https://")):
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            notify,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"qmskpi/{__version__}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                ok = 200 <= int(response.status) < 300
        except (OSError, ValueError) as exc:
            log.error("failure notification to %s failed: %s", notify, exc)
            return False
        if not ok:
            log.error("failure notification to %s: HTTP %s", notify, response.status)
        return ok
    argv = shlex.split(notify) if isinstance(notify, str) else [str(a) for a in notify]
    if not argv:
        log.error("failure notification: empty command")
        return False
    try:
        done = subprocess.run(argv, input=body, capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("failure notification command %s failed: %s", argv[0], exc)
        return False
    if done.returncode != 0:
        log.error(
            "failure notification command %s exited %d: %s",
            argv[0],
            done.returncode,
            done.stderr.decode(errors="replace").strip()[:500],
        )
    return done.returncode == 0
