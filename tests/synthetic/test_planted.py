"""Where the story is planted: the sites, suppliers and months a spec names."""

from __future__ import annotations

from qmskpi import synthetic
from qmskpi.synthetic import SyntheticSpec
from synthetic.helpers import DEFAULT


def test_planted_structure_names_where_the_story_is() -> None:
    p = synthetic.planted_structure(DEFAULT)
    assert p.sites == ("North", "South", "East")
    assert (p.first_month, p.end_month) == ("2023-11", "2026-10")
    assert (p.step_site, p.step_from) == ("South", "2026-05")
    assert (p.otd_supplier_id, p.otd_decline_from) == ("SUP-003", "2026-03")
    assert p.backlog_from == "2025-11"
    assert p.disapproved_supplier_id == "SUP-015"
    assert synthetic.planted_structure(SyntheticSpec(sites=1)).step_site == "North"
