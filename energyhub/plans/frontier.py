"""An operator picks a point of a plan's cost–CO₂ frontier: that point, re-solved from the inputs
the plan kept, becomes the plan (a new draft, or approved by the site's policy) and the old one
is rejected saying which point replaced it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from psycopg import AsyncConnection

from energyhub.errors import EnergyhubError
from energyhub.optimize import plan
from energyhub.plans.errors import PlanStateError
from energyhub.plans.operations import plan_inputs, save_inputs
from energyhub.plans.store import PlanRecord, get_plan, reject, store_plan
from energyhub.sites import SiteFile

PICKABLE = ["draft", "approved"]


class FrontierPointError(EnergyhubError):
    """The plan has no such frontier point (or no frontier, or no inputs kept to re-solve it)."""

    def __init__(self, plan_id: int, message: str) -> None:
        self.plan_id = plan_id
        super().__init__(f"plan {plan_id}: {message}")


def frontier_points(record: PlanRecord) -> list[dict[str, Any]]:
    points = record.solver.get("frontier") or []
    return [dict(p) for p in points]


async def pick_point(
    conn: AsyncConnection, site: SiteFile, plan_id: int, point: int, by: str
) -> PlanRecord:
    """Re-solve `plan_id` at frontier point `point` and make it the plan."""
    record = await get_plan(conn, plan_id)
    if record.status not in PICKABLE:
        raise PlanStateError(plan_id, record.status, "pick a frontier point of", PICKABLE)
    points = frontier_points(record)
    if not points:
        raise FrontierPointError(plan_id, 'has no frontier (create it with "frontier": N)')
    if not 0 <= point < len(points):
        raise FrontierPointError(plan_id, f"point must be 0 to {len(points) - 1}, got {point}")
    if point == record.solver.get("frontier_point", 0):
        raise FrontierPointError(plan_id, f"point {point} is already the plan")
    inputs = await plan_inputs(conn, plan_id)
    if inputs.empty:
        raise FrontierPointError(plan_id, "kept no inputs to re-solve a point from")
    cap = points[point]["cap_kg"]
    result = await asyncio.to_thread(
        plan, site, inputs, level=record.level, site_id=record.site_id, carbon_cap_kg=cap
    )
    result = replace(result, frontier=tuple(points), frontier_point=point)
    async with conn.transaction():
        picked = await store_plan(
            conn,
            result,
            inputs_ref=f"frontier point {point} of plan {plan_id}",
            inputs_digest=record.inputs_hash,
            created_by=by,
        )
        await save_inputs(conn, picked.id, inputs)
        await reject(conn, plan_id, by, f"replaced by frontier point {point}: plan {picked.id}")
    return picked
