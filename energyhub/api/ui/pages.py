"""The pages: the site tree, a site with its live load, the plan list, a plan and its decision.

Scope and roles are the JSON API's: an id outside the key's subtree answers 404 like an unknown
one, a role too low for an action 403; approve and reject run the same store operations.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from energyhub.api.deps import ConnDep, SitePath, StateDep, require_role
from energyhub.api.errors import ApiError, bad_input, not_found
from energyhub.api.keys import ApiKey
from energyhub.api.limits import window
from energyhub.api.routes.load import load_points
from energyhub.api.routes.plans import (
    PlanPath,
    PointPath,
    pick_frontier_point,
    scoped_plans,
)
from energyhub.api.schemas.common import SiteId, Time
from energyhub.api.schemas.plans import PlanReject
from energyhub.api.scope import SiteRow, site_access, subtree
from energyhub.api.ui.auth import Form, UiKey, same_origin
from energyhub.api.ui.figures import frontier_chart, load_chart, plan_charts
from energyhub.api.ui.forecast_chart import forecast_section
from energyhub.api.ui.morning import morning
from energyhub.api.ui.render import HtmlRoute, page
from energyhub.carbon.plan_price import allowance_price
from energyhub.plans import store
from energyhub.plans.actual import PlanVsActual, plan_vs_actual
from energyhub.plans.errors import PlanNotFoundError
from energyhub.plans.store import WITH_SCHEDULE, PlanRecord, PlanStatus
from energyhub.plans.verdict import grouped_warnings, verdict
from energyhub.scheduler.target import DemandTargetConfig
from energyhub.store.queries import site_series_rows, site_with_children

router = APIRouter(prefix="/ui", route_class=HtmlRoute, include_in_schema=False)

LOAD_STEP = timedelta(minutes=15)
REFRESH_S = 30
PAGE_SIZE = 50


def _walk(rows: list[SiteRow]) -> list[tuple[SiteRow, int]]:
    """The subtree depth first, children by id, with each site's depth."""
    children: dict[str | None, list[SiteRow]] = {}
    for row in rows[1:]:
        children.setdefault(row.parent_id, []).append(row)
    out: list[tuple[SiteRow, int]] = []
    stack = [(rows[0], 0)]
    while stack:
        row, depth = stack.pop()
        out.append((row, depth))
        below = sorted(children.get(row.id, []), key=lambda r: r.id, reverse=True)
        stack.extend((child, depth + 1) for child in below)
    return out


@router.get("", response_class=HTMLResponse)
async def tree(conn: ConnDep, key: UiKey) -> Response:
    """The key's site and everything under it (city → parks → buildings → enterprises)."""
    rows = await subtree(conn, key.site_id)
    if not rows:
        raise not_found(f"site {key.site_id!r}")
    return page("tree.html", key=key, sites=_walk(rows))


async def _site(conn: ConnDep, site_id: str) -> tuple[SiteRow, list[SiteRow]]:
    found = await site_with_children(conn, site_id)
    if found is None:
        raise not_found(f"site {site_id!r}")
    row, children = found
    return SiteRow(*row), [SiteRow(*child) for child in children]


async def _load(
    conn: ConnDep, state: StateDep, key: ApiKey, site_id: str, end: Time | None
) -> tuple[Markup, ZoneInfo]:
    """The load chart of the 24 h up to `end` (default now), as `GET /sites/{id}/load`."""
    zone = await site_access(conn, key, site_id)
    lo, hi = window(None, end, LOAD_STEP, state.settings)
    rows = await site_series_rows(conn, state.backend, site_id, lo, hi, LOAD_STEP, zone.key)
    return load_chart(load_points(rows, zone), lo, hi, LOAD_STEP, zone), zone


ForecastQuery = Annotated[
    str | None,
    Query(max_length=200, description="The input column the forecast chart shows."),
]
EndQuery = Annotated[
    Time | None, Query(description="End of the 24 h shown; default now (refreshing live).")
]


@router.get("/sites/{site_id}", response_class=HTMLResponse)
async def site_page(
    site_id: SitePath, conn: ConnDep, state: StateDep, key: UiKey, end: EndQuery = None
) -> Response:
    chart, zone = await _load(conn, state, key, site_id, end)
    site, children = await _site(conn, site_id)
    parent = site.parent_id if site.id != key.site_id else None
    now = end or datetime.now(UTC)
    view = await morning(conn, state.backend, state.site, (site.id, site.kind), now, zone)
    return page(
        "site.html",
        key=key,
        site=site,
        morning=view,
        parent=parent,
        children=children,
        chart=chart,
        zone=zone.key,
        zone_info=zone,
        live=end is None,
        refresh_s=REFRESH_S,
    )


@router.get("/sites/{site_id}/load-chart", response_class=HTMLResponse)
async def site_load_chart(
    site_id: SitePath, conn: ConnDep, state: StateDep, key: UiKey, end: EndQuery = None
) -> Response:
    """The load chart alone: what the site page's script fetches every 30 s."""
    chart, _ = await _load(conn, state, key, site_id, end)
    return HTMLResponse(chart)


@router.get("/plans", response_class=HTMLResponse)
async def plan_list(
    conn: ConnDep,
    key: UiKey,
    site_id: Annotated[SiteId | None, Query()] = None,
    status: Annotated[PlanStatus | None, Query()] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    """Plans in the key's scope, newest first, as `GET /plans`."""
    records, zone = await scoped_plans(conn, key, site_id, status, before_id, PAGE_SIZE)
    more = records[-1].id if len(records) == PAGE_SIZE else None
    filters = {"site_id": site_id, "status": status}
    verdicts = {r.id: verdict(r) for r in records}
    return page(
        "plans.html",
        key=key,
        plans=records,
        verdicts=verdicts,
        zone=zone,
        more=more,
        filters=filters,
    )


async def _plan(conn: ConnDep, key: ApiKey, plan_id: int) -> tuple[PlanRecord, ZoneInfo]:
    """The plan and its site's zone; 404 when unknown or outside the key's scope."""
    record = await store.get_plan(conn, plan_id)
    try:
        zone = await site_access(conn, key, record.site_id)
    except ApiError:
        raise PlanNotFoundError(plan_id) from None
    return record, zone


def _cost_terms(record: PlanRecord) -> list[tuple[str, float | None, float | None]]:
    baseline: dict[str, float] = record.baseline.get("cost_terms_cny", {})
    names = sorted(set(record.cost_terms_cny) | set(baseline))
    return [(n, record.cost_terms_cny.get(n), baseline.get(n)) for n in names]


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
async def plan_page(
    plan_id: PlanPath, conn: ConnDep, state: StateDep, key: UiKey, forecast: ForecastQuery = None
) -> Response:
    """Status, cost and CO2 vs baseline, charts of dispatch, SOC and import vs the limit, and
    the forecast the plan was solved with in its P10–P90 band."""
    record, zone = await _plan(conn, key, plan_id)
    charts: dict[str, Any] = {}
    actual: PlanVsActual | None = None
    if record.status in WITH_SCHEDULE:
        schedule = await store.plan_steps(conn, plan_id)
        if not schedule.empty:
            actual = await plan_vs_actual(
                conn, state.backend, plan_id, site=state.site,
                target=DemandTargetConfig.of(state.settings),
            )  # fmt: skip
            metered = pd.Series(
                [s.actual_import_kw for s in actual.step_details],
                index=pd.DatetimeIndex([s.ts for s in actual.step_details]),
                dtype="float64",
            )
            charts = plan_charts(record, schedule, state.site, zone, metered)
    frontier = frontier_chart(record)
    allowance = None
    if frontier:  # weighed against the allowance price of the plan's start day
        day = record.horizon_start.astimezone(zone).date()
        allowance = await allowance_price(conn, state.site, record.site_id, day)
    return page(
        "plan.html",
        key=key,
        plan=record,
        zone=zone,
        charts=charts,
        actual=actual,
        verdict=verdict(record),
        frontier=frontier,
        allowance=allowance,
        warnings=grouped_warnings(record.warnings),
        terms=_cost_terms(record),
        operator=key.allows("operator"),
        forecast=await forecast_section(conn, record, zone, forecast),
    )


async def _decide(
    conn: ConnDep, key: ApiKey, plan_id: int, action: Literal["approve", "reject"], reason: str
) -> Response:
    """The API's approve or reject (same scope, role and status checks), then the plan page."""
    await _plan(conn, key, plan_id)
    require_role(key, "operator", f"{action} plans")
    who = f"key:{key.id}"
    if action == "approve":
        await store.approve(conn, plan_id, who)
    else:
        await store.reject(conn, plan_id, who, reason)
    return RedirectResponse(f"/ui/plans/{plan_id}", status_code=303)


@router.post("/plans/{plan_id}/approve", dependencies=[Depends(same_origin)])
async def approve(plan_id: PlanPath, conn: ConnDep, key: UiKey) -> Response:
    return await _decide(conn, key, plan_id, "approve", "")


@router.post("/plans/{plan_id}/frontier/{point}", dependencies=[Depends(same_origin)])
async def pick(
    plan_id: PlanPath, point: PointPath, conn: ConnDep, state: StateDep, key: UiKey
) -> Response:
    """The API's frontier pick, then the new plan's page."""
    record, _ = await pick_frontier_point(conn, state, key, plan_id, point)
    return RedirectResponse(f"/ui/plans/{record.id}", status_code=303)


@router.post("/plans/{plan_id}/reject", dependencies=[Depends(same_origin)])
async def reject(plan_id: PlanPath, conn: ConnDep, key: UiKey, fields: Form) -> Response:
    try:
        body = PlanReject.model_validate({"reason": fields.get("reason", "").strip()})
    except ValidationError as exc:
        raise bad_input("body", "reason", exc.errors()[0]["msg"]) from None
    return await _decide(conn, key, plan_id, "reject", body.reason)
