"""The value of energy a compared window leaves in storage, or takes from it.

The counterfactual's storage stays idle (energyhub.optimize.baseline), losing only what a store
with a standing loss (`loss_per_h`) loses from where it started (`idle_losses_kwh`); what ran and
the perfect-foresight re-solve may end a window with more or less in their stores. So that the
three compare like with like, each side is credited with the value of its storage change:

- a kWh left in a store (SOC up) is worth what it displaces when discharged: η_discharge × the
  mean marginal cost of its carrier at the store's node;
- a kWh taken from a store (SOC down) must be made again: it costs ÷ η_charge × that mean.

The mean is over **every step of the local days the window touches** (`whole_days`), not over the
window's own steps: a store's value per kWh is a property of the day, so it does not hang on
where a query window, a closed loop or a gap in the meters cuts the day (a window of the evening
peak alone valued a kWh at the peak's price, one of the night at the valley's). The prices are
known for whole days (the plans' inputs, else the site's tariff and factors); a device whose COP
follows the outdoor temperature takes it as metered over those days, carried over the steps not
yet metered (a day still running is valued provisionally there).

The marginal cost of a carrier is what the rules pay for one more kWh of it, carbon price
included: electricity the import price; heat and cooling the cheapest device at the node (else
at the park's head node, else the value of lost load); hydrogen the electrolyzer's electricity.
CO₂ is credited the same way with that device's emissions per kWh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from energyhub.localdays import day_start, next_day_start
from energyhub.optimize.baseline import UNSERVED_CNY_PER_KWH, Heater, chillers, heaters
from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.model import Array
from energyhub.optimize.network import Context, Prices
from energyhub.optimize.scope import Node, Scope
from energyhub.plans.bill import PRICE_COLUMNS
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


def whole_days(index: pd.DatetimeIndex, tz: ZoneInfo, step: pd.Timedelta) -> pd.DatetimeIndex:
    """Every step (UTC) of the local days in `tz` that the steps of `index` (UTC) touch (23 and
    25 h days kept; a midnight the clocks skip or repeat as energyhub.localdays places it)."""
    first = day_start(pd.Timestamp(index[0]), tz)
    end = next_day_start(pd.Timestamp(index[-1]), tz)
    return pd.date_range(first, end, freq=step, inclusive="left")


def day_context(
    scope: Scope,
    days: pd.DatetimeIndex,
    tz: ZoneInfo,
    plan_inputs: pd.DataFrame,
    outdoor_c: pd.Series | None,
) -> Context:
    """The rules' prices over `days` (whole_days, UTC) that stores are valued at: each price
    column from the plans' inputs where they have the step, else the site's own (tariff, export
    price, grid factor); `outdoor_c` (metered, UTC) carried over the steps it lacks."""
    local = days.tz_convert(tz)
    dt_h = pd.Timedelta(days[1] - days[0]).total_seconds() / 3600 if len(days) > 1 else 0.25
    own = Prices.of(scope, PlanInputs(local, dt_h, {}))
    defaults = {
        "import_price_cny_per_kwh": own.import_cny_per_kwh,
        "export_price_cny_per_kwh": own.export_cny_per_kwh,
        "grid_kg_per_kwh": own.grid_kg_per_kwh,
    }
    columns: dict[str, Array] = {}
    for name in PRICE_COLUMNS:
        default = np.broadcast_to(np.asarray(defaults[name], dtype=float), (len(days),))
        given = (
            plan_inputs[name].reindex(days).to_numpy(dtype=float)
            if name in plan_inputs.columns
            else np.full(len(days), np.nan)
        )
        columns[name] = np.where(np.isfinite(given), given, default)
    if outdoor_c is not None and outdoor_c.notna().any():
        carried = outdoor_c.reindex(days).ffill().bfill()
        columns["outdoor_c"] = carried.to_numpy(dtype=float)
    return Context.bare(scope, PlanInputs(local, dt_h, columns))


def weather_valued(scope: Scope) -> bool:
    """Whether a store's value in `scope` may follow the outdoor temperature: a heat or cold
    store beside a heat pump or chiller whose COP does."""
    assets = [a for _, a in scope.assets()]
    return any(isinstance(a, ThermalStorage) for a in assets) and any(
        getattr(a, "cop_from_outdoor", None) is not None for a in assets
    )


def store_values(ctx: Context) -> dict[str, StoreValue]:
    """Each store of the scope: its value per kWh of SOC over the context's steps (the mean
    marginal; over whole local days for realized figures: day_context)."""
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


def stored_value(
    changes_kwh: Mapping[str, float], values: Mapping[str, StoreValue]
) -> tuple[float, float]:
    """CNY and kg CO₂ credited for the stores' SOC changes (kWh, by asset id)."""
    found = [values[a].of(kwh) for a, kwh in changes_kwh.items() if a in values]
    return sum(c for c, _ in found), sum(k for _, k in found)


def idle_losses_kwh(
    stores: list[Store], start_soc: Mapping[str, float], hours: float
) -> dict[str, float]:
    """The SOC change (kWh, ≤ 0) of each idle store with a standing loss over `hours` from the
    SOC it starts at (a fraction, by asset id): a heat or cold store left idle loses `loss_per_h`
    of what it holds each hour, as the metered one does. Stores without a starting SOC are left
    out."""
    return {
        store.id: -start_soc[store.id] * store.energy_kwh * (1 - (1 - store.loss_per_h) ** hours)
        for store in stores
        if isinstance(store, ThermalStorage) and store.loss_per_h > 0 and store.id in start_soc
    }
