"""The site tree: city > park > building > enterprise, the carbon scheme, and the whole file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    Field,
    field_validator,
    model_validator,
)

from energyhub.alerts.rules import AlertRules
from energyhub.sites.assets import (
    Asset,
)
from energyhub.sites.models import (
    BuildingClass,
    CarbonFactors,
    CarbonOverride,
    Fraction,
    GasSupply,
    GridConnection,
    Identifier,
    Meter,
    ModbusGateway,
    Model,
    NonNegative,
    PlanApproval,
    PositiveKw,
    SiteKind,
)

# --- carbon trading scheme --------------------------------------------------------------------


class CarbonScheme(Model):
    """The emissions trading scheme an enterprise or building surrenders allowances under."""

    name: str = Field(default="shanghai-ets", min_length=1, max_length=64)
    offset_share: Fraction = Field(
        default=0.05, description="Share of the surrender that CCER offsets may cover."
    )
    surrender_due: str = Field(
        default="06-30",
        pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
        description="MM-DD of the year after the compliance year by which to surrender.",
    )
    warn_days: int = Field(default=60, ge=0, le=366)
    price_series: Identifier | None = Field(
        default=None, description="Allowance price series (`energyhub carbon price`)."
    )
    covers: Literal["scope1", "scope1+2"] = Field(
        default="scope1+2",
        description="Emissions the scheme covers (Shanghai: direct and "
        "indirect; national ETS: direct).",
    )
    plan_price: Literal["site-file", "position"] = Field(
        default="site-file",
        description="A building's plans price carbon at the site file's price, or from its "
        "allowance position (shortfall: the market price; surplus: `surplus_price`).",
    )
    surplus_price: Literal["zero", "sale"] = Field(
        default="zero", description="With a surplus: no carbon price, or the last sale price."
    )


# --- the tree -------------------------------------------------------------------------------

ParkMainMeter = Literal["connection", "own-loads"]


class Enterprise(Model):
    """A tenant: accounted (energy, cost, carbon) from its sub-meters, not dispatched.

    A meter reference is a meter id of the declaring building, or `<building>/<meter>` for a
    sub-meter in another building of the same city.
    """

    id: Identifier
    name: str | None = None
    floor_area_m2: PositiveKw | None = None
    meters: list[str] = Field(min_length=1)
    carbon_target_kg_per_year: NonNegative | None = Field(
        default=None, description="Yearly emission target or allowance (Scope 1 + 2)."
    )
    carbon_scheme: CarbonScheme | None = Field(
        default=None, description="Emissions trading scheme (`energyhub carbon ledger`)."
    )


class Building(Model):
    id: Identifier
    name: str | None = None
    building_class: BuildingClass = Field(alias="class")
    floor_area_m2: PositiveKw
    grid: GridConnection | None = None
    meters: list[Meter] = Field(default_factory=list)
    enterprises: list[Enterprise] = Field(default_factory=list)
    assets: list[Asset] = Field(default_factory=list)
    carbon: CarbonOverride | None = None
    carbon_target_kg_per_year: NonNegative | None = Field(
        default=None, description="Yearly emission target or allowance (Scope 1 + 2)."
    )
    carbon_scheme: CarbonScheme | None = Field(
        default=None, description="Emissions trading scheme (`energyhub carbon ledger`)."
    )
    plan_approval: PlanApproval | None = Field(
        default=None, description="Who approves this building's plans; unset: as its park."
    )
    alerts: AlertRules | None = Field(
        default=None, description="Alert rules over the class defaults (energyhub.alerts.rules)."
    )


class Park(Model):
    id: Identifier
    name: str | None = None
    grid: GridConnection
    gas: GasSupply | None = None
    meters: list[Meter] = Field(default_factory=list)
    main_meter: ParkMainMeter | None = Field(
        default=None,
        description="What the park's main electricity meters measure: `connection` (the "
        "default) the whole park at its grid connection, its buildings' mains are parts of "
        "them; `own-loads` only the park's own consumers, beside its buildings' mains.",
    )
    assets: list[Asset] = Field(default_factory=list)
    buildings: list[Building] = Field(default_factory=list)
    carbon: CarbonOverride | None = None
    plan_approval: PlanApproval = Field(
        default="operator",
        description="`operator`: a plan waits for an operator's approval; `auto`: approved "
        "once solved.",
    )
    alerts: AlertRules | None = Field(
        default=None, description="Alert rules over the park defaults (energyhub.alerts.rules)."
    )
    modbus_gateways: list[ModbusGateway] = Field(
        default_factory=list,
        description="Modbus TCP gateways whose meters `energyhub modbus` polls.",
    )

    @property
    def measured_at_connection(self) -> bool:
        """Whether the park's electricity is its own main meters, its buildings' mains parts of
        them: it has a main electricity meter and `main_meter` is not `own-loads`. The stored
        tree applies the same rule (`energyhub.store.queries.CONNECTION_PARKS`)."""
        return self.main_meter != "own-loads" and _has_main(self)


class DemandResponseEvent(Model):
    """A grid demand-response event: the city's total import stays under a cap in [start, end)."""

    start: AwareDatetime
    end: AwareDatetime
    import_max_kw: NonNegative = Field(
        description="Cap on the sum of the parks' grid imports during every step that starts "
        "inside the event."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(
                f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})"
            )
        return self


class City(Model):
    id: Identifier
    name: str | None = None
    carbon: CarbonFactors = Field(default_factory=CarbonFactors)
    parks: list[Park] = Field(min_length=1)
    demand_response: list[DemandResponseEvent] = Field(
        default_factory=list, description="Demand-response events that cap the city's import."
    )
    carbon_cap_kg: NonNegative | None = Field(
        default=None,
        description="Cap on the city's CO₂ over one city plan's horizon (all parks and buildings).",
    )


HOST_ZONES = frozenset({"localtime", "posixrules"})
"""Files of the zoneinfo folder that name the machine's own setting, not a place: ZoneInfo loads
them, but they differ from host to host (a container's UTC beside a server's Asia/Shanghai)."""


class Location(Model):
    """Where the site is, for the sun: the PV forecast's clear sky and the simulator's."""

    latitude_deg: float = Field(ge=-90, le=90, description="Degrees north (south < 0).")
    longitude_deg: float = Field(ge=-180, le=180, description="Degrees east (west < 0).")


class SiteFile(Model):
    """A whole site file: `version: 1`, a time zone, where it is and one city."""

    version: Literal[1]
    timezone: str = "Asia/Shanghai"
    location: Location | None = Field(
        default=None,
        description="The site's coordinates, for the sun; absent: "
        "ENERGYHUB_SCHEDULER_LATITUDE_DEG / _LONGITUDE_DEG (Shanghai by default).",
    )
    city: City

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value in HOST_ZONES:
            raise ValueError(
                f"{value!r} is the host's own zone, not a place: each machine (the API, the "
                "scheduler, PostgreSQL) reads it its own way; give the site's IANA name, e.g. "
                "Europe/Berlin"
            )
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    # --- navigation ---

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def nodes(self) -> Iterator[SiteNode]:
        """Every site of the tree, parents before children."""
        city = self.city
        yield SiteNode(city.id, "city", None, city.name, city)
        for park in city.parks:
            yield SiteNode(park.id, "park", city.id, park.name, park)
            for building in park.buildings:
                yield SiteNode(building.id, "building", park.id, building.name, building)
                for enterprise in building.enterprises:
                    yield SiteNode(
                        enterprise.id, "enterprise", building.id, enterprise.name, enterprise
                    )

    def metered_sites(self) -> Iterator[tuple[Park, Park | Building]]:
        """(park, owner) for every park and building that carries meters, in file order."""
        for park in self.city.parks:
            yield park, park
            for building in park.buildings:
                yield park, building

    def unmetered_electricity(self, site_id: str) -> list[str]:
        """The parks and buildings at or under `site_id` whose electricity no main meter measures
        (carrier electricity, quantity power_kw or energy_kwh, without asset: or submeter_of:).
        A park measured at its connection (`Park.measured_at_connection`) is measured whole; else
        each building needs one (a park without buildings, its own). Their import, load and
        savings are unknown."""
        parks = self.city.parks if site_id == self.city.id else []
        if (park := self.find_park(site_id)) is not None:
            parks = [park]
        if (found := self.find_building(site_id)) is not None:
            return [] if _has_main(found[1]) else [site_id]
        out: list[str] = []
        for park in parks:
            if not park.measured_at_connection:
                out += [b.id for b in park.buildings if not _has_main(b)] or (
                    [] if park.buildings or _has_main(park) else [park.id]
                )
        return out

    def find_park(self, site_id: str) -> Park | None:
        return next((p for p in self.city.parks if p.id == site_id), None)

    def find_building(self, site_id: str) -> tuple[Park, Building] | None:
        for park in self.city.parks:
            for building in park.buildings:
                if building.id == site_id:
                    return park, building
        return None

    def not_park_or_building(self, site_id: str) -> str:
        """What `site_id` is, for a message refusing it where a park or building is needed: an
        enterprise the file names was told it is "no park or building in the site file"."""
        node = next((n for n in self.nodes() if n.id == site_id), None)
        if node is None or node.kind in ("park", "building"):
            return f"no park or building {site_id!r} in the site file"
        if node.kind == "enterprise":
            return f"{site_id!r} is an enterprise (a tenant of building {node.parent_id!r})"
        return f"{site_id!r} is the city"


def _has_main(owner: Park | Building) -> bool:
    return any(m.measures_electricity for m in owner.meters)


NO_MAIN_METER = "no electricity meter (carrier electricity, without asset: or submeter_of:)"


def unmetered_note(site_ids: list[str]) -> str | None:
    """What a site page, plan vs actual and savings say of the ids `unmetered_electricity`
    names; None if there are none."""
    if not site_ids:
        return None
    where = ", ".join(site_ids)
    return f"{where}: {NO_MAIN_METER}: the import, peak and savings there are not measured"


def load_taken_as_0(building_id: str, *, column_given: bool = True) -> str:
    """What a plan says of a building `unmetered_electricity` names, whose load it takes as 0
    (`column_given` False: the plan's inputs had no column for it either)."""
    column = f"{building_id}:electricity_kw"
    lacking = "" if column_given else f" and no {column} column"
    return (
        f"{building_id}: {NO_MAIN_METER}{lacking}: {column} is taken as 0, so the plan leaves "
        "its own load out (its import, peak and savings are not measured)"
    )


@dataclass(frozen=True, slots=True)
class SiteNode:
    """One node of the site tree, as stored in the `sites` table."""

    id: str
    kind: SiteKind
    parent_id: str | None
    name: str | None
    model: City | Park | Building | Enterprise
