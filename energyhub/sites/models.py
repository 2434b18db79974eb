"""The site file's building blocks: units-in-the-name types, carbon factors, the grid and gas
connections, meters and their device mappings.

Units are in every key name. Validation happens once, at the edge (`energyhub.sites.load`):
inside, energyhub code passes these typed objects. Errors name the path and the value, e.g.
`city.parks[0].buildings[3].assets[1].energy_kwh: must be > 0, got -5`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from energyhub.bounds import KG_CO2_PER_KWH_MAX, MAGNITUDE_MAX, Whole
from energyhub.errors import CONTROL_CHARACTERS
from energyhub.modbus.maps import map_point, unit_factor
from energyhub.modbus.registers import Point

Efficiency = Annotated[float, Strict(), Field(gt=0, le=1)]
Fraction = Annotated[float, Strict(), Field(ge=0, le=1)]
PositiveKw = Annotated[float, Strict(), Field(gt=0, le=MAGNITUDE_MAX)]
NonNegative = Annotated[float, Strict(), Field(ge=0, le=MAGNITUDE_MAX)]
"""Capacities, limits, prices and factors: at most MAGNITUDE_MAX, as every value taken from a
client (a capacity of 10³⁰ kWh is a unit mistake, and the solver cannot take it). Numbers only
(Strict): `true` is no capacity of 1 kW, nor `"500"` one of 500."""
Number = Annotated[float, Strict()]
"""Any other number of a site file, numbers only, as above."""


def _not_zero(value: float) -> float:
    if value == 0:
        raise ValueError("must not be 0: every reading would be stored as 0 (a factor such as "
                         "0.001 turns W into kW; a negative one flips the sign)")  # fmt: skip
    return value


Scale = Annotated[
    float, Strict(), Field(ge=-MAGNITUDE_MAX, le=MAGNITUDE_MAX), AfterValidator(_not_zero)
]
"""A factor applied to every reading of a field-bus value: not 0, and at most MAGNITUDE_MAX."""
Count = Whole
"""A whole number of a site file (`9` or `9.0`): `true` is no channel 1, nor `"5"` five points."""
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
    """Strict base: unknown keys are errors (a misspelt key must not be ignored silently), and
    every number is finite (YAML's `.inf` is no capacity, limit or price)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


# --- carbon, grid and gas -------------------------------------------------------------------


FactorYear = Annotated[int, Field(ge=1990, le=2100)]


def _kg_per_kwh(value: float) -> float:
    if value > KG_CO2_PER_KWH_MAX:
        raise ValueError(f"must be at most {KG_CO2_PER_KWH_MAX:g} kg of CO₂ per kWh: a factor in "
                         "g/kWh? divide by 1000")  # fmt: skip
    return value


Factor = Annotated[float, Strict(), Field(ge=0), AfterValidator(_kg_per_kwh)]
"""An emission factor in kg of CO₂ per kWh: 0 to KG_CO2_PER_KWH_MAX, numbers only."""


class YearFactors(Model):
    """One year's emission factors; a factor left out falls back to the flat value."""

    grid_kg_per_kwh: Factor | None = None
    gas_kg_per_kwh: Factor | None = None
    heat_kg_per_kwh: Factor | None = None
    cooling_kg_per_kwh: Factor | None = None


CO2_VS_BASELINE_PCT_MIN = -100.0
CO2_VS_BASELINE_PCT_MAX = 100.0


class PlanPolicy(Model):
    """What a site asks of its plans' CO₂ (energyhub.plans.policy): a limit against the baseline,
    and optionally a point of the cost–CO₂ frontier picked by abatement cost."""

    max_co2_vs_baseline_pct: Annotated[
        float, Strict(), Field(ge=CO2_VS_BASELINE_PCT_MIN, le=CO2_VS_BASELINE_PCT_MAX)
    ] = Field(
        default=0.0,
        description="A plan emits at most its baseline's CO₂ plus this share (%; 0: no more "
        "than the baseline, −5: at least 5 % less), energy its stores must be left with "
        "credited as plan vs actual credits it.",
    )
    max_cost_to_meet_co2_limit_cny_per_t: NonNegative = Field(
        default=1000.0,
        description="The most a tonne avoided to meet the CO₂ limit may cost (CNY/t, the bill's "
        "rise per tonne at the margin, carbon price included); a limit dearer than that is not "
        "met and the plan is the one priced at this much per tonne.",
    )
    max_abatement_cost_cny_per_t: NonNegative | None = Field(
        default=None,
        description="Solve the cost–CO₂ frontier and abate while each further tonne costs at "
        "most this much (CNY/t); unset: the cheapest plan within the CO₂ limit, no frontier.",
    )
    frontier_points: Annotated[Count, Field(ge=2, le=11)] = 5
    carry_day_co2_deficit: Annotated[bool, Strict()] = Field(
        default=False,
        description="Opt-in: each re-plan reads the local day so far against the meters "
        "(metered CO₂ less storage credit vs the counterfactual, as realized savings count it) "
        "and tightens its limit by what the day already emitted above the counterfactual, at the "
        "rate of the day's remaining steps (energyhub.scheduler.co2_account); false: the limit "
        "against the plan's own baseline alone.",
    )
    gate_stores_on_meters: Annotated[bool, Strict()] = Field(
        default=True,
        description="In the scheduler, a store moves (and the peak guard or the local "
        "controller discharges it) only while the local day's metered CO₂ below its "
        "counterfactual covers the move's losses; else it is idle, as the counterfactual's "
        "(energyhub.scheduler.co2_gate). false: stores as planned.",
    )


class CarbonFactors(Model):
    """Emission factors and carbon price used for accounting and in plan objectives."""

    grid_kg_per_kwh: Factor = 0.5306
    gas_kg_per_kwh: Factor = 0.202
    heat_kg_per_kwh: Factor = 0.396
    cooling_kg_per_kwh: Factor | None = Field(
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
    residual_mix_kg_per_kwh: Factor | None = Field(
        default=None,
        description="Market-based Scope 2: the residual-mix factor for electricity no "
        "certificate or contract covers; unset: the grid factor, and reports say so.",
    )
    residual_mix_source: str | None = Field(
        default=None, max_length=200, description="Where the residual-mix factor comes from."
    )


class CarbonOverride(Model):
    """A park's or building's own factors and carbon price over the city's (e.g. green power)."""

    grid_kg_per_kwh: Factor | None = None
    gas_kg_per_kwh: Factor | None = None
    heat_kg_per_kwh: Factor | None = None
    cooling_kg_per_kwh: Factor | None = None
    heat_price_cny_per_kwh: NonNegative | None = None
    cooling_price_cny_per_kwh: NonNegative | None = None
    price_cny_per_t: NonNegative | None = None
    factors_by_year: dict[FactorYear, YearFactors] = Field(default_factory=dict)
    grid_series: Identifier | None = None
    residual_mix_kg_per_kwh: Factor | None = None
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


TARIFF_PERIODS: dict[str, tuple[str, ...]] = {
    "shanghai-two-part": ("valley", "flat", "peak", "critical"),
    "flat": ("flat",),
}
"""The named import tariffs and the periods each prices (their tables and default prices:
energyhub/optimize/tariffs.py). A name or period the planner does not know is refused here, when
the site file is checked, not at the first plan."""

TariffName = Literal["shanghai-two-part", "flat"]


class GridConnection(Model):
    """A metered grid connection: limits, tariff and charges."""

    import_max_kw: PositiveKw
    export_max_kw: NonNegative = 0.0
    tariff: TariffName = "shanghai-two-part"
    tariff_prices_cny_per_kwh: dict[str, NonNegative] | None = Field(
        default=None, description="Override the named tariff's price per period (peak, flat, ...)."
    )

    @field_validator("tariff_prices_cny_per_kwh")
    @classmethod
    def _known_periods(
        cls, prices: dict[str, float] | None, info: ValidationInfo
    ) -> dict[str, float] | None:
        tariff = info.data.get("tariff")
        periods = TARIFF_PERIODS.get(tariff) if isinstance(tariff, str) else None
        unknown = [p for p in prices or {} if periods is not None and p not in periods]
        if unknown and periods is not None:
            raise ValueError(
                f"unknown period {unknown[0]!r} for tariff {tariff!r} (periods: "
                f"{', '.join(periods)})"
            )
        return prices

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
    channel: Count = Field(default=0, ge=0, description="Shelly switch:N / em:N channel.")
    component: Literal["switch", "em"] = "switch"


SparkplugId = Annotated[
    str, Field(min_length=1, max_length=128, pattern=f"^[^/+#{CONTROL_CHARACTERS}]+$")
]
"""A Sparkplug group, edge node or device id: no `/`, `+`, `#` or control characters."""


class SparkplugMapping(Model):
    """A Sparkplug B metric that feeds this meter: `spBv1.0/{group}/…/{node}[/{device}]`."""

    group: SparkplugId
    node: SparkplugId
    device: SparkplugId | None = Field(
        default=None, description="Device id under the edge node; omit for the node's own metrics."
    )
    metric: str = Field(min_length=1, max_length=256, description="Metric name of the birth.")
    scale: Scale = Field(
        default=1.0,
        description="Factor from the metric's unit to the meter's (0.001 for W into kW).",
    )


class ModbusGateway(Model):
    """A Modbus TCP gateway (data concentrator) and the unit ids of the meters behind it."""

    id: Identifier
    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:\-\[\]]+$")
    port: Count = Field(default=502, ge=1, le=65535)
    units: list[Annotated[Count, Field(ge=0, le=255)]] = Field(min_length=1)
    timeout_s: Number = Field(default=1.0, gt=0, le=60)


class ModbusMapping(Model):
    """Where a meter's value is read over Modbus: a point of a shipped register map, or a register.

    With `map` and `point` the map says the register, type, order and unit; otherwise give the
    register's `address` (0-based, as on the wire) and, if not the defaults, `function`, `type`,
    `word_order`, `byte_order`, `scale` and the `reads` unit of the raw value.
    """

    gateway: Identifier
    unit: Count = Field(ge=0, le=255, description="Modbus unit (slave) id behind the gateway.")
    map: str | None = Field(
        default=None, description="A shipped register map (energyhub/modbus/maps)."
    )
    point: str | None = None
    address: Count | None = Field(
        default=None, ge=0, le=65535, description="Register address, 0-based (40001 → 0)."
    )
    function: Literal["holding", "input"] = "input"
    type: Literal["int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64"] = (
        "float32"
    )
    word_order: Literal["big", "little"] = "big"
    byte_order: Literal["big", "little"] = "big"
    scale: Scale = Field(default=1.0, description="Raw value × scale = `reads`.")
    reads: str | None = Field(
        default=None,
        description="Unit of raw value × scale (W, kW, Wh, kWh, °C, %); default the meter's.",
    )
    interval_s: Number = Field(default=10.0, ge=0.1, le=86400)

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
    min_value: Number | None = Field(
        default=None,
        alias="min",
        description="Lowest plausible reading in the meter's unit (unset: derived from the site).",
    )
    max_value: Number | None = Field(
        default=None,
        alias="max",
        description="Highest plausible reading in the meter's unit (unset: derived from the site).",
    )

    @property
    def measures_electricity(self) -> bool:
        """A main electricity meter: it measures a site's load (no asset:, no submeter_of:)."""
        return (
            self.carrier == "electricity"
            and self.asset is None
            and self.submeter_of is None
            and self.quantity in ("power_kw", "energy_kwh")
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
