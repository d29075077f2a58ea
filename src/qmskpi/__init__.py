"""qmskpi: ISO 9001 management-review input packs (clause 9.3) from quality records.

Import is light: submodules load on first use, so ``import qmskpi`` never pulls
Great Expectations, plotly or papermill until they are needed::

    import qmskpi
    cfg = qmskpi.load_config("sample_data/qmskpi.toml")
    data = qmskpi.load_sources(cfg)
    report = qmskpi.validate(data, period="2026-10", config=cfg)
    kpis = qmskpi.compute_kpis(report.clean, "2026-10", "all", config=cfg.kpis)

or all of it for one period and scope, as the pack computes it::

    prepared = qmskpi.prepare("sample_data/qmskpi.toml", "2026-10", "all")

Functions: load_config, config_path, load_sources, load_dataset, validate,
compute_kpis, kpi_series, prepare, run_review, parse_period. Modules, down the
flow: errors, periods, datasets, config, sources, contracts, kpis, spc, review,
charts, render, minutes, archive, pipeline, synthetic, cli (``dir(qmskpi)``
lists them all).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_config": ("qmskpi.config", "load_config"),
    "config_path": ("qmskpi.config", "config_path"),
    "Config": ("qmskpi.config", "Config"),
    "parse_period": ("qmskpi.periods", "parse_period"),
    "Period": ("qmskpi.periods", "Period"),
    "load_sources": ("qmskpi.sources", "load_all"),
    "load_dataset": ("qmskpi.sources", "load_dataset"),
    "validate": ("qmskpi.contracts", "validate"),
    "compute_kpis": ("qmskpi.kpis", "compute_kpis"),
    "kpi_series": ("qmskpi.kpis", "kpi_series"),
    "prepare": ("qmskpi.pipeline", "prepare"),
    "run_review": ("qmskpi.pipeline", "run_review"),
    "QmsKpiError": ("qmskpi.errors", "QmsKpiError"),
}
_SUBMODULES = {
    "errors",
    "periods",
    "datasets",
    "config",
    "sources",
    "contracts",
    "kpis",
    "spc",
    "review",
    "charts",
    "render",
    "minutes",
    "archive",
    "pipeline",
    "synthetic",
    "cli",
}

__all__ = sorted([*_LAZY, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"qmskpi.{name}")
    raise AttributeError(f"module 'qmskpi' has no attribute {name!r}")


def __dir__() -> list[str]:
    """Tab completion and ``dir(qmskpi)`` show the lazy names too."""
    return sorted({*__all__, *(n for n in globals() if n.startswith("__"))})
