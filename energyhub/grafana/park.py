"""Park overview: load per building, park grid import against its connection limit, PV share."""

from __future__ import annotations

from energyhub.grafana.model import Dashboard, Panel, Query
from energyhub.grafana.sql import (
    IMPORT_PER_METER,
    LOAD_METER,
    PARK_SITES,
    in_role,
    kw_series,
    roles,
    time_group,
)
from energyhub.grafana.variables import PARK

BUILDING_LOAD_METERS = f"""SELECT m.id FROM meters AS m JOIN sites AS s ON s.id = m.site_id
    WHERE s.parent_id = '$park' AND s.kind = 'building' AND {LOAD_METER}"""  # noqa: S608 (dashboard SQL text composed from constants)

LOAD_PER_BUILDING = f"""
WITH {kw_series(BUILDING_LOAD_METERS)},
per_meter AS (
    SELECT {time_group("kw.bucket")}, kw.meter_id, avg(kw.kw) AS kw
    FROM kw GROUP BY 1, 2
)
SELECT p."time", coalesce(s.name, s.id) AS metric, sum(p.kw) AS kw
FROM per_meter AS p JOIN meters AS m ON m.id = p.meter_id JOIN sites AS s ON s.id = m.site_id
WHERE m.carrier IN ('electricity', 'pv')
GROUP BY 1, 2
ORDER BY 1, 2
"""  # noqa: S608 (dashboard SQL text composed from constants)

PARK_IMPORT = f"""
WITH {roles(PARK_SITES)},
{kw_series("SELECT meter_id AS id FROM roles WHERE w_el <> 0")},
{IMPORT_PER_METER}
SELECT p."time", sum(p.import_kw) AS import_kw,
       (SELECT (attributes->'grid'->>'import_max_kw')::float8 FROM sites WHERE id = '$park')
           AS limit_kw
FROM per_meter AS p
GROUP BY 1
ORDER BY 1
"""  # noqa: S608 (dashboard SQL text composed from constants)

PEAK_CTES = f"""
WITH {roles(PARK_SITES)},
{kw_series("SELECT meter_id AS id FROM roles WHERE w_el <> 0")},
park AS (
    SELECT kw.bucket, sum(kw.kw * r.w_el) AS import_kw
    FROM kw JOIN roles AS r ON r.meter_id = kw.meter_id AND {in_role("kw.bucket")}
    GROUP BY 1
),
grid AS (SELECT (attributes->'grid'->>'import_max_kw')::float8 AS limit_kw
         FROM sites WHERE id = '$park')
"""  # noqa: S608 (dashboard SQL text composed from constants)

PEAK = (
    PEAK_CTES
    + """SELECT max(park.import_kw) AS peak_kw, grid.limit_kw
FROM park, grid
GROUP BY grid.limit_kw
"""
)

PEAK_PCT = (
    PEAK_CTES
    + """SELECT 100 * max(park.import_kw) / grid.limit_kw AS peak_pct_of_limit
FROM park, grid
GROUP BY grid.limit_kw
"""
)

PV_SHARE = f"""
WITH {kw_series(BUILDING_LOAD_METERS)},
energy AS (
    SELECT m.site_id, m.carrier, sum(kw.kwh) AS kwh
    FROM kw JOIN meters AS m ON m.id = kw.meter_id
    WHERE m.carrier IN ('electricity', 'pv')
    GROUP BY 1, 2
)
SELECT coalesce(s.name, s.id) AS building,
       100 * sum(e.kwh) FILTER (WHERE e.carrier = 'pv')
           / nullif(sum(e.kwh), 0) AS pv_share_pct
FROM energy AS e JOIN sites AS s ON s.id = e.site_id
GROUP BY s.id, s.name
HAVING bool_or(e.carrier = 'pv')
ORDER BY 2 DESC
"""  # noqa: S608 (dashboard SQL text composed from constants)

ENERGY_BY_CARRIER = f"""
WITH {kw_series(BUILDING_LOAD_METERS)},
energy AS (
    SELECT m.site_id, m.carrier, sum(kw.kwh) AS kwh
    FROM kw JOIN meters AS m ON m.id = kw.meter_id
    GROUP BY 1, 2
)
SELECT coalesce(s.name, s.id) AS building, s.attributes->>'class' AS class,
       (s.attributes->>'floor_area_m2')::float8 AS floor_area_m2,
       sum(e.kwh) FILTER (WHERE e.carrier = 'electricity') AS grid_kwh,
       sum(e.kwh) FILTER (WHERE e.carrier = 'pv') AS pv_kwh,
       sum(e.kwh) FILTER (WHERE e.carrier = 'heat') AS heat_kwh,
       sum(e.kwh) FILTER (WHERE e.carrier = 'cooling') AS cooling_kwh,
       sum(e.kwh) FILTER (WHERE e.carrier = 'gas') AS gas_kwh
FROM energy AS e JOIN sites AS s ON s.id = e.site_id
GROUP BY s.id, s.name, s.attributes
ORDER BY 1
"""  # noqa: S608 (dashboard SQL text composed from constants)


def dashboard() -> Dashboard:
    return Dashboard(
        uid="energyhub-park-overview",
        title="energyhub · Park overview",
        description="A park at a glance: each building's electric load, what the park draws "
        "from the grid against its connection limit, and how much of the electricity is PV.",
        variables=(PARK,),
        panels=(
            Panel(
                "Electric load per building",
                "timeseries",
                (Query(LOAD_PER_BUILDING),),
                width=24,
                height=9,
                unit="kwatt",
                stacked=True,
                description="Grid electricity plus PV of each building: what it uses.",
            ),
            Panel(
                "Park grid import vs connection limit",
                "timeseries",
                (Query(PARK_IMPORT),),
                width=16,
                height=9,
                unit="kwatt",
                description="Buildings' grid meters plus the park network's consumers, minus "
                "its generators (CHP, fuel cell, wind, central PV), against `import_max_kw`.",
            ),
            Panel(
                "Peak import and limit",
                "stat",
                (Query(PEAK, "table"),),
                width=4,
                height=9,
                unit="kwatt",
                description="Highest 15-minute (hourly past an hour's interval, in a zone "
                "whole hours off UTC) average import in the range, and the connection's "
                "`import_max_kw`.",
            ),
            Panel(
                "Peak of limit",
                "stat",
                (Query(PEAK_PCT, "table"),),
                width=4,
                height=9,
                unit="percent",
                decimals=0,
                thresholds=((80, "orange"), (100, "red")),
            ),
            Panel(
                "PV share of electricity",
                "bargauge",
                (Query(PV_SHARE, "table"),),
                width=8,
                height=9,
                unit="percent",
                decimals=1,
                description="PV energy over grid + PV energy, per building with PV.",
            ),
            Panel(
                "Energy by building and carrier",
                "table",
                (Query(ENERGY_BY_CARRIER, "table"),),
                width=16,
                height=9,
                unit="kwatth",
                decimals=0,
            ),
        ),
    )
