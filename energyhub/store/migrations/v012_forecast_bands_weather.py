"""Version 12: forecast bands stored with plans, and weather forecasts per park.

`plan_forecast_bands` holds the P10 and P90 of each forecast column a plan was solved with
(the P50 is the column in `plan_inputs`); `plan_forecasts.band_coverage` how many metered values
of earlier plans' columns fell inside their band, counted when the plan was made.
`weather_forecasts` holds forecast outdoor temperature, irradiance and cloud cover per park and
step, as issued (a newer issue of the same step does not overwrite an older one: the backtest
and the models read the newest issue made before their origin).
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

STATEMENTS = [
    """CREATE TABLE plan_forecast_bands (
        plan_id bigint NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
        ts timestamptz NOT NULL,
        name text NOT NULL,
        p10 double precision NOT NULL,
        p90 double precision NOT NULL,
        PRIMARY KEY (plan_id, name, ts),
        CHECK (p10 <= p90))""",
    "ALTER TABLE plan_forecasts ADD COLUMN band_coverage jsonb NOT NULL DEFAULT '{}'",
    """CREATE TABLE weather_forecasts (
        park_id text NOT NULL,
        ts timestamptz NOT NULL,
        issued_at timestamptz NOT NULL,
        outdoor_c double precision,
        ghi_w_m2 double precision CHECK (ghi_w_m2 >= 0),
        cloud_cover_pct double precision CHECK (cloud_cover_pct BETWEEN 0 AND 100),
        source text NOT NULL DEFAULT '',
        PRIMARY KEY (park_id, ts, issued_at),
        CHECK (num_nonnulls(outdoor_c, ghi_w_m2, cloud_cover_pct) > 0))""",
    "CREATE INDEX weather_forecasts_issued ON weather_forecasts (park_id, issued_at)",
]


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    for statement in STATEMENTS:
        await conn.execute(statement)


MIGRATION = Migration(12, "forecast bands with plans; weather forecasts per park", apply)
