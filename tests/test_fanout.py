"""fanout: ``qmskpi run --executor dask`` on a real distributed.LocalCluster (2 worker processes).

Load, validate, compute, the lock per scope, staging and the atomic publish are
real and run on the Dask workers; the notebook, HTML and PDF come from
the pipeline tests' fake renderer (rendering is the same function under either
executor, and is tested in tests/render and tests/pipeline). The data are a tiny
synthetic set: one site, three months.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dask
import pytest
from distributed import LocalCluster

import qmskpi
from pipeline.helpers import (
    AS_OF,
    DETERMINISTIC_FILES,
    PERIOD,
    assert_pack_intact,
    fake_render,
    renders,
    without_volatile,
)
from qmskpi import archive, pipeline, render, synthetic
from qmskpi.cli import main
from qmskpi.config import Config, load_config
from qmskpi.errors import EXIT_FAILED, EXIT_INPUT, ConfigError
from qmskpi.pipeline import schedule

SITE = "North"  # the generator's first site name


def site_fails_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """Chromium crashes for the site; the whole-organisation scope renders."""
    if kwargs["parameters"]["scope"] == SITE:
        raise render.RenderError("Chromium crashed while printing")
    return fake_render(stage_dir, **kwargs)


def site_killed_render(stage_dir: Path, /, **kwargs: Any) -> render.RenderResult:
    """The site's worker process is SIGKILLed mid-render (out of memory, say)."""
    if kwargs["parameters"]["scope"] == SITE:
        (Path(stage_dir) / "management-review.html").write_text("<html><p>half")
        os.kill(os.getpid(), signal.SIGKILL)
    return fake_render(stage_dir, **kwargs)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "data"
    spec = synthetic.SyntheticSpec(sites=1, months=3, end_month=PERIOD, scale=0.2)
    assert spec.site_names == (SITE,)
    synthetic.sample(out, spec)
    return out


@pytest.fixture
def cfg_path(tiny_data: Path, tmp_path: Path) -> Path:
    shutil.copytree(tiny_data, tmp_path / "data")
    return tmp_path / "data" / "qmskpi.toml"


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A local cluster of two worker processes, one thread each, shared by the module.

    A task whose worker dies is not retried (``allowed-failures`` 0, default 3), so the
    killed-worker test costs one worker restart, not four.
    """
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        ) as cluster,
    ):
        yield cluster.scheduler_address


def output(cfg_path: Path, name: str) -> Config:
    return load_config(cfg_path).with_reports_dir(cfg_path.parent / name)


def published(cfg: Config) -> dict[str, archive.Pack]:
    arch = archive.Archive(cfg.reports_dir)
    packs = {s: arch.current(PERIOD, archive.scope_slug(s)) for s in cfg.scopes}
    return {s: p for s, p in packs.items() if p is not None}


def statuses(outcomes: list[pipeline.RunOutcome]) -> list[tuple[str, str, str]]:
    return sorted((o.period, o.scope, o.status) for o in outcomes)


@pytest.mark.slow
@pytest.mark.timeout(900)  # worker start and imports: minutes on a loaded machine
def test_dask_publishes_what_the_local_executor_publishes(cfg_path: Path, scheduler: str) -> None:
    by_local = pipeline.run_scheduled(cfg_path, as_of=AS_OF, renderer=fake_render)
    # Moved aside whole (its links are relative), so both runs see the same config.
    (cfg_path.parent / "reports").rename(cfg_path.parent / "reports-local")
    local = output(cfg_path, "reports-local")
    dask = load_config(cfg_path)
    by_dask = pipeline.run_scheduled(
        dask, as_of=AS_OF, renderer=fake_render, executor="dask", scheduler=scheduler
    )
    every = [(PERIOD, s, "published") for s in sorted(("all", SITE))]
    assert statuses(by_local) == statuses(by_dask) == every
    assert pipeline.exit_code(by_dask) == 0
    # The dask packs were rendered by the workers, not by this process.
    dask_pids = {r["pid"] for r in renders(cfg_path)[3:]}
    assert os.getpid() not in dask_pids
    packs_local, packs_dask = published(local), published(dask)
    assert set(packs_local) == set(packs_dask) == {"all", SITE}
    for scope, pack in packs_dask.items():
        assert_pack_intact(pack)
        twin = packs_local[scope]
        assert_pack_intact(twin)
        for name in DETERMINISTIC_FILES:
            if twin.file(name).exists():  # some registers are whole-organisation only
                assert pack.file(name).read_bytes() == twin.file(name).read_bytes(), (scope, name)
        mine: Mapping[str, Any] = json.loads(pack.file("manifest.json").read_text())
        theirs: Mapping[str, Any] = json.loads(twin.file("manifest.json").read_text())
        assert without_volatile(mine) == without_volatile(theirs)
    index = (dask.reports_dir / archive.INDEX).read_text()
    assert f"{PERIOD}/{archive.scope_slug(SITE)}/" in index


@pytest.mark.slow
@pytest.mark.timeout(900)  # worker start and imports: minutes on a loaded machine
def test_skip_and_catch_up_are_decided_before_fan_out(cfg_path: Path, scheduler: str) -> None:
    def run(**kwargs: Any) -> list[tuple[str, str, str]]:
        outcomes = pipeline.run_scheduled(
            cfg_path,
            as_of=AS_OF,
            renderer=fake_render,
            executor="dask",
            scheduler=scheduler,
            scopes=["all"],
            **kwargs,
        )
        return statuses(outcomes)

    assert run() == [(PERIOD, "all", "published")]
    assert run() == [(PERIOD, "all", "skipped")]  # same inputs
    assert run(since="2026-09") == [("2026-09", "all", "published"), (PERIOD, "all", "skipped")]
    assert run(force=True) == [(PERIOD, "all", "published")]


@pytest.mark.slow
@pytest.mark.timeout(900)  # worker start and imports: minutes on a loaded machine
def test_a_failing_scope_fails_the_run_and_the_others_publish(
    cfg_path: Path, scheduler: str, tmp_path: Path
) -> None:
    sink = tmp_path / "summary.json"
    notify = [
        sys.executable,
        "-c",
        f"import sys; open({str(sink)!r}, 'wb').write(sys.stdin.buffer.read())",
    ]
    cfg = output(cfg_path, "reports")
    outcomes = pipeline.run_scheduled(
        cfg,
        as_of=AS_OF,
        renderer=site_fails_render,
        executor="dask",
        scheduler=scheduler,
        notify=notify,
    )
    assert statuses(outcomes) == [(PERIOD, SITE, "failed"), (PERIOD, "all", "published")]
    assert pipeline.exit_code(outcomes) == EXIT_FAILED
    packs = published(cfg)
    assert set(packs) == {"all"}
    for pack in packs.values():
        assert_pack_intact(pack)
    # A failed scope leaves nothing behind: no staging folder, no pack.
    assert list((cfg.reports_dir / ".staging").iterdir()) == []
    summary = json.loads(sink.read_text())
    assert summary["exit_code"] == EXIT_FAILED
    assert [(f["scope"], f["error_type"]) for f in summary["failed"]] == [(SITE, "RenderError")]
    assert len(summary["outcomes"]) == 2


@pytest.mark.slow
@pytest.mark.timeout(900)  # worker start and imports: minutes on a loaded machine
def test_the_lock_per_scope_holds_across_workers(cfg_path: Path, scheduler: str) -> None:
    cfg = output(cfg_path, "reports")
    arch = archive.Archive(cfg.reports_dir)
    with arch.pack_lock(PERIOD, archive.scope_slug(SITE)):  # another run renders it
        outcomes = pipeline.run_scheduled(
            cfg, as_of=AS_OF, renderer=fake_render, executor="dask", scheduler=scheduler
        )
    failed = [o for o in outcomes if o.status == "failed"]
    assert [o.scope for o in failed] == [SITE]
    assert failed[0].error is not None
    assert "being rendered by another run" in failed[0].error
    assert pipeline.exit_code(outcomes) == EXIT_FAILED
    assert set(published(cfg)) == {"all"}
    rendered = {r["scope"] for r in renders(cfg_path)}
    assert rendered == {"all"}  # the locked scope was never rendered
    # Once the other run is done, the next run renders that scope and skips the rest.
    after = pipeline.run_scheduled(
        cfg, as_of=AS_OF, renderer=fake_render, executor="dask", scheduler=scheduler
    )
    assert statuses(after) == [(PERIOD, SITE, "published"), (PERIOD, "all", "skipped")]


@pytest.mark.slow
@pytest.mark.timeout(900)  # worker start and imports: minutes on a loaded machine
def test_a_worker_killed_mid_render_fails_its_scope_only(cfg_path: Path, scheduler: str) -> None:
    cfg = output(cfg_path, "reports")
    outcomes = pipeline.run_scheduled(
        cfg, as_of=AS_OF, renderer=site_killed_render, executor="dask", scheduler=scheduler
    )
    assert statuses(outcomes) == [(PERIOD, SITE, "failed"), (PERIOD, "all", "published")]
    (failed,) = [o for o in outcomes if o.status == "failed"]
    assert failed.error_type == "KilledWorker"
    assert pipeline.exit_code(outcomes) == EXIT_FAILED
    assert set(published(cfg)) == {"all"}
    # The dead worker's staging folder stays (its lock died with it) until the next run,
    # which cleans it and renders the scope: nothing half-written was ever visible.
    assert len(list((cfg.reports_dir / ".staging").iterdir())) == 1
    after = pipeline.run_scheduled(
        cfg, as_of=AS_OF, renderer=fake_render, executor="dask", scheduler=scheduler
    )
    assert statuses(after) == [(PERIOD, SITE, "published"), (PERIOD, "all", "skipped")]
    assert list((cfg.reports_dir / ".staging").iterdir()) == []
    assert_pack_intact(published(cfg)[SITE])


def test_config_run_table_selects_the_dask_executor(cfg_path: Path, scheduler: str) -> None:
    from qmskpi import fanout

    text = cfg_path.read_text() + f'\n[run]\nexecutor = "dask"\nscheduler = "{scheduler}"\n'
    cfg_path.write_text(text)
    pool = schedule._scope_pool(load_config(cfg_path), jobs=None, executor=None, scheduler=None)
    assert isinstance(pool, fanout.DaskExecutor)
    with pool:
        assert pool.cluster is None  # connected to the running cluster, did not start one
        assert pool.workers == 2
        assert pool.submit(pow, 2, 10).result() == 1024
    # The command line wins over the config.
    assert (
        schedule._scope_pool(load_config(cfg_path), jobs=1, executor="local", scheduler=None)
        is None
    )


def test_an_unreachable_scheduler_is_a_config_error_naming_it() -> None:
    from qmskpi import fanout

    with pytest.raises(ConfigError, match=r"tcp://127\.0\.0\.1:9") as err:
        fanout.DaskExecutor(scheduler="tcp://127.0.0.1:9", timeout_s=1)
    assert err.value.key == "run.scheduler"


def test_without_dask_installed_the_error_names_the_extra(
    cfg_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # what Python does for a missing module
    monkeypatch.delitem(sys.modules, "qmskpi.fanout", raising=False)
    monkeypatch.delattr(qmskpi, "fanout", raising=False)
    with pytest.raises(ConfigError, match=r"pip install 'qmskpi\[dask\]'"):
        pipeline.run_scheduled(cfg_path, as_of=AS_OF, executor="dask", renderer=fake_render)
    code = main(["run", "--config", str(cfg_path), "--executor", "dask", "--as-of", "2026-11-05"])
    assert code == EXIT_INPUT
    assert "qmskpi[dask]" in capsys.readouterr().err
    assert not (cfg_path.parent / "reports" / PERIOD).exists()
