"""Version 2: plans and their per-step schedules (the plan lifecycle; both backends alike)."""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

STATEMENTS = [
    """CREATE TABLE plans (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        level text NOT NULL CHECK (level IN ('building', 'park', 'city')),
        site_id text NOT NULL REFERENCES sites (id),
        status text NOT NULL CHECK (status IN ('pending', 'draft', 'approved', 'active',
            'superseded', 'expired', 'rejected', 'failed')),
        horizon_start timestamptz NOT NULL,
        horizon_end timestamptz NOT NULL,
        step_s integer NOT NULL CHECK (step_s > 0),
        objective_cny double precision,
        cost_terms_cny jsonb NOT NULL DEFAULT '{}',
        co2_kg double precision,
        baseline jsonb NOT NULL DEFAULT '{}',
        solver jsonb NOT NULL DEFAULT '{}',
        inputs_ref text,
        inputs_hash text,
        warnings jsonb NOT NULL DEFAULT '[]',
        error text,
        created_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        approved_by text,
        approved_at timestamptz,
        activated_at timestamptz,
        rejected_by text,
        rejected_at timestamptz,
        rejected_reason text,
        superseded_by bigint REFERENCES plans (id),
        CHECK (horizon_end > horizon_start))""",
    "CREATE INDEX plans_site_created ON plans (site_id, created_at DESC)",
    "CREATE INDEX plans_status ON plans (status)",
    "CREATE UNIQUE INDEX plans_one_active ON plans (site_id) WHERE status = 'active'",
    """CREATE TABLE plan_steps (
        plan_id bigint NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
        ts timestamptz NOT NULL,
        name text NOT NULL,
        value double precision NOT NULL,
        PRIMARY KEY (plan_id, name, ts))""",
]


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    for statement in STATEMENTS:
        await conn.execute(statement)


MIGRATION = Migration(2, "plans and plan steps", apply)
