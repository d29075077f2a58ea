from __future__ import annotations

import json
import re
import textwrap
import tomllib
from pathlib import Path

import pytest

from qmskpi.config import WHOLE_SCOPE, from_dict, load_config
from qmskpi.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = """
[organisation]
name = "Acme Components Ltd"
sites = ["North", "South"]

[sources.complaints]
path = "complaints.csv"
date_formats = { received_date = "%d/%m/%Y" }
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "qmskpi.toml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_minimal_config_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.organisation == "Acme Components Ltd"
    assert cfg.scopes == (WHOLE_SCOPE, "North", "South")
    src = cfg.sources["complaints"]
    assert src.kind == "file"
    assert src.date_formats == {"received_date": "%d/%m/%Y"}
    assert cfg.kpis.complaint_close_target_days == 30
    assert cfg.kpis.supplier_otd_tolerance_days == 0
    assert cfg.review.trend_months == 24
    assert cfg.resolve("complaints.csv") == tmp_path.resolve() / "complaints.csv"
    assert cfg.reports_dir == tmp_path.resolve() / "reports"
    assert cfg.outputs.pdf == "required"  # a scheduled job never silently drops the PDF


@pytest.mark.parametrize(
    ("value", "policy"),
    [
        ("'required'", "required"),
        ("'optional'", "optional"),
        ("'off'", "off"),
        ("true", "required"),
        ("false", "off"),
    ],
)
def test_pdf_policy(tmp_path: Path, value: str, policy: str) -> None:
    cfg = load_config(write(tmp_path, MINIMAL + f"[outputs]\npdf = {value}\n"))
    assert cfg.outputs.pdf == policy


@pytest.mark.parametrize(
    ("extra", "key", "hint"),
    [
        (
            "[kpis]\ncomplaint_close_target_dys = 20\n",
            "kpis.complaint_close_target_dys",
            "complaint_close_target_days",
        ),
        ("[reveiw]\ntrend_months = 12\n", "reveiw", "review"),
        ("[sources.complaint]\npath = 'x.csv'\n", "sources.complaint", "complaints"),
        (
            "[sources.receipts]\npath = 'r.csv'\ncolumns = { recieved_date = 'Date In' }\n",
            "sources.receipts.columns.recieved_date",
            "received_date",
        ),
        ("[review]\ngranularity = 'monht'\n", "review.granularity", "month"),
        ("[outputs]\npdf = 'optinal'\n", "outputs.pdf", "optional"),
    ],
)
def test_unknown_key_names_key_file_and_hint(
    tmp_path: Path, extra: str, key: str, hint: str
) -> None:
    path = write(tmp_path, MINIMAL + extra)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert f"key '{key}'" in message
    assert f"did you mean '{hint}'" in message


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ("[kpis]\nrepeat_window_days = 'ninety'\n", "kpis.repeat_window_days", "an integer"),
        (
            "[kpis]\nsupplier_otd_tolerance_days = -1\n",
            "kpis.supplier_otd_tolerance_days",
            "zero or more",
        ),
        ("[review]\ntrend_months = 2\n", "review.trend_months", "between 3 and 120"),
        (
            "[kpis.scorecard]\notd_weight = 0.7\nquality_weight = 0.7\n",
            "kpis.scorecard.otd_weight",
            "add up to 1",
        ),
        ("[outputs]\npdf = 'yes'\n", "outputs.pdf", "true or false"),
        (
            "[sources.capa]\npath = 'c.csv'\ndate_formats = { status = '%Y' }\n",
            "sources.capa.date_formats.status",
            "not a date field",
        ),
        ("[sources.capa]\npath = 'c.csv'\nheader_row = 0\n", "sources.capa.header_row", "1-based"),
        (
            "[sources.capa]\npath = 'c.csv'\ncoverage_start = '2024-13'\n",
            "sources.capa.coverage_start",
            "a month YYYY-MM",
        ),
        (
            "[sources.capa]\npath = 'c.csv'\nzero_means_zero = 'yes'\n",
            "sources.capa.zero_means_zero",
            "true or false",
        ),
        (
            "[sources.capa]\npath = 'c.csv'\ndate_formats = { opened_date = 'dd/mm/yyyy' }\n",
            "sources.capa.date_formats.opened_date",
            "not a date format.*did you mean '%d/%m/%Y'",
        ),
        (
            "[sources.capa]\npath = 'c.csv'\ndate_formats = { opened_date = '%d/%m' }\n",
            "sources.capa.date_formats.opened_date",
            "has no year",
        ),
        (
            "[sources.capa]\npath = 'c.csv'\ndate_formats = { opened_date = '%d/%m/%Q' }\n",
            "sources.capa.date_formats.opened_date",
            "unknown directive.*%Q",
        ),
        (
            "[sources.capa]\npath = 'c.csv'\n[sources.capa.derive]\n"
            "status = \"CASE WHEN closed IS NULL THEN 'open'\"\n",
            "sources.capa.derive.status",
            "not a SQL expression",
        ),
        (
            "[sources.capa]\npath = 'c.csv'\n[sources.capa.derive]\nstatuss = \"'open'\"\n",
            "sources.capa.derive.statuss",
            "did you mean 'status'",
        ),
        ("[sources.capa]\npath = 'c.csv'\nwhere = ''\n", "sources.capa.where", "is empty"),
        (
            "[sources.capa]\npath = 'c.csv'\ndefaults = { source = ['a'] }\n",
            "sources.capa.defaults.source",
            "string, number or boolean",
        ),
    ],
)
def test_wrong_values_name_the_key(tmp_path: Path, extra: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        load_config(write(tmp_path, MINIMAL + extra))
    assert f"key '{key}'" in str(info.value)


def test_site_names_become_paths_so_they_are_checked(tmp_path: Path) -> None:
    for bad in ('"../etc"', '"a/b"', '"<script>"', '"all"', '"ALL"', '""', '"North\\n"'):
        text = MINIMAL.replace('sites = ["North", "South"]', f"sites = [{bad}]")
        with pytest.raises(ConfigError, match=r"organisation\.sites"):
            load_config(write(tmp_path, text))


def test_sources_declare_their_coverage(tmp_path: Path) -> None:
    from qmskpi import kpis

    text = MINIMAL + (
        "coverage_start = '2024-01'\n"
        "[sources.capa]\npath = 'c.csv'\nzero_means_zero = true\n"
        "[sources.audit_findings]\npath = 'a.csv'\n"
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.sources["complaints"].coverage_start == "2024-01"
    assert cfg.sources["complaints"].zero_means_zero is False
    assert cfg.sources["capa"].zero_means_zero is True
    assert kpis.coverage_of(cfg.sources) == {"complaints": "2024-01", "capa": None}


def test_site_names_in_any_script_with_commas_and_apostrophes(tmp_path: Path) -> None:
    names = ["Côte d'Ivoire", "Congo, DRC", "東京", "Zürich (HQ)", "São Paulo & Rio"]
    listed = ", ".join(f'"{n}"' for n in names)
    text = MINIMAL.replace('sites = ["North", "South"]', f"sites = [{listed}]")
    assert load_config(write(tmp_path, text)).sites == tuple(names)


def test_good_date_formats_load(tmp_path: Path) -> None:
    formats = ["%d/%m/%Y", "%m/%d/%y", "%Y%m%d", "%d-%b-%Y", "%Y-%m-%dT%H:%M:%S", "%F", "%e %B %Y"]
    for fmt in formats:
        text = MINIMAL.replace('"%d/%m/%Y"', f'"{fmt}"')
        assert load_config(write(tmp_path, text)).sources["complaints"].date_formats == {
            "received_date": fmt
        }


def test_sql_source_needs_database_and_no_password_in_file(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """
[databases.erp]
url = "postgresql://qm:secret@db.example/qms"

[sources.capa]
database = "erp"
query = "SELECT * FROM capa"
"""
    )
    with pytest.raises(ConfigError, match="password") as info:
        load_config(write(tmp_path, text))
    assert "databases.erp.url" in str(info.value)
    ok = text.replace('url = "postgresql://qm:secret@db.example/qms"', 'url_env = "QMS_DB_URL"')
    cfg = load_config(write(tmp_path, ok))
    assert cfg.sources["capa"].kind == "sql"
    with pytest.raises(ConfigError, match="QMS_DB_URL is not set"):
        cfg.databases["erp"].resolve_url()


def test_unknown_database_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'erp'"):
        load_config(
            write(
                tmp_path,
                MINIMAL + '[databases.erp]\nurl = "sqlite:///q.db"\n'
                '[sources.capa]\ndatabase = "epr"\nquery = "SELECT 1"\n',
            )
        )
    with pytest.raises(ConfigError, match="exactly one of 'path'"):
        load_config(write(tmp_path, MINIMAL + "[sources.capa]\nencoding = 'cp1252'\n"))


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[organisation\nname="))


def test_check_scope_and_digest_stability(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.check_scope("North") == "North"
    with pytest.raises(ConfigError, match="did you mean 'North'"):
        cfg.check_scope("Nort")
    again = load_config(write(tmp_path, MINIMAL))
    assert cfg.digest() == again.digest()
    changed = from_dict(
        {"organisation": {"name": "Other"}, "sources": {"complaints": {"path": "c.csv"}}}
    )
    assert changed.digest() != cfg.digest()
    assert cfg.with_reports_dir(tmp_path / "out").reports_dir == (tmp_path / "out").resolve()


def test_run_table_picks_the_executor_and_stays_out_of_the_digest(tmp_path: Path) -> None:
    plain = load_config(write(tmp_path, MINIMAL))
    assert (plain.run.executor, plain.run.jobs, plain.run.scheduler) == ("local", 1, None)
    text = MINIMAL + '[run]\nexecutor = "dask"\nscheduler = "tcp://10.0.0.5:8786"\n'
    cfg = load_config(write(tmp_path, text))
    assert (cfg.run.executor, cfg.run.jobs, cfg.run.scheduler) == (
        "dask",
        1,
        "tcp://10.0.0.5:8786",
    )
    # Where the packs are rendered does not change them: no re-render when it moves.
    assert cfg.digest() == plain.digest()


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ('executor = "dusk"', "run.executor", "did you mean 'dask'"),
        ("jobs = 0", "run.jobs", "1 or more"),
        ('scheduler = "tcp://h:8786"', "run.scheduler", 'executor = "dask"'),
        ("workers = 2", "run.workers", "did you mean 'jobs'|allowed here"),
        ('executor = "dask"\nscheduler = "tcp://h:8786"\njobs = 2', "run.jobs", "workers decide"),
    ],
)
def test_run_table_errors_name_the_key(tmp_path: Path, extra: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        load_config(write(tmp_path, MINIMAL + "[run]\n" + extra + "\n"))
    assert f"key '{key}'" in str(info.value)


def test_review_standard_and_own_clause_map_keys(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert (cfg.review.standard, cfg.review.clause_map) == ("ISO 9001:2015", None)
    cfg = load_config(write(tmp_path, MINIMAL + '[review]\nstandard = "ISO 9001:2026"\n'))
    assert cfg.review.standard == "ISO 9001:2026"
    cfg = load_config(write(tmp_path, MINIMAL + '[review]\nclause_map = "maps/iatf.toml"\n'))
    assert cfg.review.clause_map == "maps/iatf.toml"
    with pytest.raises(ConfigError, match="path of a clause-map") as info:
        load_config(write(tmp_path, MINIMAL + '[review]\nclause_map = "iso9001_2015"\n'))
    assert "key 'review.clause_map'" in str(info.value)
    with pytest.raises(ConfigError, match="not both"):
        load_config(
            write(
                tmp_path,
                MINIMAL + '[review]\nstandard = "ISO 9001:2015"\nclause_map = "m.toml"\n',
            )
        )


def test_contracts_table_reads_dir_and_rule_overrides(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            MINIMAL
            + """
[kpis]
max_quarantined_share = 0.1

[contracts]
dir = "my_contracts"
engine = "gx"

[contracts.complaints.customer_required]
severity = "warning"
mostly = 0.98

[contracts.complaints.site_known]
severity = "error"
""",
        )
    )
    assert cfg.kpis.max_quarantined_share == 0.1
    assert (cfg.contracts.dir, cfg.contracts.engine) == ("my_contracts", "gx")
    over = cfg.contracts.overrides["complaints"]
    assert (over["customer_required"].severity, over["customer_required"].mostly) == ("warn", 0.98)
    assert (over["site_known"].severity, over["site_known"].mostly) == ("error", None)
    # the defaults: no folder, the polars engine, no overrides, 10 % set aside before a KPI
    # is struck out
    plain = load_config(write(tmp_path, MINIMAL))
    assert (plain.contracts.dir, plain.contracts.engine, dict(plain.contracts.overrides)) == (
        None,
        "polars",
        {},
    )
    assert plain.kpis.max_quarantined_share == 0.10


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        (
            "[contracts.complaint.customer_required]\nmostly = 0.9\n",
            "contracts.complaint",
            "did you mean 'complaints'",
        ),
        (
            "[contracts.complaints.customer_required]\nmostyl = 0.9\n",
            "contracts.complaints.customer_required.mostyl",
            "did you mean 'mostly'",
        ),
        (
            "[contracts.complaints.customer_required]\nseverity = 'fatal'\n",
            "contracts.complaints.customer_required.severity",
            "must be error or warn",
        ),
        (
            "[contracts.complaints.customer_required]\nmostly = 0\n",
            "contracts.complaints.customer_required.mostly",
            "from above 0 to 1",
        ),
        (
            "[contracts.complaints.customer_required]\nmostly = 1.5\n",
            "contracts.complaints.customer_required.mostly",
            "from above 0 to 1",
        ),
        (
            "[contracts.complaints.customer_required]\n",
            "contracts.complaints.customer_required.severity",
            "give 'severity' and/or 'mostly'",
        ),
        (
            "[contracts.complaints]\ncustomer_required = 'warn'\n",
            "contracts.complaints.customer_required",
            "must be a table",
        ),
        ("[contracts]\ndir = 3\n", "contracts.dir", "must be"),
        ("[contracts]\nengine = 'polar'\n", "contracts.engine", "did you mean 'polars'"),
        ("[contracts]\nengin = 'gx'\n", "contracts.engin", "did you mean 'engine'"),
        ("[kpis]\nmax_quarantined_share = 5\n", "kpis.max_quarantined_share", "e.g. 0.05 for 5 %"),
    ],
)
def test_contracts_table_errors_name_the_key(
    tmp_path: Path, extra: str, key: str, words: str
) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        load_config(write(tmp_path, MINIMAL + extra))
    assert f"key '{key}'" in str(info.value)
    assert str(tmp_path / "qmskpi.toml") in str(info.value)


# --------------------------------------------------------------------------- pushdown


def _pushdown_toml(source: str) -> dict[str, object]:
    head = '[organisation]\nname = "T"\nsites = ["N"]\n[databases.qms]\nurl = "sqlite:///x.db"\n'
    return tomllib.loads(head + source)


@pytest.mark.parametrize(
    ("source", "key", "message"),
    [
        (
            '[sources.inspections]\npath = "x.csv"\npushdown = true',
            "sources.inspections.pushdown",
            "SQL sources only",
        ),
        (
            '[sources.inspections]\ndatabase = "qms"\nquery = "SELECT 1"\npushdown = true\n'
            'columns = { inspection_id = "id" }',
            "sources.inspections.columns",
            "cannot be used with pushdown",
        ),
        (
            '[sources.shipments]\ndatabase = "qms"\nquery = "SELECT 1"\npushdown = true',
            "sources.shipments.pushdown",
            "pushdown works for: inspections, receipts, complaints, surveys, capa",
        ),
    ],
)
def test_pushdown_refused_where_it_cannot_work(source: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        from_dict(_pushdown_toml(source))
    assert err.value.key == key


def test_pushdown_read() -> None:
    cfg = from_dict(
        _pushdown_toml(
            '[sources.inspections]\ndatabase = "qms"\nquery = "SELECT 1"\npushdown = true'
        )
    )
    assert cfg.sources["inspections"].pushdown
    receipts = '[sources.receipts]\ndatabase = "qms"\nquery = "SELECT 1"\npushdown = true'
    assert from_dict(_pushdown_toml(receipts)).sources["receipts"].pushdown
    assert (
        not from_dict(_pushdown_toml('[sources.inspections]\ndatabase = "qms"\nquery = "SELECT 1"'))
        .sources["inspections"]
        .pushdown
    )


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        (
            "[sources.capa]\npath = 'c.csv'\nsheet = [1]\n",
            "sources.capa.sheet",
            "a string or an integer",
        ),
        ("[review]\nas_of = '2026-10-31'\n", "review.as_of", "a TOML date has no quotes"),
        ("[review]\nmax_rows = 0\n", "review.max_rows", "between 1 and 200, got 0"),
        ("[outputs]\nxlsx = 1\n", "outputs.xlsx", "true or false, got int 1"),
        ("sites", "organisation.sites[1]", "must be a string, got int 3"),
        (
            "[kpis]\nrepeat_window_days = true\n",
            "kpis.repeat_window_days",
            "an integer, got a boolean",
        ),
        (
            "[kpis.complaint_close_target_days_by_severity]\nmajr = 5\n",
            "kpis.complaint_close_target_days_by_severity.majr",
            "did you mean 'major'",
        ),
        (
            "[contracts.complaints.customer_required]\nseverity = 'wran'\n",
            "contracts.complaints.customer_required.severity",
            "did you mean 'warn'",
        ),
    ],
)
def test_schema_errors_name_the_key_the_type_and_the_value(
    tmp_path: Path, extra: str, key: str, words: str
) -> None:
    text = MINIMAL.replace('"South"', "3") if extra == "sites" else MINIMAL + extra
    with pytest.raises(ConfigError, match=re.escape(words)) as info:
        load_config(write(tmp_path, text))
    assert f"key '{key}'" in str(info.value)


def test_json_schema_accepts_the_sample_config_and_refuses_a_misspelt_key() -> None:
    # a second, independent validator (jsonschema) reads the schema as an editor would
    import jsonschema

    from qmskpi.config import config_json_schema

    schema = config_json_schema()
    sample = tomllib.loads((ROOT / "sample_data" / "qmskpi.toml").read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(json.dumps(sample, default=str)), schema)
    for bad in (
        {**sample, "reveiw": {}},
        {**sample, "sources": {"complaint": {"path": "c.csv"}}},
        {**sample, "kpis": {"max_quarantined_share": 1.5}},
        {**sample, "outputs": {"pdf": "maybe"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(json.loads(json.dumps(bad, default=str)), schema)
    assert schema["properties"]["outputs"]["$ref"].endswith("OutputsTable")


# --------------------------------------------------------------------------- which file


def test_config_path_is_the_argument_then_the_variable_then_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qmskpi.config import config_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QMSKPI_CONFIG", raising=False)
    with pytest.raises(ConfigError) as info:
        config_path("")
    assert str(info.value) == (
        "no config file: none given (--config, or a notebook's config_path), "
        f"$QMSKPI_CONFIG is not set and there is no qmskpi.toml in {tmp_path}"
    )
    write(tmp_path, MINIMAL)
    assert config_path(None) == Path("qmskpi.toml")
    monkeypatch.setenv("QMSKPI_CONFIG", "/elsewhere/site.toml")
    assert config_path("") == Path("/elsewhere/site.toml")
    assert config_path("given.toml") == Path("given.toml")


def test_config_repr_is_short_and_html_escapes_names(tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)>"
    text = MINIMAL.replace("Acme Components Ltd", evil).replace('"North"', '"Nord & Co"')
    cfg = load_config(write(tmp_path, text))
    where = str(cfg.path) if len(str(cfg.path)) <= 60 else "…" + str(cfg.path)[-59:]
    assert repr(cfg) == f"<Config {evil!r} from {where}: 2 sites, 1 source>"
    assert repr(cfg).endswith("/qmskpi.toml: 2 sites, 1 source>")
    page = cfg._repr_html_()
    assert evil not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Nord &amp; Co, South" in page
    assert "complaints" in page
