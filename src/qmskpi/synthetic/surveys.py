"""Customer-satisfaction survey responses (0-10); lower at the step-up site after the step."""

from __future__ import annotations

import numpy as np
import polars as pl

from qmskpi.synthetic.draws import (
    _Calendar,
    _choice,
    _dates,
    _expand,
    _ids,
    _lookup,
    _order,
    _site_month_grid,
    _volume,
)
from qmskpi.synthetic.spec import STEP_MONTHS, SyntheticSpec, _step_site_index
from qmskpi.synthetic.world import _World

_SCORE_P = (0.01, 0.01, 0.01, 0.02, 0.02, 0.04, 0.06, 0.13, 0.22, 0.25, 0.23)
_SCORE_P_STEPPED = (0.03, 0.02, 0.03, 0.04, 0.05, 0.07, 0.10, 0.16, 0.20, 0.16, 0.14)


def _surveys(
    spec: SyntheticSpec,
    cal: _Calendar,
    world: _World,
    rng: np.random.Generator,
    sites: list[tuple[str, str]],
) -> pl.DataFrame:
    """Survey responses on a 0-10 scale; the step-up site scores lower after the step."""
    site_g, month_g = _site_month_grid(spec, cal)
    lam = spec.surveys_per_site_month * _volume(cal)[month_g] * spec.scale
    cell = _expand(rng.poisson(lam).astype(np.int64))
    n = cell.size
    site, month = site_g[cell], month_g[cell]
    stepped = (site == _step_site_index(spec.sites)) & (month >= max(0, cal.n - STEP_MONTHS))
    score = np.where(stepped, _choice(rng, _SCORE_P_STEPPED, n), _choice(rng, _SCORE_P, n))
    customer = world.site_customers[site, _choice(rng, world.customer_p, n)]
    day = cal.random_day(rng, month)
    order = _order(day, site, customer)
    return pl.DataFrame(
        {
            "response_id": _ids("SRV-", n),
            "response_date": _dates(day[order]),
            "site": _lookup([s for s, _ in sites], site[order]),
            "customer": _lookup(world.customers, customer[order]),
            "score": score[order].astype(np.float64),
            "scale_max": np.full(n, 10, dtype=np.int64),
            "scale_min": np.zeros(n, dtype=np.int64),
        }
    )
