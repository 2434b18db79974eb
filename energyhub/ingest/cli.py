"""`energyhub ingest`: one ingest worker, or a group of them as child processes."""

from __future__ import annotations

from typing import Annotated

import typer

from energyhub.cli_support import (
    configure_logging,
    fail,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.ingest.supervisor import run_worker, run_workers
from energyhub.mqtt import parse_mqtt_url


@handles_errors
def ingest_command(
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Workers in the group (ENERGYHUB_INGEST_SUBSCRIPTION says how they split the "
            "stream); without --worker-index, runs them all as child processes.",
        ),
    ] = 1,
    worker_index: Annotated[
        int | None,
        typer.Option(
            "--worker-index",
            min=0,
            help="Run only worker i of the --workers group (e.g. one compose replica).",
        ),
    ] = None,
) -> None:
    """Subscribe to the MQTT contract and store readings; Ctrl-C or SIGTERM stops cleanly."""
    settings = settings_or_exit()
    require_db_url(settings)
    if not settings.mqtt_url:
        raise fail("ENERGYHUB_MQTT_URL is not set: give the broker URL, e.g. mqtt://127.0.0.1:1883")
    parse_mqtt_url(settings.mqtt_url)
    if worker_index is not None and worker_index >= workers:
        raise fail(
            f"--worker-index {worker_index} is not a worker of a group of --workers {workers} "
            f"(0 … {workers - 1})"
        )
    configure_logging(settings)
    if worker_index is not None or workers == 1:
        run_async(run_worker(settings, worker_index or 0, workers))
    else:
        run_async(run_workers(workers))
