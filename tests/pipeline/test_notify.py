"""pipeline.notify: the failure notification (a command on stdin, a webhook)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from pipeline.helpers import (
    AS_OF,
    failing_cell_render,
    fake_render,
)
from qmskpi import pipeline


def test_notify_command_gets_the_summary_on_stdin_and_no_data_in_argv(tmp_path: Path) -> None:
    sink = tmp_path / "summary.json"
    argv_file = tmp_path / "argv.json"
    script = tmp_path / "alert.py"
    script.write_text(
        "import json, sys\n"
        f"open({str(sink)!r}, 'w').write(sys.stdin.read())\n"
        f"json.dump(sys.argv[1:], open({str(argv_file)!r}, 'w'))\n"
    )
    evil = pipeline.RunOutcome(
        "2026-10", "North", "failed", error="$(touch /tmp/pwned); `id`", error_type="RenderError"
    )
    ok = pipeline.RunOutcome("2026-10", "all", "published")
    assert pipeline.notify_failure(
        [sys.executable, str(script), "--channel", "quality"], [ok, evil], organisation="Acme"
    )
    summary = json.loads(sink.read_text())
    assert summary["event"] == "qmskpi.run.failed"
    assert summary["exit_code"] == 1
    assert summary["organisation"] == "Acme"
    assert [f["scope"] for f in summary["failed"]] == ["North"]
    assert summary["failed"][0]["error"] == "$(touch /tmp/pwned); `id`"
    assert len(summary["outcomes"]) == 2
    assert json.loads(argv_file.read_text()) == ["--channel", "quality"]
    # A string command is split like a shell would, but run without one.
    line = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} --channel 'a b'"
    assert pipeline.notify_failure(line, [evil])
    assert json.loads(argv_file.read_text()) == ["--channel", "a b"]
    assert not Path("/tmp/pwned").exists()


def test_notify_failure_is_logged_not_raised(tmp_path: Path) -> None:
    failed = [pipeline.RunOutcome("2026-10", "all", "failed", error="x", error_type="E")]
    assert pipeline.notify_failure([str(tmp_path / "missing-command")], failed) is False
    assert pipeline.notify_failure(["false"], failed) is False
    assert pipeline.notify_failure("http://127.0.0.1:9/unreachable", failed, timeout_s=2) is False


def test_scheduled_run_posts_failures_to_a_webhook(
    small_cfg_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    outcomes = pipeline.run_scheduled(
        small_cfg_path, as_of=AS_OF, renderer=failing_cell_render, notify=url
    )
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert pipeline.exit_code(outcomes) == 1
    (post,) = received
    assert post["path"] == "/hooks/qmskpi"
    assert post["content_type"] == "application/json"
    assert post["body"]["exit_code"] == 1
    assert [f["scope"] for f in post["body"]["failed"]] == ["all", "North"]
    assert "ZeroDivisionError" in post["body"]["failed"][0]["error"]
    # No notification when everything succeeds.
    ok = pipeline.run_scheduled(small_cfg_path, as_of=AS_OF, renderer=fake_render, notify=url)
    assert all(o.status == "published" for o in ok)
    assert pipeline.exit_code(ok) == pipeline.EXIT_RULES  # only North is listed: site_known fails
    assert len(received) == 1
