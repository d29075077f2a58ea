"""A run's temporary files live in one folder of its own, swept by the next run when it was killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from conftest import SAMPLE_DATA
from qmskpi import runtemp

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from qmskpi import runtemp
    with runtemp.run_tmpdir(Path(sys.argv[1])) as folder:
        (folder / "scratch.txt").write_text("x")
        print(folder, flush=True)
        time.sleep(600)
    """
)


def hold_a_run_folder(root: Path) -> tuple[subprocess.Popen[str], Path]:
    """A process inside run_tmpdir(root), waiting; and its folder."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_a_run_gets_its_own_tmpdir_and_leaves_nothing(tmp_path: Path) -> None:
    old_env, old_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    with runtemp.run_tmpdir(tmp_path) as folder:
        assert folder.parent == tmp_path
        assert folder.name.startswith(runtemp.PREFIX)
        assert os.environ["TMPDIR"] == str(folder)
        assert tempfile.gettempdir() == str(folder)
        # what a child process (the kernel, Chromium) sees
        seen = subprocess.run(
            [sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert seen == str(folder)
        with runtemp.run_tmpdir(tmp_path) as nested:  # a run inside a run shares the folder
            assert nested == folder
        assert folder.is_dir()
        (folder / "left-by-chromium").mkdir()
    assert list(tmp_path.iterdir()) == []
    assert os.environ.get("TMPDIR") == old_env
    assert tempfile.tempdir == old_tempdir


def test_the_next_run_sweeps_a_killed_runs_folder_and_spares_a_live_one(tmp_path: Path) -> None:
    killed, killed_folder = hold_a_run_folder(tmp_path)
    live, live_folder = hold_a_run_folder(tmp_path)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.communicate()
        assert (killed_folder / "scratch.txt").is_file()  # SIGKILL left it
        with runtemp.run_tmpdir(tmp_path) as mine:
            assert not killed_folder.exists()
            assert (live_folder / "scratch.txt").is_file()  # its owner is alive
            assert sorted(tmp_path.iterdir()) == sorted([live_folder, mine])
    finally:
        live.kill()
        live.communicate()
    assert runtemp.sweep(tmp_path) == [live_folder]
    assert list(tmp_path.iterdir()) == []


def test_a_folder_without_its_owner_file_is_left_while_young(tmp_path: Path) -> None:
    young = tmp_path / f"{runtemp.PREFIX}young"
    young.mkdir()  # being created by another run: no .owner yet
    old = tmp_path / f"{runtemp.PREFIX}old"
    old.mkdir()
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    unrelated = tmp_path / "playwright_chromiumdev_profile-abc"  # not ours: never touched
    unrelated.mkdir()
    assert runtemp.sweep(tmp_path) == [old]
    assert sorted(tmp_path.iterdir()) == sorted([young, unrelated])


def run_folders(root: Path) -> list[Path]:
    return sorted(root.glob(f"{runtemp.PREFIX}*"))


@pytest.mark.notebook
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_a_killed_render_leaves_nothing_after_the_next_run(tmp_path: Path) -> None:
    """kill -9 of a real ``qmskpi render`` (its whole process group, as systemd does), then a run."""
    # A short $TMPDIR, as /tmp is: unix socket paths (Chromium's, the kernel's) are limited to ~104 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="qk-", dir="/tmp"))
    try:
        killed_then_run_again(tmp, tmp_path / "reports")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cmdline(process: psutil.Process) -> str:
    """A child's command line, or "" when it ended between listing and reading (short-lived
    helpers come and go while the render starts)."""
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return ""


def killed_then_run_again(tmp: Path, out: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp)}
    args = [sys.executable, "-m", "qmskpi", "render", "--config", str(SAMPLE_DATA / "qmskpi.toml")]
    args += ["--period", "2026-10", "--output", str(out)]
    proc = subprocess.Popen(args, env=env, start_new_session=True)
    runner = psutil.Process(proc.pid)
    deadline = time.monotonic() + 300
    folder: Path | None = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = run_folders(tmp)
        kernel = [c for c in runner.children(recursive=True) if "ipykernel" in _cmdline(c)]
        if found and kernel and list(found[0].glob("playwright_chromiumdev_profile-*")):
            folder = found[0]
            break
        time.sleep(0.1)
    assert folder is not None, "the render never had both its kernel and Chromium running"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1)
    left = {p.name.split("-")[0] for p in folder.iterdir()}
    # what a killed run leaves: Chromium's profile, playwright's artifacts, the kernel's files
    assert {"playwright_chromiumdev_profile", "playwright"} <= left, left
    assert [p for p in tmp.iterdir() if p != folder] == []  # nothing outside its own folder
    again = subprocess.run(
        [*args, "--no-pdf", "--force"], env=env, capture_output=True, text=True, check=False
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert list(tmp.iterdir()) == []


SWEEP = "import sys; from pathlib import Path; from qmskpi import runtemp; runtemp.sweep(Path(sys.argv[1]))"


def test_a_run_sweeping_while_another_creates_its_folder_leaves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another run sweeps (in another process) at the worst moment: the folder and its
    # owner file exist, the lock is not taken yet. The folder must survive.
    real_flock = runtemp.fcntl.flock

    def flock_after_a_sweep(fd: int, op: int) -> None:
        subprocess.run([sys.executable, "-c", SWEEP, str(tmp_path)], check=True)
        real_flock(fd, op)

    monkeypatch.setattr(runtemp.fcntl, "flock", flock_after_a_sweep)
    with runtemp.run_tmpdir(tmp_path) as folder:
        monkeypatch.setattr(runtemp.fcntl, "flock", real_flock)
        assert folder.is_dir()
        assert runtemp.lock_held(folder / runtemp.OWNER) is True
        (folder / "kernel-connection.json").write_text("{}")  # still usable
    assert list(tmp_path.iterdir()) == []


def test_runs_in_threads_of_one_process_share_the_folder_until_the_last_ends(
    tmp_path: Path,
) -> None:
    # A Dask worker with two threads runs two scopes at once: $TMPDIR is the process's, so
    # the first run to end must not remove the folder (or restore $TMPDIR) under the other.
    import threading

    old_env = os.environ.get("TMPDIR")
    entered, first_done, seen = threading.Event(), threading.Event(), {}

    def second() -> None:
        with runtemp.run_tmpdir(tmp_path) as folder:
            seen["second"] = folder
            entered.set()
            first_done.wait(30)
            seen["after_first"] = (folder.is_dir(), os.environ.get("TMPDIR"))

    with runtemp.run_tmpdir(tmp_path) as folder:
        t = threading.Thread(target=second)
        t.start()
        assert entered.wait(30)
    first_done.set()
    t.join(30)
    assert seen["second"] == folder
    assert seen["after_first"] == (True, str(folder))  # the first ended; still there
    assert list(tmp_path.iterdir()) == []  # the last one out removed it
    assert os.environ.get("TMPDIR") == old_env
