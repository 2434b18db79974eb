"""Grid, renewables, storage, flexible load and the links of a park: one function per kind.

Each adds its variables and constraints for every step at once and injects its flows into the
node balances of the context (kW, positive into the node).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.model import Array, Expr, Var
from energyhub.optimize.network import Carrier, Context
from energyhub.optimize.scope import Node
from energyhub.optimize.tariffs import (
    billing_months,
    demand_target_column,
    first_month_peak_kw,
    free_peak_kw,
    kept_margin_kw,
    month_groups,
    peak_margin_column,
    peak_margin_kw,
)
from energyhub.sites import (
    PV,
    Battery,
    FlexibleLoad,
    GridConnection,
    HydrogenStore,
    ThermalStorage,
    Wind,
)

TIE_BREAK_CNY_PER_KWH = 1e-6
"""Cost per kWh through a lossless store and per kWh exported, in the `tie_break` term only.

Without it, charging and discharging a lossless store in the same step (or importing and
exporting at equal prices) costs nothing, and the solver may return such a schedule among equal
optima. It is far below any price, so it picks among optima without moving the optimum; plans
report their objective without it.
"""


def add_grid(
    ctx: Context, node: str, grid: GridConnection, rules_import_kw: Array | None = None
) -> None:
    """Import/export within limits, TOU energy cost, CO₂, and the demand charge: on the rise of
    each billing month's peak above the peak that month started from (monthly billing: import is
    kept the inputs' forecast-error margin under the billed peak, where the rules' import
    `rules_import_kw` leaves that room: tariffs.kept_margin_kw), or on the whole peak (daily)."""
    m, n, dt, prices = ctx.m, ctx.n, ctx.dt_h, ctx.prices
    imp = m.add_variables(f"{node}:import_kw", n, 0.0, grid.import_max_kw)
    m.add_cost("energy", prices.import_cny_per_kwh * dt * imp.expr())
    emissions = prices.grid_kg_per_kwh * dt * imp.expr()
    m.add_account("co2_kg:electricity", emissions)
    m.add_cost("carbon", prices.carbon_cny_per_kg * emissions)
    flow = imp.expr()
    if grid.export_max_kw > 0:
        exp = m.add_variables(f"{node}:export_kw", n, 0.0, grid.export_max_kw)
        m.add_cost("energy", -prices.export_cny_per_kwh * dt * exp.expr())
        m.add_cost("tie_break", TIE_BREAK_CNY_PER_KWH * dt * exp.expr())
        flow = flow - exp.expr()
        if ctx.exclusive("grid", imp, exp):
            _grid_exclusive(ctx, node, grid, imp, exp)
    if grid.demand_charge_cny_per_kw > 0:
        _add_demand_charge(ctx, node, grid, imp, rules_import_kw)
    ctx.inject(node, "electricity", node, flow)


def _add_demand_charge(
    ctx: Context, node: str, grid: GridConnection, imp: Var, rules_import_kw: Array | None
) -> None:
    """One peak per billing month the steps touch (one in all under daily billing), at least the
    peak that month started from (`tariffs.demand_cny`'s rule), the first month's raised to its
    demand target, no higher than the rules' own peak (tariffs.free_peak_kw); the rise above it
    is billed. Each month keeps the margin its rules' import leaves room for
    (tariffs.kept_margin_kw)."""
    m, n = ctx.m, ctx.n
    margin = peak_margin_kw(ctx.inputs, node, grid)  # forecast error kept under the peak
    months = billing_months(ctx.inputs.index)
    groups = month_groups(months) if grid.demand_billing == "monthly" else [np.arange(n)]
    rules_peak = None if rules_import_kw is None else first_month_peak_kw(rules_import_kw, months)
    billed = free_peak_kw(ctx.inputs, node, grid, rules_peak)
    starts = [billed if i == 0 else 0.0 for i in range(len(groups))]
    if rules_import_kw is not None:
        margin = margin.copy()
        for steps, start in zip(groups, starts, strict=True):
            margin[steps] = kept_margin_kw(margin[steps], rules_import_kw[steps], start)
    if peak_margin_column(node) in ctx.inputs.columns:  # shown with the plan
        m.add_output(f"{node}:kept_margin_kw", Expr.zeros(n) + margin)
    if demand_target_column(node) in ctx.inputs.columns and grid.demand_billing == "monthly":
        m.add_output(f"{node}:free_peak_kw", Expr.zeros(n) + billed)  # the guard holds it
    top = max(grid.import_max_kw + float(margin.max(initial=0.0)), billed)
    for i, (steps, start) in enumerate(zip(groups, starts, strict=True)):
        month = "" if i == 0 else f":{ctx.inputs.index[steps[0]]:%Y-%m}"  # a later month's own
        peak = m.add_variables(f"{node}:peak_import_kw{month}", 1, start, top)  # ≥ month so far
        m.add_constraints(
            f"{node}:peak_import{month}",
            imp.take(steps) - peak.expr().repeat(steps.size),
            "<=",
            -margin[steps],
        )
        m.add_cost("demand", grid.demand_charge_cny_per_kw * (peak.expr() - start))


def _grid_exclusive(ctx: Context, node: str, grid: GridConnection, imp: Var, exp: Var) -> None:
    """Import or export, not both: a binary in each step where both at once could pay
    (`Prices.arbitrage_steps`, or every step if the policy says so); none elsewhere, where no
    optimum does both. The `importing` block then holds those steps only."""
    m, n = ctx.m, ctx.n
    steps = np.arange(n) if ctx.binaries.every_step else ctx.prices.arbitrage_steps()
    if steps.size == 0:
        return
    importing = m.add_variables(f"{node}:importing", steps.size, binary=True)
    m.add_constraints(
        f"{node}:import_exclusive", imp.take(steps) - grid.import_max_kw * importing.expr(), "<="
    )
    m.add_constraints(
        f"{node}:export_exclusive",
        exp.take(steps) + grid.export_max_kw * importing.expr(),
        "<=",
        grid.export_max_kw,
    )


def add_renewable(ctx: Context, node: str, asset: PV | Wind) -> None:
    """Output up to the available power (curtailable)."""
    available = ctx.inputs.columns[f"{asset.id}:available_kw"]
    out = ctx.m.add_variables(f"{asset.id}:output_kw", ctx.n, 0.0, available)
    ctx.m.add_output(f"{asset.id}:curtailed_kw", available - out.expr())
    ctx.inject(node, "electricity", asset.id, out.expr())


def keep_per_step(loss_per_h: float, dt_h: float) -> float:
    return float((1.0 - loss_per_h) ** dt_h)


def add_storage(
    ctx: Context, node: str, asset: Battery | ThermalStorage | HydrogenStore, carrier: Carrier
) -> None:
    """Charge, discharge and SOC: SOC window, standing loss, initial and terminal SOC (a store
    starting above its soc_final ends there, or above it where nothing can use the rest)."""
    m, n, dt, e = ctx.m, ctx.n, ctx.dt_h, asset.energy_kwh
    charge = m.add_variables(f"{asset.id}:charge_kw", n, 0.0, asset.power_kw)
    discharge = m.add_variables(f"{asset.id}:discharge_kw", n, 0.0, asset.power_kw)
    soc = m.add_variables(f"{asset.id}:soc_kwh", n, asset.soc_min * e, asset.soc_max * e)
    keep = keep_per_step(asset.loss_per_h if isinstance(asset, ThermalStorage) else 0.0, dt)
    m.add_constraints(
        f"{asset.id}:soc_balance",
        soc.expr()
        - keep * soc.lag(asset.soc_initial * e)
        - asset.eta_charge * dt * charge.expr()
        + dt / asset.eta_discharge * discharge.expr(),
        "==",
    )
    if asset.soc_final is not None and asset.soc_final < asset.soc_initial:
        # Coming down to soc_final needs a use for what is let out: a heat store above it in a
        # mild week, an ice store in winter have none, so the store may end above it (any real
        # use of the rest saves money, so it is used). Unpriced: a tie-break on what is left
        # doubled the example's solve time and stopped it at the MIP gap.
        m.add_constraints(f"{asset.id}:soc_final", soc.at(-1), ">=", asset.soc_final * e)
    elif asset.soc_final is not None:
        m.add_constraints(f"{asset.id}:soc_final", soc.at(-1), "==", asset.soc_final * e)
    if asset.eta_charge * asset.eta_discharge == 1.0:
        m.add_cost("tie_break", TIE_BREAK_CNY_PER_KWH * dt * charge.expr())
    elif ctx.exclusive("storage", charge, discharge):
        _exclusive(ctx, asset.id, charge, discharge, asset.power_kw)
    if isinstance(asset, Battery) and asset.throughput_cost_cny_per_kwh > 0:
        throughput = dt * (charge.expr() + discharge.expr())
        m.add_cost("degradation", asset.throughput_cost_cny_per_kwh * throughput)
    ctx.inject(node, carrier, asset.id, discharge.expr() - charge.expr())


def _exclusive(ctx: Context, asset: str, charge: Var, discharge: Var, power_kw: float) -> None:
    """No charging and discharging in the same step: one binary per step."""
    charging = ctx.m.add_variables(f"{asset}:charging", ctx.n, binary=True)
    ctx.m.add_constraints(
        f"{asset}:charge_exclusive", charge.expr() - power_kw * charging.expr(), "<="
    )
    ctx.m.add_constraints(
        f"{asset}:discharge_exclusive",
        discharge.expr() + power_kw * charging.expr(),
        "<=",
        power_kw,
    )


def delivered_column(asset_id: str) -> str:
    """The input column of the energy (kWh) a flexible load was served, before the plan's first
    step, in the window open at that step."""
    return f"{asset_id}:delivered_kwh"


def window_days(inputs: PlanInputs, asset: FlexibleLoad) -> tuple[np.ndarray, np.ndarray]:
    """For each step its window number if it starts inside the asset's window, else -1; and the
    energy (kWh) each window asks of the steps it covers: energy_kwh × the share of the window's
    hours they cover (local hours, so a window across a daylight-saving change is an hour shorter
    or longer). A window already open at the first step whose energy served so far the inputs
    give (`delivered_column`) asks what is left of energy_kwh instead, spread the same way over
    the rest of the window, and no more than power_max_kw can serve in the steps it covers. A
    window that crosses midnight is one window, of the day it starts on."""
    index = inputs.index
    hours = np.asarray(index.hour + index.minute / 60.0)
    inside = asset.inside(hours)
    local_days = index.tz_localize(None).normalize()
    if asset.overnight:  # the morning's steps close the window opened the evening before
        local_days = local_days - pd.to_timedelta(
            np.where(hours < asset.window_end_h, 1, 0), unit="D"
        )
    day_codes = np.unique(np.asarray(local_days.asi8), return_inverse=True)[1]
    groups = np.where(inside, day_codes, -1).astype(np.int64)
    used = np.unique(groups[groups >= 0], return_inverse=True)
    compact = np.full(inputs.n, -1, dtype=np.int64)
    compact[groups >= 0] = used[1]
    covered_h = np.bincount(used[1], minlength=used[0].size) * inputs.dt_h
    first_step = [int(np.flatnonzero(groups == g)[0]) for g in used[0]]
    end_h = asset.window_start_h + asset.window_h  # past 24 for an overnight window
    start, end = window_bounds(local_days[first_step], index.tz, asset.window_start_h, end_h)
    lasting_h = _hours(end - start)
    energy = asset.energy_kwh * covered_h / lasting_h
    column = delivered_column(asset.id)
    if covered_h.size and compact[0] == 0 and start[0] < index[0] and column in inputs.columns:
        left_kwh = max(asset.energy_kwh - float(inputs.columns[column][0]), 0.0)
        remaining_h = _hours(end[:1] - index[:1])[0]
        energy[0] = min(
            left_kwh * min(covered_h[0] / remaining_h, 1.0), asset.power_max_kw * covered_h[0]
        )
    return compact, energy


def _hours(spans: pd.TimedeltaIndex) -> np.ndarray:
    return np.asarray(spans.total_seconds(), dtype=np.float64) / 3600.0


def window_bounds(
    days: pd.DatetimeIndex, tz: Any, start_h: int, end_h: int
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """When [start_h, end_h) local begins and ends on each (naive, midnight) day (end_h past 24
    ends on the next day). A bound the clocks skip is where they resume; a bound they repeat is
    its first occurrence, as a step's local hour places it."""
    first = np.ones(len(days), dtype=bool)  # ambiguous: the first (daylight-saving) occurrence
    start, end = (
        (days + pd.Timedelta(hours=h)).tz_localize(tz, ambiguous=first, nonexistent="shift_forward")
        for h in (start_h, end_h)
    )
    return start, end


def add_flexible_load(ctx: Context, node: str, asset: FlexibleLoad) -> None:
    """Serve each window's energy (`window_days`) within it at up to power_max_kw."""
    groups, energy_kwh = window_days(ctx.inputs, asset)
    upper = np.where(groups >= 0, asset.power_max_kw, 0.0)
    power = ctx.m.add_variables(f"{asset.id}:power_kw", ctx.n, 0.0, upper)
    if energy_kwh.size:
        energy = (ctx.dt_h * power.expr()).group(groups, energy_kwh.size)
        ctx.m.add_constraints(f"{asset.id}:energy_kwh", energy, "==", energy_kwh)
    ctx.inject(node, "electricity", asset.id, -power.expr())


def add_feeds(ctx: Context, park: Node, building: Node) -> dict[Carrier, Var]:
    """A building's feeder from the park bus, and district heat/cooling where the park makes it,
    injected into the building's balances; by carrier."""
    lower, upper = -np.inf, np.inf
    if building.link is not None:
        lower, upper = -building.link.export_max_kw, building.link.import_max_kw
    feeds: dict[Carrier, Var] = {
        "electricity": ctx.m.add_variables(f"{building.id}:feed_kw", ctx.n, lower, upper)
    }
    for carrier in ("heat", "cooling"):
        if park.produces(carrier) and building.is_building:
            feeds[carrier] = ctx.m.add_variables(f"{building.id}:district_{carrier}_kw", ctx.n)
    for carrier, var in feeds.items():
        ctx.inject(building.id, carrier, var.name, var.expr())
    return feeds


def add_building_links(
    ctx: Context, park: Node, building: Node, rules_import_kw: Array | None = None
) -> None:
    """The building's feeds (`add_feeds`), drawn from the park's balances, and its own
    connection's demand charge (`add_feeder_demand_charge`): the utility bills a building with
    its own `grid:` on its own peak, whoever plans it."""
    feeds = add_feeds(ctx, park, building)
    for carrier, var in feeds.items():
        ctx.inject(park.id, carrier, var.name, -var.expr())
    add_feeder_demand_charge(ctx, building, feeds["electricity"], rules_import_kw)


def add_feeder_demand_charge(
    ctx: Context, building: Node, feed: Var, rules_import_kw: Array | None
) -> None:
    """The demand charge of a building's own connection (`grid:`), if it has one, on its
    electricity feeder from the park bus: by `_add_demand_charge`, the rule of a plan's own grid,
    with the `<building>:month_peak_kw` / `:demand_target_kw` / `:peak_margin_kw` columns.
    `rules_import_kw`: the building's own draw under the rules (kept within its feeder's limit
    here)."""
    link = building.charged_link
    if link is None:
        return
    rules = None if rules_import_kw is None else np.minimum(rules_import_kw, link.import_max_kw)
    _add_demand_charge(ctx, building.id, link, feed, rules)


def add_gas_supplies(ctx: Context) -> None:
    """A gas purchase at every node that burns gas: gas cost, CO₂, carbon price."""
    prices = ctx.prices
    for node in ctx.scope.nodes:
        if (node.id, "gas") not in ctx.injections:
            continue
        gas = ctx.m.add_variables(f"{node.id}:gas_kw", ctx.n)
        ctx.m.add_cost("gas", prices.gas_cny_per_kwh * ctx.dt_h * gas.expr())
        emissions = prices.gas_kg_per_kwh * ctx.dt_h * gas.expr()
        ctx.m.add_account("co2_kg:gas", emissions)
        ctx.m.add_cost("carbon", prices.carbon_cny_per_kg * emissions)
        ctx.inject(node.id, "gas", f"{node.id}:gas_kw", gas.expr())
