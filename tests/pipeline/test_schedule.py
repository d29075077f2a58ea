"""pipeline.schedule: the scheduled run (plan, catch-up, worker processes) and the scheduling examples."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline.helpers import (
    AS_OF,
    EXAMPLES,
    PERIOD,
    assert_pack_intact,
    copy_sample,
    fake_render,
    renders,
    reports,
    stray_children,
)
from qmskpi import archive, pipeline, progress
from qmskpi.cli import build_parser
from qmskpi.config import load_config
from qmskpi.errors import ConfigError, ScopeError


def test_plan_last_complete_period_and_catch_up(small_cfg_path: Path) -> None:
    cfg = load_config(small_cfg_path)
    plan = pipeline.plan_periods(cfg, as_of=date(2026, 11, 1))
    assert {s: [p.label for p in ps] for s, ps in plan.items()} == {
        "all": ["2026-10"],
        "North": ["2026-10"],
    }
    assert [p.label for p in pipeline.plan_periods(cfg, as_of=date(2026, 10, 31))["all"]] == [
        "2026-09"
    ]
    since = pipeline.plan_periods(cfg, as_of=AS_OF, since="2026-08")
    assert [p.label for p in since["North"]] == ["2026-08", "2026-09", "2026-10"]


def test_scheduled_run_catches_up_missed_months_in_order_then_skips(
    small_cfg_path: Path,
) -> None:
    outcomes = pipeline.run_scheduled(
        small_cfg_path, as_of=AS_OF, since="2026-08", renderer=fake_render
    )
    assert [(o.period, o.scope, o.status) for o in outcomes] == [
        ("2026-08", "all", "published"),
        ("2026-08", "North", "published"),
        ("2026-09", "all", "published"),
        ("2026-09", "North", "published"),
        ("2026-10", "all", "published"),
        ("2026-10", "North", "published"),
    ]
    assert [(r["period"], r["scope"]) for r in renders(small_cfg_path)] == [
        (o.period, o.scope) for o in outcomes
    ]
    root = reports(small_cfg_path)
    for o in outcomes:
        assert_pack_intact(archive.Archive(root).current(o.period, archive.scope_slug(o.scope)))
    # every pack is published; the config lists only North, so the rows of the other
    # sites break site_known (an error rule): exit 4, figures struck out, not a failure
    assert pipeline.exit_code(outcomes) == pipeline.EXIT_RULES
    assert all(o.unsound_datasets for o in outcomes)
    page = (root / "index.html").read_text()
    for month in ("2026-08", "2026-09", "2026-10"):
        assert f'href="{month}/north/management-review.html"' in page
    # Next day: nothing changed, everything skipped, nothing rendered.
    again = pipeline.run_scheduled(small_cfg_path, as_of=AS_OF, renderer=fake_render)
    assert [(o.period, o.status) for o in again] == [("2026-10", "skipped")] * 2
    assert len(renders(small_cfg_path)) == 6


def test_scheduled_run_catches_up_from_the_newest_published_pack(small_cfg_path: Path) -> None:
    first = pipeline.run_review(small_cfg_path, "2026-08", "all", renderer=fake_render)
    assert first.status == "published"
    outcomes = pipeline.run_scheduled(small_cfg_path, as_of=AS_OF, renderer=fake_render)
    assert [(o.period, o.scope) for o in outcomes] == [
        ("2026-09", "all"),
        ("2026-10", "all"),
        ("2026-10", "North"),
    ]


def test_scheduled_run_checks_scopes_and_executor_before_rendering(small_cfg_path: Path) -> None:
    def run(**kwargs: Any) -> list[pipeline.RunOutcome]:
        return pipeline.run_scheduled(small_cfg_path, as_of=AS_OF, renderer=fake_render, **kwargs)

    with pytest.raises(ScopeError, match="did you mean 'North'"):
        run(scopes=["Nort"])
    with pytest.raises(ConfigError, match="executor 'dask'"):
        run(scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ConfigError, match="its workers decide"):
        run(executor="dask", scheduler="tcp://127.0.0.1:8786", jobs=2)
    with pytest.raises(ConfigError, match="must be one of local, dask"):
        run(executor="spark")
    assert renders(small_cfg_path) == []
    assert not (reports(small_cfg_path) / PERIOD).exists()


@pytest.mark.slow
def test_parallel_scopes_render_every_scope_in_worker_processes(small_cfg_path: Path) -> None:
    outcomes = pipeline.run_scheduled(small_cfg_path, as_of=AS_OF, jobs=2, renderer=fake_render)
    assert sorted((o.scope, o.status) for o in outcomes) == [
        ("North", "published"),
        ("all", "published"),
    ]
    root = reports(small_cfg_path)
    for o in outcomes:
        pack = archive.Archive(root).current(PERIOD, archive.scope_slug(o.scope))
        assert_pack_intact(pack)
        assert pack is not None
        assert pack.scope == o.scope
        kpis = pl.read_csv(pack.file("kpis.csv"))
        assert set(kpis["scope"]) == ({"all", "North"} if o.scope == "all" else {"North"})
    pids = {r["pid"] for r in renders(small_cfg_path)}
    assert os.getpid() not in pids
    assert stray_children() == []


def test_a_scheduled_run_counts_its_packs(small_cfg_path: Path) -> None:
    seen: list[progress.Event] = []
    with progress.listening(seen.append):
        outcomes = pipeline.run_scheduled(
            small_cfg_path, as_of=AS_OF, since="2026-09", renderer=fake_render
        )
    packs = [(e.period, e.scope, e.index, e.total) for e in seen if e.stage == "pack"]
    # 2 periods x 2 scopes, oldest period first, the whole organisation first
    assert packs == [
        ("2026-09", "all", 1, 4),
        ("2026-09", "North", 2, 4),
        ("2026-10", "all", 3, 4),
        ("2026-10", "North", 4, 4),
    ]
    assert [o.status for o in outcomes] == ["published"] * 4


def cli_accepts(argv: list[str]) -> None:
    """The qmskpi part of a scheduler's command line parses with the real CLI parser."""
    assert Path(argv[0]).name == "qmskpi", argv
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run"


def test_crontab_example_calls_qmskpi_run() -> None:
    lines = [
        ln
        for ln in (EXAMPLES / "crontab").read_text().splitlines()
        if ln.strip() and not ln.startswith("#") and "=" not in ln.split()[0]
    ]
    (entry,) = lines
    fields = entry.split(None, 5)
    minute, hour, dom, month, dow, command = fields
    assert (minute, hour, dom, month, dow) == ("15", "6", "2", "*", "*")
    qmskpi_part = command.split("&&", 1)[1].split(">>", 1)[0]
    cli_accepts(shlex.split(qmskpi_part))


def test_systemd_units_verify(tmp_path: Path) -> None:
    service = (EXAMPLES / "qmskpi-run.service").read_text()
    timer = (EXAMPLES / "qmskpi-run.timer").read_text()
    exec_start = next(ln for ln in service.splitlines() if ln.startswith("ExecStart="))
    cli_accepts(shlex.split(exec_start.removeprefix("ExecStart=")))
    assert "Type=oneshot" in service
    assert "Persistent=true" in timer
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart exists: point it at this venv's qmskpi.
    qmskpi_bin = Path(sys.executable).with_name("qmskpi")
    (tmp_path / "qmskpi-run.service").write_text(
        service.replace("/srv/qmskpi/.venv/bin/qmskpi", str(qmskpi_bin))
    )
    (tmp_path / "qmskpi-run.timer").write_text(timer)
    done = subprocess.run(
        [tool, "verify", str(tmp_path / "qmskpi-run.service"), str(tmp_path / "qmskpi-run.timer")],
        capture_output=True,
        text=True,
    )
    problems = [
        ln
        for ln in (done.stdout + done.stderr).splitlines()
        if "qmskpi-run" in ln and "Documentation" not in ln
    ]
    assert done.returncode == 0, done.stdout + done.stderr
    assert problems == []
    calendar = re.search(r"(?m)^OnCalendar=(.+)$", timer)
    assert calendar is not None
    check = subprocess.run([tool, "calendar", calendar.group(1)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_airflow_dag_maps_one_qmskpi_run_task_over_the_scopes(tmp_path: Path) -> None:
    source = (EXAMPLES / "airflow_qmskpi_dag.py").read_text()
    tree = ast.parse(source)
    # The listing task, run as written against a home with the sample config and this venv.
    (lister,) = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "qmskpi_scopes"
    ]
    lister.decorator_list = []
    home = tmp_path / "home"
    cfg = copy_sample(home)
    (home / ".venv" / "bin").mkdir(parents=True)
    (home / ".venv" / "bin" / "qmskpi").symlink_to(Path(sys.executable).parent / "qmskpi")
    namespace: dict[str, Any] = {"json": json, "subprocess": subprocess, "ENV": {"TZ": "UTC"}}
    exec(compile(ast.Module([lister], []), "dag", "exec"), namespace)
    envs = namespace["qmskpi_scopes"](str(home))
    scopes = [e["QMSKPI_SCOPE"] for e in envs]
    assert scopes == ["all", *load_config(cfg).sites] == ["all", "North", "South", "East"]
    # The mapped task: BashOperator.partial(...).expand(env=<one env per scope>).
    (expand,) = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "expand"
    ]
    partial = expand.func.value  # type: ignore[attr-defined]
    assert isinstance(partial, ast.Call)
    assert ast.unparse(partial.func) == "BashOperator.partial"
    assert [k.arg for k in expand.keywords] == ["env"]
    kwargs = {k.arg: k.value for k in partial.keywords}
    command = "".join(ast.literal_eval(kwargs["bash_command"]))
    for env in envs:
        rendered = (
            command.replace("{{ params.home }}", "/srv/qmskpi")
            .replace("{{ data_interval_end | ds }}", "2026-11-02")
            .replace("$QMSKPI_SCOPE", env["QMSKPI_SCOPE"])
        )
        assert "{{" not in rendered
        argv = shlex.split(rendered)
        cli_accepts(argv)
        args = build_parser().parse_args(argv[1:])
        assert args.scope == [env["QMSKPI_SCOPE"]]
        assert args.as_of == date(2026, 11, 2)


def test_jupyter_scheduler_notebook_is_a_thin_view_over_the_pipeline() -> None:
    nb = json.loads((EXAMPLES / "scheduled_run.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] for c in code)
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    names: dict[str, Any] = {}
    exec("".join(params[0]["source"]), {}, names)  # literals only
    assert set(names) == {"config_path", "since", "force", "jobs"}
    calls = set()
    for cell in code:
        tree = ast.parse("".join(cell["source"]))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                )
                assert mods == ["qmskpi"]
            assert not isinstance(node, ast.FunctionDef | ast.For | ast.While)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
                calls.add(node.attr)
    assert {"run_scheduled", "outcomes_frame", "require_success"} <= calls
    for name in calls:
        assert hasattr(pipeline, name)


@pytest.mark.notebook
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_jupyter_scheduler_notebook_renders_with_force_and_one_job(tmp_path: Path) -> None:
    """The recipe as jupyter-scheduler runs it: papermill, a kernel with a running asyncio loop."""
    import papermill

    cfg = copy_sample(tmp_path / "data", sites=("North",))
    cfg.write_text(cfg.read_text().replace("[review]\n", "[review]\nas_of = 2026-11-05\n", 1))
    out = tmp_path / "scheduled_run.ipynb"
    papermill.execute_notebook(
        str(EXAMPLES / "scheduled_run.ipynb"),
        str(out),
        parameters={"config_path": str(cfg), "force": True, "jobs": 1},
        kernel_name="python3",
        cwd=str(tmp_path),
        execution_timeout=600,
        progress_bar=False,
        log_output=False,
    )  # raises PapermillExecutionError when require_success raises
    for scope in ("all", "north"):
        pack = reports(cfg) / "2026-10" / scope
        assert (pack / "management-review.pdf").read_bytes().startswith(b"%PDF-"), scope
        assert (pack / "management-review.html").is_file()
