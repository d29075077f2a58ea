"""Airflow DAG: render the qmskpi management-review packs (ISO 9001 clause 9.3) monthly.

Copy into the Airflow ``dags/`` folder and set QMSKPI_HOME for the workers
(the folder with ``qmskpi.toml`` and the venv). ``qmskpi run`` exits 0 when every
pack was published or skipped, 1 when one failed and 2 on a configuration or
usage error; BashOperator fails the task on any non-zero exit. Airflow's
``ds`` is the logical date: the run covers the month before it, so a backfill
of an old interval renders the right month and nothing else.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3 (standard provider)
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

QMSKPI_HOME = os.environ.get("QMSKPI_HOME", "/srv/qmskpi")

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
    render_packs = BashOperator(
        task_id="qmskpi_run",
        bash_command=(
            "{{ params.home }}/.venv/bin/qmskpi run"
            " --config {{ params.home }}/qmskpi.toml"
            " --as-of {{ data_interval_end | ds }}"
            " --jobs 2"
        ),
        params={"home": QMSKPI_HOME},
        cwd=QMSKPI_HOME,
        env={"TZ": "UTC", "GX_ANALYTICS_ENABLED": "False"},
        append_env=True,
        execution_timeout=timedelta(hours=2),
    )
