"""The ``qmskpi`` command as cron, systemd and an analyst call it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLE_DATA
from qmskpi import render
from qmskpi.cli import main


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qmskpi", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
        check=False,
    )


def without_browser(home: Path) -> dict[str, str]:
    """An environment with no Chromium: a PATH of the venv only, no QMSKPI_CHROMIUM, a bare HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("QMSKPI_CHROMIUM", "PATH", "HOME")}
    return {**env, "PATH": str(Path(sys.executable).parent), "HOME": str(home)}


@pytest.mark.notebook
def test_demo_without_a_browser_publishes_html_and_says_so_once(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    done = run_cli("demo", "--output", str(out), cwd=ROOT, env=without_browser(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    pack = out / "2026-10" / "all"
    assert (pack / "management-review.html").is_file()
    assert not (pack / "management-review.pdf").exists()
    for name in ("kpis.csv", "kpis.xlsx", "review-inputs.json", "validation.json"):
        assert (pack / name).is_file(), name
    said = done.stdout + done.stderr
    assert said.count("PDF skipped") == 1
    assert said.count("no Chromium found") == 1
    assert render.install_command() in said
    manifest = json.loads((pack / "manifest.json").read_text())
    assert "no Chromium found" in manifest["missing_outputs"]["management-review.pdf"]


def test_render_without_a_browser_fails_with_one_line_and_publishes_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "reports"
    config = str(SAMPLE_DATA / "qmskpi.toml")
    args = ("render", "--config", config, "--period", "2026-10", "--output", str(out))
    done = run_cli(*args, env=without_browser(tmp_path))
    assert done.returncode == 1  # as for any pack that failed to render
    (line,) = done.stdout.splitlines()
    assert line.startswith("failed    2026-10 all  PDF required but no Chromium found")
    assert 'pdf = "optional"' in line
    assert not (out / "2026-10").exists()
    assert not (out / "index.html").exists()


def test_sample_writes_a_loadable_data_set(tmp_path: Path) -> None:
    out = tmp_path / "data"
    code = main(["sample", "--out", str(out), "--sites", "2", "--months", "12", "--scale", "0.2"])
    assert code == 0
    assert (out / "qmskpi.toml").is_file()
    assert len(list(out.glob("*.csv"))) == 13  # eleven datasets and the two optional ones
    from qmskpi.config import load_config

    assert load_config(out / "qmskpi.toml").sites == ("North", "South")


def test_bad_period_is_one_clear_error_and_exit_2(tmp_path: Path) -> None:
    done = run_cli("validate", "--config", str(SAMPLE_DATA / "qmskpi.toml"), "--period", "2026-13")
    assert done.returncode == 2
    assert "not a period: '2026-13'" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_config_names_the_file(tmp_path: Path) -> None:
    done = run_cli("validate", "--config", str(tmp_path / "nope.toml"))
    assert done.returncode == 2
    assert "nope.toml" in done.stderr
    assert "config file not found" in done.stderr


def test_validate_sample_data_is_clean_and_json_balances(tmp_path: Path) -> None:
    done = run_cli(
        "validate", "--config", str(SAMPLE_DATA / "qmskpi.toml"), "--period", "2026-10", "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report  # the JSON form is checked in detail by test_contracts
    text = run_cli("validate", "--config", str(SAMPLE_DATA / "qmskpi.toml"), "--period", "2026-10")
    assert text.returncode == 0
    for dataset in ("complaints", "inspections", "receipts", "review_actions"):
        assert dataset in text.stdout


def test_validate_exit_code_2_when_an_error_rule_fails(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA, data, ignore=shutil.ignore_patterns("reports"))
    receipts = data / "receipts.csv"
    lines = receipts.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    # More rejected than received on the first receipt: impossible, an error rule.
    row[header.index("qty_rejected")] = str(int(row[header.index("qty_received")]) + 5)
    lines[1] = ",".join(row)
    receipts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = run_cli("validate", "--config", str(data / "qmskpi.toml"), "--period", "2026-10")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "receipts" in done.stdout
    assert "receipts: [error]" in done.stdout
    assert "1 row(s)" in done.stdout


@pytest.mark.parametrize("site", ["../../etc", "North/../x", "<script>"])
def test_render_refuses_unsafe_or_unknown_site(site: str) -> None:
    done = run_cli(
        "render",
        "--config",
        str(SAMPLE_DATA / "qmskpi.toml"),
        "--period",
        "2026-10",
        "--site",
        site,
        "--no-pdf",
    )
    assert done.returncode == 2
    assert "unknown scope" in done.stderr


def test_quiet_under_cron_unless_verbose(tmp_path: Path) -> None:
    """Not on a terminal (cron mails any output), progress is silent; results go to stdout."""
    args = ("sample", "--sites", "1", "--months", "3", "--scale", "0.1")
    done = run_cli(*args, "--out", str(tmp_path / "a"))
    assert done.returncode == 0
    assert done.stderr == ""
    assert str(tmp_path / "a" / "qmskpi.toml") in done.stdout
    loud = run_cli("-v", *args, "--out", str(tmp_path / "b"))
    assert "wrote" in loud.stderr
