"""Version 6: alerts (opened once, closed with a resolution time), API-edited rules, rule state.

`alerts` is what Grafana reads: one row per episode of a condition; `closed_at` is NULL while it
holds, and at most one row per (site, rule, subject) is open. `alert_rules` holds the `alerts:`
block the API set for a site, over the site file's. `alert_state` keeps what a rule learnt across
restarts (the usual night-time base load).
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

STATEMENTS = [
    """CREATE TABLE alerts (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        site_id text NOT NULL REFERENCES sites (id),
        park_id text NOT NULL,
        rule text NOT NULL,
        subject text NOT NULL DEFAULT '',
        severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        message text NOT NULL,
        opened_at timestamptz NOT NULL,
        closed_at timestamptz,
        opening_values jsonb NOT NULL DEFAULT '{}',
        closing_values jsonb,
        acknowledged_by text,
        acknowledged_at timestamptz,
        CHECK (closed_at IS NULL OR closed_at >= opened_at))""",
    """CREATE UNIQUE INDEX alerts_one_open ON alerts (site_id, rule, subject)
        WHERE closed_at IS NULL""",
    "CREATE INDEX alerts_site_opened ON alerts (site_id, opened_at DESC)",
    "CREATE INDEX alerts_opened ON alerts (opened_at DESC)",
    """CREATE TABLE alert_rules (
        site_id text PRIMARY KEY REFERENCES sites (id),
        rules jsonb NOT NULL,
        updated_by text,
        updated_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE alert_state (
        site_id text NOT NULL,
        rule text NOT NULL,
        state jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (site_id, rule))""",
]


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    for statement in STATEMENTS:
        await conn.execute(statement)


MIGRATION = Migration(6, "alerts, alert rules and rule state", apply)
