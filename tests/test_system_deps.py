"""scripts/system-deps: the system parts `make demo`, `make test` and `.ci/run` rely on.

Run with a ``PATH`` that holds only what a test puts there, installing switched
off (``QMSKPI_SYSTEM_INSTALL=0``) and the platform read from a small
``os-release`` file: nothing on the machine is installed or changed. Which
browser the script finds is checked against ``render.find_chromium`` in
``tests/render/test_chromium.py``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "system-deps"


def run(
    tmp_path: Path, *args: str, os_id: str = "debian", **env: str
) -> subprocess.CompletedProcess[str]:
    bins = tmp_path / "bin"
    bins.mkdir(exist_ok=True)
    release = tmp_path / "os-release"
    release.write_text(f'NAME="test"\nID={os_id}\n')
    base = {
        "PATH": str(bins),
        "HOME": str(tmp_path),
        "QMSKPI_SYSTEM_INSTALL": "0",
        "QMSKPI_OS_RELEASE": str(release),
        "QMSKPI_PG_BIN": str(tmp_path / "no-postgresql"),
    }
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fake_exe(tmp_path: Path, name: str) -> Path:
    exe = tmp_path / "bin" / name
    exe.parent.mkdir(exist_ok=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


def test_a_google_chrome_on_path_is_found(tmp_path: Path) -> None:
    chrome = fake_exe(tmp_path, "google-chrome")
    done = run(tmp_path, "find-chromium")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(chrome)
    demo = run(tmp_path, "demo")
    assert demo.returncode == 0
    assert f"Chromium: {chrome}" in demo.stderr
    assert "apt-get" not in demo.stderr


@pytest.mark.parametrize(
    ("os_id", "command"),
    [
        ("debian", "apt-get update && {sudo}apt-get install -y chromium"),
        ("ubuntu", "apt-get update && {sudo}apt-get install -y chromium-browser"),
        ("fedora", "dnf install -y chromium"),
    ],
)
def test_without_a_browser_it_prints_the_install_command_and_goes_on(
    tmp_path: Path, os_id: str, command: str
) -> None:
    done = run(tmp_path, "demo", os_id=os_id)
    assert done.returncode == 0
    sudo = "" if _root() else "sudo "
    assert command.format(sudo=sudo) in done.stderr
    assert "the demo publishes the pack without its PDF" in done.stderr
    assert run(tmp_path, "find-chromium", os_id=os_id).returncode == 1


def test_strict_mode_stops_when_a_part_is_missing(tmp_path: Path) -> None:
    done = run(tmp_path, "test", QMSKPI_SYSTEM_STRICT="1")
    assert done.returncode == 1
    for part in ("chromium", "poppler-utils", "postgresql"):
        assert part in done.stderr
    # every part in one command
    assert "apt-get install -y chromium poppler-utils postgresql" in done.stderr


def test_with_postgres_without_a_server_runs_the_command_and_says_why(tmp_path: Path) -> None:
    done = run(
        tmp_path,
        "with-postgres",
        "/bin/sh",
        "-c",
        'echo "url=${QMSKPI_TEST_PG_URL:-none} why=$QMSKPI_TEST_PG_UNAVAILABLE"; exit 7',
    )
    assert done.returncode == 7  # the command's own exit code
    assert "url=none" in done.stdout
    assert "why=no PostgreSQL server here" in done.stdout
    assert "apt-get install -y postgresql" in done.stdout
    assert "PostgreSQL source test is skipped" in done.stderr


def test_with_postgres_uses_a_server_already_given(tmp_path: Path) -> None:
    url = "postgresql+psycopg://someone@/db?host=/run/elsewhere"
    done = run(
        tmp_path,
        "with-postgres",
        "/bin/sh",
        "-c",
        'echo "url=$QMSKPI_TEST_PG_URL"',
        QMSKPI_TEST_PG_URL=url,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"url={url}"


def _root() -> bool:
    return os.geteuid() == 0
