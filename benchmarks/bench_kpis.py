"""Benchmark: every KPI for every scope, polars (qmskpi.kpis) vs pandas vs DuckDB SQL.

The workload is what a monthly pack computes: ``compute_kpis`` for the review
month plus ``kpi_series`` for the 24 trailing months, scope ``all`` (the whole
organisation and every site). At ``--scale 1`` the generated data has 10M
inspections, 2M receipts and 500k complaints (plus shipments, surveys,
suppliers, CAPAs, audit findings and review actions), spread over 36 months
and 6 sites. The three implementations must agree on every value (asserted).

    .venv/bin/python benchmarks/bench_kpis.py --scale 0.1     # quick (~10 s)
    .venv/bin/python benchmarks/bench_kpis.py                  # full size (minutes)

Peak memory is the process RSS sampled every 5 ms by a psutil thread while
each implementation runs (the input frames are already in memory; the figure
shown is the rise above the RSS just before the run). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import psutil

from qmskpi import kpis
from qmskpi.config import KpiConfig
from qmskpi.periods import Period, parse_period, trailing_months

PERIOD = "2026-10"
FIRST_DAY = date(2023, 11, 1)  # 36 months ending 2026-10
LAST_DAY = date(2026, 10, 31)
SITES = ["Berlin", "Dublin", "Lyon", "Porto", "Torino", "Wroclaw"]
STAGES = ["incoming", "in_process", "final"]
FINDING_TYPES = ["major_nc", "minor_nc", "observation", "ofi"]
CFG = KpiConfig()

# --------------------------------------------------------------------------- data


def _strings(prefix: str, n: int) -> pl.Series:
    return pl.select(pl.format(prefix + "{}", pl.int_range(n, dtype=pl.Int64)).alias("x"))["x"]


def _choice(
    rng: np.random.Generator, labels: list[str], n: int, p: np.ndarray | None = None
) -> pl.Series:
    codes = rng.choice(len(labels), size=n, p=p).astype(np.uint32)
    return pl.Series(labels, dtype=pl.String).gather(codes)


def _dates(days: np.ndarray) -> pl.Series:
    return pl.Series((np.datetime64(FIRST_DAY, "D") + days.astype("timedelta64[D]")), dtype=pl.Date)


def generate(scale: float, seed: int = 9001) -> dict[str, pl.DataFrame]:
    """Canonical frames, vectorised with numpy (no Python loops over rows)."""
    rng = np.random.default_rng(seed)
    span = (LAST_DAY - FIRST_DAY).days + 1
    n_insp, n_rec, n_comp = int(10_000_000 * scale), int(2_000_000 * scale), int(500_000 * scale)
    n_surv, n_capa, n_find, n_act = (int(x * scale) for x in (100_000, 50_000, 20_000, 2_000))
    n_sup, n_prod, n_cust = 2_000, 40, 2_000
    products = [f"P{i:03d}" for i in range(n_prod)]
    codes = [f"D{i:02d}" for i in range(30)]
    code_p = 1 / np.arange(1, 31)
    code_p /= code_p.sum()

    qty = rng.integers(1, 500, n_insp)
    defective = np.where(rng.random(n_insp) < 0.07, rng.binomial(qty, 0.02) + 1, 0)
    defective = np.minimum(defective, qty)
    code = np.where(defective > 0, rng.choice(30, n_insp, p=code_p), -1)
    inspections = pl.DataFrame(
        {
            "inspection_id": _strings("I", n_insp),
            "inspection_date": _dates(rng.integers(0, span, n_insp)),
            "site": _choice(rng, SITES, n_insp),
            "product": _choice(rng, products, n_insp),
            "stage": _choice(rng, STAGES, n_insp, np.array([0.3, 0.4, 0.3])),
            "lot_id": pl.Series([None] * n_insp, dtype=pl.String),
            "qty_inspected": qty,
            "qty_defective": defective,
            "defect_code": pl.Series(code.astype(np.int64)).replace_strict(
                dict(enumerate(codes)), default=None, return_dtype=pl.String
            ),
            "result": pl.Series(np.where(defective > 0, "fail", "pass")).cast(pl.String),
        }
    )

    promised = rng.integers(0, span, n_rec)
    delay = np.clip(np.rint(rng.normal(-0.5, 3.0, n_rec)), -10, 30).astype(np.int64)
    received = np.clip(promised + delay, 0, span - 1)
    qty_r = rng.integers(1, 5000, n_rec)
    receipts = pl.DataFrame(
        {
            "receipt_id": _strings("R", n_rec),
            "supplier_id": _choice(rng, [f"SUP{i:04d}" for i in range(n_sup)], n_rec),
            "site": _choice(rng, SITES, n_rec),
            "promised_date": _dates(promised),
            "received_date": _dates(received),
            "qty_received": qty_r,
            "qty_rejected": np.minimum(rng.binomial(qty_r, 0.001), qty_r),
        }
    )

    rec_day = rng.integers(0, span, n_comp)
    to_close = np.rint(rng.lognormal(3.0, 0.7, n_comp)).astype(np.int64)
    closed_day = rec_day + to_close
    open_ = (closed_day >= span) | (rng.random(n_comp) < 0.01)
    closed = (
        _dates(np.where(open_, 0, closed_day))
        .to_frame("d")
        .select(pl.when(pl.Series(~open_)).then(pl.col("d")))["d"]
    )
    complaints = pl.DataFrame(
        {
            "complaint_id": _strings("C", n_comp),
            "received_date": _dates(rec_day),
            "closed_date": closed,
            "site": _choice(rng, SITES, n_comp),
            "customer": _choice(rng, [f"K{i:04d}" for i in range(n_cust)], n_comp),
            "product": _choice(rng, products, n_comp),
            "category": _choice(rng, [f"cat{i}" for i in range(10)], n_comp),
            "severity": _choice(rng, ["minor", "major", "critical"], n_comp),
            "status": pl.Series(np.where(open_, "open", "closed")).cast(pl.String),
            "description": pl.Series([None] * n_comp, dtype=pl.String),
            "root_cause": pl.Series([None] * n_comp, dtype=pl.String),
            "capa_id": pl.Series([None] * n_comp, dtype=pl.String),
            "units_affected": pl.Series([None] * n_comp, dtype=pl.Int64),
        }
    )

    months = [m.label for m in trailing_months(PERIOD, 36)]
    grid = pl.DataFrame({"site": SITES}).join(pl.DataFrame({"product": products}), how="cross")
    shipments = grid.join(pl.DataFrame({"month": months}), how="cross").with_columns(
        units_shipped=pl.Series(rng.integers(20_000, 80_000, grid.height * len(months)))
    )
    # Lyon ships nothing in one month: its complaint rate there is undefined (null) in all three.
    shipments = shipments.filter(~((pl.col("site") == "Lyon") & (pl.col("month") == "2025-06")))

    suppliers = pl.DataFrame(
        {
            "supplier_id": [f"SUP{i:04d}" for i in range(n_sup)],
            "name": [f"Supplier {i}" for i in range(n_sup)],
            "category": _choice(rng, ["castings", "plastics", "logistics"], n_sup),
            "critical": rng.random(n_sup) < 0.2,
            "approval_status": _choice(
                rng, ["approved", "conditional", "disapproved"], n_sup, np.array([0.8, 0.15, 0.05])
            ),
            "last_evaluation_date": _dates(rng.integers(0, span, n_sup)),
            "next_evaluation_due": _dates(rng.integers(0, span + 365, n_sup)),
        }
    )

    scale_max = rng.choice([5, 10], n_surv, p=[0.3, 0.7])
    surveys = pl.DataFrame(
        {
            "response_id": _strings("S", n_surv),
            "response_date": _dates(rng.integers(0, span, n_surv)),
            "site": _choice(rng, SITES, n_surv),
            "customer": _choice(rng, [f"K{i:04d}" for i in range(n_cust)], n_surv),
            "score": np.floor(rng.random(n_surv) * (scale_max + 1)).astype(np.float64),
            "scale_max": scale_max,
        }
    )

    opened = rng.integers(0, span, n_capa)
    capa_close = opened + rng.integers(5, 150, n_capa)
    capa_open = capa_close >= span
    capa = pl.DataFrame(
        {
            "capa_id": _strings("K", n_capa),
            "source": _choice(
                rng, ["complaint", "audit", "inspection", "supplier", "internal"], n_capa
            ),
            "site": _choice(rng, SITES, n_capa),
            "opened_date": _dates(opened),
            "due_date": _dates(opened + rng.integers(10, 90, n_capa)),
            "closed_date": _dates(np.where(capa_open, 0, capa_close))
            .to_frame("d")
            .select(pl.when(pl.Series(~capa_open)).then(pl.col("d")))["d"],
            "status": pl.Series(np.where(capa_open, "open", "closed")).cast(pl.String),
            "verified": rng.random(n_capa) < 0.8,
            "effective": rng.random(n_capa) < 0.85,
        }
    ).select(
        pl.exclude("verified", "effective"),
        effectiveness_verified=pl.when(
            pl.col("closed_date").is_not_null() & pl.col("verified")
        ).then(pl.col("effective")),
    )

    audited = rng.integers(0, span, n_find)
    f_close = audited + rng.integers(1, 150, n_find)
    f_open = f_close >= span
    has_due = rng.random(n_find) < 0.6
    audit_findings = pl.DataFrame(
        {
            "finding_id": _strings("F", n_find),
            "audit_id": _strings("A", n_find),
            "audit_date": _dates(audited),
            "site": _choice(rng, SITES, n_find),
            "clause": _choice(rng, ["7.1.5", "7.2", "8.4", "8.5.1", "10.2"], n_find),
            "type": _choice(rng, FINDING_TYPES, n_find),
            "status": pl.Series(np.where(f_open, "open", "closed")).cast(pl.String),
            "due_date": _dates(audited + 45)
            .to_frame("d")
            .select(pl.when(pl.Series(has_due)).then(pl.col("d")))["d"],
            "closed_date": _dates(np.where(f_open, 0, f_close))
            .to_frame("d")
            .select(pl.when(pl.Series(~f_open)).then(pl.col("d")))["d"],
        }
    )

    reviewed = rng.integers(0, span, n_act)
    a_close = reviewed + rng.integers(10, 200, n_act)
    a_open = a_close >= span
    review_actions = pl.DataFrame(
        {
            "action_id": _strings("M", n_act),
            "review_date": _dates(reviewed),
            "description": pl.Series(["follow up"] * n_act),
            "owner": _choice(rng, ["QM", "Ops", "HR", "CEO"], n_act),
            "due_date": _dates(reviewed + rng.integers(20, 120, n_act)),
            "status": pl.Series(np.where(a_open, "open", "closed")).cast(pl.String),
            "closed_date": _dates(np.where(a_open, 0, a_close))
            .to_frame("d")
            .select(pl.when(pl.Series(~a_open)).then(pl.col("d")))["d"],
        }
    )
    return {
        "complaints": complaints,
        "shipments": shipments,
        "suppliers": suppliers,
        "receipts": receipts,
        "inspections": inspections,
        "capa": capa,
        "audit_findings": audit_findings,
        "review_actions": review_actions,
        "surveys": surveys,
    }


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Window:
    """Contiguous buckets: the review period, or 24 trailing months."""

    periods: tuple[Period, ...]

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.periods]

    @property
    def start(self) -> date:
        return self.periods[0].start

    @property
    def end(self) -> date:
        return self.periods[-1].end

    @property
    def ends(self) -> list[date]:
        return [p.end for p in self.periods]

    @property
    def starts(self) -> list[date]:
        return [p.start for p in self.periods]


def windows() -> list[Window]:
    p = parse_period(PERIOD)
    return [Window((p,)), Window(tuple(trailing_months(p, 24)))]


COUNT_KPIS = {k for k, d in kpis.REGISTRY.items() if d.kind == "count"}
WHOLE_ONLY = {k for k, d in kpis.REGISTRY.items() if not d.per_site}

Result = dict[tuple[str, str, str], float | None]
"""(kpi, scope, period label) -> value."""


def run_polars(data: dict[str, pl.DataFrame]) -> Result:
    now = kpis.compute_kpis(data, PERIOD, "all", config=CFG)
    series = kpis.kpi_series(data, PERIOD, "all", months=24, config=CFG)
    out: Result = {}
    for frame, tag in ((now, "now"), (series, "series")):
        for kpi, scope, period, value in frame.select(
            "kpi", "scope", "period", "value"
        ).iter_rows():
            if scope == "all" or kpi not in WHOLE_ONLY:
                out[(kpi, scope, f"{tag}:{period}")] = value
    return out


# --------------------------------------------------------------------------- pandas


def _p_key(s: pd.Series, w: Window) -> np.ndarray:
    """Bucket index of each date, -1 outside the window."""
    starts = np.array(w.starts, dtype="datetime64[ns]")
    values = s.to_numpy(dtype="datetime64[ns]")
    key = np.searchsorted(starts, values, side="right") - 1
    outside = np.isnat(values) | (values < np.datetime64(w.start)) | (values > np.datetime64(w.end))
    key[outside] = -1
    return key


def _p_sums(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Sums of ``cols`` per (scope, key), site rows plus scope 'all'."""
    by_site = df.groupby(["key", "site"], observed=True)[cols].sum().reset_index()
    total = df.groupby("key")[cols].sum().reset_index().assign(site="all")
    return pd.concat([by_site, total]).rename(columns={"site": "scope"})


def _p_emit(
    out: Result, w: Window, tag: str, kpi: str, frame: pd.DataFrame, values: pd.Series
) -> None:
    for scope, key, v in zip(frame["scope"], frame["key"], values, strict=True):
        out[(kpi, scope, f"{tag}:{w.labels[int(key)]}")] = None if pd.isna(v) else float(v)


def _p_ratio(num: pd.Series, den: pd.Series, scale: float = 1.0) -> pd.Series:
    return (num / den * scale).where(den > 0)


def pandas_window(d: dict[str, pd.DataFrame], w: Window, tag: str) -> Result:
    out: Result = {}
    c = d["complaints"]
    target = CFG.complaint_close_target_days

    # complaints received + repeat flags (look back over all sites and before the window)
    keys = ["customer", "product", "category"]
    distinct = c[[*keys, "received_date"]].drop_duplicates().sort_values([*keys, "received_date"])
    distinct["prev"] = distinct.groupby(keys, observed=True)["received_date"].shift(1)
    distinct["repeat"] = (
        distinct["received_date"] - distinct["prev"]
    ).dt.days <= CFG.repeat_window_days
    rec = c.assign(key=_p_key(c["received_date"], w))
    rec = rec[rec["key"] >= 0].merge(
        distinct[[*keys, "received_date", "repeat"]], on=[*keys, "received_date"]
    )
    rec["one"] = 1
    rec["repeat"] = rec["repeat"].fillna(False).astype(int)
    r = _p_sums(rec, ["one", "repeat"])
    _p_emit(out, w, tag, "complaints_received", r, r["one"])
    _p_emit(out, w, tag, "complaints_repeat_share", r, _p_ratio(r["repeat"], r["one"]))

    s = d["shipments"]
    month_start = pd.to_datetime(s["month"] + "-01")
    ship = s.assign(key=_p_key(month_start, w))
    ship = _p_sums(ship[ship["key"] >= 0], ["units_shipped"])
    rate = r.merge(ship, on=["scope", "key"], how="outer")
    rate_ppm = _p_ratio(rate["one"].fillna(0), rate["units_shipped"].fillna(0), 1e6)
    _p_emit(out, w, tag, "complaint_rate_ppm", rate, rate_ppm)

    cl = c.assign(key=_p_key(c["closed_date"], w))
    cl = cl[cl["key"] >= 0].copy()
    cl["days"] = (cl["closed_date"] - cl["received_date"]).dt.days
    cl["one"] = 1
    cl["on_time"] = (cl["days"] <= target).astype(int)
    sums = _p_sums(cl, ["one", "on_time"])
    _p_emit(
        out, w, tag, "complaints_closed_on_time_share", sums, _p_ratio(sums["on_time"], sums["one"])
    )
    for q, kpi in ((0.5, "complaint_days_to_close_median"), (0.9, "complaint_days_to_close_p90")):
        by_site = cl.groupby(["key", "site"], observed=True)["days"].quantile(q).reset_index()
        total = cl.groupby("key")["days"].quantile(q).reset_index().assign(site="all")
        stat = pd.concat([by_site, total]).rename(columns={"site": "scope"})
        _p_emit(out, w, tag, kpi, stat, stat["days"])

    # open at each period end, with ageing
    ages = [
        ("complaints_open_age_0_30", 0, 30),
        ("complaints_open_age_31_60", 31, 60),
        ("complaints_open_age_61_90", 61, 90),
        ("complaints_open_age_over_90", 91, 10**9),
    ]
    rows = []
    for key, end in enumerate(w.ends):
        e = pd.Timestamp(end)
        o = c[(c["received_date"] <= e) & (c["closed_date"].isna() | (c["closed_date"] > e))]
        age = (e - o["received_date"]).dt.days
        part = pd.DataFrame({"site": o["site"], "open": 1})
        for name, lo, hi in ages:
            part[name] = ((age >= lo) & (age <= hi)).astype(int)
        rows.append(part.assign(key=key))
    op = _p_sums(pd.concat(rows), ["open"] + [a[0] for a in ages])
    _p_emit(out, w, tag, "complaints_open", op, op["open"])
    for name, *_ in ages:
        _p_emit(out, w, tag, name, op, op[name])

    sv = d["surveys"]
    sv = sv.assign(key=_p_key(sv["response_date"], w))
    sv = sv[(sv["key"] >= 0) & (sv["scale_max"] > 0)].copy()
    ten = sv["scale_max"] == 10
    sv["one"] = 1
    sv["norm"] = sv["score"] / sv["scale_max"]
    sv["ten"] = ten.astype(int)
    sv["net"] = (ten & (sv["score"] >= 9)).astype(int) - (ten & (sv["score"] <= 6)).astype(int)
    ss = _p_sums(sv, ["one", "norm", "ten", "net"])
    _p_emit(out, w, tag, "satisfaction_mean", ss, _p_ratio(ss["norm"], ss["one"]))
    _p_emit(out, w, tag, "nps", ss, _p_ratio(ss["net"], ss["ten"], 100.0))

    rc = d["receipts"]
    rc = rc.assign(key=_p_key(rc["received_date"], w))
    rc = rc[rc["key"] >= 0].copy()
    rc["one"] = 1
    tol = pd.Timedelta(days=CFG.supplier_otd_tolerance_days)
    rc["on_time"] = (rc["received_date"] <= rc["promised_date"] + tol).astype(int)
    rs = _p_sums(rc, ["one", "on_time", "qty_received", "qty_rejected"])
    _p_emit(out, w, tag, "supplier_otd_share", rs, _p_ratio(rs["on_time"], rs["one"]))
    _p_emit(out, w, tag, "supplier_ppm", rs, _p_ratio(rs["qty_rejected"], rs["qty_received"], 1e6))

    sup = d["suppliers"]
    for key, end in enumerate(w.ends):
        n = (
            (sup["approval_status"] == "approved")
            & (sup["next_evaluation_due"] < pd.Timestamp(end))
        ).sum()
        out[("supplier_evaluations_overdue", "all", f"{tag}:{w.labels[key]}")] = float(n)

    ins = d["inspections"]
    ins = ins.assign(key=_p_key(ins["inspection_date"], w))
    ins = ins[ins["key"] >= 0].copy()
    passed = ins["result"] == "pass"
    ins["one"] = 1
    ins["pass"] = passed.astype(int)
    cols = ["one", "pass", "qty_inspected", "qty_defective"]
    for stage in STAGES:
        at = ins["stage"] == stage
        ins[f"n_{stage}"] = at.astype(int)
        ins[f"p_{stage}"] = (at & passed).astype(int)
        cols += [f"n_{stage}", f"p_{stage}"]
    isum = _p_sums(ins, cols)
    _p_emit(out, w, tag, "fpy_share", isum, _p_ratio(isum["pass"], isum["one"]))
    rty = pd.Series(1.0, index=isum.index)
    for stage in STAGES:
        share = _p_ratio(isum[f"p_{stage}"], isum[f"n_{stage}"])
        _p_emit(out, w, tag, f"fpy_share_{stage}", isum, share)
        rty = rty * share.fillna(1.0)
    staged = sum(isum[f"n_{s}"] for s in STAGES) > 0
    _p_emit(
        out, w, tag, "defect_ppm", isum, _p_ratio(isum["qty_defective"], isum["qty_inspected"], 1e6)
    )
    _p_emit(out, w, tag, "rty_share", isum, rty.where(staged))

    k = d["capa"]
    ko = k.assign(key=_p_key(k["opened_date"], w), one=1)
    ko = _p_sums(ko[ko["key"] >= 0], ["one"])
    _p_emit(out, w, tag, "capa_opened", ko, ko["one"])
    kc = k.assign(key=_p_key(k["closed_date"], w))
    kc = kc[kc["key"] >= 0].copy()
    kc["one"] = 1
    kc["eff"] = kc["effectiveness_verified"].map(lambda v: v is True).astype(int)
    kc["days"] = (kc["closed_date"] - kc["opened_date"]).dt.days
    ks = _p_sums(kc, ["one", "eff"])
    _p_emit(out, w, tag, "capa_closed", ks, ks["one"])
    _p_emit(out, w, tag, "capa_effective_share", ks, _p_ratio(ks["eff"], ks["one"]))
    by_site = kc.groupby(["key", "site"], observed=True)["days"].median().reset_index()
    total = kc.groupby("key")["days"].median().reset_index().assign(site="all")
    med = pd.concat([by_site, total]).rename(columns={"site": "scope"})
    _p_emit(out, w, tag, "capa_days_to_close_median", med, med["days"])

    f = d["audit_findings"]
    fa = f.assign(key=_p_key(f["audit_date"], w))
    fa = fa[fa["key"] >= 0].copy()
    fa["one"] = 1
    for t in FINDING_TYPES:
        fa[t] = (fa["type"] == t).astype(int)
    fs = _p_sums(fa, ["one", *FINDING_TYPES])
    _p_emit(out, w, tag, "audit_findings", fs, fs["one"])
    for t in FINDING_TYPES:
        _p_emit(out, w, tag, f"audit_findings_{t}", fs, fs[t])

    f_due = f["due_date"].fillna(f["audit_date"] + pd.Timedelta(days=CFG.finding_due_days))
    k_rows, f_rows = [], []
    for key, end in enumerate(w.ends):
        e = pd.Timestamp(end)
        ko_ = k[
            (k["opened_date"] <= e)
            & (k["closed_date"].isna() | (k["closed_date"] > e))
            & (k["due_date"] < e)
        ]
        k_rows.append(pd.DataFrame({"site": ko_["site"], "one": 1, "key": key}))
        fo = f[
            (f["audit_date"] <= e)
            & (f["closed_date"].isna() | (f["closed_date"] > e))
            & (f_due < e)
        ]
        f_rows.append(pd.DataFrame({"site": fo["site"], "one": 1, "key": key}))
    kov = _p_sums(pd.concat(k_rows), ["one"])
    _p_emit(out, w, tag, "capa_open_overdue", kov, kov["one"])
    fov = _p_sums(pd.concat(f_rows), ["one"])
    _p_emit(out, w, tag, "audit_findings_open_overdue", fov, fov["one"])

    a = d["review_actions"]
    for key, end in enumerate(w.ends):
        e = pd.Timestamp(end)
        is_open = (a["review_date"] <= e) & (a["closed_date"].isna() | (a["closed_date"] > e))
        label = f"{tag}:{w.labels[key]}"
        out[("review_actions_open", "all", label)] = float(is_open.sum())
        out[("review_actions_overdue", "all", label)] = float((is_open & (a["due_date"] < e)).sum())
    ac = a.assign(key=_p_key(a["closed_date"], w), one=1)
    ac = ac[ac["key"] >= 0].groupby("key")["one"].sum()
    for key, v in ac.items():
        out[("review_actions_closed", "all", f"{tag}:{w.labels[int(key)]}")] = float(v)
    return out


def run_pandas(d: dict[str, pd.DataFrame]) -> Result:
    now, series = windows()
    return pandas_window(d, now, "now") | pandas_window(d, series, "series")


# --------------------------------------------------------------------------- DuckDB


def _sql_key(col: str, w: Window) -> str:
    if len(w.periods) == 1:
        return "0"
    base = w.start.year * 12 + w.start.month - 1
    return f"(year({col}) * 12 + month({col}) - 1 - {base})"


def _sql_in(col: str, w: Window) -> str:
    return f"{col} BETWEEN DATE '{w.start}' AND DATE '{w.end}'"


def _scope() -> str:
    return "CASE WHEN grouping(site) = 1 THEN 'all' ELSE site END AS scope"


def duckdb_window(con: duckdb.DuckDBPyConnection, w: Window, tag: str) -> Result:
    ends = ", ".join(f"({i}, DATE '{e}')" for i, e in enumerate(w.ends))
    con.execute(f"CREATE OR REPLACE TEMP TABLE ends AS SELECT * FROM (VALUES {ends}) t(key, e)")
    target, window = CFG.complaint_close_target_days, CFG.repeat_window_days
    tol, due_days = CFG.supplier_otd_tolerance_days, CFG.finding_due_days
    queries: dict[str, str] = {}
    queries["received"] = f"""
        WITH d AS (
            SELECT customer, product, category, received_date,
                   received_date - lag(received_date) OVER (
                       PARTITION BY customer, product, category ORDER BY received_date) AS gap
            FROM (SELECT DISTINCT customer, product, category, received_date FROM complaints)
        ), r AS (
            SELECT c.site, {_sql_key("c.received_date", w)} AS key,
                   coalesce(d.gap <= {window}, false) AS rep
            FROM complaints c JOIN d USING (customer, product, category, received_date)
            WHERE {_sql_in("c.received_date", w)}
        ), s AS (
            SELECT site, {_sql_key("CAST(month || '-01' AS DATE)", w)} AS key, units_shipped
            FROM shipments WHERE {_sql_in("CAST(month || '-01' AS DATE)", w)}
        ), rs AS (
            SELECT key, {_scope()}, count(*) AS n, sum(rep::INT) AS reps FROM r
            GROUP BY GROUPING SETS ((key, site), (key))
        ), ss AS (
            SELECT key, {_scope()}, sum(units_shipped) AS units FROM s
            GROUP BY GROUPING SETS ((key, site), (key))
        )
        SELECT key, scope,
               coalesce(n, 0) AS complaints_received,
               reps / n AS complaints_repeat_share,
               CASE WHEN units > 0 THEN coalesce(n, 0) / units * 1e6 END AS complaint_rate_ppm
        FROM rs FULL JOIN ss USING (key, scope)"""
    queries["closed"] = f"""
        WITH c AS (
            SELECT site, {_sql_key("closed_date", w)} AS key, closed_date - received_date AS days
            FROM complaints WHERE {_sql_in("closed_date", w)})
        SELECT key, {_scope()},
               median(days) AS complaint_days_to_close_median,
               quantile_cont(days, 0.9) AS complaint_days_to_close_p90,
               avg((days <= {target})::INT) AS complaints_closed_on_time_share
        FROM c GROUP BY GROUPING SETS ((key, site), (key))"""
    queries["open"] = f"""
        WITH o AS (
            SELECT c.site, e.key, e.e - c.received_date AS age
            FROM complaints c JOIN ends e
              ON c.received_date <= e.e AND (c.closed_date IS NULL OR c.closed_date > e.e))
        SELECT key, {_scope()}, count(*) AS complaints_open,
               count(*) FILTER (age <= 30) AS complaints_open_age_0_30,
               count(*) FILTER (age BETWEEN 31 AND 60) AS complaints_open_age_31_60,
               count(*) FILTER (age BETWEEN 61 AND 90) AS complaints_open_age_61_90,
               count(*) FILTER (age > 90) AS complaints_open_age_over_90
        FROM o GROUP BY GROUPING SETS ((key, site), (key))"""
    queries["surveys"] = f"""
        WITH s AS (
            SELECT site, {_sql_key("response_date", w)} AS key, score, scale_max FROM surveys
            WHERE {_sql_in("response_date", w)} AND scale_max > 0)
        SELECT key, {_scope()},
               avg(score / scale_max) AS satisfaction_mean,
               100.0 * (count(*) FILTER (scale_max = 10 AND score >= 9)
                        - count(*) FILTER (scale_max = 10 AND score <= 6))
                     / nullif(count(*) FILTER (scale_max = 10), 0) AS nps
        FROM s GROUP BY GROUPING SETS ((key, site), (key))"""
    queries["receipts"] = f"""
        SELECT {_sql_key("received_date", w)} AS key, {_scope()},
               avg((received_date <= promised_date + {tol})::INT) AS supplier_otd_share,
               CASE WHEN sum(qty_received) > 0
                    THEN sum(qty_rejected) / sum(qty_received) * 1e6 END AS supplier_ppm
        FROM receipts WHERE {_sql_in("received_date", w)}
        GROUP BY GROUPING SETS ((key, site), (key))"""
    queries["suppliers"] = """
        SELECT e.key, 'all' AS scope, count(s.supplier_id) AS supplier_evaluations_overdue
        FROM ends e LEFT JOIN suppliers s
          ON s.approval_status = 'approved' AND s.next_evaluation_due < e.e
        GROUP BY e.key"""
    stage_cols = ", ".join(
        f"CASE WHEN count(*) FILTER (stage = '{s}') > 0 THEN "
        f"count(*) FILTER (stage = '{s}' AND result = 'pass') / count(*) FILTER (stage = '{s}') "
        f"END AS fpy_share_{s}"
        for s in STAGES
    )
    queries["inspections"] = f"""
        SELECT *, CASE WHEN coalesce(fpy_share_incoming, fpy_share_in_process, fpy_share_final) IS NOT NULL
                  THEN coalesce(fpy_share_incoming, 1) * coalesce(fpy_share_in_process, 1)
                       * coalesce(fpy_share_final, 1) END AS rty_share
        FROM (
            SELECT {_sql_key("inspection_date", w)} AS key, {_scope()},
                   avg((result = 'pass')::INT) AS fpy_share,
                   sum(qty_defective) / sum(qty_inspected) * 1e6 AS defect_ppm,
                   {stage_cols}
            FROM inspections WHERE {_sql_in("inspection_date", w)}
            GROUP BY GROUPING SETS ((key, site), (key)))"""
    queries["capa_opened"] = f"""
        SELECT {_sql_key("opened_date", w)} AS key, {_scope()}, count(*) AS capa_opened
        FROM capa WHERE {_sql_in("opened_date", w)} GROUP BY GROUPING SETS ((key, site), (key))"""
    queries["capa_closed"] = f"""
        SELECT {_sql_key("closed_date", w)} AS key, {_scope()}, count(*) AS capa_closed,
               median(closed_date - opened_date) AS capa_days_to_close_median,
               avg(coalesce(effectiveness_verified, false)::INT) AS capa_effective_share
        FROM capa WHERE {_sql_in("closed_date", w)} GROUP BY GROUPING SETS ((key, site), (key))"""
    queries["capa_overdue"] = f"""
        SELECT e.key, {_scope()}, count(*) AS capa_open_overdue
        FROM capa c JOIN ends e
          ON c.opened_date <= e.e AND (c.closed_date IS NULL OR c.closed_date > e.e) AND c.due_date < e.e
        GROUP BY GROUPING SETS ((e.key, site), (e.key))"""
    type_cols = ", ".join(
        f"count(*) FILTER (type = '{t}') AS audit_findings_{t}" for t in FINDING_TYPES
    )
    queries["findings"] = f"""
        SELECT {_sql_key("audit_date", w)} AS key, {_scope()}, count(*) AS audit_findings, {type_cols}
        FROM audit_findings WHERE {_sql_in("audit_date", w)} GROUP BY GROUPING SETS ((key, site), (key))"""
    queries["findings_overdue"] = f"""
        SELECT e.key, {_scope()}, count(*) AS audit_findings_open_overdue
        FROM audit_findings f JOIN ends e
          ON f.audit_date <= e.e AND (f.closed_date IS NULL OR f.closed_date > e.e)
         AND coalesce(f.due_date, f.audit_date + {due_days}) < e.e
        GROUP BY GROUPING SETS ((e.key, site), (e.key))"""
    queries["actions"] = """
        SELECT e.key, 'all' AS scope,
               count(a.action_id) AS review_actions_open,
               count(a.action_id) FILTER (a.due_date < e.e) AS review_actions_overdue
        FROM ends e LEFT JOIN review_actions a
          ON a.review_date <= e.e AND (a.closed_date IS NULL OR a.closed_date > e.e)
        GROUP BY e.key"""
    queries["actions_closed"] = f"""
        SELECT {_sql_key("closed_date", w)} AS key, 'all' AS scope, count(*) AS review_actions_closed
        FROM review_actions WHERE {_sql_in("closed_date", w)} GROUP BY key"""
    out: Result = {}
    for sql in queries.values():
        table = con.sql(sql).to_arrow_table()
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        for row in frame.iter_rows(named=True):
            label = f"{tag}:{w.labels[int(row.pop('key'))]}"
            scope = row.pop("scope")
            for kpi, v in row.items():
                out[(kpi, scope, label)] = None if v is None else float(v)
    return out


def run_duckdb(con: duckdb.DuckDBPyConnection) -> Result:
    now, series = windows()
    return duckdb_window(con, now, "now") | duckdb_window(con, series, "series")


# --------------------------------------------------------------------------- checks


def compare(reference: Result, other: Result, name: str) -> int:
    """Assert ``other`` gives the polars values; a count missing from a sparse result is 0."""
    problems = []
    for key, want in reference.items():
        kpi = key[0]
        got = other.get(key, 0.0 if kpi in COUNT_KPIS else None)
        if want is None or got is None:
            ok = want is None and got is None
        else:
            ok = math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-9)
        if not ok:
            problems.append(f"{key}: polars {want!r}, {name} {got!r}")
    extra = [k for k in other if k not in reference]
    if problems or extra:
        raise AssertionError(
            f"{name} disagrees with polars on {len(problems)} values "
            f"({len(extra)} unexpected keys):\n"
            + "\n".join((problems + [str(k) for k in extra])[:20])
        )
    return len(reference)


# --------------------------------------------------------------------------- timing


class PeakRss:
    """Sample this process's RSS every few ms in a thread; report the peak."""

    def __init__(self, interval: float = 0.005) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


@dataclass
class Timing:
    name: str
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    peak_rise_mb: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_best(self) -> float:
        return min(self.cpu_seconds)


def run_once(timing: Timing, fn: Callable[[], Result]) -> Result:
    """One timed run: wall seconds, process CPU seconds (all threads), peak RSS."""
    gc.collect()
    proc = psutil.Process()
    with PeakRss() as mem:
        cpu0 = proc.cpu_times()
        t0 = time.perf_counter()
        result = fn()
        timing.seconds.append(time.perf_counter() - t0)
        cpu1 = proc.cpu_times()
    timing.cpu_seconds.append((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system))
    timing.peak_rise_mb = max(timing.peak_rise_mb, (mem.peak - mem.base) / 2**20)
    timing.peak_rss_mb = max(timing.peak_rss_mb, mem.peak / 2**20)
    return result


@contextmanager
def step(label: str) -> Iterator[None]:
    t0 = time.perf_counter()
    print(f"{label} ...", end=" ", flush=True)
    yield
    print(f"{time.perf_counter() - t0:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "--scale", type=float, default=1.0, help="1 = 10M inspections, 2M receipts, 500k complaints"
    )
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of polars and DuckDB")
    ap.add_argument("--pandas-repeat", type=int, default=1, help="timed runs of pandas")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--json", type=str, default=None, help="also write the results to this file")
    args = ap.parse_args(argv)

    with step(f"generating data at scale {args.scale:g}"):
        data = generate(args.scale)
    rows = {k: v.height for k, v in data.items()}
    print("rows:", ", ".join(f"{k} {v:,}" for k, v in rows.items()))

    with step("loading DuckDB (arrow, zero-copy) and pandas (to_pandas)"):
        con = duckdb.connect()
        if args.threads:
            con.execute(f"SET threads = {args.threads}")
        for name, frame in data.items():
            con.register(name, frame.to_arrow())
        pdata = {name: frame.to_pandas() for name, frame in data.items()}

    # Runs are interleaved (polars, DuckDB, pandas, polars, ...) so that load from other
    # processes on a shared machine falls on all three alike.
    pol, duck, pan = Timing("polars (qmskpi.kpis)"), Timing("DuckDB SQL"), Timing("pandas")
    results: dict[str, Result] = {}
    for i in range(max(args.repeat, args.pandas_repeat)):
        done = []
        if i < args.repeat:
            results["polars"] = run_once(pol, lambda: run_polars(data))
            results["duckdb"] = run_once(duck, lambda: run_duckdb(con))
            done += [pol, duck]
        if i < args.pandas_repeat:
            results["pandas"] = run_once(pan, lambda: run_pandas(pdata))
            done.append(pan)
        print(f"round {i + 1}: " + ", ".join(f"{t.name} {t.seconds[-1]:.2f} s" for t in done))

    n = compare(results["polars"], results["duckdb"], "DuckDB")
    compare(results["polars"], results["pandas"], "pandas")
    print(f"\nall three agree on {n:,} KPI values (rel. tol 1e-9; nulls match)\n")

    timings = [pol, duck, pan]
    print(
        f"{'implementation':<22}{'best s':>9}{'median s':>10}{'CPU s':>8}"
        f"{'peak rise MB':>14}{'peak RSS MB':>13}"
    )
    for x in timings:
        print(
            f"{x.name:<22}{x.best:>9.2f}{x.median:>10.2f}{x.cpu_best:>8.2f}"
            f"{x.peak_rise_mb:>14.0f}{x.peak_rss_mb:>13.0f}"
        )
    print(f"(wall seconds; CPU s = user + system of all threads, best run; {os.cpu_count()} cores)")
    vs_duck, vs_pandas = pol.best / duck.best, pan.best / pol.best
    verdict_duck = "met" if vs_duck <= 1.2 else "MISSED"
    verdict_pandas = "met" if vs_pandas >= 5 else "MISSED"
    print(f"\npolars / DuckDB, best runs: {vs_duck:.2f}x  (target <= 1.2x: {verdict_duck})")
    print(f"pandas / polars, best runs: {vs_pandas:.1f}x  (target >= 5x: {verdict_pandas})")
    print(
        f"medians: polars / DuckDB {pol.median / duck.median:.2f}x, "
        f"pandas / polars {pan.median / pol.median:.1f}x"
    )
    info = {
        "scale": args.scale,
        "rows": rows,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {
            "polars": pl.__version__,
            "pandas": pd.__version__,
            "duckdb": duckdb.__version__,
        },
        "values_compared": n,
        "timings": [
            x.__dict__ | {"best": x.best, "median": x.median, "cpu_best": x.cpu_best}
            for x in timings
        ],
        "polars_over_duckdb": vs_duck,
        "pandas_over_polars": vs_pandas,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(info, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
