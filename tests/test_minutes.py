"""minutes: the 9.3.3 template, reading a filled one, the minutes record, HTML/PDF, register.

The end-to-end tests drive :func:`pipeline.publish_minutes` on packs published
from a copy of ``sample_data/`` with a small fake notebook renderer (the pack's
own render is not what they test); the minutes' HTML and PDF are real
(Chromium), and the templates are filled with openpyxl as a person would:
dates typed as Excel dates or serial numbers, owners typed as numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from browser import offline_page
from qmskpi import archive, minutes, pipeline, render
from qmskpi.cli import main
from qmskpi.minutes import MinutesError
from qmskpi.periods import parse_period
from qmskpi.review import ReviewModel

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
PERIOD = "2026-09"
NEXT = "2026-10"
EVIL = '<img src=x onerror=alert("img")><script>alert("script")</script> & Co'


def fake_render(
    stage_dir: Path, /, *, parameters: Mapping[str, object], pdf: bool, **_: object
) -> render.RenderResult:
    """A notebook and HTML stand-in: the pack's render is tested in tests/render and tests/pipeline."""
    nb = Path(stage_dir) / "management-review.ipynb"
    nb.write_text("{}")
    page = Path(stage_dir) / "management-review.html"
    page.write_text("<html><p>pack</p></html>")
    return render.RenderResult(nb, page, None, {})


def publish_pack(cfg: Path, period: str) -> pipeline.RunOutcome:
    year, month = map(int, period.split("-"))
    as_of = dt.date(year + month // 12, month % 12 + 1, 5)
    outcome = pipeline.run_review(cfg, period, "all", as_of=as_of, renderer=fake_render, pdf=False)
    assert outcome.status == "published", outcome.error
    return outcome


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sample data with the 2026-09 pack published; returns the config path."""
    dest = tmp_path_factory.mktemp("minutes") / "data"
    shutil.copytree(SAMPLE, dest, ignore=shutil.ignore_patterns("reports"))
    cfg = dest / "qmskpi.toml"
    publish_pack(cfg, PERIOD)
    return cfg


@pytest.fixture
def cfg(built: Path, tmp_path: Path) -> Path:
    """A private copy of ``built`` (data and reports, links kept) for a test that publishes."""
    dest = tmp_path / "data"
    shutil.copytree(built.parent, dest, symlinks=True)
    return dest / "qmskpi.toml"


def pack_dir(cfg: Path, period: str = PERIOD) -> Path:
    return cfg.parent / "reports" / period / "all"


def rows_by_label(ws: Worksheet) -> dict[str, int]:
    return {str(ws.cell(r, 1).value): r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value}


def decision_row(ws: Worksheet, item_id: str) -> int:
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, 1).value == item_id:
            return r
    raise AssertionError(f"no row {item_id}")


Edit = Callable[[Any], None]


def fill(
    template: Path,
    dest: Path,
    *,
    approved: bool = True,
    owner: object = 1234,
    edit: Edit | None = None,
) -> Path:
    """Fill a template as a person in Excel would; ``edit`` changes the workbook afterwards."""
    wb = load_workbook(template)
    ws = wb["Meeting"]
    at = rows_by_label(ws)
    ws.cell(at["Meeting date"], 2).value = dt.datetime(2026, 10, 12)  # an Excel date
    ws.cell(at["Chair"], 2).value = "Jane Smith"
    ws.cell(at["Attendees"], 2).value = EVIL
    if approved:
        ws.cell(at["Approved by"], 2).value = "Jane Smith"
        ws.cell(at["Approved on"], 2).value = dt.datetime(2026, 10, 14)
    wi = wb["Inputs"]
    for r in range(2, wi.max_row + 1):
        wi.cell(r, 4).value = "yes"
        wi.cell(r, 5).value = f"discussed item {r - 1}"
    wd = wb["Decisions"]
    e1 = decision_row(wd, "E01")
    wd.cell(e1, 5).value = "accepted"
    wd.cell(e1, 6).value = "Re-train the complaints team on the new codes"
    wd.cell(e1, 7).value = owner  # typed as a number
    wd.cell(e1, 8).value = dt.datetime(2026, 11, 30)
    wd.cell(decision_row(wd, "E02"), 5).value = "rejected"
    f1 = decision_row(wd, "F01")
    wd.cell(f1, 3).value = "9.3.3 c)"
    wd.cell(f1, 4).value = "A second coordinate measuring machine"
    wd.cell(f1, 5).value = "accepted"
    wd.cell(f1, 7).value = "Operations"
    wd.cell(f1, 8).value = 46400  # a serial number: 2027-01-13
    wd.cell(f1, 9).value = 25000.0
    f2 = decision_row(wd, "F02")
    wd.cell(f2, 3).value = "9.3.3 b)"
    wd.cell(f2, 4).value = "Merge the two calibration procedures"
    wd.cell(f2, 5).value = "deferred"
    if edit is not None:
        edit(wb)
    wb.save(dest)
    return dest


def model_of(cfg: Path, period: str = PERIOD) -> ReviewModel:
    return ReviewModel.from_json(pack_dir(cfg, period) / "review-inputs.json")


# --------------------------------------------------------------------------- template


def test_template_carries_the_pack_identity_one_row_per_input_and_item(built: Path) -> None:
    pack = pack_dir(built)
    manifest = json.loads((pack / "manifest.json").read_text())
    raw = json.loads((pack / "review-inputs.json").read_text())
    wb = load_workbook(pack / "minutes.xlsx")
    assert wb.sheetnames == ["Meeting", "Inputs", "Decisions"]
    ws = wb["Meeting"]
    at = rows_by_label(ws)
    assert ws.cell(at["Period"], 2).value == PERIOD
    assert ws.cell(at["Scope"], 2).value == "all"
    assert ws.cell(at["Pack id"], 2).value == manifest["pack_id"]
    assert (
        ws.cell(at["Pack review-inputs sha256"], 2).value
        == hashlib.sha256((pack / "review-inputs.json").read_bytes()).hexdigest()
    )
    # the template is listed (and so protected) by the pack's manifest
    assert "minutes.xlsx" in manifest["outputs"]

    inputs = [s for s in raw["sections"] if s["role"] == "input"]
    wi = wb["Inputs"]
    assert [wi.cell(r, 1).value for r in range(2, wi.max_row + 1)] == [s["ref"] for s in inputs]
    assert inputs[0]["ref"] == "9.3.2 a)"

    wd = wb["Decisions"]
    ids = [wd.cell(r, 1).value for r in range(2, wd.max_row + 1)]
    n_exc, n_opp = len(raw["exceptions"]), len(raw["opportunities"])
    assert n_exc > 0  # the sample has both
    assert n_opp > 0
    assert ids == (
        [f"E{i:02d}" for i in range(1, n_exc + 1)]
        + [f"O{i:02d}" for i in range(1, n_opp + 1)]
        + [f"F{i:02d}" for i in range(1, minutes.FREE_ROWS + 1)]
    )
    assert wd.cell(2, 4).value == raw["exceptions"][0]["text"]

    lists = {
        str(dv.sqref): dv.formula1 for dv in wd.data_validations.dataValidation if dv.type == "list"
    }
    last = len(ids) + 1
    assert lists == {
        f"C2:C{last}": '"9.3.3 a),9.3.3 b),9.3.3 c)"',
        f"E2:E{last}": '"accepted,rejected,deferred"',
    }
    assert [str(dv.sqref) for dv in wi.data_validations.dataValidation] == [
        f"D2:D{len(inputs) + 1}"
    ]


def test_template_is_formula_safe_and_deterministic(built: Path, tmp_path: Path) -> None:
    model = model_of(built)
    evil = dataclasses.replace(
        model,
        exceptions=(
            dataclasses.replace(model.exceptions[0], text='=HYPERLINK("http://x.test","y")'),
            *model.exceptions[1:],
        ),
    )
    ident = minutes.PackIdentity(PERIOD, "all", "=cmd|' /C calc'!A0", "0" * 64)
    a = minutes.write_template(evil, tmp_path / "a.xlsx", ident)
    b = minutes.write_template(evil, tmp_path / "b.xlsx", ident)
    assert a.read_bytes() == b.read_bytes()
    wb = load_workbook(a)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", cell.coordinate
                assert cell.hyperlink is None
    assert wb["Decisions"]["D2"].value == '\'=HYPERLINK("http://x.test","y")'
    assert rows_by_label(wb["Meeting"])["Pack id"]


# --------------------------------------------------------------------------- reading


def test_reading_a_filled_template_types_excel_values(built: Path, tmp_path: Path) -> None:
    filled = fill(pack_dir(built) / "minutes.xlsx", tmp_path / "filled.xlsx")
    record = minutes.read_filled(filled)
    assert record.meeting.meeting_date == dt.date(2026, 10, 12)
    assert record.meeting.approved_on == dt.date(2026, 10, 14)
    assert record.approved
    by_id = {d.item_id: d for d in record.decisions}
    assert by_id["E01"].owner == "1234"  # typed as a number, read as text
    assert by_id["E01"].due_date == dt.date(2026, 11, 30)
    # Excel serial 46400: 46400 days after 1899-12-30 (Excel's epoch, 1900 leap-year bug included)
    assert by_id["F01"].due_date == dt.date(1899, 12, 30) + dt.timedelta(days=46400)
    assert by_id["F01"].due_date == dt.date(2027, 1, 13)
    assert by_id["F01"].resources == "25000"
    assert by_id["F01"].action == "A second coordinate measuring machine"
    assert [d.item_id for d in record.actions] == ["E01", "F01"]
    assert record.action_id(by_id["F01"]) == "MR-2026-09-all-F01"
    assert all(i.reviewed for i in record.inputs)
    # untouched rows are not records
    assert "F03" not in by_id
    assert minutes.Minutes.from_dict(json.loads(record.to_json())) == record


def _set(sheet: str, item: str, column: int, value: object) -> Edit:
    def edit(wb: Any) -> None:
        ws = wb[sheet]
        row = rows_by_label(ws)[item] if sheet == "Meeting" else decision_row(ws, item)
        ws.cell(row, column).value = value

    return edit


BAD = [
    pytest.param(
        _set("Decisions", "E02", 5, "acepted"),
        "sheet 'Decisions', row 3, column 'Decision': unknown decision 'acepted' "
        "(did you mean 'accepted'?)",
        id="unknown-decision",
    ),
    pytest.param(
        _set("Decisions", "E01", 7, None),
        "sheet 'Decisions', row 2, column 'Owner': an accepted action needs an owner",
        id="no-owner",
    ),
    pytest.param(
        _set("Decisions", "E01", 8, None),
        "sheet 'Decisions', row 2, column 'Due date': an accepted action needs a due date",
        id="no-due-date",
    ),
    pytest.param(
        _set("Decisions", "E01", 8, dt.datetime(2026, 10, 1)),
        "sheet 'Decisions', row 2, column 'Due date': due date 2026-10-01 is before the "
        "meeting (2026-10-12)",
        id="due-before-meeting",
    ),
    pytest.param(
        _set("Decisions", "E01", 8, "next week"),
        "sheet 'Decisions', row 2, column 'Due date': not a date: 'next week'",
        id="due-not-a-date",
    ),
    pytest.param(
        _set("Decisions", "F03", 4, "An item without a decision"),
        "column 'Decision': a filled free row needs a decision",
        id="free-row-without-decision",
    ),
    pytest.param(
        _set("Decisions", "F01", 3, "9.3.3 d)"),
        "column 'Clause': unknown clause '9.3.3 d)'",
        id="unknown-clause",
    ),
    pytest.param(
        _set("Decisions", "E01", 9, "=1+1"),
        "sheet 'Decisions', row 2, column 'Resources': a formula is not read: type the value",
        id="formula",
    ),
    pytest.param(
        _set("Meeting", "Meeting date", 2, None),
        "sheet 'Meeting', row 8, column 'B': Meeting date is required",
        id="no-meeting-date",
    ),
    pytest.param(
        _set("Meeting", "Approved on", 2, None),
        "sheet 'Meeting', row 13, column 'B': approval needs both names and date: "
        "Approved on is empty",
        id="half-approved",
    ),
    pytest.param(
        _set("Meeting", "Pack id", 2, "2026-09--all--20261001T060000Z--abcdef"),
        "sheet 'Meeting', row 5, column 'B': this template belongs to another pack: Pack id is "
        "'2026-09--all--20261001T060000Z--abcdef'",
        id="another-pack",
    ),
]


@pytest.mark.parametrize(("edit", "message"), BAD)
def test_each_bad_filled_template_is_one_clear_error_and_publishes_nothing(
    cfg: Path, tmp_path: Path, edit: Edit, message: str
) -> None:
    filled = fill(pack_dir(cfg) / "minutes.xlsx", tmp_path / "filled.xlsx", edit=edit)
    with pytest.raises(MinutesError) as err:
        pipeline.publish_minutes(cfg, PERIOD, "all", filled, pdf=False)
    assert str(err.value).startswith("filled.xlsx, ")
    assert message in str(err.value)
    reports = cfg.parent / "reports"
    assert not (reports / PERIOD / "_minutes").exists()
    assert not (reports / archive.REGISTER).exists()


def test_a_template_from_another_period_is_refused(cfg: Path, tmp_path: Path) -> None:
    filled = fill(pack_dir(cfg) / "minutes.xlsx", tmp_path / "filled.xlsx")
    publish_pack(cfg, NEXT)
    with pytest.raises(MinutesError, match=r"row 3, column 'B': this template belongs to another"):
        pipeline.publish_minutes(cfg, NEXT, "all", filled, pdf=False)


def test_a_template_of_a_re_rendered_pack_is_refused(cfg: Path, tmp_path: Path) -> None:
    filled = fill(pack_dir(cfg) / "minutes.xlsx", tmp_path / "filled.xlsx")
    pipeline.run_review(
        cfg, PERIOD, "all", as_of=dt.date(2026, 10, 5), renderer=fake_render, pdf=False, force=True
    )
    with pytest.raises(MinutesError, match="Pack id is"):
        pipeline.publish_minutes(cfg, PERIOD, "all", filled, pdf=False)


# --------------------------------------------------------------------------- round trip


@pytest.mark.browser
def test_round_trip_template_minutes_register_next_pack_and_index(
    cfg: Path, tmp_path: Path
) -> None:
    reports = cfg.parent / "reports"
    filled = fill(pack_dir(cfg) / "minutes.xlsx", tmp_path / "filled.xlsx")
    out = pipeline.publish_minutes(cfg, PERIOD, "all", filled)
    assert (out.status, out.version, out.approved, out.actions_registered) == (
        "published",
        1,
        True,
        2,
    )
    folder = reports / PERIOD / "_minutes" / "all"
    assert out.path == folder
    assert {p.name for p in folder.iterdir()} == {
        "manifest.json",
        "minutes.html",
        "minutes.pdf",
        "minutes.json",
        "minutes-filled.xlsx",
    }
    manifest = json.loads((folder / "manifest.json").read_text())
    pack_manifest = pack_dir(cfg) / "manifest.json"
    assert manifest["pack"] == {
        "id": json.loads(pack_manifest.read_text())["pack_id"],
        "manifest_sha256": hashlib.sha256(pack_manifest.read_bytes()).hexdigest(),
    }
    assert manifest["status"] == "approved"
    assert manifest["actions"] == ["MR-2026-09-all-E01", "MR-2026-09-all-F01"]
    # the chain: the minutes' manifest records the pack's manifest, published just before
    assert manifest["previous_manifest"]["sha256"] == manifest["pack"]["manifest_sha256"]

    # the PDF has every section
    text = subprocess.run(
        ["pdftotext", "-layout", str(folder / "minutes.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for heading in (
        "Meeting",
        "9.3.2 Inputs reviewed",
        "9.3.3 Decisions and actions",
        "9.3.3 a) Opportunities for improvement",
        "9.3.3 b) Any need for changes to the quality management system",
        "9.3.3 c) Resource needs",
        "Approval",
        "Changes from the previous version",
        "Record",
        "MR-2026-09-all-F01",
        "Merge the two calibration procedures",
    ):
        assert heading in text, heading

    # the register, then the next month's pack shows the actions under 9.3.2 a)
    register = (reports / archive.REGISTER).read_text().splitlines()
    assert register[0] == ",".join(minutes.REGISTER_COLUMNS)
    assert len(register) == 3
    nxt = publish_pack(cfg, NEXT)
    table = model_of(cfg, NEXT).table("review_actions")
    assert table is not None
    shown = {r[0]: r for r in table.rows if str(r[0]).startswith("MR-")}
    assert set(shown) == {"MR-2026-09-all-E01", "MR-2026-09-all-F01"}
    e01 = dict(zip([c.id for c in table.columns], shown["MR-2026-09-all-E01"], strict=True))
    assert e01["owner"] == "1234"
    assert e01["due_date"] == "2026-11-30"
    assert e01["description"] == "9.3.3 a): Re-train the complaints team on the new codes"
    inputs = json.loads((nxt.pack_dir / "manifest.json").read_text())["inputs"]
    (ra,) = [i for i in inputs if i["dataset"] == "review_actions"]
    assert [f["path"] for f in ra["files"]] == ["review_actions.csv", archive.REGISTER]

    # the index shows the minutes, approved, and the open actions
    index = (reports / "index.html").read_text()
    assert "v1 approved 2026-10-14" in index
    assert "2 action(s), 2 open" in index
    assert "_minutes/all/minutes.html" in index


def test_analyst_row_wins_over_the_register_and_the_duplicate_is_quarantined(
    cfg: Path, tmp_path: Path
) -> None:
    filled = fill(pack_dir(cfg) / "minutes.xlsx", tmp_path / "filled.xlsx")
    pipeline.publish_minutes(cfg, PERIOD, "all", filled, pdf=False)
    own = cfg.parent / "review_actions.csv"
    own.write_text(
        own.read_text()
        + "MR-2026-09-all-E01,2026-10-12,Re-train the complaints team,Kim Lee,2026-11-30,"
        "closed,2026-10-28\n"
    )
    c = pipeline.as_config(cfg)
    loaded = pipeline.load_inputs(c, parse_period(NEXT))["review_actions"]
    frame = loaded.frame.filter(loaded.frame["action_id"] == "MR-2026-09-all-E01")
    assert frame["status"].to_list() == ["closed"]
    assert frame["source_file"].to_list() == ["review_actions.csv"]
    assert loaded.rows_in == loaded.frame.height + loaded.rows_rejected
    assert loaded.rejects.select("value", "rule", "file").rows() == [
        ("MR-2026-09-all-E01", "duplicate:action_id", archive.REGISTER)
    ]
    assert pipeline.closed_actions(c) >= {"MR-2026-09-all-E01"}
    ages = pipeline.open_review_actions(cfg, as_of=dt.date(2026, 12, 31))
    mine = ages.filter(ages["action_id"].str.starts_with("MR-"))
    # E01 closed by the analyst; F01 open: raised 2026-10-12, 80 days before 2026-12-31
    # (19 + 30 + 31), due 2027-01-13: not overdue
    assert mine.select("action_id", "age_days", "days_overdue", "source").rows() == [
        ("MR-2026-09-all-F01", 80, 0, archive.REGISTER)
    ]
    late = pipeline.open_review_actions(cfg, as_of="2027-01-20")
    assert late.filter(late["action_id"] == "MR-2026-09-all-F01")["days_overdue"].to_list() == [7]


def test_minutes_leave_the_minuted_pack_up_to_date_and_a_forced_render_keeps_it(
    cfg: Path, tmp_path: Path
) -> None:
    as_of = dt.date(2026, 10, 5)
    arch = archive.Archive(cfg.parent / "reports")
    reviewed = arch.current(PERIOD, "all")
    assert reviewed is not None
    filled = fill(pack_dir(cfg) / "minutes.xlsx", tmp_path / "filled.xlsx")
    pipeline.publish_minutes(cfg, PERIOD, "all", filled, pdf=False)
    # the actions were raised at the meeting (2026-10-12), after the period: same inputs
    again = pipeline.run_review(cfg, PERIOD, "all", as_of=as_of, renderer=fake_render, pdf=False)
    assert again.status == "skipped"
    forced = pipeline.run_review(
        cfg, PERIOD, "all", as_of=as_of, renderer=fake_render, pdf=False, force=True
    )
    assert forced.status == "published"
    manifest = json.loads((pack_dir(cfg) / "manifest.json").read_text())
    assert manifest["supersedes"][0] == {
        "id": reviewed.id,
        "created_at": reviewed.created_at,
        "reason": "minuted",
    }
    assert arch.pack(reviewed.id) is not None


# --------------------------------------------------------------------------- immutability


def test_approved_minutes_are_immutable_a_correction_is_a_new_version(
    cfg: Path, tmp_path: Path
) -> None:
    reports = cfg.parent / "reports"
    arch = archive.Archive(reports)
    template = pack_dir(cfg) / "minutes.xlsx"
    draft = pipeline.publish_minutes(
        cfg, PERIOD, "all", fill(template, tmp_path / "d.xlsx", approved=False), pdf=False
    )
    assert (draft.version, draft.approved, draft.actions_registered) == (1, False, 0)
    draft_id = os.path.basename(os.readlink(draft.path))
    v1 = pipeline.publish_minutes(
        cfg, PERIOD, "all", fill(template, tmp_path / "a.xlsx"), pdf=False
    )
    assert (v1.version, v1.approved) == (2, True)
    assert arch.minutes(draft_id) is None  # a draft is replaced, not kept
    v1_dir = v1.path.resolve()
    before = {p.name: archive.sha256_file(p) for p in v1_dir.iterdir()}

    same = pipeline.publish_minutes(
        cfg, PERIOD, "all", fill(template, tmp_path / "a2.xlsx"), pdf=False
    )
    assert same.status == "unchanged"

    fixed = fill(template, tmp_path / "b.xlsx", owner="Kim Lee")
    v2 = pipeline.publish_minutes(cfg, PERIOD, "all", fixed, pdf=False)
    assert (v2.status, v2.version, v2.changes) == ("published", 3, 1)
    # the approved version is untouched and still verifies
    assert {p.name: archive.sha256_file(p) for p in v1_dir.iterdir()} == before
    assert archive.verify_folder(v1_dir).intact
    manifest = json.loads((v2.path / "manifest.json").read_text())
    assert manifest["supersedes"] == [{"id": v1_dir.name, "version": 2, "status": "approved"}]
    assert json.loads((v2.path / "changes.json").read_text()) == [
        {"where": "decision E01", "field": "owner", "old": "1234", "new": "Kim Lee"}
    ]
    page = (v2.path / "minutes.html").read_text()
    assert f"Corrects version <code>{v1_dir.name}</code>" in page
    assert "<td>1234</td><td>Kim Lee</td>" in page
    # the register: the corrected row is appended, and the later row wins
    reg = minutes.read_register(reports / archive.REGISTER)
    assert reg.filter(reg["action_id"] == "MR-2026-09-all-E01")["owner"].to_list() == ["Kim Lee"]
    assert main(["verify", str(reports), "--scope", "all"]) == 0


# --------------------------------------------------------------------------- browser and verify


@pytest.mark.browser
def test_minutes_html_in_a_real_browser_runs_nothing_and_fetches_nothing(
    cfg: Path, tmp_path: Path
) -> None:
    def evil_rows(wb: Any) -> None:
        wd = wb["Decisions"]
        wd.cell(decision_row(wd, "E01"), 6).value = EVIL
        wd.cell(decision_row(wd, "F02"), 4).value = '<a href="http://x.test">x</a>'

    filled = fill(pack_dir(cfg) / "minutes.xlsx", tmp_path / "f.xlsx", edit=evil_rows)
    out = pipeline.publish_minutes(cfg, PERIOD, "all", filled, pdf=False)
    with (
        render.PdfPrinter() as printer,
        offline_page(printer.browser, out.path / "minutes.html", wait_for_charts=False) as (
            page,
            report,
        ),
    ):
        assert report.problems() == []
        assert page.locator("script, img, iframe, object, a").count() == 0
        body = page.locator("body").inner_text()
        assert body.count(EVIL) == 2  # attendees and the action, shown as text
        assert '<a href="http://x.test">x</a>' in body


def test_verify_detects_a_tampered_minutes_file_and_a_broken_chain(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = cfg.parent / "reports"
    filled = fill(pack_dir(cfg) / "minutes.xlsx", tmp_path / "f.xlsx")
    out = pipeline.publish_minutes(cfg, PERIOD, "all", filled, pdf=False)
    assert main(["verify", str(reports), "--scope", "all"]) == 0
    assert main(["verify", str(out.path)]) == 0
    capsys.readouterr()

    html_file = out.path.resolve() / "minutes.html"
    html_file.chmod(0o644)
    html_file.write_text(html_file.read_text().replace("Jane Smith", "John Doe"))
    assert main(["verify", str(out.path)]) == 6
    assert "minutes.html: changed since publication" in capsys.readouterr().out

    # Someone rewrites the pack's manifest to match an edited file, and its chain copy:
    # the minutes' manifest still records the original hash, so the chain breaks there.
    html_file.write_text(html_file.read_text().replace("John Doe", "Jane Smith"))
    pack = pack_dir(cfg).resolve()
    text = (pack / "manifest.json").read_text()
    forged = re.sub(r'"organisation": "[^"]*"', '"organisation": "Forged Ltd"', text)
    for target in [
        pack / "manifest.json",
        *(reports / archive.CHAIN_DIR / "all").glob("*--2026-09--all--*"),
    ]:
        if target.read_text() == text:
            target.chmod(0o644)
            target.write_text(forged)
    assert main(["verify", str(reports), "--scope", "all"]) == 6
    printed = capsys.readouterr().out
    minutes_id = out.path.resolve().name
    assert f"chain of scope all: link 2 ({minutes_id}): records previous manifest" in printed
    assert "the chain is broken here" in printed
