"""Version 20: a counter's gap longer than a day lands in the bucket after it in the load rollups.

The per-site load refresh looked for each meter's reading before its range only a day back, and
for the meter's first bucket after it only a day ahead. Rollups refreshed a little at a time (a
live ingest) lost the energy of a counter's gap of more than a day when a refresh began after it
(CityLearn's meter: 184 kWh of September), where a refresh in one go, the meter series and the
carbon report counted it; and a late reading more than a day before the bucket after a gap left
that bucket's step stale, counting the backfilled time twice.

The refresh is redefined to take each meter's last bucket before its range and first bucket after
it however far they are: one primary-key probe of the meter rollup per meter, in place of a day
of rows scanned. The buckets after such gaps are then recomputed. Both are frozen here, as the
rule stood when this version was written.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

REFRESH_SITE_LOAD = """
CREATE OR REPLACE FUNCTION energyhub_refresh_site_load(
    lo timestamptz, hi timestamptz, only_sites text[] DEFAULT NULL
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    origin CONSTANT timestamptz := '2000-01-01 00:00:00+00';
    grain record;
    part record;
    wanted_meters integer[];
    nexts timestamptz[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('energyhub_site_load'));
    SELECT array_agg(DISTINCT meter_id) INTO wanted_meters FROM site_load_members
    WHERE only_sites IS NULL OR site_id = ANY(only_sites);
    -- each meter's first bucket after [lo, hi), however far: its first reading's step starts at
    -- a reading in the range, so a late reading there moves energy out of it
    SELECT array_agg(DISTINCT nxt.bucket) INTO nexts
    FROM unnest(wanted_meters) AS wanted (meter_id)
    CROSS JOIN LATERAL (
        SELECT s.bucket FROM readings_15m AS s
        WHERE s.meter_id = wanted.meter_id AND s.bucket >= hi ORDER BY s.bucket LIMIT 1
    ) AS nxt;
    FOR grain IN SELECT * FROM (VALUES ('15m', interval '15 minutes', 'readings_15m'),
                                       ('1h', interval '1 hour', 'readings_1h'))
                               AS g (name, step, source)
    LOOP
        -- the range's buckets and the one after its last (its first reading's step starts in
        -- them), then each bucket after it that holds a meter's first reading after the range
        FOR part IN
            WITH range_ AS (
                SELECT date_bin(grain.step, lo, origin) AS a,
                       date_bin(grain.step, hi - interval '1 microsecond', origin)
                           + 2 * grain.step AS b
            )
            SELECT a, b FROM range_
            UNION
            SELECT date_bin(grain.step, n, origin), date_bin(grain.step, n, origin) + grain.step
            FROM unnest(nexts) AS n, range_
            WHERE date_bin(grain.step, n, origin) >= range_.b
        LOOP
            EXECUTE format('DELETE FROM %I WHERE bucket >= $1 AND bucket < $2 '
                           'AND ($3 IS NULL OR site_id = ANY($3))', 'site_load_' || grain.name)
            USING part.a, part.b, only_sites;
            EXECUTE format($sql$
                WITH src AS (
                    SELECT s.*, lag(s.last_ts) OVER w AS prev_ts,
                           lag(s.last_value) OVER w AS prev_value
                    FROM (
                        SELECT s.* FROM %I AS s
                        WHERE s.meter_id = ANY($4) AND s.bucket >= $1 AND s.bucket < $2
                        UNION ALL
                        -- each meter's last bucket before the part, however far back
                        SELECT before.* FROM unnest($4) AS wanted (meter_id)
                        CROSS JOIN LATERAL (
                            SELECT s.* FROM %I AS s
                            WHERE s.meter_id = wanted.meter_id AND s.bucket < $1
                            ORDER BY s.bucket DESC LIMIT 1
                        ) AS before
                    ) AS s
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
                               energyhub_step_s(m.quantity, m.nominal_s, src.prev_ts,
                                                src.first_ts) AS link_s
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
                GROUP BY 1, 2, 3$sql$, grain.source, grain.source, 'site_load_' || grain.name)
            USING part.a, part.b, only_sites, wanted_meters;
        END LOOP;
    END LOOP;
END $$"""
"""Version 18's refresh with each meter's reading before a range and its first bucket after it
found however far they are (by the meter rollups' primary key, `(meter_id, bucket)`)."""

AFTER_LONG_GAPS = """
SELECT g.bucket, array_agg(DISTINCT members.site_id ORDER BY members.site_id)
FROM (
    SELECT s.meter_id, s.bucket, lag(s.bucket) OVER w AS before
    FROM readings_15m AS s
    WHERE s.meter_id IN (
        SELECT members.meter_id FROM site_load_members AS members
        JOIN meters AS m ON m.id = members.meter_id AND m.quantity = 'energy_kwh')
    WINDOW w AS (PARTITION BY s.meter_id ORDER BY s.bucket)
) AS g
JOIN site_load_members AS members USING (meter_id)
WHERE g.before < g.bucket - interval '23 hours'
GROUP BY g.bucket ORDER BY g.bucket"""
"""Each 15-min bucket that holds a load counter's first reading after a gap of about a day or
more (a refresh that began in it, or an hour's, looked back a day), with the sites it counts in."""


async def recompute_after_long_gaps(conn: AsyncConnection, context: MigrationContext) -> int:
    """Refresh the load rollups of the buckets after a load counter's long gap; returns how many
    (`context.progress` hears every 100)."""
    rows = await (await conn.execute(AFTER_LONG_GAPS)).fetchall()
    for done, (bucket, sites) in enumerate(rows, start=1):
        await conn.execute(
            "SELECT energyhub_refresh_site_load(%s, %s + interval '15 minutes', %s)",
            (bucket, bucket, sites),
        )
        if context.progress is not None and (done % 100 == 0 or done == len(rows)):
            context.progress(f"buckets after counter gaps recomputed: {done}/{len(rows)}")
    return len(rows)


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    await conn.execute(REFRESH_SITE_LOAD)
    await recompute_after_long_gaps(conn, context)


MIGRATION = Migration(20, "a counter's gap longer than a day in the load rollups", apply)
