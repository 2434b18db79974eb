"""Version 19: a reading below 1e-100 is no energy, in databases that were migrated before it was.

Readings of about 1e-310 (subnormal float8) make PostgreSQL raise "value out of range:
underflow" when their step energies are summed, and one such reading failed every rollup refresh
of its meter's buckets from then on. Ingest has refused them since 2026-12-06 and the energy
rule counts none below 1e-100, but a database that ran version 11 before then still has the rule
without that guard (version 11 installs it since, so a new database has it already). This
version installs `energyhub_step_kwh` again, frozen here as the rule stood when it was written.

Only the function changes: a refresh that failed on such a reading rolled back and left its
buckets marked dirty, so the next refresh after the upgrade computes them.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

STEP_KWH = """CREATE OR REPLACE FUNCTION energyhub_step_kwh(
        quantity text, rollover_kwh double precision, nominal_s double precision,
        prev_ts timestamptz, prev_value double precision, ts timestamptz, value double precision
    ) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN quantity = 'energy_kwh' THEN
                CASE WHEN prev_value IS NULL THEN NULL
                     WHEN abs(value - prev_value) < 1e-100 THEN 0
                     WHEN value >= prev_value THEN value - prev_value
                     WHEN rollover_kwh IS NOT NULL AND prev_value > 0.5 * rollover_kwh
                         THEN value + rollover_kwh - prev_value
                     ELSE value
                END
            -- below 1e-100 is no energy: float8 products of subnormals raise "underflow"
            WHEN quantity = 'power_kw' AND abs(value) < 1e-100 THEN 0
            WHEN quantity = 'power_kw' THEN
                value * energyhub_step_s(quantity, nominal_s, prev_ts, ts) / 3600.0
        END $$"""


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    await conn.execute(STEP_KWH)


MIGRATION = Migration(19, "no energy from subnormal readings on databases migrated before", apply)
