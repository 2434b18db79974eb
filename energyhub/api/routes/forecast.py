"""Forecasts: a site's forecast with its band (its newest plan's, or made now), and a backtest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import pandas as pd
import pydantic_core
from fastapi import APIRouter, Query
from fastapi.responses import Response
from psycopg import AsyncConnection

from energyhub.api.deps import ApiState, DbDep, SiteKey, SitePath, StateDep
from energyhub.api.errors import ApiError, bad_input, not_found, responses
from energyhub.api.schemas.common import Time
from energyhub.api.schemas.forecast import (
    BacktestPublic,
    BacktestStep,
    ForecastPublic,
    ForecastSource,
)
from energyhub.forecast.profile import ForecastError
from energyhub.forecast.sites import (
    BACKTEST_STEPS,
    BacktestRequest,
    UnknownSiteError,
    backtest_document,
    backtest_site,
)
from energyhub.forecast.store import latest_forecast, plan_bands
from energyhub.plans.operations import plan_inputs
from energyhub.scheduler.replan import PlanningConfig, forecast_now, target_of
from energyhub.sites import SiteFile

router = APIRouter(prefix="/sites", tags=["forecast"], responses=responses(401, 404, 422, 503))

MAX_API_BACKTEST_DAYS = 28
"""A backtest refits every model at every origin (seconds per meter): bounded per request."""


@router.get(
    "/{site_id}/forecast",
    response_model=ForecastPublic,
    summary="The current forecast",
    responses=responses(
        409, meaning_of={409: "source=now: a meter the forecast needs has too little recent data"}
    ),
)
async def site_forecast(
    site_id: SitePath,
    db: DbDep,
    access: SiteKey,
    state: StateDep,
    source: Annotated[
        ForecastSource,
        Query(
            description="`plan`: the forecast the newest scheduler plan was solved with; `now`: "
            "one made for this request from the stored meters (seconds per building)."
        ),
    ] = "plan",
    at: Annotated[
        Time | None,
        Query(description="With source=now: forecast from the step this time falls in (now)."),
    ] = None,
) -> Response:
    """The site's forecast (P50) by column, with its P10/P90 band where one was measured, each
    column's model, and the band's measured coverage: by default the one the site's newest
    scheduler plan was solved with; with `source=now` one made now, as a re-plan would."""
    zone = await access.zone(db, site_id)
    conn = await db.conn()
    if source == "now":
        document = await _fresh(conn, state, site_id, at or datetime.now(UTC))
    elif at is not None:
        raise bad_input("query", "at", "only with source=now (a plan's forecast has its own time)")
    else:
        document = await _of_newest_plan(conn, state.site, site_id)
    document["issued_at"] = document["issued_at"].astimezone(zone)
    for column in document["series"]:
        for point in column["points"]:
            point["ts"] = point["ts"].astimezone(zone)
    return Response(
        pydantic_core.to_json(document, inf_nan_mode="null"), media_type="application/json"
    )


async def _of_newest_plan(conn: AsyncConnection, site: SiteFile, site_id: str) -> dict[str, Any]:
    """The newest plan's forecast of the site; a building planned as part of its park (the
    scheduler's default) gets the park plan's forecast of its own columns."""
    latest = await latest_forecast(conn, site_id)
    part_of: tuple[str, set[str]] | None = None  # the park, and the building's column owners
    found = site.find_building(site_id) if latest is None else None
    if found is not None:
        park, building = found
        latest = await latest_forecast(conn, park.id)
        part_of = park.id, {building.id, *(asset.id for asset in building.assets)}
    if latest is None:
        raise not_found(
            f"stored forecast of site {site_id!r} (no scheduler plan yet; "
            "source=now makes one from the stored meters)"
        )
    inputs = await plan_inputs(conn, latest.plan_id)
    bands = await plan_bands(conn, latest.plan_id)
    low, high = (
        pd.DataFrame(index=inputs.index)
        if bands.empty
        else bands.assign(ts=pd.to_datetime(bands["ts"], utc=True))
        .pivot_table(index="ts", columns="name", values=q, aggfunc="first")
        .reindex(inputs.index)
        for q in ("p10", "p90")
    )
    series = _series(inputs, low, high, latest.methods)
    notes = latest.notes
    if part_of is not None:
        park_id, own = part_of
        series = [column for column in series if column["name"].split(":")[0] in own]
        notes = [
            f"{site_id}: its own columns, part of park {park_id}'s plan {latest.plan_id} (the "
            "scheduler plans the park)",
            *notes,
        ]
    return {
        "site_id": site_id, "source": "plan", "plan_id": latest.plan_id,
        "plan_status": latest.status, "issued_at": latest.issued_at, "notes": notes,
        "band_coverage": latest.band_coverage, "series": series,
    }  # fmt: skip


async def _fresh(
    conn: AsyncConnection, state: ApiState, site_id: str, at: datetime
) -> dict[str, Any]:
    target = target_of(state.site, site_id)
    if target is None:
        raise bad_input(
            "path", "site_id", f"{site_id!r} is not a park or building of the site file (the "
            "forecast is made per park or building, as the scheduler plans them)",
        )  # fmt: skip
    config = PlanningConfig.of(state.settings, state.forecast_models, state.site)
    try:
        made = await forecast_now(conn, state.backend, state.site, target, at, config)
    except ForecastError as exc:
        raise ApiError(409, f"cannot forecast {site_id!r} now: {exc}") from None
    forecast = made.forecast
    return {
        "site_id": site_id, "source": "now", "plan_id": None, "plan_status": None,
        "issued_at": made.issued_at, "notes": forecast.notes, "band_coverage": made.coverage,
        "series": _series(forecast.frame, forecast.low, forecast.high, forecast.methods),
    }  # fmt: skip


def _series(
    p50: pd.DataFrame, low: pd.DataFrame, high: pd.DataFrame, methods: dict[str, str]
) -> list[dict[str, Any]]:
    """Each column's points; p10/p90 None where the band has no value."""

    def value(frame: pd.DataFrame, name: str, i: int) -> float | None:
        if name not in frame.columns or i >= len(frame):
            return None
        found = frame[name].iloc[i]
        return None if pd.isna(found) else float(found)

    index = pd.DatetimeIndex(p50.index)
    return [
        {
            "name": str(name),
            "method": methods.get(str(name), ""),
            "points": [
                {
                    "ts": ts.to_pydatetime(),
                    "p50": float(p50[name].iloc[i]),
                    "p10": value(low, name, i),
                    "p90": value(high, name, i),
                }
                for i, ts in enumerate(index)
            ],
        }
        for name in p50.columns
    ]


@router.get(
    "/{site_id}/forecast/backtest",
    response_model=BacktestPublic,
    summary="Backtest the site's forecasts",
)
async def site_backtest(
    site_id: SitePath,
    db: DbDep,
    access: SiteKey,
    state: StateDep,
    meter: Annotated[
        str | None, Query(max_length=128, description="One meter (name or id); default: all.")
    ] = None,
    days: Annotated[int, Query(ge=1, le=MAX_API_BACKTEST_DAYS, description="Forecast days.")] = 7,
    step: Annotated[BacktestStep, Query()] = "1h",
    end: Annotated[
        Time | None, Query(description="The days end at the local midnight before it (now).")
    ] = None,
) -> Response:
    """Rolling-origin day-ahead backtest of the site's load and PV meters: NMAE and MAE of each
    model and of the per-meter choice against the same time a day and a week earlier; pinball
    loss and coverage of the P10–P90 band. Each model is refitted at each origin: seconds per
    meter and day."""
    await access.zone(db, site_id)
    settings = state.settings
    request = BacktestRequest(
        site_id, meter, days, BACKTEST_STEPS[step], timedelta(days=settings.scheduler_history_days),
        end or datetime.now(UTC),
    )  # fmt: skip
    try:
        result = await backtest_site(
            await db.conn(),
            state.backend,
            state.site,
            request,
            PlanningConfig.of(settings, site=state.site).forecast,
        )
    except UnknownSiteError as exc:
        field = "meter" if exc.field == "meter" else "site_id"
        raise bad_input("query" if field == "meter" else "path", field, exc.message) from None
    body = pydantic_core.to_json(backtest_document(result), inf_nan_mode="null")
    return Response(body, media_type="application/json")
