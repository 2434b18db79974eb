"""The site tree and meters as stored by `sites load`, read once per report and typed at the edge.

Which meters a site's accounting reads, and how (`MeterRole`):

- A building's top-level meters without `asset` measure what it draws: electricity (purchased;
  its own PV is behind this meter), heat, cooling, gas. Sub-meters are part of their parent.
- A park's own top-level meters sit on the park network: a consumer's electricity adds to what
  the park buys, a generator's (CHP, fuel cell, wind, central PV) is subtracted from it — its
  buildings' draw includes what park generation supplied. Gas meters are Scope 1 with or without
  `asset` (a CHP's fuel); heat and cooling an asset produces are already counted in its inputs.
- A park with a main electricity meter of its own (`energyhub.store.queries.PARK_MAINS`) has its
  shared assets behind it: its generators and asset meters add no electricity. Measured at its
  connection, it buys what that meter reads: each building's main is taken off the park's own
  share (`connection_share`), so its buildings' lines and the park's own add up to the connection.
- PV meters are reported as generation wherever they are, and a building's generator meters too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from energyhub.carbon.errors import UnknownSiteError
from energyhub.carbon.factors import SiteFactors, choose_year, resolve
from energyhub.errors import StoredSiteError
from energyhub.sites import (
    CarbonFactors,
    CarbonOverride,
    GasSupply,
    GridConnection,
    SiteKind,
)
from energyhub.store.queries import park_mains, retired_connections

GENERATORS = frozenset({"chp", "fuel_cell", "wind", "pv"})
"""Asset types whose electricity meter reads what they supply."""
HEAT_PRODUCERS = frozenset({"heat_pump", "gas_boiler", "electric_boiler", "chp", "fuel_cell"})
"""Asset types that make heat on site: a heat meter beside them measures their output."""
COMBUSTION = frozenset({"gas_boiler", "chp"})
ENERGY_CARRIERS = ("electricity", "heat", "cooling", "gas", "pv")

SITES = "SELECT id, kind, parent_id, name, attributes FROM sites"
METERS = """
SELECT id, site_id, name, carrier, quantity, parent_meter_id IS NULL, asset_id FROM meters
WHERE site_id = ANY(%(sites)s) AND quantity IN ('power_kw', 'energy_kwh')
  AND carrier = ANY(%(carriers)s)"""
TENANT_METERS = """
SELECT em.enterprise_id, m.id, m.site_id, m.name, m.carrier, m.quantity,
       m.parent_meter_id IS NULL, m.asset_id
FROM enterprise_meters AS em JOIN meters AS m ON m.id = em.meter_id
WHERE m.site_id = ANY(%(sites)s) AND m.quantity IN ('power_kw', 'energy_kwh')
  AND m.carrier = ANY(%(carriers)s)"""


class _Attributes(BaseModel):
    """The keys of a stored site's attributes that accounting reads; the rest is ignored."""

    model_config = ConfigDict(extra="ignore")

    floor_area_m2: float | None = None
    carbon: dict[str, Any] | None = None
    carbon_target_kg_per_year: float | None = None
    grid: GridConnection | None = None
    gas: GasSupply | None = None
    assets: list[dict[str, Any]] = Field(default_factory=list)
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """One stored site with the attributes accounting needs."""

    id: str
    kind: SiteKind
    parent_id: str | None
    name: str | None
    floor_area_m2: float | None
    city_carbon: CarbonFactors | None
    carbon: CarbonOverride | None
    target_kg_per_year: float | None
    grid: GridConnection | None
    gas: GasSupply | None
    asset_types: dict[str, str]
    timezone: str


@dataclass(frozen=True, slots=True)
class MeterInfo:
    id: int
    site_id: str
    name: str
    carrier: str
    quantity: str
    top_level: bool
    asset_id: str | None

    @property
    def label(self) -> str:
        return f"{self.site_id}/{self.name}"


@dataclass(frozen=True, slots=True)
class MeterRole:
    """kWh multipliers of one meter into the ledger's energy columns."""

    electricity: float = 0.0
    heat: float = 0.0
    cooling: float = 0.0
    gas: float = 0.0
    pv: float = 0.0
    generation: float = 0.0
    heat_purchased: bool = False
    cooling_purchased: bool = False
    since: datetime | None = None
    """The role holds for readings from this time on (None: from the start)."""
    until: datetime | None = None
    """... and before this time (None: to the end)."""


def _site(row: tuple[Any, ...]) -> SiteInfo:
    site_id, kind, parent_id, name, raw = row
    try:
        attributes = _Attributes.model_validate(raw or {})
        carbon = attributes.carbon
        city_carbon = CarbonFactors.model_validate(carbon or {}) if kind == "city" else None
        override = CarbonOverride.model_validate(carbon) if carbon and kind != "city" else None
    except ValidationError as exc:  # a traceback (500) for every report until it is reloaded
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise StoredSiteError(
            f"site {site_id!r}: its stored {where or 'attributes'} "
            f"({str(first['msg']).removeprefix('Value error, ')}, got {first['input']!r:.40}) "
            "was taken by an older version; load its site file again (`energyhub sites "
            "load`), which names what to change"
        ) from None
    return SiteInfo(
        id=site_id,
        kind=kind,
        parent_id=parent_id,
        name=name,
        floor_area_m2=attributes.floor_area_m2,
        city_carbon=city_carbon,
        carbon=override,
        target_kg_per_year=attributes.carbon_target_kg_per_year,
        grid=attributes.grid,
        gas=attributes.gas,
        asset_types={str(a["id"]): str(a["type"]) for a in attributes.assets},
        timezone=attributes.timezone,
    )


@dataclass
class SiteTree:
    """Every stored site by id, with children in load order."""

    sites: dict[str, SiteInfo]
    children: dict[str, list[str]] = field(default_factory=dict)
    mains: dict[str, bool] = field(default_factory=dict)
    """Parks with a main electricity meter of their own → measured at their connection."""
    retired: dict[str, datetime] = field(default_factory=dict)
    """Parks once measured at their connection by main meters now all retired → the end of their
    readings (`energyhub.store.queries.RETIRED_CONNECTIONS`): before it, the park is read as
    measured at its connection, after it as a park without a main meter."""

    def get(self, site_id: str) -> SiteInfo:
        try:
            return self.sites[site_id]
        except KeyError:
            raise UnknownSiteError(site_id) from None

    def chain(self, site_id: str) -> list[SiteInfo]:
        """The site's ancestors from the city down to the site itself."""
        chain = [self.get(site_id)]
        while chain[-1].parent_id is not None:
            chain.append(self.get(chain[-1].parent_id))
        return chain[::-1]

    def subtree(self, site_id: str) -> Iterator[SiteInfo]:
        """The site and every site below it, parents first."""
        yield self.get(site_id)
        for child in self.children.get(site_id, []):
            yield from self.subtree(child)

    def kids(self, site_id: str, kind: SiteKind) -> list[SiteInfo]:
        return [self.sites[c] for c in self.children.get(site_id, []) if self.sites[c].kind == kind]

    def park_of(self, site_id: str) -> SiteInfo | None:
        return next((s for s in self.chain(site_id) if s.kind == "park"), None)

    def timezone(self, site_id: str) -> str:
        return self.chain(site_id)[0].timezone

    def factors(self, site_id: str, year: int, explicit: bool) -> SiteFactors:
        """The site's emission factors for a period of `year` (see carbon/factors.py)."""
        chain = self.chain(site_id)
        city = chain[0].city_carbon or CarbonFactors()
        overrides = [s.carbon for s in chain[1:] if s.carbon is not None]
        labels = [chain[0].id, *(s.id for s in chain[1:] if s.carbon is not None)]
        return resolve(city, overrides, choose_year([city, *overrides], year, explicit), labels)

    def grid_connection(self, site_id: str) -> GridConnection | None:
        """The nearest grid connection (a building's own, else its park's) for tariffs."""
        return next((s.grid for s in reversed(self.chain(site_id)) if s.grid), None)

    def heat_purchased(self, site_id: str) -> bool:
        """Whether heat metered at this site is bought (Scope 2) rather than made on site."""
        chain = [s for s in self.chain(site_id) if s.kind in ("park", "building")]
        declared = [s.carbon.heat_purchased for s in chain if s.carbon is not None]
        explicit = [d for d in declared if d is not None]
        if explicit:
            return explicit[-1]
        return not any(HEAT_PRODUCERS & set(s.asset_types.values()) for s in chain)

    def cooling_purchased(self, site_id: str) -> bool:
        """Whether cooling metered at this site is bought district cooling (Scope 2)."""
        chain = [s for s in self.chain(site_id) if s.kind in ("park", "building")]
        declared = [s.carbon.cooling_purchased for s in chain if s.carbon is not None]
        explicit = [d for d in declared if d is not None]
        return bool(explicit[-1]) if explicit else False

    def asset_type(self, site_id: str, asset_id: str) -> str | None:
        """The type of an asset of the site or its park."""
        for site in reversed(self.chain(site_id)):
            if asset_id in site.asset_types:
                return site.asset_types[asset_id]
        return None


async def load_tree(conn: AsyncConnection) -> SiteTree:
    """Every stored site, typed."""
    cur = await conn.execute(SITES + " ORDER BY id")
    tree = SiteTree({})
    for row in await cur.fetchall():
        site = _site(tuple(row))
        tree.sites[site.id] = site
        if site.parent_id is not None:
            tree.children.setdefault(site.parent_id, []).append(site.id)
    tree.mains = await park_mains(conn)
    tree.retired = await retired_connections(conn)
    return tree


def _meter(row: tuple[Any, ...]) -> MeterInfo:
    meter_id, site_id, name, carrier, quantity, top_level, asset_id = row
    return MeterInfo(int(meter_id), site_id, name, carrier, quantity, bool(top_level), asset_id)


async def site_meters(conn: AsyncConnection, site_ids: list[str]) -> list[MeterInfo]:
    """The energy meters (power or counters) that belong to these sites."""
    cur = await conn.execute(METERS, {"sites": site_ids, "carriers": list(ENERGY_CARRIERS)})
    return [_meter(tuple(row)) for row in await cur.fetchall()]


async def tenant_meters(conn: AsyncConnection, site_ids: list[str]) -> list[tuple[str, MeterInfo]]:
    """(enterprise, meter) for every tenant sub-meter located at these sites."""
    cur = await conn.execute(TENANT_METERS, {"sites": site_ids, "carriers": list(ENERGY_CARRIERS)})
    return [(row[0], _meter(tuple(row[1:]))) for row in await cur.fetchall()]


def site_role(tree: SiteTree, meter: MeterInfo) -> MeterRole | None:
    """How a meter counts for the site that owns it; None when it is part of another meter."""
    owner = tree.get(meter.site_id)
    on_park = owner.kind == "park" and meter.top_level
    beside = on_park and owner.id not in tree.mains  # else the park's main meter nets it
    asset = tree.asset_type(meter.site_id, meter.asset_id) if meter.asset_id else None
    if meter.carrier == "pv":
        return MeterRole(pv=1.0, electricity=-1.0 if beside else 0.0)
    if meter.carrier == "gas":
        return MeterRole(gas=1.0) if meter.top_level else None
    if meter.carrier == "electricity" and asset in GENERATORS:
        return MeterRole(generation=1.0, electricity=-1.0 if beside else 0.0)
    if meter.carrier == "electricity" and meter.asset_id is not None:
        return MeterRole(electricity=1.0) if beside else None
    if not meter.top_level or meter.asset_id is not None:
        return None
    if meter.carrier == "electricity":
        return MeterRole(electricity=1.0)
    if meter.carrier == "heat":
        return MeterRole(heat=1.0, heat_purchased=tree.heat_purchased(meter.site_id))
    return MeterRole(cooling=1.0, cooling_purchased=tree.cooling_purchased(meter.site_id))


def timed_roles(tree: SiteTree, meter: MeterInfo) -> list[MeterRole]:
    """`site_role` over time: in a park whose connection meters are retired (`SiteTree.retired`),
    a park meter read one way while they measured and another after (its shared assets behind
    them, then beside its buildings) has two roles, one before their end and one after."""
    now = site_role(tree, meter)
    owner = tree.get(meter.site_id)
    end = tree.retired.get(owner.id) if owner.kind == "park" else None
    if end is None:
        return [now] if now is not None else []
    before = site_role(replace(tree, mains={**tree.mains, owner.id: True}), meter)
    if before == now:
        return [now] if now is not None else []
    timed = (
        None if before is None else replace(before, until=end),
        None if now is None else replace(now, since=end),
    )
    return [role for role in timed if role is not None]


def connection_share(tree: SiteTree, meter: MeterInfo) -> tuple[MeterInfo, MeterRole] | None:
    """A building's main electricity meter in a park measured at its connection, taken off the
    park's own share of a park or city report (the building's line keeps it); in a park whose
    connection meters are retired, for the readings before their end; None otherwise."""
    owner = tree.get(meter.site_id)
    main = meter.carrier == "electricity" and meter.top_level and meter.asset_id is None
    park = owner.parent_id if owner.kind == "building" else None
    if not main or park is None:
        return None
    if tree.mains.get(park):
        return replace(meter, site_id=park), MeterRole(electricity=-1.0)
    if park in tree.retired:
        return replace(meter, site_id=park), MeterRole(electricity=-1.0, until=tree.retired[park])
    return None


def tenant_role(tree: SiteTree, meter: MeterInfo) -> MeterRole:
    """A tenant's sub-meter counts by its carrier, whatever its place in the meter tree."""
    if meter.carrier == "heat":
        return MeterRole(heat=1.0, heat_purchased=tree.heat_purchased(meter.site_id))
    return MeterRole(
        electricity=float(meter.carrier == "electricity"),
        cooling=float(meter.carrier == "cooling"),
        gas=float(meter.carrier == "gas"),
        pv=float(meter.carrier == "pv"),
        cooling_purchased=meter.carrier == "cooling" and tree.cooling_purchased(meter.site_id),
    )


async def enterprise_buildings(conn: AsyncConnection, tree: SiteTree, site: SiteInfo) -> list[str]:
    """The buildings an enterprise is in: where it is declared and where its sub-meters are."""
    cur = await conn.execute(
        "SELECT DISTINCT m.site_id FROM enterprise_meters AS em "
        "JOIN meters AS m ON m.id = em.meter_id WHERE em.enterprise_id = %s",
        (site.id,),
    )
    metered = {str(row[0]) for row in await cur.fetchall()}
    declared = {site.parent_id} if site.parent_id is not None else set()
    return sorted(s for s in metered | declared if tree.get(s).kind == "building")
