"""The ``qmskpi`` command: sample, validate, contracts, render, run, scopes, demo, minutes, notebooks,
verify, schema.

Exit codes (for cron, systemd, Airflow), the same in ``validate``, ``render``,
``run`` and ``minutes`` (:data:`qmskpi.errors.EXIT_CODES`): 0 success; 1 a pack
(or the minutes) failed to render or publish; 2 bad command line; 3 config or
source error (a filled minutes template that fails its checks included); 4 data
broke an ``error`` rule (``--strict``: or a warning; packs still publish); 5 a
configured dataset has no usable rows (packs publish with a warning on page 1);
6 ``verify`` found an altered, missing or added file or a broken chain;
130 interrupted.

On a terminal, ``validate``, ``render`` and ``run`` show a live progress line
on stderr (rich: the stage events of :mod:`qmskpi.progress`) and log at info
level; when stderr is not a terminal (cron, systemd, Airflow) neither shows:
only warnings and errors, as before (``-v`` logs everything anywhere, ``-q``
hides progress and info). Results go to stdout, plain when piped.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from qmskpi import __version__
from qmskpi.errors import (
    EXIT_ALTERED,
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    QmsKpiError,
    exit_code_for_error,
)

log = logging.getLogger("qmskpi")

DEFAULT_CONFIG = "qmskpi.toml"  # qmskpi.config.DEFAULT_CONFIG (kept light: no config import)


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Piped output (cron mail, CI logs) gets a wide fixed width so no name is cut.
    width = None if stream.isatty() else 160
    return Console(file=stream, highlight=False, soft_wrap=True, width=width)


_STDERR: list[Console] = []


def _stderr_console() -> Console:
    """The one stderr console of a terminal session: log lines and the progress display share it."""
    if not _STDERR or _STDERR[0].file is not sys.stderr:
        _STDERR[:] = [_console(stderr=True)]
    return _STDERR[0]


@contextlib.contextmanager
def _progress(args: argparse.Namespace) -> Iterator[None]:
    """Show the run's stage events on a terminal (stderr), cleared when done.

    Stage, period and scope, pack i of N, rows read, elapsed time. Nothing when
    stderr is not a terminal (cron, systemd, Airflow: the output is unchanged)
    or with ``-q``.
    """
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        yield
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from qmskpi import progress

    tracker = progress.Tracker()
    display = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        TimeElapsedColumn(),
        console=_stderr_console(),
        transient=True,
    )
    task = display.add_task("starting", total=None)

    def show(event: progress.Event) -> None:
        s = tracker.update(event)
        finished = s.index if s.stage == "done" else max(s.index - 1, 0)
        # refresh=True: every stage is drawn, however quickly the next one follows
        display.update(
            task,
            description=s.describe(),
            total=s.total or None,
            completed=finished,
            refresh=True,
        )

    with display, progress.listening(show):
        yield


def _setup_logging(verbose: bool, quiet: bool) -> None:
    # On a terminal, progress shows; under cron, systemd or Airflow only warnings
    # and errors do (cron mails any output), unless -v asks for more.
    interactive = sys.stderr.isatty()
    if verbose:
        level = logging.DEBUG
    elif quiet or not interactive:
        level = logging.WARNING
    else:
        level = logging.INFO
    handler: logging.Handler
    if interactive:
        handler = RichHandler(console=_stderr_console(), show_path=False, markup=False)
        fmt = "%(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger("qmskpi")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _config_path(arg: str | None) -> Path:
    from qmskpi.config import config_path

    return config_path(arg)


# --------------------------------------------------------------------------- commands


def cmd_sample(args: argparse.Namespace) -> int:
    from qmskpi import synthetic
    from qmskpi.periods import last_complete

    # `sample` then `render`/`run` for the last month works on any day.
    end_month = args.end_month or last_complete(args.as_of or date.today(), "month").label
    spec = synthetic.SyntheticSpec(
        seed=args.seed,
        sites=args.sites,
        months=args.months,
        end_month=end_month,
        scale=args.scale,
    )
    paths = synthetic.sample(Path(args.out), spec, format=args.format)
    out = _console()
    for p in paths:
        out.print(str(p))
    log.info("wrote %d files to %s", len(paths), args.out)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from qmskpi import contracts, pipeline, progress, sources
    from qmskpi.config import load_config
    from qmskpi.periods import last_complete, parse_period

    cfg = load_config(_config_path(args.config))
    as_of = args.as_of or cfg.review.as_of or date.today()
    period = (
        parse_period(args.period) if args.period else last_complete(as_of, cfg.review.granularity)
    )
    with _progress(args):
        progress.emit("load", period=period.label, rows=0)
        # the pushed-down sources are not read (qmskpi.pushdown, SQLAlchemy, only for them)
        pushed_names = [n for n, s in cfg.sources.items() if s.pushdown]
        loaded = sources.load_all(cfg, period=period, skip=pushed_names)
        pushed = pipeline.push_inputs(
            cfg, period, as_of=as_of, loaded=loaded, backfill=args.as_of is not None
        )
        progress.emit("validate", period=period.label)
        report = contracts.validate(
            loaded,
            period=period,
            config=cfg,
            as_of=as_of,
            backfill=args.as_of is not None,
            engine=args.engine,
            in_database={n: (x.validation, x.origin) for n, x in pushed.items()},
        )
    if args.json:
        sys.stdout.write(report.to_json())
        sys.stdout.write("\n")
    else:
        table = Table(title=f"Validation of {cfg.organisation} for {period.label}")
        for col in (
            "dataset",
            "rows in",
            "used",
            "quarantined",
            "excluded",
            "errors failed",
            "warnings failed",
        ):
            table.add_column(col, justify="left" if col == "dataset" else "right")
        for d in report.datasets.values():
            excluded = ", ".join(f"{n} {rule}" for rule, n in sorted(d.excluded_by.items()))
            table.add_row(
                d.dataset,
                str(d.rows_in),
                str(d.rows_used),
                str(d.rows_quarantined),
                excluded or "0",
                str(d.errors_failed),
                str(d.warnings_failed),
            )
        out = _console()
        out.print(table)
        for ds in report.datasets.values():
            for rule in ds.rules:
                if not rule.success:
                    out.print(
                        f"{ds.dataset}: [{rule.severity}] {rule.rule_id}: "
                        f"{rule.unexpected_count} row(s) - {rule.description}",
                        markup=False,
                    )
    return pipeline.validation_exit_code(report.to_dict(), strict=args.strict)


def cmd_contracts_export(args: argparse.Namespace) -> int:
    from qmskpi import contracts
    from qmskpi.config import Config, load_config
    from qmskpi.periods import last_complete, parse_period

    path = _config_path(args.config)
    # No config given and none here: the shipped contracts, with no sites configured.
    cfg: Config | None = load_config(path) if args.config or path.is_file() else None
    as_of = args.as_of or (cfg.review.as_of if cfg is not None else None) or date.today()
    granularity = cfg.review.granularity if cfg is not None else "month"
    period = parse_period(args.period) if args.period else last_complete(as_of, granularity)
    suites = contracts.build_suites(period=period, as_of=as_of, config=cfg)
    paths = contracts.export_suites(Path(args.dir), suites)
    out = _console()
    for p in paths:
        out.print(str(p), markup=False)
    for name, suite in suites.items():
        for item in suite.meta["qmskpi"]["not_expressed"]:
            out.print(
                f"{name}: rule {item['rule_id']} is not in the GX suite: {item['why']}",
                markup=False,
            )
    log.info("wrote %d suites for %s (as of %s) to %s", len(paths), period.label, as_of, args.dir)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from qmskpi import pipeline

    cfg = pipeline.as_config(_config_path(args.config))
    if args.output:
        cfg = cfg.with_reports_dir(Path(args.output))
    scope = args.site or "all"
    with _progress(args):
        outcome = pipeline.run_review(
            cfg,
            args.period,
            scope,
            as_of=args.as_of,
            force=args.force,
            pdf="off" if args.no_pdf else None,
        )
    _print_outcomes([outcome])
    return pipeline.exit_code([outcome])


def cmd_run(args: argparse.Namespace) -> int:
    from qmskpi import pipeline

    # Both --notify-cmd and --notify-url are called when both are given.
    targets = [t for t in (args.notify_cmd, args.notify_url) if t]
    cfg = None
    try:
        cfg = pipeline.as_config(_config_path(args.config))
        if args.output:
            cfg = cfg.with_reports_dir(Path(args.output))
        with _progress(args):
            outcomes = pipeline.run_scheduled(
                cfg,
                as_of=args.as_of,
                since=args.since,
                force=args.force,
                jobs=args.jobs,
                executor=args.executor,
                scheduler=args.scheduler,
                scopes=args.scope,
            )
    except QmsKpiError as exc:  # config or usage: never silent under a scheduler
        org = cfg.organisation if cfg is not None else ""
        for target in targets:
            pipeline.notify_error(target, exc, organisation=org)
        raise
    if any(o.status == "failed" for o in outcomes):
        for target in targets:
            pipeline.notify_failure(target, outcomes, organisation=cfg.organisation)
    _print_outcomes(outcomes)
    return pipeline.exit_code(outcomes)


def cmd_scopes(args: argparse.Namespace) -> int:
    from qmskpi import pipeline

    scopes = pipeline.as_config(_config_path(args.config)).scopes
    text = json.dumps(list(scopes), ensure_ascii=False) if args.json else "\n".join(scopes)
    sys.stdout.write(text + "\n")  # plain: a scheduler parses it
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from qmskpi import pipeline, synthetic
    from qmskpi.config import PdfPolicy

    config_path = Path("sample_data") / "qmskpi.toml"
    if not config_path.is_file():
        target = Path(args.data)
        log.info("no ./sample_data here: generating the sample data set into %s", target)
        synthetic.sample(target)
        config_path = target / "qmskpi.toml"
    cfg = pipeline.as_config(config_path)
    cfg = cfg.with_reports_dir(Path(args.output))
    # The demo shows the pack even where no browser can be had: HTML, exports, and why no PDF.
    pdf: PdfPolicy = "off" if cfg.outputs.pdf == "off" else "optional"
    outcome = pipeline.run_review(cfg, args.period, "all", force=True, pdf=pdf)
    _print_outcomes([outcome])
    return pipeline.exit_code([outcome])


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of ``qmskpi.toml`` or of a data contract (for editors)."""
    if args.kind == "config":
        from qmskpi.config import config_json_schema

        schema = config_json_schema()
    else:
        from qmskpi.contracts.loader import contract_json_schema

        schema = contract_json_schema()
    sys.stdout.write(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    return 0


def cmd_minutes(args: argparse.Namespace) -> int:
    from qmskpi import pipeline
    from qmskpi.errors import RenderError

    cfg = pipeline.as_config(_config_path(args.config))
    if args.output:
        cfg = cfg.with_reports_dir(Path(args.output))
    try:
        outcome = pipeline.publish_minutes(
            cfg,
            args.period,
            args.site or "all",
            Path(args.from_file),
            pdf=False if args.no_pdf else None,
        )
    except RenderError as exc:
        _console(stderr=True).print(f"qmskpi: minutes not published: {exc}", markup=False)
        return 1
    state = "approved" if outcome.approved else "draft"
    line = (
        f"{outcome.status:9} {outcome.period} {outcome.scope}  minutes v{outcome.version} "
        f"({state})  {outcome.path}"
    )
    if outcome.changes:
        line += f"  {outcome.changes} change(s) from the previous version"
    if outcome.actions_registered:
        line += f"  {outcome.actions_registered} action(s) added to the register"
    _console().print(line, markup=False)
    return 0


def cmd_notebooks(args: argparse.Namespace) -> int:
    from qmskpi import render
    from qmskpi.errors import RenderError

    try:
        copied = render.copy_notebooks(Path(args.out), force=args.force)
    except RenderError as exc:
        _console(stderr=True).print(f"qmskpi: error: {exc}", markup=False)
        return EXIT_USAGE
    out = _console()
    for status, path in copied:
        out.print(f"{status:9} {path}", markup=False)
    out.print(
        "config_path in each notebook defaults to $QMSKPI_CONFIG, then ./qmskpi.toml "
        f"(the folder JupyterLab runs it in): e.g. QMSKPI_CONFIG=/path/to/qmskpi.toml "
        f"jupyter lab {args.out}",
        markup=False,
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from qmskpi import archive

    path = Path(args.path)
    if (path / archive.MANIFEST).is_file() and not (path / archive.CHAIN_DIR).is_dir():
        checks: list[archive.FolderCheck] = [archive.verify_folder(path.resolve())]
        problems = [p for c in checks for p in c.problems()]
        checked = 1
    elif (path / archive.CHAIN_DIR).is_dir() or (path / archive.INDEX).is_file():
        key = Path(args.public_key).read_bytes() if args.public_key else None
        report = archive.Archive(path).verify(args.scope, public_key_pem=key)
        problems = report.problems()
        checked = len(report.folders)
        if not report.folders and not any(report.chains.values()):
            _console(stderr=True).print(f"qmskpi: error: {path}: nothing published to verify")
            return EXIT_USAGE
    else:
        _console(stderr=True).print(
            f"qmskpi: error: {path}: neither a pack or minutes folder (no {archive.MANIFEST}) "
            "nor a reports folder",
            markup=False,
        )
        return EXIT_USAGE
    out = _console()
    for problem in problems:
        out.print(f"ALTERED  {problem}", markup=False)
    if problems:
        return EXIT_ALTERED
    out.print(f"intact   {checked} folder(s) match their manifests; chains unbroken", markup=False)
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from qmskpi import archive

    path = Path(args.path)
    if not (path / archive.CHAIN_DIR).is_dir():
        raise QmsKpiError(f"{path}: not a reports folder (no {archive.CHAIN_DIR}/)")
    arch = archive.Archive(path)
    slugs = (
        [archive.scope_slug(args.scope)]
        if args.scope
        else sorted(p.name for p in (arch.root / archive.CHAIN_DIR).iterdir() if p.is_dir())
    )
    key = Path(args.key).read_bytes()
    out = _console()
    for slug in slugs:
        written = arch.sign_chain(slug, key)
        out.print(f"signed   {slug}: {len(written)} manifest(s)", markup=False)
    return 0


def _print_outcomes(outcomes: Sequence[object]) -> None:
    out = _console()
    for o in outcomes:
        status = getattr(o, "status", "?")
        period = getattr(o, "period", "?")
        scope = getattr(o, "scope", "?")
        where = getattr(o, "html_path", None) or getattr(o, "pack_dir", None) or ""
        line = f"{status:9} {period} {scope}"
        if where:
            line += f"  {where}"
        error = getattr(o, "error", None)
        if error:
            line += f"  {error}"
        empty = getattr(o, "empty_datasets", ())
        if empty:
            line += f"  NO USABLE ROWS: {', '.join(empty)}"
        unsound = getattr(o, "unsound_datasets", ())
        failed = [d for d in getattr(o, "failed_datasets", ()) if d not in unsound]
        if unsound:
            line += f"  error rules failed (figures struck out): {', '.join(unsound)}"
        if failed:
            line += f"  error rules failed (rows set aside): {', '.join(failed)}"
        out.print(line, markup=False)
    # Said once, however many packs lacked it.
    for reason in dict.fromkeys(getattr(o, "pdf_skipped", None) for o in outcomes):
        if reason:
            out.print(
                f"PDF skipped: {reason}. The HTML pack and every other file are published; "
                "the manifest records the missing PDF. Run again once a browser is there.",
                markup=False,
            )


# --------------------------------------------------------------------------- parser


_EXIT_HELP: dict[str, Any] = {
    "epilog": "exit codes (the same for validate, render, run, minutes and verify):\n"
    + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items()),
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


# Long by design: the whole command line in one place, subcommand after subcommand, as
# `qmskpi --help` lists it; each block is a flat list of add_argument calls with its help.
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qmskpi",
        description="ISO 9001 management-review input packs (clause 9.3) from quality records.",
        **_EXIT_HELP,
    )
    p.add_argument("--version", action="version", version=f"qmskpi {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("sample", help="write a synthetic data set (any scale) and its qmskpi.toml")
    s.add_argument("--out", default="sample_data", help="folder to write (default: sample_data)")
    s.add_argument("--seed", type=int, default=9001)
    s.add_argument("--sites", type=int, default=3)
    s.add_argument("--months", type=int, default=36)
    s.add_argument(
        "--end-month",
        help="last month of data, YYYY-MM (default: the last complete month as of --as-of)",
    )
    s.add_argument("--as-of", type=_date, help="today for --end-month (YYYY-MM-DD; default today)")
    s.add_argument("--scale", type=float, default=1.0, help="multiplies rows per month")
    s.add_argument("--format", choices=["csv", "parquet"], default="csv")
    s.set_defaults(func=cmd_sample)

    v = sub.add_parser(
        "validate", help="check every source against its data contract", **_EXIT_HELP
    )
    v.add_argument("--config", help=f"config file (default: $QMSKPI_CONFIG or {DEFAULT_CONFIG})")
    v.add_argument("--period", help="review period, e.g. 2026-10 (default: last complete)")
    v.add_argument("--as-of", type=_date, help="treat this date as today (YYYY-MM-DD)")
    v.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    v.add_argument("--strict", action="store_true", help="exit 1 on warnings")
    v.add_argument(
        "--engine",
        choices=["polars", "gx"],
        help="who judges the rules: polars (fast, no Great Expectations import) or gx (the "
        "contracts' Great Expectations suites); default: [contracts] engine, else polars",
    )
    v.set_defaults(func=cmd_validate)

    c = sub.add_parser("contracts", help="the data contracts as Great Expectations suites")
    csub = c.add_subparsers(dest="contracts_command", required=True, metavar="ACTION")
    ce = csub.add_parser(
        "export",
        help="write every contract as a Great Expectations 1.x suite (<dataset>.json)",
        description="Bounds such as as_of and freshness depend on the run, so a suite is "
        "written for one period and as-of date. Rules GX cannot express (references across "
        "datasets; values: sites with no sites configured) are listed, and named in each "
        "suite's meta.qmskpi.not_expressed.",
    )
    ce.add_argument("dir", help="folder to write the suites to")
    ce.add_argument(
        "--config",
        help=f"config file (default: $QMSKPI_CONFIG or {DEFAULT_CONFIG} if present, else "
        "the shipped contracts)",
    )
    ce.add_argument("--period", help="review period, e.g. 2026-10 (default: last complete)")
    ce.add_argument("--as-of", type=_date, help="the as-of date of the suites (YYYY-MM-DD)")
    ce.set_defaults(func=cmd_contracts_export)

    r = sub.add_parser(
        "render", help="render the management-review pack for one period and scope", **_EXIT_HELP
    )
    r.add_argument("--period", required=True, help="2026-10 (month), 2026-Q3 or 2026")
    r.add_argument("--site", help="one site (default: the whole organisation)")
    r.add_argument("--config", help=f"config file (default: $QMSKPI_CONFIG or {DEFAULT_CONFIG})")
    r.add_argument("--output", help="reports folder (default: outputs.reports_dir of the config)")
    r.add_argument("--force", action="store_true", help="render even if published with same inputs")
    r.add_argument("--no-pdf", action="store_true", help="HTML only")
    r.add_argument(
        "--as-of", type=_date, help="the data as known on this date (a backfill), YYYY-MM-DD"
    )
    r.set_defaults(func=cmd_render)

    u = sub.add_parser(
        "run", help="scheduled run: every scope, last complete period, catch-up", **_EXIT_HELP
    )
    u.add_argument("--config", help=f"config file (default: $QMSKPI_CONFIG or {DEFAULT_CONFIG})")
    u.add_argument("--output", help="reports folder (default: outputs.reports_dir of the config)")
    u.add_argument("--as-of", type=_date, help="treat this date as today (YYYY-MM-DD)")
    u.add_argument("--since", help="catch up every period from this one, e.g. 2026-07")
    u.add_argument("--force", action="store_true", help="re-render even if inputs are unchanged")
    u.add_argument(
        "--jobs", type=int, help="scopes rendered in parallel (default: [run] jobs, else 1)"
    )
    u.add_argument(
        "--executor",
        choices=("local", "dask"),
        help="local worker processes, or Dask distributed tasks (default: [run] executor)",
    )
    u.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786")
    u.add_argument(
        "--scope",
        action="append",
        help="only this scope ('all' or a site; repeat for more): one mapped task each",
    )
    u.add_argument(
        "--notify-cmd",
        help="command run on failure or a config/usage error (summary as JSON on stdin)",
    )
    u.add_argument(
        "--notify-url",
        help="webhook URL POSTed the summary as JSON (with --notify-cmd, both are called)",
    )
    u.set_defaults(func=cmd_run)

    c = sub.add_parser("scopes", help="the scopes a run renders (for a scheduler's task mapping)")
    c.add_argument("--config", help=f"config file (default: $QMSKPI_CONFIG or {DEFAULT_CONFIG})")
    c.add_argument("--json", action="store_true", help="one JSON list instead of one per line")
    c.set_defaults(func=cmd_scopes)

    d = sub.add_parser("demo", help="render the pack from the sample data, no set-up needed")
    d.add_argument("--period", default="2026-10")
    d.add_argument("--output", default="reports", help="reports folder (default: ./reports)")
    d.add_argument(
        "--data",
        default="qmskpi-demo-data",
        help="where to generate sample data if ./sample_data is absent",
    )
    d.set_defaults(func=cmd_demo)

    j = sub.add_parser(
        "schema",
        help="print the JSON Schema of qmskpi.toml or of a data contract (for editors)",
    )
    j.add_argument("kind", choices=("config", "contract"))
    j.set_defaults(func=cmd_schema)

    m = sub.add_parser(
        "minutes", help="validate a filled minutes.xlsx and publish the minutes beside the pack"
    )
    m.add_argument("--period", required=True, help="period of the pack, e.g. 2026-10")
    m.add_argument("--site", help="scope of the pack (default: the whole organisation)")
    m.add_argument("--from", dest="from_file", required=True, help="the filled minutes.xlsx")
    m.add_argument("--config", help=f"config file (default: $QMSKPI_CONFIG or {DEFAULT_CONFIG})")
    m.add_argument("--output", help="reports folder (default: outputs.reports_dir of the config)")
    m.add_argument("--no-pdf", action="store_true", help="HTML only")
    m.set_defaults(func=cmd_minutes)

    n = sub.add_parser(
        "notebooks", help="copy the analyst notebooks (management review, deep dives) to a folder"
    )
    n.add_argument("--out", default="notebooks", help="folder to write (default: ./notebooks)")
    n.add_argument(
        "--force", action="store_true", help="replace copies that differ (your edits are lost)"
    )
    n.set_defaults(func=cmd_notebooks)

    f = sub.add_parser(
        "verify",
        help="recompute every hash of a pack, minutes or reports folder; check the chain "
        "(exit 6 when altered)",
    )
    f.add_argument("path", help="a pack folder, a minutes folder, or the reports folder")
    f.add_argument("--scope", help="with a reports folder: only this scope (default: every scope)")
    f.add_argument("--public-key", help="Ed25519 public key (PEM): also check the signatures")
    f.set_defaults(func=cmd_verify)

    g = sub.add_parser(
        "sign", help="sign the chain of manifests with the organisation's Ed25519 key (optional)"
    )
    g.add_argument("path", help="the reports folder")
    g.add_argument("--scope", help="only this scope (default: every scope)")
    g.add_argument("--key", required=True, help="Ed25519 private key (PEM, unencrypted)")
    g.set_defaults(func=cmd_sign)
    return p


def _notify_usage_error(argv: Sequence[str] | None, message: str) -> None:
    """A command line argparse refused still calls ``--notify-cmd``/``--notify-url`` if it has them."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--notify-cmd")
    pre.add_argument("--notify-url")
    heard = io.StringIO()
    try:
        with contextlib.redirect_stderr(heard):
            known, _ = pre.parse_known_args(list(argv) if argv is not None else sys.argv[1:])
    except SystemExit:
        return
    targets = [t for t in (known.notify_cmd, known.notify_url) if t]
    if not targets:
        return
    from qmskpi import pipeline

    lines = [ln for ln in message.strip().splitlines() if ln.strip()]
    error = QmsKpiError(lines[-1] if lines else "invalid command line")
    for target in targets:
        pipeline.notify_error(target, error, exit_code=EXIT_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    parser = build_parser()
    heard = io.StringIO()
    try:
        with contextlib.redirect_stderr(heard):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        sys.stderr.write(heard.getvalue())
        if exc.code == 2:
            _notify_usage_error(argv, heard.getvalue())
        raise
    sys.stderr.write(heard.getvalue())
    _setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args))
    except QmsKpiError as exc:
        _console(stderr=True).print(f"qmskpi: error: {exc}", markup=False)
        return exit_code_for_error(type(exc).__name__)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


__all__ = ["build_parser", "main"]

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
