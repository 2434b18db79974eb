"""What a plan covers: the nodes of a building, a park or every park of a city, their assets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

from energyhub.optimize.errors import PlanInputError
from energyhub.sites import (
    CHP,
    AbsorptionChiller,
    Asset,
    Building,
    CarbonFactors,
    ElectricBoiler,
    ElectricChiller,
    FuelCell,
    GasBoiler,
    GasSupply,
    GridConnection,
    HeatPump,
    Park,
    SiteFile,
    ThermalStorage,
)

Level = Literal["building", "park"]

HEAT_SOURCES = (HeatPump, GasBoiler, ElectricBoiler, CHP, FuelCell)
COOLING_SOURCES = (ElectricChiller, AbsorptionChiller)


@dataclass(frozen=True, slots=True)
class Node:
    """A balance point: one balance per carrier per step. `link` bounds a building's feeder."""

    id: str
    assets: tuple[Asset, ...]
    is_building: bool
    link: GridConnection | None = None

    @property
    def charged_link(self) -> GridConnection | None:
        """The building's own connection if it bills a demand charge (on the building's own
        peak, whoever plans it: assets.add_feeder_demand_charge), else None."""
        link = self.link
        return link if link is not None and link.demand_charge_cny_per_kw > 0 else None

    def produces(self, carrier: Literal["heat", "cooling"]) -> bool:
        """Whether an asset here can supply the carrier (then its demand column is required)."""
        sources = HEAT_SOURCES if carrier == "heat" else COOLING_SOURCES
        return any(
            isinstance(a, sources) or (isinstance(a, ThermalStorage) and a.carrier == carrier)
            for a in self.assets
        )


@dataclass(frozen=True, slots=True)
class Scope:
    """The nodes a plan dispatches together; the first node holds the grid connection."""

    level: Level
    id: str
    park: Park
    nodes: tuple[Node, ...]
    grid: GridConnection
    carbon: CarbonFactors
    gas: GasSupply | None

    @property
    def grid_node(self) -> str:
        return self.nodes[0].id

    def connections(self) -> tuple[tuple[str, GridConnection], ...]:
        """Every connection the plan bills, by the node it feeds: the scope's own at its grid
        node, then each building's own `grid:` under it (billed on its own feeder, as the
        building's own plan bills it)."""
        own = tuple((n.id, n.link) for n in self.nodes[1:] if n.link is not None)
        return ((self.grid_node, self.grid), *own)

    def assets(self) -> Iterator[tuple[Node, Asset]]:
        for node in self.nodes:
            for asset in node.assets:
                yield node, asset


def connection_scopes(scope: Scope) -> tuple[tuple[str, Scope], ...]:
    """Each connection of `scope` (`Scope.connections`), by the node it feeds, with the scope
    whose own connection it is: `scope` itself, and for a building's own `grid:` the building's
    own scope as `resolve_scope` gives it (what reads its metered peak)."""
    own = tuple(
        (n.id, Scope("building", n.id, scope.park, (replace(n, link=None),), n.link,
                     scope.carbon, scope.gas))
        for n in scope.nodes[1:]
        if n.link is not None
    )  # fmt: skip
    return ((scope.grid_node, scope), *own)


def _building_node(building: Building, *, linked: bool) -> Node:
    return Node(building.id, tuple(building.assets), True, building.grid if linked else None)


def resolve_scope(site: SiteFile, level: str, site_id: str) -> Scope:
    """The scope of `--level LEVEL --id ID`; a PlanInputError names what does not fit."""
    carbon = site.city.carbon
    if level == "building":
        found = site.find_building(site_id)
        if found is None:
            raise PlanInputError(f"--id: no building {site_id!r} in the site file", column="id")
        park, building = found
        node = _building_node(building, linked=False)
        grid = building.grid or park.grid
        return Scope("building", site_id, park, (node,), grid, carbon, park.gas)
    if level == "park":
        found_park = site.find_park(site_id)
        if found_park is None:
            raise PlanInputError(f"--id: no park {site_id!r} in the site file", column="id")
        head = Node(found_park.id, tuple(found_park.assets), False)
        nodes = (head, *(_building_node(b, linked=True) for b in found_park.buildings))
        return Scope("park", site_id, found_park, nodes, found_park.grid, carbon, found_park.gas)
    raise PlanInputError(
        f"--level: must be one of building, park, city; got {level!r}", column="level"
    )


def resolve_scopes(site: SiteFile, level: str, site_id: str) -> tuple[Scope, ...]:
    """The scopes of a plan: one per park at city level, else the one building or park."""
    if level != "city":
        return (resolve_scope(site, level, site_id),)
    if site_id != site.city.id:
        raise PlanInputError(
            f"--id: the site file's city is {site.city.id!r}, got {site_id!r}", column="id"
        )
    return tuple(resolve_scope(site, "park", park.id) for park in site.city.parks)
