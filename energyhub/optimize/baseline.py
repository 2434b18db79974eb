"""The baseline every plan is compared with: the same demands, dispatched by rules, not optimized.

One rule set for the plan's own baseline figure and for the counterfactual of realized savings
(energyhub.plans.realized), as a rule-based operator would run the site:

- PV and wind are used first on site, the surplus exported up to the limit (the rest curtailed);
- the connection never exports more than its `export_max_kw`, as the site's local controller
  holds it (simulators/plant.py): PV and wind are curtailed first, then CHPs turned down (the
  buildings' before the park's own; a CHP stops rather than run below its minimum load) and the
  heat they no longer make served by the next device in the merit order (`_dispatch_scope`);
- storage stays idle; electrolyzer and fuel cell stay off (no hydrogen is made by rule);
- flexible loads run as early as their window allows;
- cooling and then heat are met each step by the cheapest device first (merit order on marginal
  cost, carbon price included). A CHP runs heat-led in that order: its marginal cost is its gas
  per kWh of heat less the import it displaces per kWh of heat; below its minimum load it is off
  and the next device serves, unless nothing else can, when it runs at its minimum load (the
  surplus heat is dumped);
- at park level a building's own devices go first and the park's shared devices meet what they
  cannot.

Demand no device can meet, and import above the connection's `import_max_kw`, is unserved: it is
reported (`unserved_kwh`) and priced at UNSERVED_CNY_PER_KWH (cost term `unserved`), never free.
The demand charge is billed as the plan's is (tariffs.demand_cny: under monthly billing, the rise
of each billing month's peak above the peak that month started from), on every connection the
plan bills (`Scope.connections`): a building with its own `grid:` on its own draw, in a park's
baseline as in its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from energyhub.optimize.assets import window_days
from energyhub.optimize.conversion import cop_series
from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.model import Array
from energyhub.optimize.network import Context, Prices
from energyhub.optimize.scope import Node, Scope
from energyhub.optimize.tariffs import (
    billing_months,
    demand_cny,
    first_month_peak_kw,
    free_peak_kw,
)
from energyhub.sites import (
    CHP,
    PV,
    AbsorptionChiller,
    ElectricBoiler,
    ElectricChiller,
    FlexibleLoad,
    GasBoiler,
    GridConnection,
    HeatPump,
    Wind,
)

UNSERVED_CNY_PER_KWH = {"electricity": 3.0, "heat": 1.2, "cooling": 1.2}
"""Price of a kWh the rules cannot serve, per carrier: what a stop-gap supply would cost the
operator, fuel and rental together (an assumption, docs/billing-and-savings.md): a rented diesel
generator (≈ 0.28 L/kWh at ≈ 7.8 CNY/L is 2.2 CNY/kWh of fuel), a rented diesel boiler (7.8 CNY/L
÷ 10 kWh/L ÷ 0.88 is 0.89 CNY/kWh of fuel) or an air-cooled rental chiller. Not a penalty for
comfort lost: a plan that serves the demand is credited with no more than the cheapest way out."""


@dataclass(frozen=True, slots=True)
class Baseline:
    cost_cny: dict[str, float]
    co2_kg_by_carrier: dict[str, float]
    unserved_kwh: dict[str, float]
    peak_import_kw: float = 0.0

    @property
    def total_cny(self) -> float:
        return sum(self.cost_cny.values())

    @property
    def co2_kg(self) -> float:
        return sum(self.co2_kg_by_carrier.values())

    @staticmethod
    def combined(parts: Sequence[Baseline]) -> Baseline:
        """The baseline of several parks: every term summed."""

        def total(maps: list[dict[str, float]]) -> dict[str, float]:
            keys = dict.fromkeys(k for m in maps for k in m)
            return {k: sum(m.get(k, 0.0) for m in maps) for k in keys}

        return Baseline(
            total([p.cost_cny for p in parts]),
            total([p.co2_kg_by_carrier for p in parts]),
            total([p.unserved_kwh for p in parts]),
            sum(p.peak_import_kw for p in parts),
        )


@dataclass
class _Draws:
    """What the rules draw from the grid and the gas supply, per step, and each CHP's electric
    output (by asset id)."""

    electricity: Array
    gas: Array
    chp_kw: dict[str, Array] = field(default_factory=dict)
    node_kw: dict[str, Array] = field(default_factory=dict)
    """Each building's own electricity draw (by node id): what its feeder carries."""


EXPORT_PASSES = 4
"""Dispatches at most per hold of the export limit, as the simulator's local controller: a CHP
turned down takes heat away that the next device then makes, which changes the draw again; each
pass only turns down further."""
EXPORT_TOLERANCE_KW = 1e-6
"""Export above the connection's limit below which nothing is turned down (float noise)."""


def merit_order(demand: Array, capacity: Array, cost: Array) -> tuple[Array, Array]:
    """Serve demand (n) from k devices (capacity, cost: k×n), cheapest first; (served, unserved)."""
    if capacity.shape[0] == 0:
        return capacity, demand.copy()
    order = np.argsort(cost, axis=0, kind="stable")
    caps = np.take_along_axis(capacity, order, axis=0)
    before = np.cumsum(caps, axis=0) - caps
    served_sorted = np.clip(demand[None, :] - before, 0.0, caps)
    served = np.empty_like(served_sorted)
    np.put_along_axis(served, order, served_sorted, axis=0)
    return served, demand - served.sum(axis=0)


@dataclass(frozen=True, slots=True)
class Heater:
    """A heat device for the merit order: marginal cost and draws per kWh of heat, by step."""

    cost: Array
    electricity_per_kwh: Array
    gas_per_kwh: float
    heat_max_kw: float | Array
    """Per step where the export limit caps a CHP (`_dispatch_scope`)."""
    heat_min_kw: float = 0.0
    chp: CHP | None = None


def heaters(ctx: Context, node: Node, caps: Mapping[str, Array] | None = None) -> list[Heater]:
    """A node's heat devices the rules may run (heat pumps, boilers, CHP), for the merit order;
    `caps`: the heat a CHP may make per step (by asset id) where the export limit holds it."""
    prices, n = ctx.prices, ctx.n
    heaters = []
    for a in node.assets:
        if isinstance(a, HeatPump):
            per_kwh = 1.0 / cop_series(ctx, a)
            heaters.append(
                Heater(prices.import_effective_cny_per_kwh * per_kwh, per_kwh, 0.0, a.heat_max_kw)
            )
        elif isinstance(a, ElectricBoiler):
            per_kwh = np.full(n, 1.0 / a.eta)
            heaters.append(
                Heater(prices.import_effective_cny_per_kwh * per_kwh, per_kwh, 0.0, a.heat_max_kw)
            )
        elif isinstance(a, GasBoiler):
            cost = np.full(n, prices.gas_effective_cny_per_kwh / a.eta)
            heaters.append(Heater(cost, np.zeros(n), 1.0 / a.eta, a.heat_max_kw))
        elif isinstance(a, CHP):
            heaters.append(_chp(prices, n, a, (caps or {}).get(a.id)))
    return heaters


def _chp(prices: Prices, n: int, chp: CHP, cap: Array | None = None) -> Heater:
    """A heat-led CHP: gas per kWh of heat, less the import its electricity displaces; `cap`
    its heat per step under the export limit."""
    power_per_heat = chp.eta_el / chp.eta_th
    heat_max = chp.fuel_max_kw * chp.eta_th
    cost = (
        np.full(n, prices.gas_effective_cny_per_kwh / chp.eta_th)
        - prices.import_effective_cny_per_kwh * power_per_heat
    )
    most: float | Array = heat_max if cap is None else np.minimum(cap, heat_max)
    return Heater(
        cost, np.full(n, -power_per_heat), 1.0 / chp.eta_th, most, chp.min_load * heat_max, chp
    )


def _dispatch(heaters: list[Heater], demand: Array, n: int) -> tuple[Array, Array]:
    """Heat of each heater per step (k×n) by merit order, minimum loads kept; and unserved heat.

    A heater the order leaves below its minimum load is off there and the others serve; where
    they cannot, it runs at its minimum load instead (what the demand does not take is dumped).
    """
    caps = np.array([np.full(n, h.heat_max_kw) for h in heaters]).reshape(-1, n)
    costs = np.array([h.cost for h in heaters]).reshape(-1, n)
    served, unserved = merit_order(demand, caps, costs)
    for k, heater in enumerate(heaters):
        short = (served[k] > 0) & (served[k] < heater.heat_min_kw)
        if heater.heat_min_kw <= 0 or not short.any():
            continue
        most = caps[k, short]
        caps[k, short] = 0.0
        without, left = merit_order(demand, caps, costs)
        keep_on = short & (left > 1e-9)
        off = short & ~keep_on
        served[:, off], unserved[off] = without[:, off], left[off]
        served[k, keep_on] = heater.heat_min_kw
        unserved[keep_on] = np.maximum(demand[keep_on] - served[:, keep_on].sum(axis=0), 0.0)
        caps[k, short] = most
    return served, unserved


def _serve_heat(
    ctx: Context, node: Node, demand: Array, draws: _Draws, caps: Mapping[str, Array]
) -> Array:
    found = heaters(ctx, node, caps)
    served, unserved = _dispatch(found, demand, ctx.n)
    for heater, heat in zip(found, served, strict=True):
        draws.electricity += heat * heater.electricity_per_kwh
        draws.gas += heat * heater.gas_per_kwh
        if heater.chp is not None:
            draws.chp_kw[heater.chp.id] = -heat * heater.electricity_per_kwh
    return unserved


@dataclass(frozen=True, slots=True)
class Chiller:
    """A cooling device for the merit order: COP, marginal cost per kWh of cooling, by step."""

    asset: ElectricChiller | AbsorptionChiller
    cop: Array
    cost: Array


def chillers(ctx: Context, node: Node) -> list[Chiller]:
    """A node's chillers; an absorption chiller's heat costs what the cheapest heater's does."""
    found = heaters(ctx, node)
    cheapest_heat = np.min([h.cost for h in found], axis=0) if found else np.full(ctx.n, np.inf)
    out = []
    for a in node.assets:
        if isinstance(a, ElectricChiller):
            cop = cop_series(ctx, a)
            out.append(Chiller(a, cop, ctx.prices.import_effective_cny_per_kwh / cop))
        elif isinstance(a, AbsorptionChiller):
            out.append(Chiller(a, np.full(ctx.n, a.cop), cheapest_heat / a.cop))
    return out


def _serve_cooling(ctx: Context, node: Node, demand: Array, draws: _Draws) -> tuple[Array, Array]:
    """Cooling by merit order; returns (unserved cooling, heat the absorption chillers need)."""
    found = chillers(ctx, node)
    caps = np.array([np.full(ctx.n, c.asset.cooling_max_kw) for c in found]).reshape(-1, ctx.n)
    costs = np.array([c.cost for c in found]).reshape(-1, ctx.n)
    served, unserved = merit_order(demand, caps, costs)
    heat = np.zeros(ctx.n)
    for chiller, cooling in zip(found, served, strict=True):
        if isinstance(chiller.asset, ElectricChiller):
            draws.electricity += cooling / chiller.cop
        else:
            heat += cooling / chiller.cop
    return unserved, heat


def rules_flexible_kw(inputs: PlanInputs, asset: FlexibleLoad) -> Array:
    """Power of a flexible load under the rules: at full power from the start of each window
    until served (each window's energy as `window_days` gives it for the steps of `inputs`)."""
    groups, energies = window_days(inputs, asset)
    power = np.zeros(inputs.n)
    dt_h = inputs.dt_h
    for g, energy in enumerate(energies):
        steps = np.flatnonzero(groups == g)
        before = np.arange(steps.size) * asset.power_max_kw * dt_h
        power[steps] = np.clip(energy - before, 0.0, asset.power_max_kw * dt_h) / dt_h
    return power


def _node_draws(
    ctx: Context, node: Node, shortfall: dict[str, Array], caps: Mapping[str, Array]
) -> _Draws:
    """Serve a node's demands plus `shortfall` handed to it; leave its own shortfall there;
    `caps`: the CHPs' heat per step under the export limit."""
    zero = np.zeros(ctx.n)
    draws = _Draws(np.array(ctx.inputs.get(f"{node.id}:electricity_kw", 0.0)), zero.copy())
    for asset in node.assets:
        if isinstance(asset, PV | Wind):
            draws.electricity -= ctx.inputs.columns[f"{asset.id}:available_kw"]
        elif isinstance(asset, FlexibleLoad):
            draws.electricity += rules_flexible_kw(ctx.inputs, asset)
    cooling = np.asarray(ctx.inputs.get(f"{node.id}:cooling_kw", 0.0)) + shortfall["cooling"]
    unserved_cooling, absorption_heat = _serve_cooling(ctx, node, cooling, draws)
    heat = np.asarray(ctx.inputs.get(f"{node.id}:heat_kw", 0.0)) + shortfall["heat"]
    unserved_heat = _serve_heat(ctx, node, heat + absorption_heat, draws, caps)
    shortfall["cooling"], shortfall["heat"] = unserved_cooling, unserved_heat
    return draws


def compute_baseline(ctx: Context) -> Baseline:
    """Cost terms, CO₂ by carrier and unserved energy of the rule-based dispatch."""
    scope, inputs, prices, dt = ctx.scope, ctx.inputs, ctx.prices, ctx.dt_h
    total, handed_up = _dispatch_scope(ctx)
    months = billing_months(inputs.index)
    demand = 0.0
    for node, grid, imports in _connection_imports(total, scope):  # each billed as the plan is
        billed = free_peak_kw(inputs, node, grid, first_month_peak_kw(imports, months))
        demand += demand_cny(grid, imports, months, billed)
    return _account(scope, prices, total, dt, handed_up, demand)


def rules_import_kw(ctx: Context) -> dict[str, Array]:
    """Per connection (by the node it feeds, `Scope.connections`) and step, its import under the
    rules (within its limit): what the site draws without a plan, which the plan's peak margin is
    measured against (assets.add_grid, assets.add_building_links)."""
    total, _ = _dispatch_scope(ctx)
    return {node: imports for node, _, imports in _connection_imports(total, ctx.scope)}


def _connection_imports(
    total: _Draws, scope: Scope
) -> list[tuple[str, GridConnection, NDArray[np.float64]]]:
    """Each connection's import of the rules' draws (never below 0, never above its limit): the
    scope's own of everything, a building's own of the building's draw alone."""
    found = []
    for node, grid in scope.connections():
        draw = total.electricity if node == scope.grid_node else total.node_kw[node]
        found.append((node, grid, np.minimum(np.maximum(draw, 0.0), grid.import_max_kw)))
    return found


def _dispatch_scope(ctx: Context) -> tuple[_Draws, dict[str, Array]]:
    """The scope's draws under the rules and the heat and cooling left unserved, within the
    connection's export limit: where the draws would export more than PV and wind can be
    curtailed by, the CHPs are turned down (`_turned_down`) and the scope dispatched again."""
    caps: dict[str, Array] = {}
    for _ in range(EXPORT_PASSES):
        total, handed_up = _dispatch_once(ctx, caps)
        if not _turned_down(ctx, total, caps):
            break
    return total, handed_up


def _dispatch_once(ctx: Context, caps: Mapping[str, Array]) -> tuple[_Draws, dict[str, Array]]:
    """The scope's draws under the rules with the CHPs' heat capped at `caps`."""
    n = ctx.inputs.n
    total = _Draws(np.zeros(n), np.zeros(n))
    handed_up = {"heat": np.zeros(n), "cooling": np.zeros(n)}
    for node in ctx.scope.nodes[1:]:
        shortfall = {"heat": np.zeros(n), "cooling": np.zeros(n)}
        draws = _node_draws(ctx, node, shortfall, caps)
        total.node_kw[node.id] = draws.electricity.copy()
        _add(total, draws)
        for carrier, values in shortfall.items():
            handed_up[carrier] += values
    _add(total, _node_draws(ctx, ctx.scope.nodes[0], handed_up, caps))  # the head node last
    return total, handed_up


def _turned_down(ctx: Context, total: _Draws, caps: dict[str, Array]) -> bool:
    """Lower `caps` where the draws export more than the connection's limit and curtailing
    every kW of PV and wind would not bring it under: the CHPs (the buildings' first, the
    head node's last, as the simulator's local controller turns them down) give up that much
    electricity, one that would run below its minimum load stops. Whether any was lowered."""
    renewables = np.zeros(ctx.n)
    for _, asset in ctx.scope.assets():
        if isinstance(asset, PV | Wind):
            renewables += ctx.inputs.columns[f"{asset.id}:available_kw"]
    export = np.maximum(-total.electricity, 0.0)
    excess = np.maximum(export - ctx.scope.grid.export_max_kw - renewables, 0.0)
    if excess.max(initial=0.0) <= EXPORT_TOLERANCE_KW:
        return False
    chps = [a for node in ctx.scope.nodes for a in node.assets if isinstance(a, CHP)][::-1]
    lowered = False
    for chp in chps:
        running = total.chp_kw.get(chp.id, np.zeros(ctx.n))
        lower = np.maximum(running - excess, 0.0)
        min_kw = chp.fuel_max_kw * chp.eta_el * chp.min_load
        lower = np.where(lower < min_kw * (1 - 1e-9), 0.0, lower)
        excess = np.maximum(excess - (running - lower), 0.0)
        heat = lower * chp.eta_th / chp.eta_el
        cut = running - lower > EXPORT_TOLERANCE_KW
        before = caps.get(chp.id, np.full(ctx.n, chp.fuel_max_kw * chp.eta_th))
        caps[chp.id] = np.where(cut, np.minimum(before, heat), before)
        lowered = lowered or bool(cut.any())
    return lowered


def _add(total: _Draws, draws: _Draws) -> None:
    total.electricity += draws.electricity
    total.gas += draws.gas
    total.chp_kw.update(draws.chp_kw)


def _account(
    scope: Scope,
    prices: Prices,
    total: _Draws,
    dt: float,
    shortfall: dict[str, Array],
    demand: float,
) -> Baseline:
    wanted = np.maximum(total.electricity, 0.0)
    imp = np.minimum(wanted, scope.grid.import_max_kw)
    exp = np.minimum(np.maximum(-total.electricity, 0.0), scope.grid.export_max_kw)
    co2 = {
        "electricity": float(np.sum(prices.grid_kg_per_kwh * imp) * dt),
        "gas": float(total.gas.sum() * dt * prices.gas_kg_per_kwh),
    }
    unserved = {carrier: float(values.sum() * dt) for carrier, values in shortfall.items()}
    unserved["electricity"] = float((wanted - imp).sum() * dt)
    cost = {
        "energy": float(
            np.sum(prices.import_cny_per_kwh * imp - prices.export_cny_per_kwh * exp) * dt
        ),
        "demand": demand,
        "gas": float(total.gas.sum() * dt * prices.gas_cny_per_kwh),
        "carbon": prices.carbon_cny_per_kg * sum(co2.values()),
        "unserved": sum(UNSERVED_CNY_PER_KWH[c] * kwh for c, kwh in unserved.items()),
    }
    return Baseline(cost, co2, unserved, float(imp.max()) if imp.size else 0.0)
