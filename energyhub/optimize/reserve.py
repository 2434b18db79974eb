"""The peak reserve: storage is not planned empty where the import sits near the billed peak.

The margin (`<grid node>:peak_margin_kw`) keeps the import a typical forecast error (the P90)
under the billed peak. An error beyond it still sets a new peak unless the site's local
controller can take it off (scheduler import limit: charging cut, electrolysis cut, batteries
discharging, CHPs and fuel cells run higher, heat and cold stores discharging in place of their
building's heat pumps and chillers). So at each step the plan keeps the tail error
(`<grid node>:peak_reserve_kw`, the scheduler's P99) covered by room under the peak plus what
those devices could still give:

    import + reserve ≤ peak + Σ lever + shortfall

where a battery's lever is its charging plus what it could discharge on top of the plan, within
its power, all of it no more than the energy it holds above its minimum SOC could carry for
RESERVE_DURATION_H (each bound ≥ 0, so the lever never limits what the plan itself runs, and a
battery charging and discharging at once gains nothing by it); an electrolyzer's its draw; a
CHP's its room up to full output; the fuel cells' their room up to full output, together no
more than the hydrogen their node's stores hold above their minimum could carry for
RESERVE_DURATION_H and the stores could discharge on top of the plan; a heat pump's or
chiller's the heat or cold its node's stores of that carrier could make in its place (no more
than it makes in the plan) ÷ its COP, the machines together within the stores' charging plus
what they could discharge on top of the plan, and no more than what they hold above their
minimum could carry for RESERVE_DURATION_H. The
shortfall is priced, not forbidden: per kW and step at the demand charge times the chance that
a tail error comes at that step (1 − the reserve's quantile; over a month's steps together never
more than half the charge, so a plan never raises its peak to hold a reserve), and a plan keeps
a reserve where it costs less than the rise it insures against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from energyhub.optimize.conversion import cop_series
from energyhub.optimize.model import Expr
from energyhub.optimize.network import Context
from energyhub.optimize.tariffs import billing_months, month_groups, peak_reserve_kw
from energyhub.sites import (
    CHP,
    Asset,
    Battery,
    ElectricChiller,
    Electrolyzer,
    FuelCell,
    GridConnection,
    HeatPump,
    HydrogenStore,
    ThermalStorage,
)

RESERVE_DURATION_H = 1.0
"""How long a battery's part of the reserve must last: the energy above its minimum SOC must
carry it for an hour. A tail error lasts until the forecast catches up; one hour is a choice
that covers a step's error and the guard's next steps, not a measured persistence."""

TAIL_CHANCE = 0.01
"""The chance that a step's import error exceeds the reserve's quantile (the scheduler's P99):
what a kW of reserve short at one step is expected to cost, as a share of the demand charge
(less where a month has over 50 steps in the horizon, so that its shortfalls all together cost at
most half the charge: 0.52 % at 96 steps)."""


def add_peak_reserve(ctx: Context, node: str, grid: GridConnection) -> None:
    """The reserve rows `<node>:peak_reserve{month}` for every step (none without a reserve
    column, a demand charge, or monthly billing), each battery's lever `<id>:reserve_kw`, and
    the priced shortfall `<node>:reserve_shortfall_kw` (cost term `peak_reserve`)."""
    reserve = peak_reserve_kw(ctx.inputs, node, grid)
    if reserve is None or grid.demand_charge_cny_per_kw <= 0 or not np.any(reserve > 0):
        return
    m, n = ctx.m, ctx.n
    lever = _levers(ctx)
    shortfall = m.add_variables(f"{node}:reserve_shortfall_kw", n, 0.0, reserve)
    groups = month_groups(billing_months(ctx.inputs.index))
    chance = np.zeros(n)
    for steps in groups:  # a month's shortfalls all together cost less than raising its peak
        chance[steps] = min(TAIL_CHANCE, 0.5 / steps.size)
    m.add_cost("peak_reserve", grid.demand_charge_cny_per_kw * chance * shortfall.expr())
    imp = m.variables[f"{node}:import_kw"].expr()
    for i, steps in enumerate(groups):
        month = "" if i == 0 else f":{ctx.inputs.index[steps[0]]:%Y-%m}"
        peak = m.variables[f"{node}:peak_import_kw{month}"]
        row = imp - lever - shortfall.expr()
        m.add_constraints(
            f"{node}:peak_reserve{month}",
            _rows(row, steps) - peak.expr().repeat(steps.size),
            "<=",
            -reserve[steps],
        )


def _rows(expr: Expr, steps: np.ndarray) -> Expr:
    """The rows `steps` of `expr`, in that order."""
    pick = np.full(expr.n, -1, dtype=np.int64)
    pick[steps] = np.arange(steps.size)
    return expr.group(pick, steps.size)


def _levers(ctx: Context) -> Expr:
    """Per step, the kW the local controller could take off the import on top of the plan (the
    devices this model plans: a decomposition's aggregated buildings count for none)."""
    m, n, dt = ctx.m, ctx.n, ctx.dt_h
    total = Expr.zeros(n)
    for _node, asset in ctx.scope.assets():
        planned = (
            f"{asset.id}:{v}" in m.variables for v in ("soc_kwh", "electricity_kw", "fuel_kw")
        )
        if not any(planned):
            continue
        if isinstance(asset, Battery):
            charge = m.variables[f"{asset.id}:charge_kw"].expr()
            discharge = m.variables[f"{asset.id}:discharge_kw"].expr()
            soc = m.variables[f"{asset.id}:soc_kwh"].expr()
            lever = m.add_variables(f"{asset.id}:reserve_kw", n, 0.0, 2 * asset.power_kw)
            m.add_constraints(
                f"{asset.id}:reserve_power",
                lever.expr() - charge + discharge,
                "<=",
                asset.power_kw,
            )
            above_min = asset.eta_discharge * (soc - asset.soc_min * asset.energy_kwh)
            m.add_constraints(
                f"{asset.id}:reserve_energy",
                lever.expr() - above_min * (1.0 / max(RESERVE_DURATION_H, dt)),
                "<=",
            )
            total = total + lever.expr()
        elif isinstance(asset, Electrolyzer):
            total = total + m.variables[f"{asset.id}:electricity_kw"].expr()
        elif isinstance(asset, CHP):
            fuel = m.variables[f"{asset.id}:fuel_kw"].expr()
            total = total + asset.eta_el * (asset.fuel_max_kw - fuel)
    for node in ctx.scope.nodes:
        cells = [a for a in node.assets if isinstance(a, FuelCell)]
        cells = [c for c in cells if f"{c.id}:electricity_kw" in m.variables]
        if cells:
            total = total + _fuel_cell_levers(ctx, node.id, node.assets, cells)
        for carrier, (kind, made) in MACHINES.items():
            stores = [
                a for a in node.assets
                if isinstance(a, ThermalStorage) and a.carrier == carrier
                and f"{a.id}:soc_kwh" in m.variables
            ]  # fmt: skip
            machines = [
                a for a in node.assets if isinstance(a, kind) and f"{a.id}:{made}" in m.variables
            ]
            if stores and machines:
                total = total + _thermal_store_levers(ctx, node.id, carrier, stores, machines)
    return total


MACHINES: dict[str, tuple[type[HeatPump] | type[ElectricChiller], str]] = {
    "heat": (HeatPump, "heat_kw"),
    "cooling": (ElectricChiller, "cooling_kw"),
}
"""Per thermal carrier, the electric machine a store of that carrier can take over from, and the
plan variable of what it makes."""


def _thermal_store_levers(
    ctx: Context,
    node: str,
    carrier: str,
    stores: Sequence[ThermalStorage],
    machines: Sequence[HeatPump | ElectricChiller],
) -> Expr:
    """Each machine's `<machine>:reserve_kw`, the heat or cold its node's stores could make in
    its place (no more than it makes in the plan); the import falls by that ÷ its COP. Together
    within the stores' power on top of the plan (their charging cut, then discharge) and what
    they hold above their minimum for RESERVE_DURATION_H (`<node>:<carrier>_store_reserve_*`:
    the stores are shared, as the guard and the controller share them)."""
    m, n = ctx.m, ctx.n
    total, taken = Expr.zeros(n), Expr.zeros(n)
    for machine in machines:
        made = m.variables[f"{machine.id}:{MACHINES[carrier][1]}"].expr()
        top = machine.heat_max_kw if isinstance(machine, HeatPump) else machine.cooling_max_kw
        lever = m.add_variables(f"{machine.id}:reserve_kw", n, 0.0, top)
        m.add_constraints(f"{machine.id}:reserve_output", lever.expr() - made, "<=")
        total = total + lever.expr() * (1.0 / cop_series(ctx, machine))
        taken = taken + lever.expr()
    _within_stores(ctx, f"{node}:{carrier}_store_reserve", taken, stores)
    return total


def _fuel_cell_levers(
    ctx: Context, node: str, beside: Sequence[Asset], cells: Sequence[FuelCell]
) -> Expr:
    """Each fuel cell's `<cell>:reserve_kw`, its room up to full output; together, the hydrogen
    they would burn for it within what the node's stores hold above their minimum for
    RESERVE_DURATION_H and can still discharge on top of the plan (`<node>:fuel_cell_reserve_*`:
    the stores are shared, as the guard and the controller share them). None without a store."""
    m, n = ctx.m, ctx.n
    stores = [
        a for a in beside if isinstance(a, HydrogenStore) and f"{a.id}:soc_kwh" in m.variables
    ]
    if not stores:
        return Expr.zeros(n)
    total, burn = Expr.zeros(n), Expr.zeros(n)
    for cell in cells:
        lever = m.add_variables(f"{cell.id}:reserve_kw", n, 0.0, cell.power_max_kw)
        output = m.variables[f"{cell.id}:electricity_kw"].expr()
        m.add_constraints(
            f"{cell.id}:reserve_power", lever.expr() + output, "<=", cell.power_max_kw
        )
        total = total + lever.expr()
        burn = burn + lever.expr() * (1.0 / cell.eta_el)
    _within_stores(ctx, f"{node}:fuel_cell_reserve", burn, stores)
    return total


def _within_stores(
    ctx: Context, name: str, taken: Expr, stores: Sequence[ThermalStorage | HydrogenStore]
) -> None:
    """What the levers take from `stores` each step (`taken`, kW) within what they hold above
    their minimum for RESERVE_DURATION_H (`<name>_energy`) and what they can discharge on top of
    the plan, their charging cut first (`<name>_power`)."""
    m = ctx.m
    stock, room, power = Expr.zeros(ctx.n), Expr.zeros(ctx.n), 0.0
    for store in stores:
        soc = m.variables[f"{store.id}:soc_kwh"].expr()
        stock = stock + store.eta_discharge * (soc - store.soc_min * store.energy_kwh)
        charge = m.variables[f"{store.id}:charge_kw"].expr()
        discharge = m.variables[f"{store.id}:discharge_kw"].expr()
        room, power = room + charge - discharge, power + store.power_kw
    m.add_constraints(
        f"{name}_energy", taken - stock * (1.0 / max(RESERVE_DURATION_H, ctx.dt_h)), "<="
    )
    m.add_constraints(f"{name}_power", taken - room, "<=", power)
