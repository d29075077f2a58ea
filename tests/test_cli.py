"""The ``qmskpi`` command as cron, systemd and an analyst call it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLE_DATA
from qmskpi.cli import main


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qmskpi", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


def test_sample_writes_a_loadable_data_set(tmp_path: Path) -> None:
    out = tmp_path / "data"
    code = main(["sample", "--out", str(out), "--sites", "2", "--months", "12", "--scale", "0.2"])
    assert code == 0
    assert (out / "qmskpi.toml").is_file()
    assert len(list(out.glob("*.csv"))) == 11
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
