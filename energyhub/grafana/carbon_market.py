"""Scope 2 both ways for the carbon dashboard: location-based from the panels' ledger, market-based
with the certificates and contract claims retired for the park, the chosen buildings and their
tenants (carbon/market.py in SQL).

Like carbon/market.py: a retirement counts by the share of its period inside the time range;
certificates cover first (0 kg/kWh), then each contract claim in turn (oldest retirement first,
as the report takes them) at its own supplier's factor over the kWh it covers, never more than the
electricity bought; the rest is at the residual mix of the park's, else its city's `carbon` in
the site file (not that of a city a site file loaded before left in `sites`), else at the
location-based average factor of the range.
"""

from __future__ import annotations

from energyhub.grafana.carbon import LEDGER
from energyhub.grafana.model import Panel, Query
from energyhub.grafana.sql import SELECTED_SITES

RESIDUAL = "(s.attributes->'carbon'->>'residual_mix_kg_per_kwh')::float8"

MARKET = f""",
bought AS (
    SELECT greatest(coalesce(sum(electricity_kwh), 0), 0) AS kwh FROM ledger
),
located AS (
    SELECT coalesce(sum(electricity_kg), 0) AS electricity_kg, coalesce(sum(heat_kg), 0) AS heat_kg
    FROM ledger
),
claimed AS (
    SELECT g.id, i.kind, coalesce(i.supplier_kg_per_kwh, 0) AS kg_per_kwh,
           g.mwh::float8 * 1000
               * extract(epoch FROM least(upper(g.period), $__timeTo()::timestamptz)
                                    - greatest(lower(g.period), $__timeFrom()::timestamptz))
               / extract(epoch FROM upper(g.period) - lower(g.period)) AS kwh
    FROM green_retirements AS g JOIN green_instruments AS i ON i.id = g.instrument_id
    WHERE (g.site_id IN ({SELECTED_SITES})
           OR g.site_id IN (SELECT id FROM sites WHERE kind = 'enterprise'
                            AND parent_id IN ($building)))
      AND g.period && tstzrange($__timeFrom()::timestamptz, $__timeTo()::timestamptz)
),
certified AS (
    SELECT least(coalesce((SELECT sum(kwh) FROM claimed WHERE kind = 'certificate'), 0), b.kwh)
               AS certificate_kwh,
           b.kwh AS bought_kwh
    FROM bought AS b
),
contracts AS (
    SELECT c.kg_per_kwh,
           greatest(least(c.kwh, t.bought_kwh - t.certificate_kwh
                                 - coalesce(sum(c.kwh) OVER earlier, 0)), 0) AS kwh
    FROM claimed AS c, certified AS t
    WHERE c.kind = 'contract'
    WINDOW earlier AS (ORDER BY c.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
split AS (
    SELECT t.bought_kwh, t.certificate_kwh,
           coalesce((SELECT sum(kwh) FROM contracts), 0) AS contract_kwh,
           coalesce((SELECT sum(kwh * kg_per_kwh) FROM contracts), 0) AS contract_kg
    FROM certified AS t
),
residual AS (
    SELECT coalesce(
        (SELECT {RESIDUAL} FROM sites AS s WHERE s.id = '$park'),
        (SELECT {RESIDUAL} FROM sites AS p JOIN sites AS s ON s.id = p.parent_id
         WHERE p.id = '$park'),
        (SELECT l.electricity_kg / nullif(b.kwh, 0) FROM located AS l, bought AS b),
        0) AS f
)
SELECT l.electricity_kg + l.heat_kg AS location_kg,
       s.contract_kg
           + (s.bought_kwh - s.certificate_kwh - s.contract_kwh) * r.f + l.heat_kg AS market_kg,
       s.certificate_kwh / 1000 AS certificates_mwh, s.contract_kwh / 1000 AS contracts_mwh,
       (s.bought_kwh - s.certificate_kwh - s.contract_kwh) / 1000 AS residual_mwh,
       r.f AS residual_kg_per_kwh, l.heat_kg
FROM located AS l, split AS s, residual AS r
"""  # noqa: S608 (dashboard SQL text composed from constants)
"""After the panels' LEDGER: Scope 2 both ways over the range, and how the electricity split."""

SCOPE2_DUAL = LEDGER + MARKET


def scope2_panel() -> Panel:
    """Location-based and market-based Scope 2 of the range, side by side."""
    return Panel(
        "Scope 2: location-based and market-based",
        "table",
        (Query(SCOPE2_DUAL, "table"),),
        width=24,
        height=5,
        decimals=1,
        description="Market-based: certificates retired for the park, the chosen buildings and "
        "their tenants at 0 kg/kWh, contract claims at the supplier's factor, the rest at the "
        "residual mix (site file). `energyhub carbon green` records them.",
    )
