"""The default data set, generated once for the synthetic tests that only read it."""

from __future__ import annotations

import polars as pl
import pytest

from qmskpi import synthetic
from synthetic.helpers import DEFAULT


@pytest.fixture(scope="package")
def frames() -> dict[str, pl.DataFrame]:
    return synthetic.generate(DEFAULT)
