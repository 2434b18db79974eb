"""Versioned migrations: one module per schema version, applied in order under an advisory lock.

Both storage paths (TimescaleDB, plain PostgreSQL) live in the same version modules; the backend is
chosen once, when the schema is first created, and read back from the installed extension after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from psycopg import AsyncConnection

from energyhub.config import Settings
from energyhub.errors import MigrationError
from energyhub.store.db import Backend, installed_backend, timescaledb_available
from energyhub.store.migrations import (
    v001_initial,
    v002_plans,
    v003_api_keys,
    v004_setpoints,
    v005_grid_intensity,
    v006_alerts,
    v007_site_load,
    v008_private_api_keys,
    v009_access_notify,
    v010_site_load_notify,
    v011_interval_energy,
    v012_forecast_bands_weather,
    v013_carbon_assets,
    v014_field_devices,
    v015_setpoint_overrides,
    v016_setpoint_import_limit,
    v017_member_since,
    v018_counter_kw,
    v019_underflow_energy,
    v020_counter_gap,
)
from energyhub.store.migrations.base import Migration, MigrationContext

MIGRATIONS: tuple[Migration, ...] = (
    v001_initial.MIGRATION,
    v002_plans.MIGRATION,
    v003_api_keys.MIGRATION,
    v004_setpoints.MIGRATION,
    v005_grid_intensity.MIGRATION,
    v006_alerts.MIGRATION,
    v007_site_load.MIGRATION,
    v008_private_api_keys.MIGRATION,
    v009_access_notify.MIGRATION,
    v010_site_load_notify.MIGRATION,
    v011_interval_energy.MIGRATION,
    v012_forecast_bands_weather.MIGRATION,
    v013_carbon_assets.MIGRATION,
    v014_field_devices.MIGRATION,
    v015_setpoint_overrides.MIGRATION,
    v016_setpoint_import_limit.MIGRATION,
    v017_member_since.MIGRATION,
    v018_counter_kw.MIGRATION,
    v019_underflow_energy.MIGRATION,
    v020_counter_gap.MIGRATION,
)
LATEST_VERSION = MIGRATIONS[-1].version

MIGRATION_LOCK_KEY = 7_326_140_001
"""pg_advisory_lock key serializing migrations across processes (any fixed bigint)."""


@dataclass(frozen=True)
class MigrationReport:
    backend: Backend
    previous_version: int
    current_version: int
    applied: list[str] = field(default_factory=list)


async def current_version(conn: AsyncConnection) -> int:
    """The schema version of this database, 0 if energyhub never migrated it."""
    cur = await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_version")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _choose_backend(conn: AsyncConnection, timescaledb: str) -> Backend:
    if timescaledb == "off":
        return Backend.POSTGRES
    if await timescaledb_available(conn):
        return Backend.TIMESCALEDB
    if timescaledb == "require":
        raise MigrationError(
            "ENERGYHUB_TIMESCALEDB=require but the timescaledb extension is not available on "
            "this server (pg_available_extensions)"
        )
    return Backend.POSTGRES


async def migrate(
    conn: AsyncConnection,
    *,
    timescaledb: str = "auto",
    retention_days: int = 730,
    compress_after_days: int = 7,
    partitions_ahead_days: int = 7,
    progress: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Bring the schema to LATEST_VERSION; safe to run twice and from two processes at once.

    `conn` must be in autocommit mode; each version is applied in its own transaction.
    """
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        previous = await current_version(conn)
        if previous > LATEST_VERSION:
            raise MigrationError(
                f"the database schema is at version {previous}, newer than this energyhub "
                f"({LATEST_VERSION}): upgrade energyhub"
            )
        if previous == 0:
            backend = await _choose_backend(conn, timescaledb)
        else:
            backend = await installed_backend(conn)
            if timescaledb == "require" and backend is Backend.POSTGRES:
                raise MigrationError(
                    "ENERGYHUB_TIMESCALEDB=require but this database's schema was installed on "
                    "plain PostgreSQL (schema_version.backend = postgres), and energyhub does not "
                    "convert a schema: migrate a new database with the extension available, or "
                    "set ENERGYHUB_TIMESCALEDB=auto to go on with this one"
                )
        context = MigrationContext(
            backend=backend,
            retention_days=retention_days,
            compress_after_days=compress_after_days,
            partitions_ahead_days=partitions_ahead_days,
            progress=progress,
        )
        applied = []
        for migration in MIGRATIONS:
            if migration.version <= previous:
                continue
            async with conn.transaction():
                await migration.apply(conn, context)
                await conn.execute(
                    "INSERT INTO schema_version (version, description, backend) "
                    "VALUES (%s, %s, %s)",
                    (migration.version, migration.description, backend.value),
                )
            applied.append(f"{migration.version:03d} {migration.description}")
        return MigrationReport(backend, previous, max(previous, LATEST_VERSION), applied)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


async def require_schema(conn: AsyncConnection) -> None:
    """Refuse to work on a database whose schema is missing or behind this energyhub."""
    version = await current_version(conn)
    if version < LATEST_VERSION:
        raise MigrationError(
            f"the database schema is at version {version}, this energyhub needs "
            f"{LATEST_VERSION}: run `energyhub db migrate`"
        )


async def migrate_with(
    conn: AsyncConnection, settings: Settings, progress: Callable[[str], None] | None = None
) -> MigrationReport:
    """`migrate` with the storage settings of `settings`."""
    return await migrate(
        conn,
        timescaledb=settings.timescaledb,
        retention_days=settings.retention_days,
        compress_after_days=settings.compress_after_days,
        partitions_ahead_days=settings.partitions_ahead_days,
        progress=progress,
    )
