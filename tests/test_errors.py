from __future__ import annotations

import pytest

from qmskpi.errors import ConfigError, HeaderError, QmsKpiError, SourceError, did_you_mean


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
