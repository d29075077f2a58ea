"""archive.store: staging, one atomic publish, chain of records, locks, stale clean-up, index.

These tests use cheap fake pack contents: they are about the archive, not the
render. The pipeline's end-to-end and fault-injection tests are in
``tests/pipeline/``.
"""

from __future__ import annotations

import errno
import fcntl
import html
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.helpers import manifest_sha, stage_pack, visible
from browser import offline_page
from conftest import mounted_tmpfs
from qmskpi import archive
from qmskpi.archive import Archive
from qmskpi.errors import PeriodError, PublishError
from qmskpi.render import PdfPrinter


@pytest.mark.parametrize(
    ("period", "slug"),
    [("2026-13", "all"), ("..", "all"), ("2026-10", ".."), ("2026-10", "a/b"), ("26-10", "all")],
)
def test_link_path_refuses_bad_components(arch: Archive, period: str, slug: str) -> None:
    with pytest.raises((PublishError, PeriodError)):
        arch.link_path(period, slug)


def test_link_path_stays_inside_reports_even_through_a_symlink(
    arch: Archive, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (arch.root / "2026-10").symlink_to(outside)
    with pytest.raises(PublishError, match="outside the reports folder"):
        arch.link_path("2026-10", "all")


def test_stage_file_names_are_checked(arch: Archive) -> None:
    with arch.stage("2026-10", "all") as st:
        for bad in ("../x", "/etc/passwd", ".hidden", "a/b", ""):
            with pytest.raises(PublishError):
                st.file(bad)


# --------------------------------------------------------------------------- publish


def test_publish_makes_a_complete_immutable_pack_visible(arch: Archive) -> None:
    pack = stage_pack(arch)
    link = arch.root / "2026-10" / "all"
    assert link.is_symlink()
    assert os.readlink(link) == f"../.packs/{pack.id}"
    assert re.fullmatch(r"2026-10--all--\d{8}T\d{6}Z--[0-9a-f]{6}", pack.id)
    manifest = json.loads((link / "manifest.json").read_text())
    assert manifest["pack_id"] == pack.id
    assert manifest["schema"] == "qmskpi.manifest/1"
    assert set(manifest["outputs"]) == {
        "kpis.csv",
        "management-review.html",
        "management-review.pdf",
    }
    for name, meta in manifest["outputs"].items():
        assert archive.sha256_file(link / name) == meta["sha256"]
        assert (link / name).stat().st_mode & 0o222 == 0  # read-only
    assert not (link / ".stage.lock").exists()
    assert list(arch.staging_dir.iterdir()) == []
    assert arch.current("2026-10", "all") == pack
    assert pack.verify() == []


def test_publish_over_a_previous_pack_flips_the_link(arch: Archive) -> None:
    old = stage_pack(arch, kpis="complaints_received,all,2026-10,12,,,count,true\n")
    new = stage_pack(arch, kpis="complaints_received,all,2026-10,13,,,count,true\n")
    link = arch.root / "2026-10" / "all"
    assert os.readlink(link) == f"../.packs/{new.id}"
    assert "13" in (link / "kpis.csv").read_text()
    assert not old.path.exists()  # replaced, not kept
    kept = stage_pack(arch, keep_previous=True)
    assert new.path.is_dir()  # superseded packs are kept
    assert arch.current("2026-10", "all") == kept
    # No temporary link or file left beside the visible one.
    assert sorted(p.name for p in (arch.root / "2026-10").iterdir()) == ["all"]


def test_failure_while_staging_leaves_the_published_pack_and_no_trace(arch: Archive) -> None:
    old = stage_pack(arch)
    before = visible(arch.root)

    def half_written_then_failing_cell() -> None:
        with arch.stage("2026-10", "all") as st:
            st.file("kpis.csv").write_text("half")
            raise RuntimeError("cell 7 raised")

    with pytest.raises(RuntimeError, match="cell 7"):
        half_written_then_failing_cell()
    assert visible(arch.root) == before
    assert arch.current("2026-10", "all") == old
    assert old.verify() == []
    assert list(arch.staging_dir.iterdir()) == []


def test_publish_refuses_a_stage_without_manifest(arch: Archive) -> None:
    with arch.stage("2026-10", "all") as st:
        st.file("kpis.csv").write_text("x")
        with pytest.raises(PublishError, match="no manifest"):
            arch.publish(st, keep_previous=False)
    assert not (arch.root / "2026-10" / "all").exists()


def test_publish_refuses_to_replace_a_folder_it_did_not_make(arch: Archive) -> None:
    foreign = arch.root / "2026-10" / "all"
    foreign.mkdir(parents=True)
    (foreign / "mine.txt").write_text("someone's file")
    with pytest.raises(PublishError, match="not a link made by qmskpi"):
        stage_pack(arch)
    assert (foreign / "mine.txt").read_text() == "someone's file"
    assert list(arch.packs_dir.iterdir()) == []
    assert list(arch.staging_dir.iterdir()) == []


# --------------------------------------------------------------------------- chain and verify


def test_each_manifest_records_the_previous_manifest_of_its_scope(arch: Archive) -> None:
    a = stage_pack(arch, "2026-08", "all")
    site = stage_pack(arch, "2026-08", "Plant A")
    b = stage_pack(arch, "2026-09", "all")
    c = stage_pack(arch, "2026-09", "all")  # replaces b: b's folder goes, its record stays
    assert a.manifest["previous_manifest"] is None
    assert site.manifest["previous_manifest"] is None
    assert b.manifest["previous_manifest"] == {"id": a.id, "sha256": manifest_sha(a)}
    assert c.manifest["previous_manifest"]["id"] == b.id
    assert not b.path.exists()
    chain = sorted(p.name for p in (arch.root / archive.CHAIN_DIR / "all").iterdir())
    assert chain == [f"00000{i}--{p.id}.json" for i, p in enumerate((a, b, c), start=1)]
    report = arch.verify()
    assert report.intact, report.problems()
    assert sorted(f.path.name for f in report.folders) == sorted([a.id, c.id, site.id])
    assert set(report.chains) == {"all", "plant-a"}


def test_verify_names_the_first_broken_link_of_the_chain(arch: Archive) -> None:
    packs = [stage_pack(arch, p, "all") for p in ("2026-07", "2026-08", "2026-09", "2026-10")]
    # Rewrite the second manifest and its chain copy consistently (covering one's tracks):
    # the third manifest still records the original hash, so the chain breaks at link 3.
    entries = sorted((arch.root / archive.CHAIN_DIR / "all").iterdir())
    for target in (packs[1].path / "manifest.json", entries[1]):
        target.chmod(0o644)
        target.write_text(target.read_text().replace('"outcome": "published"', '"outcome": "x"'))
    problems = arch.verify_chain("all")
    assert len(problems) == 1
    assert problems[0].startswith(f"link 3 ({packs[2].id}): records previous manifest ")
    assert (
        f"but the entry before it ({packs[1].id}) hashes to {manifest_sha(packs[1])}"
        in (problems[0])
    )
    assert "the chain is broken here" in problems[0]
    # Editing only the kept manifest (not the chain's copy) is named too.
    entries[1].write_text(
        entries[1].read_text().replace('"outcome": "x"', '"outcome": "published"')
    )
    assert arch.verify_chain("all") == [
        f"link 2 ({packs[1].id}): its manifest.json differs from the chain's copy"
    ]


def test_signed_chain_verifies_and_a_rewritten_manifest_or_wrong_key_does_not(
    arch: Archive,
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    def pem_pair() -> tuple[bytes, bytes]:
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return private, public

    private, public = pem_pair()
    _, other_public = pem_pair()
    a = stage_pack(arch, "2026-09", "all")
    assert len(arch.sign_chain("all", private)) == 1
    b = stage_pack(arch, "2026-10", "all")
    assert arch.verify("all", public_key_pem=public).problems() == [
        f"chain of scope all: link 2 ({b.id}): newest manifest not signed"
    ]
    assert len(arch.sign_chain("all", private)) == 1  # only the new entry
    assert arch.verify("all", public_key_pem=public).intact
    assert arch.verify("all", public_key_pem=other_public).problems() == [
        f"chain of scope all: link 1 ({a.id}): signature does not match",
        f"chain of scope all: link 2 ({b.id}): signature does not match",
    ]
    # Rewriting the newest manifest and its chain copy consistently escapes the chain check,
    # not the signature.
    entry = sorted((arch.root / archive.CHAIN_DIR / "all").glob("*.json"))[-1]
    for target in (b.path / "manifest.json", entry):
        target.chmod(0o644)
        target.write_text(target.read_text().replace('"outcome": "published"', '"outcome": "x"'))
    assert arch.verify_chain("all") == []
    assert arch.verify("all", public_key_pem=public).problems() == [
        f"chain of scope all: link 2 ({b.id}): signature does not match"
    ]
    with pytest.raises(PublishError, match="not a readable"):
        arch.sign_chain("all", b"not a key")


# --------------------------------------------------------------------------- locks and cleaning


HOLD_STAGE = textwrap.dedent(
    """
    import sys, time
    from qmskpi.archive import Archive
    arch = Archive(sys.argv[1])
    with arch.pack_lock("2026-10", "all"), arch.stage("2026-10", "all") as st:
        st.file("kpis.csv").write_text("in progress")
        print(st.path, flush=True)
        sys.stdin.read()
    """
)


@pytest.fixture
def live_run(arch: Archive) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Another process in the middle of a run: holds the pack lock and a staging folder."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_STAGE, str(arch.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    stage_dir = Path(proc.stdout.readline().strip())
    try:
        yield proc, stage_dir
    finally:
        proc.kill()
        proc.communicate()


def test_pack_lock_is_exclusive_and_names_the_holder(
    arch: Archive, live_run: tuple[subprocess.Popen[str], Path]
) -> None:
    proc, _ = live_run
    with (
        pytest.raises(PublishError, match=rf"another run \(pid {proc.pid}\)"),
        arch.pack_lock("2026-10", "all"),
    ):
        pass
    with arch.pack_lock("2026-10", "plant-a"):  # other scopes are free
        pass


def test_clean_stale_keeps_a_live_stage_and_removes_it_once_its_owner_is_killed(
    arch: Archive, live_run: tuple[subprocess.Popen[str], Path]
) -> None:
    proc, stage_dir = live_run
    assert stage_dir.parent == arch.staging_dir
    assert arch.clean_stale() == []
    assert (stage_dir / "kpis.csv").read_text() == "in progress"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert arch.clean_stale() == [f".staging/{stage_dir.name}"]
    assert list(arch.staging_dir.iterdir()) == []
    with arch.pack_lock("2026-10", "all"):  # the kernel released the dead run's lock
        pass


def test_clean_stale_removes_orphans_and_temporaries_but_keeps_superseded(
    arch: Archive,
) -> None:
    first = stage_pack(arch)
    second = stage_pack(
        arch,
        keep_previous=True,
        supersedes=[{"id": first.id, "created_at": first.created_at}],
        restatement={"changed_kpis": 1},
    )
    orphan = arch.packs_dir / "2026-09--all--20261001T000000Z--abcdef"
    orphan.mkdir()
    (orphan / "manifest.json").write_text("{}")
    stray_link = arch.root / "2026-10" / ".all.0123456789ab.tmp"
    stray_link.symlink_to("../.packs/x")
    stray_index = arch.root / ".index.html.0123456789ab.tmp"
    stray_index.write_text("half")
    no_lock = arch.staging_dir / "2026-10--all--0123456789ab"
    no_lock.mkdir()
    removed = arch.clean_stale()
    assert sorted(removed) == sorted(
        [
            f".packs/{orphan.name}",
            "2026-10/.all.0123456789ab.tmp",
            ".index.html.0123456789ab.tmp",
            f".staging/{no_lock.name}",
        ]
    )
    assert first.path.is_dir()
    assert second.path.is_dir()
    assert arch.current("2026-10", "all") == second


KILL_IN_PUBLISH = textwrap.dedent(
    """
    import os, signal, sys
    from qmskpi import archive
    arch = archive.Archive(sys.argv[1])
    step = sys.argv[2]
    def hook(name):
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)
    with arch.pack_lock("2026-10", "all"), arch.stage("2026-10", "all") as st:
        st.file("kpis.csv").write_text("new")
        st.write_manifest(archive.build_manifest(
            st, organisation="Acme", inputs=[], inputs_digest="n", config_digest="c",
            config_path=None, parameters={}, timings={}, outcome="published",
            versions={}))
        arch.publish(st, keep_previous=False, hook=hook)
    """
)


@pytest.mark.parametrize("step", ["packed", "flipped"])
def test_sigkill_inside_publish(arch: Archive, step: str) -> None:
    """Killed between the two renames: the old pack stays; killed after the flip: the new one."""
    old = stage_pack(arch)
    proc = subprocess.run([sys.executable, "-c", KILL_IN_PUBLISH, str(arch.root), step])
    assert proc.returncode == -signal.SIGKILL
    current = arch.current("2026-10", "all")
    assert current is not None
    if step == "packed":
        assert current == old
        assert old.verify() == []
    else:
        assert current.id != old.id
        assert (arch.root / "2026-10" / "all" / "kpis.csv").read_text() == "new"
    removed = arch.clean_stale()
    if step == "packed":
        assert len(removed) == 1  # the pack that never became visible
        assert removed[0].startswith(".packs/")
    else:
        assert removed == [f".packs/{old.id}"]  # killed before removing the replaced pack
    assert {p.name for p in arch.packs_dir.iterdir()} == {current.id}


# --------------------------------------------------------------------------- full disk


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs (root only; skipped elsewhere: the pipeline tests simulate ENOSPC too)."""
    with mounted_tmpfs(tmp_path / "tiny", "512k") as mnt:
        yield mnt


def test_full_disk_while_staging_leaves_the_published_pack(tiny_disk: Path) -> None:
    arch = Archive(tiny_disk / "reports")
    old = stage_pack(arch)
    before = visible(arch.root)

    def fill_the_disk() -> None:
        with arch.stage("2026-10", "all") as st, st.file("management-review.pdf").open("wb") as fh:
            for _ in range(64):
                fh.write(os.urandom(16 * 1024))

    with pytest.raises(OSError, match="No space left on device") as info:
        fill_the_disk()
    assert info.value.errno == errno.ENOSPC
    assert visible(arch.root) == before
    assert arch.current("2026-10", "all") == old
    assert old.verify() == []
    assert list(arch.staging_dir.iterdir()) == []
    # The index can still be rewritten once the space is back.
    assert arch.write_index("Acme").is_file()


# --------------------------------------------------------------------------- index


def test_index_lists_packs_escaped_offline_and_with_relative_links(tmp_path: Path) -> None:
    arch = Archive(tmp_path / "reports")
    first = stage_pack(arch, "2026-09", "all")
    stage_pack(arch, "2026-10", "all")
    stage_pack(arch, "2026-10", "Plant A", kpis="x,Plant A,2026-10,1,,,count,true\n")
    stage_pack(
        arch,
        "2026-09",
        "all",
        keep_previous=True,
        supersedes=[{"id": first.id, "created_at": first.created_at}],
        restatement={"changed_kpis": 2},
    )
    evil = '<script>alert("x")</script> & "Co" <img src=x onerror=alert(1)>'
    path = arch.write_index(evil)
    page = path.read_text()
    assert html.escape(evil, quote=True) in page
    assert "<script" not in page
    assert "<img" not in page
    assert "onerror=alert" not in page.replace(html.escape("onerror=alert"), "")
    hrefs = re.findall(r'(?:href|src)="([^"]*)"', page)
    assert hrefs, "links expected"
    for href in hrefs:
        assert "://" not in href
        assert not href.startswith(("/", "javascript:"))
        target = (path.parent / html.unescape(href).replace("%20", " ")).resolve()
        assert target.is_file(), href
    assert "2026-10/plant-a/management-review.html" in page
    assert f".packs/{first.id}/management-review.pdf" in page  # superseded pack linked
    assert "2 KPI value(s) changed" in page
    # Newest period first, "all" before sites.
    assert page.index("2026-10/all/") < page.index("2026-10/plant-a/") < page.index("2026-09/all/")
    assert not [p for p in arch.root.iterdir() if p.name.endswith(".tmp")]


def test_index_template_syntax_in_a_field_reaches_the_page_as_text(tmp_path: Path) -> None:
    arch = Archive(tmp_path / "reports")
    first = stage_pack(arch, "2026-09", "all")
    hostile = "<script>alert(1)</script> {{ 'ab' ~ 'cd' }} {% if true %}YES{% endif %}"
    stage_pack(
        arch,
        "2026-09",
        "all",
        keep_previous=True,
        supersedes=[{"id": first.id, "created_at": hostile}],
        restatement={"changed_kpis": 1},
    )
    page = arch.write_index(hostile).read_text()
    assert page.count(html.escape(hostile, quote=True)) == 3  # <title>, <h1>, superseded date
    assert "<script" not in page
    assert "abcd" not in page
    assert "YES{% endif %}" in page  # shown as written, not run


def test_index_of_an_empty_archive(arch: Archive) -> None:
    assert "No pack has been published yet" in arch.write_index("Acme").read_text()


def test_archive_lock_files_do_not_block_unrelated_processes(arch: Archive) -> None:
    # The global lock is released after each critical section.
    with arch.global_lock():
        pass
    fd = os.open(arch.root / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


@pytest.mark.browser
def test_index_in_a_real_browser_runs_nothing_and_fetches_nothing(tmp_path: Path) -> None:
    arch = Archive(tmp_path / "reports")
    first = stage_pack(arch, "2026-09", "Plant A")
    stage_pack(
        arch,
        "2026-09",
        "Plant A",
        keep_previous=True,
        supersedes=[{"id": first.id, "created_at": first.created_at}],
        restatement={"changed_kpis": 1},
    )
    evil = '<img src=x onerror=alert("img")><script>alert("script")</script> & Co'
    path = arch.write_index(evil)
    with PdfPrinter() as printer, offline_page(printer.browser, path) as (page, report):
        assert report.problems() == []
        assert page.locator("h1").inner_text() == f"{evil} — management-review packs"
        assert page.locator("script, img, iframe, object").count() == 0
        hrefs = page.eval_on_selector_all("a", "els => els.map(e => e.href)")
        assert len(hrefs) == 4  # HTML + PDF of the current and of the superseded pack
        for href in hrefs:
            assert href.startswith(arch.root.as_uri() + "/")
            assert Path(href.removeprefix("file://").replace("%20", " ")).is_file()
