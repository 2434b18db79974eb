"""Building load: power by carrier (stacked), the chosen meters, their latest values, the meters."""

from __future__ import annotations

from energyhub.grafana.model import Dashboard, Panel, Query
from energyhub.grafana.sql import LOAD_METER, kw_series, time_group
from energyhub.grafana.variables import BUILDING, METER, PARK

POWER_BY_CARRIER = f"""
WITH {kw_series(f"SELECT m.id FROM meters AS m WHERE m.site_id IN ($building) AND {LOAD_METER}")},
per_meter AS (
    SELECT {time_group("kw.bucket")}, kw.meter_id, avg(kw.kw) AS kw
    FROM kw GROUP BY 1, 2
)
SELECT p."time", m.carrier AS metric, sum(p.kw) AS kw
FROM per_meter AS p JOIN meters AS m ON m.id = p.meter_id
GROUP BY 1, 2
ORDER BY 1, 2
"""  # noqa: S608 (dashboard SQL text composed from constants)

SELECTED_METERS = f"""
WITH {kw_series("SELECT m.id FROM meters AS m WHERE m.id IN ($meter)")}
SELECT {time_group("kw.bucket")}, m.site_id || '/' || m.name AS metric,
       avg(kw.kw) AS value
FROM kw JOIN meters AS m ON m.id = kw.meter_id
GROUP BY 1, 2
ORDER BY 1, 2
"""  # noqa: S608 (dashboard SQL text composed from constants)

LATEST_VALUES = """
SELECT m.site_id || '/' || m.name AS meter, m.quantity, l.value, l.ts AS measured_at,
       extract(epoch FROM now() - l.ts) AS age_s
FROM meters AS m JOIN meter_latest AS l ON l.meter_id = m.id
WHERE m.id IN ($meter)
ORDER BY 1
"""

METERS = """
SELECT m.site_id AS building, m.name AS meter, m.carrier, m.quantity,
       parent.name AS submeter_of, m.asset_id AS asset, m.device->>'format' AS device,
       coalesce(counted.readings, 0) AS readings_in_range, l.ts AS latest_at
FROM meters AS m
LEFT JOIN meters AS parent ON parent.id = m.parent_meter_id
LEFT JOIN meter_latest AS l ON l.meter_id = m.id
LEFT JOIN (
    SELECT r.meter_id, sum(r.n) AS readings FROM readings_15m AS r
    WHERE $__timeFilter(r.bucket) GROUP BY 1
) AS counted ON counted.meter_id = m.id
WHERE m.active AND m.site_id IN ($building)
ORDER BY 1, 2
"""

ALERTS = """
SELECT a.opened_at, a.closed_at, a.site_id AS site, a.rule, a.subject, a.severity, a.message,
       a.acknowledged_by
FROM alerts AS a
WHERE a.site_id IN ($building, '$park')
  AND a.opened_at < $__timeTo() AND (a.closed_at IS NULL OR a.closed_at >= $__timeFrom())
ORDER BY a.closed_at IS NULL DESC, a.opened_at DESC
LIMIT 500
"""


def dashboard() -> Dashboard:
    return Dashboard(
        uid="energyhub-building-load",
        title="energyhub · Building load",
        description="Power by carrier of the chosen buildings (grid electricity, PV, heat, "
        "cooling, gas: top-level meters, counters as kW), the chosen meters and their latest "
        "readings.",
        variables=(PARK, BUILDING, METER),
        panels=(
            Panel(
                "Power by carrier",
                "timeseries",
                (Query(POWER_BY_CARRIER),),
                width=24,
                height=9,
                unit="kwatt",
                stacked=True,
                description="Sum over the chosen buildings' top-level meters (not sub-meters, "
                "not asset meters) plus PV; electricity is what the grid supplies, so "
                "electricity + PV is what the buildings use.",
            ),
            Panel(
                "Chosen meters",
                "timeseries",
                (Query(SELECTED_METERS),),
                width=14,
                height=9,
                description="Each meter of `$meter`: power meters and counters in kW, sensors "
                "in their own unit (°C, %, people).",
            ),
            Panel(
                "Latest values",
                "table",
                (Query(LATEST_VALUES, "table"),),
                width=10,
                height=9,
                description="The newest stored reading of each chosen meter (counters show "
                "their register in kWh).",
            ),
            Panel(
                "Meters",
                "table",
                (Query(METERS, "table"),),
                width=24,
                height=10,
                description="Every active meter of the chosen buildings and how many readings "
                "it stored in the time range.",
            ),
            Panel(
                "Alerts",
                "table",
                (Query(ALERTS, "table"),),
                width=24,
                height=8,
                description="Alerts of the chosen buildings and their park open at some time "
                "in the range, open ones first (`energyhub alerts`; acknowledge with "
                "POST /alerts/{id}/ack).",
            ),
        ),
    )
