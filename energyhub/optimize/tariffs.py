"""Time-of-use import tariffs: named period tables by month and hour, prices per period.

The default is Shanghai's two-part industrial and commercial TOU (沪发改价管〔2022〕50号):
peak 8–11 & 18–21, flat 6–8 & 11–18 & 21–22, valley 22–6; July–September peak 8–15 & 18–21;
critical peak 12–14 in July and August, 19–21 in January and December.

Default prices are an assumption, not a quote: Shanghai's agency-purchase energy prices change
every month. They are round figures of the order of a 10 kV two-part bill in 2023–24 (valley
≈ 0.30, flat ≈ 0.65, peak ≈ 1.10 CNY/kWh: a peak-to-valley ratio of about 3.7, as
发改价格〔2021〕1093号 asks for 3–4 or more) with the critical peak 25 % above peak (that notice
asks for at least 20 %).
A site sets its own with `grid.tariff_prices_cny_per_kwh: {peak: ..., flat: ..., ...}`, and an
inputs column `import_price_cny_per_kwh` overrides both step by step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.inputs import PlanInputs
from energyhub.sites import GridConnection

PEAK_MARGIN_QUANTITY = "peak_margin_kw"
"""Inputs column `<grid node>:peak_margin_kw`: per step, how far the connection's import may come
in above the plan for forecast error; monthly billing bills the peak of import + margin above the
month-to-date peak (absent: 0). The scheduler derives it from the forecast bands."""

PEAK_RESERVE_QUANTITY = "peak_reserve_kw"
"""Inputs column `<grid node>:peak_reserve_kw`: per step, the larger (tail) forecast error the
plan keeps covered by room under the billed peak plus what the site's local controller can take
off the import (energyhub.optimize.reserve); absent: no reserve. The scheduler sets it from the
connection's measured import error."""

MONTH_PEAK_QUANTITY = "month_peak_kw"
"""Inputs column `<grid node>:month_peak_kw`: the month-to-date metered peak import a plan starts
from (constant over the steps; absent: 0, the whole peak is billed)."""

DEMAND_TARGET_QUANTITY = "demand_target_kw"
"""Inputs column `<grid node>:demand_target_kw`: the month's demand target, the peak the coming
days are expected to need anyway (constant over the steps; absent: none). Monthly billing bills
a plan's rise above max(month-to-date peak, target); daily billing ignores it. The scheduler
sets it from a several-days-ahead plan (energyhub.scheduler.target)."""

PERIODS = ("valley", "flat", "peak", "critical")
"""Period codes 0..3 in the tables below."""

SHANGHAI_PRICES_CNY_PER_KWH = {"valley": 0.30, "flat": 0.65, "peak": 1.10, "critical": 1.375}


def _shanghai_table() -> NDArray[np.int8]:
    """Period code for each (month - 1, hour)."""
    valley, flat, peak, critical = range(4)
    day = np.full(24, valley, dtype=np.int8)
    day[6:22] = flat
    day[8:11] = peak
    day[18:21] = peak
    summer = day.copy()
    summer[8:15] = peak
    table = np.tile(day, (12, 1))
    table[6:9] = summer
    table[6:8, 12:14] = critical
    table[[0, 11], 19:21] = critical
    return table


@dataclass(frozen=True, slots=True)
class TouTariff:
    """A named tariff: a period for every month and hour, and a default price per period."""

    name: str
    table: NDArray[np.int8]
    prices_cny_per_kwh: dict[str, float]

    def periods(self, index: pd.DatetimeIndex) -> NDArray[np.int8]:
        """Period code of each step, from its local start time."""
        months = np.asarray(index.month, dtype=np.int64) - 1
        hours = np.asarray(index.hour, dtype=np.int64)
        return self.table[months, hours]

    def prices(
        self, index: pd.DatetimeIndex, overrides: dict[str, float] | None
    ) -> NDArray[np.float64]:
        """Import price of each step; `overrides` replaces the default price of named periods."""
        prices = dict(self.prices_cny_per_kwh)
        for period, price in (overrides or {}).items():
            if period not in prices:
                raise PlanInputError(
                    f"grid.tariff_prices_cny_per_kwh: unknown period {period!r} for tariff "
                    f"{self.name!r} (periods: {', '.join(prices)})",
                    column="tariff_prices_cny_per_kwh",
                )
            prices[period] = price
        per_code = np.array([prices.get(p, np.nan) for p in PERIODS])
        return np.asarray(per_code[self.periods(index)], dtype=np.float64)


TARIFFS = {
    "shanghai-two-part": TouTariff(
        "shanghai-two-part", _shanghai_table(), SHANGHAI_PRICES_CNY_PER_KWH
    ),
    "flat": TouTariff("flat", np.ones((12, 24), dtype=np.int8), {"flat": 0.65}),
}


def import_prices(grid: GridConnection, index: pd.DatetimeIndex) -> NDArray[np.float64]:
    """The connection's import price per step (local time of `index`) from its named tariff."""
    tariff = TARIFFS.get(grid.tariff)
    if tariff is None:
        raise PlanInputError(
            f"grid.tariff: unknown tariff {grid.tariff!r} (known: {', '.join(TARIFFS)})",
            column="tariff",
        )
    return tariff.prices(index, grid.tariff_prices_cny_per_kwh)


def billing_months(index: pd.DatetimeIndex) -> NDArray[np.int64]:
    """The billing month of each step (year × 12 + month of its local start time; `index` in the
    site's time zone): monthly demand billing bills each month's own peak."""
    return np.asarray(index.year, dtype=np.int64) * 12 + np.asarray(index.month, dtype=np.int64)


def month_groups(months: NDArray[np.int64]) -> list[NDArray[np.intp]]:
    """The steps of each billing month, in order; the first holds the month the steps start in."""
    if months.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, months[1:] != months[:-1]])
    return [np.arange(a, b) for a, b in zip(starts, [*starts[1:], months.size], strict=True)]


def demand_cny(
    grid: GridConnection,
    import_kw: NDArray[np.float64],
    months: NDArray[np.int64],
    month_peak_kw: float,
) -> float:
    """Demand charge of the steps importing `import_kw` in billing `months` (billing_months).
    Monthly billing: per month, the rise of its peak above the peak it started from, which is
    `month_peak_kw` (metered before the steps) for the month the steps start in and 0 for each
    later month (nothing of it was metered before). Daily billing: the steps' whole peak."""
    if import_kw.size == 0:
        return 0.0
    if grid.demand_billing == "daily":
        return grid.demand_charge_cny_per_kw * float(import_kw.max())
    rise = 0.0
    for i, steps in enumerate(month_groups(months)):
        start = month_peak_kw if i == 0 else 0.0
        rise += max(float(import_kw[steps].max()) - start, 0.0)
    return grid.demand_charge_cny_per_kw * rise


def month_peak_kw(inputs: PlanInputs, node: str, grid: GridConnection) -> float:
    """The month-to-date peak the plan of the connection at `node` starts from: its inputs column
    (first step), 0 without one or under daily billing."""
    column = inputs.get(month_peak_column(node))
    if grid.demand_billing == "daily" or column is None or not len(column):
        return 0.0
    return float(column[0])


def demand_target_kw(inputs: PlanInputs, node: str, grid: GridConnection) -> float:
    """The demand target of the connection at `node`: its inputs column (first step), 0 without
    one or under daily billing (each day's whole peak is billed: no later day makes it free)."""
    column = inputs.get(demand_target_column(node))
    if grid.demand_billing == "daily" or column is None or not len(column):
        return 0.0
    value = float(column[0])
    return value if np.isfinite(value) else 0.0


def free_peak_kw(
    inputs: PlanInputs, node: str, grid: GridConnection, rules_peak_kw: float | None = None
) -> float:
    """The import the first billing month's demand term starts from, free of demand charge:
    max(month-to-date peak, demand target), the target no higher than `rules_peak_kw` (the rules'
    own peak over the month's steps, first_month_peak_kw). The target keeps a plan from shaving
    below what the coming days need; it is no licence to import above what the site would draw
    without a plan (charging up to a target that the days may not reach is a real rise). The
    plan and its baseline are billed above it; plan vs actual and the realized savings bill the
    metered month peak alone."""
    target = demand_target_kw(inputs, node, grid)
    if rules_peak_kw is not None:
        target = min(target, rules_peak_kw)
    return max(month_peak_kw(inputs, node, grid), target)


def first_month_peak_kw(import_kw: NDArray[np.float64], months: NDArray[np.int64]) -> float | None:
    """The highest of `import_kw` over the steps of the billing month the steps start in."""
    groups = month_groups(months)
    return float(import_kw[groups[0]].max()) if groups else None


def demand_target_column(node: str) -> str:
    """The inputs column holding the demand target of the connection at `node`."""
    return f"{node}:{DEMAND_TARGET_QUANTITY}"


def month_peak_column(node: str) -> str:
    """The inputs column holding the month-to-date peak of the connection at `node`."""
    return f"{node}:{MONTH_PEAK_QUANTITY}"


def peak_margin_kw(inputs: PlanInputs, node: str, grid: GridConnection) -> NDArray[np.float64]:
    """The forecast-error margin per step kept under the billed peak of the connection at `node`:
    its inputs column, zeros without one or under daily billing (the whole peak is billed)."""
    column = inputs.get(peak_margin_column(node))
    if grid.demand_billing == "daily" or column is None:
        return np.zeros(inputs.n)
    return np.asarray(column, dtype=np.float64)


def kept_margin_kw(
    margin_kw: NDArray[np.float64], rules_import_kw: NDArray[np.float64], month_peak_kw: float
) -> NDArray[np.float64]:
    """The margin a plan keeps between its import and its billed peak, per step: the forecast
    error's `margin_kw`, but no more than the room the rules' own import leaves under the peak
    they reach anyway (the month-to-date peak or, if higher, their own peak over the horizon).

    A margin is room kept for forecast error, not a rise: billing it whole, a step whose rules'
    import is already within the margin of the peak raised the plan's peak variable by the rest,
    and every other step could then fill that phantom rise with charging, up to its own (often
    narrower) margin below it — real import above anything the rules would have drawn. Capped,
    the margin never raises the plan's peak by itself; at a step within the margin of the peak
    the plan adds no import above the rules' (it may still shave it)."""
    if not len(rules_import_kw):
        return margin_kw
    reference = max(month_peak_kw, float(np.max(rules_import_kw)))
    return np.asarray(
        np.minimum(margin_kw, np.maximum(reference - rules_import_kw, 0.0)), dtype=np.float64
    )


def peak_reserve_kw(
    inputs: PlanInputs, node: str, grid: GridConnection
) -> NDArray[np.float64] | None:
    """The tail error per step the plan of the connection at `node` keeps covered: its inputs
    column; None without one or under daily billing (the whole peak is billed)."""
    column = inputs.get(peak_reserve_column(node))
    if grid.demand_billing == "daily" or column is None:
        return None
    return np.asarray(column, dtype=np.float64)


def peak_reserve_column(node: str) -> str:
    """The inputs column holding the tail error the connection at `node` keeps covered."""
    return f"{node}:{PEAK_RESERVE_QUANTITY}"


def peak_margin_column(node: str) -> str:
    """The inputs column holding the forecast-error margin of the connection at `node`."""
    return f"{node}:{PEAK_MARGIN_QUANTITY}"
