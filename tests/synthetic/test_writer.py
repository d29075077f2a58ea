"""Writing: byte-identical files, read back equal, the config loads, the committed sample_data."""

from __future__ import annotations

import filecmp
from pathlib import Path

import polars as pl
import pytest

from qmskpi import synthetic
from qmskpi.config import load_config
from qmskpi.datasets import DATASETS
from qmskpi.errors import QmsKpiError
from qmskpi.synthetic import SyntheticSpec
from synthetic.helpers import KNOWN_KPIS, SAMPLE_DATA


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "reports" not in p.relative_to(root).parts
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_spec_gives_byte_identical_files(tmp_path: Path, fmt: synthetic.OutputFormat) -> None:
    spec = SyntheticSpec(months=12)
    a = synthetic.sample(tmp_path / "a", spec, format=fmt)
    b = synthetic.sample(tmp_path / "b", spec, format=fmt)
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert len(a) == len(DATASETS) + 4
    for pa, pb in zip(a, b, strict=True):
        assert filecmp.cmp(pa, pb, shallow=False), pa.name


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_files_read_back_equal_and_config_loads(
    tmp_path: Path, fmt: synthetic.OutputFormat
) -> None:
    spec = SyntheticSpec(months=12, sites=2)
    frames = synthetic.generate(spec)
    synthetic.write(frames, tmp_path, format=fmt, spec=spec)
    cfg = load_config(tmp_path / "qmskpi.toml")
    assert cfg.organisation == spec.organisation
    assert cfg.sites == ("North", "South")
    assert set(cfg.sources) == set(DATASETS)
    for name, ds in DATASETS.items():
        src = cfg.sources[name]
        path = cfg.resolve(src.path or "")
        assert path.is_file()
        date_cols = {f.name for f in ds.fields if f.type == "date"}
        if fmt == "csv":
            assert set(src.date_formats) == date_cols
            assert set(src.date_formats.values()) <= {"%Y-%m-%d"}
            back = pl.read_csv(path, schema=ds.schema)
        else:
            back = pl.read_parquet(path)
        assert back.equals(frames[name]), name
    objective_kpis = set(frames["objectives"]["kpi"].drop_nulls().to_list())
    assert cfg.kpis.targets
    assert not set(cfg.kpis.targets) & objective_kpis
    assert set(cfg.kpis.targets) <= KNOWN_KPIS
    assert cfg.review.as_of is None
    for rel in (cfg.analyst_inputs.changes, cfg.analyst_inputs.resources, cfg.analyst_inputs.risks):
        assert rel is not None
        text = cfg.resolve(rel).read_text(encoding="utf-8")
        assert text.startswith("# ")
        assert "<" not in text


def test_write_without_spec_infers_sites_and_story(tmp_path: Path) -> None:
    frames = synthetic.generate(SyntheticSpec(months=12, sites=2))
    synthetic.write(frames, tmp_path)
    cfg = load_config(tmp_path / "qmskpi.toml")
    assert cfg.sites == ("North", "South")
    assert "South" in (tmp_path / "inputs" / "changes.md").read_text(encoding="utf-8")


def test_sample_data_matches_the_generator(tmp_path: Path) -> None:
    """The committed sample_data/ is exactly what sample() writes with the default spec."""
    synthetic.sample(tmp_path)
    fresh, committed = _tree(tmp_path), _tree(SAMPLE_DATA)
    assert sorted(committed) == sorted(fresh)
    for rel, data in fresh.items():
        assert committed[rel] == data, (
            f"sample_data/{rel} drifted: regenerate with synthetic.sample"
        )
    size = sum(len(v) for k, v in committed.items() if k.endswith(".csv"))
    assert size <= 5_000_000
    load_config(SAMPLE_DATA / "qmskpi.toml")


def test_write_refuses_to_guess_a_config_for_foreign_frames(tmp_path: Path) -> None:
    frames = synthetic.generate(SyntheticSpec(months=6, sites=1))
    renamed = {
        name: f.with_columns(site=pl.lit("Plant 7")) if DATASETS[name].site_level else f
        for name, f in frames.items()
    }
    with pytest.raises(QmsKpiError, match="pass spec"):
        synthetic.write(renamed, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    written = synthetic.write(renamed, tmp_path / "b", config=False)
    assert [p.name for p in written] == [f"{name}.csv" for name in DATASETS]
