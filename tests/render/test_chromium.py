"""render.chromium: which Chromium is found (the order scripts/system-deps uses), and how to get one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from qmskpi import render
from render.helpers import ROOT

SYSTEM_DEPS = ROOT / "scripts" / "system-deps"


def fake_browser(folder: Path, name: str) -> Path:
    """An executable file called ``name`` in ``folder`` (found, never run)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(0o755)
    return exe


def script_finds(env: dict[str, str]) -> str | None:
    """What ``scripts/system-deps find-chromium`` finds in ``env`` (None: nothing)."""
    done = subprocess.run(
        ["/bin/bash", str(SYSTEM_DEPS), "find-chromium"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def test_chromium_is_looked_for_in_the_documented_order(tmp_path: Path) -> None:
    """QMSKPI_CHROMIUM, chromium, Chrome names, playwright; the script agrees at each step."""
    bins, home = tmp_path / "bin", tmp_path / "home"
    home.mkdir()
    env = {"PATH": str(bins), "HOME": str(home)}
    seen: list[Path | None] = []

    def step() -> None:
        found = render.find_chromium(env)
        assert script_finds(env) == (str(found) if found else None), env
        seen.append(found)

    step()  # nothing anywhere
    pw = home / ".cache" / "ms-playwright"
    fake_browser(pw / "chromium-999" / "chrome-linux", "chrome")
    newest = fake_browser(pw / "chromium-1187" / "chrome-linux", "chrome")
    step()
    stable = fake_browser(bins, "google-chrome-stable")
    step()
    chrome = fake_browser(bins, "google-chrome")
    step()
    debian = fake_browser(bins, "chromium")
    step()
    chosen = fake_browser(tmp_path / "mine", "my-chrome")
    env["QMSKPI_CHROMIUM"] = str(chosen)
    step()
    # A wrong QMSKPI_CHROMIUM is not silently replaced by another browser.
    env["QMSKPI_CHROMIUM"] = str(tmp_path / "nothing-here")
    step()
    assert seen == [None, newest, stable, chrome, debian, chosen, None]


def test_without_chromium_the_printer_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("QMSKPI_CHROMIUM", raising=False)
    assert render.find_chromium() is None
    with pytest.raises(render.ChromiumNotFoundError) as info, render.PdfPrinter():
        pass
    message = str(info.value)
    assert "no Chromium found" in message
    assert "google-chrome" in message
    assert render.install_command() in message
    assert "\n" not in message
