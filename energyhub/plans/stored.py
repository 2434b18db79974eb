"""The value of energy a compared window leaves in storage, or takes from it.

The counterfactual's storage stays idle (energyhub.optimize.baseline); what ran and the
perfect-foresight re-solve may end a window with more or less in their stores. So that the three
compare like with like, each side is credited with the value of its storage change:

- a kWh left in a store (SOC up) is worth what it displaces when discharged: η_discharge × the
  window's mean marginal cost of its carrier at the store's node;
- a kWh taken from a store (SOC down) must be made again: it costs ÷ η_charge × that mean.

The marginal cost of a carrier is what the rules pay for one more kWh of it, carbon price
included: electricity the import price; heat and cooling the cheapest device at the node (else
at the park's head node, else the value of lost load); hydrogen the electrolyzer's electricity.
CO₂ is credited the same way with that device's emissions per kWh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from energyhub.optimize.baseline import UNSERVED_CNY_PER_KWH, Heater, chillers, heaters
from energyhub.optimize.model import Array
from energyhub.optimize.network import Context
from energyhub.optimize.scope import Node
from energyhub.sites import Battery, ElectricChiller, Electrolyzer, HydrogenStore, ThermalStorage

Store = Battery | ThermalStorage | HydrogenStore


@dataclass(frozen=True, slots=True)
class StoreValue:
    """Per kWh of SOC: the credit for one left in, the cost of one taken (CNY and kg CO₂)."""

    left_cny: float
    left_kg: float
    taken_cny: float
    taken_kg: float

    def of(self, change_kwh: float) -> tuple[float, float]:
        """CNY and kg credited for an SOC change (kWh; > 0 left in, < 0 taken)."""
        if change_kwh >= 0:
            return change_kwh * self.left_cny, change_kwh * self.left_kg
        return change_kwh * self.taken_cny, change_kwh * self.taken_kg


def _heater_kg(ctx: Context, heater: Heater) -> Array:
    prices = ctx.prices
    return heater.electricity_per_kwh * prices.grid_kg_per_kwh + heater.gas_per_kwh * (
        prices.gas_kg_per_kwh
    )


def _cheapest(costs: list[Array], kgs: list[Array]) -> tuple[Array, Array] | None:
    if not costs:
        return None
    pick = np.argmin(np.array(costs), axis=0)
    columns = np.arange(pick.size)
    return np.array(costs)[pick, columns], np.array(kgs)[pick, columns]


def _thermal(ctx: Context, node: Node, carrier: str) -> tuple[Array, Array] | None:
    found = heaters(ctx, node)
    heat_kg = [_heater_kg(ctx, h) for h in found]
    if carrier == "heat":
        return _cheapest([h.cost for h in found], heat_kg)
    cheapest_heat = _cheapest([h.cost for h in found], heat_kg)
    costs, kgs = [], []
    for chiller in chillers(ctx, node):
        costs.append(chiller.cost)
        if isinstance(chiller.asset, ElectricChiller):
            kgs.append(ctx.prices.grid_kg_per_kwh / chiller.cop)
        else:
            heat = cheapest_heat[1] if cheapest_heat else np.zeros(ctx.n)
            kgs.append(heat / chiller.cop)
    return _cheapest(costs, kgs)


def marginal(ctx: Context, node: Node, carrier: str) -> tuple[Array, Array]:
    """Per step, CNY (carbon price included) and kg CO₂ of one more kWh of `carrier` at `node`."""
    prices = ctx.prices
    grid = (prices.import_effective_cny_per_kwh, np.asarray(prices.grid_kg_per_kwh, dtype=float))
    if carrier == "electricity":
        return grid
    if carrier == "hydrogen":
        eta = next((a.eta for _, a in ctx.scope.assets() if isinstance(a, Electrolyzer)), 1.0)
        return grid[0] / eta, grid[1] / eta
    for where in (node, ctx.scope.nodes[0]):
        found = _thermal(ctx, where, carrier)
        if found is not None:
            return found
    return np.full(ctx.n, UNSERVED_CNY_PER_KWH[carrier]), np.zeros(ctx.n)


def _carrier(store: Store) -> str:
    if isinstance(store, Battery):
        return "electricity"
    return store.carrier if isinstance(store, ThermalStorage) else "hydrogen"


def store_values(ctx: Context) -> dict[str, StoreValue]:
    """Each store of the scope: its value per kWh of SOC over the window (the mean marginal)."""
    out = {}
    for node, asset in ctx.scope.assets():
        if isinstance(asset, Battery | ThermalStorage | HydrogenStore):
            cny, kg = marginal(ctx, node, _carrier(asset))
            mean_cny, mean_kg = float(np.mean(cny)), float(np.mean(kg))
            out[asset.id] = StoreValue(
                mean_cny * asset.eta_discharge,
                mean_kg * asset.eta_discharge,
                mean_cny / asset.eta_charge,
                mean_kg / asset.eta_charge,
            )
    return out


def mean_values(parts: Sequence[tuple[dict[str, StoreValue], int]]) -> dict[str, StoreValue]:
    """Store values of several runs of steps (values, steps) as one window's: step-weighted."""
    steps = sum(n for _, n in parts)
    out = {}
    for asset in parts[0][0] if parts else {}:
        weighted = [(values[asset], n / steps) for values, n in parts]
        out[asset] = StoreValue(
            *(sum(getattr(v, f) * w for v, w in weighted) for f in StoreValue.__slots__)
        )
    return out


def stored_value(
    changes_kwh: Mapping[str, float], values: Mapping[str, StoreValue]
) -> tuple[float, float]:
    """CNY and kg CO₂ credited for the stores' SOC changes (kWh, by asset id)."""
    found = [values[a].of(kwh) for a, kwh in changes_kwh.items() if a in values]
    return sum(c for c, _ in found), sum(k for _, k in found)
