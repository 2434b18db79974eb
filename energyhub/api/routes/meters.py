"""Meters: one meter, its latest value, its raw readings paged with a cursor."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from energyhub.api.deps import DbDep, MeterKey, StateDep
from energyhub.api.errors import bad_input, not_found, responses
from energyhub.api.limits import window
from energyhub.api.schemas.common import Int4Id, Time
from energyhub.api.schemas.meters import LatestPublic, ReadingPublic, ReadingsPublic
from energyhub.api.schemas.sites import MeterPublic
from energyhub.store.queries import meter_readings

router = APIRouter(prefix="/meters", tags=["meters"], responses=responses(401, 404, 422, 503))

MeterPath = Annotated[Int4Id, Path(description="A meter id.", examples=[17])]


@router.get("/{meter_id}", response_model=MeterPublic, summary="One meter")
async def get_meter(meter_id: MeterPath, db: DbDep, access: MeterKey) -> MeterPublic:
    meter, _ = await access.row(db, meter_id)
    return MeterPublic.model_validate(meter, from_attributes=True)


@router.get("/{meter_id}/latest", response_model=LatestPublic, summary="The newest reading")
async def latest(meter_id: MeterPath, db: DbDep, access: MeterKey) -> Response:
    meter, zone = await access.row(db, meter_id)
    ts, value = await access.latest(db, meter)
    if ts is None or value is None:
        raise not_found(f"reading of meter {meter_id} yet")
    age_s = (datetime.now(UTC) - ts).total_seconds()
    body = LatestPublic.model_validate(
        {"meter_id": meter_id, "quantity": meter.quantity, "ts": ts.astimezone(zone),
         "value": value, "age_s": age_s}
    )  # fmt: skip
    # serialized here: returned as a model, FastAPI would validate it a second time
    return Response(body.model_dump_json(), media_type="application/json")


def encode_cursor(ts: datetime) -> str:
    return base64.urlsafe_b64encode(ts.isoformat().encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> datetime:
    """The last timestamp of the previous page; 422 naming `cursor` if it is not ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts = datetime.fromisoformat(text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_input("query", "cursor", "not a cursor this API gave out") from None
    if ts.tzinfo is None:
        raise bad_input("query", "cursor", "not a cursor this API gave out")
    return ts


@router.get("/{meter_id}/readings", response_model=ReadingsPublic, summary="Raw readings, paged")
async def readings(
    meter_id: MeterPath,
    db: DbDep,
    access: MeterKey,
    state: StateDep,
    start: Annotated[Time | None, Query(description="Default: end − 24 h.")] = None,
    end: Annotated[
        Time | None, Query(description="Exclusive. Default: start + 24 h, or now.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000, description="Readings per page.")] = 1000,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor`.")] = None,
) -> ReadingsPublic:
    """Readings as stored (the meter's quantity), oldest first; follow `next_cursor` to page."""
    meter, zone = await access.row(db, meter_id)
    if limit > state.settings.api_max_points:
        raise bad_input(
            "query",
            "limit",
            f"at most {state.settings.api_max_points} readings per page "
            "(ENERGYHUB_API_MAX_POINTS): follow next_cursor for more",
        )
    lo, hi = window(start, end, None, state.settings)
    after = decode_cursor(cursor) if cursor else None
    rows = await meter_readings(await db.conn(), meter_id, lo, hi, after, limit + 1)
    page = [ReadingPublic(ts=ts.astimezone(zone), value=value) for ts, value in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
    return ReadingsPublic(
        meter_id=meter_id, quantity=meter.quantity, readings=page, next_cursor=next_cursor
    )
