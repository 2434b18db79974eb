"""Green certificates and contracts of a site, and their retirement; a key sees its subtree only.

Listing needs any key; registering and retiring need manager or above. Every write records the
key as `recorded_by`; nothing is ever edited.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from energyhub.api.deps import ConnDep, CurrentKey, SitePath, StateDep, require_role
from energyhub.api.errors import bad_input, not_found, responses
from energyhub.api.keys import ApiKey
from energyhub.api.scope import site_access, subtree
from energyhub.carbon.asset_errors import AssetInputError, UnknownEntryError
from energyhub.carbon.instruments import (
    CertificateIn,
    ContractIn,
    InstrumentPublic,
    RetirementBody,
    RetirementIn,
    add_certificates,
    add_contract,
    instrument_list,
    retire,
)

router = APIRouter(
    prefix="/carbon", tags=["carbon assets"], responses=responses(401, 404, 422, 503)
)


class Created(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int


def recorder(key: ApiKey) -> str:
    """Who an API write is recorded as: the key's id, prefix and name."""
    name = f" ({key.name})" if key.name else ""
    return f"key:{key.id} {key.prefix}{name}"


def asset_error(exc: AssetInputError) -> Exception:
    return bad_input("body", exc.field, exc.reason)


@router.get(
    "/{site_id}/instruments",
    response_model=list[InstrumentPublic],
    summary="Green certificates and contracts a site and its parts hold",
)
async def list_instruments(
    site_id: SitePath, conn: ConnDep, key: CurrentKey
) -> list[InstrumentPublic]:
    """Oldest first, each with its source, serials, MWh and what is retired of it."""
    await site_access(conn, key, site_id)
    return await instrument_list(conn, site_id)


@router.post(
    "/{site_id}/certificates",
    status_code=201,
    response_model=Created,
    responses=responses(403),
    summary="Register a block of green certificates",
)
async def create_certificates(
    site_id: SitePath, body: CertificateIn, conn: ConnDep, key: CurrentKey
) -> Created:
    """One certificate per MWh, serials inclusive; refused if any serial is already held."""
    await site_access(conn, key, site_id)
    require_role(key, "manager", "register certificates")
    try:
        return Created(id=await add_certificates(conn, site_id, body, recorder(key)))
    except AssetInputError as exc:
        raise asset_error(exc) from None


@router.post(
    "/{site_id}/contracts",
    status_code=201,
    response_model=Created,
    responses=responses(403),
    summary="Register a green-power contract",
)
async def create_contract(
    site_id: SitePath, body: ContractIn, conn: ConnDep, key: CurrentKey
) -> Created:
    """MWh delivered over a period at the supplier's emission factor."""
    await site_access(conn, key, site_id)
    require_role(key, "manager", "register contracts")
    try:
        return Created(id=await add_contract(conn, site_id, body, recorder(key)))
    except AssetInputError as exc:
        raise asset_error(exc) from None


@router.post(
    "/{site_id}/retirements",
    status_code=201,
    response_model=Created,
    responses=responses(403),
    summary="Retire certificates or claim contract MWh for a site and period",
)
async def create_retirement(
    site_id: SitePath,
    body: RetirementBody,
    conn: ConnDep,
    key: CurrentKey,
    state: StateDep,
    response: Response,
) -> Created:
    """Once, for good: a serial retired anywhere in the city is refused here."""
    await site_access(conn, key, site_id)
    require_role(key, "manager", "retire certificates")
    visible = {row.id for row in await subtree(conn, key.site_id)}
    retirement = RetirementIn(site_id=site_id, **body.model_dump())
    try:
        done = await retire(conn, state.backend, retirement, recorder(key), visible)
    except UnknownEntryError as exc:
        raise not_found(f"instrument {exc.entry_id}") from None
    except AssetInputError as exc:
        raise asset_error(exc) from None
    response.headers["Location"] = f"/carbon/{site_id}"
    return Created(id=done)
