"""qmskpi: ISO 9001 management-review input packs (clause 9.3) from quality records.

Import is light: submodules load on first use, so ``import qmskpi`` never pulls
Great Expectations, plotly or papermill until they are needed::

    import qmskpi
    cfg = qmskpi.load_config("sample_data/qmskpi.toml")
    data = qmskpi.load_sources(cfg)
    report = qmskpi.validate(data, period="2026-10", config=cfg)
    kpis = qmskpi.compute_kpis(report.clean, "2026-10", "all", config=cfg.kpis)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_config": ("qmskpi.config", "load_config"),
    "Config": ("qmskpi.config", "Config"),
    "parse_period": ("qmskpi.periods", "parse_period"),
    "Period": ("qmskpi.periods", "Period"),
    "load_sources": ("qmskpi.sources", "load_all"),
    "load_dataset": ("qmskpi.sources", "load_dataset"),
    "validate": ("qmskpi.contracts", "validate"),
    "compute_kpis": ("qmskpi.kpis", "compute_kpis"),
    "kpi_series": ("qmskpi.kpis", "kpi_series"),
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
