"""Version 7: per-site load rollups, so a park's or city's load is one index range, not N meters.

`site_load_15m` and `site_load_1h` hold, per site, bucket and carrier, the sum of the kW of the
meters that make up the site's load (`site_load_members`, kept by `sites load`). A bucket's kW per
meter follows the read queries: power meters average their samples, energy counters turn their
interval energy into kW. They are refreshed with the meter rollups, for the touched buckets and
the one after (a counter's interval ends there): inside `energyhub_refresh_rollups` on plain
PostgreSQL; on TimescaleDB from the dirty buckets the writer now marks there too, after their
continuous aggregates (see `maintenance.refresh_dirty_rollups`), and the read query adds the
buckets not refreshed yet from the real-time aggregates.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.db import Backend
from energyhub.store.migrations.base import Migration, MigrationContext

TABLES = [
    """CREATE TABLE site_load_members (
        site_id text NOT NULL REFERENCES sites (id),
        meter_id integer NOT NULL REFERENCES meters (id),
        PRIMARY KEY (site_id, meter_id))""",
    "CREATE INDEX site_load_members_meter ON site_load_members (meter_id)",
    *(
        f"""CREATE TABLE site_load_{grain} (
        site_id text NOT NULL,
        bucket timestamptz NOT NULL,
        carrier text NOT NULL,
        power_kw double precision NOT NULL,
        PRIMARY KEY (site_id, bucket, carrier))"""
        for grain in ("15m", "1h")
    ),
]

REFRESH_SITE_LOAD = """
CREATE FUNCTION energyhub_refresh_site_load(
    lo timestamptz, hi timestamptz, only_sites text[] DEFAULT NULL
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := '2000-01-01 00:00:00+00';
    grain record;
    first_bucket timestamptz;
    past_bucket timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('energyhub_site_load'));
    FOR grain IN SELECT * FROM (VALUES ('15m', interval '15 minutes', 'readings_15m'),
                                       ('1h', interval '1 hour', 'readings_1h'))
                               AS g (name, step, source)
    LOOP
        first_bucket := date_bin(grain.step, lo, origin);
        -- the bucket after the last touched one: a counter's interval there ends on a new value
        past_bucket := date_bin(grain.step, hi - interval '1 microsecond', origin) + 2 * grain.step;
        EXECUTE format('DELETE FROM %I WHERE bucket >= $1 AND bucket < $2 '
                       'AND ($3 IS NULL OR site_id = ANY($3))', 'site_load_' || grain.name)
        USING first_bucket, past_bucket, only_sites;
        EXECUTE format($sql$
            WITH wanted AS (
                SELECT DISTINCT meter_id FROM site_load_members
                WHERE $3 IS NULL OR site_id = ANY($3)
            ), src AS (
                SELECT s.meter_id, s.bucket, s.n, s.sum_value, s.last_value,
                       lag(s.last_value) OVER (PARTITION BY s.meter_id ORDER BY s.bucket)
                           AS prev_value
                FROM %I AS s JOIN wanted ON wanted.meter_id = s.meter_id
                WHERE s.bucket >= $1 - interval '1 day' AND s.bucket < $2
            ), per_meter AS (
                SELECT src.meter_id, src.bucket, m.carrier,
                       CASE WHEN m.quantity <> 'energy_kwh' THEN src.sum_value / src.n
                            WHEN src.prev_value IS NULL THEN NULL
                            WHEN src.last_value >= src.prev_value
                                THEN src.last_value - src.prev_value
                            WHEN m.rollover_kwh IS NOT NULL
                                 AND src.prev_value > 0.5 * m.rollover_kwh
                                THEN src.last_value + m.rollover_kwh - src.prev_value
                            ELSE src.last_value
                       END / CASE WHEN m.quantity = 'energy_kwh' THEN $4 ELSE 1 END AS value
                FROM src JOIN meters AS m ON m.id = src.meter_id
                WHERE src.bucket >= $1
            )
            INSERT INTO %I (site_id, bucket, carrier, power_kw)
            SELECT members.site_id, per_meter.bucket, per_meter.carrier, sum(per_meter.value)
            FROM per_meter JOIN site_load_members AS members USING (meter_id)
            WHERE per_meter.value IS NOT NULL AND ($3 IS NULL OR members.site_id = ANY($3))
            GROUP BY 1, 2, 3$sql$, grain.source, 'site_load_' || grain.name)
        USING first_bucket, past_bucket, only_sites, extract(epoch FROM grain.step) / 3600;
    END LOOP;
END $$"""

REFRESH_ROLLUPS = """
CREATE OR REPLACE FUNCTION energyhub_refresh_rollups(lo timestamptz, hi timestamptz) RETURNS void
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
    PERFORM energyhub_refresh_site_load(lo, hi);
END $$"""

DIRTY_RUNS = """
    FOR run IN
        WITH taken AS (DELETE FROM rollup_dirty RETURNING bucket)
        SELECT min(bucket) AS lo, max(bucket) + interval '15 minutes' AS hi, count(*) AS n
        FROM (SELECT bucket, bucket - row_number() OVER (ORDER BY bucket)
                                      * interval '15 minutes' AS run_id FROM taken) AS numbered
        GROUP BY run_id
    LOOP"""


REFRESH_DIRTY = f"""
CREATE OR REPLACE FUNCTION energyhub_refresh_dirty_rollups() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    run record;
    done integer := 0;
BEGIN
{DIRTY_RUNS}
        PERFORM energyhub_refresh_rollups(run.lo, run.hi);
        done := done + run.n;
    END LOOP;
    RETURN done;
END $$"""
"""Each run of consecutive dirty buckets at once: a backfilled day is one refresh, not 96."""


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    statements = [*TABLES, REFRESH_SITE_LOAD]
    if context.backend is Backend.POSTGRES:
        statements += [REFRESH_ROLLUPS, REFRESH_DIRTY]
    else:  # the writer marks dirty buckets on both paths from now on
        statements.append("CREATE TABLE rollup_dirty (bucket timestamptz PRIMARY KEY)")
    for statement in statements:
        await conn.execute(statement)
    # The members are filled by version 17 (its own frozen copy of the members rule, which needs
    # that version's column); version 11's rebuild leaves the load rollups empty until then, and
    # version 17 rebuilds them over every member's data.


MIGRATION = Migration(7, "per-site load rollups", apply)
