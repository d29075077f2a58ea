from __future__ import annotations

import polars as pl
import pytest

from qmskpi.datasets import DATASETS, SOURCE_ROW, dataset, empty_frame
from qmskpi.errors import QmsKpiError


def test_the_datasets_of_the_design() -> None:
    # the eleven of DESIGN §2, the optional audit programme, supplier approval history
    # and open purchase-order lines
    assert set(DATASETS) == {
        "audit_programme",
        "supplier_approvals",
        "complaints",
        "shipments",
        "suppliers",
        "receipts",
        "open_orders",
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


def test_docs_datasets_md_lists_every_field_with_its_type_and_requiredness() -> None:
    """docs/datasets.md is the user's reference: one row per field, in sync with the code."""
    import re

    from conftest import ROOT

    text = (ROOT / "docs" / "datasets.md").read_text(encoding="utf-8")
    words = {
        "str": "text",
        "date": "date",
        "int": "integer",
        "float": "number",
        "bool": "true/false",
    }
    for name, ds in DATASETS.items():
        section = text.split(f"## `{name}`:", 1)
        assert len(section) == 2, f"no section for {name}"
        body = section[1].split("\n## ", 1)[0]
        rows = re.findall(r"^\| `(\w+)` \| ([\w/]+) \| (yes|no) \| (.+?) \| (.*?) \|$", body, re.M)
        assert [r[0] for r in rows] == list(ds.field_names), name
        for (field, kind, required, meaning, example), f in zip(rows, ds.fields, strict=True):
            expected = "month" if field == "month" else words[f.type]
            assert (kind, required) == (expected, "yes" if f.required else "no"), (name, field)
            assert len(meaning) > 10, (name, field)
            assert example, (name, field)
            for value in f.allowed or ():
                assert f"`{value}`" in meaning, (name, field, value)
    assert "DESIGN" not in text
