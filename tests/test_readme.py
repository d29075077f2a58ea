"""The README's Python example runs as written, from the project root."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT


def test_readme_python_example_runs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "README has no Python example"
    code = blocks[0] + (
        "\nassert kpis.height > 0 and report.unsound_datasets == frozenset()"
        "\nassert prepared.kpis.height > 0 and len(repr(prepared)) < 300"
        "\nassert [t.name for t in figure.data][-1] == 'Complaint rate'\n"
    )
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_docs_are_self_contained() -> None:
    """No page points at a document outside the repository (the design notes are not shipped)."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        assert "DESIGN" not in text, page.name
        for target in re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]+)?\)", text):
            assert (page.parent / target).is_file(), (page.name, target)
