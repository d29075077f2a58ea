"""Every shell, Python and TOML block of the README and docs/ runs as written.

A block runs unless the line before it says otherwise, in the markdown itself:

- ``<!-- doc-test: skip: REASON -->`` it must not run here (cron, systemd, a full render);
  it is still checked for syntax (``bash -n``, ``compile``);
- ``<!-- doc-test: parse-only: REASON -->`` every ``qmskpi ...`` line is parsed by the CLI's
  own argument parser (options and sub-commands cannot drift), the block by ``bash -n``;
- ``<!-- doc-test: exits N -->`` a shell block that runs and ends with exit status N;
- ``<!-- doc-test: given NAME, ... -->`` a Python block that continues from names a page
  introduces in prose: ``GIVEN`` below builds them from the sample data;
- ``<!-- example: PATH -->`` the block is a file the page's other blocks read.

Where it runs: a page with ``example`` files runs in an empty folder holding them; the
README in a folder holding a copy of ``sample_data/`` (it speaks from the project root);
any other page inside a copy of ``sample_data/`` (it speaks of ``qmskpi.toml``). The Python
blocks of each page share one namespace, in order; all pages run in one interpreter, which
builds each ``GIVEN`` name once. TOML blocks (complete or fragments) must be accepted by
``qmskpi.config``. Blocks tagged ``text`` or untagged are output and layout: not run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLE_DATA
from qmskpi import cli, config

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGS = {"bash", "sh", "console", "python", "toml"}
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
_MARK = re.compile(r"<!-- (doc-test|example): (.*?) -->")

GIVEN = {
    "cfg": 'import os; from qmskpi import config as _c; cfg = _c.load_config(os.path.abspath("qmskpi.toml"))',
    "report": (
        "from qmskpi import contracts as _k, sources as _s\n"
        'report = _k.validate(_s.load_all(cfg, period="2026-10"), period="2026-10", config=cfg)'
    ),
    "validation": "validation = report",
    "data": "data = report.clean",
    "frame": "frame = report.quarantine",
    "text": 'text = "**Late** deliveries <script>alert(1)</script>"',
}
"""What a page's prose introduces, built from the sample data (each needs the ones above it)."""

# README's example is the first thing a user runs: its result is checked, not only its exit.
CHECKS = {
    ("README.md", 0): "assert kpis.height > 0 and report.unsound_datasets == frozenset()",
}


@dataclasses.dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    mark: str  # "run", "skip", "parse-only", "given", "exits", "example"
    arg: str  # the reason, the given names, the exit status or the example's path

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for m in _BLOCK.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.fullmatch(before.strip())
        kind, arg = ("run", "") if mark is None else mark.groups()
        if kind == "doc-test":
            kind, _, arg = arg.partition(":")
            kind, arg = kind.strip(), arg.strip()
            if kind.startswith(("given ", "exits ")):
                kind, arg = kind.split(" ", 1)
        line = text.count("\n", 0, m.start()) + 1
        found.append(Block(page, line, m.group(1), m.group(2), kind, arg))
    return found


ALL = [b for page in PAGES for b in blocks(page)]


def _workdir(page: Path, tmp: Path) -> Path:
    """A fresh folder for one page: see the module docstring."""
    examples = [b for b in ALL if b.page == page and b.mark == "example"]
    if examples:
        tmp.mkdir(parents=True)
        encodings = {}
        for b in examples:
            if b.lang == "toml":
                for src in tomllib.loads(b.code).get("sources", {}).values():
                    encodings[src.get("path")] = src.get("encoding", "utf-8")
        for b in examples:
            target = tmp / b.arg
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(b.code, encoding=encodings.get(b.arg, "utf-8"))
        return tmp
    if page.name == "README.md":
        shutil.copytree(SAMPLE_DATA, tmp / "sample_data", ignore=shutil.ignore_patterns("reports"))
        return tmp
    shutil.copytree(SAMPLE_DATA, tmp, ignore=shutil.ignore_patterns("reports"))
    return tmp


def _shell_lines(block: Block) -> str:
    if block.lang != "console":
        return block.code
    return "\n".join(ln[2:] for ln in block.code.splitlines() if ln.startswith("$ "))


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "TZ": "UTC"}


def test_every_block_is_known() -> None:
    """A block either runs or says why not; an unknown marker or a bare skip fails."""
    assert len([b for b in ALL if b.lang in RUN_LANGS]) > 30  # the parser finds the blocks
    for b in ALL:
        assert b.mark in {"run", "skip", "parse-only", "given", "exits", "example"}, b.where
        if b.mark in {"skip", "parse-only"}:
            assert len(b.arg) > 15, f"{b.where}: say why the block does not run"
        if b.mark == "given":
            names = [n.strip() for n in b.arg.split(",")]
            assert set(names) <= GIVEN.keys(), (b.where, names)


@pytest.mark.parametrize(
    "block",
    [b for b in ALL if b.lang in {"bash", "sh", "console"}],
    ids=lambda b: b.where,
)
def test_shell_block(block: Block, tmp_path: Path) -> None:
    code = _shell_lines(block)
    syntax = subprocess.run(["bash", "-n"], input=code, capture_output=True, text=True)
    assert syntax.returncode == 0, f"{block.where}: {syntax.stderr}"
    if block.mark == "skip":
        return
    if block.mark == "parse-only":
        parser = cli.build_parser()
        for line in code.splitlines():
            argv = shlex.split(line, comments=True)
            if argv[:1] == ["qmskpi"]:
                try:
                    parser.parse_args(argv[1:])
                except SystemExit:
                    pytest.fail(f"{block.where}: qmskpi does not accept {line!r}")
        return
    cwd = _workdir(block.page, tmp_path / "work")
    done = subprocess.run(
        ["bash", "-e", "-c", code],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    expected = int(block.arg) if block.mark == "exits" else 0
    assert done.returncode == expected, f"{block.where}:\n{done.stdout}\n{done.stderr}"


_TABLES = set(config.ConfigFile.model_fields)  # the top-level tables of qmskpi.toml


def _toml_as_config(text: str, base: Path) -> config.Config:
    """A TOML block as ``qmskpi.config`` reads it; a fragment gets the least it needs to stand
    alone: keys of one source go under ``[sources.complaints]``, an organisation, a path."""
    data = tomllib.loads(text)
    if not data.keys() & _TABLES:
        data = {"sources": {"complaints": data}}
    data.setdefault("organisation", {"name": "Doc example"})
    data.setdefault("sources", {"complaints": {}})
    for name, src in data.get("sources", {}).items():
        if "path" not in src and "database" not in src:
            src["path"] = f"{name}.csv"
    return config.from_dict(data, path=base / "qmskpi.toml")


@pytest.mark.parametrize("block", [b for b in ALL if b.lang == "toml"], ids=lambda b: b.where)
def test_toml_block_is_a_valid_config(block: Block, tmp_path: Path) -> None:
    assert block.mark in {"run", "example"}, f"{block.where}: a TOML block is always checked"
    _toml_as_config(block.code, tmp_path)


_DRIVER = """
import json, os, sys, traceback
pages, given = json.load(sys.stdin)
cache = {}
failed = 0
for page in pages:
    os.chdir(page["cwd"])
    ns = {"__name__": "__doc__"}
    for block in page["blocks"]:
        try:
            names = list(given)
            upto = max((names.index(n) for n in block["given"]), default=-1)
            for name in names[: upto + 1]:
                if name not in cache:
                    exec(given[name], cache)
            ns.update({n: cache[n] for n in block["given"] if n not in ns})
            exec(compile(block["code"], block["where"], "exec"), ns)
        except BaseException:
            failed += 1
            print(f"--- {block['where']} failed:", file=sys.stderr)
            traceback.print_exc()
            break  # the page's later blocks build on this one
sys.exit(1 if failed else 0)
"""


def test_python_blocks_run(tmp_path: Path) -> None:
    """Every Python block, in order, per page (one interpreter: the sample is validated once)."""
    pages = []
    for i, page in enumerate(PAGES):
        todo = []
        for n, b in enumerate(b for b in ALL if b.page == page and b.lang == "python"):
            compile(b.code, b.where, "exec")  # skipped blocks too: at least valid Python
            if b.mark in {"run", "given"}:
                check = CHECKS.get((page.name, n), "")
                names = [x.strip() for x in b.arg.split(",")] if b.mark == "given" else []
                todo.append({"where": b.where, "code": b.code + "\n" + check, "given": names})
            else:
                assert b.mark == "skip", f"{b.where}: {b.mark} is for shell blocks"
        if todo:
            cwd = _workdir(page, tmp_path / f"page{i}")
            pages.append({"cwd": str(cwd), "blocks": todo})
    assert len(pages) >= 5
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps([pages, GIVEN]),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-6000:]


def test_docs_are_self_contained() -> None:
    """No page points at a document outside the repository (the design notes are not shipped)."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert "DESIGN" not in text, page.name
        for target in re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]+)?\)", text):
            assert (page.parent / target).is_file(), (page.name, target)


def test_report_paths_in_docs_are_the_folders_qmskpi_writes() -> None:
    """``reports/<period>/<scope>``: a scope folder is the site's slug (``York`` -> ``york``)."""
    from qmskpi import archive

    seen = 0
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for period, scope in re.findall(r"reports/(\d{4}(?:-\d\d|-Q\d)?)/([^/\s`'\"<>)]+)", text):
            seen += 1
            assert scope == archive.scope_slug(scope), f"{page.name}: reports/{period}/{scope}"
    assert seen > 5


def _qmskpi_argv(line: str) -> list[str]:
    """The arguments after the ``qmskpi`` program in a command line (``…/bin/qmskpi run …``)."""
    argv = shlex.split(line.split(">>")[0].split("&&")[-1], comments=True)
    at = next(i for i, a in enumerate(argv) if a.rsplit("/", 1)[-1] == "qmskpi")
    return argv[at + 1 :]


def test_scheduling_recipes_use_options_qmskpi_accepts() -> None:
    """docs/examples cannot run here (cron, systemd, Airflow): their qmskpi lines are parsed
    by the CLI's own parser and the DAG is compiled."""
    examples = ROOT / "docs" / "examples"
    crontab = [ln for ln in (examples / "crontab").read_text().splitlines() if "bin/qmskpi" in ln]
    service = [
        ln.removeprefix("ExecStart=")
        for ln in (examples / "qmskpi-run.service").read_text().splitlines()
        if ln.startswith("ExecStart=")
    ]
    assert crontab
    assert service
    for line in crontab + service:
        args = cli.build_parser().parse_args(_qmskpi_argv(line))
        assert args.command == "run", line
    compile((examples / "airflow_qmskpi_dag.py").read_text(), "airflow_qmskpi_dag.py", "exec")
