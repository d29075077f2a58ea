"""Shared test set-up: UTC, no GX analytics, paths to the sample data."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

os.environ["TZ"] = "UTC"
os.environ["GX_ANALYTICS_ENABLED"] = "False"

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = ROOT / "sample_data"
SAMPLE_CONFIG = SAMPLE_DATA / "qmskpi.toml"


@pytest.fixture
def sample_config_path() -> Path:
    """The committed sample configuration (3 sites x 36 months ending 2026-10)."""
    return SAMPLE_CONFIG


@contextmanager
def mounted_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real small tmpfs at ``where`` (a full disk on demand); skips the test unless root."""
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP receiver on 127.0.0.1 that records JSON POSTs."""
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(
                {
                    "path": self.path,
                    "content_type": self.headers["Content-Type"],
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/qmskpi", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
