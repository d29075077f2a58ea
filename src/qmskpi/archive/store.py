"""The reports folder (:class:`Archive`): stage, publish atomically, find, chain, verify, clean and index packs.

Also a pack being written (:class:`Stage`), its manifest (:func:`build_manifest`)
and the index page (:func:`render_index`).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from qmskpi.archive.files import _dirs, _files, _fsync_dir, dumps, sha256_file, write_bytes_atomic
from qmskpi.archive.manifest import InputRecord, iso_utc, package_versions, utc_now
from qmskpi.archive.names import (
    _FILE_NAME,
    _PACK_ID,
    _SLUG,
    CHAIN_DIR,
    GLOBAL_LOCK,
    INDEX,
    LOCKS_DIR,
    MANIFEST,
    MANIFEST_SCHEMA,
    MINUTES_DIR,
    MINUTES_LINKS,
    PACKS_DIR,
    REGISTER,
    STAGE_LOCK,
    STAGING_DIR,
    Kind,
    StageHook,
    period_label,
    scope_slug,
)
from qmskpi.archive.pack import Pack
from qmskpi.archive.verify import FolderCheck, VerifyReport, _entry_id, verify_folder
from qmskpi.config import WHOLE_SCOPE
from qmskpi.errors import PublishError
from qmskpi.periods import parse_period
from qmskpi.render import neutralise_formula
from qmskpi.runtemp import lock_held
from qmskpi.templating import render as render_template

log = logging.getLogger("qmskpi.archive")  # one logger for the package, as before its split


@dataclass
class Stage:
    """A pack being written: a hidden folder under ``.staging/`` that only this run touches."""

    archive: Archive
    period: str
    scope: str
    slug: str
    path: Path
    pack_id: str
    created_at: datetime
    _lock_fd: int | None = field(default=None, repr=False)
    published: Pack | None = None
    kind: Kind = "pack"

    def file(self, name: str) -> Path:
        """The path of output ``name`` inside the stage (a plain file name, checked)."""
        if not _FILE_NAME.match(name):
            raise PublishError(f"not an output file name: {name!r}")
        p = self.path / name
        self.archive.check_inside(p)
        return p

    def outputs(self) -> dict[str, dict[str, Any]]:
        """sha256 and size of every file staged so far (manifest and lock excluded)."""
        out: dict[str, dict[str, Any]] = {}
        for p in _files(self.path):
            rel = p.relative_to(self.path).as_posix()
            if rel in (MANIFEST, STAGE_LOCK):
                continue
            out[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        return out

    def write_manifest(self, manifest: Mapping[str, Any]) -> Path:
        """Write ``manifest.json`` last: a stage with a manifest is complete."""
        path = self.file(MANIFEST)
        path.write_text(dumps(manifest), encoding="utf-8")
        return path


def build_manifest(
    stage: Stage,
    *,
    organisation: str,
    inputs: Sequence[InputRecord],
    inputs_digest: str,
    config_digest: str,
    config_path: str | None,
    parameters: Mapping[str, Any],
    timings: Mapping[str, float],
    outcome: str,
    supersedes: Sequence[Mapping[str, Any]] = (),
    replaces: Mapping[str, Any] | None = None,
    restatement: Mapping[str, Any] | None = None,
    versions: Mapping[str, str | None] | None = None,
    missing_outputs: Mapping[str, str] | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """The manifest of ``stage``: every output's sha256 is computed here, from the staged files.

    ``as_of`` is the day the pack was made as of when it was set (a backfill or
    ``[review] as_of``): part of ``inputs_digest``, so recorded to recompute it.

    ``missing_outputs`` names each usual file the pack lacks, with why (a PDF
    that was optional and had no browser to print it).
    """
    return {
        "schema": MANIFEST_SCHEMA,
        "pack_id": stage.pack_id,
        "organisation": organisation,
        "period": stage.period,
        "scope": stage.scope,
        "outcome": outcome,
        "created_at": iso_utc(stage.created_at),
        "inputs_digest": inputs_digest,
        "as_of": as_of.isoformat() if as_of is not None else None,
        "inputs": [i.to_dict() for i in sorted(inputs, key=lambda i: i.dataset)],
        "config": {"digest": config_digest, "path": config_path},
        "parameters": dict(parameters),
        "versions": dict(versions if versions is not None else package_versions()),
        "timings": dict(timings),
        "outputs": stage.outputs(),
        "missing_outputs": dict(missing_outputs or {}),
        "supersedes": [dict(s) for s in supersedes],
        "replaces": dict(replaces) if replaces is not None else None,
        "restatement": dict(restatement) if restatement is not None else None,
    }


class Archive:
    """The reports folder: stage, publish, find, clean and index packs.

    Every path it touches is checked to stay inside the (resolved) reports folder.
    """

    def __init__(self, reports_dir: Path | str):
        root = Path(reports_dir)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PublishError(f"cannot create the reports folder {root}: {exc}") from exc
        self.root = root.resolve()
        for name in (PACKS_DIR, STAGING_DIR, LOCKS_DIR, MINUTES_DIR, CHAIN_DIR):
            (self.root / name).mkdir(exist_ok=True)

    # -- paths ----------------------------------------------------------------

    @property
    def packs_dir(self) -> Path:
        return self.root / PACKS_DIR

    @property
    def staging_dir(self) -> Path:
        return self.root / STAGING_DIR

    @property
    def minutes_dir(self) -> Path:
        return self.root / MINUTES_DIR

    def check_inside(self, path: Path) -> Path:
        """``path`` (resolved) if it lies inside the reports folder, else :class:`PublishError`."""
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise PublishError(f"{path} is outside the reports folder {self.root}")
        return resolved

    def link_path(self, period: str, slug: str) -> Path:
        """The visible path of a pack: ``<reports>/<period>/<slug>``."""
        if period_label(period) != period or not _SLUG.match(slug):
            raise PublishError(f"not a valid period/scope folder: {period!r}/{slug!r}")
        link = self.root / period / slug
        self.check_inside(link.parent)
        return link

    def minutes_link_path(self, period: str, slug: str) -> Path:
        """The visible path of a pack's current minutes: ``<reports>/<period>/_minutes/<slug>``."""
        link = self.link_path(period, slug).parent / MINUTES_LINKS / slug
        self.check_inside(link.parent)
        return link

    def _visible(self, kind: Kind, period: str, slug: str) -> Path:
        return (
            self.link_path(period, slug) if kind == "pack" else self.minutes_link_path(period, slug)
        )

    # -- locks ----------------------------------------------------------------

    @contextlib.contextmanager
    def global_lock(self) -> Iterator[None]:
        """Serialise the short critical sections of every process using this folder."""
        fd = os.open(self.root / GLOBAL_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def pack_lock(self, period: str, slug: str) -> Iterator[None]:
        """Hold the lock of one period and scope for a whole run; fail fast when another run has it."""
        self.link_path(period, slug)
        path = self.root / LOCKS_DIR / f"{period}--{slug}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise PublishError(
                    f"{period}/{slug} is being rendered by another run (pid {holder}); "
                    "try again when it has finished"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

    # -- staging --------------------------------------------------------------

    @contextlib.contextmanager
    def stage(
        self, period: str, scope: str, *, created_at: datetime | None = None, kind: Kind = "pack"
    ) -> Iterator[Stage]:
        """A fresh staging folder for one pack; removed on exit unless it was published.

        The folder holds ``.stage.lock``, locked by this process for as long as
        the stage lives: a run killed with SIGKILL loses the lock, and the next
        :meth:`clean_stale` removes its folder.
        """
        slug = scope_slug(scope)
        self.link_path(period, slug)
        moment = created_at or utc_now()
        pack_id = f"{period}--{slug}--{moment:%Y%m%dT%H%M%SZ}--{secrets.token_hex(3)}"
        path = self.staging_dir / f"{period}--{slug}--{secrets.token_hex(6)}"
        with self.global_lock():
            path.mkdir()
            fd = os.open(path / STAGE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        st = Stage(self, period, scope, slug, path, pack_id, moment, fd, kind=kind)
        try:
            yield st
        finally:
            if st.published is None:
                shutil.rmtree(path, ignore_errors=True)
            if st._lock_fd is not None:
                os.close(st._lock_fd)
                st._lock_fd = None

    # -- reading --------------------------------------------------------------

    def _pack_at(self, path: Path) -> Pack | None:
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict):
            return None
        return Pack(path.name, path, manifest)

    def pack(self, pack_id: str) -> Pack | None:
        """A pack in ``.packs/`` by id (None when absent or without a readable manifest)."""
        if not _PACK_ID.match(pack_id):
            return None
        return self._pack_at(self.packs_dir / pack_id)

    def _link_target(self, link: Path, kind: Kind = "pack") -> str | None:
        """The pack id a visible link points at; PublishError for anything we did not make."""
        if not link.is_symlink():
            if link.exists():
                raise PublishError(
                    f"{link} is not a link made by qmskpi; move it away so the pack can be published"
                )
            return None
        target = os.readlink(link)
        prefix = f"../{PACKS_DIR}/" if kind == "pack" else f"../../{MINUTES_DIR}/"
        pack_id = target[len(prefix) :] if target.startswith(prefix) else ""
        if not _PACK_ID.match(pack_id):
            raise PublishError(f"{link} points at {target!r}, not at a qmskpi pack")
        return pack_id

    def current(self, period: str, slug: str) -> Pack | None:
        """The published pack of a period and scope, or None."""
        pack_id = self._link_target(self.link_path(period, slug))
        return self.pack(pack_id) if pack_id else None

    def published(self) -> list[Pack]:
        """Every currently published pack, by period (newest first) then scope ("all" first)."""
        found: list[Pack] = []
        for period_dir in self.root.iterdir():
            if period_dir.name.startswith(".") or not period_dir.is_dir():
                continue
            try:
                if period_label(period_dir.name) != period_dir.name:
                    continue
            except ValueError:
                continue
            for link in period_dir.iterdir():
                if link.name.startswith(".") or not _SLUG.match(link.name):
                    continue
                try:
                    pack_id = self._link_target(link)
                except PublishError:
                    continue
                pack = self.pack(pack_id) if pack_id else None
                if pack is not None:
                    found.append(pack)
        found.sort(key=lambda p: (p.scope != WHOLE_SCOPE, p.scope.lower()))
        found.sort(key=lambda p: parse_period(p.period), reverse=True)
        return found

    # -- publishing -----------------------------------------------------------

    def publish(self, stage: Stage, *, keep_previous: bool, hook: StageHook | None = None) -> Pack:
        """Make ``stage`` the visible pack of its period and scope, atomically.

        1. fsync every staged file and the folder; 2. rename the folder to
        ``.packs/<id>`` (hidden, same filesystem); 3. create a temporary relative
        symlink beside the visible path and ``os.replace`` it onto
        ``<period>/<slug>`` — the one step readers can observe, and rename(2)
        swaps it atomically even when a previous link exists. The previous pack
        stays in ``.packs/`` when ``keep_previous`` (a restatement keeps what
        was approved); otherwise it is removed once nothing points at it.
        """
        if stage.published is not None:
            raise PublishError(f"stage {stage.pack_id} is already published")
        if not (stage.path / MANIFEST).is_file():
            raise PublishError(f"stage {stage.path} has no manifest: refusing to publish")
        link = self._visible(stage.kind, stage.period, stage.slug)
        home = self.packs_dir if stage.kind == "pack" else self.minutes_dir
        target = home / stage.pack_id
        self.check_inside(target)
        with self.global_lock():
            previous = self._link_target(link, stage.kind)
            self._stamp_chain(stage)
            for p in _files(stage.path):
                if p.name == STAGE_LOCK:
                    continue
                p.chmod(0o444)
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            for d in [*_dirs(stage.path), stage.path]:
                _fsync_dir(d)
            (stage.path / STAGE_LOCK).unlink()
            os.rename(stage.path, target)
            flipped = False
            try:
                _fsync_dir(home)
                _fsync_dir(self.staging_dir)
                if hook:
                    hook("packed")
                link.parent.mkdir(parents=True, exist_ok=True)
                tmp = link.with_name(f".{link.name}.{secrets.token_hex(6)}.tmp")
                up = f"../{PACKS_DIR}" if stage.kind == "pack" else f"../../{MINUTES_DIR}"
                os.symlink(f"{up}/{stage.pack_id}", tmp)
                try:
                    os.replace(tmp, link)
                except OSError as exc:
                    tmp.unlink(missing_ok=True)
                    if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                        raise PublishError(
                            f"{link} is a folder, not a link made by qmskpi; move it away"
                        ) from exc
                    raise
                flipped = True
            finally:
                if not flipped:  # never visible: do not leave it for the next clean
                    shutil.rmtree(target, ignore_errors=True)
            _fsync_dir(link.parent)
            self._record_chain(stage.slug, target)
            pack = self._pack_at(target)
            assert pack is not None
            stage.published = pack
            if hook:
                hook("flipped")
            if previous and previous != stage.pack_id and not keep_previous:
                shutil.rmtree(home / previous, ignore_errors=True)
        log.info("published %s/%s as %s", stage.period, stage.scope, stage.pack_id)
        return pack

    # -- minutes ----------------------------------------------------------------

    def current_minutes(self, period: str, slug: str) -> Pack | None:
        """The current minutes of a period and scope (a :class:`Pack` of kind minutes), or None."""
        minutes_id = self._link_target(self.minutes_link_path(period, slug), "minutes")
        return self.minutes(minutes_id) if minutes_id else None

    def minutes(self, minutes_id: str) -> Pack | None:
        """A minutes version in ``.minutes/`` by id (None when absent)."""
        if not _PACK_ID.match(minutes_id):
            return None
        return self._pack_at(self.minutes_dir / minutes_id)

    @property
    def register_path(self) -> Path:
        """The review-actions register (``<reports>/review-actions.csv``)."""
        return self.root / REGISTER

    def append_register(self, rows: Sequence[Mapping[str, str]], columns: Sequence[str]) -> Path:
        """Append ``rows`` to the register (header written once), atomically, under the lock.

        Text is formula-neutralised as in every CSV qmskpi writes; the file is
        append-only: earlier rows are never changed (a correction appends a
        newer row with the same action id).
        """
        import csv

        with self.global_lock():
            path = self.register_path
            old = path.read_bytes() if path.is_file() else b""
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            if not old:
                writer.writerow(columns)
            for row in rows:
                writer.writerow([neutralise_formula(str(row.get(c, ""))) for c in columns])
            write_bytes_atomic(path, old + buffer.getvalue().encode("utf-8"))
        return path

    # -- chain of records ---------------------------------------------------------

    def _chain_entries(self, slug: str) -> list[Path]:
        folder = self.root / CHAIN_DIR / slug
        return sorted(folder.glob("*.json")) if folder.is_dir() else []

    def chain_head(self, slug: str) -> dict[str, str] | None:
        """The last manifest published for a scope: ``{"id", "sha256"}``, or None."""
        entries = self._chain_entries(slug)
        if not entries:
            return None
        last = entries[-1]
        return {"id": _entry_id(last), "sha256": sha256_file(last)}

    def _stamp_chain(self, stage: Stage) -> None:
        """Write the hash of the scope's previous manifest into the staged manifest (lock held)."""
        path = stage.path / MANIFEST
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["previous_manifest"] = self.chain_head(stage.slug)
        path.write_text(dumps(manifest), encoding="utf-8")

    def _record_chain(self, slug: str, published: Path) -> None:
        """Keep a copy of a just-published manifest as the scope's next chain entry (lock held)."""
        folder = self.root / CHAIN_DIR / slug
        folder.mkdir(parents=True, exist_ok=True)
        seq = len(self._chain_entries(slug)) + 1
        entry = folder / f"{seq:06d}--{published.name}.json"
        write_bytes_atomic(entry, (published / MANIFEST).read_bytes())
        entry.chmod(0o444)

    def verify_chain(self, slug: str) -> list[str]:
        """Check the chain of one scope's manifests; the first broken link is named first.

        Each entry must record the sha256 of the entry before it (the first:
        none), and each manifest still kept in ``.packs``/``.minutes`` must be
        byte-identical to its chain entry.
        """
        problems: list[str] = []
        previous: dict[str, str] | None = None
        for n, entry in enumerate(self._chain_entries(slug), start=1):
            data = entry.read_bytes()
            try:
                recorded = json.loads(data).get("previous_manifest")
            except (ValueError, AttributeError):
                problems.append(f"link {n} ({entry.name}): not a readable manifest")
                break
            rec_sha = recorded.get("sha256") if isinstance(recorded, dict) else None
            want_sha = previous["sha256"] if previous else None
            if rec_sha != want_sha:
                problems.append(
                    f"link {n} ({_entry_id(entry)}): records previous manifest "
                    f"{rec_sha or 'none'}, but the entry before it "
                    f"({previous['id'] if previous else 'none'}) hashes to {want_sha or 'none'}: "
                    "the chain is broken here"
                )
                break
            entry_id = _entry_id(entry)
            for home in (self.packs_dir, self.minutes_dir):
                kept = home / entry_id / MANIFEST
                if kept.is_file() and kept.read_bytes() != data:
                    problems.append(
                        f"link {n} ({entry_id}): its manifest.json differs from the chain's copy"
                    )
            previous = {"id": entry_id, "sha256": hashlib.sha256(data).hexdigest()}
        return problems

    # -- signatures (optional: the ``sign`` extra, cryptography's Ed25519) -------

    def sign_chain(self, slug: str, private_key_pem: bytes) -> list[Path]:
        """Sign every chain entry of a scope not yet signed; return the ``.sig`` files written.

        Each signature is Ed25519 over the entry's exact bytes, base64 in
        ``<entry>.sig``. Signing the newest entry covers the chain before it
        (each manifest records its predecessor's sha256).
        """
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
            from cryptography.hazmat.primitives.serialization import load_pem_private_key
        except ImportError as exc:  # pragma: no cover - cryptography comes with GX today
            raise PublishError(
                f"signing needs cryptography: pip install 'qmskpi[sign]' ({exc})"
            ) from exc

        try:
            key = load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise PublishError(f"not a readable unencrypted PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise PublishError(
                "the signing key is not an Ed25519 key (openssl genpkey -algorithm ed25519)"
            )
        written: list[Path] = []
        with self.global_lock():
            for entry in self._chain_entries(slug):
                sig = entry.with_name(entry.name + ".sig")
                if sig.exists():
                    continue
                write_bytes_atomic(sig, base64.b64encode(key.sign(entry.read_bytes())) + b"\n")
                written.append(sig)
        return written

    def verify_signatures(self, slug: str, public_key_pem: bytes) -> list[str]:
        """Every signature of a scope's chain checked with the public key; the newest must be signed."""
        try:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
            from cryptography.hazmat.primitives.serialization import load_pem_public_key
        except ImportError as exc:  # pragma: no cover - cryptography comes with GX today
            raise PublishError(
                f"signatures need cryptography: pip install 'qmskpi[sign]' ({exc})"
            ) from exc

        try:
            key = load_pem_public_key(public_key_pem)
        except (ValueError, TypeError) as exc:
            raise PublishError(f"not a readable PEM public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise PublishError("the public key is not an Ed25519 key")
        problems: list[str] = []
        entries = self._chain_entries(slug)
        for n, entry in enumerate(entries, start=1):
            sig = entry.with_name(entry.name + ".sig")
            if not sig.is_file():
                continue
            try:
                key.verify(base64.b64decode(sig.read_bytes(), validate=False), entry.read_bytes())
            except (InvalidSignature, ValueError):
                problems.append(f"link {n} ({_entry_id(entry)}): signature does not match")
        if entries and not entries[-1].with_name(entries[-1].name + ".sig").is_file():
            problems.append(
                f"link {len(entries)} ({_entry_id(entries[-1])}): newest manifest not signed"
            )
        return problems

    def verify(
        self, scope: str | None = None, *, public_key_pem: bytes | None = None
    ) -> VerifyReport:
        """Verify every kept pack and minutes version (of ``scope``, or all) and their chains.

        With ``public_key_pem``, also every chain's signatures (see :meth:`sign_chain`).
        """
        published = self.published()
        slugs = sorted(
            {p.name for p in (self.root / CHAIN_DIR).iterdir() if p.is_dir()}
            | {scope_slug(p.scope) for p in published}
            if scope is None
            else {scope_slug(scope)}
        )
        folders: list[FolderCheck] = []
        chains: dict[str, list[str]] = {}
        for slug in slugs:
            chains[slug] = self.verify_chain(slug)
            if public_key_pem is not None:
                chains[slug] += self.verify_signatures(slug, public_key_pem)
            for entry in self._chain_entries(slug):
                entry_id = _entry_id(entry)
                for home in (self.packs_dir, self.minutes_dir):
                    if (home / entry_id).is_dir():
                        folders.append(verify_folder(home / entry_id))
            for pack in published:
                if scope_slug(pack.scope) == slug and not any(f.path == pack.path for f in folders):
                    check = verify_folder(pack.path)
                    folders.append(replace(check, unchained=True))
        return VerifyReport(tuple(folders), chains)

    # -- cleaning -------------------------------------------------------------

    def clean_stale(self) -> list[str]:
        """Remove what killed runs left behind; return the removed paths (relative).

        * staging folders whose ``.stage.lock`` no live process holds (flock is
          released by the kernel when its owner dies, even by SIGKILL);
        * hidden temporary links and index files (written only under the global lock);
        * packs in ``.packs/`` that no visible link and no current manifest's
          ``supersedes`` refers to (a run killed between the two renames).

        Staging of a concurrently running process is never touched: it holds its lock.
        """
        removed: list[str] = []
        with self.global_lock():
            for d in sorted(self.staging_dir.iterdir()):
                if not d.is_dir() or d.is_symlink():
                    d.unlink(missing_ok=True)
                    removed.append(str(d.relative_to(self.root)))
                    continue
                if _stage_is_live(d):
                    continue
                shutil.rmtree(d, ignore_errors=True)
                removed.append(str(d.relative_to(self.root)))
            for tmp in self.root.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                removed.append(tmp.name)
            keep: set[str] = set()
            for period_dir in self.root.iterdir():
                if period_dir.name.startswith(".") or not period_dir.is_dir():
                    continue
                minutes_links = period_dir / MINUTES_LINKS
                if minutes_links.is_dir() and not minutes_links.is_symlink():
                    # temporary links of a killed minutes publish (minutes folders are records:
                    # never removed here)
                    for tmp in minutes_links.glob(".*.tmp"):
                        tmp.unlink(missing_ok=True)
                        removed.append(str(tmp.relative_to(self.root)))
                for entry in period_dir.iterdir():
                    if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                        entry.unlink(missing_ok=True)
                        removed.append(str(entry.relative_to(self.root)))
                        continue
                    try:
                        pack_id = self._link_target(entry)
                    except PublishError:
                        continue
                    if pack_id:
                        keep.add(pack_id)
                        pack = self.pack(pack_id)
                        if pack is not None:
                            keep.update(str(s.get("id")) for s in pack.superseded)
            for d in sorted(self.packs_dir.iterdir()):
                if d.name not in keep:
                    if d.is_dir() and not d.is_symlink():
                        shutil.rmtree(d, ignore_errors=True)
                    else:
                        d.unlink(missing_ok=True)
                    removed.append(str(d.relative_to(self.root)))
        if removed:
            log.info("removed %d stale item(s) from %s", len(removed), self.root)
        return removed

    # -- index ----------------------------------------------------------------

    def write_index(
        self, organisation: str, *, closed_actions: frozenset[str] = frozenset()
    ) -> Path:
        """Rewrite ``index.html`` (atomically) from the published packs' manifests.

        ``closed_actions``: action ids reported closed in the analyst's
        ``review_actions`` source (the register itself only records them open).
        Left untouched when it already says exactly that.
        """
        with self.global_lock():
            packs = self.published()
            page = render_index(organisation, packs, self, closed_actions=closed_actions).encode(
                "utf-8"
            )
            path = self.root / INDEX
            try:
                same = path.read_bytes() == page
            except OSError:
                same = False
            if not same:
                write_bytes_atomic(path, page)
        return path


def _stage_is_live(stage_dir: Path) -> bool:
    """True when a live process holds the stage's lock (caller holds the global lock)."""
    # created and locked under the global lock: a missing lock is a dead run
    return bool(lock_held(stage_dir / STAGE_LOCK))


# --------------------------------------------------------------------------- index page


def _href(*parts: str) -> str:
    """A relative link from index.html, every component percent-encoded (the page escapes it)."""
    return "/".join(quote(p, safe="") for p in parts)


def _links(base: Sequence[str], files: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(href, label) of the HTML and PDF among ``files``, under ``base``."""
    return [
        (_href(*base, name), label)
        for name, label in (("management-review.html", "HTML"), ("management-review.pdf", "PDF"))
        if name in files
    ]


def register_actions(path: Path) -> dict[str, dict[str, str]]:
    """The register's rows by action id (a later row for the same id wins)."""
    import csv

    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["action_id"]: row for row in csv.DictReader(fh) if row.get("action_id")}


def _minutes_cell(
    pack: Pack, archive: Archive, actions: Mapping[str, Mapping[str, str]], closed: frozenset[str]
) -> dict[str, Any] | None:
    """The index's minutes cell of ``pack``: version, approval, links, actions; None if none."""
    slug = scope_slug(pack.scope)
    try:
        current = archive.current_minutes(pack.period, slug)
    except PublishError:
        current = None
    if current is None:
        return None
    m = current.manifest
    base = (pack.period, MINUTES_LINKS, slug)
    mine = [
        a
        for a in actions.values()
        if a.get("period") == pack.period and a.get("scope") == pack.scope
    ]
    still_open = [
        a for a in mine if a.get("status") != "closed" and a.get("action_id") not in closed
    ]
    return {
        "approved": m.get("status") == "approved",
        "version": int(m.get("version", 1)),
        "on": str((m.get("approval") or {}).get("on", "")),
        "links": [
            (_href(*base, name), label)
            for name, label in (("minutes.html", "HTML"), ("minutes.pdf", "PDF"))
            if name in m.get("outputs", {})
        ],
        "counts": f"{len(mine)} action(s), {len(still_open)} open" if mine else "no action",
    }


def render_index(
    organisation: str,
    packs: Sequence[Pack],
    archive: Archive,
    *,
    closed_actions: frozenset[str] = frozenset(),
) -> str:
    """The offline index page (``templates/html/reports_index.html.j2``): no script, no
    external resource, every string escaped."""
    rows: list[dict[str, Any]] = []
    actions = register_actions(archive.register_path)
    for pack in packs:
        m = pack.manifest
        restated = m.get("restatement") or None
        superseded = []
        for s in pack.superseded:
            sid = str(s.get("id", ""))
            old = archive.pack(sid)
            links = _links((PACKS_DIR, sid), old.manifest.get("outputs", {})) if old else None
            superseded.append(
                {"created_at": str(s.get("created_at", "")), "id": sid, "links": links}
            )
        rows.append(
            {
                "period": pack.period,
                "scope": pack.scope,
                "links": _links((pack.period, scope_slug(pack.scope)), m.get("outputs", {})),
                "created_at": pack.created_at,
                "outcome": str(m.get("outcome", "")),
                "changed_kpis": int(restated.get("changed_kpis", 0)) if restated else None,
                "minutes": _minutes_cell(pack, archive, actions, closed_actions),
                "superseded": superseded,
            }
        )
    title = f"{organisation} — management-review packs"
    return render_template("reports_index.html.j2", title=title, rows=rows)
