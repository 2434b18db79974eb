"""`energyhub ingest` refuses a worker outside its group and an unknown subscription mode."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def ingest_environment(**env: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
    return environment | {
        "ENERGYHUB_DB_URL": "postgresql://postgres@127.0.0.1:5432/test",
        "ENERGYHUB_MQTT_URL": "mqtt://127.0.0.1:1883",
        "COLUMNS": "200",
        **env,
    }


def ingest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "energyhub", "ingest", *args],
        capture_output=True,
        text=True,
        env=ingest_environment(**env),
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


def test_a_metrics_port_taken_or_host_unknown_is_one_line_and_exit_2() -> None:
    """Both were socket tracebacks (gaierror, "Address already in use"), for the modbus poller's
    --metrics-port too, which shares the server."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = ingest(ENERGYHUB_INGEST_METRICS_PORT=port)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert (
            f"ENERGYHUB_INGEST_METRICS_PORT: cannot serve metrics on '127.0.0.1' port {port}: "
            "Address already in use" in " ".join(done.stderr.split())
        )
        modbus = subprocess.run(
            [sys.executable, "-m", "energyhub", "modbus", "--metrics-port", port],
            capture_output=True,
            text=True,
            env=ingest_environment(),
            timeout=60,
            check=False,
        )
        assert modbus.returncode == 2, modbus.stderr
        assert f"--metrics-port: cannot serve metrics on '127.0.0.1' port {port}" in modbus.stderr
    done = ingest(ENERGYHUB_INGEST_METRICS_PORT="9", ENERGYHUB_INGEST_METRICS_HOST="no such host")
    assert done.returncode == 2, done.stderr
    assert "cannot serve metrics on 'no such host' port 9" in done.stderr
