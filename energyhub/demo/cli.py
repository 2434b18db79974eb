"""`energyhub demo`: the whole system on embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from energyhub.cli_support import console, handles_errors, run_async, settings_or_exit
from energyhub.demo.live import HISTORY_DAYS
from energyhub.demo.run import DemoOptions, run_demo
from energyhub.sites import load_site


@handles_errors
def demo_command(
    site_file: Annotated[
        Path | None, typer.Option("--site", help="Site file (default: the settings' site_file).")
    ] = None,
    serve: Annotated[
        bool,
        typer.Option("--serve/--no-serve", help="Serve the API after the summary until Ctrl-C."),
    ] = True,
    host: Annotated[str | None, typer.Option("--host", help="Default: ENERGYHUB_API_HOST.")] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=1, max=65535, help="Default: ENERGYHUB_API_PORT (if taken: any)."
        ),
    ] = None,
    live_hours: Annotated[
        float,
        typer.Option("--live-hours", min=1, max=48, help="Simulated hours the scheduler runs."),
    ] = 24.0,
    history_days: Annotated[
        float,
        typer.Option(
            "--history-days",
            min=2,
            max=28,
            help="Simulated days of meter history before them, which the forecasts learn from.",
        ),
    ] = HISTORY_DAYS,
) -> None:
    """The whole system on embedded defaults (private PostgreSQL and Mosquitto unless
    ENERGYHUB_DB_URL / ENERGYHUB_MQTT_URL are set): simulate, ingest, forecast, plan, schedule,
    summarize, then serve the API until Ctrl-C."""
    settings = settings_or_exit()
    path = site_file or settings.site_file
    site = load_site(path)
    options = DemoOptions(
        serve,
        host or settings.api_host,
        port or settings.api_port,
        history_days=history_days,
        live_hours=live_hours,
    )
    code = run_async(run_demo(settings, site, Path(path), console, options))
    if code:
        raise typer.Exit(code)
