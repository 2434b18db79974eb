"""Load: power per carrier over any site's subtree, from rollups where the step allows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import pydantic_core
from fastapi import APIRouter, Query
from fastapi.responses import Response

from energyhub.api.deps import DbDep, SiteKey, SitePath, StateDep
from energyhub.api.errors import responses
from energyhub.api.limits import window
from energyhub.api.schemas.common import CSV_RESPONSE, Time
from energyhub.api.schemas.load import LOAD_COLUMNS, LoadPointPublic, LoadPublic, Step
from energyhub.store.db import Backend
from energyhub.store.queries import (
    SITE_LOAD_TABLES,
    STEPS,
    SeriesRow,
    load_meter_count,
    site_series_rows,
    window_coverage,
)

router = APIRouter(prefix="/sites", tags=["load"], responses=responses(401, 404, 422, 503))

CARRIER_COLUMNS = {column.removesuffix("_kw"): column for column in LOAD_COLUMNS}


def point_dicts(rows: list[SeriesRow], zone: ZoneInfo) -> list[dict[str, object]]:
    """bucket × carrier rows (bucket order) as one point per bucket, in the site's local time:
    LoadPointPublic's fields in its order, as plain dicts (no validation: a float or None each)."""
    by_bucket: dict[datetime, dict[str, object]] = {}
    empty = dict.fromkeys(LOAD_COLUMNS)
    for bucket, carrier, power_kw, *_ in rows:
        column = CARRIER_COLUMNS.get(carrier)
        if column is None:
            continue
        point = by_bucket.get(bucket)
        if point is None:
            point = by_bucket[bucket] = {"ts": bucket.astimezone(zone), **empty}
        point[column] = power_kw
    return list(by_bucket.values())


def energy_by_carrier(rows: list[SeriesRow]) -> dict[str, float]:
    """Each carrier's energy over the rows (carriers with no known energy left out)."""
    energy: dict[str, float] = {}
    for _, carrier, _, kwh, _ in rows:
        if kwh is not None and carrier in CARRIER_COLUMNS:
            energy[carrier] = energy.get(carrier, 0.0) + kwh
    return energy


def load_points(rows: list[SeriesRow], zone: ZoneInfo) -> list[LoadPointPublic]:
    """`point_dicts` as validated models (the CSV and the /ui chart)."""
    return [LoadPointPublic.model_validate(point) for point in point_dicts(rows, zone)]


def points_csv(points: list[LoadPointPublic]) -> str:
    """RFC 3339 `ts`, then a column per carrier; floats as JSON prints them, empty for none."""
    lines = [",".join(("ts", *LOAD_COLUMNS))]
    for point in points:
        values = (getattr(point, column) for column in LOAD_COLUMNS)
        cells = ("" if value is None else repr(value) for value in values)
        lines.append(",".join((point.ts.isoformat(), *cells)))
    return "\n".join(lines) + "\n"


@router.get(
    "/{site_id}/load",
    response_model=LoadPublic,
    responses=CSV_RESPONSE,
    summary="Power per carrier over a site's subtree",
)
async def site_load(
    site_id: SitePath,
    db: DbDep,
    access: SiteKey,
    state: StateDep,
    start: Annotated[Time | None, Query(description="Default: end − 24 h.")] = None,
    end: Annotated[
        Time | None, Query(description="Exclusive. Default: start + 24 h, or now.")
    ] = None,
    step: Annotated[Step, Query(description="Bucket length.")] = "15m",
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Average kW per step of electricity, heat, cooling, gas (top-level meters) and PV, with
    the window's energy per carrier and its coverage.

    kW is the mean of the samples in the step (a counter's energy ÷ the step's hours); energy
    counts only the time readings cover (docs/meter-data.md), the same at every step.

    Sub-meters are not added to their parents again; an enterprise sums its own sub-meters.
    Buckets with no reading are absent; a carrier with no meter reporting is null. Answers are
    reused: at 15m and 1h on plain PostgreSQL until the rollups change in their window (as fresh
    as a query), otherwise within `ENERGYHUB_API_LOAD_CACHE_S` (1 s) of an earlier one's query
    (data committed at time t is in every answer sent after t + that bound).
    """
    zone = await access.zone(db, site_id)
    step_td = STEPS[step]
    lo, hi = window(start, end, step_td, state.settings)
    media_type = "text/csv" if format == "csv" else "application/json"
    cache, request = state.load_cache, (site_id, step, lo, hi, format, zone.key)
    body = cache.get(request)  # after the key and scope checks above, never instead of them
    if body is not None:
        state.metrics.load_cache_hits.inc()
        return Response(body, media_type=media_type)
    state.metrics.load_cache_misses.inc()
    started, generation = cache.now(), cache.generation
    windowed = state.backend is Backend.POSTGRES and step_td in SITE_LOAD_TABLES
    conn = await db.conn()
    rows = await site_series_rows(conn, state.backend, site_id, lo, hi, step_td, zone.key)
    if format == "csv":
        body = points_csv(load_points(rows, zone)).encode()
    else:
        meters = await load_meter_count(conn, site_id, lo, hi)
        document = {
            "site_id": site_id, "step": step, "start": lo.astimezone(zone),
            "end": hi.astimezone(zone), "energy_kwh": energy_by_carrier(rows),
            "coverage": window_coverage(rows, meters, lo, hi),
            "points": point_dicts(rows, zone),
        }  # fmt: skip
        # LoadPublic's JSON, byte for byte, from plain dicts: building a model per point (and
        # FastAPI validating the returned model again) was most of the request's time
        body = pydantic_core.to_json(document, inf_nan_mode="null")
    span = (lo.timestamp(), hi.timestamp()) if windowed else None
    cache.put(request, started, body, span, generation)
    return Response(body, media_type=media_type)
