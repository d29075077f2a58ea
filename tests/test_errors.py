from __future__ import annotations

import errno

import pytest

from qmskpi.errors import (
    EXIT_FAILED,
    ConfigError,
    DiskFullError,
    HeaderError,
    PublishError,
    QmsKpiError,
    SourceError,
    did_you_mean,
    disk_full,
    exit_code_for_error,
)


def test_did_you_mean_finds_near_miss_and_case_variants() -> None:
    assert did_you_mean("recieved_date", ["received_date", "closed_date"]) == (
        " (did you mean 'received_date'?)"
    )
    assert did_you_mean("Received Date", ["received_date"]) == " (did you mean 'received_date'?)"
    assert did_you_mean("zzz", ["received_date"]) == ""


def test_source_error_names_file_column_and_row() -> None:
    err = SourceError(
        "'31/02/2026' is not a date", path="data/c.csv", column="received_date", row=17
    )
    assert str(err) == "data/c.csv, column 'received_date', row 17: '31/02/2026' is not a date"
    assert (err.path, err.column, err.row) == ("data/c.csv", "received_date", 17)


def test_every_error_is_a_qmskpi_error() -> None:
    with pytest.raises(QmsKpiError):
        raise HeaderError("duplicate header", path="x.csv", column="site")
    err = ConfigError("must be an integer", path="q.toml", key="kpis.repeat_window_days")
    assert str(err) == "q.toml: key 'kpis.repeat_window_days': must be an integer"


def test_disk_full_is_found_behind_wrapping_errors_and_exits_1() -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    wrapped = RuntimeError("writing kpis.xlsx failed")
    wrapped.__cause__ = full
    assert disk_full(wrapped) is full
    said_so = RuntimeError("write failed: No space left on device (os error 28)")  # polars' way
    assert disk_full(said_so) is said_so
    assert disk_full(OSError(errno.EACCES, "Permission denied")) is None
    err = DiskFullError("/srv/reports", full)
    assert str(err) == (
        "no space left: /srv/reports is full; free some space there and run again "
        "(nothing was published; details in the log)"
    )
    assert "over its disk quota" in str(DiskFullError("/home/q", OSError(errno.EDQUOT, "quota")))
    assert isinstance(err, PublishError)
    assert exit_code_for_error(type(err).__name__) == EXIT_FAILED
