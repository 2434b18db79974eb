"""Plan review: planned against metered import, dispatch by asset, SOC, cost and CO₂ vs baseline.

`nullif('$plan', '')::bigint` is the chosen plan's id, NULL (no rows) while the park has none.
"""

from __future__ import annotations

from energyhub.grafana.model import Dashboard, Panel, Query, Variable
from energyhub.grafana.sql import IMPORT_PER_METER, kw_series, roles, time_group
from energyhub.grafana.variables import PARK

PLAN = Variable(
    "plan",
    "Plan",
    """SELECT p.id AS __value,
       '#' || p.id || ' ' || p.site_id || ' ' || p.status || ', from '
           || to_char(p.horizon_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC' AS __text
FROM plans AS p JOIN sites AS s ON s.id = p.site_id
WHERE p.site_id = '$park' OR s.parent_id = '$park'
ORDER BY p.created_at DESC, p.id DESC
LIMIT 200""",
)

PLANNED_IMPORT = """
SELECT st.ts AS "time",
       sum(CASE WHEN st.name = p.site_id || ':import_kw' THEN st.value ELSE -st.value END)
           AS planned_import_kw
FROM plans AS p JOIN plan_steps AS st ON st.plan_id = p.id
WHERE p.id = nullif('$plan', '')::bigint AND $__timeFilter(st.ts)
  AND st.name IN (p.site_id || ':import_kw', p.site_id || ':export_kw')
GROUP BY 1
ORDER BY 1
"""

PLAN_SITES = """WITH RECURSIVE tree (id) AS (
        SELECT site_id FROM plans WHERE id = nullif('$plan', '')::bigint
        UNION ALL
        SELECT s.id FROM sites AS s JOIN tree ON s.parent_id = tree.id
    ) SELECT id FROM tree"""

METERED_IMPORT = f"""

WITH {roles(PLAN_SITES)},
{kw_series("SELECT meter_id AS id FROM roles WHERE w_el <> 0")},
{IMPORT_PER_METER}
SELECT p."time", sum(p.import_kw) AS metered_import_kw
FROM per_meter AS p
GROUP BY 1
ORDER BY 1
"""  # noqa: S608 (dashboard SQL text composed from constants)

DISPATCH = """
SELECT st.ts AS "time", st.name AS metric,
       CASE WHEN split_part(st.name, ':', 2) = 'charge_kw' THEN -st.value ELSE st.value END AS kw
FROM plan_steps AS st
WHERE st.plan_id = nullif('$plan', '')::bigint AND $__timeFilter(st.ts)
  AND right(st.name, 3) = '_kw'
  AND split_part(st.name, ':', 2) NOT IN ('import_kw', 'export_kw', 'peak_import_kw')
ORDER BY 1, 2
"""

SOC = f"""
WITH capacity AS (
    SELECT a->>'id' AS asset_id, (a->>'energy_kwh')::float8 AS energy_kwh
    FROM sites AS s, jsonb_array_elements(coalesce(s.attributes->'assets', '[]')) AS a
    WHERE (a->>'energy_kwh')::float8 > 0
),
planned AS (
    SELECT st.ts, split_part(st.name, ':', 1) AS asset_id, st.value AS soc_kwh
    FROM plan_steps AS st
    WHERE st.plan_id = nullif('$plan', '')::bigint AND split_part(st.name, ':', 2) = 'soc_kwh'
)
SELECT {time_group("planned.ts")}, planned.asset_id || ' plan' AS metric,
       avg(100 * planned.soc_kwh / c.energy_kwh) AS soc_pct
FROM planned JOIN capacity AS c ON c.asset_id = planned.asset_id
WHERE $__timeFilter(planned.ts)
GROUP BY 1, 2
UNION ALL
SELECT {time_group("r.bucket")}, m.asset_id || ' measured',
       sum(r.sum_value) / sum(r.n)
FROM readings_15m AS r JOIN meters AS m ON m.id = r.meter_id
WHERE m.quantity = 'soc_pct' AND m.asset_id IN (SELECT asset_id FROM planned)
  AND $__timeFilter(r.bucket)
GROUP BY 1, 2
ORDER BY 1, 2
"""  # noqa: S608 (dashboard SQL text composed from constants)

AGAINST_BASELINE = """
WITH p AS (SELECT * FROM plans WHERE id = nullif('$plan', '')::bigint),
figures (measure, planned, baseline) AS (
    SELECT 'cost (CNY)', p.objective_cny, (p.baseline->>'cost_cny')::float8 FROM p
    UNION ALL
    SELECT 'CO₂ (kg)', p.co2_kg, (p.baseline->>'co2_kg')::float8 FROM p
)
SELECT measure, planned, baseline, baseline - planned AS saving,
       100 * (baseline - planned) / nullif(baseline, 0) AS saving_pct
FROM figures
"""

COST_TERMS = """
SELECT t.key AS term, t.value::float8 AS planned_cny,
       (p.baseline->'cost_terms_cny'->>t.key)::float8 AS baseline_cny
FROM plans AS p, jsonb_each_text(p.cost_terms_cny) AS t
WHERE p.id = nullif('$plan', '')::bigint
ORDER BY 1
"""

STATUS = "SELECT status FROM plans WHERE id = nullif('$plan', '')::bigint"

PLANS = """
SELECT p.id, p.site_id AS site, p.level, p.status, p.horizon_start, p.horizon_end,
       p.objective_cny, (p.baseline->>'cost_cny')::float8 - p.objective_cny AS saving_cny,
       p.co2_kg, p.created_at, p.approved_by, p.error
FROM plans AS p JOIN sites AS s ON s.id = p.site_id
WHERE (p.site_id = '$park' OR s.parent_id = '$park')
  AND p.horizon_end >= $__timeFrom() AND p.horizon_start <= $__timeTo()
ORDER BY p.created_at DESC, p.id DESC
LIMIT 100
"""


def dashboard() -> Dashboard:
    return Dashboard(
        uid="energyhub-plan-review",
        title="energyhub · Plan review",
        description="One plan against what happened: planned and metered grid import, the "
        "dispatch of each asset, storage SOC, and cost and CO₂ against the plan's baseline.",
        variables=(PARK, PLAN),
        time_from="now-24h",
        panels=(
            Panel(
                "Planned vs metered grid import",
                "timeseries",
                (Query(PLANNED_IMPORT), Query(METERED_IMPORT, ref_id="B")),
                width=16,
                height=9,
                unit="kwatt",
                description="Plan: `<site>:import_kw` minus `export_kw`. Metered: the plan "
                "site's purchased electricity (grid meters, park generators subtracted).",
            ),
            Panel("Plan status", "stat", (Query(STATUS, "table"),), width=8, height=4),
            Panel(
                "Cost and CO₂ vs baseline",
                "table",
                (Query(AGAINST_BASELINE, "table"),),
                width=8,
                height=5,
                decimals=1,
            ),
            Panel(
                "Dispatch by asset",
                "timeseries",
                (Query(DISPATCH),),
                width=16,
                height=9,
                unit="kwatt",
                description="Every planned `<asset>:<flow>_kw`; charging is drawn negative.",
            ),
            Panel(
                "Cost terms vs baseline",
                "table",
                (Query(COST_TERMS, "table"),),
                width=8,
                height=9,
                unit="currencyCNY",
                decimals=0,
            ),
            Panel(
                "State of charge: plan and measured",
                "timeseries",
                (Query(SOC),),
                width=24,
                height=8,
                unit="percent",
                description="Planned `soc_kwh` over the asset's `energy_kwh`, and the asset's "
                "`soc_pct` meter where it has one.",
            ),
            Panel(
                "Plans of the park",
                "table",
                (Query(PLANS, "table"),),
                width=24,
                height=8,
                description="Plans of the park and its buildings whose horizon meets the range.",
            ),
        ),
    )
