"""Allowances and CCERs of an enterprise or building: ledger entries with their audit trail,
reversals and the compliance position. A key sees the accounts in its subtree only (a tenant's
key its own); reading needs any key, writing manager or above."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict

from energyhub.api.deps import ConnDep, CurrentKey, SitePath, StateDep, require_role
from energyhub.api.errors import bad_input, not_found, responses
from energyhub.api.routes.carbon_assets import Created, recorder
from energyhub.api.scope import site_access
from energyhub.carbon.allowances import (
    EntryIn,
    EntryPublic,
    Text,
    add_entry,
    ledger_entries,
    reverse_entry,
)
from energyhub.carbon.asset_errors import AssetInputError, UnknownEntryError
from energyhub.carbon.position import Position, position

router = APIRouter(
    prefix="/carbon", tags=["carbon assets"], responses=responses(401, 404, 422, 503)
)

EntryPath = Annotated[int, Path(ge=1, le=2**62, description="A ledger entry id.")]
YearQuery = Annotated[int, Query(ge=2000, le=2100, description="Compliance year.")]


class ReversalCreate(BaseModel):
    """Why an entry is cancelled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: Text


def _refused(exc: AssetInputError, location: str = "body") -> Exception:
    """A 422 naming the field; the account the ledger rules name is this API's path `site_id`."""
    if exc.field == "account":
        return bad_input("path", "site_id", exc.reason)
    return bad_input(location, exc.field, exc.reason)


@router.get(
    "/{site_id}/ledger",
    response_model=list[EntryPublic],
    summary="Allowance and CCER entries of an enterprise or building",
)
async def list_entries(
    site_id: SitePath,
    conn: ConnDep,
    key: CurrentKey,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> list[EntryPublic]:
    """Oldest first, with who recorded each, when and why, and what reverses it."""
    await site_access(conn, key, site_id)
    try:
        return await ledger_entries(conn, site_id, year)
    except AssetInputError as exc:
        raise _refused(exc, "path") from None


@router.post(
    "/{site_id}/ledger",
    status_code=201,
    response_model=Created,
    responses=responses(403),
    summary="Record an allocation, trade, surrender or verified emissions",
)
async def create_entry(
    site_id: SitePath, body: EntryIn, conn: ConnDep, key: CurrentKey, response: Response
) -> Created:
    """A sale or surrender of more than is held, a CCER surrender beyond the offset share or a
    price outside 1-2000 CNY/t is refused naming the field; nothing is written."""
    await site_access(conn, key, site_id)
    require_role(key, "manager", "record ledger entries")
    try:
        done = await add_entry(conn, site_id, body, recorder(key))
    except AssetInputError as exc:
        raise _refused(exc) from None
    response.headers["Location"] = f"/carbon/{site_id}/ledger"
    return Created(id=done)


@router.post(
    "/{site_id}/ledger/{entry_id}/reversal",
    status_code=201,
    response_model=Created,
    responses=responses(403),
    summary="Cancel an entry with a reversing one",
)
async def create_reversal(
    site_id: SitePath, entry_id: EntryPath, body: ReversalCreate, conn: ConnDep, key: CurrentKey
) -> Created:
    """Entries are never edited: a reversal records the negated volume, who and why."""
    await site_access(conn, key, site_id)
    require_role(key, "manager", "reverse ledger entries")
    try:
        return Created(id=await reverse_entry(conn, site_id, entry_id, body.reason, recorder(key)))
    except UnknownEntryError:
        raise not_found(f"ledger entry {entry_id}") from None
    except AssetInputError as exc:
        if exc.field == "entry":  # the entry the path names
            raise _refused(AssetInputError("entry_id", exc.reason), "path") from None
        raise _refused(exc) from None


@router.get(
    "/{site_id}/position",
    response_model=Position,
    summary="Compliance position of a year: holdings against emissions, valued",
)
async def get_position(
    site_id: SitePath,
    year: YearQuery,
    conn: ConnDep,
    key: CurrentKey,
    state: StateDep,
    as_of: Annotated[
        date | None,
        Query(ge=date(2000, 1, 1), le=date(2100, 12, 31), description="Default: today."),
    ] = None,
) -> Position:
    """Holdings − verified (or projected) emissions, the cost of closing a shortfall at the
    scheme's price, and warnings before the surrender date."""
    zone = await site_access(conn, key, site_id)
    day = as_of or datetime.now(zone).date()
    try:
        return await position(conn, state.backend, site_id, year, day)
    except AssetInputError as exc:
        raise _refused(exc, "path") from None
