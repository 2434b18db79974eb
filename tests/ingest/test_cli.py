"""`energyhub ingest` refuses a worker outside its group and an unknown subscription mode."""

from __future__ import annotations

import os
import subprocess
import sys


def ingest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
    environment |= {
        "ENERGYHUB_DB_URL": "postgresql://postgres@127.0.0.1:5432/test",
        "ENERGYHUB_MQTT_URL": "mqtt://127.0.0.1:1883",
        "COLUMNS": "200",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "energyhub", "ingest", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def test_a_worker_index_outside_the_group_is_one_line_and_exit_2() -> None:
    done = ingest("--workers", "2", "--worker-index", "2")
    assert done.returncode == 2
    assert "--worker-index 2 is not a worker of a group of --workers 2 (0 … 1)" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_subscription_mode_names_the_variable() -> None:
    done = ingest(ENERGYHUB_INGEST_SUBSCRIPTION="round-robin")
    assert done.returncode == 2
    assert "ENERGYHUB_INGEST_SUBSCRIPTION='round-robin'" in done.stderr
    assert "Traceback" not in done.stderr
