"""Plans: create (solved in the background), list, get, schedule, approve, reject, actual."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from psycopg import AsyncConnection

from energyhub.api.deps import ConnDep, CurrentKey, StateDep, require_role
from energyhub.api.errors import ApiError, FieldError, bad_input, responses
from energyhub.api.jobs import PlanJob
from energyhub.api.keys import ApiKey
from energyhub.api.schemas.common import CSV_RESPONSE, Int8Id, SiteId
from energyhub.api.schemas.plans import (
    PlanActualPublic,
    PlanCreate,
    PlanPublic,
    PlanReject,
    PlansPublic,
    SchedulePublic,
    ScheduleStepPublic,
)
from energyhub.api.scope import site_access, subtree
from energyhub.api.views import actual_public, frame_csv, plan_public
from energyhub.carbon.plan_price import with_position_price
from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.inputs import check_inputs, read_inputs
from energyhub.optimize.method import size_problem
from energyhub.optimize.scope import resolve_scope, resolve_scopes
from energyhub.optimize.tariffs import month_peak_column
from energyhub.plans import store
from energyhub.plans.actual import plan_vs_actual
from energyhub.plans.errors import PlanNotFoundError, PlanStateError
from energyhub.plans.frontier import FrontierPointError, pick_point
from energyhub.plans.peak import month_peaks_kw
from energyhub.plans.store import WITH_SCHEDULE, PlanRecord, PlanStatus
from energyhub.scheduler.target import DemandTargetConfig

router = APIRouter(prefix="/plans", tags=["plans"], responses=responses(401, 404, 422, 503))

PlanPath = Annotated[Int8Id, Path(description="A plan id.", examples=[12])]


async def _plan_in_scope(conn: ConnDep, key: ApiKey, plan_id: int) -> tuple[PlanRecord, ZoneInfo]:
    """The plan and its site's zone; 404 when unknown or outside the key's scope."""
    record = await store.get_plan(conn, plan_id)
    try:
        zone = await site_access(conn, key, record.site_id)
    except ApiError:
        raise PlanNotFoundError(plan_id) from None
    return record, zone


async def scoped_plans(
    conn: AsyncConnection,
    key: ApiKey,
    site_id: str | None,
    status: PlanStatus | None,
    before_id: int | None,
    limit: int,
) -> tuple[list[PlanRecord], ZoneInfo]:
    """Plans of `site_id` (default: the key's whole subtree), newest first, and the zone to show
    them in; 404 when the site lies outside the key's scope."""
    if site_id is not None:
        zone = await site_access(conn, key, site_id)
        sites = [site_id]
    else:
        sites = [row.id for row in await subtree(conn, key.site_id)]
        zone = await site_access(conn, key, key.site_id)
    records = await store.list_plans(
        conn, site_ids=sites, status=status, before_id=before_id, limit=limit
    )
    return records, zone


def _inputs(body: PlanCreate) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.to_datetime(body.inputs.ts, utc=True), name="ts")
    return pd.DataFrame(body.inputs.columns, index=index)


def _check(state: StateDep, body: PlanCreate, frame: pd.DataFrame) -> timedelta:
    """Bad level, site or inputs → 422 now rather than a failed plan later; returns the step."""
    if len(frame) > state.settings.api_max_points:
        raise bad_input(
            "body",
            "inputs.ts",
            f"{len(frame)} steps, more than the limit of {state.settings.api_max_points} "
            "(ENERGYHUB_API_MAX_POINTS): plan a shorter horizon",
        )
    try:
        scope = resolve_scope(state.site, body.level, body.site_id)
    except PlanInputError as exc:
        raise bad_input("body", "site_id", str(exc).removeprefix("--id: ")) from None
    scopes = resolve_scopes(state.site, body.level, body.site_id)
    problem = size_problem(scopes, len(frame), state.settings.plan_max_asset_steps)
    if problem is not None:
        where = f"level {body.level!r}, site_id {body.site_id!r}: "
        raise bad_input("body", "inputs.ts", where + problem)
    table = read_inputs(frame, state.site.tz)
    check_inputs(table, state.site, scope)
    return timedelta(hours=table.dt_h)


async def _with_month_peaks(
    conn: AsyncConnection, state: StateDep, body: PlanCreate, frame: pd.DataFrame
) -> None:
    """Each connection's month-to-date metered peak (a building's own `grid:` in a park's plan
    too), unless the inputs give it: the demand charge of a monthly bill is paid only on raising
    it."""
    start = frame.index[0].to_pydatetime()
    for scope in resolve_scopes(state.site, body.level, body.site_id):
        peaks = await month_peaks_kw(conn, state.backend, scope, start, state.site.tz)
        for node, peak in peaks.items():
            if month_peak_column(node) not in frame.columns:
                frame[month_peak_column(node)] = peak


@router.post(
    "",
    status_code=202,
    response_model=PlanPublic,
    responses=responses(403),
    summary="Create a plan (solved in the background)",
)
async def create_plan(
    body: PlanCreate, conn: ConnDep, key: CurrentKey, state: StateDep, response: Response
) -> PlanPublic:
    """Checks the inputs, answers 202 with the plan (status pending), then solves it.

    Poll `GET /plans/{id}`: pending becomes draft (awaiting an operator), approved (the site's
    `plan_approval: auto`) or failed (with `error`). Needs manager or above.
    """
    try:
        zone = await site_access(conn, key, body.site_id)
    except ApiError as exc:  # the site is the body's site_id: /plans has no path parameter
        field = FieldError(location="body", field="site_id", message=exc.detail)
        raise ApiError(exc.status, exc.detail, [field]) from None
    require_role(key, "manager", "create plans")
    frame = _inputs(body)
    step = _check(state, body, frame)
    start = frame.index[0].to_pydatetime()
    digest = store.inputs_hash(frame)
    await _with_month_peaks(conn, state, body, frame)
    site, priced = await with_position_price(
        conn, state.backend, state.site, body.level, body.site_id, start
    )  # carbon_scheme.plan_price: position, as the scheduler's re-plans
    record = await store.create_pending(
        conn,
        level=body.level,
        site_id=body.site_id,
        horizon_start=start,
        horizon_end=(frame.index[-1] + step).to_pydatetime(),
        step_s=int(step.total_seconds()),
        inputs_ref="api",
        inputs_hash=digest,
        created_by=f"key:{key.id}",
    )
    limit = body.time_limit_s or state.settings.api_plan_time_limit_s
    job = PlanJob(record.id, body.level, body.site_id, frame, limit, frontier=body.frontier)
    if priced:  # solved with the position's price, or saying why the site file's stays
        job = replace(job, site=site, warnings=tuple(priced))
    state.runner.submit(job)
    response.headers["Location"] = f"/plans/{record.id}"
    return plan_public(record, zone)


@router.get("", response_model=PlansPublic, summary="Plans in the key's scope, newest first")
async def list_plans(
    conn: ConnDep,
    key: CurrentKey,
    site_id: Annotated[SiteId | None, Query(description="Only this site's plans.")] = None,
    status: Annotated[PlanStatus | None, Query()] = None,
    before_id: Annotated[Int8Id | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PlansPublic:
    records, zone = await scoped_plans(conn, key, site_id, status, before_id, limit)
    more = records[-1].id if len(records) == limit else None
    return PlansPublic(plans=[plan_public(r, zone) for r in records], next_cursor=more)


@router.get("/{plan_id}", response_model=PlanPublic, summary="One plan")
async def get_plan(plan_id: PlanPath, conn: ConnDep, key: CurrentKey) -> PlanPublic:
    record, zone = await _plan_in_scope(conn, key, plan_id)
    return plan_public(record, zone)


async def _schedule(conn: ConnDep, record: PlanRecord) -> pd.DataFrame:
    if record.status not in WITH_SCHEDULE:
        raise PlanStateError(record.id, record.status, "read the schedule of", list(WITH_SCHEDULE))
    return await store.plan_steps(conn, record.id)


@router.get(
    "/{plan_id}/schedule",
    response_model=SchedulePublic,
    responses={**CSV_RESPONSE, **responses(409)},
    summary="The plan's schedule per step",
)
async def get_schedule(
    plan_id: PlanPath,
    conn: ConnDep,
    key: CurrentKey,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> SchedulePublic | Response:
    """One row per step, one column per `<asset>:<variable>` (as `energyhub plan --out`)."""
    record, zone = await _plan_in_scope(conn, key, plan_id)
    frame = await _schedule(conn, record)
    frame.index = pd.DatetimeIndex(frame.index).tz_convert(zone)
    if format == "csv":
        return Response(frame_csv(frame), media_type="text/csv")
    steps = [
        ScheduleStepPublic(ts=ts, values={str(k): float(v) for k, v in row.items()})
        for ts, row in zip(frame.index, frame.to_dict("records"), strict=True)
    ]
    columns = [str(c) for c in frame.columns]
    return SchedulePublic(plan_id=plan_id, step_s=record.step_s, columns=columns, steps=steps)


@router.get(
    "/{plan_id}/actual",
    response_model=PlanActualPublic,
    responses=responses(409),
    summary="Plan vs actual per step",
)
async def get_actual(
    plan_id: PlanPath, conn: ConnDep, key: CurrentKey, state: StateDep
) -> PlanActualPublic:
    """Planned vs metered net import, PV and storage SOC (end of step) per step, and the
    planned, metered and baseline bills with the realized savings, in total and per day."""
    _, zone = await _plan_in_scope(conn, key, plan_id)
    result = await plan_vs_actual(
        conn, state.backend, plan_id, site=state.site, target=DemandTargetConfig.of(state.settings)
    )
    return actual_public(result, zone)


async def _decide(
    conn: ConnDep, key: ApiKey, plan_id: int, action: Literal["approve", "reject"], reason: str
) -> tuple[PlanRecord, ZoneInfo]:
    _, zone = await _plan_in_scope(conn, key, plan_id)
    require_role(key, "operator", f"{action} plans")
    who = f"key:{key.id}"
    if action == "approve":
        record = await store.approve(conn, plan_id, who)
    else:
        record = await store.reject(conn, plan_id, who, reason)
    return record, zone


@router.post(
    "/{plan_id}/approve",
    response_model=PlanPublic,
    responses=responses(403, 409),
    summary="Approve a draft plan (operator)",
)
async def approve_plan(plan_id: PlanPath, conn: ConnDep, key: CurrentKey) -> PlanPublic:
    record, zone = await _decide(conn, key, plan_id, "approve", "")
    return plan_public(record, zone)


@router.post(
    "/{plan_id}/reject",
    response_model=PlanPublic,
    responses=responses(403, 409),
    summary="Reject a draft or approved plan (operator)",
)
async def reject_plan(
    plan_id: PlanPath, body: PlanReject, conn: ConnDep, key: CurrentKey
) -> PlanPublic:
    record, zone = await _decide(conn, key, plan_id, "reject", body.reason)
    return plan_public(record, zone)


PointPath = Annotated[int, Path(ge=0, le=10, description="A frontier point (0: cost-optimal).")]


async def pick_frontier_point(
    conn: AsyncConnection, state: StateDep, key: ApiKey, plan_id: int, point: int
) -> tuple[PlanRecord, ZoneInfo]:
    """The API's and the page's pick: same scope, role and status checks."""
    found, zone = await _plan_in_scope(conn, key, plan_id)
    require_role(key, "operator", "pick frontier points of plans")
    site, _ = await with_position_price(
        conn, state.backend, state.site, found.level, found.site_id, found.horizon_start
    )  # the point is priced from the position as its plan was
    try:
        record = await pick_point(conn, site, plan_id, point, f"key:{key.id}")
    except FrontierPointError as exc:
        raise bad_input("path", "point", str(exc)) from None
    return record, zone


@router.post(
    "/{plan_id}/frontier/{point}",
    response_model=PlanPublic,
    responses=responses(403, 409),
    summary="Make a point of the plan's cost–CO₂ frontier the plan (operator)",
)
async def pick_point_route(
    plan_id: PlanPath, point: PointPath, conn: ConnDep, key: CurrentKey, state: StateDep
) -> PlanPublic:
    """Re-solves the draft or approved plan at frontier point `point` (its CO₂ cap) from the
    inputs it kept; answers the new plan (draft, or approved by the site's policy). The old plan
    is rejected, its reason naming the point and the new plan."""
    record, zone = await pick_frontier_point(conn, state, key, plan_id, point)
    return plan_public(record, zone)
