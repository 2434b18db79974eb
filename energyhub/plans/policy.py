"""A site's carbon policy (`city.carbon.plan_policy`) applied to a plan.

The policy's CO₂ limit is an ε-constraint against the plan's own baseline: the plan emits at most
baseline × (1 + max_co2_vs_baseline_pct / 100), plus the CO₂ value of the energy its stores must
be left with (each store's soc_final against where it starts), credited as plan vs actual credits
a store's change (energyhub.plans.stored). A plan that must refill a store is not blamed for the
refill's CO₂ beyond what the energy is worth; one that may drain a store gets no credit for it.
In the scheduler the limit is also tightened by what the local day so far emitted above its
counterfactual on the meters (energyhub.scheduler.co2_account), so that a day that went over on a
forecast miss is brought back within the plans that remain.

Without an abatement cost the plan is the cost-optimal one if it is within the limit. Else the
plan a carbon price of max_cost_to_meet_co2_limit_cny_per_t leads to is solved: if it is within
the limit, the limit can be met at no more than that per tonne, and the plan is the cheapest one
capped at the limit; if not, meeting it costs more (or no schedule reaches it) and that priced
plan is the plan, marked not met. With an abatement cost the frontier is solved, its pick
(energyhub.optimize.frontier.pick) moved on to the cheapest point within the limit while each
step costs at most the same ceiling. A site asking for the limit gets the closest plan it can
afford, never a crash, and the plan says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from energyhub.optimize import Plan, plan
from energyhub.optimize.errors import InfeasiblePlanError
from energyhub.optimize.frontier import (
    FrontierPoint,
    as_plan,
    at_price,
    bill_cny,
    frontier,
    pick,
)
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.network import Context
from energyhub.optimize.plan import with_month_peaks
from energyhub.optimize.scope import resolve_scopes
from energyhub.plans.stored import store_values, stored_value
from energyhub.sites import Battery, HydrogenStore, PlanPolicy, SiteFile, ThermalStorage

CO2_TOLERANCE = 1e-6
"""Relative CO₂ above the limit taken as equal to it (solver tolerance, not emissions)."""


@dataclass(frozen=True, slots=True)
class Co2Limit:
    """The most CO₂ a plan may emit under the policy, and what it is made of."""

    baseline_kg: float
    pct: float
    stored_kwh: float
    """Energy the stores must end with above (> 0) or below where they start (soc_final)."""
    stored_kg: float
    """That energy's CO₂ value, added to the limit (valued as plan vs actual values it)."""
    carried_kg: float = 0.0
    """Taken off the limit: what the local day so far emitted above its counterfactual, carried
    into this plan (energyhub.scheduler.co2_account); 0 outside the scheduler."""

    @property
    def limit_kg(self) -> float:
        return self.baseline_kg * (1 + self.pct / 100) + self.stored_kg - self.carried_kg

    def holds(self, co2_kg: float) -> bool:
        limit = self.limit_kg
        return co2_kg <= limit + CO2_TOLERANCE * max(abs(limit), 1.0)


def co2_limit(
    site: SiteFile,
    inputs: pd.DataFrame | Path | str,
    *,
    level: str,
    site_id: str,
    baseline_kg: float,
    pct: float,
    month_peak_kw: float | None = None,
    carried_kg: float = 0.0,
) -> Co2Limit:
    """The policy's limit for a plan of `level`/`site_id` over `inputs` whose baseline emits
    `baseline_kg`, tightened by `carried_kg`."""
    scopes = resolve_scopes(site, level, site_id)
    table = with_month_peaks(read_inputs(inputs, site.tz), scopes, month_peak_kw)
    stored_kwh = stored_kg = 0.0
    for scope in scopes:
        changes = {
            asset.id: (asset.soc_final - asset.soc_initial) * asset.energy_kwh
            for _, asset in scope.assets()
            if isinstance(asset, Battery | ThermalStorage | HydrogenStore)
            and asset.soc_final is not None
        }
        if changes:
            _, kg = stored_value(changes, store_values(Context.bare(scope, table)))
            stored_kwh += sum(changes.values())
            stored_kg += kg
    return Co2Limit(baseline_kg, pct, stored_kwh, stored_kg, carried_kg)


def policy_point(
    points: Sequence[FrontierPoint], limit: Co2Limit, policy: PlanPolicy
) -> tuple[int, bool]:
    """The point the policy picks, moved on to the cheapest point within the CO₂ limit if it is
    above, while each step costs at most the policy's ceiling per tonne; and whether that point
    is within the limit (if not, it is the last point reached)."""
    chosen = pick(points, policy)
    for point in points[chosen:]:
        if limit.holds(point.co2_kg):
            return point.index, True
        following = points[point.index + 1] if point.index + 1 < len(points) else None
        mac = following.abatement_cny_per_t if following is not None else None
        if mac is None or mac > policy.max_cost_to_meet_co2_limit_cny_per_t:
            return point.index, False
    return points[-1].index, False


def _outcome(result: Plan, cheapest: Plan, limit: Co2Limit, how: str) -> dict[str, Any]:
    met = limit.holds(result.co2_kg)
    extra_cny = bill_cny(result) - bill_cny(cheapest)
    avoided_kg = cheapest.co2_kg - result.co2_kg
    sign = "+" if limit.pct >= 0 else "−"
    parts = [
        f"CO2 {result.co2_kg:,.0f} kg {'≤' if met else '>'} limit {limit.limit_kg:,.0f} kg "
        f"(baseline {limit.baseline_kg:,.0f} kg {sign} {abs(limit.pct):g} %"
    ]
    if limit.stored_kwh:
        parts.append(
            f", {limit.stored_kg:+,.0f} kg for the {limit.stored_kwh:+,.0f} kWh its stores must "
            "end with (soc_final)"
        )
    if limit.carried_kg:
        parts.append(
            f", − {limit.carried_kg:,.0f} kg carried from the day so far, metered above its "
            "counterfactual"
        )
    parts.append(f"): {how}")
    if avoided_kg > 0 and extra_cny > 0:
        parts.append(
            f"; it costs {extra_cny:,.0f} CNY more than the cost-optimal plan "
            f"({extra_cny / (avoided_kg / 1000):,.0f} CNY/t avoided)"
        )
    return {
        "max_co2_vs_baseline_pct": limit.pct,
        "baseline_co2_kg": limit.baseline_kg,
        "stored_kwh": limit.stored_kwh,
        "stored_co2_kg": limit.stored_kg,
        "carried_co2_kg": limit.carried_kg,
        "limit_co2_kg": limit.limit_kg,
        "co2_kg": result.co2_kg,
        "met": met,
        "cost_optimal_co2_kg": cheapest.co2_kg,
        "extra_cost_cny": extra_cny,
        "note": "".join(parts) if met else "not met: " + "".join(parts),
    }


def plan_by_policy(
    site: SiteFile,
    inputs: pd.DataFrame | Path | str,
    *,
    level: str,
    site_id: str,
    policy: PlanPolicy,
    frontier_points: int | None = None,
    carried_kg: float = 0.0,
    **options: Any,
) -> Plan:
    """The plan the site's policy asks for, carrying `carbon_policy` (what the limit was, whether
    the plan meets it and what it cost). `frontier_points` solves the frontier even for a policy
    without an abatement cost (POST /plans with `"frontier"`); `carried_kg` tightens the limit
    (the scheduler's day account); `options` go to every solve."""
    points = frontier_points or (
        policy.frontier_points if policy.max_abatement_cost_cny_per_t is not None else None
    )
    if points is not None:
        found = frontier(site, inputs, level=level, site_id=site_id, points=points, **options)
        cheapest = found[0][1]
    else:
        found, cheapest = [], plan(site, inputs, level=level, site_id=site_id, **options)
    limit = co2_limit(
        site, inputs, level=level, site_id=site_id, baseline_kg=cheapest.baseline.co2_kg,
        pct=policy.max_co2_vs_baseline_pct, month_peak_kw=options.get("month_peak_kw"),
        carried_kg=carried_kg,
    )  # fmt: skip
    ceiling = policy.max_cost_to_meet_co2_limit_cny_per_t
    dear = (
        f"no schedule reaches the limit at up to {ceiling:,.0f} CNY/t "
        "(max_cost_to_meet_co2_limit_cny_per_t)"
    )
    if found:
        k, within = policy_point([p for p, _ in found], limit, policy)
        result = as_plan(found, k)
        how = "the cost-optimal plan" if k == 0 else f"frontier point {k}"
        how = how if within else f"{dear}; this is {how}"
        return replace(result, carbon_policy=_outcome(result, cheapest, limit, how))
    if limit.holds(cheapest.co2_kg):
        how = "the cost-optimal plan is within it"
        return replace(cheapest, carbon_policy=_outcome(cheapest, cheapest, limit, how))
    price = max(ceiling, site.city.carbon.price_cny_per_t)
    priced = at_price(site, inputs, price, level=level, site_id=site_id, **options)
    if limit.holds(priced.co2_kg):  # reachable within the ceiling: the cheapest plan there
        try:
            capped = plan(
                site, inputs, level=level, site_id=site_id,
                carbon_cap_kg=max(limit.limit_kg, 0.0), **options,
            )  # fmt: skip
        except InfeasiblePlanError:  # a MIP tolerance: the priced plan is within it
            capped = priced
        how = "the cheapest plan capped at the limit"
        return replace(capped, carbon_policy=_outcome(capped, cheapest, limit, how))
    how = f"{dear}; this is the plan at a carbon price of {price:,.0f} CNY/t"
    return replace(priced, carbon_policy=_outcome(priced, cheapest, limit, how))
