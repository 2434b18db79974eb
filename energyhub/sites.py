"""The site tree (city > park > building > enterprise), its meters and assets, from a site file.

Units are in every key name. Validation happens once, here, at the edge: inside, energyhub code
passes these typed objects. Errors name the path and the value, e.g.
`city.parks[0].buildings[3].assets[1].energy_kwh: must be > 0, got -5`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from energyhub.alerts.rules import AlertRules
from energyhub.alerts.validate import site_rule_problems
from energyhub.errors import SiteFileError
from energyhub.modbus.maps import map_point, unit_factor
from energyhub.modbus.registers import Point

Efficiency = Annotated[float, Field(gt=0, le=1)]
Fraction = Annotated[float, Field(ge=0, le=1)]
PositiveKw = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Identifier = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]

Carrier = Literal["electricity", "heat", "cooling", "gas", "water", "pv", "none"]
Quantity = Literal[
    "power_kw", "energy_kwh", "temperature_c", "humidity_pct", "occupancy", "soc_pct"
]
BuildingClass = Literal["office-A", "office-B", "lab", "data-center", "hotel", "retail"]
SiteKind = Literal["city", "park", "building", "enterprise"]
PlanApproval = Literal["auto", "operator"]


class Model(BaseModel):
    """Strict base: unknown keys are errors (a misspelt key must not be ignored silently)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- carbon, grid and gas -------------------------------------------------------------------


FactorYear = Annotated[int, Field(ge=1990, le=2100)]


class YearFactors(Model):
    """One year's emission factors; a factor left out falls back to the flat value."""

    grid_kg_per_kwh: NonNegative | None = None
    gas_kg_per_kwh: NonNegative | None = None
    heat_kg_per_kwh: NonNegative | None = None
    cooling_kg_per_kwh: NonNegative | None = None


class PlanPolicy(Model):
    """How the scheduler picks a point of the cost–CO₂ frontier (energyhub.optimize.frontier)."""

    max_abatement_cost_cny_per_t: NonNegative = Field(
        description="Abate CO₂ while each further tonne costs at most this much (CNY/t)."
    )
    frontier_points: Annotated[int, Field(ge=2, le=11)] = 5


class CarbonFactors(Model):
    """Emission factors and carbon price used for accounting and in plan objectives."""

    grid_kg_per_kwh: NonNegative = 0.5306
    gas_kg_per_kwh: NonNegative = 0.202
    heat_kg_per_kwh: NonNegative = 0.396
    cooling_kg_per_kwh: NonNegative | None = Field(
        default=None,
        description="Bought district cooling (Scope 2 where `cooling_purchased`); no default.",
    )
    heat_price_cny_per_kwh: NonNegative = Field(
        default=0.0, description="Price of bought heat (purchased heat meters), for cost."
    )
    cooling_price_cny_per_kwh: NonNegative = Field(
        default=0.0, description="Price of bought district cooling, for cost."
    )
    price_cny_per_t: NonNegative = 0.0
    plan_policy: PlanPolicy | None = Field(
        default=None,
        description="Let the scheduler pick a point of the cost–CO₂ frontier by this policy.",
    )
    factors_by_year: dict[FactorYear, YearFactors] = Field(
        default_factory=dict,
        description="Factors per year: a period uses its year's, else the latest earlier year's.",
    )
    grid_series: Identifier | None = Field(
        default=None, description="Hourly grid intensity series (`energyhub carbon intensity`)."
    )
    residual_mix_kg_per_kwh: NonNegative | None = Field(
        default=None,
        description="Market-based Scope 2: the residual-mix factor for electricity no "
        "certificate or contract covers; unset: the grid factor, and reports say so.",
    )
    residual_mix_source: str | None = Field(
        default=None, max_length=200, description="Where the residual-mix factor comes from."
    )


class CarbonOverride(Model):
    """A park's or building's own factors and carbon price over the city's (e.g. green power)."""

    grid_kg_per_kwh: NonNegative | None = None
    gas_kg_per_kwh: NonNegative | None = None
    heat_kg_per_kwh: NonNegative | None = None
    cooling_kg_per_kwh: NonNegative | None = None
    heat_price_cny_per_kwh: NonNegative | None = None
    cooling_price_cny_per_kwh: NonNegative | None = None
    price_cny_per_t: NonNegative | None = None
    factors_by_year: dict[FactorYear, YearFactors] = Field(default_factory=dict)
    grid_series: Identifier | None = None
    residual_mix_kg_per_kwh: NonNegative | None = None
    residual_mix_source: str | None = Field(default=None, max_length=200)
    heat_purchased: bool | None = Field(
        default=None,
        description="Heat meters measure purchased heat (Scope 2); unset: purchased unless the "
        "building or its park has heat-producing assets.",
    )
    cooling_purchased: bool | None = Field(
        default=None,
        description="Cooling meters measure bought district cooling (Scope 2 at "
        "cooling_kg_per_kwh); unset: cooling is made on site and counted by its electricity.",
    )


class GridConnection(Model):
    """A metered grid connection: limits, tariff and charges."""

    import_max_kw: PositiveKw
    export_max_kw: NonNegative = 0.0
    tariff: str = "shanghai-two-part"
    tariff_prices_cny_per_kwh: dict[str, NonNegative] | None = Field(
        default=None, description="Override the named tariff's price per period (peak, flat, ...)."
    )
    export_price_cny_per_kwh: NonNegative = 0.0
    demand_charge_cny_per_kw: NonNegative = 0.0
    demand_billing: Literal["monthly", "daily"] = Field(
        default="monthly",
        description="monthly: the demand charge is billed on the month's peak (local month), so "
        "a plan pays only for raising the month-to-date peak; daily: on each plan's own peak.",
    )


class GasSupply(Model):
    """Natural gas price and heating value (LHV)."""

    price_cny_per_nm3: NonNegative
    lhv_kwh_per_nm3: PositiveKw = 9.97


# --- meters ---------------------------------------------------------------------------------


class DeviceMapping(Model):
    """A field device whose own payload format (Tasmota, Shelly Gen2) feeds this meter."""

    format: Literal["tasmota", "shelly"]
    device: Identifier
    channel: int = Field(default=0, ge=0, description="Shelly switch:N / em:N channel.")
    component: Literal["switch", "em"] = "switch"


SparkplugId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^/+#\x00-\x1f]+$")]
"""A Sparkplug group, edge node or device id: no `/`, `+`, `#` or control characters."""


class SparkplugMapping(Model):
    """A Sparkplug B metric that feeds this meter: `spBv1.0/{group}/…/{node}[/{device}]`."""

    group: SparkplugId
    node: SparkplugId
    device: SparkplugId | None = Field(
        default=None, description="Device id under the edge node; omit for the node's own metrics."
    )
    metric: str = Field(min_length=1, max_length=256, description="Metric name of the birth.")
    scale: float = Field(
        default=1.0,
        description="Factor from the metric's unit to the meter's (0.001 for W into kW).",
        allow_inf_nan=False,
    )


class ModbusGateway(Model):
    """A Modbus TCP gateway (data concentrator) and the unit ids of the meters behind it."""

    id: Identifier
    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:\-\[\]]+$")
    port: int = Field(default=502, ge=1, le=65535)
    units: list[Annotated[int, Field(ge=0, le=255)]] = Field(min_length=1)
    timeout_s: float = Field(default=1.0, gt=0, le=60)


class ModbusMapping(Model):
    """Where a meter's value is read over Modbus: a point of a shipped register map, or a register.

    With `map` and `point` the map says the register, type, order and unit; otherwise give the
    register's `address` (0-based, as on the wire) and, if not the defaults, `function`, `type`,
    `word_order`, `byte_order`, `scale` and the `reads` unit of the raw value.
    """

    gateway: Identifier
    unit: int = Field(ge=0, le=255, description="Modbus unit (slave) id behind the gateway.")
    map: str | None = Field(
        default=None, description="A shipped register map (energyhub/modbus/maps)."
    )
    point: str | None = None
    address: int | None = Field(
        default=None, ge=0, le=65535, description="Register address, 0-based (40001 → 0)."
    )
    function: Literal["holding", "input"] = "input"
    type: Literal["int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64"] = (
        "float32"
    )
    word_order: Literal["big", "little"] = "big"
    byte_order: Literal["big", "little"] = "big"
    scale: float = Field(
        default=1.0, allow_inf_nan=False, description="Raw value × scale = `reads`."
    )
    reads: str | None = Field(
        default=None,
        description="Unit of raw value × scale (W, kW, Wh, kWh, °C, %); default the meter's.",
    )
    interval_s: float = Field(default=10.0, ge=0.1, le=86400)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        by_map = self.map is not None or self.point is not None
        if by_map and (self.map is None or self.point is None):
            raise ValueError("give both map and point, or a register address")
        if by_map == (self.address is not None):
            raise ValueError("give either map and point, or address — exactly one of them")
        return self


class Meter(Model):
    """A meter or sensor; readings are stored as received, counters become energy at query time."""

    id: Identifier
    carrier: Carrier
    quantity: Quantity
    submeter_of: Identifier | None = Field(
        default=None, description="Parent meter (same site) this sub-meter is part of."
    )
    asset: Identifier | None = Field(default=None, description="Asset this meter measures.")
    rollover_kwh: PositiveKw | None = Field(
        default=None, description="Counter value at which an energy_kwh meter wraps to zero."
    )
    device: DeviceMapping | None = None
    sparkplug: SparkplugMapping | None = None
    modbus: ModbusMapping | None = None
    renamed_from: Identifier | None = Field(
        default=None, description="Previous id: `sites load` keeps its readings under the new id."
    )
    interval_s: PositiveKw | None = Field(
        default=None,
        description="Nominal seconds between readings: a power reading stands for at most this "
        "long (unset: the median spacing of its first readings).",
    )
    min_value: float | None = Field(
        default=None,
        alias="min",
        description="Lowest plausible reading in the meter's unit (unset: derived from the site).",
    )
    max_value: float | None = Field(
        default=None,
        alias="max",
        description="Highest plausible reading in the meter's unit (unset: derived from the site).",
    )

    @model_validator(mode="after")
    def _counter_fields(self) -> Self:
        sources = [k for k in ("device", "sparkplug", "modbus") if getattr(self, k) is not None]
        if len(sources) > 1:
            raise ValueError(f"a meter has one source, not {' and '.join(sources)}")
        if self.modbus is not None:
            modbus_point(self.modbus, self.quantity)  # ValueError names the map, point or unit
        if self.rollover_kwh is not None and self.quantity != "energy_kwh":
            raise ValueError(
                f"rollover_kwh applies to energy_kwh counters, not quantity {self.quantity!r}"
            )
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value >= self.max_value
        ):
            raise ValueError(f"min ({self.min_value:g}) must be below max ({self.max_value:g})")
        return self


# --- assets ---------------------------------------------------------------------------------


class CopFromOutdoor(Model):
    """COP as a linear function of outdoor temperature: cop = a + b · outdoor_c."""

    a: float
    b: float


class AssetBase(Model):
    id: Identifier
    name: str | None = None


class StorageMixin(Model):
    """SOC fractions are of energy_kwh; soc_final is the SOC at the end of the last step."""

    energy_kwh: PositiveKw
    power_kw: PositiveKw
    eta_charge: Efficiency = 1.0
    eta_discharge: Efficiency = 1.0
    soc_min: Fraction = 0.0
    soc_max: Fraction = 1.0
    soc_initial: Fraction = 0.5
    soc_final: Fraction | None = None

    @model_validator(mode="after")
    def _soc_window(self) -> Self:
        if self.soc_min > self.soc_max:
            raise ValueError(f"soc_min ({self.soc_min}) must be ≤ soc_max ({self.soc_max})")
        for name in ("soc_initial", "soc_final"):
            value = getattr(self, name)
            if value is not None and not self.soc_min <= value <= self.soc_max:
                raise ValueError(
                    f"{name} must lie in [soc_min, soc_max] = [{self.soc_min}, {self.soc_max}], "
                    f"got {value}"
                )
        return self


class PV(AssetBase):
    type: Literal["pv"]
    peak_kw: PositiveKw


class Wind(AssetBase):
    type: Literal["wind"]
    peak_kw: PositiveKw


class Battery(AssetBase, StorageMixin):
    type: Literal["battery"]
    eta_charge: Efficiency = 0.95
    eta_discharge: Efficiency = 0.95
    soc_min: Fraction = 0.1
    soc_max: Fraction = 0.9
    throughput_cost_cny_per_kwh: NonNegative = 0.0


class ThermalStorage(AssetBase, StorageMixin):
    type: Literal["thermal_storage"]
    carrier: Literal["heat", "cooling"]
    loss_per_h: Fraction = 0.0


class HeatPump(AssetBase):
    type: Literal["heat_pump"]
    heat_max_kw: PositiveKw
    cop: Annotated[float, Field(gt=0, le=10)] | None = None
    cop_from_outdoor: CopFromOutdoor | None = None

    @model_validator(mode="after")
    def _one_cop(self) -> Self:
        if (self.cop is None) == (self.cop_from_outdoor is None):
            raise ValueError("give exactly one of cop or cop_from_outdoor")
        return self


class ElectricChiller(AssetBase):
    type: Literal["electric_chiller"]
    cooling_max_kw: PositiveKw
    cop: Annotated[float, Field(gt=0, le=15)] | None = None
    cop_from_outdoor: CopFromOutdoor | None = None

    @model_validator(mode="after")
    def _one_cop(self) -> Self:
        if (self.cop is None) == (self.cop_from_outdoor is None):
            raise ValueError("give exactly one of cop or cop_from_outdoor")
        return self


class AbsorptionChiller(AssetBase):
    type: Literal["absorption_chiller"]
    cooling_max_kw: PositiveKw
    cop: Annotated[float, Field(gt=0, le=2)] = 0.7


class CHP(AssetBase):
    type: Literal["chp"]
    fuel_max_kw: PositiveKw
    eta_el: Efficiency
    eta_th: Efficiency
    min_load: Fraction = 0.0
    start_cost_cny: NonNegative = 0.0

    @model_validator(mode="after")
    def _energy_conserved(self) -> Self:
        if self.eta_el + self.eta_th > 1:
            raise ValueError(f"eta_el + eta_th must be ≤ 1, got {self.eta_el + self.eta_th:g}")
        return self


class GasBoiler(AssetBase):
    type: Literal["gas_boiler"]
    heat_max_kw: PositiveKw
    eta: Efficiency


class ElectricBoiler(AssetBase):
    type: Literal["electric_boiler"]
    heat_max_kw: PositiveKw
    eta: Efficiency = 0.99


class FlexibleLoad(AssetBase):
    """Electric energy that must be served within a daily window, at any power up to the limit."""

    type: Literal["flexible_load"]
    power_max_kw: PositiveKw
    energy_kwh: PositiveKw
    window_start_h: Annotated[int, Field(ge=0, le=23)] = 0
    window_end_h: Annotated[int, Field(ge=1, le=24)] = 24

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.window_end_h <= self.window_start_h:
            raise ValueError(
                f"window_end_h ({self.window_end_h}) must be after window_start_h "
                f"({self.window_start_h})"
            )
        hours = self.window_end_h - self.window_start_h
        if self.energy_kwh > self.power_max_kw * hours:
            raise ValueError(
                f"energy_kwh {self.energy_kwh:g} cannot be served at {self.power_max_kw:g} kW "
                f"within {hours} h"
            )
        return self


class Electrolyzer(AssetBase):
    type: Literal["electrolyzer"]
    power_max_kw: PositiveKw
    eta: Efficiency = 0.65


class HydrogenStore(AssetBase, StorageMixin):
    type: Literal["hydrogen_store"]


class FuelCell(AssetBase):
    type: Literal["fuel_cell"]
    power_max_kw: PositiveKw
    eta_el: Efficiency = 0.5
    eta_th: Efficiency = 0.3

    @model_validator(mode="after")
    def _energy_conserved(self) -> Self:
        if self.eta_el + self.eta_th > 1:
            raise ValueError(f"eta_el + eta_th must be ≤ 1, got {self.eta_el + self.eta_th:g}")
        return self


Asset = Annotated[
    PV
    | Wind
    | Battery
    | ThermalStorage
    | HeatPump
    | ElectricChiller
    | AbsorptionChiller
    | CHP
    | GasBoiler
    | ElectricBoiler
    | FlexibleLoad
    | Electrolyzer
    | HydrogenStore
    | FuelCell,
    Field(discriminator="type"),
]
ASSET_TYPES = frozenset(
    (
        "pv wind battery thermal_storage heat_pump electric_chiller absorption_chiller chp "
        "gas_boiler electric_boiler flexible_load electrolyzer hydrogen_store fuel_cell"
    ).split()
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


class SiteFile(Model):
    """A whole site file: `version: 1`, a time zone and one city."""

    version: Literal[1]
    timezone: str = "Asia/Shanghai"
    city: City

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
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

    def find_park(self, site_id: str) -> Park | None:
        return next((p for p in self.city.parks if p.id == site_id), None)

    def find_building(self, site_id: str) -> tuple[Park, Building] | None:
        for park in self.city.parks:
            for building in park.buildings:
                if building.id == site_id:
                    return park, building
        return None


@dataclass(frozen=True, slots=True)
class SiteNode:
    """One node of the site tree, as stored in the `sites` table."""

    id: str
    kind: SiteKind
    parent_id: str | None
    name: str | None
    model: City | Park | Building | Enterprise


def _duplicates(ids: list[str]) -> list[str]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)


def _reference_problems(site: SiteFile) -> Iterator[str]:
    """Ids unique per kind, sub-meter parents, asset and enterprise meter references resolvable."""
    site_ids = [node.id for node in site.nodes()]
    duplicate_sites = _duplicates(site_ids)
    for dup in duplicate_sites:
        yield (
            f"id {dup!r} is used by more than one site "
            "(city, park, building and enterprise ids share one namespace)"
        )
    asset_ids = [a.id for p in site.city.parks for a in p.assets] + [
        a.id for p in site.city.parks for b in p.buildings for a in b.assets
    ]
    for dup in _duplicates(asset_ids):
        yield f"asset id {dup!r} is used more than once"
    devices = [
        f"{m.device.format}:{m.device.device} {m.device.component}:{m.device.channel}"
        for _, owner in site.metered_sites()
        for m in owner.meters
        if m.device is not None
    ]
    for dup in _duplicates(devices):
        yield f"device {dup} feeds more than one meter"
    metrics = [
        f"{s.group}/{s.node}{'/' + s.device if s.device else ''} metric {s.metric!r}"
        for _, owner in site.metered_sites()
        for m in owner.meters
        if (s := m.sparkplug) is not None
    ]
    for dup in _duplicates(metrics):
        yield f"Sparkplug {dup} feeds more than one meter"
    yield from _modbus_problems(site)
    if duplicate_sites:
        return  # meter references below are resolved by site id
    meters_by_site = {owner.id: {m.id for m in owner.meters} for _, owner in site.metered_sites()}
    for p, park in enumerate(site.city.parks):
        owners: list[tuple[str, Park | Building]] = [(f"city.parks[{p}]", park)]
        owners += [(f"city.parks[{p}].buildings[{b}]", bl) for b, bl in enumerate(park.buildings)]
        for path, owner in owners:
            yield from _meter_problems(path, owner, park, meters_by_site)
            yield from _heat_purchase_problems(path, owner, park)
            yield from _cooling_purchase_problems(path, owner, park, site.city.carbon)
    yield from site_rule_problems(site)


def _cooling_purchase_problems(
    path: str, owner: Park | Building, park: Park, city: CarbonFactors
) -> Iterator[str]:
    """Bought cooling is Scope 2 only at a declared factor: there is no published default."""
    if owner.carbon is None or not owner.carbon.cooling_purchased:
        return
    chain = [city, park.carbon, owner.carbon if owner is not park else None]
    declared = [
        node
        for node in chain
        if node is not None
        and (
            node.cooling_kg_per_kwh is not None
            or any(y.cooling_kg_per_kwh is not None for y in node.factors_by_year.values())
        )
    ]
    if not declared:
        yield (
            f"{path}.carbon.cooling_purchased: true needs cooling_kg_per_kwh (the supplier's "
            f"factor) in the carbon of {owner.id}, its park or the city"
        )


HEAT_PLANT_TYPES = ("heat_pump", "gas_boiler", "electric_boiler", "chp", "fuel_cell")
"""Assets that make heat on site (carbon/tree.py's HEAT_PRODUCERS)."""


def _heat_purchase_problems(path: str, owner: Park | Building, park: Park) -> Iterator[str]:
    """`heat_purchased: false` says a plant on site makes the heat; without one, the building's
    heat would count as emission-free."""
    if owner.carbon is None or owner.carbon.heat_purchased is not False:
        return
    assets = [*owner.assets, *park.assets] if isinstance(owner, Building) else park.assets
    if not any(asset.type in HEAT_PLANT_TYPES for asset in assets):
        where = f"{owner.id} or its park" if isinstance(owner, Building) else owner.id
        yield (
            f"{path}.carbon.heat_purchased: false, but {where} has no heat plant "
            f"({', '.join(HEAT_PLANT_TYPES)}): its heat would count as emission-free; "
            "declare the plant or drop heat_purchased"
        )


def _meter_problems(
    path: str, owner: Park | Building, park: Park, meters_by_site: dict[str, set[str]]
) -> Iterator[str]:
    for dup in _duplicates([m.id for m in owner.meters]):
        yield f"{path}.meters: id {dup!r} is used more than once"
    assets = {a.id for a in owner.assets} | {a.id for a in park.assets}
    for i, meter in enumerate(owner.meters):
        where = f"{path}.meters[{i}]"
        if meter.submeter_of == meter.id:
            yield f"{where}.submeter_of: a meter cannot be its own parent, got {meter.id!r}"
        elif meter.submeter_of is not None and meter.submeter_of not in meters_by_site[owner.id]:
            yield f"{where}.submeter_of: no meter {meter.submeter_of!r} in {owner.id}"
        if meter.asset is not None and meter.asset not in assets:
            yield f"{where}.asset: no asset {meter.asset!r} in {owner.id} or {park.id}"
    if isinstance(owner, Building):
        for e, enterprise in enumerate(owner.enterprises):
            for m, ref in enumerate(enterprise.meters):
                building_id, _, meter_id = ref.rpartition("/")
                building_id = building_id or owner.id
                if meter_id not in meters_by_site.get(building_id, set()):
                    yield (
                        f"{path}.enterprises[{e}].meters[{m}]: no meter {meter_id!r} "
                        f"in site {building_id!r}, got {ref!r}"
                    )


# --- loading and error messages -------------------------------------------------------------

_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be ≥ {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be ≤ {le}",
    "missing": "is required",
    "extra_forbidden": "unknown key",
    "literal_error": "must be {expected}",
    "string_pattern_mismatch": "must be an id of letters, digits, '-', '_' or '.'",
    "too_short": "must not be empty",
}


def _format_location(loc: tuple[str | int, ...]) -> str:
    path = ""
    previous: str | int | None = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(previous, int) and part in ASSET_TYPES:
            pass  # the discriminated union's tag: the asset's own `type` says it already
        else:
            path += f".{part}" if path else part
        previous = part
    return path


def _format_error(error: Any) -> str:
    location = _format_location(tuple(error["loc"]))
    template = _MESSAGES.get(error["type"])
    if template is not None:
        context = {
            key: f"{value:g}" if isinstance(value, float) else value
            for key, value in error.get("ctx", {}).items()
        }
        message = template.format(**context)
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] not in ("missing",):
        message += f", got {error['input']!r}" if not isinstance(error["input"], dict) else ""
    return f"{location}: {message}" if location else message


def parse_site(data: Any, source: str = "<site>") -> SiteFile:
    """Validate an already-parsed site document; raise SiteFileError listing every problem."""
    if not isinstance(data, dict):
        raise SiteFileError(source, [f"the document must be a mapping, got {type(data).__name__}"])
    try:
        site = SiteFile.model_validate(data)
    except ValidationError as exc:
        raise SiteFileError(source, [_format_error(e) for e in exc.errors()]) from None
    problems = list(_reference_problems(site))
    if problems:
        raise SiteFileError(source, problems)
    return site


def _modbus_problems(site: SiteFile) -> Iterator[str]:
    """Gateway ids unique in the city; every Modbus meter on a declared gateway and unit."""
    gateways = {g.id: g for park in site.city.parks for g in park.modbus_gateways}
    ids = [g.id for park in site.city.parks for g in park.modbus_gateways]
    for dup in _duplicates(ids):
        yield f"Modbus gateway id {dup!r} is used more than once"
    for p, park in enumerate(site.city.parks):
        owners: list[tuple[str, Park | Building]] = [(f"city.parks[{p}]", park)]
        owners += [(f"city.parks[{p}].buildings[{b}]", bl) for b, bl in enumerate(park.buildings)]
        for where, owner in owners:
            for m, meter in enumerate(owner.meters):
                mapping = meter.modbus
                if mapping is None:
                    continue
                gateway = gateways.get(mapping.gateway)
                path = f"{where}.meters[{m}].modbus"
                if gateway is None:
                    yield f"{path}.gateway: no Modbus gateway {mapping.gateway!r} in any park"
                elif mapping.unit not in gateway.units:
                    yield (
                        f"{path}.unit: gateway {gateway.id!r} declares units "
                        f"{gateway.units}, got {mapping.unit}"
                    )


def modbus_point(mapping: ModbusMapping, quantity: str) -> Point:
    """The register point a meter reads, scaled into its quantity's unit (ValueError if not)."""
    if mapping.map is not None and mapping.point is not None:
        return map_point(mapping.map, mapping.point, quantity)
    if mapping.address is None:
        raise ValueError("give either map and point, or address")
    factor = unit_factor(mapping.reads, quantity) if mapping.reads is not None else 1.0
    return Point(
        mapping.address,
        mapping.function,
        mapping.type,
        mapping.word_order,
        mapping.byte_order,
        mapping.scale * factor,
    )


def load_site(path: Path | str) -> SiteFile:
    """Read and validate a YAML (or JSON) site file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteFileError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SiteFileError(str(path), [f"{where}not valid YAML: {problem}"]) from None
    return parse_site(data, str(path))


def site_json_schema() -> str:
    """The JSON Schema of the site file, for editors and other tools."""
    schema = SiteFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "energyhub site file"
    return json.dumps(schema, indent=2, ensure_ascii=False)
