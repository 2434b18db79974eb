"""Green certificates (绿证) and green-power contracts (绿电) per site, and their retirement.

A certificate is one MWh with a serial number; a block of them is registered as a serial range
held by a site, and retired — once, across the whole city, which the database enforces — against
a site and a period, which its market-based Scope 2 then counts at 0 kg/kWh. A contract is MWh
bought from a named supplier over a delivery period at the supplier's emission factor; claims on
it never exceed its MWh. Each refusal names its field and writes nothing.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg import AsyncConnection
from psycopg.types.range import Range

from energyhub.carbon.asset_errors import AssetInputError, UnknownEntryError
from energyhub.carbon.errors import NoDataError, NoMetersError, PeriodError
from energyhub.carbon.instrument_models import (
    CertificateIn,
    ContractIn,
    InstrumentPublic,
    RetirementBody,
    RetirementIn,
)
from energyhub.carbon.periods import parse_period
from energyhub.carbon.tree import SiteTree, load_tree
from energyhub.store import green
from energyhub.store.db import Backend
from energyhub.store.green import InstrumentRow, serial_range

__all__ = [
    "CertificateIn",
    "ContractIn",
    "InstrumentPublic",
    "RetirementBody",
    "RetirementIn",
    "add_certificates",
    "add_contract",
    "instrument_list",
    "retire",
]


def _check_site(tree: SiteTree, holder: str, site_id: str) -> None:
    if site_id not in tree.sites:
        raise AssetInputError("site_id", f"unknown site {site_id!r}")
    if holder not in {s.id for s in tree.chain(site_id)}:
        raise AssetInputError(
            "site_id",
            f"{site_id!r} is not {holder!r} or below it: an instrument is retired for the "
            "site that holds it or one of its parts",
        )


async def _serials_free(conn: AsyncConnection, registry: str, first: int, last: int) -> None:
    held = await green.registered(conn, registry, first, last)
    if held is not None:
        raise AssetInputError(
            "serial_first",
            f"{registry} {first}-{last} overlaps {held.serial_first}-{held.serial_last}, "
            f"already registered as instrument {held.id} of site {held.site_id!r}",
        )


def _exclusion(field: str, exc: psycopg.errors.ExclusionViolation) -> AssetInputError:
    """The database's own refusal when two writers raced past the checks."""
    detail = exc.diag.message_detail or str(exc)
    return AssetInputError(field, f"serials overlap a range recorded meanwhile: {detail}")


async def add_certificates(
    conn: AsyncConnection, site_id: str, block: CertificateIn, recorded_by: str
) -> int:
    """Register a block of certificates held by `site_id`; returns the instrument id."""
    tree = await load_tree(conn)
    if site_id not in tree.sites:
        raise AssetInputError("site_id", f"unknown site {site_id!r}")
    values = {
        "kind": "certificate",
        "site_id": site_id,
        **block.model_dump(include={"registry", "project", "technology", "location", "vintage"}),
        "serials": serial_range(block.serial_first, block.serial_last),
        "mwh": block.mwh,
        "supplier_kg_per_kwh": None,
        "delivery": None,
        "recorded_by": recorded_by,
        "reason": block.reason,
    }
    async with conn.transaction():
        await _serials_free(conn, block.registry, block.serial_first, block.serial_last)
        try:
            return await green.insert_instrument(conn, values)
        except psycopg.errors.ExclusionViolation as exc:
            raise _exclusion("serial_first", exc) from None


async def add_contract(
    conn: AsyncConnection, site_id: str, contract: ContractIn, recorded_by: str
) -> int:
    """Register a green-power contract held by `site_id`; returns the instrument id."""
    tree = await load_tree(conn)
    if site_id not in tree.sites:
        raise AssetInputError("site_id", f"unknown site {site_id!r}")
    zone = ZoneInfo(tree.timezone(site_id))
    start = datetime.combine(contract.delivery_start, time(), zone)
    end = datetime.combine(contract.delivery_end + timedelta(days=1), time(), zone)
    values = {
        "kind": "contract",
        "site_id": site_id,
        **contract.model_dump(include={"registry", "project", "technology", "location", "vintage"}),
        "serials": None,
        "mwh": contract.mwh,
        "supplier_kg_per_kwh": contract.supplier_kg_per_kwh,
        "delivery": Range(start, end, "[)"),
        "recorded_by": recorded_by,
        "reason": contract.reason,
    }
    async with conn.transaction():
        return await green.insert_instrument(conn, values)


async def _electricity_kwh(
    conn: AsyncConnection, backend: Backend, site_id: str, start: datetime, end: datetime
) -> float:
    """What the site bought in [start, end), 0 without readings."""
    from energyhub.carbon.accounting import carbon_report  # accounting imports market → here

    try:
        report = await carbon_report(conn, backend, site_id, start, end)
    except (NoDataError, NoMetersError):
        return 0.0
    return max(report.energy_kwh.electricity, 0.0)


def _certificate_serials(held: InstrumentRow, retire: RetirementIn) -> tuple[int, int]:
    held_first, held_last = held.serial_first or 0, held.serial_last or 0
    first = held_first if retire.serial_first is None else retire.serial_first
    last = held_last if retire.serial_last is None else retire.serial_last
    if retire.mwh is not None and retire.mwh != last - first + 1:
        raise AssetInputError(
            "mwh", f"{retire.mwh:g} MWh does not match serials {first}-{last} ({last - first + 1})"
        )
    if not held_first <= first <= last <= held_last:
        raise AssetInputError(
            "serial_first",
            f"{first}-{last} is not within instrument {held.id}'s serials "
            f"{held.serial_first}-{held.serial_last}",
        )
    return first, last


async def retire(
    conn: AsyncConnection,
    backend: Backend,
    retirement: RetirementIn,
    recorded_by: str,
    visible: set[str] | None = None,
) -> int:
    """Retire certificates or claim contract MWh for a site and period; returns its id.

    `visible`: the sites the caller may see (API key scope); None: all.
    """
    tree = await load_tree(conn)
    held = await green.instrument(conn, retirement.instrument_id)
    if held is None or (visible is not None and held.site_id not in visible):
        raise UnknownEntryError("instrument", retirement.instrument_id)
    if visible is not None and retirement.site_id not in visible:
        raise AssetInputError("site_id", f"unknown site {retirement.site_id!r}")
    _check_site(tree, held.site_id, retirement.site_id)
    try:
        start, end = parse_period(retirement.period, tree.timezone(retirement.site_id))
    except PeriodError as exc:
        raise AssetInputError("period", str(exc)) from None
    if await _electricity_kwh(conn, backend, retirement.site_id, start, end) <= 0:
        raise AssetInputError(
            "period",
            f"site {retirement.site_id!r} bought no electricity in {retirement.period} "
            "(no readings): there is nothing for the instrument to cover",
        )
    values: dict[str, object] = {
        "instrument_id": held.id,
        "registry": held.registry,
        "site_id": retirement.site_id,
        "period": Range(start, end, "[)"),
        "period_label": retirement.period,
        "recorded_by": recorded_by,
        "reason": retirement.reason,
    }
    async with conn.transaction():
        if held.kind == "certificate":
            first, last = _certificate_serials(held, retirement)
            done = await green.retired(conn, held.registry, first, last)
            if done is not None:
                raise AssetInputError(
                    "serial_first",
                    f"{held.registry} {first}-{last} overlaps {done.serial_first}-"
                    f"{done.serial_last}, already retired (retirement {done.retirement_id}, "
                    f"site {done.site_id!r}, {done.period_label})",
                )
            values |= {"serials": serial_range(first, last), "mwh": last - first + 1}
        else:
            values |= {"serials": None, "mwh": _contract_mwh(held, retirement, start, end)}
        try:
            return await green.insert_retirement(conn, values)
        except psycopg.errors.ExclusionViolation as exc:
            raise _exclusion("serial_first", exc) from None
        except psycopg.errors.CheckViolation as exc:
            raise AssetInputError("mwh", exc.diag.message_primary or str(exc)) from None


def _contract_mwh(
    held: InstrumentRow, retirement: RetirementIn, start: datetime, end: datetime
) -> float:
    if retirement.serial_first is not None or retirement.serial_last is not None:
        raise AssetInputError("serial_first", f"instrument {held.id} is a contract: no serials")
    left = held.mwh - held.retired_mwh
    mwh = left if retirement.mwh is None else retirement.mwh
    if mwh > left + 1e-9 or left <= 0:
        raise AssetInputError(
            "mwh", f"{mwh:g} MWh claimed, contract {held.id} has {max(left, 0):g} MWh left"
        )
    first, after = held.delivery_start or start, held.delivery_end or end
    if not (start < after and first < end):
        last_day = (after - timedelta(seconds=1)).date()
        raise AssetInputError(
            "period",
            f"{retirement.period} lies outside contract {held.id}'s delivery "
            f"{first.date()} to {last_day}",
        )
    return mwh


def _public(row: InstrumentRow, zone: ZoneInfo) -> InstrumentPublic:
    last = row.delivery_end - timedelta(seconds=1) if row.delivery_end else None
    return InstrumentPublic(
        id=row.id,
        kind="certificate" if row.kind == "certificate" else "contract",
        site_id=row.site_id,
        registry=row.registry,
        project=row.project,
        technology=row.technology,
        location=row.location,
        vintage=row.vintage,
        serials=None if row.serial_first is None else f"{row.serial_first}-{row.serial_last}",
        mwh=row.mwh,
        retired_mwh=row.retired_mwh,
        supplier_kg_per_kwh=row.supplier_kg_per_kwh,
        delivery_start=row.delivery_start.astimezone(zone).date() if row.delivery_start else None,
        delivery_end=last.astimezone(zone).date() if last else None,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
        reason=row.reason,
    )


async def instrument_list(conn: AsyncConnection, site_id: str) -> list[InstrumentPublic]:
    """The instruments the site and its parts hold, oldest first."""
    tree = await load_tree(conn)
    zone = ZoneInfo(tree.timezone(site_id))
    rows = await green.instruments(conn, [s.id for s in tree.subtree(site_id)])
    return [_public(row, zone) for row in rows]
