"""Version 1: sites, meters, readings (hypertable or daily partitions), rollups, rejected."""

from __future__ import annotations

from psycopg import AsyncConnection, sql

from energyhub.store.db import Backend
from energyhub.store.maintenance import ensure_partitions_ahead
from energyhub.store.migrations.base import Migration, MigrationContext

COMMON = [
    """CREATE TABLE schema_version (
        version integer PRIMARY KEY,
        description text NOT NULL,
        backend text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE sites (
        id text PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('city', 'park', 'building', 'enterprise')),
        parent_id text REFERENCES sites (id),
        name text,
        attributes jsonb NOT NULL DEFAULT '{}',
        active boolean NOT NULL DEFAULT true,
        updated_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX sites_parent ON sites (parent_id)",
    """CREATE TABLE meters (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        site_id text NOT NULL REFERENCES sites (id),
        name text NOT NULL,
        carrier text NOT NULL,
        quantity text NOT NULL,
        parent_meter_id integer REFERENCES meters (id),
        asset_id text,
        rollover_kwh double precision,
        device jsonb,
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        retired_at timestamptz)""",
    "CREATE UNIQUE INDEX meters_active_name ON meters (site_id, name) WHERE active",
    """CREATE TABLE enterprise_meters (
        enterprise_id text NOT NULL REFERENCES sites (id),
        meter_id integer NOT NULL REFERENCES meters (id),
        PRIMARY KEY (enterprise_id, meter_id))""",
    """CREATE TABLE meter_latest (
        meter_id integer PRIMARY KEY,
        ts timestamptz NOT NULL,
        value double precision NOT NULL)""",
    """CREATE TABLE rejected (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        received_at timestamptz NOT NULL DEFAULT now(),
        topic text NOT NULL,
        payload text NOT NULL,
        reason text NOT NULL)""",
    "CREATE INDEX rejected_received_at ON rejected (received_at)",
]

READINGS_COLUMNS = """
    ts timestamptz NOT NULL,
    meter_id integer NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (meter_id, ts)"""

ROLLUP_COLUMNS = """
    bucket timestamptz NOT NULL,
    meter_id integer NOT NULL,
    n integer NOT NULL,
    sum_value double precision NOT NULL,
    min_value double precision NOT NULL,
    max_value double precision NOT NULL,
    first_ts timestamptz NOT NULL,
    first_value double precision NOT NULL,
    last_ts timestamptz NOT NULL,
    last_value double precision NOT NULL,
    PRIMARY KEY (meter_id, bucket)"""

BUCKET_ORIGIN = "2000-01-01 00:00:00+00"
"""date_bin origin: 15-min and hourly buckets align with UTC and with whole-hour zones alike."""

POSTGRES = [
    f"CREATE TABLE readings ({READINGS_COLUMNS}) PARTITION BY RANGE (ts)",
    "CREATE TABLE readings_default PARTITION OF readings DEFAULT",
    f"CREATE TABLE readings_15m ({ROLLUP_COLUMNS})",
    f"CREATE TABLE readings_1h ({ROLLUP_COLUMNS})",
    "CREATE INDEX readings_15m_bucket ON readings_15m (bucket)",
    "CREATE INDEX readings_1h_bucket ON readings_1h (bucket)",
    "CREATE TABLE rollup_dirty (bucket timestamptz PRIMARY KEY)",
    # A day's partition; rows that landed in the default partition for that day are moved in.
    """CREATE FUNCTION energyhub_ensure_partition(day date) RETURNS boolean
    LANGUAGE plpgsql AS $$
    DECLARE
        name text := 'readings_p' || to_char(day, 'YYYYMMDD');
        lo timestamptz := (day::timestamp AT TIME ZONE 'UTC');
        hi timestamptz := ((day + 1)::timestamp AT TIME ZONE 'UTC');
    BEGIN
        IF to_regclass(name) IS NOT NULL THEN
            RETURN false;
        END IF;
        -- Serializes partition makers (the mode conflicts with itself, not with inserts); unlike
        -- an advisory lock, a relation lock makes this session see the catalog as committed.
        LOCK TABLE readings IN SHARE UPDATE EXCLUSIVE MODE;
        IF to_regclass(name) IS NOT NULL THEN
            RETURN false;
        END IF;
        EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS)', name);
        EXECUTE format('WITH moved AS (DELETE FROM readings_default WHERE ts >= %L AND ts < %L '
                       'RETURNING ts, meter_id, value) INSERT INTO %I SELECT * FROM moved',
                       lo, hi, name);
        EXECUTE format('ALTER TABLE readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       name, lo, hi);
        RETURN true;
    END $$""",
    # Recompute the 15-min and hourly rollups of every bucket touching [lo, hi).
    """CREATE FUNCTION energyhub_refresh_rollups(lo timestamptz, hi timestamptz) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE
        origin CONSTANT timestamptz := '2000-01-01 00:00:00+00';
        lo15 timestamptz := date_bin('15 minutes', lo, origin);
        hi15 timestamptz := date_bin('15 minutes', hi - interval '1 microsecond', origin)
                            + interval '15 minutes';
        lo1h timestamptz := date_bin('1 hour', lo, origin);
        hi1h timestamptz := date_bin('1 hour', hi - interval '1 microsecond', origin)
                            + interval '1 hour';
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('energyhub_rollups'));
        DELETE FROM readings_15m WHERE bucket >= lo15 AND bucket < hi15;
        INSERT INTO readings_15m
        SELECT date_bin('15 minutes', ts, origin), meter_id, count(*), sum(value), min(value),
               max(value), min(ts), (array_agg(value ORDER BY ts))[1],
               max(ts), (array_agg(value ORDER BY ts DESC))[1]
        FROM readings WHERE ts >= lo15 AND ts < hi15
        GROUP BY 1, 2;
        DELETE FROM readings_1h WHERE bucket >= lo1h AND bucket < hi1h;
        INSERT INTO readings_1h
        SELECT date_bin('1 hour', bucket, origin), meter_id, sum(n), sum(sum_value),
               min(min_value), max(max_value),
               min(first_ts), (array_agg(first_value ORDER BY first_ts))[1],
               max(last_ts), (array_agg(last_value ORDER BY last_ts DESC))[1]
        FROM readings_15m WHERE bucket >= lo1h AND bucket < hi1h
        GROUP BY 1, 2;
    END $$""",
    # Refresh every bucket the writer marked dirty, then forget them; returns buckets refreshed.
    """CREATE FUNCTION energyhub_refresh_dirty_rollups() RETURNS integer
    LANGUAGE plpgsql AS $$
    DECLARE
        item record;
        done integer := 0;
    BEGIN
        FOR item IN DELETE FROM rollup_dirty RETURNING bucket LOOP
            PERFORM energyhub_refresh_rollups(item.bucket, item.bucket + interval '15 minutes');
            done := done + 1;
        END LOOP;
        RETURN done;
    END $$""",
]

CAGG_15M = """CREATE MATERIALIZED VIEW readings_15m
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('15 minutes', ts) AS bucket, meter_id, count(*)::integer AS n,
           sum(value) AS sum_value, min(value) AS min_value, max(value) AS max_value,
           min(ts) AS first_ts, first(value, ts) AS first_value,
           max(ts) AS last_ts, last(value, ts) AS last_value
    FROM readings GROUP BY 1, 2 WITH NO DATA"""

CAGG_1H = """CREATE MATERIALIZED VIEW readings_1h
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket('1 hour', bucket) AS bucket, meter_id, sum(n)::integer AS n,
           sum(sum_value) AS sum_value, min(min_value) AS min_value, max(max_value) AS max_value,
           min(first_ts) AS first_ts, first(first_value, first_ts) AS first_value,
           max(last_ts) AS last_ts, last(last_value, last_ts) AS last_value
    FROM readings_15m GROUP BY 1, 2 WITH NO DATA"""


def _timescaledb(context: MigrationContext) -> list[sql.SQL | sql.Composed]:
    days = sql.Literal
    return [
        sql.SQL("CREATE EXTENSION IF NOT EXISTS timescaledb"),
        sql.SQL(f"CREATE TABLE readings ({READINGS_COLUMNS})"),
        sql.SQL("SELECT create_hypertable('readings', by_range('ts', INTERVAL '1 day'))"),
        sql.SQL(
            "ALTER TABLE readings SET (timescaledb.compress, "
            "timescaledb.compress_segmentby = 'meter_id', timescaledb.compress_orderby = 'ts')"
        ),
        sql.SQL("SELECT add_compression_policy('readings', make_interval(days => {}))").format(
            days(context.compress_after_days)
        ),
        sql.SQL("SELECT add_retention_policy('readings', make_interval(days => {}))").format(
            days(context.retention_days)
        ),
        sql.SQL(CAGG_15M),
        sql.SQL(
            "SELECT add_continuous_aggregate_policy('readings_15m', "
            "start_offset => INTERVAL '3 days', end_offset => INTERVAL '15 minutes', "
            "schedule_interval => INTERVAL '5 minutes')"
        ),
        sql.SQL(CAGG_1H),
        sql.SQL(
            "SELECT add_continuous_aggregate_policy('readings_1h', "
            "start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour', "
            "schedule_interval => INTERVAL '15 minutes')"
        ),
    ]


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    statements: list[sql.SQL | sql.Composed] = [sql.SQL(s) for s in COMMON]
    if context.backend is Backend.TIMESCALEDB:
        statements += _timescaledb(context)
    else:
        statements += [sql.SQL(s) for s in POSTGRES]
    for statement in statements:
        await conn.execute(statement)
    if context.backend is Backend.POSTGRES:
        await ensure_partitions_ahead(conn, context.partitions_ahead_days)


MIGRATION = Migration(1, "sites, meters, readings, rollups, rejected", apply)
