"""The virtual park: each node's loads and asset flows over the whole run, and a signal per meter.

A node is a building or a park's own level (its shared assets and meters). Everything is computed
for all steps at once under the default rules; `redispatch_park` recomputes a park's nodes for a
slice of steps when setpoints or a diverged storage SOC change their flows.

A park's connection exports no more than its `export_max_kw` (0: none): where the nodes' net draw
would export more, the park's local controller curtails its PV and wind first, then turns its
CHPs and fuel cells down (a CHP stops rather than run below its minimum load); the power taken
off is kept per step on the park node (`curtailed_kw`, `throttled_kw`). A store discharging
into the grid is not held back (a plan under the limit never asks it; the default rule's
half-power discharge in the peak hours can, on a small load).

A park's own heat and cooling (its CHP, fuel cell, absorption chiller, stores) reach its buildings
as district heat and cooling, as the planner models them: what a building's heat pumps and
chillers leave of its demand is the park's district demand; district heat then serves the
building before its boilers burn.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from energyhub.sites import (
    CHP,
    PV,
    Building,
    ElectricBoiler,
    FuelCell,
    GasBoiler,
    Meter,
    Park,
    SiteFile,
    Wind,
)
from simulators.devices import (
    CARRIERS,
    STORAGE_TYPES,
    Balance,
    Flows,
    Storage,
    StorageState,
    dispatch,
    storage_bus_sign,
    storage_carrier,
    storage_request_kw,
)
from simulators.errors import SimulatorInputError
from simulators.profiles import BuildingLoads, building_loads
from simulators.weather import (
    Array,
    TimeGrid,
    ar1,
    clear_sky_ghi_w_m2,
    clearness,
    outdoor_humidity_pct,
    outdoor_temperature_c,
    pv_power_kw,
    wind_power_kw,
)

Signal = Callable[[slice], Array]
SENSORS = frozenset({"temperature_c", "humidity_pct", "occupancy"})
METER_NOISE = 0.005
"""Relative measurement noise of a power meter (class 0.5S)."""


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A Generator keyed by the seed and ids, so adding a building leaves the others unchanged."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


@dataclass(frozen=True, slots=True)
class Weather:
    outdoor_c: Array
    humidity_pct: Array
    ghi_w_m2: Array


def make_weather(grid: TimeGrid, seed: int) -> Weather:
    rng = rng_for(seed, "weather")
    outdoor = outdoor_temperature_c(grid, rng)
    ghi = clear_sky_ghi_w_m2(grid) * clearness(grid, rng)
    return Weather(outdoor, outdoor_humidity_pct(grid, outdoor, rng), ghi)


@dataclass(eq=False, slots=True)
class Node:
    """A building, or a park's own level with its buildings as children."""

    park: Park
    site: Park | Building
    loads: BuildingLoads | None
    flows: dict[str, Flows]
    storage: dict[str, StorageState]
    requests: dict[str, Array]
    grid_kw: Array
    children: list[Node] = field(default_factory=list)
    available_kw: dict[str, Array] = field(default_factory=dict)
    """PV and wind output before any curtailment, by asset id."""
    curtailed_kw: Array = field(default_factory=lambda: np.zeros(0))
    """A park node's PV and wind output curtailed to hold its export limit, per step."""
    throttled_kw: Array = field(default_factory=lambda: np.zeros(0))
    """A park node's CHP and fuel cell output turned down to hold its export limit, per step."""
    unserved_kw: dict[str, Array] = field(default_factory=dict)
    """Heat and cooling nobody made, per step, its stores' charging included: a building's what
    its own plant and the park's district supply left of its demand; a park's heat its buildings'
    summed, its cooling what its own plant left of the district demand and its stores' charging
    (`_redispatch_park_once`)."""

    @property
    def id(self) -> str:
        return self.site.id

    def subtree(self) -> Iterator[Node]:
        yield self
        yield from self.children

    def storage_assets(self) -> Iterator[Storage]:
        return (a for a in self.site.assets if isinstance(a, STORAGE_TYPES))

    def write_storage(self, asset: Storage, sl: slice, power: Array, soc: Array) -> None:
        flows = self.flows[asset.id]
        flows.readings[storage_carrier(asset)][sl] = power
        flows.readings["soc"][sl] = soc
        flows.grid_kw[sl] = storage_bus_sign(asset) * power


def _new_node(
    park: Park, site: Park | Building, grid: TimeGrid, weather: Weather, seed: int
) -> Node:
    rng = rng_for(seed, site.id)
    loads = (
        building_loads(site, grid, weather.outdoor_c, rng) if isinstance(site, Building) else None
    )
    node = Node(park, site, loads, {}, {}, {}, np.zeros(grid.steps))
    node.curtailed_kw, node.throttled_kw = np.zeros(grid.steps), np.zeros(grid.steps)
    node.unserved_kw = {"heat": np.zeros(grid.steps), "cooling": np.zeros(grid.steps)}
    hours = grid.local_hours()
    for asset in site.assets:
        if isinstance(asset, STORAGE_TYPES):
            node.flows[asset.id] = Flows.zeros((storage_carrier(asset), "soc"), grid.steps)
            node.storage[asset.id] = StorageState(asset, asset.soc_initial)
            node.requests[asset.id] = storage_request_kw(asset, hours)
            power, soc = StorageState(asset, asset.soc_initial).run(
                node.requests[asset.id], grid.step_h
            )
            node.write_storage(asset, slice(None), power, soc)
            continue
        flows = node.flows[asset.id] = Flows.zeros(CARRIERS[type(asset)], grid.steps)
        if isinstance(asset, PV | Wind):
            output = (
                pv_power_kw(asset.peak_kw, weather.ghi_w_m2, weather.outdoor_c)
                * rng.uniform(0.9, 1.0)
                if isinstance(asset, PV)
                else wind_power_kw(asset.peak_kw, grid, rng)
            )
            node.available_kw[asset.id] = output
            _set_output(flows, slice(None), output)
    return node


Setpoints = Mapping[str, Mapping[str, Array]]
"""Setpoint series by node id, then asset id."""


EXPORT_TOLERANCE_KW = 1e-6
"""Export above the connection's limit below which nothing is curtailed (float noise)."""
EXPORT_PASSES = 4
"""Dispatches at most per hold of the export limit: a generator turned down takes heat away that
boilers then make, which changes the draw again; each pass only turns down further."""


def redispatch_park(
    park: Node,
    hours: Array,
    weather: Weather,
    sl: slice,
    setpoints: Setpoints,
    free: Collection[str] = (),
) -> None:
    """Recompute a park's nodes for the steps in `sl` (`_redispatch_park_once`) within its
    connection's export limit: where they would export more, curtail PV and wind, then turn the
    CHPs and fuel cells down (their setpoints capped); what was taken off is kept on the park
    node."""
    limit = park.park.grid.export_max_kw
    capped: dict[str, dict[str, Array]] = {k: dict(v) for k, v in setpoints.items()}
    first_output: dict[str, Array] = {}
    park.curtailed_kw[sl], park.throttled_kw[sl] = 0.0, 0.0
    for _ in range(EXPORT_PASSES):
        for node in park.subtree():  # renewables at what the sun and wind give
            for asset_id, output in node.available_kw.items():
                _set_output(node.flows[asset_id], sl, output[sl])
        _redispatch_park_once(park, hours, weather, sl, capped, free)
        for node, asset in _generators(park):
            first_output.setdefault(
                asset.id, node.flows[asset.id].readings["electricity"][sl].copy()
            )
        excess = np.maximum(-park.grid_kw[sl] - limit, 0.0)
        park.curtailed_kw[sl] = _curtail(park, sl, excess)
        excess = np.maximum(-park.grid_kw[sl] - limit, 0.0)
        if excess.max(initial=0.0) <= EXPORT_TOLERANCE_KW:
            break
        for node, asset in _generators(park):
            running = node.flows[asset.id].readings["electricity"][sl]
            lower = np.maximum(running - excess, 0.0)
            if isinstance(asset, CHP):  # below its minimum load a CHP stops
                min_kw = asset.fuel_max_kw * asset.eta_el * asset.min_load
                lower = np.where(lower < min_kw * (1 - 1e-9), 0.0, lower)
            excess = np.maximum(excess - (running - lower), 0.0)
            asked = capped.setdefault(node.id, {}).get(asset.id)
            cut = running - lower > EXPORT_TOLERANCE_KW
            capped[node.id][asset.id] = np.where(
                cut, lower, asked if asked is not None else np.full(len(lower), np.nan)
            )
    park.throttled_kw[sl] = sum(
        (
            np.maximum(first_output[a.id] - n.flows[a.id].readings["electricity"][sl], 0.0)
            for n, a in _generators(park)
        ),
        np.zeros(len(hours[sl])),
    )


def _set_output(flows: Flows, sl: slice, output: Array) -> None:
    """A PV or wind asset's output on its meters and its node's bus."""
    for carrier in flows.readings:
        flows.readings[carrier][sl] = output
    flows.grid_kw[sl] = -output


def _generators(park: Node) -> list[tuple[Node, CHP | FuelCell]]:
    """The park's CHPs and fuel cells, the park's own last (its buildings' turned down first)."""
    return [
        (node, asset)
        for node in park.subtree()
        for asset in node.site.assets
        if isinstance(asset, CHP | FuelCell)
    ][::-1]


def _curtail(park: Node, sl: slice, excess: Array) -> Array:
    """Take `excess` off the park's PV and wind (each in turn, none below 0), the nodes' draw
    recomputed; the power curtailed per step."""
    curtailed = np.zeros(len(excess))
    if excess.max(initial=0.0) <= EXPORT_TOLERANCE_KW:
        return curtailed
    for node in park.subtree():
        for asset_id in node.available_kw:
            flows = node.flows[asset_id]
            output = flows.readings["electricity"][sl]
            cut = np.minimum(np.maximum(excess - curtailed, 0.0), output)
            _set_output(flows, sl, output - cut)
            curtailed += cut
    for child in park.children:
        child.grid_kw[sl] = _net_draw(child, sl)
    park.grid_kw[sl] = _net_draw(park, sl)
    return curtailed


def _redispatch_park_once(
    park: Node,
    hours: Array,
    weather: Weather,
    sl: slice,
    setpoints: Setpoints,
    free: Collection[str] = (),
) -> None:
    """Recompute a park's nodes for the steps in `sl`: its buildings on their own devices, the
    park's devices on its own and its buildings' district demand, then the buildings that get
    district heat, their boilers burning less; `free` as `dispatch` takes it."""
    heat_wanted, cooling_wanted = {}, {}
    for child in park.children:
        left = redispatch(child, hours, weather, sl, setpoints.get(child.id, {}), free)
        boilers = [a for a in child.site.assets if isinstance(a, GasBoiler | ElectricBoiler)]
        heat_wanted[child.id] = left.heat_left + sum(
            (child.flows[a.id].readings["heat"][sl] for a in boilers), np.zeros(left.hours.shape)
        )
        cooling_wanted[child.id] = left.cooling_left
    wanted = sum(heat_wanted.values(), np.zeros(len(hours[sl])))
    cooling = sum(cooling_wanted.values(), np.zeros(len(hours[sl])))
    left = redispatch(park, hours, weather, sl, setpoints.get(park.id, {}), free, wanted, cooling)
    delivered = np.maximum(wanted - left.heat_left, 0.0)
    if delivered.max(initial=0.0) > 0:
        share = np.divide(delivered, wanted, out=np.zeros_like(wanted), where=wanted > 0)
        for child in park.children:
            if heat_wanted[child.id].max(initial=0.0) > 0:
                offered = heat_wanted[child.id] * share
                redispatch(child, hours, weather, sl, setpoints.get(child.id, {}), free,
                           offered_heat_kw=offered)  # fmt: skip
        park.grid_kw[sl] = _net_draw(park, sl)
    short = np.divide(left.cooling_left, cooling, out=np.zeros_like(cooling), where=cooling > 0)
    for child in park.children:  # the district's shortfall shared as the buildings asked for it
        child.unserved_kw["cooling"][sl] = cooling_wanted[child.id] * np.minimum(short, 1.0)
    park.unserved_kw["heat"][sl] = sum(
        (child.unserved_kw["heat"][sl] for child in park.children), np.zeros(len(wanted))
    )  # the park's own heat left is its buildings' boilers' to serve


def redispatch(
    node: Node,
    hours: Array,
    weather: Weather,
    sl: slice,
    setpoints: Mapping[str, Array],
    free: Collection[str] = (),
    district_heat_kw: Array | None = None,
    district_cooling_kw: Array | None = None,
    offered_heat_kw: Array | None = None,
) -> Balance:
    """Recompute the node's converters and its net grid draw for the steps in `sl`, with the
    district demand it serves (a park) or the district heat offered to it (a building); what is
    left of its demand and recovered heat."""
    steps = len(hours[sl])
    loads = node.loads
    heat = loads.heat_kw[sl].copy() if loads else np.zeros(steps)
    cooling = loads.cooling_kw[sl].copy() if loads else np.zeros(steps)
    if district_heat_kw is not None:
        heat += district_heat_kw
    if district_cooling_kw is not None:
        cooling += district_cooling_kw
    for asset in node.storage_assets():
        carrier = storage_carrier(asset)
        if carrier == "heat":
            heat += node.flows[asset.id].readings[carrier][sl]
        elif carrier == "cooling":
            cooling += node.flows[asset.id].readings[carrier][sl]
    offered = None if offered_heat_kw is None else offered_heat_kw.copy()
    balance = Balance(
        hours[sl], weather.outdoor_c[sl], np.maximum(heat, 0), np.maximum(cooling, 0), offered
    )
    dispatch(node.site.assets, node.flows, balance, sl, setpoints, free)
    node.grid_kw[sl] = _net_draw(node, sl)
    node.unserved_kw["heat"][sl] = balance.heat_left
    node.unserved_kw["cooling"][sl] = balance.cooling_left
    return balance


def _net_draw(node: Node, sl: slice) -> Array:
    """The node's draw on its connection: its electric load, its assets' and its children's."""
    loads = node.loads
    total = loads.electric_kw[sl].copy() if loads else np.zeros(len(node.grid_kw[sl]))
    for flows in node.flows.values():
        total += flows.grid_kw[sl]
    for child in node.children:
        total += child.grid_kw[sl]
    return total


@dataclass(frozen=True, slots=True)
class Channel:
    """One meter of the site file, with the signal that produces its readings."""

    node: Node
    meter: Meter
    signal: Signal
    noise: Array | None

    @property
    def counter(self) -> bool:
        return self.meter.quantity == "energy_kwh"

    def evaluate(self, sl: slice) -> Array:
        values = self.signal(sl)
        return values * self.noise[sl] if self.noise is not None else values


@dataclass(eq=False, slots=True)
class Plant:
    """The whole simulated site: nodes (park nodes hold their buildings) and meter channels."""

    site: SiteFile
    grid: TimeGrid
    weather: Weather
    hours: Array
    parks: list[Node]
    channels: list[Channel]
    values: Array
    seed: int

    def nodes(self) -> Iterator[Node]:
        for park in self.parks:
            yield from park.children
            yield park

    def export_held_kwh(self, steps: int) -> tuple[float, float]:
        """(PV and wind curtailed, CHP and fuel cell output turned down) over the first `steps`
        steps, kWh, summed over the parks: what holding their export limits took off."""
        step_h = self.grid.step_h
        curtailed = sum(float(p.curtailed_kw[:steps].sum()) for p in self.parks) * step_h
        throttled = sum(float(p.throttled_kw[:steps].sum()) for p in self.parks) * step_h
        return curtailed, throttled


def build_plant(site: SiteFile, grid: TimeGrid, seed: int) -> Plant:
    """Loads, default dispatch and every meter's readings for the whole run, vectorized, on the
    site's clock (office hours, weekends, the default rules' hours in its time zone, whatever
    zone `grid` was given in)."""
    grid = grid.for_site(site)
    weather = make_weather(grid, seed)
    hours = grid.local_hours()
    parks = []
    for park in site.city.parks:
        children = [_new_node(park, b, grid, weather, seed) for b in park.buildings]
        node = _new_node(park, park, grid, weather, seed)
        node.children = children
        redispatch_park(node, hours, weather, slice(None), {})
        parks.append(node)
    plant = Plant(site, grid, weather, hours, parks, [], np.zeros((0, grid.steps)), seed)
    plant.channels = [
        _channel(plant, node, park, meter)
        for park in parks
        for node in (*park.children, park)
        for meter in node.site.meters
    ]
    plant.values = np.array([c.evaluate(slice(None)) for c in plant.channels]).reshape(
        len(plant.channels), grid.steps
    )
    return plant


def _channel(plant: Plant, node: Node, park: Node, meter: Meter) -> Channel:
    rng = rng_for(plant.seed, node.id, meter.id)
    steps = plant.grid.steps
    if meter.quantity == "soc_pct":
        return Channel(node, meter, _soc_signal(node, park, meter), None)
    if meter.quantity in SENSORS:
        return Channel(node, meter, _sensor_signal(plant, node, meter, rng), None)
    noise = 1.0 + rng.normal(0.0, METER_NOISE, steps)
    if meter.asset is not None:
        return Channel(node, meter, _asset_signal(node, park, meter), noise)
    return Channel(node, meter, _carrier_signal(plant, node, meter, rng), noise)


def _where(node: Node, meter: Meter) -> str:
    return f"meter {meter.id!r} of {node.id}"


def _asset_flows(node: Node, park: Node, meter: Meter) -> Flows:
    assert meter.asset is not None  # noqa: S101 - callers check
    flows = node.flows.get(meter.asset) or park.flows.get(meter.asset)
    if flows is None:
        raise SimulatorInputError(f"{_where(node, meter)}: no asset {meter.asset!r}")
    return flows


def _soc_signal(node: Node, park: Node, meter: Meter) -> Signal:
    if meter.asset is None or "soc" not in _asset_flows(node, park, meter).readings:
        raise SimulatorInputError(
            f"{_where(node, meter)}: soc_pct needs `asset:` naming a battery, "
            f"thermal_storage or hydrogen_store, got {meter.asset!r}"
        )
    soc = _asset_flows(node, park, meter).readings["soc"]
    return lambda sl: soc[sl] * 100.0


def _asset_signal(node: Node, park: Node, meter: Meter) -> Signal:
    flows = _asset_flows(node, park, meter)
    reading = flows.readings.get(meter.carrier)
    if reading is None:
        have = ", ".join(c for c in flows.readings if c != "soc")
        raise SimulatorInputError(
            f"{_where(node, meter)}: asset {meter.asset!r} has no {meter.carrier} flow "
            f"to measure (it has: {have})"
        )
    return lambda sl: reading[sl]


def _sensor_signal(plant: Plant, node: Node, meter: Meter, rng: np.random.Generator) -> Signal:
    steps = plant.grid.steps
    outdoor = node.loads is None or "outdoor" in meter.id
    if meter.quantity == "occupancy":
        people = sum((n.loads.occupancy for n in node.subtree() if n.loads), np.zeros(steps))
        return lambda sl: people[sl]
    if meter.quantity == "temperature_c":
        base = plant.weather.outdoor_c if outdoor or node.loads is None else node.loads.indoor_c
        values = base + rng.normal(0.0, 0.1, steps)
    else:
        base = (
            plant.weather.humidity_pct
            if outdoor or node.loads is None
            else node.loads.indoor_rh_pct
        )
        values = np.clip(base + rng.normal(0.0, 0.5, steps), 0.0, 100.0)
    return lambda sl: values[sl]


def _carrier_signal(plant: Plant, node: Node, meter: Meter, rng: np.random.Generator) -> Signal:
    steps, carrier = plant.grid.steps, meter.carrier
    nodes = list(node.subtree())
    if carrier == "electricity" and meter.submeter_of is not None:
        share = rng.uniform(0.05, 0.3) * (
            1.0 + ar1(rng, steps, 0.05, 30.0 * 60 / plant.grid.step_s)
        )
        base = node.loads.electric_kw if node.loads else None
        return lambda sl: (
            share[sl] * (base[sl] if base is not None else np.maximum(node.grid_kw[sl], 0))
        )
    if carrier == "electricity":
        return lambda sl: node.grid_kw[sl]
    if carrier in ("heat", "cooling"):
        demand = sum((getattr(n.loads, f"{carrier}_kw") for n in nodes if n.loads), np.zeros(steps))
        return lambda sl: demand[sl]
    if carrier in ("gas", "pv"):
        readings = [
            f.readings[carrier] for n in nodes for f in n.flows.values() if carrier in f.readings
        ]
        return lambda sl: sum((r[sl] for r in readings), np.zeros(len(plant.hours[sl])))
    if carrier == "water":
        people = sum((n.loads.occupancy for n in nodes if n.loads), np.zeros(steps))
        flow = 0.002 * people + 0.5
        return lambda sl: flow[sl]
    raise SimulatorInputError(
        f"{_where(node, meter)}: cannot simulate a {meter.quantity} meter of carrier "
        f"{carrier!r} without `asset:` (give the asset it measures)"
    )
