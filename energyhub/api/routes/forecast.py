"""Forecasts: a site's current forecast with its band, and a backtest of its meters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import pandas as pd
import pydantic_core
from fastapi import APIRouter, Query
from fastapi.responses import Response

from energyhub.api.deps import DbDep, SiteKey, SitePath, StateDep
from energyhub.api.errors import bad_input, not_found, responses
from energyhub.api.schemas.common import Time
from energyhub.api.schemas.forecast import BacktestPublic, BacktestStep, ForecastPublic
from energyhub.forecast.sites import (
    BACKTEST_STEPS,
    BacktestRequest,
    UnknownSiteError,
    backtest_document,
    backtest_site,
)
from energyhub.forecast.store import latest_forecast, plan_bands
from energyhub.plans.operations import plan_inputs
from energyhub.scheduler.replan import PlanningConfig

router = APIRouter(prefix="/sites", tags=["forecast"], responses=responses(401, 404, 422, 503))

MAX_API_BACKTEST_DAYS = 28
"""A backtest refits every model at every origin (seconds per meter): bounded per request."""


@router.get("/{site_id}/forecast", response_model=ForecastPublic, summary="The current forecast")
async def site_forecast(site_id: SitePath, db: DbDep, access: SiteKey) -> Response:
    """The forecast the site's newest scheduler plan was solved with (P50), with its P10/P90
    band where one was measured, each column's model, and the band's measured coverage."""
    zone = await access.zone(db, site_id)
    conn = await db.conn()
    latest = await latest_forecast(conn, site_id)
    if latest is None:
        raise not_found(f"stored forecast of site {site_id!r} (no scheduler plan yet)")
    inputs = await plan_inputs(conn, latest.plan_id)
    bands = await plan_bands(conn, latest.plan_id)
    by_name = {str(name): rows for name, rows in bands.groupby("name")}
    series = []
    for name in inputs.columns:
        band = by_name.get(str(name))
        low = high = None
        if band is not None:
            indexed = band.assign(ts=pd.to_datetime(band["ts"], utc=True)).set_index("ts")
            low = indexed["p10"].reindex(inputs.index)
            high = indexed["p90"].reindex(inputs.index)
        points = [
            {
                "ts": ts.to_pydatetime().astimezone(zone),
                "p50": float(value),
                "p10": None if low is None or pd.isna(low.iloc[i]) else float(low.iloc[i]),
                "p90": None if high is None or pd.isna(high.iloc[i]) else float(high.iloc[i]),
            }
            for i, (ts, value) in enumerate(zip(inputs.index, inputs[name], strict=True))
        ]
        series.append({"name": name, "method": latest.methods.get(name, ""), "points": points})
    document = {
        "site_id": site_id, "plan_id": latest.plan_id, "plan_status": latest.status,
        "issued_at": latest.issued_at.astimezone(zone), "notes": latest.notes,
        "band_coverage": latest.band_coverage, "series": series,
    }  # fmt: skip
    return Response(
        pydantic_core.to_json(document, inf_nan_mode="null"), media_type="application/json"
    )


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
            PlanningConfig.of(settings).forecast,
        )
    except UnknownSiteError as exc:
        field = "meter" if str(exc).startswith("meter") else "site_id"
        raise bad_input("query" if field == "meter" else "path", field, str(exc)) from None
    body = pydantic_core.to_json(backtest_document(result), inf_nan_mode="null")
    return Response(body, media_type="application/json")
