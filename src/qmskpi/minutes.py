"""Minutes of the management review (ISO 9001:2015 9.3.3): template, reading, record, HTML.

Every pack ships ``minutes.xlsx`` (:func:`write_template`): the meeting
details, one row per 9.3.2 input (reviewed / comment), one row per exception
and per suggested opportunity of the pack, and free rows for other decisions
under 9.3.3 a), b) and c), with drop-down lists for decisions and clauses. The
template carries the pack's identity (period, scope, pack id and the sha256 of
its ``review-inputs.json``) so that it cannot be applied to another pack.

:func:`read_filled` reads a filled template like any other source: each
problem is one :class:`MinutesError` naming the file, sheet, row and column.
The result is a frozen :class:`Minutes` record; :func:`minutes_html` presents
it (every string escaped, no script), :func:`changes` compares two versions,
:func:`register_rows` gives the accepted actions for the review-actions
register, and :func:`with_register` lets the next pack read that register as
(part of) its ``review_actions`` source.

openpyxl is used here and in ``render`` (exports) and ``sources`` (reading Excel).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl

from qmskpi.datasets import DATASETS, SOURCE_ROW
from qmskpi.errors import SourceError, did_you_mean
from qmskpi.render import PACK_CSS, neutralise_formula
from qmskpi.render.files import _fix_zip_times
from qmskpi.review import ReviewModel
from qmskpi.sources import REJECT_SCHEMA, SOURCE_FILE, LoadedData, LoadedDataset, SourceFile
from qmskpi.templating import esc

TEMPLATE: Final = "minutes.xlsx"
"""File name of the template in every pack."""
SCHEMA: Final = "qmskpi.minutes/1"

Decision = Literal["accepted", "rejected", "deferred"]
DECISIONS: Final[tuple[str, ...]] = ("accepted", "rejected", "deferred")
CLAUSES: Final[tuple[str, ...]] = ("9.3.3 a)", "9.3.3 b)", "9.3.3 c)")
CLAUSE_TITLES: Final[Mapping[str, str]] = {
    "9.3.3 a)": "Opportunities for improvement",
    "9.3.3 b)": "Any need for changes to the quality management system",
    "9.3.3 c)": "Resource needs",
}
REVIEWED: Final[tuple[str, ...]] = ("yes", "no")
FREE_ROWS: Final = 12
"""Empty decision rows in the template for 9.3.3 a), b), c) items not suggested by the pack."""

MEETING_SHEET: Final = "Meeting"
INPUTS_SHEET: Final = "Inputs"
DECISIONS_SHEET: Final = "Decisions"

_IDENTITY = (
    ("period", "Period"),
    ("scope", "Scope"),
    ("pack_id", "Pack id"),
    ("review_sha256", "Pack review-inputs sha256"),
)
_MEETING = (
    ("meeting_date", "Meeting date", "date", True),
    ("chair", "Chair", "text", True),
    ("attendees", "Attendees", "text", True),
    ("apologies", "Apologies", "text", False),
    ("approved_by", "Approved by", "text", False),
    ("approved_on", "Approved on", "date", False),
)
_INPUT_COLUMNS = ("Clause", "Input", "Evidence in the pack", "Reviewed", "Comment")
_DECISION_COLUMNS = (
    "Id",
    "Source",
    "Clause",
    "Item",
    "Decision",
    "Action",
    "Owner",
    "Due date",
    "Resources",
)
_ID = re.compile(r"^[EOF]\d{2,3}$")
_FIXED_TIME: Final = dt.datetime(2000, 1, 1)


class MinutesError(SourceError):
    """A filled minutes template is unusable: names the file, sheet, row and column."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        sheet: str | None = None,
        column: str | None = None,
        row: int | None = None,
    ):
        self.sheet = sheet
        parts = [str(path)] if path is not None else []
        if sheet is not None:
            parts.append(f"sheet '{sheet}'")
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column '{column}'")
        prefix = ", ".join(parts)
        Exception.__init__(self, f"{prefix}: {message}" if prefix else message)
        self.path = str(path) if path is not None else None
        self.dataset = None
        self.column = column
        self.row = row


# --------------------------------------------------------------------------- record


@dataclass(frozen=True)
class PackIdentity:
    """What ties a template to one published pack."""

    period: str
    scope: str
    pack_id: str
    review_sha256: str


@dataclass(frozen=True)
class Meeting:
    meeting_date: dt.date
    chair: str
    attendees: str
    apologies: str = ""
    approved_by: str = ""
    approved_on: dt.date | None = None


@dataclass(frozen=True)
class InputReview:
    """One 9.3.2 input as minuted: was it reviewed, and what was said."""

    clause: str
    title: str
    reviewed: bool | None
    comment: str


@dataclass(frozen=True)
class DecisionRow:
    """One row of the decisions sheet (an exception, an opportunity or a free row)."""

    item_id: str
    source: str
    clause: str
    item: str
    decision: str
    action: str
    owner: str
    due_date: dt.date | None
    resources: str


@dataclass(frozen=True)
class Minutes:
    """A validated minutes record: frozen, JSON-serialisable, compared across versions."""

    identity: PackIdentity
    meeting: Meeting
    inputs: tuple[InputReview, ...]
    decisions: tuple[DecisionRow, ...]
    schema: str = SCHEMA
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def approved(self) -> bool:
        return bool(self.meeting.approved_by) and self.meeting.approved_on is not None

    def action_id(self, row: DecisionRow) -> str:
        """The register's id of an action: ``MR-<period>-<scope>-<row id>``, stable across versions."""
        scope = re.sub(r"[^A-Za-z0-9]+", "-", self.identity.scope).strip("-").lower() or "all"
        return f"MR-{self.identity.period}-{scope}-{row.item_id}"

    @property
    def actions(self) -> tuple[DecisionRow, ...]:
        """Accepted decisions: each is an action with an owner and a due date."""
        return tuple(d for d in self.decisions if d.decision == "accepted")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=_json_default))  # type: ignore[no-any-return]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Minutes:
        if data.get("schema") != SCHEMA:
            raise SourceError(f"not a minutes record of format {SCHEMA!r}")
        m = dict(data["meeting"])
        meeting = Meeting(
            meeting_date=dt.date.fromisoformat(m["meeting_date"]),
            chair=m["chair"],
            attendees=m["attendees"],
            apologies=m.get("apologies", ""),
            approved_by=m.get("approved_by", ""),
            approved_on=dt.date.fromisoformat(m["approved_on"]) if m.get("approved_on") else None,
        )
        return cls(
            identity=PackIdentity(**data["identity"]),
            meeting=meeting,
            inputs=tuple(InputReview(**i) for i in data["inputs"]),
            decisions=tuple(
                DecisionRow(
                    **{
                        **d,
                        "due_date": dt.date.fromisoformat(d["due_date"])
                        if d.get("due_date")
                        else None,
                    }
                )
                for d in data["decisions"]
            ),
            extra=dict(data.get("extra", {})),
        )


def _json_default(value: object) -> object:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


# --------------------------------------------------------------------------- template


def identity_of(model: ReviewModel, *, pack_id: str, review_json: bytes) -> PackIdentity:
    """The identity a pack's template carries (``review_json``: the bytes of review-inputs.json)."""
    return PackIdentity(
        period=model.meta.period,
        scope=model.meta.scope,
        pack_id=pack_id,
        review_sha256=hashlib.sha256(review_json).hexdigest(),
    )


def _text(value: str) -> str:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return neutralise_formula(ILLEGAL_CHARACTERS_RE.sub("", value))


def template_rows(model: ReviewModel) -> tuple[list[tuple[str, str, str]], list[tuple[str, ...]]]:
    """The pre-filled rows of a template: (inputs: clause, title, status), (decisions)."""
    inputs = [(s.ref, s.title, str(s.status or "")) for s in model.sections if s.role == "input"]
    decisions: list[tuple[str, ...]] = []
    for i, e in enumerate(model.exceptions, start=1):
        decisions.append((f"E{i:02d}", "exception", "9.3.3 a)", e.text))
    for i, o in enumerate(model.opportunities, start=1):
        decisions.append((f"O{i:02d}", "opportunity", "9.3.3 a)", o.text))
    for i in range(1, FREE_ROWS + 1):
        decisions.append((f"F{i:02d}", "other", "", ""))
    return inputs, decisions


# Long by design: one workbook written top to bottom (three sheets, their styles and
# drop-downs); split up, the row and column positions would be spread over several places.
def write_template(model: ReviewModel, path: Path, identity: PackIdentity) -> Path:
    """Write the minutes template of ``model``'s pack to ``path`` (same model, same bytes).

    Every text cell is formula-neutralised (a leading ``'`` before ``= + - @``),
    no hyperlinks; drop-downs (Excel data validation) for Reviewed, Clause and
    Decision, date validation for dates; identity cells are grey and say so.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation
    from openpyxl.writer.excel import ExcelWriter

    bold = Font(bold=True)
    grey = PatternFill("solid", fgColor="EEEEEE")
    wrap = Alignment(wrap_text=True, vertical="top")
    wb = Workbook()
    wb.properties.creator = "qmskpi"
    wb.properties.created = _FIXED_TIME
    wb.properties.modified = _FIXED_TIME

    ws = wb.active
    ws.title = MEETING_SHEET
    ws["A1"] = _text(
        f"Minutes of the management review (ISO 9001 9.3.3), {model.meta.organisation}"
    )
    ws["A1"].font = Font(bold=True, size=13)
    row = 3
    values = asdict(identity)
    for key, label in _IDENTITY:
        ws.cell(row, 1, label).font = bold
        ws.cell(row, 2, _text(values[key])).fill = grey
        ws.cell(row, 3, "identity of the pack: do not change")
        row += 1
    row += 1
    for _key, label, kind, required in _MEETING:
        ws.cell(row, 1, label).font = bold
        note = "date (YYYY-MM-DD)" if kind == "date" else "text"
        ws.cell(row, 3, note + ("; required" if required else ""))
        if kind == "date":
            ws.cell(row, 2).number_format = "yyyy-mm-dd"
            dv = DataValidation(type="date", operator="greaterThan", formula1="36526")
            dv.error = "Enter a date"
            ws.add_data_validation(dv)
            dv.add(f"B{row}")
        row += 1
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 60
    ws.column_dimensions["C"].width = 36

    inputs, decisions = template_rows(model)
    wi = wb.create_sheet(INPUTS_SHEET)
    wi.append(list(_INPUT_COLUMNS))
    for cell in wi[1]:
        cell.font = bold
    for ref, title, status in inputs:
        wi.append([_text(ref), _text(title), _text(status), None, None])
    dv_rev = DataValidation(type="list", formula1='"' + ",".join(REVIEWED) + '"', allow_blank=True)
    wi.add_data_validation(dv_rev)
    if inputs:
        dv_rev.add(f"D2:D{len(inputs) + 1}")
    for col, width in zip("ABCDE", (12, 50, 14, 10, 60), strict=True):
        wi.column_dimensions[col].width = width
    wi.freeze_panes = "A2"

    wd = wb.create_sheet(DECISIONS_SHEET)
    wd.append(list(_DECISION_COLUMNS))
    for cell in wd[1]:
        cell.font = bold
    for item_id, source, clause, text in decisions:
        wd.append([item_id, source, clause or None, _text(text) if text else None])
        r = wd.max_row
        wd.cell(r, 4).alignment = wrap
        wd.cell(r, 6).alignment = wrap
        wd.cell(r, 8).number_format = "yyyy-mm-dd"
        for c in (1, 2):
            wd.cell(r, c).fill = grey
    last = len(decisions) + 1
    dv_clause = DataValidation(
        type="list", formula1='"' + ",".join(CLAUSES) + '"', allow_blank=True
    )
    dv_dec = DataValidation(type="list", formula1='"' + ",".join(DECISIONS) + '"', allow_blank=True)
    dv_due = DataValidation(type="date", operator="greaterThan", formula1="36526", allow_blank=True)
    for dv, rng in ((dv_clause, f"C2:C{last}"), (dv_dec, f"E2:E{last}"), (dv_due, f"H2:H{last}")):
        dv.error = "Choose a value from the list" if dv.type == "list" else "Enter a date"
        wd.add_data_validation(dv)
        dv.add(rng)
    for col, width in zip("ABCDEFGHI", (6, 12, 10, 60, 11, 50, 18, 12, 20), strict=True):
        wd.column_dimensions[col].width = width
    wd.freeze_panes = "A2"

    buffer = io.BytesIO()
    ExcelWriter(wb, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True)).save()
    path.write_bytes(_fix_zip_times(buffer.getvalue()))  # same model, same bytes
    return path


# --------------------------------------------------------------------------- reading


class _Reader:
    """Cell access that turns every problem into one MinutesError naming the cell."""

    def __init__(self, path: Path, display: str):
        from openpyxl import load_workbook

        self.display = display
        try:
            self.wb = load_workbook(path, data_only=False, read_only=False)
        except Exception as exc:  # zipfile / openpyxl raise many kinds
            raise MinutesError(f"not a readable .xlsx workbook ({exc})", path=display) from exc
        for name in (MEETING_SHEET, INPUTS_SHEET, DECISIONS_SHEET):
            if name not in self.wb.sheetnames:
                raise MinutesError(
                    f"no sheet '{name}'{did_you_mean(name, self.wb.sheetnames)}: "
                    f"not a qmskpi minutes template (sheets: {', '.join(self.wb.sheetnames)})",
                    path=display,
                )

    def error(self, sheet: str, row: int, column: str, message: str) -> MinutesError:
        return MinutesError(message, path=self.display, sheet=sheet, row=row, column=column)

    def raw(self, sheet: str, row: int, col: int, column: str) -> Any:
        cell = self.wb[sheet].cell(row, col)
        if cell.data_type == "f":
            raise self.error(sheet, row, column, "a formula is not read: type the value")
        return cell.value

    def text(self, sheet: str, row: int, col: int, column: str) -> str:
        value = self.raw(sheet, row, col, column)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()[:10]
        return str(value).strip()

    def date(self, sheet: str, row: int, col: int, column: str) -> dt.date | None:
        from openpyxl.utils.datetime import from_excel

        value = self.raw(sheet, row, col, column)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 2958466:
            moment = from_excel(value)
            return moment.date() if isinstance(moment, dt.datetime) else None
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip()[:10])
            except ValueError:
                pass
        raise self.error(sheet, row, column, f"not a date: {value!r} (use YYYY-MM-DD)")


def read_filled(path: Path, *, expected: PackIdentity | None = None) -> Minutes:
    """Read and validate a filled minutes template.

    Checks, each raising one :class:`MinutesError` naming file, sheet, row and
    column: the template belongs to ``expected`` (period, scope, pack id,
    review-inputs sha256); meeting date, chair and attendees are given; a
    decision is one of :data:`DECISIONS` (did-you-mean); an accepted decision
    has an owner and a due date not before the meeting; a free row with any
    content has a decision and a 9.3.3 clause; approval has both name and date,
    not before the meeting; no cell holds a formula.
    """
    r = _Reader(Path(path), Path(path).name)
    identity = _read_identity(r, expected)
    meeting = _read_meeting(r)
    inputs = _read_inputs(r)
    decisions = _read_decisions(r, meeting)
    return Minutes(identity, meeting, inputs, decisions)


def _labels(r: _Reader) -> dict[str, int]:
    ws = r.wb[MEETING_SHEET]
    out: dict[str, int] = {}
    for row in range(1, ws.max_row + 1):
        label = ws.cell(row, 1).value
        if isinstance(label, str) and label.strip():
            out.setdefault(label.strip(), row)
    return out


def _label_row(r: _Reader, labels: Mapping[str, int], label: str) -> int:
    if label not in labels:
        raise MinutesError(
            f"no row labelled '{label}' in column A{did_you_mean(label, labels)}",
            path=r.display,
            sheet=MEETING_SHEET,
            column="A",
        )
    return labels[label]


def _read_identity(r: _Reader, expected: PackIdentity | None) -> PackIdentity:
    labels = _labels(r)
    found: dict[str, str] = {}
    for key, label in _IDENTITY:
        row = _label_row(r, labels, label)
        found[key] = r.text(MEETING_SHEET, row, 2, "B").lstrip("'")
    identity = PackIdentity(**found)
    if expected is not None:
        for key, label in _IDENTITY:
            got, want = getattr(identity, key), getattr(expected, key)
            if got != want:
                raise r.error(
                    MEETING_SHEET,
                    labels[label],
                    "B",
                    f"this template belongs to another pack: {label} is {got!r}, the published "
                    f"pack of {expected.period} ({expected.scope}) has {want!r}; fill in the "
                    "minutes.xlsx of that pack",
                )
    return identity


def _read_meeting(r: _Reader) -> Meeting:
    labels = _labels(r)
    values: dict[str, Any] = {}
    for key, label, kind, required in _MEETING:
        row = _label_row(r, labels, label)
        value: Any = (
            r.date(MEETING_SHEET, row, 2, "B")
            if kind == "date"
            else r.text(MEETING_SHEET, row, 2, "B")
        )
        if required and not value:
            raise r.error(MEETING_SHEET, row, "B", f"{label} is required")
        values[key] = value if value is not None else ("" if kind == "text" else None)
    meeting = Meeting(**values)
    approved_by_row = labels["Approved by"]
    approved_on_row = labels["Approved on"]
    if bool(meeting.approved_by) != (meeting.approved_on is not None):
        row, missing = (
            (approved_on_row, "Approved on")
            if meeting.approved_by
            else (approved_by_row, "Approved by")
        )
        raise r.error(
            MEETING_SHEET, row, "B", f"approval needs both names and date: {missing} is empty"
        )
    if meeting.approved_on is not None and meeting.approved_on < meeting.meeting_date:
        raise r.error(
            MEETING_SHEET,
            approved_on_row,
            "B",
            f"approved on {meeting.approved_on} is before the meeting ({meeting.meeting_date})",
        )
    return meeting


def _check_header(r: _Reader, sheet: str, columns: Sequence[str]) -> None:
    for i, name in enumerate(columns, start=1):
        got = r.text(sheet, 1, i, _col(i))
        if got != name:
            raise r.error(sheet, 1, _col(i), f"header is {got!r}, expected {name!r}")


def _col(i: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(i))


def _read_inputs(r: _Reader) -> tuple[InputReview, ...]:
    _check_header(r, INPUTS_SHEET, _INPUT_COLUMNS)
    ws = r.wb[INPUTS_SHEET]
    out = []
    for row in range(2, ws.max_row + 1):
        clause = r.text(INPUTS_SHEET, row, 1, "Clause")
        if not clause:
            continue
        reviewed_text = r.text(INPUTS_SHEET, row, 4, "Reviewed").lower()
        if reviewed_text and reviewed_text not in REVIEWED:
            raise r.error(
                INPUTS_SHEET,
                row,
                "Reviewed",
                f"{reviewed_text!r} is not one of {', '.join(REVIEWED)}"
                + did_you_mean(reviewed_text, REVIEWED),
            )
        out.append(
            InputReview(
                clause=clause,
                title=r.text(INPUTS_SHEET, row, 2, "Input"),
                reviewed=(reviewed_text == "yes") if reviewed_text else None,
                comment=r.text(INPUTS_SHEET, row, 5, "Comment"),
            )
        )
    return tuple(out)


def _read_decisions(r: _Reader, meeting: Meeting) -> tuple[DecisionRow, ...]:
    """Read every decision row; this is the sheet's whole rule set, kept in one place."""
    sheet = DECISIONS_SHEET
    _check_header(r, sheet, _DECISION_COLUMNS)
    ws = r.wb[sheet]
    seen: dict[str, int] = {}
    out = []
    for row in range(2, ws.max_row + 1):
        cells = [r.text(sheet, row, c, _DECISION_COLUMNS[c - 1]) for c in (1, 3, 4, 5, 6, 7, 9)]
        due = r.date(sheet, row, 8, "Due date")
        item_id, clause, item, decision_text, action, owner, resources = cells
        source = r.text(sheet, row, 2, "Source")
        if not any(cells[1:]) and due is None:
            continue  # an untouched row (free rows keep only their id)
        if not _ID.match(item_id):
            raise r.error(sheet, row, "Id", f"{item_id!r} is not a row id of the template")
        if item_id in seen:
            raise r.error(sheet, row, "Id", f"{item_id} is also on row {seen[item_id]}")
        seen[item_id] = row
        decision = decision_text.strip().lower()
        if decision and decision not in DECISIONS:
            raise r.error(
                sheet,
                row,
                "Decision",
                f"unknown decision {decision_text!r}{did_you_mean(decision, DECISIONS)}; "
                f"use one of {', '.join(DECISIONS)}",
            )
        if clause and clause not in CLAUSES:
            raise r.error(
                sheet,
                row,
                "Clause",
                f"unknown clause {clause!r}{did_you_mean(clause, CLAUSES)}; "
                f"use one of {', '.join(CLAUSES)}",
            )
        if item_id.startswith("F") and not decision:
            raise r.error(sheet, row, "Decision", "a filled free row needs a decision")
        if decision and not clause:
            raise r.error(sheet, row, "Clause", "a decision needs its 9.3.3 clause (a, b or c)")
        if item_id.startswith("F") and not (item or action):
            raise r.error(sheet, row, "Item", "a free row needs the item or the action")
        if decision == "accepted":
            if not owner:
                raise r.error(sheet, row, "Owner", "an accepted action needs an owner")
            if due is None:
                raise r.error(sheet, row, "Due date", "an accepted action needs a due date")
            if due < meeting.meeting_date:
                raise r.error(
                    sheet,
                    row,
                    "Due date",
                    f"due date {due} is before the meeting ({meeting.meeting_date})",
                )
        out.append(
            DecisionRow(
                item_id=item_id,
                source=source,
                clause=clause,
                item=item,
                decision=decision,
                action=action or item,
                owner=owner,
                due_date=due,
                resources=resources,
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- versions


def changes(old: Minutes, new: Minutes) -> list[dict[str, str]]:
    """What changed between two versions: one entry per field (where, field, old, new)."""
    out: list[dict[str, str]] = []

    def _cmp(where: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
        for key in sorted(set(a) | set(b)):
            va, vb = a.get(key), b.get(key)
            if va != vb:
                out.append(
                    {
                        "where": where,
                        "field": key,
                        "old": "" if va is None else str(va),
                        "new": "" if vb is None else str(vb),
                    }
                )

    od, nd = old.to_dict(), new.to_dict()
    _cmp("meeting", od["meeting"], nd["meeting"])
    oi = {i["clause"]: i for i in od["inputs"]}
    ni = {i["clause"]: i for i in nd["inputs"]}
    for clause in sorted(set(oi) | set(ni)):
        _cmp(f"input {clause}", oi.get(clause, {}), ni.get(clause, {}))
    o = {d["item_id"]: d for d in od["decisions"]}
    n = {d["item_id"]: d for d in nd["decisions"]}
    for item_id in sorted(set(o) | set(n)):
        _cmp(f"decision {item_id}", o.get(item_id, {}), n.get(item_id, {}))
    return out


# --------------------------------------------------------------------------- HTML

_MINUTES_CSS = """
body.qmskpi-minutes{max-width:180mm;margin:1.5rem auto;padding:0 1rem}
.qmskpi-minutes h1{font-size:17pt;margin:0 0 .2em}.qmskpi-minutes h2{font-size:13pt;margin:1.2em 0 .3em}
.qmskpi-minutes table{border-collapse:collapse;width:100%;margin:.3em 0 .8em;font-size:9.5pt}
.qmskpi-minutes th,.qmskpi-minutes td{border-bottom:1px solid #d9d9d9;padding:.25em .4em;
text-align:left;vertical-align:top}
.qmskpi-minutes th{background:#f4f6f8}.qmskpi-minutes .sub{color:#595959;margin-top:0}
.qmskpi-minutes .status{font-weight:700}.qmskpi-minutes .draft{color:#8a5100}
.qmskpi-minutes .approved{color:#00704f}.qmskpi-minutes code{font-size:8.5pt;word-break:break-all}
.qmskpi-minutes tr{break-inside:avoid}.qmskpi-minutes td:first-child{white-space:nowrap}
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], empty: str) -> str:
    if not rows:
        return f"<p>{esc(empty)}</p>"
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# Long by design: the page is a flat sequence of sections in reading order; each is a
# call to _table, and splitting them apart would only move the order elsewhere.
def minutes_html(
    minutes: Minutes,
    *,
    organisation: str,
    version: int,
    pack_manifest_sha256: str,
    template_sha256: str,
    changed: Sequence[Mapping[str, str]] = (),
    previous_id: str | None = None,
) -> str:
    """The minutes as one offline HTML page in the pack's house style.

    Every value from the filled template goes through :func:`templating.esc`; the
    page has a Content-Security-Policy that allows no script at all.
    """
    m = minutes.meeting
    ident = minutes.identity
    status = (
        f'<span class="status approved">Approved by {esc(m.approved_by)} on {esc(m.approved_on)}</span>'
        if minutes.approved
        else '<span class="status draft">Draft: not approved</span>'
    )
    title = f"{organisation} — minutes of the management review {ident.period} ({ident.scope})"
    parts = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="sub">ISO 9001:2015 9.3.3 record of the review of the input pack '
        f"<code>{esc(ident.pack_id)}</code>. Version {version}. {status}</p>",
        "<h2>Meeting</h2>",
        _table(
            ("Item", "Record"),
            [
                ("Meeting date", m.meeting_date.isoformat()),
                ("Chair", m.chair),
                ("Attendees", m.attendees),
                ("Apologies", m.apologies or "none"),
            ],
            "",
        ),
        "<h2>9.3.2 Inputs reviewed</h2>",
        _table(
            ("Clause", "Input", "Reviewed", "Comment"),
            [
                (
                    i.clause,
                    i.title,
                    "yes" if i.reviewed else ("no" if i.reviewed is False else "not recorded"),
                    i.comment,
                )
                for i in minutes.inputs
            ],
            "No input recorded.",
        ),
        "<h2>9.3.3 Decisions and actions</h2>",
    ]
    for clause in CLAUSES:
        rows = [
            (
                minutes.action_id(d) if d.decision == "accepted" else d.item_id,
                d.item,
                d.decision,
                d.action if d.decision == "accepted" else "",
                d.owner,
                d.due_date.isoformat() if d.due_date else "",
                d.resources,
            )
            for d in minutes.decisions
            if d.clause == clause and d.decision
        ]
        parts.append(f"<h3>{esc(clause)} {esc(CLAUSE_TITLES[clause])}</h3>")
        parts.append(
            _table(
                ("Id", "Item", "Decision", "Action", "Owner", "Due", "Resources"),
                rows,
                "No decision recorded.",
            )
        )
    undecided = [d for d in minutes.decisions if not d.decision]
    if undecided:
        parts.append("<h3>Items noted without a decision</h3>")
        parts.append(_table(("Id", "Item"), [(d.item_id, d.item) for d in undecided], ""))
    parts.append("<h2>Approval</h2>")
    parts.append(
        _table(
            ("Approved by", "Approved on"),
            [(m.approved_by or "—", m.approved_on.isoformat() if m.approved_on else "—")],
            "",
        )
    )
    parts.append("<h2>Changes from the previous version</h2>")
    if previous_id is None:
        parts.append("<p>First version of these minutes.</p>")
    else:
        parts.append(f"<p>Corrects version <code>{esc(previous_id)}</code>.</p>")
        parts.append(
            _table(
                ("Where", "Field", "Was", "Now"),
                [(c["where"], c["field"], c["old"], c["new"]) for c in changed],
                "No field changed.",
            )
        )
    parts.append("<h2>Record</h2>")
    parts.append(
        _table(
            ("Item", "Value"),
            [
                ("Pack id", ident.pack_id),
                ("Pack manifest sha256", pack_manifest_sha256),
                ("Pack review-inputs sha256", ident.review_sha256),
                ("Filled template sha256", template_sha256),
            ],
            "",
        )
    )
    pack_css = PACK_CSS.read_text(encoding="utf-8") if PACK_CSS.is_file() else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>{html.escape(title)}</title>"
        f"<style>{pack_css}{_MINUTES_CSS}</style></head>"
        f'<body class="qmskpi-pack qmskpi-minutes">{"".join(parts)}</body></html>\n'
    )


# --------------------------------------------------------------------------- register

REGISTER_COLUMNS: Final = (
    "action_id",
    "review_date",
    "description",
    "owner",
    "due_date",
    "status",
    "closed_date",
    "period",
    "scope",
    "minutes_id",
)
"""Columns of the review-actions register: the ``review_actions`` dataset, then provenance."""


def register_rows(minutes: Minutes, *, minutes_id: str) -> list[dict[str, str]]:
    """The accepted actions of approved ``minutes`` as register rows (status ``open``)."""
    rows = []
    for d in minutes.actions:
        rows.append(
            {
                "action_id": minutes.action_id(d),
                "review_date": minutes.meeting.meeting_date.isoformat(),
                "description": f"{d.clause}: {d.action}",
                "owner": d.owner,
                "due_date": d.due_date.isoformat() if d.due_date else "",
                "status": "open",
                "closed_date": "",
                "period": minutes.identity.period,
                "scope": minutes.identity.scope,
                "minutes_id": minutes_id,
            }
        )
    return rows


def read_register(path: Path) -> pl.DataFrame:
    """The register, one row per action id (a later row — a correction — wins), typed.

    Columns: the ``review_actions`` fields with canonical dtypes, the provenance
    columns, and ``source_row`` (the line in the file, header = 1).
    """
    schema = dict.fromkeys(REGISTER_COLUMNS, pl.String())
    if not path.is_file():
        frame = pl.DataFrame(schema=schema)
    else:
        frame = pl.read_csv(path, schema=schema, has_header=True)
    frame = frame.with_columns((pl.int_range(pl.len(), dtype=pl.Int64) + 2).alias(SOURCE_ROW))
    frame = frame.unique("action_id", keep="last", maintain_order=True)
    return frame.with_columns(
        *(
            pl.col(c).str.to_date("%Y-%m-%d", strict=False)
            for c in ("review_date", "due_date", "closed_date")
        ),
    ).sort(SOURCE_ROW)


def with_register(
    loaded: LoadedData, register: Path, *, until: dt.date | None = None
) -> LoadedData:
    """``loaded`` with the review-actions register merged into ``review_actions``.

    ``until``: only actions raised (``review_date``) on or before that day, the
    end of the period being rendered. Their rows, not the whole file, make the
    register's sha256, so minutes approved after a period do not change that
    period's inputs (its pack, the one that was minuted, is not re-rendered).

    The register is read as a second file of the dataset (``source_file`` tells
    them apart). An action id in both the analyst's ``review_actions`` source
    and the register is a duplicate: the analyst's row is used (it is where
    follow-up is recorded) and the register's row becomes a reject with rule
    ``duplicate:action_id`` — quarantined and listed, never silently dropped.
    No register file, or no action in it up to ``until``: ``loaded`` unchanged.
    """
    if not register.is_file():
        return loaded
    reg = read_register(register)
    if until is not None:
        reg = reg.filter(pl.col("review_date") <= until)
    if reg.is_empty():
        return loaded
    data = reg.drop(SOURCE_ROW).write_csv().encode("utf-8")
    name = register.name
    fields = [f.name for f in DATASETS["review_actions"].fields]
    own = loaded.get("review_actions")
    own_ids: set[str] = set()
    if own is not None:
        own_ids = set(own.frame["action_id"].drop_nulls().to_list())
    dup = reg.filter(pl.col("action_id").is_in(list(own_ids)))
    kept = reg.filter(~pl.col("action_id").is_in(list(own_ids)))
    reg_frame = kept.select(*fields, SOURCE_ROW).with_columns(pl.lit(name).alias(SOURCE_FILE))
    dup_rejects = dup.select(
        pl.col(SOURCE_ROW),
        pl.lit("action_id").alias("column"),
        pl.col("action_id").alias("value"),
        pl.lit("duplicate:action_id").alias("rule"),
        (
            pl.lit("action ")
            + pl.col("action_id")
            + pl.lit(" is also in the review_actions source; that row is used")
        ).alias("message"),
        pl.lit(name).alias("file"),
    ).cast(REJECT_SCHEMA)  # type: ignore[arg-type]
    sha = hashlib.sha256(data).hexdigest()
    reg_file = SourceFile(path=name, sha256=sha, rows_in=reg.height)
    if own is None:
        merged = LoadedDataset(
            dataset="review_actions",
            frame=reg_frame,
            rejects=dup_rejects,
            origin=f"register {name}",
            sha256=sha,
            rows_in=reg.height,
            files=(reg_file,),
        )
        return {**loaded, "review_actions": merged}
    own_frame = own.frame
    if SOURCE_FILE not in own_frame.columns:
        own_frame = own_frame.with_columns(pl.lit(own.origin).alias(SOURCE_FILE))
    reg_frame = reg_frame.cast({c: own_frame.schema[c] for c in reg_frame.columns})  # type: ignore[dict-item]
    frame = pl.concat([own_frame, reg_frame.select(own_frame.columns)], how="vertical")
    own_rejects = own.rejects
    if own_rejects.height and own_rejects["file"].null_count():
        own_rejects = own_rejects.with_columns(pl.col("file").fill_null(own.origin))
    own_files = own.files or (SourceFile(path=own.origin, sha256=own.sha256, rows_in=own.rows_in),)
    merged = LoadedDataset(
        dataset="review_actions",
        frame=frame,
        rejects=pl.concat([own_rejects, dup_rejects], how="vertical"),
        origin=f"{own.origin} + register {name}",
        sha256=hashlib.sha256(f"{own.sha256}:{sha}".encode()).hexdigest(),
        rows_in=own.rows_in + reg.height,
        files=(*own_files, reg_file),
    )
    return {**loaded, "review_actions": merged}


def open_actions(actions: pl.DataFrame, *, as_of: dt.date) -> pl.DataFrame:
    """Review actions still open on ``as_of``, oldest first, with their ageing.

    ``actions``: the ``review_actions`` frame (the analyst's source merged with
    the register by :func:`with_register`). An action is open when it was
    raised by ``as_of`` and its status is not ``closed``. Columns: action id,
    review and due dates, owner, description, ``age_days`` (days since the
    review), ``days_overdue`` (0 when not yet due) and ``source`` (the file).
    """
    day = pl.lit(as_of)
    source = pl.col(SOURCE_FILE) if SOURCE_FILE in actions.columns else pl.lit("")
    return (
        actions.filter((pl.col("status") != "closed") & (pl.col("review_date") <= day))
        .select(
            "action_id",
            "review_date",
            "due_date",
            "owner",
            "description",
            (day - pl.col("review_date")).dt.total_days().alias("age_days"),
            pl.max_horizontal(pl.lit(0), (day - pl.col("due_date")).dt.total_days()).alias(
                "days_overdue"
            ),
            source.cast(pl.String).alias("source"),
        )
        .sort("review_date", "action_id")
    )


__all__ = [
    "CLAUSES",
    "DECISIONS",
    "REGISTER_COLUMNS",
    "TEMPLATE",
    "DecisionRow",
    "InputReview",
    "Meeting",
    "Minutes",
    "MinutesError",
    "PackIdentity",
    "changes",
    "identity_of",
    "minutes_html",
    "open_actions",
    "read_filled",
    "read_register",
    "register_rows",
    "with_register",
    "write_template",
]
