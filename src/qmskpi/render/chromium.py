"""Which Chromium prints the PDF, and how to install one when there is none.

:func:`find_chromium` looks in the order ``scripts/system-deps`` uses too;
:func:`require_chromium` raises :class:`ChromiumNotFoundError` saying how to
get one. Nothing here starts a browser (no playwright).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from qmskpi.errors import RenderError

CHROMIUM_ENV: Final = "QMSKPI_CHROMIUM"
CHROMIUM_NAMES: Final = ("chromium", "google-chrome", "google-chrome-stable", "chromium-browser")
_MAC_APPS: Final = (
    Path("/Applications/Chromium.app/Contents/MacOS/Chromium"),
    Path("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"),
)


class ChromiumNotFoundError(RenderError):
    """No Chromium to print the PDF with; the message says where we looked and how to get one."""


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _playwright_chromium(environ: Mapping[str, str]) -> Path | None:
    """The newest playwright-managed Chromium (``chromium-<n>/chrome-linux*/chrome``), if any."""
    base = environ.get("PLAYWRIGHT_BROWSERS_PATH") or str(
        Path(environ.get("HOME") or "/nonexistent") / ".cache" / "ms-playwright"
    )
    found: list[tuple[int, Path]] = []
    for pattern in (
        "chromium-*/chrome-linux*/chrome",
        "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
    ):
        for path in Path(base).glob(pattern):
            build = path.relative_to(base).parts[0].removeprefix("chromium-")
            if build.isdigit() and _is_executable(path):
                found.append((int(build), path))
    return max(found)[1] if found else None


def find_chromium(environ: Mapping[str, str] | None = None) -> Path | None:
    """The Chromium (or Chrome) that prints the PDF, or None when there is none.

    Looked for in this order (``scripts/system-deps`` uses the same):
    ``$QMSKPI_CHROMIUM`` (when set, there only: a wrong path is not silently
    replaced by another browser); ``chromium`` (Debian), ``google-chrome``,
    ``google-chrome-stable``, ``chromium-browser`` on ``PATH``; the macOS apps;
    the newest playwright-managed Chromium (``~/.cache/ms-playwright`` or
    ``$PLAYWRIGHT_BROWSERS_PATH``).
    """
    env = os.environ if environ is None else environ
    chosen = env.get(CHROMIUM_ENV, "")
    if chosen:
        return Path(chosen) if _is_executable(Path(chosen)) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name, path=env.get("PATH", os.defpath))
        if found:
            return Path(found)
    for app in _MAC_APPS:
        if _is_executable(app):
            return app
    return _playwright_chromium(env)


def _os_family() -> str:
    if sys.platform == "darwin":
        return "macos"
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return "unknown"
    words = [release.get("ID", ""), *release.get("ID_LIKE", "").split()]
    for word in words:
        for family, ids in _FAMILIES.items():
            if word in ids:
                return family
    return "unknown"


_FAMILIES: Final = {
    "ubuntu": ("ubuntu",),
    "debian": ("debian",),
    "fedora": ("fedora", "rhel", "centos"),
    "arch": ("arch",),
    "suse": ("suse", "opensuse", "opensuse-leap", "opensuse-tumbleweed"),
    "alpine": ("alpine",),
}
_INSTALL: Final = {
    "debian": "sudo apt-get update && sudo apt-get install -y chromium",
    "ubuntu": "sudo apt-get update && sudo apt-get install -y chromium-browser",
    "fedora": "sudo dnf install -y chromium",
    "arch": "sudo pacman -S --needed chromium",
    "suse": "sudo zypper install -y chromium",
    "alpine": "sudo apk add chromium",
    "macos": "brew install --cask google-chrome",
}


def install_command() -> str:
    """The command that installs Chromium on this platform (as ``scripts/system-deps`` prints it)."""
    command = _INSTALL.get(_os_family(), "install Chromium or Chrome with your package manager")
    return command.removeprefix("sudo ").replace("&& sudo ", "&& ") if _is_root() else command


def _is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


def chromium_missing() -> str:
    """Why no Chromium was found, and how to get one (one line)."""
    chosen = os.environ.get(CHROMIUM_ENV, "")
    if chosen:
        where = f"{CHROMIUM_ENV}={chosen} is not an executable file"
    else:
        where = (
            f"no Chromium found ({CHROMIUM_ENV} not set; none of {', '.join(CHROMIUM_NAMES)} "
            "on PATH; no playwright browser)"
        )
    return (
        f"{where}; install it with `{install_command()}` or point {CHROMIUM_ENV} at a "
        "Chromium or Chrome executable"
    )


def require_chromium() -> Path:
    """:func:`find_chromium`, or :class:`ChromiumNotFoundError` saying how to get one."""
    found = find_chromium()
    if found is None:
        raise ChromiumNotFoundError(chromium_missing())
    return found
