"""The one place that chains the stages: sources -> contracts -> review (kpis, spc) -> render -> archive.

Notebooks call :func:`review_for`; the CLI calls :func:`run_review` (one pack)
and the scheduled run (every scope, catch-up). Each stage is a plain function
call on plain data; every stage module knows nothing of the ones after it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from qmskpi import contracts, kpis, review, sources
from qmskpi.config import Config, load_config
from qmskpi.periods import Period, parse_period


@dataclass
class Timings:
    """Wall-clock seconds per stage, in the order the stages ran."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 4)


@dataclass(frozen=True)
class Prepared:
    """Everything computed for one period and scope, before rendering."""

    config: Config
    period: Period
    scope: str
    loaded: Mapping[str, sources.LoadedDataset]
    validation: contracts.ValidationReport
    kpis: pl.DataFrame
    review: review.ReviewModel
    timings: Mapping[str, float]


def as_config(config: Config | str | os.PathLike[str]) -> Config:
    return config if isinstance(config, Config) else load_config(config)


def read_analyst_inputs(config: Config) -> dict[str, str]:
    """The quality team's markdown for 9.3.2 b), d) and e), keyed changes/resources/risks.

    A configured file that does not exist is reported as missing by the review
    (coverage matrix), not as an error: the pack still renders.
    """
    out: dict[str, str] = {}
    for key in ("changes", "resources", "risks"):
        rel = getattr(config.analyst_inputs, key)
        if rel is None:
            continue
        path = config.resolve(rel)
        if path.is_file():
            out[key] = path.read_text(encoding="utf-8")
    return out


def prepare(
    config: Config | str | os.PathLike[str],
    period: Period | str,
    scope: str = "all",
    *,
    as_of: date | None = None,
) -> Prepared:
    """Load, validate and compute the review for one period and scope."""
    cfg = as_config(config)
    p = parse_period(period)
    cfg.check_scope(scope)
    t = Timings()
    with t.stage("load"):
        loaded = sources.load_all(cfg, period=p)
    with t.stage("validate"):
        validation = contracts.validate(loaded, period=p, config=cfg, as_of=as_of)
    with t.stage("compute"):
        table = kpis.compute_kpis(
            validation.clean, p, scope, config=cfg.kpis, unsound=validation.unsound_datasets
        )
        model = review.build(
            validation.clean,
            period=p,
            scope=scope,
            config=cfg,
            validation=validation,
            analyst_inputs=read_analyst_inputs(cfg),
        )
    return Prepared(cfg, p, scope, loaded, validation, table, model, dict(t.seconds))


def review_for(
    config_path: str | os.PathLike[str],
    period: Period | str,
    scope: str = "all",
    *,
    review_inputs: str | os.PathLike[str] = "",
) -> review.ReviewModel:
    """The review model a notebook presents.

    A scheduled run passes ``review_inputs``, the ``review-inputs.json`` it has
    already computed, so the kernel neither re-reads the data nor imports
    Great Expectations; an analyst leaves it empty and the model is computed
    from the data the config names.
    """
    if review_inputs:
        return review.ReviewModel.from_json(Path(review_inputs))
    return prepare(config_path, period, scope).review
