"""File sources: one file or a glob, each hashed before it is parsed, checked not to
be binary of another kind, read by its format's reader and mapped; a glob's files are
concatenated in path order.
"""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path
from typing import Literal

import polars as pl

from qmskpi.config import Config, SourceConfig
from qmskpi.datasets import Dataset, empty_frame
from qmskpi.errors import SourceError
from qmskpi.sources.csv_reader import _read_csv
from qmskpi.sources.excel_reader import _read_excel
from qmskpi.sources.keys import _drop_duplicates, _key_mapped, _with_surrogate
from qmskpi.sources.mapping import _map_table
from qmskpi.sources.model import SOURCE_FILE, LoadedDataset, OnBadValue, SourceFile, _empty_rejects
from qmskpi.sources.parquet_reader import _read_parquet
from qmskpi.sources.window import _Window

_FORMATS: dict[str, Literal["csv", "parquet", "excel"]] = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
    ".xlsm": "excel",
}

_HEAD_BYTES = 8192
"""Leading bytes read to tell a binary file (and the format it really is) from text."""


def _concurrent(src: SourceConfig) -> bool:
    """May ``src`` be read beside another file? Parquet and CSV files: yes. Not Excel
    (openpyxl's warnings are silenced through the process-wide filters) nor SQL."""
    if src.kind != "file" or src.path is None:
        return False
    fmt = src.format or _FORMATS.get(Path(src.path).suffix.lower())
    return fmt in ("parquet", "csv")


_MAGIC: tuple[tuple[bytes, str, str, str], ...] = (
    # (leading bytes, what the file is, the format qmskpi reads it as ("" none), what to do)
    (b"\x1f\x8b", "a gzip-compressed file", "", "decompress it first (gunzip)"),
    (b"BZh", "a bzip2-compressed file", "", "decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "", "decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "", "decompress it first (unzstd)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "", "extract the CSV first"),
    (
        b"PK\x03\x04",
        "a ZIP archive (an .xlsx workbook is one)",
        "excel",
        'if it is a workbook set format = "excel", else extract the CSV first',
    ),
    (
        b"\xd0\xcf\x11\xe0",
        "an old binary Excel .xls (or other OLE) file",
        "",
        "save it as .xlsx or CSV",
    ),
    (b"PAR1", "a Parquet file", "parquet", 'set format = "parquet"'),
    (b"\x89PNG", "a PNG image", "", "point the source at the data export"),
    (b"\xff\xd8\xff", "a JPEG image", "", "point the source at the data export"),
    (b"%PDF", "a PDF document", "", "export the data as CSV or Excel instead"),
)


def _check_not_binary(data: bytes, fmt: str, src: SourceConfig, display: str) -> None:
    """A compressed, image, PDF or other binary file read as ``fmt`` is named for what it is."""
    for magic, what, readable_as, todo in _MAGIC:
        if data.startswith(magic):
            if readable_as == fmt:
                return
            raise SourceError(
                f"this is {what}, not {_FORMAT_WORDS[fmt]}: {todo}",
                path=display,
                dataset=src.dataset,
            )
    utf16 = src.encoding.lower().startswith("utf-16") or data[:2] in (b"\xff\xfe", b"\xfe\xff")
    if fmt == "csv" and b"\x00" in data[:_HEAD_BYTES] and not utf16:
        raise SourceError(
            "this is binary data (it holds NUL bytes), not CSV text; export the data as CSV",
            path=display,
            dataset=src.dataset,
        )


_FORMAT_WORDS = {"csv": "CSV text", "parquet": "a Parquet file", "excel": "an .xlsx workbook"}


def _display(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _format_of(path: Path, src: SourceConfig, display: str) -> str:
    if src.format is not None:
        return src.format
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"cannot tell the format from the suffix {path.suffix!r}; set format = "
            '"csv", "parquet" or "excel"',
            path=display,
            dataset=src.dataset,
        )
    return fmt


def _hash_file(path: Path, display: str, dataset: str) -> tuple[str, bytes]:
    """The file's sha256, streamed (no copy of the whole file), and its first bytes."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
            fh.seek(0)
            return hashlib.file_digest(fh, "sha256").hexdigest(), head
    except FileNotFoundError:
        raise SourceError("file not found", path=display, dataset=dataset) from None
    except OSError as exc:
        raise SourceError(
            f"cannot read the file: {exc.strerror}", path=display, dataset=dataset
        ) from None


def _read_bytes(path: Path, display: str, dataset: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(
            f"cannot read the file: {exc.strerror}", path=display, dataset=dataset
        ) from None


def _load_files(
    config: Config,
    src: SourceConfig,
    ds: Dataset,
    *,
    on_bad_value: OnBadValue,
    window: _Window | None = None,
) -> LoadedDataset:
    assert src.path is not None
    pattern = src.path
    is_glob = any(ch in pattern for ch in "*?[")
    if is_glob:
        full = str(config.resolve(pattern))
        paths = sorted(
            (Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file()),
            key=lambda p: _display(p, config.base_dir),
        )
        if not paths:
            raise SourceError(
                f"no file matches {pattern!r} (in {config.base_dir})",
                path=pattern,
                dataset=ds.name,
            )
    else:
        paths = [config.resolve(pattern)]
    frames: list[pl.DataFrame] = []
    rejects: list[pl.DataFrame] = []
    excluded: list[pl.DataFrame] = []
    files: list[SourceFile] = []
    rows_in = 0
    has_key = True
    for path in paths:
        display = _display(path, config.base_dir)
        sha, head = _hash_file(path, display, ds.name)
        fmt = _format_of(path, src, display)
        _check_not_binary(head, fmt, src, display)
        if fmt == "csv":
            table = _read_csv(_read_bytes(path, display, ds.name), src, ds, display)
        elif fmt == "parquet":
            table = _read_parquet(path, src, ds, display, window)
        else:
            table = _read_excel(path, src, display)
        frame, rej, out, n = _map_table(table, src, ds, config, on_bad_value)
        if is_glob:
            frame = frame.with_columns(pl.lit(display, dtype=pl.String).alias(SOURCE_FILE))
        has_key = has_key and _key_mapped(table, src, ds)
        frames.append(frame)
        rejects.append(rej)
        excluded.append(out)
        files.append(SourceFile(display, sha, n))
        rows_in += n
    frame = pl.concat(frames, how="vertical") if frames else empty_frame(ds.name)
    if src.drop_duplicates:
        frame, dups = _drop_duplicates(frame, ds, files[0].path)
        excluded.append(dups)
    frame = _with_surrogate(frame, src, ds, has_key)
    if is_glob:
        blob = "".join(f"{f.path}\t{f.sha256}\n" for f in files).encode("utf-8")
        sha256 = hashlib.sha256(blob).hexdigest()
        origin = f"{pattern} [{', '.join(f.path for f in files)}]"
    else:
        sha256 = files[0].sha256
        origin = files[0].path
    return LoadedDataset(
        dataset=ds.name,
        frame=_lined_up(frame),
        rejects=pl.concat(rejects, how="vertical") if rejects else _empty_rejects(),
        origin=origin,
        sha256=sha256,
        rows_in=rows_in,
        files=tuple(files),
        excluded=pl.concat(excluded, how="vertical"),
    )


def _lined_up(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame``, its columns in the same chunks.

    A Parquet file's columns come in a chunk per row group, and every step of the
    mapping keeps them so: they are left so (one chunk per column would copy the whole
    frame, about as long as reading it: 0.5 s and +1.2 GB at 10M inspections). Steps
    after loading keep the chunks lined up too (``contracts.prepare``); polars would
    otherwise copy the whole frame. A frame whose columns are chunked differently (a
    column added whole) is made one chunk per column.
    """
    if frame.width and len({tuple(c.chunk_lengths()) for c in frame.get_columns()}) > 1:
        return frame.rechunk()
    return frame
