"""Converters between carriers: heat pumps, chillers, boilers, CHP and the hydrogen chain.

One function per asset type; each adds its variables and constraints for every step at once.
Inputs and outputs follow the site file: `heat_max_kw` / `cooling_max_kw` are thermal outputs,
a CHP's `fuel_max_kw` is its gas input (LHV), a fuel cell's `power_max_kw` its electric output.
"""

from __future__ import annotations

import numpy as np

from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.model import Array
from energyhub.optimize.network import Context
from energyhub.sites import (
    CHP,
    AbsorptionChiller,
    ElectricBoiler,
    ElectricChiller,
    Electrolyzer,
    FuelCell,
    GasBoiler,
    HeatPump,
)

MIN_COP = 0.5
"""A COP from outdoor temperature below this is taken for a bad fit or a bad outdoor_c value."""


def cop_series(ctx: Context, asset: HeatPump | ElectricChiller) -> Array:
    """The COP of every step: constant, or a + b · outdoor_c."""
    if asset.cop is not None:
        return np.full(ctx.n, asset.cop)
    fit = asset.cop_from_outdoor
    if fit is None:  # the site model requires exactly one of cop, cop_from_outdoor
        raise PlanInputError(f"{asset.id}: give cop or cop_from_outdoor", column=asset.id)
    cop = fit.a + fit.b * ctx.inputs.columns["outdoor_c"]
    bad = np.flatnonzero(cop < MIN_COP)
    if bad.size:
        row = int(bad[0])
        raise PlanInputError(
            f"outdoor_c: {ctx.inputs.where(row)}: {asset.id}'s cop_from_outdoor gives COP "
            f"{cop[row]:.3g} at {ctx.inputs.columns['outdoor_c'][row]:g} °C (needs ≥ {MIN_COP})",
            column="outdoor_c",
            row=row + 1,
        )
    return np.asarray(cop, dtype=np.float64)


def add_heat_pump(ctx: Context, node: str, asset: HeatPump) -> None:
    """Heat output up to heat_max_kw, electricity drawn = heat / COP."""
    heat = ctx.m.add_variables(f"{asset.id}:heat_kw", ctx.n, 0.0, asset.heat_max_kw)
    electricity = heat.expr() * (1.0 / cop_series(ctx, asset))
    ctx.m.add_output(f"{asset.id}:electricity_kw", electricity)
    ctx.inject(node, "heat", asset.id, heat.expr())
    ctx.inject(node, "electricity", asset.id, -electricity)


def add_electric_chiller(ctx: Context, node: str, asset: ElectricChiller) -> None:
    """Cooling output up to cooling_max_kw, electricity drawn = cooling / COP."""
    cooling = ctx.m.add_variables(f"{asset.id}:cooling_kw", ctx.n, 0.0, asset.cooling_max_kw)
    electricity = cooling.expr() * (1.0 / cop_series(ctx, asset))
    ctx.m.add_output(f"{asset.id}:electricity_kw", electricity)
    ctx.inject(node, "cooling", asset.id, cooling.expr())
    ctx.inject(node, "electricity", asset.id, -electricity)


def add_absorption_chiller(ctx: Context, node: str, asset: AbsorptionChiller) -> None:
    """Cooling output up to cooling_max_kw, heat drawn = cooling / COP."""
    cooling = ctx.m.add_variables(f"{asset.id}:cooling_kw", ctx.n, 0.0, asset.cooling_max_kw)
    heat = cooling.expr() * (1.0 / asset.cop)
    ctx.m.add_output(f"{asset.id}:heat_kw", heat)
    ctx.inject(node, "cooling", asset.id, cooling.expr())
    ctx.inject(node, "heat", asset.id, -heat)


def add_gas_boiler(ctx: Context, node: str, asset: GasBoiler) -> None:
    """Heat output up to heat_max_kw, gas burnt = heat / eta."""
    heat = ctx.m.add_variables(f"{asset.id}:heat_kw", ctx.n, 0.0, asset.heat_max_kw)
    gas = heat.expr() * (1.0 / asset.eta)
    ctx.m.add_output(f"{asset.id}:gas_kw", gas)
    ctx.inject(node, "heat", asset.id, heat.expr())
    ctx.inject(node, "gas", asset.id, -gas)


def add_electric_boiler(ctx: Context, node: str, asset: ElectricBoiler) -> None:
    """Heat output up to heat_max_kw, electricity drawn = heat / eta."""
    heat = ctx.m.add_variables(f"{asset.id}:heat_kw", ctx.n, 0.0, asset.heat_max_kw)
    electricity = heat.expr() * (1.0 / asset.eta)
    ctx.m.add_output(f"{asset.id}:electricity_kw", electricity)
    ctx.inject(node, "heat", asset.id, heat.expr())
    ctx.inject(node, "electricity", asset.id, -electricity)


def add_chp(ctx: Context, node: str, asset: CHP) -> None:
    """Gas in, electricity and heat out at fixed efficiencies; min load and start cost by binary.

    The unit is taken to be off before the first step, so running in step 0 is a start.
    """
    m, n = ctx.m, ctx.n
    fuel = m.add_variables(f"{asset.id}:fuel_kw", n, 0.0, asset.fuel_max_kw)
    if asset.min_load > 0 or asset.start_cost_cny > 0:
        on = m.add_variables(f"{asset.id}:on", n, binary=True)
        m.add_constraints(f"{asset.id}:max_load", fuel.expr() - asset.fuel_max_kw * on.expr(), "<=")
        if asset.min_load > 0:
            low = asset.min_load * asset.fuel_max_kw
            m.add_constraints(f"{asset.id}:min_load", fuel.expr() - low * on.expr(), ">=")
        if asset.start_cost_cny > 0:
            start = m.add_variables(f"{asset.id}:start", n, 0.0, 1.0)
            m.add_constraints(f"{asset.id}:starts", start.expr() - on.expr() + on.lag(0.0), ">=")
            m.add_cost("start", asset.start_cost_cny * start.expr())
    electricity, heat = asset.eta_el * fuel.expr(), asset.eta_th * fuel.expr()
    m.add_output(f"{asset.id}:electricity_kw", electricity)
    m.add_output(f"{asset.id}:heat_kw", heat)
    ctx.inject(node, "gas", asset.id, -fuel.expr())
    ctx.inject(node, "electricity", asset.id, electricity)
    ctx.inject(node, "heat", asset.id, heat)


def add_electrolyzer(ctx: Context, node: str, asset: Electrolyzer) -> None:
    """Electricity in up to power_max_kw, hydrogen out (LHV) = eta · electricity."""
    power = ctx.m.add_variables(f"{asset.id}:electricity_kw", ctx.n, 0.0, asset.power_max_kw)
    hydrogen = asset.eta * power.expr()
    ctx.m.add_output(f"{asset.id}:hydrogen_kw", hydrogen)
    ctx.inject(node, "electricity", asset.id, -power.expr())
    ctx.inject(node, "hydrogen", asset.id, hydrogen)


def add_fuel_cell(ctx: Context, node: str, asset: FuelCell) -> None:
    """Electricity out up to power_max_kw from hydrogen; heat recovered up to eta_th · hydrogen.

    A fuel cell's stack is cooled whether or not its heat is used: what the node cannot take is
    rejected by its cooling loop (`heat_rejected_kw`), so running it for power never hinges on
    a heat demand."""
    m, n = ctx.m, ctx.n
    power = m.add_variables(f"{asset.id}:electricity_kw", n, 0.0, asset.power_max_kw)
    hydrogen = power.expr() * (1.0 / asset.eta_el)
    recoverable = hydrogen * asset.eta_th
    top = asset.power_max_kw / asset.eta_el * asset.eta_th
    heat = m.add_variables(f"{asset.id}:heat_kw", n, 0.0, top)
    m.add_constraints(f"{asset.id}:heat_recovered", heat.expr() - recoverable, "<=")
    m.add_output(f"{asset.id}:hydrogen_kw", hydrogen)
    m.add_output(f"{asset.id}:heat_rejected_kw", recoverable - heat.expr())
    ctx.inject(node, "electricity", asset.id, power.expr())
    ctx.inject(node, "hydrogen", asset.id, -hydrogen)
    ctx.inject(node, "heat", asset.id, heat.expr())
