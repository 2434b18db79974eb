"""The carbon price a building's plan uses, from its allowance position (`carbon_scheme.plan_price:
position`): a shortfall is closed at the market price, so each kg emitted costs that; with a
surplus a kg emitted costs nothing (`surplus_price: zero`) or the allowance it could have been sold
as (`sale`: the last sale price, else the market price). Without a position or a price the site
file's price stays, and the plan's warnings say why.

`allowance_price` is the price a plan's frontier is weighed against on the plan page: a frontier
step that abates below it is cheaper than buying allowances for the same tonnes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict

from energyhub.carbon.allowances import scheme_of
from energyhub.carbon.position import position
from energyhub.sites import Building, Enterprise, SiteFile
from energyhub.store import allowances as store
from energyhub.store.db import Backend

Basis = Literal["shortfall", "surplus-zero", "surplus-sale", "site-file"]


class PlanPrice(BaseModel):
    """The carbon price for a plan and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str
    compliance_year: int
    price_cny_per_t: float | None
    basis: Basis
    position_t: float | None
    reason: str


async def _last_sale_price(conn: AsyncConnection, account_id: str, year: int) -> float | None:
    rows = await store.entries(conn, account_id, year)
    sales = [
        r
        for r in rows
        if r.kind == "sale" and r.reverses is None and r.reversed_by is None
        and r.instrument == "allowance" and r.price_cny_per_t is not None
    ]  # fmt: skip
    if not sales:
        return None
    latest = max(sales, key=lambda r: (r.entry_date, r.id))
    return latest.price_cny_per_t


async def plan_carbon_price(
    conn: AsyncConnection, backend: Backend, account_id: str, as_of: date
) -> PlanPrice | None:
    """The position-based price for the account's compliance year of `as_of`; None unless its
    scheme asks for it."""
    scheme = await scheme_of(conn, account_id)
    if scheme is None or scheme.plan_price != "position":
        return None
    year = as_of.year
    found = await position(conn, backend, account_id, year, as_of)
    standing, market = found.position_t, found.price_cny_per_t

    def answer(price: float | None, basis: Basis, reason: str) -> PlanPrice:
        return PlanPrice(
            account_id=account_id,
            compliance_year=year,
            price_cny_per_t=price,
            basis=basis,
            position_t=standing,
            reason=reason,
        )

    if standing is None:
        return answer(None, "site-file", "no emissions for the year yet: the site file's price")
    if standing < 0:
        if market is None:
            return answer(None, "site-file", f"shortfall of {-standing:,.1f} t but no market price")
        return answer(market, "shortfall", f"shortfall of {-standing:,.1f} t: market price")
    if scheme.surplus_price == "zero":
        return answer(0.0, "surplus-zero", f"surplus of {standing:,.1f} t: no carbon price")
    sale = await _last_sale_price(conn, account_id, year)
    if sale is not None:
        return answer(sale, "surplus-sale", f"surplus of {standing:,.1f} t: the last sale price")
    if market is None:
        return answer(None, "site-file", f"surplus of {standing:,.1f} t, no sale or market price")
    return answer(market, "surplus-sale", f"surplus of {standing:,.1f} t, no sale: market price")


async def with_position_price(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    level: str,
    site_id: str,
    start: datetime,
) -> tuple[SiteFile, list[str]]:
    """The site file a building's plan is solved with, carbon priced from its position, and a
    warning line saying so (unchanged for parks, cities and buildings without the setting)."""
    found = site.find_building(site_id) if level == "building" else None
    if found is None or found[1].carbon_scheme is None:
        return site, []
    day = start.astimezone(ZoneInfo(site.timezone)).date()
    decision = await plan_carbon_price(conn, backend, site_id, day)
    if decision is None:
        return site, []
    if decision.price_cny_per_t is None:
        return site, [f"carbon price: {decision.reason}"]
    carbon = site.city.carbon.model_copy(update={"price_cny_per_t": decision.price_cny_per_t})
    priced = site.model_copy(update={"city": site.city.model_copy(update={"carbon": carbon})})
    note = f"carbon price {decision.price_cny_per_t:g} CNY/t from the allowance position: "
    return priced, [note + decision.reason]


class AllowancePrice(BaseModel):
    """A price series' latest allowance price on or before a day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    series: str
    day: date
    price_cny_per_t: float


def price_series_of(site: SiteFile, site_id: str) -> str | None:
    """The price series of the site's own `carbon_scheme`, else the one series the schemes of the
    buildings and enterprises inside it share; None without any, or with several."""
    inside = {site_id}
    own: str | None = None
    below: set[str] = set()
    for node in site.nodes():
        if node.id != site_id and node.parent_id not in inside:
            continue
        inside.add(node.id)
        if not isinstance(node.model, Building | Enterprise) or node.model.carbon_scheme is None:
            continue
        series = node.model.carbon_scheme.price_series
        if node.id == site_id:
            own = series
        elif series is not None:
            below.add(series)
    if own is not None:
        return own
    return next(iter(below)) if len(below) == 1 else None


async def allowance_price(
    conn: AsyncConnection, site: SiteFile, site_id: str, day: date
) -> AllowancePrice | None:
    """The allowance price a plan of `site_id` starting on `day` is weighed against, if any."""
    series = price_series_of(site, site_id)
    if series is None:
        return None
    found = await store.price_on(conn, series, day)
    if found is None:
        return None
    return AllowancePrice(series=series, day=found[0], price_cny_per_t=found[1])
