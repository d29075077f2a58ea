"""The entry points that write: :func:`write` (frames to CSV or Parquet, the config, the
analyst inputs) and :func:`sample` (generate, then write)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from qmskpi.datasets import DATASETS
from qmskpi.synthetic.analyst_inputs import _changes_md, _resources_md, _risks_md
from qmskpi.synthetic.assemble import generate
from qmskpi.synthetic.config_file import config_toml
from qmskpi.synthetic.spec import (
    DATE_FORMAT,
    OTD_SUPPLIER_INDEX,
    SUPPLIER_CATALOGUE,
    OutputFormat,
    SpecError,
    SyntheticSpec,
)


def write(
    frames: Mapping[str, pl.DataFrame],
    out_dir: Path | str,
    *,
    format: OutputFormat = "csv",
    config: bool = True,
    spec: SyntheticSpec | None = None,
) -> list[Path]:
    """Write ``<dataset>.csv`` (or ``.parquet``) for each frame into ``out_dir``.

    With ``config=True`` also write ``qmskpi.toml`` (loads as-is with
    :func:`qmskpi.config.load_config`; every date column's format declared) and
    the analyst inputs ``inputs/changes.md``, ``inputs/resources.md`` and
    ``inputs/risks.md``. ``spec`` supplies the organisation name and the story
    the analyst inputs tell; without it, both are inferred from the frames.
    CSV is UTF-8 without BOM, ``\\n`` line ends, ISO dates, empty cells for
    nulls, ``true``/``false``. Returns the paths written, in writing order.
    """
    if format not in ("csv", "parquet"):
        raise SpecError(f"format must be 'csv' or 'parquet', got {format!r}")
    unknown = [name for name in frames if name not in DATASETS]
    if unknown:
        raise SpecError(f"not a dataset: {', '.join(unknown)}; known: {', '.join(DATASETS)}")
    story = (spec if spec is not None else _infer_spec(frames)) if config else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in DATASETS:
        if name not in frames:
            continue
        frame = frames[name]
        path = out / f"{name}.{format}"
        if format == "csv":
            frame.write_csv(path, date_format=DATE_FORMAT, line_terminator="\n")
        else:
            frame.write_parquet(path, compression="zstd", statistics=True)
        written.append(path)
    if story is not None:
        texts = {
            "qmskpi.toml": config_toml(
                story, datasets=[n for n in DATASETS if n in frames], format=format
            ),
            "inputs/changes.md": _changes_md(story, frames),
            "inputs/resources.md": _resources_md(story, frames),
            "inputs/risks.md": _risks_md(story, frames),
        }
        for rel, text in texts.items():
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            written.append(path)
    return written


def sample(
    out_dir: Path | str,
    spec: SyntheticSpec = SyntheticSpec(),
    *,
    format: OutputFormat = "csv",
) -> list[Path]:
    """Generate the data set of ``spec`` and write it, with its config, into ``out_dir``."""
    return write(generate(spec), out_dir, format=format, config=True, spec=spec)


def _infer_spec(frames: Mapping[str, pl.DataFrame]) -> SyntheticSpec:
    """The spec a set of generated frames most likely came from (for names and story)."""
    months: set[str] = set()
    for name in ("shipments", "objective_results"):
        if name in frames and frames[name].height:
            months.update(frames[name]["month"].unique().to_list())
    sites: set[str] = set()
    for name, frame in frames.items():
        if "site" in frame.columns and DATASETS[name].site_level:
            sites.update(frame["site"].drop_nulls().unique().to_list())
    if not months or not sites:
        raise SpecError("cannot infer the spec from these frames; pass spec=SyntheticSpec(...)")
    first, last = min(months), max(months)
    n_months = (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7]) + 1
    n_suppliers = frames["suppliers"].height if "suppliers" in frames else len(SUPPLIER_CATALOGUE)
    spec = SyntheticSpec(
        sites=len(sites),
        months=n_months,
        end_month=last,
        suppliers=max(n_suppliers, OTD_SUPPLIER_INDEX + 1),
    )
    if set(spec.site_names) != sites:
        raise SpecError(
            f"sites {sorted(sites)} are not the generator's; pass spec=SyntheticSpec(...) "
            "or write with config=False"
        )
    return spec
