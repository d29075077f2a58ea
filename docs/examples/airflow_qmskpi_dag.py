"""Airflow DAG: render the qmskpi management-review packs (ISO 9001 clause 9.3) monthly.

One mapped task per scope (dynamic task mapping): ``qmskpi scopes --json``
lists the scopes (``all`` and each configured site), and ``qmskpi run --scope
<scope>`` renders, skips or catches up that scope alone, so Airflow shows,
retries and times each scope on its own. Copy into the Airflow ``dags/`` folder
and set QMSKPI_HOME for the workers (the folder with ``qmskpi.toml`` and the
venv; every Airflow worker needs the same folder, the same venv and the same
reports folder). ``qmskpi run`` exits 0 when the pack was published or
skipped, 1 when it failed and 2-5 on a usage, config or data problem (see
``qmskpi run --help``); BashOperator fails the task on any non-zero exit.
Airflow's ``ds`` is the logical date: the run covers the month before it, so a
backfill of an old interval renders the right month and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3 (task SDK, standard provider)
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import task
except ImportError:  # Airflow 2
    from airflow.decorators import task
    from airflow.operators.bash import BashOperator

QMSKPI_HOME = os.environ.get("QMSKPI_HOME", "/srv/qmskpi")
ENV = {"TZ": "UTC", "GX_ANALYTICS_ENABLED": "False"}


@task
def qmskpi_scopes(home: str) -> list[dict[str, str]]:
    """The scopes to render, as one environment per mapped task (the scope is never
    put into a shell command line)."""
    done = subprocess.run(
        [f"{home}/.venv/bin/qmskpi", "scopes", "--json", "--config", f"{home}/qmskpi.toml"],
        check=True,
        capture_output=True,
        text=True,
    )
    return [{**ENV, "QMSKPI_SCOPE": scope} for scope in json.loads(done.stdout)]


with DAG(
    dag_id="qmskpi_management_review",
    description="ISO 9001 9.3 management-review input packs",
    schedule="15 6 2 * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=30)},
    tags=["quality", "iso9001"],
) as dag:
    render_scope = BashOperator.partial(
        task_id="qmskpi_run",
        bash_command=(
            "{{ params.home }}/.venv/bin/qmskpi run"
            " --config {{ params.home }}/qmskpi.toml"
            " --as-of {{ data_interval_end | ds }}"
            ' --scope "$QMSKPI_SCOPE"'
        ),
        params={"home": QMSKPI_HOME},
        cwd=QMSKPI_HOME,
        append_env=True,
        max_active_tis_per_dag=2,  # scopes rendered at once: one core each
        execution_timeout=timedelta(hours=1),
    ).expand(env=qmskpi_scopes(QMSKPI_HOME))
