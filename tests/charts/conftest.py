"""Fixtures shared by the charts tests: the review tests' hand-made model, and its hostile twin's whole pack."""

from __future__ import annotations

from typing import Any

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from qmskpi import charts, review
from test_review import (  # the hand-made data set of the review tests
    ANALYST,
    PERIOD,
    XSS,
    fake_validation,
    make_config,
    make_data,
)


@pytest.fixture
def json_snapshot(snapshot: Any) -> Any:
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.fixture(scope="module")
def model() -> review.ReviewModel:
    data = make_data()
    return review.build(
        data,
        period=PERIOD,
        scope="all",
        config=make_config(),
        validation=fake_validation(data, set()),
        analyst_inputs=ANALYST,
    )


@pytest.fixture(scope="module")
def evil_html() -> str:
    """The whole pack of a model whose every free-text field is hostile."""
    data = make_data(evil=True)
    evil_md = "\n".join(
        [
            f"# Heading {XSS[0]}",
            "",
            f"Paragraph with **bold {XSS[1]}** and *{XSS[2]}*.",
            "",
            f"- item {XSS[0]}",
            "- [click](javascript:alert(1))",
            '<a href="javascript:alert(1)">raw link</a>',
        ]
    )
    m = review.build(
        data,
        period=PERIOD,
        scope="all",
        config=make_config(sites=()),
        validation=fake_validation(data, {"capa"}),
        analyst_inputs={"changes": evil_md, "resources": XSS[1], "risks": XSS[2]},
    )
    return charts.Pack(m).everything().html
