"""An account's compliance position for a year: holdings against emissions, valued at a price.

position_t = allowances held + usable CCERs − emissions not yet surrendered for, where emissions
are the verified figure once recorded, else the carbon accounting of the year (Scope 1 + 2 or
Scope 1, as the scheme covers) — projected to the year's end at the rate so far while the year
runs. CCERs count up to the scheme's offset share of the emissions. The price is the latest of
the scheme's price series on or before the day asked for; a shortfall's closing cost is the
shortfall at that price. Warnings start `warn_days` before the surrender date.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.allowances import held_t, scheme_of, surrendered_t, verified_t
from energyhub.carbon.asset_errors import AssetInputError
from energyhub.carbon.errors import NoDataError, NoMetersError
from energyhub.carbon.tree import load_tree
from energyhub.sites import CarbonScheme
from energyhub.store import allowances as store
from energyhub.store.db import Backend

Basis = Literal["verified", "accounted", "projected", "none"]


class Position(BaseModel):
    """Where an account stands for a compliance year on a given day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str
    compliance_year: int
    as_of: date
    scheme: str
    allowances_held_t: float
    ccer_held_t: float
    ccer_usable_t: float = Field(description="CCERs within the offset share, not yet used.")
    surrendered_t: float
    emissions_t: float | None
    emissions_basis: Basis
    obligation_t: float | None = Field(description="Emissions not yet surrendered for.")
    position_t: float | None = Field(description="Holdings − obligation; negative: shortfall.")
    price_cny_per_t: float | None
    price_day: date | None
    price_series: str | None
    holdings_cny: float | None = Field(description="Allowances and CCERs held, at the price.")
    position_cny: float | None
    shortfall_cost_cny: float | None = Field(description="Buying the shortfall at the price.")
    surrender_due: date
    days_to_surrender: int
    warnings: list[str]


def _due(scheme: CarbonScheme, year: int) -> date:
    month, day = (int(part) for part in scheme.surrender_due.split("-"))
    return date(year + 1, month, day)


async def _emissions_t(
    conn: AsyncConnection,
    backend: Backend,
    account_id: str,
    year: int,
    as_of: date,
    scheme: CarbonScheme,
) -> tuple[float | None, Basis]:
    """The year's emissions from the accounting, projected while the year runs."""
    tree = await load_tree(conn)
    zone = ZoneInfo(tree.timezone(account_id))
    start = datetime(year, 1, 1, tzinfo=zone)
    year_end = datetime(year + 1, 1, 1, tzinfo=zone)
    end = min(year_end, datetime.combine(as_of + timedelta(days=1), datetime.min.time(), zone))
    if end <= start:
        return None, "none"
    try:
        report = await carbon_report(conn, backend, account_id, start, end)
    except (NoDataError, NoMetersError):
        return None, "none"
    kg = report.scope1_kg if scheme.covers == "scope1" else report.total_kg
    if end >= year_end:
        return kg / 1000.0, "accounted"
    return kg / 1000.0 * ((year_end - start) / (end - start)), "projected"


async def position(
    conn: AsyncConnection, backend: Backend, account_id: str, year: int, as_of: date
) -> Position:
    """The account's position for `year` on `as_of` (see the module docstring)."""
    if not date(2000, 1, 1) <= as_of <= date(2100, 12, 31):
        raise AssetInputError("as_of", f"must lie between 2000 and 2100, got {as_of.isoformat()}")
    scheme = await scheme_of(conn, account_id) or CarbonScheme()
    rows = await store.entries(conn, account_id, year)
    allowances, ccer = held_t(rows, "allowance"), held_t(rows, "ccer")
    surrendered = surrendered_t(rows, "allowance") + surrendered_t(rows, "ccer")
    verified = verified_t(rows)
    if verified is not None:
        emissions: float | None = verified
        basis: Basis = "verified"
    else:
        emissions, basis = await _emissions_t(conn, backend, account_id, year, as_of, scheme)
    obligation = None if emissions is None else max(emissions - surrendered, 0.0)
    usable = 0.0
    if emissions is not None:
        room = scheme.offset_share * emissions - surrendered_t(rows, "ccer")
        usable = max(min(ccer, room), 0.0)
    held = allowances + usable
    standing = None if obligation is None else held - obligation
    price = await store.price_on(conn, scheme.price_series, as_of) if scheme.price_series else None
    value = price[1] if price else None
    due = _due(scheme, year)
    days = (due - as_of).days
    warnings = _warnings(scheme, standing, obligation, basis, value, due, days)
    return Position(
        account_id=account_id,
        compliance_year=year,
        as_of=as_of,
        scheme=scheme.name,
        allowances_held_t=allowances,
        ccer_held_t=ccer,
        ccer_usable_t=usable,
        surrendered_t=surrendered,
        emissions_t=emissions,
        emissions_basis=basis,
        obligation_t=obligation,
        position_t=standing,
        price_cny_per_t=value,
        price_day=price[0] if price else None,
        price_series=scheme.price_series,
        holdings_cny=None if value is None else (allowances + ccer) * value,
        position_cny=None if standing is None or value is None else standing * value,
        shortfall_cost_cny=(
            None if standing is None or value is None else max(-standing, 0.0) * value
        ),
        surrender_due=due,
        days_to_surrender=days,
        warnings=warnings,
    )


def _warnings(
    scheme: CarbonScheme,
    standing: float | None,
    obligation: float | None,
    basis: Basis,
    price: float | None,
    due: date,
    days: int,
) -> list[str]:
    out: list[str] = []
    if standing is None:
        out.append("no emissions for the year yet (no verified entry, no readings)")
    if price is None:
        out.append(
            f"no price: load the series {scheme.price_series or '(none set)'} "
            "with `energyhub carbon price`"
        )
    if obligation and days < 0:
        out.append(f"surrender was due {due.isoformat()}: {obligation:,.1f} t not surrendered")
    elif standing is not None and standing < 0 and days <= scheme.warn_days:
        cost = f", about {-standing * price:,.0f} CNY at {price:g} CNY/t" if price else ""
        out.append(
            f"shortfall of {-standing:,.1f} t with {days} days to the surrender date "
            f"{due.isoformat()}: buy {-standing:,.1f} t{cost}"
        )
    if basis == "projected":
        out.append("emissions are projected from the year so far, not verified")
    return out
