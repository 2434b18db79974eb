"""The baseline every plan is compared with: the same demands, dispatched by rules, not optimized.

PV and wind are used first on site, the surplus exported up to the limit (the rest curtailed);
storage stays idle; CHP, electrolyzer and fuel cell stay off; flexible loads run as early as their
window allows; cooling and then heat are met each step by the cheapest device first (merit order
on marginal cost, carbon price included). At park level a building's own devices go first and
the park's shared devices meet what they cannot. Demand no device can meet is reported unserved.
The demand charge is billed as the plan's is (tariffs.demand_cny: the rise above the month-to-date
peak under monthly billing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from energyhub.optimize.assets import window_days
from energyhub.optimize.conversion import cop_series
from energyhub.optimize.model import Array
from energyhub.optimize.network import Context, Prices
from energyhub.optimize.scope import Node, Scope
from energyhub.optimize.tariffs import demand_cny, month_peak_kw
from energyhub.sites import (
    PV,
    AbsorptionChiller,
    ElectricBoiler,
    ElectricChiller,
    FlexibleLoad,
    GasBoiler,
    HeatPump,
    Wind,
)


@dataclass(frozen=True, slots=True)
class Baseline:
    cost_cny: dict[str, float]
    co2_kg_by_carrier: dict[str, float]
    unserved_kwh: dict[str, float]

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
        )


@dataclass
class _Draws:
    """What the rules draw from the grid and the gas supply, per step."""

    electricity: Array
    gas: Array


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
class _Heater:
    """A heat device for the merit order: marginal cost and draws per kWh of heat, by step."""

    cost: Array
    electricity_per_kwh: Array
    gas_per_kwh: float
    heat_max_kw: float


def _heaters(ctx: Context, node: Node) -> list[_Heater]:
    prices, n = ctx.prices, ctx.n
    heaters = []
    for a in node.assets:
        if isinstance(a, HeatPump):
            per_kwh = 1.0 / cop_series(ctx, a)
            heaters.append(
                _Heater(prices.import_effective_cny_per_kwh * per_kwh, per_kwh, 0.0, a.heat_max_kw)
            )
        elif isinstance(a, ElectricBoiler):
            per_kwh = np.full(n, 1.0 / a.eta)
            heaters.append(
                _Heater(prices.import_effective_cny_per_kwh * per_kwh, per_kwh, 0.0, a.heat_max_kw)
            )
        elif isinstance(a, GasBoiler):
            cost = np.full(n, prices.gas_effective_cny_per_kwh / a.eta)
            heaters.append(_Heater(cost, np.zeros(n), 1.0 / a.eta, a.heat_max_kw))
    return heaters


def _serve_heat(ctx: Context, node: Node, demand: Array, draws: _Draws) -> Array:
    heaters = _heaters(ctx, node)
    caps = np.array([np.full(ctx.n, h.heat_max_kw) for h in heaters]).reshape(-1, ctx.n)
    costs = np.array([h.cost for h in heaters]).reshape(-1, ctx.n)
    served, unserved = merit_order(demand, caps, costs)
    for heater, heat in zip(heaters, served, strict=True):
        draws.electricity += heat * heater.electricity_per_kwh
        draws.gas += heat * heater.gas_per_kwh
    return unserved


def _serve_cooling(ctx: Context, node: Node, demand: Array, draws: _Draws) -> tuple[Array, Array]:
    """Cooling by merit order; returns (unserved cooling, heat the absorption chillers need)."""
    heaters = _heaters(ctx, node)
    cheapest_heat = np.min([h.cost for h in heaters], axis=0) if heaters else np.full(ctx.n, np.inf)
    chillers = [a for a in node.assets if isinstance(a, ElectricChiller | AbsorptionChiller)]
    cops = [
        cop_series(ctx, a) if isinstance(a, ElectricChiller) else np.full(ctx.n, a.cop)
        for a in chillers
    ]
    costs = [
        (
            ctx.prices.import_effective_cny_per_kwh
            if isinstance(a, ElectricChiller)
            else cheapest_heat
        )
        / cop
        for a, cop in zip(chillers, cops, strict=True)
    ]
    caps = np.array([np.full(ctx.n, a.cooling_max_kw) for a in chillers]).reshape(-1, ctx.n)
    served, unserved = merit_order(demand, caps, np.array(costs).reshape(-1, ctx.n))
    heat = np.zeros(ctx.n)
    for chiller, cooling, cop in zip(chillers, served, cops, strict=True):
        if isinstance(chiller, ElectricChiller):
            draws.electricity += cooling / cop
        else:
            heat += cooling / cop
    return unserved, heat


def _flexible(ctx: Context, asset: FlexibleLoad) -> Array:
    """Power of a flexible load run at full power from the start of each window until served."""
    groups, coverage = window_days(ctx, asset.window_start_h, asset.window_end_h)
    power = np.zeros(ctx.n)
    for g, share in enumerate(coverage):
        steps = np.flatnonzero(groups == g)
        energy = asset.energy_kwh * share
        before = np.arange(steps.size) * asset.power_max_kw * ctx.dt_h
        power[steps] = np.clip(energy - before, 0.0, asset.power_max_kw * ctx.dt_h) / ctx.dt_h
    return power


def _node_draws(ctx: Context, node: Node, shortfall: dict[str, Array]) -> _Draws:
    """Serve a node's demands plus `shortfall` handed to it; leave its own shortfall there."""
    zero = np.zeros(ctx.n)
    draws = _Draws(np.array(ctx.inputs.get(f"{node.id}:electricity_kw", 0.0)), zero.copy())
    for asset in node.assets:
        if isinstance(asset, PV | Wind):
            draws.electricity -= ctx.inputs.columns[f"{asset.id}:available_kw"]
        elif isinstance(asset, FlexibleLoad):
            draws.electricity += _flexible(ctx, asset)
    cooling = np.asarray(ctx.inputs.get(f"{node.id}:cooling_kw", 0.0)) + shortfall["cooling"]
    unserved_cooling, absorption_heat = _serve_cooling(ctx, node, cooling, draws)
    heat = np.asarray(ctx.inputs.get(f"{node.id}:heat_kw", 0.0)) + shortfall["heat"]
    unserved_heat = _serve_heat(ctx, node, heat + absorption_heat, draws)
    shortfall["cooling"], shortfall["heat"] = unserved_cooling, unserved_heat
    return draws


def compute_baseline(ctx: Context) -> Baseline:
    """Cost terms, CO₂ by carrier and unserved energy of the rule-based dispatch."""
    scope, inputs, prices, dt = ctx.scope, ctx.inputs, ctx.prices, ctx.dt_h
    total = _Draws(np.zeros(inputs.n), np.zeros(inputs.n))
    handed_up = {"heat": np.zeros(inputs.n), "cooling": np.zeros(inputs.n)}
    for node in scope.nodes[1:]:
        shortfall = {"heat": np.zeros(inputs.n), "cooling": np.zeros(inputs.n)}
        _add(total, _node_draws(ctx, node, shortfall))
        for carrier, values in shortfall.items():
            handed_up[carrier] += values
    _add(total, _node_draws(ctx, scope.nodes[0], handed_up))  # the head (park) node serves last
    billed = month_peak_kw(inputs, scope.grid_node, scope.grid)
    return _account(scope, prices, total, dt, handed_up, billed)


def _add(total: _Draws, draws: _Draws) -> None:
    total.electricity += draws.electricity
    total.gas += draws.gas


def _account(
    scope: Scope,
    prices: Prices,
    total: _Draws,
    dt: float,
    shortfall: dict[str, Array],
    month_peak: float,
) -> Baseline:
    imp = np.maximum(total.electricity, 0.0)
    exp = np.minimum(np.maximum(-total.electricity, 0.0), scope.grid.export_max_kw)
    co2 = {
        "electricity": float(np.sum(prices.grid_kg_per_kwh * imp) * dt),
        "gas": float(total.gas.sum() * dt * prices.gas_kg_per_kwh),
    }
    cost = {
        "energy": float(
            np.sum(prices.import_cny_per_kwh * imp - prices.export_cny_per_kwh * exp) * dt
        ),
        "demand": demand_cny(scope.grid, float(imp.max()), month_peak),
        "gas": float(total.gas.sum() * dt * prices.gas_cny_per_kwh),
        "carbon": prices.carbon_cny_per_kg * sum(co2.values()),
    }
    unserved = {carrier: float(values.sum() * dt) for carrier, values in shortfall.items()}
    return Baseline(cost, co2, unserved)
