"""The `energyhub` command: one typer app, one sub-app per concern; errors become exit codes.

The helpers the commands share are in energyhub.cli_support, which the command modules import,
so this module imports them like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from energyhub.alerts.cli import alerts_command
from energyhub.api.cli import api_command, keys_app
from energyhub.carbon.cli import carbon_app
from energyhub.cli_support import (
    configure_logging,
    console,
    fail,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.demo import DemoOptions, run_demo
from energyhub.forecast.cli import forecast_app
from energyhub.grafana.cli import grafana_app
from energyhub.ingest.supervisor import run_worker, run_workers
from energyhub.mqtt import parse_mqtt_url
from energyhub.optimize.cli import plan_command
from energyhub.plans.cli import plans_app
from energyhub.render import site_summary, site_tree, sync_summary
from energyhub.scheduler.cli import scheduler_command
from energyhub.sites import load_site, site_json_schema
from energyhub.store.db import connect, installed_backend
from energyhub.store.maintenance import MaintenanceReport, maintain
from energyhub.store.migrations import MigrationReport, migrate_with, require_schema
from energyhub.store.sync import SyncReport, sync_site
from simulators.cli import record_command, replay_command, simulate_command

app = typer.Typer(
    name="energyhub",
    help="Integrated energy management telemetry: ingest, optimize, account for carbon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
sites_app = typer.Typer(
    help="Site files: validate, print, export the schema, load.", no_args_is_help=True
)
db_app = typer.Typer(help="The database: migrate and maintain.", no_args_is_help=True)
app.add_typer(sites_app, name="sites")
app.add_typer(db_app, name="db")

SiteFileArg = Annotated[
    Path, typer.Argument(help="Site file (YAML).", exists=False, dir_okay=False, show_default=False)
]


@sites_app.command("check")
@handles_errors
def sites_check(site_file: SiteFileArg) -> None:
    """Validate a site file and print its tree."""
    site = load_site(site_file)
    console.print(site_tree(site))
    console.print(f"[green]{site_file}: valid[/] — {site_summary(site)}")


@sites_app.command("schema")
def sites_schema() -> None:
    """Print the JSON Schema of site files."""
    typer.echo(site_json_schema())


@sites_app.command("load")
@handles_errors
def sites_load(site_file: SiteFileArg) -> None:
    """Load a site file into the database (idempotent; meters are retired, never deleted)."""
    site = load_site(site_file)
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def load() -> SyncReport:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            await require_schema(conn)
            return await sync_site(conn, site)

    console.print(sync_summary(run_async(load())))


@db_app.command("migrate")
@handles_errors
def db_migrate() -> None:
    """Create or upgrade the schema (TimescaleDB when available, else plain PostgreSQL)."""
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def run() -> MigrationReport:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            return await migrate_with(conn, settings)

    report = run_async(run())
    for step in report.applied:
        console.print(f"applied {step}")
    console.print(
        f"schema at version {report.current_version} ({report.backend.value}), "
        f"{len(report.applied)} migration(s) applied"
    )


@db_app.command("maintain")
@handles_errors
def db_maintain() -> None:
    """Refresh rollups; on plain PostgreSQL also make partitions ahead and drop expired ones."""
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def run() -> MaintenanceReport:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            await require_schema(conn)
            return await maintain(
                conn,
                await installed_backend(conn),
                retention_days=settings.retention_days,
                partitions_ahead_days=settings.partitions_ahead_days,
            )

    report = run_async(run())
    console.print(
        f"rollup buckets refreshed: {report.rollup_buckets_refreshed}, partitions created: "
        f"{report.partitions_created}, dropped: {', '.join(report.partitions_dropped) or 'none'}"
    )


@handles_errors
def demo(
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
) -> None:
    """The whole system on embedded defaults (private PostgreSQL and Mosquitto unless
    ENERGYHUB_DB_URL / ENERGYHUB_MQTT_URL are set): simulate, ingest, forecast, plan, schedule,
    summarize, then serve the API until Ctrl-C."""
    settings = settings_or_exit()
    path = site_file or settings.site_file
    site = load_site(path)
    options = DemoOptions(
        serve, host or settings.api_host, port or settings.api_port, live_hours=live_hours
    )
    code = run_async(run_demo(settings, site, Path(path), console, options))
    if code:
        raise typer.Exit(code)


@handles_errors
def ingest(
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


app.command("demo")(demo)  # in the order `energyhub --help` lists them
app.command("plan")(plan_command)
app.command("simulate")(simulate_command)
app.command("record")(record_command)
app.command("replay")(replay_command)
app.command("ingest")(ingest)
app.command("api")(api_command)
app.add_typer(keys_app, name="keys")
app.add_typer(plans_app, name="plans")
app.add_typer(carbon_app, name="carbon")
app.add_typer(grafana_app, name="grafana")
app.command("scheduler")(scheduler_command)
app.command("alerts")(alerts_command)
app.add_typer(forecast_app, name="forecast")
