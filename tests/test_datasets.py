from __future__ import annotations

import polars as pl
import pytest

from qmskpi.datasets import DATASETS, SOURCE_ROW, dataset, empty_frame
from qmskpi.errors import QmsKpiError


def test_the_datasets_of_the_design() -> None:
    # the eleven of DESIGN §2, the optional audit programme and supplier approval history
    assert set(DATASETS) == {
        "audit_programme",
        "supplier_approvals",
        "complaints",
        "shipments",
        "suppliers",
        "receipts",
        "inspections",
        "objectives",
        "objective_results",
        "capa",
        "audit_findings",
        "review_actions",
        "surveys",
    }


def test_keys_are_fields_and_site_level_datasets_have_site() -> None:
    for ds in DATASETS.values():
        assert set(ds.key) <= set(ds.field_names), ds.name
        assert all(ds.field(k).required for k in ds.key), ds.name
        if ds.period_field:
            assert ds.period_field in ds.field_names
    assert DATASETS["complaints"].site_level
    assert not DATASETS["suppliers"].site_level


def test_empty_frame_has_canonical_schema_plus_source_row() -> None:
    frame = empty_frame("receipts")
    assert frame.columns[-1] == SOURCE_ROW
    assert frame.schema["received_date"] == pl.Date
    assert frame.schema["qty_received"] == pl.Int64
    assert DATASETS["complaints"].field("severity").allowed == ("minor", "major", "critical")


def test_unknown_dataset_hint() -> None:
    with pytest.raises(QmsKpiError, match="did you mean 'complaints'"):
        dataset("complaint")
