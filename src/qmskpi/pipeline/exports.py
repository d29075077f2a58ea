"""The files staged beside a pack from its prepared data: ``kpis.xlsx``, the registers, the
minutes template, ``quarantine.csv`` and ``validation.json``; the outputs a pack must hold."""

from __future__ import annotations

import dataclasses

import polars as pl

from qmskpi import archive, contracts, minutes, render, review
from qmskpi.pipeline.prepared import Prepared

PDF_NAME = "management-review.pdf"


def wanted_outputs(*, pdf: bool, xlsx: bool) -> tuple[str, ...]:
    """The files a published pack must hold to be skipped (the PDF and ``kpis.xlsx`` if asked)."""
    names = ["management-review.html", "kpis.csv", "review-inputs.json"]
    if pdf:
        names.append(PDF_NAME)
    if xlsx:
        names.append("kpis.xlsx")
    return tuple(names)


def write_registers(prepared: Prepared, st: archive.Stage) -> list[str]:
    """Stage every register of the pack: ``register-<id>.csv`` each and ``registers.xlsx``.

    One sheet per register, named as the pack names it under each table; same
    formula neutralisation as ``kpis.csv`` / ``kpis.xlsx``. ``registers.xlsx``
    is written even with ``outputs.xlsx = false``: the pack's text points to it.
    Returns the file names.
    """
    sheets: dict[str, pl.DataFrame] = {}
    names: list[str] = []
    for t in prepared.review.tables:
        frame = prepared.registers.get(t.id)
        if not t.register or frame is None:
            continue
        name = review.register_file(t.id)
        render.write_csv(frame, st.file(name))
        names.append(name)
        sheets[t.register] = frame
    # The summary's exceptions and 9.3.2 f)'s opportunities: lists the pack also cuts short.
    for table_id, sheet, items in (
        ("exceptions", "Exceptions", prepared.review.exceptions),
        ("opportunities", "Opportunities", prepared.review.opportunities),
    ):
        if not items:
            continue
        frame = pl.DataFrame([dataclasses.asdict(i) for i in items], infer_schema_length=None)
        name = review.register_file(table_id)
        render.write_csv(frame, st.file(name))
        names.append(name)
        sheets[sheet] = frame
    if sheets:
        render.write_xlsx(sheets, st.file(review.REGISTERS_XLSX))
        names.append(review.REGISTERS_XLSX)
    return names


def write_exports(prepared: Prepared, st: archive.Stage, review_json: bytes) -> None:
    """The files beside the pack drawn from the rows but ``review-inputs.json`` and ``kpis.csv``."""
    cfg = prepared.config
    if cfg.outputs.xlsx:
        render.write_xlsx({"kpis": prepared.kpis}, st.file("kpis.xlsx"))
    write_registers(prepared, st)
    minutes.write_template(
        prepared.review,
        st.file(minutes.TEMPLATE),
        minutes.identity_of(prepared.review, pack_id=st.pack_id, review_json=review_json),
    )
    contracts.write_quarantine_csv(prepared.validation, st.file("quarantine.csv"))
    contracts.write_validation_json(prepared.validation, st.file("validation.json"))
