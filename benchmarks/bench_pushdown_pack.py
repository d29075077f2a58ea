"""Issue 19 item 3: a month's data phase with inspections in PostgreSQL, pulled vs pushed down.

Usage (``QMSKPI_TEST_PG_URL`` names the server; ``with-postgres`` starts a throwaway one)::

    .venv/bin/qmskpi sample --format parquet --scale 450 --end-month 2026-10 --out /tmp/s450
    scripts/system-deps with-postgres .venv/bin/python benchmarks/bench_pushdown_pack.py \\
        --data /tmp/s450 --json pushdown-pack.json

What it does:

1. **Load**: ``inspections.parquet`` of a ``qmskpi sample`` folder is copied into a
   PostgreSQL table (``COPY ... FROM STDIN`` in CSV chunks; ``--reuse-table`` skips it when
   the table already holds that many rows); the copy is checked (row count and the non-null
   count of every column equal the Parquet file's).
2. **Two runs of the same data phase, each in a fresh process**: ``pipeline.prepare(cfg,
   "2026-10", "all")`` (load, validate, KPIs, the review model; no notebook or browser) with
   every dataset from the folder's Parquet files except inspections, a SQL source on the table:
   **pull** (rows fetched, validated and computed in polars) and **pushdown** (the same source
   with ``pushdown = true``: GX validation and the first aggregation level in PostgreSQL).
   The two ``prepared.kpis`` tables must be equal (asserted).

Measured per run: wall seconds of ``prepare`` (imports excluded) and of the whole process;
bytes received from and sent to the database, counted by a TCP proxy on 127.0.0.1 in this
(driver) process in front of the server's socket: the run's connection URL points at the proxy,
so every byte of every connection (SQLAlchemy and GX's own engine) is counted, protocol
overhead included; peak RSS of the process (its ``ru_maxrss``); rows the database returned
(pull: every row of the query; pushdown: aggregate rows + failing keys). A run over
``--timeout`` seconds or ``--max-rss-gb`` is stopped, and how far it got is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import psutil

PERIOD = "2026-10"
TABLE = "bench_inspections"
COLUMNS = {
    "inspection_id": "text",
    "inspection_date": "date",
    "site": "text",
    "product": "text",
    "stage": "text",
    "lot_id": "text",
    "qty_inspected": "bigint",
    "qty_defective": "bigint",
    "defect_code": "text",
    "result": "text",
    "cost": "double precision",
}
QUERIES = {
    "all": f"SELECT * FROM {TABLE} WHERE inspection_date <= :period_end",
    "window": f"SELECT * FROM {TABLE} WHERE inspection_date BETWEEN :period_start AND :period_end",
}
URL_ENV = "QMSKPI_BENCH_PG_URL"


# --------------------------------------------------------------------------- the table


def load_table(pg_url: str, parquet: Path, *, reuse: bool) -> int:
    """Copy the inspections into ``TABLE``; returns the row count. Checked against the file."""
    import polars as pl
    import sqlalchemy as sa

    frame = pl.read_parquet(parquet, columns=list(COLUMNS))
    engine = sa.create_engine(pg_url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"SELECT to_regclass('{TABLE}') IS NOT NULL")
        exists = cur.fetchone()[0]
        if not (reuse and exists and _count(cur, "*") == frame.height):
            t0 = time.perf_counter()
            cols = ", ".join(f"{c} {t}" for c, t in COLUMNS.items())
            cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
            cur.execute(f"CREATE TABLE {TABLE} ({cols})")
            with cur.copy(f"COPY {TABLE} FROM STDIN WITH (FORMAT csv)") as copy:
                for chunk in frame.iter_slices(500_000):
                    buf = io.BytesIO()
                    # an empty string is written quoted, a null as nothing: PostgreSQL's CSV rule
                    chunk.write_csv(buf, include_header=False)
                    copy.write(buf.getbuffer())
            cur.execute(f"ANALYZE {TABLE}")
            raw.commit()
            print(f"loaded {frame.height:,} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        names = ["*", *COLUMNS]
        cur.execute(f"SELECT {', '.join(f'count({c})' for c in names)} FROM {TABLE}")
        for col, got in zip(names, cur.fetchone(), strict=True):
            want = frame.height - (0 if col == "*" else frame[col].null_count())
            if got != want:
                raise SystemExit(f"{TABLE}: count({col}) is {got:,}, the file has {want:,}")
    finally:
        raw.close()
        engine.dispose()
    return frame.height


def _count(cur: Any, col: str) -> int:
    cur.execute(f"SELECT count({col}) FROM {TABLE}")
    return int(cur.fetchone()[0])


# --------------------------------------------------------------------------- bytes


class CountingProxy:
    """127.0.0.1:PORT -> the server's unix socket, counting the bytes of every connection."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.down = 0  # from the database
        self.up = 0  # to the database
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.down = self.up = self.connections = 0

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(self.target)
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while data := src.recv(1 << 18):
                dst.sendall(data)
                with self._lock:
                    if down:
                        self.down += len(data)
                    else:
                        self.up += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._listener.close()


def unix_socket(pg_url: str) -> tuple[str, Any]:
    """The server's socket file and the TCP URL (user, database) that reaches it via the proxy."""
    import sqlalchemy as sa

    url = sa.make_url(pg_url)
    host = url.query.get("host")
    if not isinstance(host, str) or not host.startswith("/"):
        raise SystemExit(f"expected a unix-socket URL (?host=/dir), got {pg_url}")
    tcp = url.set(host="127.0.0.1", query={"sslmode": "disable"})
    return f"{host}/.s.PGSQL.{url.port or 5432}", tcp


# --------------------------------------------------------------------------- one run


def child(mode: str, data: Path, query: str, out: Path) -> None:
    """One data phase in this (fresh) process: its KPIs to ``out``, its measures beside it."""
    from qmskpi import pipeline
    from qmskpi.config import from_dict

    raw = tomllib.loads((data / "qmskpi.toml").read_text("utf-8"))
    raw["databases"] = {"bench": {"url_env": URL_ENV}}
    raw["sources"]["inspections"] = {
        "database": "bench",
        "query": query,
        "pushdown": mode == "pushdown",
        "zero_means_zero": True,
    }
    cfg = from_dict(raw, path=data / "qmskpi.toml")
    t0 = time.perf_counter()
    prepared = pipeline.prepare(cfg, PERIOD, "all")
    seconds = time.perf_counter() - t0
    prepared.kpis.write_parquet(out)
    ds = prepared.validation.datasets["inspections"]
    if mode == "pull":
        returned = f"{prepared.loaded['inspections'].rows_in:,} rows"
    else:
        agg = sum(a.frame.height for a in prepared.aggregates)
        returned = f"{agg:,} aggregate rows + {ds.rows_quarantined:,} failing keys"
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "prepare_s": seconds,
                "stages": dict(prepared.timings),
                "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "rows_in": ds.rows_in,
                "rows_quarantined": ds.rows_quarantined,
                "returned": returned,
            }
        ),
        "utf-8",
    )


def run(
    mode: str, args: argparse.Namespace, proxy: CountingProxy, tcp_url: str, out: Path
) -> dict[str, Any]:
    """Run ``child`` in a fresh process, watching its memory and time; bytes from the proxy."""
    cmd = [sys.executable, __file__, "--child", mode, "--data", str(args.data)]
    cmd += ["--query", args.query, "--out", str(out)]
    env = {**os.environ, URL_ENV: tcp_url}
    proxy.reset()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    ps = psutil.Process(proc.pid)
    peak, stopped = 0, ""
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        elapsed = time.perf_counter() - t0
        if elapsed > args.timeout or (args.until and time.time() > args.until):
            stopped = f"stopped after {elapsed:.0f} s (--timeout/--until)"
        elif peak > args.max_rss_gb * 2**30:
            stopped = f"stopped at {peak / 2**30:.1f} GiB RSS (--max-rss-gb)"
        elif psutil.virtual_memory().available < 1.5 * 2**30:
            stopped = "stopped: the machine had < 1.5 GB available"
        if stopped:
            proc.kill()
            break
        time.sleep(0.1)
    proc.wait()
    wall = time.perf_counter() - t0
    time.sleep(0.5)  # the proxy forwards the connections' last bytes (closed at exit)
    result: dict[str, Any] = {
        "mode": mode,
        "process_s": wall,
        "down": proxy.down,
        "up": proxy.up,
        "connections": proxy.connections,
        "sampled_peak_rss": peak,
        "load_before": load,
        "load_after": os.getloadavg()[0],
        "stopped": stopped,
    }
    if not stopped:
        if proc.returncode != 0:
            raise SystemExit(f"{mode} failed (exit {proc.returncode})")
        result.update(json.loads(out.with_suffix(".json").read_text("utf-8")))
    print(json.dumps(result), flush=True)
    return result


# --------------------------------------------------------------------------- report


def report(results: list[dict[str, Any]], rows: int, equal: str) -> None:
    print(f"\n{rows:,} inspections in PostgreSQL; period {PERIOD}, scope all; KPIs: {equal}")
    print("| run | prepare s | process s | received | sent | peak RSS | returned | stages s |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        if r["stopped"]:
            rss = f"{r['sampled_peak_rss'] / 2**30:.2f} GiB (sampled)"
            print(
                f"| {r['mode']} | {r['stopped']} | {r['process_s']:.0f} "
                f"| {r['down'] / 2**20:,.1f} MiB so far | {r['up'] / 2**20:,.2f} MiB | {rss} | | |"
            )
            continue
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
        print(
            f"| {r['mode']} | {r['prepare_s']:.1f} | {r['process_s']:.1f} "
            f"| {r['down'] / 2**20:,.1f} MiB | {r['up'] / 2**20:,.2f} MiB "
            f"| {r['max_rss'] / 2**30:.2f} GiB | {r['returned']} | {stages} |"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a `qmskpi sample` Parquet folder")
    ap.add_argument("--window", action="store_true", help="the query binds :period_start too")
    ap.add_argument("--modes", nargs="+", default=["pushdown", "pull"])
    ap.add_argument("--reuse-table", action="store_true")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    ap.add_argument("--until", type=float, help="stop every run by this Unix time too")
    ap.add_argument("--max-rss-gb", type=float, default=16.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", choices=["pull", "pushdown"], help=argparse.SUPPRESS)
    ap.add_argument("--query", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.data, args.query, args.out)
        return 0
    pg = os.environ.get("QMSKPI_TEST_PG_URL")
    if not pg:
        raise SystemExit("set QMSKPI_TEST_PG_URL (scripts/system-deps with-postgres ...)")
    args.data = args.data.resolve()
    args.query = QUERIES["window" if args.window else "all"]
    rows = load_table(pg, args.data / "inspections.parquet", reuse=args.reuse_table)
    target, tcp = unix_socket(pg)
    proxy = CountingProxy(target)
    tcp_url = tcp.set(port=proxy.port).render_as_string(hide_password=False)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes:
            results.append(run(mode, args, proxy, tcp_url, Path(tmp) / f"{mode}.parquet"))
        done = [Path(tmp) / f"{r['mode']}.parquet" for r in results if not r["stopped"]]
        equal = "one run only"
        if len(done) == 2:
            import polars as pl

            if not pl.read_parquet(done[0]).equals(pl.read_parquet(done[1])):
                raise SystemExit("pull and pushdown KPI tables differ")
            equal = "equal (pull vs pushdown)"
    proxy.close()
    report(results, rows, equal)
    if args.json:
        meta = {
            "rows": rows,
            "query": args.query,
            "kpis": equal,
            "python": platform.python_version(),
        }
        args.json.write_text(json.dumps({**meta, "runs": results}, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
