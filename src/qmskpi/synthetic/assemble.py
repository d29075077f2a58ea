""":func:`generate`: every dataset drawn from its own stream, in canonical form and order."""

from __future__ import annotations

import polars as pl

from qmskpi.datasets import DATASETS
from qmskpi.synthetic.actions import _audit_findings, _audit_programme, _capa, _review_actions
from qmskpi.synthetic.customers import _complaint_frame, _complaints, _shipment_frame, _shipments
from qmskpi.synthetic.draws import _Calendar, _streams
from qmskpi.synthetic.inspections import _inspections
from qmskpi.synthetic.objectives import _objective_results, _objectives
from qmskpi.synthetic.spec import SyntheticSpec, _sites
from qmskpi.synthetic.suppliers import _open_orders, _receipts, _supplier_frame, _supplier_history
from qmskpi.synthetic.surveys import _surveys
from qmskpi.synthetic.world import _World


def _canonical(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Columns in canonical order and dtype, sorted by the dataset key."""
    ds = DATASETS[name]
    out = frame.select([pl.col(c).cast(t) for c, t in ds.schema.items()])
    return out.sort(list(ds.key), maintain_order=True)


def generate(spec: SyntheticSpec = SyntheticSpec()) -> dict[str, pl.DataFrame]:
    """Generate every dataset of DESIGN §2 for ``spec``: canonical frames, no ``source_row``.

    The frames come in :data:`qmskpi.datasets.DATASETS` order, each sorted by its key.
    """
    cal = _Calendar.of(spec)
    rng = _streams(spec.seed)
    sites = _sites(spec.sites)

    world = _World.build(spec, rng["master"])
    shipments = _shipments(spec, cal, world, rng["shipments"])
    complaints, (linked, opened) = _complaints(spec, cal, world, shipments, rng["complaints"])
    capa, capa_ids = _capa(spec, cal, complaints.site[linked], opened, rng["capa"])
    frames = {
        "complaints": _complaint_frame(complaints, (linked, capa_ids), world, sites),
        "shipments": _shipment_frame(shipments, world, sites, cal, rng["customer_deliveries"]),
        "suppliers": (suppliers := _supplier_frame(spec, cal, world)),
        "supplier_approvals": _supplier_history(suppliers, cal),
        "receipts": _receipts(spec, cal, world, rng["receipts"], sites),
        "open_orders": _open_orders(spec, cal, world, rng["open_orders"], sites),
        "inspections": _inspections(spec, cal, world, rng["inspections"], sites),
        "objectives": _objectives(),
        "objective_results": _objective_results(cal, rng["objective_results"]),
        "capa": capa,
        "audit_findings": _audit_findings(spec, cal, rng["audit_findings"], sites),
        "audit_programme": _audit_programme(spec, cal, rng["audit_programme"], sites),
        "review_actions": _review_actions(spec, cal, world, rng["review_actions"], sites),
        "surveys": _surveys(spec, cal, world, rng["surveys"], sites),
    }
    return {name: _canonical(name, frames[name]) for name in DATASETS}
