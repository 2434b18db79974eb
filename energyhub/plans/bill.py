"""Plan vs actual, the bill: per-step prices of a plan, and the account of a net import series.

Costs use the plan's own prices: its tariff, or the price columns of the inputs it was solved
with; energy and gas per step, the carbon price on the CO₂ of imported electricity and gas.
The demand charge follows `grid.demand_billing`: `monthly` bills the rise of each billing month's
peak above the peak that month started from (the month-to-date peak for the month the steps start
in, 0 for a later one; each later day starts from the peak so far), `daily` bills each compared
span's own peak.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.network import Prices
from energyhub.optimize.scope import Scope
from energyhub.optimize.tariffs import billing_months, demand_cny
from energyhub.sites import SiteFile

PRICE_COLUMNS = ("import_price_cny_per_kwh", "export_price_cny_per_kwh", "grid_kg_per_kwh")
ACCOUNT_COLUMNS = (
    "planned_import_kw", "actual_import_kw", "baseline_import_kw", "planned_gas_kw",
    "actual_gas_kw", "p_import", "p_export", "grid_kg", "p_gas", "gas_kg", "p_carbon", "bill_month",
)  # fmt: skip


class Account(BaseModel):
    """Energy, cost and CO₂ over some steps."""

    import_kwh: float
    export_kwh: float
    peak_import_kw: float
    month_peak_kw: float = Field(
        0.0, description="Month-to-date peak import before these steps (monthly billing)."
    )
    gas_kwh: float
    energy_cny: float
    demand_cny: float
    gas_cny: float
    carbon_cny: float
    total_cny: float
    co2_kg: float

    def __add__(self, other: Account) -> Account:
        """Two connections' accounts over the same steps (a city's parks): every term summed."""
        values = {k: getattr(self, k) + getattr(other, k) for k in Account.model_fields}
        return Account(**values)


ZERO = Account(
    import_kwh=0.0, export_kwh=0.0, peak_import_kw=0.0, gas_kwh=0.0, energy_cny=0.0,
    demand_cny=0.0, gas_cny=0.0, carbon_cny=0.0, total_cny=0.0, co2_kg=0.0,
)  # fmt: skip


def priced(frame: pd.DataFrame, scope: Scope, inputs: pd.DataFrame, site: SiteFile) -> None:
    """Add the plan's per-step prices and factors to `frame` (the columns the optimizer used)."""
    index = pd.DatetimeIndex(frame.index)
    dt_h = pd.Timedelta(index[1] - index[0]).total_seconds() / 3600 if len(index) > 1 else 0.25
    columns = {
        name: inputs[name].reindex(index).to_numpy(dtype=float)
        for name in PRICE_COLUMNS
        if name in inputs.columns and inputs[name].reindex(index).notna().all()
    }
    prices = Prices.of(scope, PlanInputs(index.tz_convert(site.tz), dt_h, columns))
    frame["p_import"] = prices.import_cny_per_kwh
    frame["p_export"] = prices.export_cny_per_kwh
    frame["grid_kg"] = prices.grid_kg_per_kwh
    frame["p_gas"] = prices.gas_cny_per_kwh
    frame["gas_kg"] = prices.gas_kg_per_kwh
    frame["p_carbon"] = prices.carbon_cny_per_kg
    frame["bill_month"] = billing_months(index.tz_convert(site.tz))


def account(
    net_kw: pd.Series,
    gas_kw: pd.Series,
    f: pd.DataFrame,
    scope: Scope,
    dt_h: float,
    month_peak_kw: float = 0.0,
) -> Account:
    """The bill of a net import series (kW per step) and gas draw at the frame's prices."""
    imported = net_kw.clip(lower=0.0).fillna(0.0)
    exported = (-net_kw).clip(lower=0.0).fillna(0.0)
    gas = gas_kw.fillna(0.0)
    co2 = float(((imported * f["grid_kg"] + gas * f["gas_kg"]) * dt_h).sum())
    peak = float(imported.max()) if len(imported) else 0.0
    months = f["bill_month"].to_numpy(dtype=np.int64)
    energy = float(((imported * f["p_import"] - exported * f["p_export"]) * dt_h).sum())
    gas_cny = float((gas * f["p_gas"] * dt_h).sum())
    carbon = float((co2 * f["p_carbon"].iloc[0]) if len(f) else 0.0)
    month_peak = month_peak_kw if scope.grid.demand_billing == "monthly" else 0.0
    demand = demand_cny(scope.grid, imported.to_numpy(dtype=float), months, month_peak)
    return Account(
        import_kwh=float(imported.sum() * dt_h),
        export_kwh=float(exported.sum() * dt_h),
        peak_import_kw=peak,
        month_peak_kw=month_peak,
        gas_kwh=float(gas.sum() * dt_h),
        energy_cny=energy,
        demand_cny=demand,
        gas_cny=gas_cny,
        carbon_cny=carbon,
        total_cny=energy + demand + gas_cny + carbon,
        co2_kg=co2,
    )
