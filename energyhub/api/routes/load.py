"""Load: power per carrier over any site's subtree, from rollups where the step allows."""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import APIRouter, Query
from fastapi.responses import Response

from energyhub.api.deps import ConnDep, CurrentKey, SitePath, StateDep
from energyhub.api.errors import responses
from energyhub.api.limits import window
from energyhub.api.schemas.common import CSV_RESPONSE, Time
from energyhub.api.schemas.load import LOAD_COLUMNS, LoadPointPublic, LoadPublic, Step
from energyhub.api.scope import site_access
from energyhub.api.views import frame_csv
from energyhub.store.queries import STEPS, site_series

router = APIRouter(prefix="/sites", tags=["load"], responses=responses(401, 404, 422, 503))

CARRIER_COLUMNS = {column.removesuffix("_kw"): column for column in LOAD_COLUMNS}


def load_frame(series: pd.DataFrame, zone: ZoneInfo) -> pd.DataFrame:
    """bucket × carrier rows as one row per bucket (local time) and one column per carrier."""
    wide = series.pivot(index="bucket", columns="carrier", values="power_kw")
    wide = wide.rename(columns=CARRIER_COLUMNS).reindex(columns=list(LOAD_COLUMNS))
    wide.index = pd.DatetimeIndex(wide.index).tz_convert(zone)
    return wide.astype("float64")


@router.get(
    "/{site_id}/load",
    response_model=LoadPublic,
    responses=CSV_RESPONSE,
    summary="Power per carrier over a site's subtree",
)
async def site_load(
    site_id: SitePath,
    conn: ConnDep,
    key: CurrentKey,
    state: StateDep,
    start: Annotated[Time | None, Query(description="Default: end − 24 h.")] = None,
    end: Annotated[
        Time | None, Query(description="Exclusive. Default: start + 24 h, or now.")
    ] = None,
    step: Annotated[Step, Query(description="Bucket length.")] = "15m",
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> LoadPublic | Response:
    """Average kW per step of electricity, heat, cooling, gas (top-level meters) and PV.

    Sub-meters are not added to their parents again; an enterprise sums its own sub-meters.
    Buckets with no reading are absent; a carrier with no meter reporting is null.
    """
    zone = await site_access(conn, key, site_id)
    step_td = STEPS[step]
    lo, hi = window(start, end, step_td, state.settings)
    series = await site_series(conn, state.backend, site_id, lo, hi, step_td, zone.key)
    frame = load_frame(series, zone)
    if format == "csv":
        return Response(frame_csv(frame), media_type="text/csv")
    points = [
        LoadPointPublic.model_validate(
            {"ts": ts, **{str(k): None if pd.isna(v) else float(v) for k, v in row.items()}}
        )
        for ts, row in zip(frame.index, frame.to_dict("records"), strict=True)
    ]
    return LoadPublic(
        site_id=site_id,
        step=step,
        start=lo.astimezone(zone),
        end=hi.astimezone(zone),
        points=points,
    )
