"""Security of the published pack (DESIGN §8, issue 6 item 6): XSS, formula injection, paths.

One small synthetic data set (``SyntheticSpec(months=14, scale=0.3)``) is
written to disk and then poisoned: script, ``onerror``/``onload``, closing-tag
breakout, ``javascript:`` and remote-image payloads, and spreadsheet formula
payloads, go into every free-text field and into names and ids (complaints,
suppliers, defect codes, objectives, CAPA / finding / action ids, review
actions), into the analyst markdown and into the organisation name. A few rows
carry a payload *site*, which the contracts must quarantine.

Each payload is tagged with the field it went into (``<payload> ~<field>``), so
every field is checked on its own. The real pipeline renders the pack once per
module (kernel, nbconvert, Chromium PDF); then:

* the model (``review-inputs.json``) holds every tagged value the pack shows,
  so the page checks cannot pass by the text never reaching the page;
* in a real browser with the network cut off nothing runs (no dialog, no
  ``window.__xss``, no console or page error, no request), no element carries an
  injected ``on*`` handler, ``javascript:`` link or remote ``src``, no script
  holds injected code outside a string literal, every chart draws, and every
  payload is shown literally as text;
* the PDF prints the payloads as text;
* every CSV/XLSX of the pack has no formula, no hyperlink, and every text cell
  a spreadsheet would run starts with ``'``; numbers stay numbers;
* a ``<script>`` site in the config, and a period or scope that climbs out of
  the reports folder, are refused before anything is written (so is a site
  ending in a newline).
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest

from browser import PageReport, offline_page
from qmskpi import pipeline, render, synthetic
from qmskpi.cli import main as cli_main
from qmskpi.config import load_config
from qmskpi.errors import ConfigError, PeriodError

pytestmark = [pytest.mark.browser, pytest.mark.notebook]

PERIOD = "2026-10"
PERIOD_START = date(2026, 10, 1)
PERIOD_END = date(2026, 10, 31)
AS_OF = date(2026, 11, 5)
SPEC = synthetic.SyntheticSpec(months=14, scale=0.3, end_month=PERIOD)

# --------------------------------------------------------------------------- payloads

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SVG = "\"'><svg onload=alert(1)>"
BREAKOUT = "</script><script>alert(2)</script>"
"""Closes the <script> that holds a plotly figure's JSON, if anything puts it there raw."""
JS_URL = "javascript:alert(1)"
SENTINEL = '<img src=x onerror="window.__xss=1">'
SENTINEL_SVG = '<svg onload="window.__xss=2">'
REMOTE = '<img src="http://example.invalid/x.png">'
HYPERLINK = '=HYPERLINK("http://evil","x")'
CMD = "+cmd|' /C calc'!A0"
AT_SUM = "@SUM(1)"
MINUS = "-2+3"
TAB = "\tTAB"
CR = "\rCR"

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def tag(payload: str, field: str) -> str:
    """The payload, marked with the field it went into (the payload stays at the start)."""
    return f"{payload} ~{field}"


ORGANISATION = f'Acme </title>{SCRIPT} & "Co" {SENTINEL} ~org'
"""On the cover, in the <title> (hence the </title>), the PDF header and reports/index.html."""

SHOWN: dict[str, str] = {}
"""field -> tagged value that the pack must show (in the model, on the page)."""
HIDDEN: dict[str, str] = {}
"""field -> tagged value put in data the pack does not show (must not run either)."""
BAD_SITES = {
    "surveys": [tag(SCRIPT, "site.surveys"), tag(SENTINEL_SVG, "site.surveys2")],
    "complaints": [tag(IMG, "site.complaints")],
    "receipts": [tag(HYPERLINK, "site.receipts")],
    "inspections": [tag(MINUS, "site.inspections")],
}
"""dataset -> payload site values put in a few rows (not configured sites: quarantined)."""
BAD_VALUES = {
    ("complaints", "severity"): tag(CMD, "severity"),
    ("inspections", "stage"): tag(AT_SUM, "stage"),
    ("audit_findings", "type"): tag(MINUS, "type"),
    ("capa", "source"): tag(TAB, "source"),
    ("review_actions", "status"): tag(CR, "status"),
}
"""(dataset, column) -> a formula payload that breaks an `allowed` rule: goes to quarantine.csv."""
UNPARSABLE = {
    ("complaints", "units_affected"): tag("=1+2", "units"),
    ("receipts", "qty_received"): tag(AT_SUM, "qty"),
}
"""(dataset, column) -> a formula payload in a number column: the reader rejects the row."""

CHANGES_MD = f"""# Changes {SCRIPT} ~md.heading

Raw HTML in a paragraph: {SENTINEL} ~md.raw

<script>
alert(1) // ~md.block
</script>

<a href="{JS_URL}">click me ~md.anchor</a>

See [the plan ~md.link]({JS_URL}) and ![logo ~md.image](http://example.invalid/x.png)

- a bullet {BREAKOUT} ~md.bullet
- **bold {IMG} ~md.bold**

| Issue | Formula |
|---|---|
| {SVG} ~md.cell | {HYPERLINK} ~md.cell2 |
"""
RESOURCES_MD = f"""{REMOTE} ~md.remote

<iframe src="http://example.invalid/"></iframe> ~md.iframe

<style>body {{ display: none }}</style> ~md.style
"""
RISKS_MD = f"""## Risks {SENTINEL_SVG} ~md.risks

1. `{tag(SCRIPT, "md.code")}`
2. {CMD} ~md.cmd
"""
MARKDOWN_SHOWN = {
    "md.heading": tag(SCRIPT, "md.heading"),
    "md.raw": f"Raw HTML in a paragraph: {tag(SENTINEL, 'md.raw')}",
    "md.anchor": f'<a href="{JS_URL}">click me ~md.anchor</a>',
    "md.link": f"the plan ~md.link ({JS_URL})",
    "md.image": "logo ~md.image (http://example.invalid/x.png)",
    "md.bullet": tag(BREAKOUT, "md.bullet"),
    "md.bold": tag(IMG, "md.bold"),
    "md.cell": tag(SVG, "md.cell"),
    "md.cell2": tag(HYPERLINK, "md.cell2"),
    "md.remote": tag(REMOTE, "md.remote"),
    "md.iframe": '<iframe src="http://example.invalid/"></iframe> ~md.iframe',
    "md.style": "<style>body { display: none }</style> ~md.style",
    "md.risks": tag(SENTINEL_SVG, "md.risks"),
    "md.block": "<script> alert(1) // ~md.block </script>",
    "md.code": tag(SCRIPT, "md.code"),
    "md.cmd": tag(CMD, "md.cmd"),
}


# --------------------------------------------------------------------------- the data set


def _set(frame: pl.DataFrame, key: str, key_value: Any, column: str, value: Any) -> pl.DataFrame:
    """``frame`` with ``column`` set to ``value`` on the row(s) where ``key == key_value``."""
    assert (frame[key] == key_value).any(), f"no row with {key}={key_value!r}"
    return frame.with_columns(
        pl.when(pl.col(key) == key_value)
        .then(pl.lit(value, dtype=frame.schema[column]))
        .otherwise(pl.col(column))
        .alias(column)
    )


def _show(field: str, payload: str) -> str:
    SHOWN[field] = value = tag(payload, field)
    return value


def _hide(field: str, payload: str) -> str:
    HIDDEN[field] = value = tag(payload, field)
    return value


def poison(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Put the payloads into rows the pack shows for PERIOD (and a few it quarantines)."""
    f = dict(frames)
    in_period = pl.col("received_date").is_between(PERIOD_START, PERIOD_END)

    # c1: critical and major complaints received in the period (all of their text).
    c = f["complaints"]
    serious = c.filter(in_period & pl.col("severity").is_in(["critical", "major"]))
    ids = sorted(serious["complaint_id"].to_list())
    assert len(ids) >= 3, "the spec must give three serious complaints in the period"
    rows = [
        {
            "description": ("c.desc1", SCRIPT),
            "customer": ("c.cust1", SVG),
            "product": ("c.prod1", IMG),
            "category": ("c.cat1", SENTINEL),
            "root_cause": ("c.root1", BREAKOUT),
        },
        {
            "description": ("c.desc2", BREAKOUT),
            "customer": ("c.cust2", HYPERLINK),
            "product": ("c.prod2", AT_SUM),
            "category": ("c.cat2", JS_URL),
            "root_cause": ("c.root2", MINUS),
        },
        {
            "description": ("c.desc3", f"{SENTINEL_SVG} {REMOTE} {CMD}"),
            "customer": ("c.cust3", SENTINEL),
            "product": ("c.prod3", MINUS),
            "category": ("c.cat3", SCRIPT),
            "root_cause": ("c.root3", IMG),
        },
    ]
    for cid, fields in zip(ids, rows, strict=False):
        for column, (field, payload) in fields.items():
            value = _hide(field, payload) if column == "root_cause" else _show(field, payload)
            c = _set(c, "complaint_id", cid, column, value)

    # c3: the worst defect codes of the period (Pareto bars, table and the vital-few text).
    ins = f["inspections"]
    month = ins.filter(pl.col("inspection_date").is_between(PERIOD_START, PERIOD_END))
    worst = (
        month.drop_nulls("defect_code")
        .group_by("defect_code")
        .len()
        .sort(["len", "defect_code"], descending=[True, False])["defect_code"]
        .to_list()
    )
    assert len(worst) >= 3
    for code, (field, payload) in zip(
        worst, [("dc1", BREAKOUT), ("dc2", HYPERLINK), ("dc3", SENTINEL)], strict=False
    ):
        ins = _set(ins, "defect_code", code, "defect_code", _show(field, payload))
    product = ins["product"][0]
    ins = _set(ins, "product", product, "product", _hide("ins.prod", IMG))

    # c7: suppliers with receipts in the period (scorecard bars and table).
    sup = f["suppliers"]
    for sid, (nfield, npay), (cfield, cpay) in (
        ("SUP-003", ("sup.name3", SENTINEL), ("sup.cat3", SCRIPT)),
        ("SUP-008", ("sup.name8", HYPERLINK), ("sup.cat8", BREAKOUT)),
        ("SUP-001", ("sup.name1", SVG), ("sup.cat1", AT_SUM)),
    ):
        sup = _set(sup, "supplier_id", sid, "name", _show(nfield, npay))
        sup = _set(sup, "supplier_id", sid, "category", _show(cfield, cpay))

    # c2: objectives (bullet-chart titles and the attainment table).
    obj = f["objectives"]
    obj = _set(obj, "objective_id", "OBJ-01", "name", _show("obj.name1", BREAKOUT))
    obj = _set(obj, "objective_id", "OBJ-01", "owner", _show("obj.owner1", IMG))
    obj = _set(obj, "objective_id", "OBJ-06", "name", _show("obj.name6", SENTINEL))
    obj = _set(obj, "objective_id", "OBJ-06", "owner", _show("obj.owner6", AT_SUM))
    # a KPI id no one knows: the attainment note names it
    obj = _set(obj, "objective_id", "OBJ-07", "kpi", _show("obj.kpi7", SENTINEL))
    # the unit column is in the model but not on the page (the values are formatted by it)
    obj = _set(obj, "objective_id", "OBJ-08", "unit", _hide("obj.unit8", SCRIPT))

    # c4 / c6: CAPAs and audit findings open past their due date at period end.
    capa = f["capa"]
    overdue = (pl.col("status") == "open") & (pl.col("due_date") < PERIOD_END)
    capa_ids = sorted(capa.filter(overdue)["capa_id"].to_list())
    assert len(capa_ids) >= 2
    for old, (field, payload) in zip(
        capa_ids, [("capa.id1", SCRIPT), ("capa.id2", HYPERLINK)], strict=False
    ):
        new = _show(field, payload)
        capa = _set(capa, "capa_id", old, "capa_id", new)
        if (c["capa_id"] == old).any():
            c = _set(c, "capa_id", old, "capa_id", new)
    fnd = f["audit_findings"]
    fnd_ids = sorted(fnd.filter(overdue)["finding_id"].to_list())
    assert len(fnd_ids) >= 2
    for old, (field, payload) in zip(
        fnd_ids, [("finding.id1", IMG), ("finding.id2", MINUS)], strict=False
    ):
        fnd = _set(fnd, "finding_id", old, "finding_id", _show(field, payload))

    # a): actions from previous reviews, open past due (both review-action tables).
    ra = f["review_actions"]
    ra_ids = sorted(ra.filter(overdue)["action_id"].to_list())
    assert len(ra_ids) >= 2
    for old, n, (ipay, dpay, opay) in (
        (ra_ids[0], 1, (SVG, f"{SENTINEL} {REMOTE}", AT_SUM)),
        (ra_ids[1], 2, (CMD, SENTINEL_SVG, JS_URL)),
    ):
        ra = _set(ra, "action_id", old, "description", _show(f"ra.desc{n}", dpay))
        ra = _set(ra, "action_id", old, "owner", _show(f"ra.owner{n}", opay))
        ra = _set(ra, "action_id", old, "action_id", _show(f"ra.id{n}", ipay))

    f.update(
        complaints=c,
        inspections=ins,
        suppliers=sup,
        objectives=obj,
        capa=capa,
        audit_findings=fnd,
        review_actions=ra,
    )

    # Rows with a payload site (not a configured site) and values breaking `allowed` rules:
    # quarantined, shown in the data-quality appendix, written to quarantine.csv.
    for name, sites in BAD_SITES.items():
        frame = f[name].with_row_index("_i")
        for i, site in enumerate(sites):
            frame = _set(frame, "_i", i, "site", site)
        f[name] = frame.drop("_i")
    for (name, column), value in BAD_VALUES.items():
        frame = f[name].with_row_index("_i")
        f[name] = _set(frame, "_i", len(BAD_SITES), column, value).drop("_i")
    return f


def write_dataset(root: Path) -> Path:
    """Write the poisoned data set, analyst inputs and config into ``root``; return the config."""
    frames = poison(synthetic.generate(SPEC))
    synthetic.write(frames, root, spec=SPEC)
    for (name, column), value in UNPARSABLE.items():
        path = root / f"{name}.csv"
        frame = pl.read_csv(path, infer_schema=False).with_row_index("_i")
        frame = _set(frame, "_i", len(BAD_SITES) + 2, column, value).drop("_i")
        frame.write_csv(path, line_terminator="\n")
    (root / "inputs" / "changes.md").write_text(CHANGES_MD, encoding="utf-8")
    (root / "inputs" / "resources.md").write_text(RESOURCES_MD, encoding="utf-8")
    (root / "inputs" / "risks.md").write_text(RISKS_MD, encoding="utf-8")
    cfg = root / "qmskpi.toml"
    text = cfg.read_text(encoding="utf-8")
    text, n = re.subn(
        r'(?m)^name = ".*"$', lambda _: f"name = {json.dumps(ORGANISATION)}", text, count=1
    )
    assert n == 1
    # every payload row printed (the pack is bounded by [review] max_rows, default 10):
    # this module checks how the pack shows them; the registers hold them all anyway
    text, n = re.subn(r"(?m)^\[review\]$", "[review]\nmax_rows = 200", text, count=1)
    assert n == 1
    cfg.write_text(text, encoding="utf-8")
    assert load_config(cfg).organisation == ORGANISATION
    return cfg


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The poisoned data set on disk, with its config; returns the config path."""
    return write_dataset(tmp_path_factory.mktemp("security") / "data")


# --------------------------------------------------------------------------- the pack


@dataclass(frozen=True)
class Published:
    config: Path
    outcome: pipeline.RunOutcome
    pack: Path
    reports: Path
    model: dict[str, Any]
    model_text: str


@pytest.fixture(scope="module")
def printer() -> Iterator[render.PdfPrinter]:
    """One Chromium for the render and the page checks."""
    with render.PdfPrinter() as p:
        yield p


@pytest.fixture(scope="module")
def published(dataset: Path, printer: render.PdfPrinter) -> Published:
    """The real pipeline, once: load, validate, compute, notebook, HTML, PDF, publish."""
    outcome = pipeline.run_review(dataset, PERIOD, "all", as_of=AS_OF, pdf=True, browser=printer)
    assert outcome.status == "published", outcome.error
    assert outcome.pack_dir is not None
    text = (outcome.pack_dir / "review-inputs.json").read_text(encoding="utf-8")
    return Published(
        dataset,
        outcome,
        outcome.pack_dir,
        load_config(dataset).reports_dir,
        json.loads(text),
        text,
    )


def model_strings(obj: Any) -> Iterator[str]:
    """Every string anywhere in the model's JSON."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from model_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from model_strings(v)


@dataclass(frozen=True)
class PageFacts:
    report: PageReport
    body: str
    xss: Any
    handlers: list[str]
    js_links: list[str]
    remote: list[str]
    scripts: list[str]
    title: str
    organisation: str | None


_PAGE_JS = """() => {
  const all = Array.from(document.querySelectorAll('*'));
  const handlers = [];
  const remote = [];
  const jsLinks = [];
  for (const el of all) {
    for (const a of Array.from(el.attributes)) {
      const name = a.name.toLowerCase();
      const value = a.value;
      if (name.startsWith('on') && /alert|__xss/.test(value)) {
        handlers.push(`${el.tagName} ${name}=${value}`);
      }
      if (/^(src|srcset|href|xlink:href|action|formaction|data|poster|background)$/.test(name)) {
        const v = value.trim().toLowerCase();
        if (v.startsWith('javascript:')) jsLinks.push(`${el.tagName} ${name}=${value}`);
        // any src but data:/blob: (the pack inlines everything), or a remote URL elsewhere;
        // an href is a link, not a request (javascript: links are caught above)
        const fetched = name === 'src' ? !/^(data|blob):/.test(v) : /^(https?:)?\\/\\//.test(v);
        if (fetched && name !== 'href') remote.push(`${el.tagName} ${name}=${value}`);
      }
    }
  }
  return {
    handlers, remote, jsLinks,
    scripts: Array.from(document.scripts).map(s => s.text),
    xss: window.__xss === undefined ? null : String(window.__xss),
  };
}"""


def read_page(browser: Any, html: Path) -> PageFacts:
    """Open ``html`` offline in Chromium; what it did and what it shows."""
    with offline_page(browser, html) as (page, report):
        page.wait_for_timeout(300)  # give a late onerror/onload the chance to fire
        found = page.evaluate(_PAGE_JS)
        body = page.inner_text("body")
        title = page.title()
        organisation = page.text_content(".qk-org")
    return PageFacts(
        report,
        body,
        found["xss"],
        found["handlers"],
        found["jsLinks"],
        found["remote"],
        found["scripts"],
        title,
        organisation,
    )


@pytest.fixture(scope="module")
def page_facts(published: Published, printer: render.PdfPrinter) -> PageFacts:
    """The published HTML opened offline in Chromium."""
    return read_page(printer.browser, published.pack / "management-review.html")


# --------------------------------------------------------------------------- the model


def test_every_shown_payload_reaches_the_model(published: Published) -> None:
    """The page checks below are only worth something if the payloads are in the pack."""
    strings = list(model_strings(published.model))
    missing = {
        field: value for field, value in SHOWN.items() if not any(value in s for s in strings)
    }
    assert missing == {}
    assert published.model["meta"]["organisation"] == ORGANISATION
    analyst = published.model_text
    for needle in (SCRIPT, SENTINEL, BREAKOUT, JS_URL, "http://example.invalid/x.png"):
        assert json.dumps(needle)[1:-1] in analyst


def test_payload_sites_are_quarantined_under_site_known(published: Published) -> None:
    quarantine = pl.read_csv(published.pack / "quarantine.csv", infer_schema=False)
    site_rows = quarantine.filter(pl.col("rule") == "site_known")
    got = {(r["dataset"], r["value"]) for r in site_rows.iter_rows(named=True)}
    for name, sites in BAD_SITES.items():
        for site in sites:
            shown = "'" + site if site.startswith(FORMULA_START) else site
            assert (name, shown) in got, (name, site)
    validation = json.loads((published.pack / "validation.json").read_text())
    for name in BAD_SITES:
        rules = {r["rule_id"]: r for r in validation["datasets"][name]["rules"]}
        assert rules["site_known"]["success"] is False
    # the data-quality appendix lists the failed rule with the payload sites as examples
    failed = next(t for t in published.model["tables"] if t["id"] == "failed_rules")
    examples = " ".join(str(r[-1]) for r in failed["rows"] if r[1] == "site_known")
    for sites in BAD_SITES.values():
        for site in sites:
            assert site.strip() in examples


def test_config_sites_are_restricted(dataset: Path, tmp_path: Path) -> None:
    """A configured site becomes a folder name: markup or a path is refused."""
    text = dataset.read_text(encoding="utf-8")
    for bad in (SCRIPT, "../etc", "North/../../x", "a\nb"):
        cfg = tmp_path / "qmskpi.toml"
        cfg.write_text(
            re.sub(r"(?m)^sites = .*$", lambda _, b=bad: f"sites = {json.dumps([b])}", text),
            encoding="utf-8",
        )
        with pytest.raises(ConfigError, match="site name"):
            load_config(cfg)
    assert not (tmp_path / "reports").exists()


def test_config_site_with_a_trailing_newline_is_refused(dataset: Path, tmp_path: Path) -> None:
    text = dataset.read_text(encoding="utf-8")
    sites = json.dumps(["North\n"])
    cfg = tmp_path / "qmskpi.toml"
    cfg.write_text(
        re.sub(r"(?m)^sites = .*$", lambda _: f"sites = {sites}", text), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="site name"):
        load_config(cfg)


# --------------------------------------------------------------------------- the page


def test_nothing_runs_in_the_browser(page_facts: PageFacts) -> None:
    r = page_facts.report
    assert r.dialogs == []
    assert page_facts.xss is None  # window.__xss never set
    assert r.console_errors == []
    assert r.page_errors == []
    assert r.failed_requests == []
    assert r.blocked_requests == []  # no request was even attempted
    assert r.problems() == []


def test_every_chart_draws(page_facts: PageFacts) -> None:
    r = page_facts.report
    assert r.charts_expected >= 5  # SPC charts, Pareto, scorecard, objectives
    assert r.charts_drawn == r.charts_expected


def test_no_injected_handler_link_or_remote_resource_in_the_dom(page_facts: PageFacts) -> None:
    assert page_facts.handlers == []
    assert page_facts.js_links == []
    assert page_facts.remote == []


_STRING_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"' + r"|'(?:[^'\\\n]|\\.)*'")


def test_no_script_holds_injected_code(page_facts: PageFacts) -> None:
    """Payload text may sit in a figure's JSON (a string literal); never outside one.

    A closing-tag breakout would make a ``<script>`` element of its own whose
    code is ``alert(2)``.
    """
    assert page_facts.scripts  # plotly.js and the figures
    bad = []
    for text in page_facts.scripts:
        code = _STRING_LITERAL.sub('""', text)
        if "alert(" in code or "__xss" in code:
            at = max(code.find("alert("), code.find("__xss"))
            bad.append(code[max(0, at - 80) : at + 40])
    assert bad == []


def test_payloads_are_shown_literally(page_facts: PageFacts) -> None:
    body = " ".join(page_facts.body.split())
    expected = {
        **SHOWN,
        **MARKDOWN_SHOWN,
        **{f"site:{s}": s for sites in BAD_SITES.values() for s in sites},
    }
    missing = {
        field: value for field, value in expected.items() if " ".join(value.split()) not in body
    }
    assert missing == {}
    assert page_facts.organisation == ORGANISATION  # shown in capitals (CSS), as text
    assert ORGANISATION.upper() in body
    assert ORGANISATION in page_facts.title


# --------------------------------------------------------------------------- PDF and index


def test_pdf_prints_the_payloads_as_text(published: Published) -> None:
    text = subprocess.run(
        ["pdftotext", str(published.pack / "management-review.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    flat = " ".join(text.split())
    for value in (
        SHOWN["c.desc1"],
        SHOWN["c.cust1"],
        SHOWN["sup.name3"],
        SHOWN["dc1"],
        MARKDOWN_SHOWN["md.heading"],
        ORGANISATION,
    ):
        assert " ".join(value.split()) in flat, value


def test_reports_index_runs_nothing_and_shows_the_organisation(
    published: Published, printer: render.PdfPrinter
) -> None:
    index = published.reports / "index.html"
    with offline_page(printer.browser, index, wait_for_charts=False) as (page, report):
        page.wait_for_timeout(200)
        body = " ".join(page.inner_text("body").split())
        xss = page.evaluate("() => window.__xss === undefined ? null : String(window.__xss)")
    assert report.problems() == []
    assert xss is None
    assert ORGANISATION in body


# --------------------------------------------------------------------------- exports


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_csv_exports_neutralise_formulas(published: Published) -> None:
    files = sorted(published.pack.glob("*.csv"))
    assert {"kpis.csv", "quarantine.csv"} <= {p.name for p in files}
    runnable = []
    cells: list[str] = []
    for path in files:
        with path.open(encoding="utf-8", newline="") as fh:
            for n, row in enumerate(csv.reader(fh), start=1):
                for value in row:
                    cells.append(value)
                    if value.startswith(FORMULA_START) and not _is_number(value):
                        runnable.append(f"{path.name}:{n}: {value!r}")
    assert runnable == []
    # the payloads did reach an export, neutralised (the reader strips a leading tab / CR)
    payloads = [*BAD_VALUES.values(), *UNPARSABLE.values()]
    for value in [*payloads, *BAD_SITES["receipts"], *BAD_SITES["inspections"]]:
        if value[0].isspace():
            assert value.strip() in cells, value
        else:
            assert "'" + value in cells, value
    # numbers stay numbers
    kpis = pl.read_csv(published.pack / "kpis.csv")
    assert kpis.schema["value"] == pl.Float64
    assert kpis["value"].drop_nulls().len() > 0


def test_xlsx_exports_have_no_formula_no_hyperlink(published: Published) -> None:
    files = sorted(published.pack.glob("*.xlsx"))
    assert [p.name for p in files] == ["kpis.xlsx", "minutes.xlsx", "registers.xlsx"]
    numbers = 0
    for path in files:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                xml = z.read(name).decode("utf-8", errors="replace")
                # no hyperlink element or relationship (a register or the minutes template
                # may hold the text '=HYPERLINK(...) of a payload, neutralised, as a string)
                assert re.search(r"<(\w+:)?hyperlinks?[\s>/]", xml) is None, name
                assert "relationships/hyperlink" not in xml, name
                assert re.search(r"<f[\s>/]", xml) is None, name  # no formula element
        wb = openpyxl.load_workbook(path)
        for ws in wb.worksheets:
            assert not ws._hyperlinks  # type: ignore[attr-defined]
            header = [c.value for c in ws[1]]
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", cell.coordinate
                    assert cell.hyperlink is None, cell.coordinate
                    if isinstance(cell.value, str):
                        assert not cell.value.startswith(FORMULA_START), (
                            cell.coordinate,
                            cell.value,
                        )
            if path.name != "kpis.xlsx":
                continue  # a register or the minutes template: text as the pack shows it
            col = header.index("value") + 1
            for (v,) in ws.iter_rows(min_row=2, min_col=col, max_col=col, values_only=True):
                assert v is None or isinstance(v, int | float), v
                numbers += v is not None
    assert numbers > 0


def test_the_export_writers_neutralise_every_formula_start(tmp_path: Path) -> None:
    """Tab and CR never reach a pack's export (the reader strips them): check the writers."""
    texts = [HYPERLINK, CMD, AT_SUM, MINUS, TAB, CR, "plain", None]
    frame = pl.DataFrame(
        {
            "text": texts,
            "number": [-1.5, 2.0, -3.0, 0.0, 1.0, -2.0, 3.0, None],
            HYPERLINK: [1, 2, 3, 4, 5, 6, 7, 8],  # a header is a cell too
        }
    )
    safe = ["'" + t for t in texts[:6]] + ["plain", None]

    render.write_csv(frame, tmp_path / "t.csv")
    with (tmp_path / "t.csv").open(encoding="utf-8", newline="") as fh:
        header, *body = list(csv.reader(fh))
    assert header == ["text", "number", "'" + HYPERLINK]
    assert [r[0] for r in body] == [t if t is not None else "" for t in safe]
    assert pl.read_csv(tmp_path / "t.csv").schema["number"] == pl.Float64

    render.write_xlsx({"t": frame}, tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "t.xlsx")["t"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("text", "number", "'" + HYPERLINK)
    # (an XML parser reads a CR in text as LF: still behind the apostrophe)
    assert [r[0] for r in rows[1:]] == [t.replace("\r", "\n") if t else t for t in safe]
    assert [r[1] for r in rows[1:]] == [-1.5, 2, -3, 0, 1, -2, 3, None]
    assert all(c.data_type != "f" and c.hyperlink is None for row in ws.iter_rows() for c in row)


# --------------------------------------------------------------------------- paths


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(
    ("period", "scope", "error"),
    [
        ("../../x", "all", PeriodError),
        ("2026-10/../../x", "all", PeriodError),
        ("/tmp/x", "all", PeriodError),
        (PERIOD, "../etc", ConfigError),
        (PERIOD, "../../../../tmp/x", ConfigError),
        (PERIOD, "North/../..", ConfigError),
        (PERIOD, SCRIPT, ConfigError),
    ],
)
def test_run_review_refuses_paths_outside_the_reports_folder(
    dataset: Path, period: str, scope: str, error: type[Exception]
) -> None:
    base = dataset.parent.parent
    before = _tree(base)
    with pytest.raises(error):
        pipeline.run_review(dataset, period, scope, as_of=AS_OF, pdf=False)
    assert _tree(base) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["render", "--period", "../../x"],
        ["render", "--period", PERIOD, "--site", "../etc"],
        ["render", "--period", PERIOD, "--site", SCRIPT],
        ["validate", "--period", "../../x"],
    ],
)
def test_cli_refuses_paths_outside_the_reports_folder(dataset: Path, argv: list[str]) -> None:
    base = dataset.parent.parent
    before = _tree(base)
    assert cli_main([*argv, "--config", str(dataset)]) == 2
    assert _tree(base) == before
