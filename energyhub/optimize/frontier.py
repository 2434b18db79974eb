"""The cost–CO₂ frontier of a plan: N plans from the cost-optimal to the CO₂-optimal one.

The carbon price stays in every objective; the frontier is traced with an ε-constraint on the
plan's CO₂ (the `carbon_cap` row of energyhub.optimize.coupling): the cost-optimal plan has the
most CO₂, the CO₂-optimal one the least (found with a prohibitive carbon price, then re-solved at
the site's price capped at its CO₂ so it is the cheapest of the least-CO₂ plans), and the points
between have their caps evenly spaced. Cost here is the bill (objective without the carbon-price
term); the marginal abatement cost between neighbours is its rise per tonne of CO₂ avoided.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.plan import Plan, plan
from energyhub.sites import PlanPolicy, SiteFile, load_site

PROHIBITIVE_CNY_PER_T = 1e6
"""A carbon price no saving outweighs (1,000 CNY/kg): the CO₂-optimal plan's search price."""
CAP_SLACK = 1e-6
"""Relative slack on the CO₂-optimal cap, so solver tolerances do not make it infeasible."""
MAX_POINTS = 11


@dataclass(frozen=True, slots=True)
class FrontierPoint:
    """One plan of the frontier: its CO₂ cap, CO₂, bill and objective, and the marginal
    abatement cost from the previous (higher-CO₂) point."""

    index: int
    cap_kg: float | None
    co2_kg: float
    cost_cny: float
    objective_cny: float
    abatement_cny_per_t: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "cap_kg": self.cap_kg,
            "co2_kg": self.co2_kg,
            "cost_cny": self.cost_cny,
            "objective_cny": self.objective_cny,
            "abatement_cny_per_t": self.abatement_cny_per_t,
        }


def bill_cny(result: Plan) -> float:
    """What the plan costs without its carbon-price term."""
    return result.objective_cny - result.cost_cny.get("carbon", 0.0)


def _priced(site: SiteFile, price_cny_per_t: float) -> SiteFile:
    carbon = site.city.carbon.model_copy(update={"price_cny_per_t": price_cny_per_t})
    return site.model_copy(update={"city": site.city.model_copy(update={"carbon": carbon})})


def check_points(points: int) -> None:
    if not 2 <= points <= MAX_POINTS:
        raise PlanInputError(
            f"--frontier: must be 2 to {MAX_POINTS} points, got {points}", column="frontier"
        )


def frontier(
    site: SiteFile | Path | str,
    inputs: pd.DataFrame | Path | str,
    *,
    level: str,
    site_id: str,
    points: int,
    **options: Any,
) -> list[tuple[FrontierPoint, Plan]]:
    """`points` plans from the cost-optimal (index 0) to the CO₂-optimal, each with its point;
    `options` go to every `plan(...)` (time limit, month peak, ...)."""
    check_points(points)
    if options.pop("carbon_cap_kg", None) is not None:
        raise PlanInputError(
            "--frontier with --carbon-cap-kg: the frontier sets its own caps; give one or the "
            "other",
            column="frontier",
        )
    site = site if isinstance(site, SiteFile) else load_site(site)
    cheapest = plan(site, inputs, level=level, site_id=site_id, **options)
    greenest = plan(
        _priced(site, PROHIBITIVE_CNY_PER_T), inputs, level=level, site_id=site_id, **options
    )
    high, low = cheapest.co2_kg, min(greenest.co2_kg, cheapest.co2_kg)
    plans = [cheapest]
    caps: list[float | None] = [None]
    if high - low > CAP_SLACK * max(abs(high), 1.0):
        for k in range(1, points):
            cap = high - (high - low) * k / (points - 1)
            cap = cap * (1 + CAP_SLACK) if k == points - 1 else cap
            plans.append(
                plan(site, inputs, level=level, site_id=site_id, carbon_cap_kg=cap, **options)
            )
            caps.append(cap)
    else:
        note = (
            f"frontier: the cost-optimal plan is also the least-CO₂ one ({high:,.0f} kg; at any "
            f"carbon price none emits less), so the frontier is that one point, not {points}"
        )
        plans = [replace(cheapest, notes=(*cheapest.notes, note))]
    return list(zip(_points(plans, caps), plans, strict=True))


def at_price(
    site: SiteFile,
    inputs: pd.DataFrame | Path | str,
    price_cny_per_t: float,
    *,
    level: str,
    site_id: str,
    **options: Any,
) -> Plan:
    """The plan a carbon price of `price_cny_per_t` leads to, billed at the site's own price: the
    CO₂ reached at that price, then the cheapest plan at the site's price capped there (so its
    bill and objective are real ones)."""
    found = plan(_priced(site, price_cny_per_t), inputs, level=level, site_id=site_id, **options)
    cap = found.co2_kg + CAP_SLACK * max(abs(found.co2_kg), 1.0)
    return plan(site, inputs, level=level, site_id=site_id, carbon_cap_kg=cap, **options)


def least_co2(
    site: SiteFile, inputs: pd.DataFrame | Path | str, *, level: str, site_id: str, **options: Any
) -> Plan:
    """The cheapest of the least-CO₂ plans (the CO₂ a prohibitive price reaches)."""
    return at_price(site, inputs, PROHIBITIVE_CNY_PER_T, level=level, site_id=site_id, **options)


def _points(plans: Sequence[Plan], caps: Sequence[float | None]) -> list[FrontierPoint]:
    out: list[FrontierPoint] = []
    for k, (result, cap) in enumerate(zip(plans, caps, strict=True)):
        mac = None
        if out:
            avoided_t = (out[-1].co2_kg - result.co2_kg) / 1000
            if avoided_t > 0:
                mac = (bill_cny(result) - out[-1].cost_cny) / avoided_t
        out.append(
            FrontierPoint(k, cap, result.co2_kg, bill_cny(result), result.objective_cny, mac)
        )
    return out


def pick(points: Sequence[FrontierPoint], policy: PlanPolicy) -> int:
    """The lowest-CO₂ point reached while each step's abatement cost stays within the policy
    (point 0 for a policy without an abatement cost)."""
    chosen = 0
    limit = policy.max_abatement_cost_cny_per_t
    for point in points[1:]:
        mac = point.abatement_cny_per_t
        if mac is None or limit is None or mac > limit:
            break
        chosen = point.index
    return chosen


def as_plan(found: Sequence[tuple[FrontierPoint, Plan]], k: int) -> Plan:
    """Point `k`'s plan, carrying the whole frontier and which point it is."""
    return replace(found[k][1], frontier=tuple(p.to_json() for p, _ in found), frontier_point=k)
