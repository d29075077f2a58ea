"""The ``qmskpi`` command as cron, systemd and an analyst call it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from conftest import ROOT, SAMPLE_DATA, mounted_tmpfs
from qmskpi import render
from qmskpi.cli import main
from qmskpi.datasets import DATASETS


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
    assert len(list(out.glob("*.csv"))) == 14  # eleven datasets and the three optional ones
    from qmskpi.config import load_config

    assert load_config(out / "qmskpi.toml").sites == ("North", "South")
    # The data ends with the last complete month before today (not a fixed month).
    first_of_month = date.today().replace(day=1)
    last_month = (first_of_month - timedelta(days=1)).strftime("%Y-%m")
    shipments = pl.read_csv(out / "shipments.csv")
    assert shipments["month"].max() == last_month


def test_sample_end_month_follows_as_of(tmp_path: Path) -> None:
    out = tmp_path / "data"
    args = ["sample", "--out", str(out), "--sites", "1", "--months", "3", "--scale", "0.1"]
    assert main([*args, "--as-of", "2027-03-01"]) == 0
    assert sorted(set(pl.read_csv(out / "shipments.csv")["month"])) == [
        "2026-12",
        "2027-01",
        "2027-02",
    ]


def test_bad_period_is_one_clear_error_and_exit_2(tmp_path: Path) -> None:
    done = run_cli("validate", "--config", str(SAMPLE_DATA / "qmskpi.toml"), "--period", "2026-13")
    assert done.returncode == 2
    assert "not a period: '2026-13'" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_config_names_the_file(tmp_path: Path) -> None:
    done = run_cli("validate", "--config", str(tmp_path / "nope.toml"))
    assert done.returncode == 3  # config or source error, not a usage error
    assert "nope.toml" in done.stderr
    assert "config file not found" in done.stderr


def test_schema_prints_the_config_and_contract_json_schemas(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schema", "config"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "qmskpi.toml"
    assert set(schema["properties"]) >= {"organisation", "sources", "kpis", "outputs"}
    assert main(["schema", "contract"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema["properties"]) == {"dataset", "title", "description", "fields", "rules"}


def test_no_config_anywhere_says_where_it_looked(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QMSKPI_CONFIG"}
    done = run_cli("validate", cwd=tmp_path, env=env)
    assert done.returncode == 3
    assert "$QMSKPI_CONFIG is not set and there is no qmskpi.toml in" in done.stderr
    assert str(tmp_path) in done.stderr.replace("\n", "")


def test_qmskpi_config_names_the_config_of_every_command(tmp_path: Path) -> None:
    env = {**os.environ, "QMSKPI_CONFIG": str(SAMPLE_DATA / "qmskpi.toml")}
    done = run_cli("validate", "--period", "2026-10", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["period"] == "2026-10"


def test_notebooks_copies_them_and_keeps_an_analysts_edits(tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    shipped = sorted((ROOT / "notebooks").glob("*.ipynb"))
    done = run_cli("notebooks", "--out", str(out))
    assert done.returncode == 0, done.stderr
    for nb in shipped:
        assert f"written   {out / nb.name}" in done.stdout
        assert (out / nb.name).read_bytes() == nb.read_bytes()
    assert "QMSKPI_CONFIG" in done.stdout
    done = run_cli("notebooks", "--out", str(out))
    assert done.stdout.count("unchanged ") == len(shipped)
    # an edited copy is never overwritten silently, and nothing else is written either
    edited = out / "complaints.ipynb"
    edited.write_text(edited.read_text() + " ", encoding="utf-8")
    mine = edited.read_bytes()
    (out / "suppliers.ipynb").unlink()
    done = run_cli("notebooks", "--out", str(out))
    assert done.returncode == 2
    assert "1 notebook(s) differ from the shipped ones" in done.stderr
    assert str(edited) in done.stderr
    assert "--force" in done.stderr
    assert edited.read_bytes() == mine
    assert not (out / "suppliers.ipynb").exists()
    done = run_cli("notebooks", "--out", str(out), "--force")
    assert done.returncode == 0
    assert f"replaced  {edited}" in done.stdout
    assert f"written   {out / 'suppliers.ipynb'}" in done.stdout
    assert edited.read_bytes() == (ROOT / "notebooks" / "complaints.ipynb").read_bytes()


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


def test_validate_by_default_never_imports_great_expectations_and_gx_agrees() -> None:
    """The default engine (polars) runs without GX; ``--engine gx`` runs the real suites."""
    config = str(SAMPLE_DATA / "qmskpi.toml")
    args = ["validate", "--config", config, "--period", "2026-10", "--json"]
    code = (
        "import io, sys, contextlib\n"
        "from qmskpi.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = main({args!r})\n"
        "assert rc == 0, rc\n"
        "print('great_expectations' in sys.modules)\n"
        "print(out.getvalue())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    imported, _, text = done.stdout.partition("\n")
    assert imported == "False"
    default = json.loads(text)
    assert default["engine"].startswith("polars ")
    gx = run_cli(*args, "--engine", "gx")
    assert gx.returncode == 0, gx.stderr
    by_gx = json.loads(gx.stdout)
    assert by_gx["engine"].startswith("great_expectations 1.")

    def verdicts(doc: dict[str, Any]) -> dict[tuple[str, str], tuple[Any, ...]]:
        return {
            (name, r["rule_id"]): (r["success"], r["unexpected_count"], r["unexpected_share"])
            for name, d in doc["datasets"].items()
            for r in d["rules"]
        }

    assert verdicts(by_gx) == verdicts(default)
    engines = {r["engine"] for d in by_gx["datasets"].values() for r in d["rules"]}
    assert engines == {"great_expectations", "polars"}  # polars: the cross-dataset references


def test_contracts_export_writes_one_gx_suite_per_dataset(tmp_path: Path) -> None:
    out = tmp_path / "suites"
    done = run_cli(
        "contracts",
        "export",
        str(out),
        "--config",
        str(SAMPLE_DATA / "qmskpi.toml"),
        "--period",
        "2026-10",
        "--as-of",
        "2026-11-05",
    )
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in out.glob("*.json"))
    assert written == sorted(f"{name}.json" for name in DATASETS)
    assert "receipts: rule supplier_exists is not in the GX suite" in done.stdout
    suite = json.loads((out / "inspections.json").read_text(encoding="utf-8"))
    assert suite["name"] == "inspections"
    assert suite["meta"]["qmskpi"]["period"] == "2026-10"


def sample_with_first_row(
    tmp_path: Path, file: str, column: str, value: Callable[[dict[str, str]], str]
) -> Path:
    """A copy of the sample data whose first row of ``file`` has ``column`` = value(row)."""
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA, data, ignore=shutil.ignore_patterns("reports"))
    path = data / file
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index(column)] = value(dict(zip(header, row, strict=False)))
    lines[1] = ",".join(row)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data


def test_validate_exit_code_4_when_an_error_rule_fails(tmp_path: Path) -> None:
    # More rejected than received on the first receipt: impossible, an error rule.
    data = sample_with_first_row(
        tmp_path, "receipts.csv", "qty_rejected", lambda r: str(int(r["qty_received"]) + 5)
    )
    done = run_cli("validate", "--config", str(data / "qmskpi.toml"), "--period", "2026-10")
    assert done.returncode == 4, done.stdout + done.stderr
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


def test_validate_uses_the_contract_overrides_of_the_config(tmp_path: Path) -> None:
    # the first complaint names no customer
    data = sample_with_first_row(tmp_path, "complaints.csv", "customer", lambda r: "")
    config = data / "qmskpi.toml"
    args = ("validate", "--config", str(config), "--period", "2026-10", "--json")
    strict = run_cli(*args)
    assert strict.returncode == 4, strict.stderr
    doc = json.loads(strict.stdout)["datasets"]["complaints"]
    assert (doc["rows_quarantined"], doc["set_aside"], doc["sound"]) == (
        1,
        {"customer_required": 1},
        True,  # 1 of ~1,840 rows set aside: far below 10 %
    )
    with config.open("a", encoding="utf-8") as fh:
        fh.write('\n[contracts.complaints.customer_required]\nseverity = "warn"\n')
    relaxed = run_cli(*args)
    assert relaxed.returncode == 0, relaxed.stderr
    doc = json.loads(relaxed.stdout)["datasets"]["complaints"]
    assert (doc["rows_quarantined"], doc["warnings_failed"]) == (0, 1)
    with config.open("a", encoding="utf-8") as fh:
        fh.write('\n[contracts.complaints.customer_requird]\nseverity = "warn"\n')
    wrong = run_cli(*args)
    assert wrong.returncode == 3
    assert "contracts.complaints.customer_requird" in wrong.stderr
    assert "did you mean 'customer_required'" in wrong.stderr


def test_exit_codes_are_listed_in_help() -> None:
    for command in ([], ["validate"], ["render"], ["run"]):
        done = run_cli(*command, "--help")
        assert done.returncode == 0
        for line in ("3    config or source error", "4    data broke an error rule", "5    a"):
            assert line in done.stdout, (command, done.stdout)


def test_validate_a_source_error_exits_3_and_an_empty_dataset_exits_5(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA, data, ignore=shutil.ignore_patterns("reports"))
    config = str(data / "qmskpi.toml")
    complaints = data / "complaints.csv"
    header = complaints.read_text(encoding="utf-8").splitlines()[0]
    complaints.write_text(header.replace(",", ";") + "\n", encoding="utf-8")
    done = run_cli("validate", "--config", config, "--period", "2026-10")
    assert done.returncode == 3, done.stderr
    assert "whole header was read as one column" in done.stderr
    complaints.write_text(header + "\n", encoding="utf-8")  # the header and no record
    done = run_cli("validate", "--config", config, "--period", "2026-10", "--json")
    assert done.returncode == 5, done.stderr
    assert json.loads(done.stdout)["datasets"]["complaints"]["rows_used"] == 0


def test_validate_json_ledger_counts_where_and_duplicates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA, data, ignore=shutil.ignore_patterns("reports"))
    complaints = data / "complaints.csv"
    lines = complaints.read_text(encoding="utf-8").splitlines()
    complaints.write_text("\n".join([*lines, lines[5], lines[7]]) + "\n", encoding="utf-8")
    config = data / "qmskpi.toml"
    text = config.read_text(encoding="utf-8")
    assert "[sources.complaints]" in text
    config.write_text(
        text.replace(
            "[sources.complaints]", "[sources.complaints]\nwhere = \"severity <> 'minor'\""
        ),
        encoding="utf-8",
    )
    minor = sum(1 for line in lines[1:] if ",minor," in line)
    done = run_cli("validate", "--config", str(config), "--period", "2026-10", "--json")
    report = json.loads(done.stdout)["datasets"]["complaints"]
    dups = sum(1 for i in (5, 7) if ",minor," not in lines[i])
    assert report["excluded_by"] == {
        k: v for k, v in {"duplicate": dups, "where": minor}.items() if v
    }
    assert report["rows_in"] == len(lines) + 1
    assert report["rows_in"] == (
        report["rows_used"] + report["rows_quarantined"] + report["rows_excluded"]
    )
    assert done.returncode == 0, done.stderr


def test_minutes_without_a_published_pack_is_exit_2(tmp_path: Path) -> None:
    filled = tmp_path / "minutes.xlsx"
    filled.write_bytes(b"not used")
    done = run_cli(
        "minutes",
        "--config",
        str(SAMPLE_DATA / "qmskpi.toml"),
        "--output",
        str(tmp_path / "reports"),
        "--period",
        "2026-10",
        "--from",
        str(filled),
    )
    assert done.returncode == 2
    assert "no published pack for 2026-10 (all): render it first" in done.stderr
    assert "Traceback" not in done.stderr


def test_verify_exit_codes_are_documented_and_a_non_record_path_is_exit_2(tmp_path: Path) -> None:
    helped = run_cli("--help")
    flat = " ".join(helped.stdout.split())
    assert "6 verify: a published file changed, is missing or was added, or a chain broke" in flat
    assert "minutes" in flat
    done = run_cli("verify", str(tmp_path))
    assert done.returncode == 2
    assert "neither a pack or minutes folder" in done.stderr


def test_verify_of_a_reports_folder_with_nothing_published_is_exit_2(tmp_path: Path) -> None:
    from qmskpi.archive import Archive

    Archive(tmp_path / "reports")
    done = run_cli("verify", str(tmp_path / "reports"))
    assert done.returncode == 2
    assert "nothing published to verify" in done.stderr


def _notify_script(tmp_path: Path) -> tuple[str, Path]:
    """A real --notify-cmd: appends the JSON it gets on stdin to a file, one line per call."""
    sink = tmp_path / "notified.jsonl"
    script = tmp_path / "notify.py"
    script.write_text(
        "import json, sys\n"
        f"with open({str(sink)!r}, 'a') as f:\n"
        "    f.write(json.dumps(json.load(sys.stdin)) + '\\n')\n"
    )
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", sink


def _calls(sink: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.read_text().splitlines()] if sink.exists() else []


def test_run_config_error_calls_notify_cmd_and_notify_url(
    tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    cmd, sink = _notify_script(tmp_path)
    url, received = webhook
    bad = tmp_path / "qmskpi.toml"
    bad.write_text('[organisaton]\nname = "Acme"\n')
    args = ["run", "--config", str(bad), "--notify-cmd", cmd, "--notify-url", url]
    assert main(args) == 3  # bad input (the config)
    (call,) = _calls(sink)
    assert call["event"] == "qmskpi.run.error"
    assert call["exit_code"] == 3
    assert "organisaton" in call["error"]
    (post,) = received  # both notifiers fire
    assert post["body"] == call


def test_run_usage_error_calls_notify_cmd(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cmd, sink = _notify_script(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--jobs", "two", "--notify-cmd", cmd])
    assert exit_info.value.code == 2
    (call,) = _calls(sink)
    assert call["event"] == "qmskpi.run.error"
    assert call["exit_code"] == 2
    assert "--jobs" in call["error"]
    assert "two" in call["error"]
    assert "invalid int value" in capsys.readouterr().err  # still told on stderr
    # A usage error without a notifier notifies nobody and still exits 2.
    with pytest.raises(SystemExit):
        main(["run", "--jobs", "two"])
    assert len(_calls(sink)) == 1


# --------------------------------------------------------------------------- progress, full disk

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_terminal(*args: str) -> str:
    """What ``qmskpi *args`` writes to a terminal (a pty: ``script``), escape codes removed."""
    if shutil.which("script") is None:
        pytest.skip("needs script(1) for a pty")
    command = shlex.join([sys.executable, "-m", "qmskpi", *args])
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "200"}
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return ANSI.sub("", done.stdout).replace("\r", "\n")


def test_validate_shows_progress_on_a_terminal_and_nothing_when_piped() -> None:
    args = ("validate", "--config", str(SAMPLE_DATA / "qmskpi.toml"), "--period", "2026-10")
    piped = run_cli(*args)
    assert piped.returncode == 0
    assert piped.stderr == ""  # cron, systemd, Airflow: as before, nothing but the result
    assert "rows read" not in piped.stdout
    report = json.loads(run_cli(*args, "--json").stdout)
    rows_in = sum(d["rows_in"] for d in report["datasets"].values())
    shown = on_a_terminal(*args)
    for name in report["datasets"]:  # each dataset as it is read
        assert f"2026-10 · load {name}" in shown, name
    assert f"2026-10 · validate · {rows_in:,} rows read" in shown
    assert "Validation of" in shown  # then the result, as when piped
    assert shown.index(f"validate · {rows_in:,} rows read") < shown.index("Validation of")


def test_a_full_disk_is_one_line_naming_the_folder_and_publishes_nothing(tmp_path: Path) -> None:
    """A real full disk: the reports folder on a 512 KiB tmpfs."""
    with mounted_tmpfs(tmp_path / "tiny", "512k") as tiny:
        out = tiny / "reports"
        args = ["render", "--config", str(SAMPLE_DATA / "qmskpi.toml"), "--period", "2026-10"]
        done = run_cli(*args, "--output", str(out), "--no-pdf")
        assert done.returncode == 1  # errors.EXIT_FAILED: a pack failed to publish
        message = (
            f"no space left: {out.resolve()} is full; free some space there and run again "
            "(nothing was published; details in the log)"
        )
        assert done.stdout == f"failed    2026-10 all  {message}\n"
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().endswith(f"2026-10/all failed: {message}")
        assert len(done.stderr.strip().splitlines()) == 1
        assert not (out / "2026-10").exists()
        assert not (out / "index.html").exists()
        assert list((out / ".staging").iterdir()) == []
        loud = run_cli("-v", *args, "--output", str(out), "--no-pdf")
        assert loud.returncode == 1
        assert "Traceback" in loud.stderr  # the details, for whoever asks for them


def test_scopes_lists_what_a_run_renders(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(SAMPLE_DATA / "qmskpi.toml")
    assert main(["scopes", "--config", cfg, "--json"]) == 0
    # sample_data/qmskpi.toml: sites = ["North", "South", "East"], after the whole organisation
    assert json.loads(capsys.readouterr().out) == ["all", "North", "South", "East"]
    assert main(["scopes", "--config", cfg]) == 0
    assert capsys.readouterr().out.splitlines() == ["all", "North", "South", "East"]


def test_run_executor_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qmskpi.cli import build_parser
    from qmskpi.config import EXECUTORS

    parser = build_parser()
    run = parser.parse_args(
        ["run", "--executor", "dask", "--scheduler", "tcp://h:8786", "--scope", "all"]
    )
    assert (run.executor, run.scheduler, run.scope, run.jobs) == (
        "dask",
        "tcp://h:8786",
        ["all"],
        None,
    )
    for name in EXECUTORS:  # the CLI offers every executor the config knows, and no other
        assert parser.parse_args(["run", "--executor", name]).executor == name
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--executor", "spark"])
    assert "invalid choice" in capsys.readouterr().err
    # A Dask scheduler with --jobs: refused before anything is rendered (exit 3, the key named).
    cfg = str(SAMPLE_DATA / "qmskpi.toml")
    argv = ["run", "--config", cfg, "--output", str(tmp_path / "r"), "--executor", "dask"]
    code = main([*argv, "--scheduler", "tcp://127.0.0.1:8786", "--jobs", "2"])
    assert code == 3
    assert "key 'jobs'" in capsys.readouterr().err
    assert not (tmp_path / "r" / "2026-10").exists()
