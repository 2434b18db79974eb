"""Version 11: energy from consecutive readings, the same at every step and on both paths.

A bucket's energy used to be the difference of bucket-end values (a counter reset lost the rise
up to the last reading before it, by an amount that depended on the step) and a power meter's
bucket mean times the bucket's length (a partly covered bucket was stretched). Now each reading
carries the energy of the span from the reading before it (`energyhub_step_kwh`, the one rule,
see docs/meter-data.md) and the span it stands for (`energyhub_step_s`): a counter's increase
(a rollover past `rollover_kwh`, a reset from zero), a power reading × at most the meter's
nominal interval. Each rollup bucket keeps the sum over its readings but the first
(`energy_kwh`, `covered_s`); the first reading's share needs the bucket before and is added by
the read query, so every step sums the same per-reading terms.

TimescaleDB's continuous aggregates cannot see consecutive readings (no window functions), so
both paths now keep `readings_15m` and `readings_1h` as tables refreshed by one SQL function from
the buckets the writer marks dirty. The migration rebuilds every rollup day by day, with progress.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection

from energyhub.store.db import Backend
from energyhub.store.migrations.base import Migration, MigrationContext
from energyhub.store.migrations.v001_initial import ROLLUP_COLUMNS

STEP_RULE = [
    # The span a reading stands for: a counter's whole step from the reading before it (it
    # measured all of it); a power reading's step, at most its nominal interval.
    """CREATE OR REPLACE FUNCTION energyhub_step_s(
        quantity text, nominal_s double precision, prev_ts timestamptz, ts timestamptz
    ) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN quantity = 'energy_kwh' THEN
                coalesce(extract(epoch FROM ts - prev_ts)::double precision, 0)
            WHEN quantity = 'power_kw' THEN
                least(nominal_s, coalesce(extract(epoch FROM ts - prev_ts)::double precision,
                                          nominal_s))
        END $$""",
    # The energy of that span: a counter's rise (a drop past half of rollover_kwh is a rollover,
    # any other drop a reset from zero), a power reading × its span; unknown without a reading
    # before a counter's; none for sensors.
    """CREATE OR REPLACE FUNCTION energyhub_step_kwh(
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
        END $$""",
]
"""The per-reading energy rule as this version installs it, frozen here (copied from
`energyhub.store.energy`, with the underflow guard it has had since before any release): a later
change to the live rule must come with a new migration, never change what this one does."""

BUCKET_TERMS = """
    SELECT t.*,
           CASE WHEN t.energy_kwh IS NULL AND t.link_kwh IS NULL THEN NULL
                ELSE coalesce(t.energy_kwh, 0) + coalesce(t.link_kwh, 0) END AS bucket_kwh,
           t.covered_s + coalesce(t.link_s, 0) AS bucket_s
    FROM (
        SELECT src.*, m.quantity, m.carrier,
               energyhub_step_kwh(m.quantity, m.rollover_kwh, m.nominal_s,
                                  src.prev_ts, src.prev_value, src.first_ts, src.first_value)
                   AS link_kwh,
               energyhub_step_s(m.quantity, m.nominal_s, src.prev_ts, src.first_ts) AS link_s
        FROM src JOIN meters AS m ON m.id = src.meter_id
    ) AS t"""
"""Each source bucket's energy and covered seconds, as this version's refresh sums them."""

DEFAULT_INTERVAL_S = 60.0
"""A power meter's nominal interval before it declares one or ten spacings were seen."""

LEARN_SPACINGS = 10
"""Spacings between a meter's first readings whose median becomes its nominal interval."""

METERS = [
    "ALTER TABLE meters ADD COLUMN interval_s double precision",
    # plausibility at ingest (energyhub/ingest/bounds.py), written by `sites load`
    "ALTER TABLE meters ADD COLUMN min_value double precision",
    "ALTER TABLE meters ADD COLUMN max_value double precision",
    "ALTER TABLE meters ADD COLUMN max_rise_kw double precision",
    "ALTER TABLE meters ADD COLUMN bounds_source text",
    "ALTER TABLE meters ADD COLUMN learned_interval_s double precision",
    f"""ALTER TABLE meters ADD COLUMN nominal_s double precision GENERATED ALWAYS AS
        (coalesce(interval_s, learned_interval_s, {DEFAULT_INTERVAL_S})) STORED""",
]

ROLLUP_ENERGY = [
    f"ALTER TABLE {table} ADD COLUMN energy_kwh double precision, "
    "ADD COLUMN covered_s double precision NOT NULL DEFAULT 0"
    for table in ("readings_15m", "readings_1h")
]

TIMESCALEDB_TABLES = [
    "DROP MATERIALIZED VIEW readings_1h",
    "DROP MATERIALIZED VIEW readings_15m",
    f"""CREATE TABLE readings_15m ({ROLLUP_COLUMNS},
        energy_kwh double precision, covered_s double precision NOT NULL DEFAULT 0)""",
    f"""CREATE TABLE readings_1h ({ROLLUP_COLUMNS},
        energy_kwh double precision, covered_s double precision NOT NULL DEFAULT 0)""",
    "CREATE INDEX readings_15m_bucket ON readings_15m (bucket)",
    "CREATE INDEX readings_1h_bucket ON readings_1h (bucket)",
]

LEARN_INTERVALS = """
    -- power meters without a declared interval learn the median of their first spacings; their
    -- rollups are then rebuilt from their first reading, so no step used the default
    WITH candidates AS (
        SELECT m.id FROM meters AS m
        WHERE m.quantity = 'power_kw' AND m.interval_s IS NULL AND m.learned_interval_s IS NULL
          AND EXISTS (SELECT 1 FROM readings AS r
                      WHERE r.meter_id = m.id AND r.ts >= lo15 AND r.ts < hi15)
    ), spacings AS (
        SELECT c.id, extract(epoch FROM f.ts - f.prev_ts)::double precision AS spacing_s
        FROM candidates AS c CROSS JOIN LATERAL (
            SELECT r.ts, lag(r.ts) OVER (ORDER BY r.ts) AS prev_ts FROM readings AS r
            WHERE r.meter_id = c.id ORDER BY r.ts LIMIT :spacings_plus_one
        ) AS f
        WHERE f.prev_ts IS NOT NULL
    ), learned AS (
        SELECT id, percentile_cont(0.5) WITHIN GROUP (ORDER BY spacing_s) AS median_s
        FROM spacings GROUP BY id HAVING count(*) >= :spacings
    )
    SELECT array_agg(id), array_agg(median_s) INTO learned_ids, learned_s
    FROM learned""".replace(":spacings_plus_one", str(LEARN_SPACINGS + 1)).replace(
    ":spacings", str(LEARN_SPACINGS)
)

REFRESH_ROLLUPS = """
CREATE OR REPLACE FUNCTION energyhub_refresh_rollups(lo timestamptz, hi timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := '2000-01-01 00:00:00+00';
    lo15 timestamptz := date_bin('15 minutes', lo, origin);
    hi15 timestamptz := date_bin('15 minutes', hi - interval '1 microsecond', origin)
                        + interval '15 minutes';
    lo1h timestamptz;
    hi1h timestamptz;
    learned_from timestamptz;
    learned_to timestamptz;
    learned_ids integer[];
    learned_s double precision[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('energyhub_rollups'));
    :learn_intervals;
    IF learned_ids IS NOT NULL THEN  -- only then: an UPDATE of meters, even of no row, NOTIFYs
        -- energyhub_access (v009), and every API process would drop its key and meter caches
        UPDATE meters AS m SET learned_interval_s = v.s
        FROM unnest(learned_ids, learned_s) AS v(id, s) WHERE m.id = v.id;
        SELECT min(r.ts), max(r.ts) INTO learned_from, learned_to
        FROM readings AS r WHERE r.meter_id = ANY(learned_ids);
    END IF;
    IF learned_from IS NOT NULL THEN  -- all of a meter that just learned its interval
        lo15 := least(lo15, date_bin('15 minutes', learned_from, origin));
        hi15 := greatest(hi15, date_bin('15 minutes', learned_to, origin) + interval '15 minutes');
    END IF;
    lo1h := date_bin('1 hour', lo15, origin);
    hi1h := date_bin('1 hour', hi15 - interval '1 microsecond', origin) + interval '1 hour';
    DELETE FROM readings_15m WHERE bucket >= lo15 AND bucket < hi15;
    INSERT INTO readings_15m
    SELECT r.bucket, r.meter_id, count(*), sum(r.value), min(r.value), max(r.value),
           min(r.ts), (array_agg(r.value ORDER BY r.ts))[1],
           max(r.ts), (array_agg(r.value ORDER BY r.ts DESC))[1],
           sum(energyhub_step_kwh(r.quantity, r.rollover_kwh, r.nominal_s,
                                  r.prev_ts, r.prev_value, r.ts, r.value))
               FILTER (WHERE r.prev_ts IS NOT NULL),
           coalesce(sum(energyhub_step_s(r.quantity, r.nominal_s, r.prev_ts, r.ts))
               FILTER (WHERE r.prev_ts IS NOT NULL), 0)
    FROM (
        SELECT d.*, m.quantity, m.rollover_kwh, m.nominal_s,
               lag(d.ts) OVER w AS prev_ts, lag(d.value) OVER w AS prev_value
        FROM (SELECT date_bin('15 minutes', ts, origin) AS bucket, meter_id, ts, value
              FROM readings WHERE ts >= lo15 AND ts < hi15) AS d
        LEFT JOIN meters AS m ON m.id = d.meter_id
        WINDOW w AS (PARTITION BY d.meter_id, d.bucket ORDER BY d.ts)
    ) AS r
    GROUP BY r.bucket, r.meter_id;
    DELETE FROM readings_1h WHERE bucket >= lo1h AND bucket < hi1h;
    INSERT INTO readings_1h
    SELECT q.hour, q.meter_id, sum(q.n), sum(q.sum_value), min(q.min_value), max(q.max_value),
           min(q.first_ts), (array_agg(q.first_value ORDER BY q.first_ts))[1],
           max(q.last_ts), (array_agg(q.last_value ORDER BY q.last_ts DESC))[1],
           sum(CASE WHEN q.energy_kwh IS NULL AND q.link_kwh IS NULL THEN NULL
                    ELSE coalesce(q.energy_kwh, 0) + coalesce(q.link_kwh, 0) END),
           sum(q.covered_s + coalesce(q.link_s, 0))
    FROM (
        SELECT s.*,
               CASE WHEN s.prev_ts IS NOT NULL THEN energyhub_step_kwh(
                   s.quantity, s.rollover_kwh, s.nominal_s,
                   s.prev_ts, s.prev_value, s.first_ts, s.first_value) END AS link_kwh,
               CASE WHEN s.prev_ts IS NOT NULL THEN energyhub_step_s(
                   s.quantity, s.nominal_s, s.prev_ts, s.first_ts) END AS link_s
        FROM (
            SELECT b.*, date_bin('1 hour', b.bucket, origin) AS hour,
                   m.quantity, m.rollover_kwh, m.nominal_s,
                   lag(b.last_ts) OVER w AS prev_ts, lag(b.last_value) OVER w AS prev_value
            FROM readings_15m AS b LEFT JOIN meters AS m ON m.id = b.meter_id
            WHERE b.bucket >= lo1h AND b.bucket < hi1h
            WINDOW w AS (PARTITION BY b.meter_id, date_bin('1 hour', b.bucket, origin)
                         ORDER BY b.bucket)
        ) AS s
    ) AS q
    GROUP BY q.hour, q.meter_id;
    PERFORM energyhub_refresh_site_load(lo15, hi15);
END $$""".replace(":learn_intervals", LEARN_INTERVALS)
"""Within a bucket each reading but the first adds its step; links between a bucket's 15-min
parts add the first reading of each part but the first — so an hour sums the same terms."""

SITE_LOAD_ENERGY = [
    f"ALTER TABLE site_load_{grain} ADD COLUMN energy_kwh double precision, "
    "ADD COLUMN covered_s double precision NOT NULL DEFAULT 0, "
    "ADD COLUMN meters integer NOT NULL DEFAULT 0"
    for grain in ("15m", "1h")
]

REFRESH_SITE_LOAD = """
CREATE OR REPLACE FUNCTION energyhub_refresh_site_load(
    lo timestamptz, hi timestamptz, only_sites text[] DEFAULT NULL
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := '2000-01-01 00:00:00+00';
    grain record;
    first_bucket timestamptz;
    past_bucket timestamptz;
    next_data timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('energyhub_site_load'));
    -- a meter's first bucket after [lo, hi) starts with a step from a reading in it: refresh up
    -- to there (within a day) so a late reading moves energy out of it, never counts it twice
    SELECT max(first_after) INTO next_data FROM (
        SELECT min(s.bucket) AS first_after FROM readings_15m AS s
        WHERE s.bucket >= hi AND s.bucket < hi + interval '1 day'
          AND s.meter_id IN (SELECT meter_id FROM site_load_members)
        GROUP BY s.meter_id
    ) AS nexts;
    FOR grain IN SELECT * FROM (VALUES ('15m', interval '15 minutes', 'readings_15m'),
                                       ('1h', interval '1 hour', 'readings_1h'))
                               AS g (name, step, source)
    LOOP
        first_bucket := date_bin(grain.step, lo, origin);
        -- the bucket after the last touched one: its first reading's step starts in them
        past_bucket := date_bin(grain.step, greatest(hi - interval '1 microsecond', next_data),
                                origin) + 2 * grain.step;
        EXECUTE format('DELETE FROM %I WHERE bucket >= $1 AND bucket < $2 '
                       'AND ($3 IS NULL OR site_id = ANY($3))', 'site_load_' || grain.name)
        USING first_bucket, past_bucket, only_sites;
        EXECUTE format($sql$
            WITH wanted AS (
                SELECT DISTINCT meter_id FROM site_load_members
                WHERE $3 IS NULL OR site_id = ANY($3)
            ), src AS (
                SELECT s.*, lag(s.last_ts) OVER w AS prev_ts,
                       lag(s.last_value) OVER w AS prev_value
                FROM %I AS s JOIN wanted ON wanted.meter_id = s.meter_id
                WHERE s.bucket >= $1 - interval '1 day' AND s.bucket < $2
                WINDOW w AS (PARTITION BY s.meter_id ORDER BY s.bucket)
            ), per_meter AS (:bucket_terms
                WHERE t.bucket >= $1
            )
            INSERT INTO %I (site_id, bucket, carrier, power_kw, energy_kwh, covered_s, meters)
            SELECT members.site_id, p.bucket, p.carrier,
                   sum(CASE WHEN p.quantity = 'energy_kwh' THEN p.bucket_kwh / $4
                            ELSE p.sum_value / p.n END),
                   sum(p.bucket_kwh), sum(p.bucket_s), count(*)
            FROM per_meter AS p JOIN site_load_members AS members USING (meter_id)
            WHERE (p.quantity <> 'energy_kwh' OR p.bucket_kwh IS NOT NULL)
              AND ($3 IS NULL OR members.site_id = ANY($3))
            GROUP BY 1, 2, 3$sql$, grain.source, 'site_load_' || grain.name)
        USING first_bucket, past_bucket, only_sites, extract(epoch FROM grain.step) / 3600;
    END LOOP;
END $$""".replace(":bucket_terms", BUCKET_TERMS)

REFRESH_DIRTY = """
CREATE OR REPLACE FUNCTION energyhub_refresh_dirty_rollups() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    run record;
    done integer := 0;
BEGIN
    FOR run IN
        WITH taken AS (DELETE FROM rollup_dirty RETURNING bucket)
        SELECT min(bucket) AS lo, max(bucket) + interval '15 minutes' AS hi, count(*) AS n
        FROM (SELECT bucket, bucket - row_number() OVER (ORDER BY bucket)
                                      * interval '15 minutes' AS run_id FROM taken) AS numbered
        GROUP BY run_id
    LOOP
        PERFORM energyhub_refresh_rollups(run.lo, run.hi);
        done := done + run.n;
    END LOOP;
    RETURN done;
END $$"""
"""Each run of consecutive dirty buckets at once (as in v007), now on both paths."""


async def rebuild_rollups(conn: AsyncConnection, context: MigrationContext) -> int:
    """Recompute every rollup from the stored readings, a day at a time; returns days rebuilt.

    Idempotent (each day is deleted and recomputed); `context.progress` hears every 30 days.
    """
    cur = await conn.execute("SELECT min(ts), max(ts) FROM readings")
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return 0
    first: datetime = row[0]
    last: datetime = row[1]
    day = first.replace(hour=0, minute=0, second=0, microsecond=0)
    total = (last - day) // timedelta(days=1) + 1
    for done in range(1, total + 1):
        await conn.execute(
            "SELECT energyhub_refresh_rollups(%s, %s)", (day, day + timedelta(days=1))
        )
        day += timedelta(days=1)
        if context.progress is not None and (done % 30 == 0 or done == total):
            context.progress(f"rollups rebuilt: {done}/{total} days (to {day.date()})")
    await conn.execute("DELETE FROM rollup_dirty")
    return total


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    statements = [*METERS, *STEP_RULE, *SITE_LOAD_ENERGY]
    if context.backend is Backend.TIMESCALEDB:
        statements += TIMESCALEDB_TABLES
    else:
        statements += ROLLUP_ENERGY
    statements += [REFRESH_SITE_LOAD, REFRESH_ROLLUPS, REFRESH_DIRTY]
    for statement in statements:
        await conn.execute(statement)
    await rebuild_rollups(conn, context)


MIGRATION = Migration(11, "energy from consecutive readings in every rollup", apply)
