"""SQL shared by the panels: which meters count, kW per meter and bucket, roles, emission factors.

Panels read the 15-minute rollups, or the hourly ones once Grafana's interval is an hour or more
and the park's zone is a whole number of hours off UTC; `$__interval_ms` and the zone pick the
branch, the other is a constant-false filter the planner skips. Groups are the park's local hours
and days (`time_group`), not Grafana's `$__timeGroup`, which counts them from the UTC epoch. Values
follow store/queries.py: power meters and sensors average their samples, counters' interval energy
(energyhub/store/energy.py: each reading's step from the one before, rollovers and resets
included) divided by the time its steps cover (`energyhub_counter_kw`), so every series speaks
kW; energy panels sum `kwh`.
Roles and factors follow carbon/tree.py and carbon/factors.py.
"""

from __future__ import annotations

from energyhub.store.energy import BUCKET_BEFORE, BUCKET_TERMS
from energyhub.store.queries import PARK_MAINS, RETIRED_CONNECTIONS

PARK_SITES = (
    "SELECT id FROM sites WHERE id = '$park' OR (parent_id = '$park' AND kind = 'building')"
)
"""The park variable's site and its buildings."""
SELECTED_SITES = "SELECT id FROM sites WHERE id = '$park' OR id IN ($building)"
"""The park (its own meters sit on the park network) and the buildings chosen in `$building`."""

LOAD_METER = """m.quantity IN ('power_kw', 'energy_kwh')
      AND (m.carrier = 'pv'
           OR (m.carrier IN ('electricity', 'heat', 'cooling', 'gas')
               AND m.parent_meter_id IS NULL AND m.asset_id IS NULL))"""
"""A site's load meters (store/queries.py): top-level non-asset energy meters, and PV."""

GENERATORS = "('chp', 'fuel_cell', 'wind', 'pv')"
"""Asset types whose electricity meter reads what they supply (carbon/tree.py)."""
HEAT_PRODUCERS = (
    """'[{"type": "heat_pump"}]', '[{"type": "gas_boiler"}]', '[{"type": "electric_boiler"}]', """
    """'[{"type": "chp"}]', '[{"type": "fuel_cell"}]'"""
)
"""Asset types that make heat on site, as jsonb containment probes of a site's asset list."""

LOCAL_ZONE = """coalesce((SELECT c.attributes->>'timezone' FROM sites AS p
                  JOIN sites AS c ON c.id = p.parent_id WHERE p.id = '$park'), 'UTC')"""
"""The `$park` variable's time zone (its city's, as the site file gives it), else UTC."""

LOCAL_MIDNIGHT = f"date_trunc('day', $__timeFrom()::timestamptz, {LOCAL_ZONE})"
"""Local midnight of the range's first day: the origin of the panels' local hours and days."""

WHOLE_HOUR_ZONE = f"extract(epoch FROM {LOCAL_MIDNIGHT}) % 3600 = 0"
"""The park's zone is a whole number of hours off UTC, so the hourly rollup's buckets (UTC hours)
are its local hours; in India (+05:30), Nepal (+05:45) or Adelaide (+09:30) they are not, and
an hour is read from the quarter hours it holds (store/queries.py `_grid_origin` alike)."""

HOURLY_ROLLUP = f"$__interval_ms >= 3600000 AND {WHOLE_HOUR_ZONE}"
"""When the panels read the hourly rollup: an interval of an hour or more in a whole-hour zone."""


def time_group(column: str) -> str:
    """`$__timeGroupAlias` on the park's local clock: `column`'s group of Grafana's interval as
    `"time"`, a local day (from local midnight, 23 or 25 hours across a daylight-saving change)
    at an interval of a day, else counted from the range's first local midnight. Grafana's macro
    counts from the UTC epoch: in India an hour's group ran from :30 to :30, in Shanghai a day's
    from 08:00 to 08:00."""
    return (
        f"CASE WHEN $__interval_ms = 86400000 THEN date_trunc('day', {column}, {LOCAL_ZONE}) "
        f"ELSE date_bin($__interval_ms * interval '1 millisecond', {column}, {LOCAL_MIDNIGHT}) "
        'END AS "time"'
    )


RANGE_START = "$__timeFrom()::timestamptz"
KW_SERIES = (
    """metered AS (
    {meters}
),
rollup AS (
    SELECT r.*
    FROM readings_15m AS r
    WHERE NOT ({hourly}) AND r.meter_id IN (SELECT id FROM metered)
      AND r.bucket >= $__timeFrom()::timestamptz AND r.bucket <= $__timeTo()
    UNION ALL
    SELECT before.*
    FROM (SELECT DISTINCT id FROM metered) AS wanted CROSS JOIN LATERAL ({before_15m}) AS before
    WHERE NOT ({hourly})
    UNION ALL
    SELECT r.*
    FROM readings_1h AS r
    WHERE ({hourly}) AND r.meter_id IN (SELECT id FROM metered)
      AND r.bucket >= $__timeFrom()::timestamptz AND r.bucket <= $__timeTo()
    UNION ALL
    SELECT before.*
    FROM (SELECT DISTINCT id FROM metered) AS wanted CROSS JOIN LATERAL ({before_1h}) AS before
    WHERE ({hourly})
),
src AS (
    SELECT rollup.*, lag(rollup.last_ts) OVER w AS prev_ts,
           lag(rollup.last_value) OVER w AS prev_value
    FROM rollup WINDOW w AS (PARTITION BY rollup.meter_id ORDER BY rollup.bucket)
),
kw AS (
    SELECT t.bucket, t.meter_id,
           CASE WHEN t.quantity <> 'energy_kwh' THEN t.sum_value / t.n
                ELSE energyhub_counter_kw(t.bucket_kwh, t.bucket_s) END AS kw,
           t.bucket_kwh AS kwh, t.bucket_s AS covered_s
    FROM ({terms}) AS t
    WHERE $__timeFilter(t.bucket)
)""".replace("{terms}", BUCKET_TERMS)
    .replace("{before_15m}", BUCKET_BEFORE.format(source="readings_15m", start=RANGE_START))
    .replace("{before_1h}", BUCKET_BEFORE.format(source="readings_1h", start=RANGE_START))
)
"""kW per meter and bucket (power meters: the mean of their samples), and the bucket's energy
and covered seconds by the store's one rule (energyhub/store/energy.py; the step of the range's
first bucket from each meter's last bucket before it, however far back): energy panels sum
`kwh`, never kW × hours, so they agree with the API and the carbon report."""

ROLES = (
    """asset_types AS (
    SELECT s.id AS site_id, a->>'id' AS asset_id, a->>'type' AS asset_type
    FROM sites AS s, jsonb_array_elements(coalesce(s.attributes->'assets', '[]')) AS a
    WHERE s.kind IN ('park', 'building')
),
mains (id, connection) AS ({mains}),
retired (id, until) AS ({retired}),
roles AS (
    SELECT m.id AS meter_id, m.site_id, m.carrier,
           CASE WHEN s.kind = 'park' AND m.parent_meter_id IS NULL
                     AND (m.site_id IN (SELECT id FROM mains) OR e.behind)
                     AND NOT (m.carrier = 'electricity' AND m.asset_id IS NULL) THEN 0
                WHEN m.carrier = 'pv' THEN
                    CASE WHEN s.kind = 'park' AND m.parent_meter_id IS NULL THEN -1 ELSE 0 END
                WHEN m.carrier <> 'electricity' THEN 0
                WHEN t.asset_type IN {generators} THEN
                    CASE WHEN s.kind = 'park' AND m.parent_meter_id IS NULL THEN -1 ELSE 0 END
                WHEN m.asset_id IS NOT NULL THEN
                    CASE WHEN s.kind = 'park' AND m.parent_meter_id IS NULL THEN 1 ELSE 0 END
                WHEN m.parent_meter_id IS NULL THEN 1
                ELSE 0
           END AS w_el,
           CASE WHEN m.carrier = 'gas' AND m.parent_meter_id IS NULL THEN 1 ELSE 0 END AS w_gas,
           CASE WHEN m.carrier = 'heat' AND m.parent_meter_id IS NULL AND m.asset_id IS NULL
                THEN 1 ELSE 0 END AS w_heat,
           CASE WHEN m.carrier = 'cooling' AND m.parent_meter_id IS NULL AND m.asset_id IS NULL
                THEN 1 ELSE 0 END AS w_cool,
           e.since, e.until
    FROM meters AS m
    JOIN sites AS s ON s.id = m.site_id
    LEFT JOIN asset_types AS t ON t.asset_id = m.asset_id AND t.site_id IN (m.site_id, s.parent_id)
    CROSS JOIN LATERAL (
        SELECT false AS behind, NULL::timestamptz AS since, NULL::timestamptz AS until
        WHERE m.site_id NOT IN (SELECT id FROM retired)
        UNION ALL
        SELECT true, NULL, r.until FROM retired AS r WHERE r.id = m.site_id
        UNION ALL
        SELECT false, r.until, NULL FROM retired AS r WHERE r.id = m.site_id
    ) AS e
    WHERE m.site_id IN ({sites}) AND m.quantity IN ('power_kw', 'energy_kwh')
      AND m.carrier IN ('electricity', 'heat', 'cooling', 'gas', 'pv')
    UNION ALL
    SELECT m.id, s.parent_id, m.carrier, -1, 0, 0, 0, NULL, r.until
    FROM meters AS m
    JOIN sites AS s ON s.id = m.site_id
    LEFT JOIN retired AS r ON r.id = s.parent_id
    WHERE m.site_id IN ({sites}) AND s.parent_id IN ({sites}) AND s.kind = 'building'
      AND (s.parent_id IN (SELECT id FROM mains WHERE connection) OR r.id IS NOT NULL)
      AND m.carrier = 'electricity' AND m.quantity IN ('power_kw', 'energy_kwh')
      AND m.parent_meter_id IS NULL AND m.asset_id IS NULL
)""".replace("{generators}", GENERATORS)
    .replace("{mains}", PARK_MAINS)
    .replace("{retired}", RETIRED_CONNECTIONS)
)
"""Per meter of the sites: weights into purchased electricity, gas burnt and heat (carbon/tree.py).

A building's top-level non-asset electricity meter is what it buys; on the park network a consumer
adds to the park's purchase and a generator (or central PV) is subtracted from it, unless the park
has a main meter of its own (store/queries.py `PARK_MAINS`), behind which they are. A park
measured at its connection buys what its main meters read: each building main selected with it is
taken off the park again (a second row, at the park), so the park's import is its connection's.
A park whose connection meters are all retired (store/queries.py `RETIRED_CONNECTIONS`) is read
as measured at its connection before their end and as a park without one after: its meters have a
row for each (`since`, `until`), and its buildings' mains a second row until then. Every join of
`roles` to a bucket takes the rows whose window holds it (`in_role`).
"""


def in_role(bucket: str) -> str:
    """The condition that a `roles` row `r` holds for `bucket` (its `since` and `until`)."""
    return f"(r.since IS NULL OR {bucket} >= r.since) AND (r.until IS NULL OR {bucket} < r.until)"


IMPORT_PER_METER = f"""per_meter AS (
    SELECT {time_group("kw.bucket")}, kw.meter_id,
           sum(kw.kw * r.w_el) / count(DISTINCT kw.bucket) AS import_kw
    FROM kw JOIN roles AS r ON r.meter_id = kw.meter_id AND {in_role("kw.bucket")}
    GROUP BY 1, 2
)"""  # noqa: S608 (dashboard SQL text composed from constants)
"""CTE `per_meter`: each meter's import (kW × its roles' weights) averaged over its buckets in
each of Grafana's intervals, each bucket weighted by the roles that hold for it."""


ZONE = f"""zone AS (SELECT {LOCAL_ZONE} AS tz)"""
"""CTE `zone`: the `$park`'s zone (`LOCAL_ZONE`, as `time_group` reads it), in which a bucket's
year picks its factors. A site file has one `timezone` for its city and parks, but the `sites`
table keeps the cities of files loaded before (inactive): the least zone name of every city
(`min`) counted India's New Year in Denver's zone once such a city was left behind."""

FACTORS = """up (site_id, node_id, depth) AS (
    SELECT id, id, 0 FROM sites WHERE kind IN ('park', 'building')
    UNION ALL
    SELECT up.site_id, s.parent_id, up.depth + 1
    FROM up JOIN sites AS s ON s.id = up.node_id WHERE s.parent_id IS NOT NULL
),
chain AS (
    SELECT up.site_id, up.depth, s.kind, s.attributes->'carbon' AS carbon,
           coalesce(s.attributes->'assets', '[]') AS assets
    FROM up JOIN sites AS s ON s.id = up.node_id
),
factor_year AS (
    SELECT c.site_id, y.year, max(listed.year) AS fyear
    FROM chain AS c
    CROSS JOIN years AS y
    CROSS JOIN LATERAL (
        SELECT max(k.key::integer) AS year
        FROM jsonb_object_keys(CASE WHEN jsonb_typeof(c.carbon->'factors_by_year') = 'object'
                                    THEN c.carbon->'factors_by_year' ELSE '{}' END) AS k (key)
        WHERE k.key::integer <= y.year
    ) AS listed
    GROUP BY 1, 2
),
factors AS (
    SELECT f.site_id, f.year,
           {grid} AS grid_f, {gas} AS gas_f, {heat} AS heat_f,
           coalesce({cooling}, 0) AS cooling_f,
           coalesce(
               (array_remove(array_agg((c.carbon->>'cooling_purchased')::boolean ORDER BY c.depth)
                             FILTER (WHERE c.kind IN ('park', 'building')), NULL))[1],
               false
           ) AS cooling_purchased,
           coalesce(
               (array_remove(array_agg((c.carbon->>'heat_purchased')::boolean ORDER BY c.depth)
                             FILTER (WHERE c.kind IN ('park', 'building')), NULL))[1],
               NOT coalesce(bool_or(c.kind IN ('park', 'building')
                                    AND c.assets @> ANY (ARRAY[{producers}]::jsonb[])), false)
           ) AS heat_purchased
    FROM factor_year AS f JOIN chain AS c ON c.site_id = f.site_id
    GROUP BY 1, 2
)""".replace("{producers}", HEAT_PRODUCERS)
"""Per park or building and calendar year in CTE `years`: the emission factors.

The factor year is the latest year at or before the period's that some site of the chain lists;
each factor is the most specific site's year entry, else its flat value (the city always has one);
heat is purchased as declared by the nearest site, else unless the building or park makes heat.
"""


def _factor(key: str) -> str:
    """The first non-null (year entry, else flat value) of one factor, most specific site first."""
    year_entry = f"(c.carbon->'factors_by_year'->(f.fyear::text)->>'{key}')::float8"
    flat = f"(c.carbon->>'{key}')::float8"
    return f"(array_remove(array_agg(coalesce({year_entry}, {flat}) ORDER BY c.depth), NULL))[1]"


def kw_series(meters: str, *, fine: bool = False) -> str:
    """CTEs `metered` (the given SELECT of meter ids), `rollup`, `src`, `kw` (bucket, meter, kW,
    kWh, covered seconds). Buckets of an hour where `HOURLY_ROLLUP` holds, else of 15 minutes;
    `fine`: 15 minutes at any interval (carbon nets import against export on them, whatever
    the range, as the report does)."""
    hourly = "false" if fine else HOURLY_ROLLUP
    return KW_SERIES.replace("{meters}", meters.strip()).replace("{hourly}", hourly)


def roles(sites: str) -> str:
    """CTEs `asset_types` and `roles` for the meters of the sites the given SELECT returns."""
    return ROLES.replace("{sites}", sites)


def factors() -> str:
    """CTEs `up`, `chain`, `factor_year`, `factors` for the `years` CTE (needs WITH RECURSIVE)."""
    return (
        FACTORS.replace("{grid}", _factor("grid_kg_per_kwh"))
        .replace("{gas}", _factor("gas_kg_per_kwh"))
        .replace("{heat}", _factor("heat_kg_per_kwh"))
        .replace("{cooling}", _factor("cooling_kg_per_kwh"))
    )
