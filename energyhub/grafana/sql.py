"""SQL shared by the panels: which meters count, kW per meter and bucket, roles, emission factors.

Panels read the 15-minute rollups, or the hourly ones once Grafana's interval is an hour or more;
`$__interval_ms` picks the branch, the other is a constant-false filter the planner skips. Values
follow store/queries.py: power meters and sensors average their samples, cumulative counters become
interval energy between consecutive last values (a drop is a rollover when the meter declares
`rollover_kwh` and the previous value was past half of it, else a reset) divided by the bucket's
hours, so every series speaks kW. Roles and factors follow carbon/tree.py and carbon/factors.py.
"""

from __future__ import annotations

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

KW_SERIES = """metered AS (
    {meters}
),
src AS (
    SELECT r.bucket, r.meter_id, r.n, r.sum_value, r.last_value, 0.25 AS step_h
    FROM readings_15m AS r
    WHERE $__interval_ms < 3600000 AND r.meter_id IN (SELECT id FROM metered)
      AND r.bucket >= $__timeFrom()::timestamptz - interval '1 day' AND r.bucket <= $__timeTo()
    UNION ALL
    SELECT r.bucket, r.meter_id, r.n, r.sum_value, r.last_value, 1.0 AS step_h
    FROM readings_1h AS r
    WHERE $__interval_ms >= 3600000 AND r.meter_id IN (SELECT id FROM metered)
      AND r.bucket >= $__timeFrom()::timestamptz - interval '1 day' AND r.bucket <= $__timeTo()
),
steps AS (
    SELECT src.*, lag(src.last_value) OVER (PARTITION BY src.meter_id ORDER BY src.bucket) AS prev
    FROM src
),
kw AS (
    SELECT s.bucket, s.meter_id, s.step_h,
           CASE WHEN m.quantity <> 'energy_kwh' THEN s.sum_value / s.n
                WHEN s.prev IS NULL THEN NULL
                WHEN s.last_value >= s.prev THEN (s.last_value - s.prev) / s.step_h
                WHEN m.rollover_kwh IS NOT NULL AND s.prev > 0.5 * m.rollover_kwh
                    THEN (s.last_value + m.rollover_kwh - s.prev) / s.step_h
                ELSE s.last_value / s.step_h
           END AS kw
    FROM steps AS s JOIN meters AS m ON m.id = s.meter_id
    WHERE $__timeFilter(s.bucket)
)"""

ROLES = """asset_types AS (
    SELECT s.id AS site_id, a->>'id' AS asset_id, a->>'type' AS asset_type
    FROM sites AS s, jsonb_array_elements(coalesce(s.attributes->'assets', '[]')) AS a
    WHERE s.kind IN ('park', 'building')
),
roles AS (
    SELECT m.id AS meter_id, m.site_id, m.carrier,
           CASE WHEN m.carrier = 'pv' THEN
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
                THEN 1 ELSE 0 END AS w_heat
    FROM meters AS m
    JOIN sites AS s ON s.id = m.site_id
    LEFT JOIN asset_types AS t ON t.asset_id = m.asset_id AND t.site_id IN (m.site_id, s.parent_id)
    WHERE m.site_id IN ({sites}) AND m.quantity IN ('power_kw', 'energy_kwh')
      AND m.carrier IN ('electricity', 'heat', 'gas', 'pv')
)""".replace("{generators}", GENERATORS)
"""Per meter of the sites: weights into purchased electricity, gas burnt and heat (carbon/tree.py).

A building's top-level non-asset electricity meter is what it buys; on the park network a consumer
adds to the park's purchase and a generator (or central PV) is subtracted from it.
"""

ZONE = """zone AS (
    SELECT coalesce(min(attributes->>'timezone'), 'UTC') AS tz FROM sites WHERE kind = 'city'
)"""
"""CTE `zone`: the city's time zone, in which a period's year is counted."""

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


def kw_series(meters: str) -> str:
    """CTEs `metered` (the given SELECT of meter ids), `src`, `steps`, `kw` (bucket, meter, kW)."""
    return KW_SERIES.replace("{meters}", meters.strip())


def roles(sites: str) -> str:
    """CTEs `asset_types` and `roles` for the meters of the sites the given SELECT returns."""
    return ROLES.replace("{sites}", sites)


def factors() -> str:
    """CTEs `up`, `chain`, `factor_year`, `factors` for the `years` CTE (needs WITH RECURSIVE)."""
    return (
        FACTORS.replace("{grid}", _factor("grid_kg_per_kwh"))
        .replace("{gas}", _factor("gas_kg_per_kwh"))
        .replace("{heat}", _factor("heat_kg_per_kwh"))
    )
