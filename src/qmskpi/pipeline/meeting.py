"""After the review meeting: the filled ``minutes.xlsx`` checked and published beside its
pack (:func:`publish_minutes`), its accepted actions added to the register."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from qmskpi import archive, minutes, render, runtemp
from qmskpi.config import Config, PdfPolicy
from qmskpi.errors import PeriodError, PublishError, RenderError, SourceError
from qmskpi.periods import Period, parse_period
from qmskpi.pipeline.inputs import as_config, closed_actions
from qmskpi.pipeline.processes import pdf_policy, why_no_pdf

log = logging.getLogger("qmskpi.pipeline")  # one logger for the package, as before its split


@dataclass(frozen=True)
class MinutesOutcome:
    """What ``qmskpi minutes`` did: a new version published, or nothing changed."""

    period: str
    scope: str
    status: Literal["published", "unchanged"]
    minutes_id: str
    version: int
    approved: bool
    path: Path
    changes: int = 0
    actions_registered: int = 0


@runtemp.in_run_tmpdir
def publish_minutes(
    config: Config | str | os.PathLike[str],
    period: Period | str,
    scope: str,
    source: str | os.PathLike[str],
    *,
    pdf: bool | PdfPolicy | None = None,
    printer: render.PdfPrinter | None = None,
) -> MinutesOutcome:
    """Validate a filled ``minutes.xlsx`` and publish the minutes beside the pack.

    The template must belong to the published pack of ``period`` and
    ``scope`` (:class:`~qmskpi.minutes.MinutesError` otherwise, naming sheet,
    row and column). Every call that changes the record publishes a new
    version (``minutes.html``, ``minutes.pdf``, ``minutes.json``, the filled
    workbook, ``changes.json`` for a correction) atomically under
    ``<reports>/<period>/_minutes/<scope>``, with a manifest that records the
    pack's manifest sha256. An approved version is never changed or removed:
    a correction is a new version that shows what changed. The accepted
    actions of an approved version are appended to the review-actions register.
    ``pdf`` overrides ``outputs.pdf`` as for packs: without a browser, ``required``
    raises :class:`~qmskpi.errors.RenderError` and ``optional`` publishes HTML only.
    """
    cfg = as_config(config)
    p = parse_period(period)
    slug = archive.check_scope(cfg, scope)
    arch = archive.Archive(cfg.reports_dir)
    src = Path(source)
    if not src.is_file():
        raise SourceError(f"{src}: no such file (the filled minutes.xlsx of the pack)")
    with arch.pack_lock(p.label, slug):
        pack = arch.current(p.label, slug)
        if pack is None:
            raise PeriodError(  # a --period/--site with nothing to minute: a usage error (2)
                f"no published pack for {p.label} ({scope}): render it first, then fill in "
                f"its {minutes.TEMPLATE}"
            )
        problems = pack.verify()
        if problems:
            raise PublishError(f"the published pack {pack.id} fails verification: {problems}")
        expected = minutes.PackIdentity(
            p.label, scope, pack.id, archive.sha256_file(pack.file("review-inputs.json"))
        )
        record = minutes.read_filled(src, expected=expected)
        current = arch.current_minutes(p.label, slug)
        previous = (
            minutes.Minutes.from_dict(json.loads(current.file("minutes.json").read_text("utf-8")))
            if current is not None
            else None
        )
        if current is not None and previous is not None and previous == record:
            return MinutesOutcome(
                p.label,
                scope,
                "unchanged",
                current.id,
                int(current.manifest.get("version", 1)),
                previous.approved,
                arch.minutes_link_path(p.label, slug),
            )
        outcome = _stage_minutes(cfg, arch, pack, record, src, current, previous, pdf, printer)
    try:
        arch.write_index(cfg.organisation, closed_actions=closed_actions(cfg))
    except OSError as exc:
        log.warning("could not rewrite %s: %s", arch.root / archive.INDEX, exc)
    return outcome


# Long by design: the minutes' stage -> files -> manifest -> publish -> register sequence
# reads top to bottom like run._run_locked's; the manifest literal is most of it.
def _stage_minutes(
    cfg: Config,
    arch: archive.Archive,
    pack: archive.Pack,
    record: minutes.Minutes,
    src: Path,
    current: archive.Pack | None,
    previous: minutes.Minutes | None,
    pdf: bool | PdfPolicy | None,
    printer: render.PdfPrinter | None,
) -> MinutesOutcome:
    version = int(current.manifest.get("version", 0)) + 1 if current is not None else 1
    changed = minutes.changes(previous, record) if previous is not None else []
    was_approved = current is not None and current.manifest.get("status") == "approved"
    supersedes: list[dict[str, Any]] = []
    if current is not None:
        kept = list(current.manifest.get("supersedes", []))
        supersedes = (
            [{"id": current.id, "version": version - 1, "status": "approved"}, *kept]
            if was_approved
            else kept
        )
    policy = pdf_policy(pdf, cfg)
    no_pdf = why_no_pdf(policy, printer)
    if no_pdf is not None and policy == "required":
        raise RenderError(f"the minutes PDF cannot be printed: {no_pdf}")
    source_sha = archive.sha256_file(src)
    meeting = record.meeting
    with arch.stage(pack.period, pack.scope, kind="minutes") as st:
        shutil.copyfile(src, st.file("minutes-filled.xlsx"))
        st.file("minutes.json").write_text(record.to_json(), encoding="utf-8")
        if changed:
            st.file("changes.json").write_text(archive.dumps(changed), encoding="utf-8")
        page = minutes.minutes_html(
            record,
            organisation=cfg.organisation,
            version=version,
            pack_manifest_sha256=archive.sha256_file(pack.file(archive.MANIFEST)),
            template_sha256=source_sha,
            changed=changed,
            previous_id=current.id if current is not None else None,
        )
        html_path = st.file("minutes.html")
        html_path.write_text(page, encoding="utf-8")
        if no_pdf is None:
            render.print_pdf(
                html_path,
                st.file("minutes.pdf"),
                timeout_s=int(cfg.outputs.browser_timeout_s),
                printer=printer,
            )
        manifest = {
            "schema": archive.MINUTES_SCHEMA,
            "minutes_id": st.pack_id,
            "organisation": cfg.organisation,
            "period": pack.period,
            "scope": pack.scope,
            "version": version,
            "status": "approved" if record.approved else "draft",
            "approval": {"by": meeting.approved_by, "on": meeting.approved_on.isoformat()}
            if meeting.approved_on is not None
            else None,
            "meeting_date": meeting.meeting_date.isoformat(),
            "created_at": archive.iso_utc(st.created_at),
            "pack": {
                "id": pack.id,
                "manifest_sha256": archive.sha256_file(pack.file(archive.MANIFEST)),
            },
            "source": {"sha256": source_sha},
            "actions": [record.action_id(d) for d in record.actions],
            "changes": len(changed),
            "no_pdf": no_pdf,
            "supersedes": supersedes,
            "versions": archive.package_versions(),
            "outputs": st.outputs(),
        }
        st.write_manifest(manifest)
        published = arch.publish(st, keep_previous=was_approved)
    registered = 0
    if record.approved:
        rows = minutes.register_rows(record, minutes_id=published.id)
        if rows:
            arch.append_register(rows, minutes.REGISTER_COLUMNS)
        registered = len(rows)
    log.info(
        "minutes %s/%s version %d published as %s", pack.period, pack.scope, version, published.id
    )
    return MinutesOutcome(
        pack.period,
        pack.scope,
        "published",
        published.id,
        version,
        record.approved,
        arch.minutes_link_path(pack.period, archive.scope_slug(pack.scope)),
        changes=len(changed),
        actions_registered=registered,
    )
