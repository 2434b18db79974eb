"""Version 4: setpoints sent to devices, and the forecast each scheduler plan was made from.

`setpoints` is the scheduler's record of what it sent: a row is written before its message is
published (status `sending`), so a step is never sent twice, even across restarts: at most one row
per (plan, asset, step) and one per (site, asset, step) whatever the plan. `acked` means the broker
acknowledged the QoS 1 publish; `failed` that it did not; `unconfirmed` that the process stopped
in between. `plan_inputs` holds the inputs table (forecasts) a plan was solved with, and
`plan_forecasts` how they were made, what was filled, where storage started, and which assets the
plan must not steer (their demand is not metered).
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

STATEMENTS = [
    """CREATE TABLE setpoints (
        plan_id bigint NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
        site_id text NOT NULL,
        asset_id text NOT NULL,
        ts timestamptz NOT NULL,
        p_kw double precision NOT NULL,
        topic text NOT NULL,
        status text NOT NULL DEFAULT 'sending'
            CHECK (status IN ('sending', 'acked', 'failed', 'unconfirmed')),
        claimed_at timestamptz NOT NULL DEFAULT now(),
        acked_at timestamptz,
        error text,
        PRIMARY KEY (plan_id, asset_id, ts))""",
    "CREATE UNIQUE INDEX setpoints_one_per_step ON setpoints (site_id, asset_id, ts)",
    "CREATE INDEX setpoints_ts ON setpoints (ts)",
    """CREATE TABLE plan_inputs (
        plan_id bigint NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
        ts timestamptz NOT NULL,
        name text NOT NULL,
        value double precision NOT NULL,
        PRIMARY KEY (plan_id, name, ts))""",
    """CREATE TABLE plan_forecasts (
        plan_id bigint PRIMARY KEY REFERENCES plans (id) ON DELETE CASCADE,
        issued_at timestamptz NOT NULL,
        methods jsonb NOT NULL DEFAULT '{}',
        notes jsonb NOT NULL DEFAULT '[]',
        initial_soc jsonb NOT NULL DEFAULT '{}',
        unplanned jsonb NOT NULL DEFAULT '[]')""",
]


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    for statement in STATEMENTS:
        await conn.execute(statement)


MIGRATION = Migration(4, "setpoints, plan inputs and forecasts", apply)
