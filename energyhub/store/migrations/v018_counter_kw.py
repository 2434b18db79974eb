"""Version 18: a counter's kW is its energy over the time its steps cover, not over the bucket.

A bucket's energy is the sum of the steps whose later reading is in it (version 11), so a counter
silent for an hour lands the hour's energy in one 15-minute bucket. Its kW used to be that energy
÷ the bucket's hours: four times the hour's mean power, a 15-minute peak no one drew, and a month's
billed demand peak with it. Now a counter's kW is `energyhub_counter_kw`: the energy ÷ the
seconds its steps cover (`bucket_s`), the mean power over what it measured — as a power meter's kW
is the mean of its samples. Energy and covered seconds do not change.

The per-site load refresh is redefined with that kW and the load rollups of the sites with a
counter among their members are rebuilt from the meter rollups, day by day. Both are frozen here
(the refresh's text, the rebuild's query), as the rule stood when this version was written.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

COUNTER_KW = """
CREATE OR REPLACE FUNCTION energyhub_counter_kw(
    energy_kwh double precision, covered_s double precision
) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT energy_kwh * 3600.0 / nullif(covered_s, 0) $$"""
"""A counter's mean kW over the time its steps cover (unknown without a covered second)."""

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
            ), per_meter AS (
                SELECT t.*,
                       CASE WHEN t.energy_kwh IS NULL AND t.link_kwh IS NULL THEN NULL
                            ELSE coalesce(t.energy_kwh, 0) + coalesce(t.link_kwh, 0)
                       END AS bucket_kwh,
                       t.covered_s + coalesce(t.link_s, 0) AS bucket_s
                FROM (
                    SELECT src.*, m.quantity, m.carrier,
                           energyhub_step_kwh(m.quantity, m.rollover_kwh, m.nominal_s,
                                              src.prev_ts, src.prev_value, src.first_ts,
                                              src.first_value) AS link_kwh,
                           energyhub_step_s(m.quantity, m.nominal_s, src.prev_ts, src.first_ts)
                               AS link_s
                    FROM src JOIN meters AS m ON m.id = src.meter_id
                ) AS t
                WHERE t.bucket >= $1
            )
            INSERT INTO %I (site_id, bucket, carrier, power_kw, energy_kwh, covered_s, meters)
            SELECT members.site_id, p.bucket, p.carrier,
                   sum(CASE WHEN p.quantity = 'energy_kwh'
                            THEN energyhub_counter_kw(p.bucket_kwh, p.bucket_s)
                            ELSE p.sum_value / p.n END),
                   sum(p.bucket_kwh), sum(p.bucket_s), count(*)
            FROM per_meter AS p JOIN site_load_members AS members USING (meter_id)
            WHERE (p.quantity <> 'energy_kwh' OR p.bucket_kwh IS NOT NULL)
              AND ($3 IS NULL OR members.site_id = ANY($3))
              AND (members.counts_from IS NULL OR p.bucket >= members.counts_from)
            GROUP BY 1, 2, 3$sql$, grain.source, 'site_load_' || grain.name)
        USING first_bucket, past_bucket, only_sites;
    END LOOP;
END $$"""
"""Version 17's refresh with a counter's kW over its covered time (a counter's bucket with
energy always covers some time: each step spans from one reading to a later one)."""

COUNTER_SITES = """
SELECT array_agg(DISTINCT members.site_id ORDER BY members.site_id),
       min(s.bucket), max(s.bucket) + interval '15 minutes'
FROM site_load_members AS members
JOIN meters AS m ON m.id = members.meter_id AND m.quantity = 'energy_kwh'
JOIN readings_15m AS s ON s.meter_id = members.meter_id"""
"""The sites with a counter among their load members, and the span of those counters' data."""


async def rebuild_counter_sites(conn: AsyncConnection, context: MigrationContext) -> int:
    """Recompute the load rollups of the sites with a counter member, a day at a time; returns
    the days rebuilt (`context.progress` hears every 30 days)."""
    row = await (await conn.execute(COUNTER_SITES)).fetchone()
    if row is None or row[1] is None:
        return 0
    sites: list[str] = row[0]
    first: datetime = row[1]
    last: datetime = row[2]
    day = first.replace(hour=0, minute=0, second=0, microsecond=0)
    total = -(-(last - day) // timedelta(days=1))
    for done in range(1, total + 1):
        await conn.execute(
            "SELECT energyhub_refresh_site_load(%s, %s, %s)",
            (day, day + timedelta(days=1), sites),
        )
        day += timedelta(days=1)
        if context.progress is not None and (done % 30 == 0 or done == total):
            context.progress(f"counter load rebuilt: {done}/{total} days (to {day.date()})")
    return total


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    await conn.execute(COUNTER_KW)
    await conn.execute(REFRESH_SITE_LOAD)
    await rebuild_counter_sites(conn, context)


MIGRATION = Migration(18, "a counter's kW over the time its steps cover", apply)
