"""`energyhub db`: create or upgrade the schema, and maintain it."""

from __future__ import annotations

import typer

from energyhub.cli_support import (
    console,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.store.db import connect, installed_backend
from energyhub.store.maintenance import MaintenanceReport, maintain
from energyhub.store.migrations import MigrationReport, migrate_with, require_schema

db_app = typer.Typer(help="The database: migrate and maintain.", no_args_is_help=True)


@db_app.command("migrate")
@handles_errors
def db_migrate() -> None:
    """Create or upgrade the schema (TimescaleDB when available, else plain PostgreSQL)."""
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def run() -> MigrationReport:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            return await migrate_with(conn, settings, progress=console.print)

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
