"""Assets as devices: default rules, setpoints within limits, storage state of charge.

A setpoint's `p_kw` means, per asset type (clipped to the asset's limits, never rejected):

- battery, thermal_storage, hydrogen_store: charge (> 0) or discharge (< 0) power, limited by
  `power_kw` and by what keeps the SOC inside [soc_min, soc_max];
- heat_pump: heat output in [0, heat_max_kw] (electricity = heat / COP), electric_chiller:
  cooling output in [0, cooling_max_kw] (electricity = cooling / COP); neither makes more than
  its node's demand left (storage charging included): its controller runs on the supply
  temperature, so a setpoint above a demand that came in under the forecast turns it down, as
  a CHP is turned down, rather than making heat or cooling nobody takes;
- chp: electric output; 0 stops it, anything above 0 runs it at least at `min_load`, at most at
  `fuel_max_kw · eta_el`, and no higher than its heat is used: its local controller runs it
  heat-led, lowering the output (or stopping it below `min_load`) rather than dumping heat, unless
  the connection's import limit calls for more (`dispatch`'s `free`);
- electrolyzer: electricity drawn, fuel_cell: electric output, both in [0, power_max_kw];
- flexible_load: power drawn in [0, power_max_kw] (the plan keeps its daily energy and window).

Without a setpoint each runs its default rule: storage charges in the Shanghai valley period
(22–06) and discharges at half power in the peak periods (08–11, 18–21); heat pumps and chillers
follow the building's demand; a CHP runs at full load 08–21 (heat-led, as above); an
electrolyzer runs at full power 22–06 and a fuel cell in the peak periods; a flexible load
spreads its energy over its window.
Recovered heat (a CHP's, a fuel cell's, or district heat from the park) serves the node's heat
demand after its heat pumps and before its boilers; what is left runs its absorption chillers.
Readings use the sign a meter on the asset would show; `grid_kw` is what the asset draws from its
node's electricity bus.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from energyhub.sites import (
    CHP,
    PV,
    AbsorptionChiller,
    Asset,
    Battery,
    ElectricBoiler,
    ElectricChiller,
    Electrolyzer,
    FlexibleLoad,
    FuelCell,
    GasBoiler,
    HeatPump,
    HydrogenStore,
    ThermalStorage,
    Wind,
)
from simulators.weather import Array

Storage = Battery | ThermalStorage | HydrogenStore
STORAGE_TYPES = (Battery, ThermalStorage, HydrogenStore)
CONTROLLABLE = frozenset(
    {
        "battery", "thermal_storage", "hydrogen_store", "heat_pump", "electric_chiller", "chp",
        "electrolyzer", "fuel_cell", "flexible_load",
    }
)  # fmt: skip
"""Asset types that follow setpoints; setpoints for other assets are counted and ignored."""


def in_hours(hours: Array, *spans: tuple[float, float]) -> Array:
    """True where the local hour lies in one of the [start, end) spans (end may pass midnight)."""
    inside = np.zeros(hours.shape, dtype=bool)
    for start, end in spans:
        inside |= (
            (hours >= start) & (hours < end) if start < end else (hours >= start) | (hours < end)
        )
    return inside


def storage_request_kw(asset: Storage, hours: Array) -> Array:
    """The default rule's wish: charge in the valley, discharge at half power in the peaks."""
    valley = in_hours(hours, (22.0, 6.0))
    peak = in_hours(hours, (8.0, 11.0), (18.0, 21.0))
    return np.where(valley, asset.power_kw, np.where(peak, -0.5 * asset.power_kw, 0.0))


@dataclass(slots=True)
class StorageState:
    """State of charge of one storage asset; `step` applies one step's power within its limits."""

    asset: Storage
    soc: float

    def step(self, request_kw: float, step_h: float) -> float:
        """Move the SOC by the request, clipped to the power and SOC limits; return the power."""
        a = self.asset
        loss = a.loss_per_h if isinstance(a, ThermalStorage) else 0.0
        soc = self.soc * (1.0 - loss * step_h)
        room_kw = max(a.soc_max - soc, 0.0) * a.energy_kwh / (a.eta_charge * step_h)
        stock_kw = max(soc - a.soc_min, 0.0) * a.energy_kwh * a.eta_discharge / step_h
        power = min(max(request_kw, -a.power_kw, -stock_kw), a.power_kw, room_kw)
        gain = a.eta_charge * power if power > 0 else power / a.eta_discharge
        self.soc = min(max(soc + gain * step_h / a.energy_kwh, 0.0), 1.0)
        return power

    def run(self, requests_kw: Array, step_h: float) -> tuple[Array, Array]:
        """(power, SOC at the end of each step) for a whole series of requests."""
        power, soc = np.empty(len(requests_kw)), np.empty(len(requests_kw))
        for t, request in enumerate(requests_kw.tolist()):
            power[t] = self.step(request, step_h)
            soc[t] = self.soc
        return power, soc


@dataclass(slots=True)
class Flows:
    """One asset's readings by carrier (plus `soc`) and its draw on the electricity bus."""

    readings: dict[str, Array]
    grid_kw: Array

    @classmethod
    def zeros(cls, carriers: tuple[str, ...], steps: int) -> Flows:
        return cls({c: np.zeros(steps) for c in carriers}, np.zeros(steps))


@dataclass(slots=True)
class Balance:
    """What is left to serve on one node during a slice of steps, while assets are dispatched."""

    hours: Array
    outdoor_c: Array
    heat_left: Array
    cooling_left: Array
    recovered_heat: Array | None = None
    """Heat recovered or delivered to the node so far (district heat offered to a building)."""

    def __post_init__(self) -> None:
        if self.recovered_heat is None:
            self.recovered_heat = np.zeros(self.hours.shape)

    @property
    def recovered(self) -> Array:
        assert self.recovered_heat is not None  # noqa: S101 - set in __post_init__
        return self.recovered_heat

    def copy(self) -> Balance:
        return Balance(
            self.hours, self.outdoor_c, self.heat_left.copy(), self.cooling_left.copy(),
            self.recovered.copy(),
        )  # fmt: skip

    def use_recovered(self) -> None:
        """Recovered heat serves what is left of the heat demand before any boiler burns."""
        used = np.minimum(self.recovered, self.heat_left)
        self.recovered_heat, self.heat_left = self.recovered - used, self.heat_left - used

    def serve_heat(self, heat: Array) -> None:
        self.heat_left = np.maximum(self.heat_left - heat, 0.0)

    def serve_cooling(self, cooling: Array) -> None:
        self.cooling_left = np.maximum(self.cooling_left - cooling, 0.0)


def _cop(asset: HeatPump | ElectricChiller, outdoor_c: Array) -> Array:
    if asset.cop is not None:
        return np.full(outdoor_c.shape, asset.cop)
    assert asset.cop_from_outdoor is not None  # noqa: S101 - the site model requires one of them
    return np.clip(asset.cop_from_outdoor.a + asset.cop_from_outdoor.b * outdoor_c, 1.0, 10.0)


def machine_cop(asset: HeatPump | ElectricChiller, outdoor_c: float) -> float:
    """The machine's COP at one outdoor temperature (as it runs in `dispatch`)."""
    return float(_cop(asset, np.array([outdoor_c]))[0])


def _chosen(setpoint: Array, default: Array, low: float, high: float) -> Array:
    """The setpoint clipped to [low, high] where one is given (not NaN), else the default."""
    return np.where(np.isnan(setpoint), default, np.clip(np.nan_to_num(setpoint), low, high))


def _led(sp: Array, left: Array, high: float) -> Array:
    """A heat pump's or chiller's output: its setpoint (else the demand left) within [0, high],
    never above the demand left (what nobody takes is not made)."""
    return np.minimum(_chosen(sp, left, 0.0, high), np.minimum(left, high))


def _heat_pump(a: HeatPump, b: Balance, sp: Array) -> dict[str, Array]:
    heat = _led(sp, b.heat_left, a.heat_max_kw)
    b.serve_heat(heat)
    return {"heat": heat, "electricity": heat / _cop(a, b.outdoor_c)}


def _chiller(a: ElectricChiller, b: Balance, sp: Array) -> dict[str, Array]:
    cooling = _led(sp, b.cooling_left, a.cooling_max_kw)
    b.serve_cooling(cooling)
    return {"cooling": cooling, "electricity": cooling / _cop(a, b.outdoor_c)}


def _chp(a: CHP, b: Balance, sp: Array) -> dict[str, Array]:
    full_kw, min_kw = a.fuel_max_kw * a.eta_el, a.fuel_max_kw * a.eta_el * a.min_load
    default = np.where(in_hours(b.hours, (8.0, 21.0)), full_kw, 0.0)
    asked = np.nan_to_num(sp)
    chosen = np.where(asked > 0, np.clip(asked, max(min_kw, 1e-9), full_kw), 0.0)
    electric = np.where(np.isnan(sp), default, chosen)
    fuel = electric / a.eta_el
    b.recovered_heat = b.recovered + fuel * a.eta_th
    return {"electricity": electric, "gas": fuel, "heat": fuel * a.eta_th}


def _fuel_cell(a: FuelCell, b: Balance, sp: Array) -> dict[str, Array]:
    default = np.where(in_hours(b.hours, (8.0, 11.0), (18.0, 21.0)), a.power_max_kw, 0.0)
    electric = _chosen(sp, default, 0.0, a.power_max_kw)
    heat = electric / a.eta_el * a.eta_th
    b.recovered_heat = b.recovered + heat
    return {"electricity": electric, "heat": heat}


def _boiler(a: GasBoiler | ElectricBoiler, b: Balance, sp: Array) -> dict[str, Array]:
    heat = np.minimum(b.heat_left, a.heat_max_kw)
    b.serve_heat(heat)
    carrier = "gas" if isinstance(a, GasBoiler) else "electricity"
    return {"heat": heat, carrier: heat / a.eta}


def _absorption(a: AbsorptionChiller, b: Balance, sp: Array) -> dict[str, Array]:
    cooling = np.minimum(np.minimum(b.recovered * a.cop, a.cooling_max_kw), b.cooling_left)
    b.recovered_heat = b.recovered - cooling / a.cop
    b.serve_cooling(cooling)
    return {"cooling": cooling, "heat": cooling / a.cop}


def _electrolyzer(a: Electrolyzer, b: Balance, sp: Array) -> dict[str, Array]:
    default = np.where(in_hours(b.hours, (22.0, 6.0)), a.power_max_kw, 0.0)
    return {"electricity": _chosen(sp, default, 0.0, a.power_max_kw)}


def _flexible(a: FlexibleLoad, b: Balance, sp: Array) -> dict[str, Array]:
    default = np.where(a.inside(b.hours), a.energy_kwh / a.window_h, 0.0)
    return {"electricity": _chosen(sp, default, 0.0, a.power_max_kw)}


Handler = Callable[[Any, Balance, Array], dict[str, Array]]
DISPATCH_ORDER: tuple[tuple[type, Handler, float], ...] = (
    (CHP, _chp, -1.0),
    (FuelCell, _fuel_cell, -1.0),
    (HeatPump, _heat_pump, 1.0),
    (GasBoiler, _boiler, 0.0),
    (ElectricBoiler, _boiler, 1.0),
    (ElectricChiller, _chiller, 1.0),
    (AbsorptionChiller, _absorption, 0.0),
    (Electrolyzer, _electrolyzer, 1.0),
    (FlexibleLoad, _flexible, 1.0),
)
"""Merit order (heat recovered by CHPs and fuel cells, heat pumps, then that heat used
(`Balance.use_recovered`, before the first boilers), boilers, chillers) with the sign of each
type's electricity reading on the bus: +1 drawn, −1 supplied, 0 none."""

SURPLUS_HEAT_KW = 1e-6
"""Recovered heat left unused below which a CHP is not turned down (float noise, not heat)."""
MIN_LOAD_HEAT_USED = 0.5
"""A CHP whose heat use falls under its minimum load keeps running at that minimum (its dry
cooler taking the rest) while at least this share of the minimum's heat is used, and stops
below it. A unit's controller rides a dip on its heat buffer rather than trip for every kW of
forecast error: stopping for a small shortfall would lose its whole minimum output, a rise in
import the plan could not know of."""

CARRIERS: dict[type, tuple[str, ...]] = {
    CHP: ("electricity", "gas", "heat"),
    FuelCell: ("electricity", "heat"),
    HeatPump: ("heat", "electricity"),
    GasBoiler: ("heat", "gas"),
    ElectricBoiler: ("heat", "electricity"),
    ElectricChiller: ("cooling", "electricity"),
    AbsorptionChiller: ("cooling", "heat"),
    Electrolyzer: ("electricity",),
    FlexibleLoad: ("electricity",),
    PV: ("pv", "electricity"),
    Wind: ("electricity",),
}
"""The readings each converter or generator type has; storage has its carrier and `soc`."""


def dispatch(
    assets: list[Asset],
    flows: Mapping[str, Flows],
    balance: Balance,
    sl: slice,
    setpoints: Mapping[str, Array],
    free: Collection[str] = (),
) -> None:
    """Write the converters' flows for the steps in `sl` (storage, PV and wind are set already).

    Where recovered heat is left unused, the node's CHPs (but those in `free`, run for the
    connection's import limit) are turned down by that heat, the last one first, held at their
    minimum load while it uses MIN_LOAD_HEAT_USED of that load's heat and stopped below; the
    node is then dispatched again from where it started."""
    start = balance.copy()
    _dispatch_once(assets, flows, balance, sl, setpoints)
    chps = [a for a in assets if isinstance(a, CHP) and a.id not in free]
    if not chps or balance.recovered.max(initial=0.0) <= SURPLUS_HEAT_KW:
        return
    surplus, capped = balance.recovered.copy(), dict(setpoints)
    for chp in reversed(chps):
        electric = flows[chp.id].readings["electricity"][sl]
        fuel_less = np.minimum(surplus / chp.eta_th, electric / chp.eta_el)
        surplus = surplus - fuel_less * chp.eta_th
        lower = electric - fuel_less * chp.eta_el
        min_kw = chp.fuel_max_kw * chp.eta_el * chp.min_load
        held = np.where(lower >= MIN_LOAD_HEAT_USED * min_kw, np.minimum(electric, min_kw), 0.0)
        capped[chp.id] = np.where(lower < min_kw * (1 - 1e-9) + 1e-9, held, lower)
        # held at its minimum it still dumps heat: the CHPs before it take that off (never < 0)
        surplus = np.maximum(surplus + (capped[chp.id] - lower) / chp.eta_el * chp.eta_th, 0.0)
    fresh = start.copy()
    _dispatch_once(assets, flows, fresh, sl, capped)
    balance.heat_left, balance.cooling_left = fresh.heat_left, fresh.cooling_left
    balance.recovered_heat = fresh.recovered


def _dispatch_once(
    assets: list[Asset],
    flows: Mapping[str, Flows],
    balance: Balance,
    sl: slice,
    setpoints: Mapping[str, Array],
) -> None:
    steps = len(balance.hours)
    for kind, handler, bus_sign in DISPATCH_ORDER:
        if kind is GasBoiler:
            balance.use_recovered()
        for asset in assets:
            if not isinstance(asset, kind):
                continue
            sp = setpoints.get(asset.id, np.full(steps, np.nan))
            out = flows[asset.id]
            for carrier, values in handler(asset, balance, sp).items():
                out.readings[carrier][sl] = values
            if "electricity" in out.readings:
                out.grid_kw[sl] = bus_sign * out.readings["electricity"][sl]


def storage_bus_sign(asset: Storage) -> float:
    """A battery's charge is drawn from the bus; thermal and hydrogen storage charge elsewhere."""
    return 1.0 if isinstance(asset, Battery) else 0.0


def storage_carrier(asset: Storage) -> str:
    if isinstance(asset, Battery):
        return "electricity"
    if isinstance(asset, ThermalStorage):
        return asset.carrier
    return "hydrogen"
