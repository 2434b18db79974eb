"""Carbon: emissions by carrier, building and enterprise, and intensity per m², from readings.

kg CO₂ = interval energy × the site's factor for the bucket's year on the park's local clock
(`ZONE`): purchased electricity × grid, gas burnt × gas (Scope 1), purchased heat × heat; the
roles and factor rules of carbon/ in SQL.
Electricity bought is import only, as in carbon/ledger.py: a bucket in which the park network and
the chosen buildings sum to a net export gets rows (on the meters that supplied it) that bring
its electricity and kg to 0 and record the export in `exported_kwh`. Buckets are 15 minutes at
any interval (a range nets as the sum of its parts, as the report does). The panels by site take
each building at its own meter (`site_ledger`: what its meters bought in each bucket, never
below 0), and the park network's bar is the rest, as the report's buildings and `park-own` line.
Hourly grid intensity series (`grid_series`) are not applied here: the flat or yearly factor is.
"""

from __future__ import annotations

from energyhub.grafana.model import Dashboard, Panel, Query
from energyhub.grafana.sql import (
    SELECTED_SITES,
    ZONE,
    factors,
    in_role,
    kw_series,
    roles,
    time_group,
)
from energyhub.grafana.variables import BUILDING, PARK

LEDGER = f"""
WITH RECURSIVE {ZONE},
{roles(SELECTED_SITES)},
tenants AS (
    SELECT em.enterprise_id, em.meter_id, m.site_id, m.carrier
    FROM enterprise_meters AS em
    JOIN meters AS m ON m.id = em.meter_id
    JOIN sites AS e ON e.id = em.enterprise_id
    WHERE e.parent_id IN ($building) AND m.quantity IN ('power_kw', 'energy_kwh')
),
{
    kw_series(
        '''SELECT meter_id AS id FROM roles
    WHERE w_el <> 0 OR w_gas <> 0 OR w_heat <> 0 OR w_cool <> 0
    UNION SELECT meter_id FROM tenants''',
        fine=True,
    )
},
kwh AS (
    SELECT kw.bucket, kw.meter_id, kw.kwh AS kwh,
           extract(year FROM kw.bucket AT TIME ZONE zone.tz)::integer AS year
    FROM kw, zone
),
years AS (SELECT DISTINCT year FROM kwh),
{factors()},
metered_ledger AS (
    SELECT k.bucket, r.site_id, k.kwh * r.w_el AS electricity_kwh,
           k.kwh * r.w_el * f.grid_f AS electricity_kg,
           CASE WHEN f.heat_purchased THEN k.kwh * r.w_heat * f.heat_f ELSE 0 END AS heat_kg,
           k.kwh * r.w_gas * f.gas_f AS gas_kg,
           CASE WHEN f.cooling_purchased THEN k.kwh * r.w_cool * f.cooling_f ELSE 0 END
               AS cooling_kg
    FROM kwh AS k
    JOIN roles AS r ON r.meter_id = k.meter_id AND {in_role("k.bucket")}
    JOIN factors AS f ON f.site_id = r.site_id AND f.year = k.year
),
net AS (
    SELECT bucket, sum(electricity_kwh) AS kwh, sum(electricity_kg) AS kg,
           sum(least(electricity_kwh, 0)) AS supplied_kwh
    FROM metered_ledger GROUP BY bucket
),
ledger AS (
    SELECT bucket, site_id, electricity_kwh, electricity_kg, heat_kg, gas_kg, cooling_kg,
           0::float8 AS exported_kwh
    FROM metered_ledger
    UNION ALL
    SELECT l.bucket, l.site_id, -n.kwh * l.electricity_kwh / n.supplied_kwh,
           -n.kg * l.electricity_kwh / n.supplied_kwh, 0, 0, 0,
           -n.kwh * l.electricity_kwh / n.supplied_kwh
    FROM metered_ledger AS l JOIN net AS n USING (bucket)
    WHERE n.kwh < 0 AND l.electricity_kwh < 0
),
building_net AS (
    SELECT l.bucket, l.site_id, sum(l.electricity_kwh) AS kwh, sum(l.electricity_kg) AS kg
    FROM metered_ledger AS l JOIN sites AS s ON s.id = l.site_id AND s.kind = 'building'
    GROUP BY l.bucket, l.site_id
),
building_moved AS (
    SELECT o.site_id, b.parent_id AS park_id, o.kg - coalesce(n.kg, 0) AS kg
    FROM (SELECT site_id, sum(CASE WHEN kwh > 0 THEN kg ELSE 0 END) AS kg
          FROM building_net GROUP BY site_id) AS o
    JOIN sites AS b ON b.id = o.site_id
    LEFT JOIN (SELECT site_id, sum(electricity_kg) AS kg FROM ledger GROUP BY site_id) AS n
        USING (site_id)
),
site_ledger AS (
    SELECT site_id, electricity_kg, heat_kg, gas_kg, cooling_kg FROM ledger
    UNION ALL
    SELECT site_id, kg, 0, 0, 0 FROM building_moved
    UNION ALL
    SELECT park_id, -kg, 0, 0, 0 FROM building_moved
),
tenant_ledger AS (
    SELECT k.bucket, t.enterprise_id, t.site_id AS building_id,
           CASE WHEN t.carrier = 'electricity' THEN k.kwh * f.grid_f ELSE 0 END AS electricity_kg,
           CASE WHEN t.carrier = 'heat' AND f.heat_purchased THEN k.kwh * f.heat_f ELSE 0 END
               AS heat_kg,
           CASE WHEN t.carrier = 'gas' THEN k.kwh * f.gas_f ELSE 0 END AS gas_kg,
           CASE WHEN t.carrier = 'cooling' AND f.cooling_purchased THEN k.kwh * f.cooling_f
                ELSE 0 END AS cooling_kg
    FROM kwh AS k
    JOIN tenants AS t ON t.meter_id = k.meter_id
    JOIN factors AS f ON f.site_id = t.site_id AND f.year = k.year
)
"""  # noqa: S608 (dashboard SQL text composed from constants)

BY_CARRIER = (
    LEDGER
    + f"""SELECT {time_group("bucket")}, sum(electricity_kg) AS electricity,
       sum(heat_kg) AS heat, sum(gas_kg) AS gas, sum(cooling_kg) AS cooling
FROM ledger
GROUP BY 1
ORDER BY 1
"""  # noqa: S608 (dashboard SQL text composed from constants)
)

BY_BUILDING = (
    LEDGER
    + """SELECT coalesce(s.name, s.id) || CASE WHEN s.kind = 'park' THEN ' (park network)' ELSE ''
       END AS site,
       sum(l.electricity_kg + l.heat_kg + l.gas_kg + l.cooling_kg) AS co2_kg
FROM site_ledger AS l JOIN sites AS s ON s.id = l.site_id
GROUP BY s.id, s.name, s.kind
ORDER BY 2 DESC
"""
)

BY_ENTERPRISE = (
    LEDGER  # noqa: S608 (dashboard SQL text composed from constants)
    + """, building_kg AS (
    SELECT l.site_id AS building_id, sum(l.electricity_kg) AS el, sum(l.heat_kg) AS heat,
           sum(l.gas_kg) AS gas, sum(l.cooling_kg) AS cool
    FROM site_ledger AS l JOIN sites AS s ON s.id = l.site_id AND s.kind = 'building'
    GROUP BY 1
),
metered_kg AS (
    SELECT enterprise_id, building_id, sum(greatest(el, 0)) AS el, sum(heat) AS heat,
           sum(gas) AS gas, sum(cool) AS cool
    FROM (SELECT bucket, enterprise_id, building_id, sum(electricity_kg) AS el,
                 sum(heat_kg) AS heat, sum(gas_kg) AS gas, sum(cooling_kg) AS cool
          FROM tenant_ledger GROUP BY 1, 2, 3) AS steps  -- a tenant's meters net in a step
    GROUP BY 1, 2
),
remainder AS (
    SELECT b.building_id, b.el - coalesce(sum(t.el), 0) AS el,
           b.heat - coalesce(sum(t.heat), 0) AS heat, b.gas - coalesce(sum(t.gas), 0) AS gas,
           b.cool - coalesce(sum(t.cool), 0) AS cool
    FROM building_kg AS b LEFT JOIN metered_kg AS t USING (building_id)
    GROUP BY b.building_id, b.el, b.heat, b.gas, b.cool
),
areas AS (
    SELECT e.id AS enterprise_id, e.parent_id AS building_id,
           (e.attributes->>'floor_area_m2')::float8 AS area
    FROM sites AS e WHERE e.kind = 'enterprise' AND e.parent_id IN ($building)
),
shares AS (
    SELECT a.enterprise_id, a.building_id,
           a.area / greatest((b.attributes->>'floor_area_m2')::float8,
                             sum(a.area) OVER (PARTITION BY a.building_id)) AS share
    FROM areas AS a JOIN sites AS b ON b.id = a.building_id
    WHERE a.area > 0
),
lines AS (
    SELECT enterprise_id, el, heat, gas, cool FROM metered_kg
    UNION ALL
    SELECT s.enterprise_id, r.el * s.share, r.heat * s.share, r.gas * s.share, r.cool * s.share
    FROM shares AS s JOIN remainder AS r USING (building_id)
)
SELECT coalesce(e.name, e.id) AS enterprise, e.parent_id AS building,
       sum(l.el) AS electricity_kg, sum(l.heat) AS heat_kg,
       sum(l.gas) AS gas_kg, sum(l.cool) AS cooling_kg,
       sum(l.el + l.heat + l.gas + l.cool) AS co2_kg,
       (e.attributes->>'floor_area_m2')::float8 AS floor_area_m2,
       sum(l.el + l.heat + l.gas + l.cool)
           / nullif((e.attributes->>'floor_area_m2')::float8, 0) AS kg_per_m2
FROM lines AS l JOIN sites AS e ON e.id = l.enterprise_id
GROUP BY e.id, e.name, e.parent_id, e.attributes
ORDER BY co2_kg DESC
"""
)
"""A tenant's emissions as the carbon report allocates them (carbon/allocation.py): what its
sub-meters measured, plus its floor-area share of each declaring building's unmetered remainder
(area ÷ the building's floor area, or ÷ the tenants' areas when they add up to more)."""

INTENSITY = (
    LEDGER
    + """SELECT coalesce(s.name, s.id) AS building,
       sum(l.electricity_kg + l.heat_kg + l.gas_kg + l.cooling_kg)
           / nullif((s.attributes->>'floor_area_m2')::float8, 0) AS kg_per_m2
FROM site_ledger AS l JOIN sites AS s ON s.id = l.site_id
WHERE s.kind = 'building'
GROUP BY s.id, s.name, s.attributes
ORDER BY 2 DESC
"""
)

TOTAL = (
    LEDGER
    + """SELECT sum(electricity_kg + heat_kg + gas_kg + cooling_kg) / 1000 AS co2_t,
       sum(gas_kg) / 1000 AS scope1_t,
       sum(electricity_kg + heat_kg + cooling_kg) / 1000 AS scope2_t
FROM ledger
"""
)


COVERAGE = (
    LEDGER  # noqa: S608 (dashboard SQL text composed from constants)
    + """SELECT least(100.0, 100.0 * sum(kw.covered_s) / nullif(
           (SELECT count(*) FROM metered)
           * extract(epoch FROM $__timeTo()::timestamptz - $__timeFrom()::timestamptz), 0)
       ) AS coverage_pct
FROM kw
"""
)
"""The share of the metered time the readings cover (docs/meter-data.md), beside the emissions
computed from them."""


def dashboard() -> Dashboard:
    from energyhub.grafana.carbon_market import scope2_panel  # it builds on LEDGER above

    return Dashboard(
        uid="energyhub-carbon",
        title="energyhub · Carbon",
        description="Emissions of the park network and the chosen buildings, by carrier, "
        "building and tenant, and per square metre; factors from the site file "
        "(city, park, building; yearly entries by the period's year).",
        variables=(PARK, BUILDING),
        time_from="now-7d",
        refresh="5m",
        panels=(
            Panel(
                "Emissions by carrier",
                "timeseries",
                (Query(BY_CARRIER),),
                width=16,
                height=9,
                unit="masskg",
                stacked=True,
                bars=True,
                description="kg CO₂ per interval: purchased electricity and heat (Scope 2), "
                "gas burnt (Scope 1).",
            ),
            Panel(
                "Emissions in range",
                "stat",
                (Query(TOTAL, "table"),),
                width=8,
                height=9,
                unit="masst",
                decimals=1,
            ),
            Panel(
                "Data coverage",
                "stat",
                (Query(COVERAGE, "table"),),
                width=24,
                height=4,
                unit="percent",
                decimals=1,
                description="Share of the meters' time in range that readings cover: the "
                "emissions above count that time only.",
            ),
            Panel(
                "Emissions by building",
                "bargauge",
                (Query(BY_BUILDING, "table"),),
                width=12,
                height=9,
                unit="masskg",
                decimals=0,
            ),
            Panel(
                "Carbon intensity per m²",
                "bargauge",
                (Query(INTENSITY, "table"),),
                width=12,
                height=9,
                unit="suffix: kg/m²",
                decimals=2,
                description="kg CO₂ over the range per m² of floor area.",
            ),
            Panel(
                "Emissions by enterprise",
                "table",
                (Query(BY_ENTERPRISE, "table"),),
                width=24,
                height=8,
                decimals=1,
                description="As the carbon report allocates: tenants' sub-meters by carrier "
                "at their building's factors, plus their floor-area share of the building's "
                "unmetered remainder; kg per m² of the tenant's floor area.",
            ),
            scope2_panel(),
        ),
    )
