"""Keeping packs as quality records: staging, one atomic publish, manifest, index.

A run writes its pack into a hidden staging folder, seals it (fsync), moves it
into ``.packs/`` under a fresh id and then makes it visible with **one**
``rename(2)``: a new relative symlink is renamed onto ``<period>/<scope>``.
Readers therefore see either the previous pack or the new one, never a mix and
never a half-written file, whatever happens to the run (SIGKILL, a failing
cell, a browser crash, a full disk). The layout of the reports folder::

    reports/
      index.html                       every published pack (rewritten atomically)
      2026-10/
        all -> ../.packs/2026-10--all--20261101T060000Z--3f9a2c
        plant-a -> ../.packs/2026-10--plant-a--20261101T060012Z--b81e07
      .packs/<pack id>/                immutable packs: current and superseded
      .staging/<period>--<slug>--<random>/   runs in progress (each holds .stage.lock)
      .locks/<period>--<slug>.lock     one run per period and scope at a time
      .lock                            short critical sections (stage, publish, clean, index)

Everything hidden (a name starting with ``.``) is machinery; everything visible
is complete. :meth:`Archive.clean_stale` removes what a killed run left behind:
staging folders whose owner no longer holds their lock, temporary links and
index files, and packs no link or manifest refers to.

This module knows nothing of the stages before it: the pipeline hands it files
and plain records. See ``docs/scheduling.md`` for the operator's view.

The parts, in the order they import each other (import-linter enforces it):

- :mod:`~qmskpi.archive.store`: :class:`Archive` (stage, publish, find, chain of
  records, signatures, verify, clean), :class:`Stage`, :func:`build_manifest`
  and the index page (:func:`render_index`);
- :mod:`~qmskpi.archive.restatement` (:func:`compare_kpis`, :func:`changed_inputs`: polars),
  :mod:`~qmskpi.archive.verify` (:func:`verify_folder`, :class:`VerifyReport`) and
  :mod:`~qmskpi.archive.pack` (:class:`Pack`);
- :mod:`~qmskpi.archive.manifest` (:class:`InputRecord`, :func:`inputs_digest`,
  :func:`package_versions`) and :mod:`~qmskpi.archive.files` (:func:`sha256_file`,
  :func:`write_bytes_atomic`, :func:`dumps`);
- :mod:`~qmskpi.archive.names`: the folder and file names, :func:`period_label`,
  :func:`scope_slug`, :func:`check_scope`.
"""

from __future__ import annotations

from qmskpi.archive.files import dumps, sha256_file, write_bytes_atomic
from qmskpi.archive.manifest import VERSIONED_PACKAGES as VERSIONED_PACKAGES
from qmskpi.archive.manifest import InputRecord, inputs_digest, iso_utc, package_versions, utc_now
from qmskpi.archive.names import (
    CHAIN_DIR,
    INDEX,
    MANIFEST,
    MINUTES_SCHEMA,
    REGISTER,
    check_scope,
    period_label,
    scope_slug,
)
from qmskpi.archive.names import GLOBAL_LOCK as GLOBAL_LOCK
from qmskpi.archive.names import LOCKS_DIR as LOCKS_DIR
from qmskpi.archive.names import MANIFEST_SCHEMA as MANIFEST_SCHEMA
from qmskpi.archive.names import MINUTES_DIR as MINUTES_DIR
from qmskpi.archive.names import MINUTES_LINKS as MINUTES_LINKS
from qmskpi.archive.names import PACKS_DIR as PACKS_DIR
from qmskpi.archive.names import STAGE_LOCK as STAGE_LOCK
from qmskpi.archive.names import STAGING_DIR as STAGING_DIR
from qmskpi.archive.names import Kind as Kind
from qmskpi.archive.names import StageHook as StageHook
from qmskpi.archive.pack import Pack
from qmskpi.archive.restatement import RESTATEMENT_COLUMNS, changed_inputs, compare_kpis
from qmskpi.archive.store import Archive, Stage, build_manifest, register_actions
from qmskpi.archive.store import render_index as render_index
from qmskpi.archive.verify import FolderCheck, VerifyReport, verify_folder

__all__ = [
    "CHAIN_DIR",
    "INDEX",
    "MANIFEST",
    "MINUTES_SCHEMA",
    "REGISTER",
    "RESTATEMENT_COLUMNS",
    "Archive",
    "FolderCheck",
    "InputRecord",
    "Pack",
    "Stage",
    "VerifyReport",
    "build_manifest",
    "changed_inputs",
    "check_scope",
    "compare_kpis",
    "dumps",
    "inputs_digest",
    "iso_utc",
    "package_versions",
    "period_label",
    "register_actions",
    "scope_slug",
    "sha256_file",
    "utc_now",
    "verify_folder",
    "write_bytes_atomic",
]
