"""The spec refuses values out of range."""

from __future__ import annotations

from typing import Any

import pytest

from qmskpi.errors import QmsKpiError
from qmskpi.synthetic import SyntheticSpec


@pytest.mark.parametrize(
    "kwargs",
    [{"sites": 0}, {"months": 0}, {"scale": 0.0}, {"end_month": "2026-Q3"}, {"suppliers": 2}],
)
def test_bad_spec_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(QmsKpiError):
        SyntheticSpec(**kwargs)
