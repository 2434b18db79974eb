"""The accounts of compared steps: planned, metered and storage-idle (baseline) bills of each
grid connection over the same steps, summed over a city's connections, and the planned vs metered
gas. The bill itself is energyhub.plans.bill's."""

from __future__ import annotations

__all__ = [
    "EMPTY",
    "KINDS",
    "Comparison",
    "DaySavings",
    "GasComparison",
    "Part",
    "combine",
    "compare",
    "compare_parts",
    "gas_comparison",
]

from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from energyhub.optimize.scope import Scope
from energyhub.plans.bill import ZERO, Account, account
from energyhub.plans.realized import Realized

Part = tuple[Scope, pd.DataFrame]
"""One grid connection's steps: its scope and its compared frame."""


class Comparison(BaseModel):
    """Planned, realized and baseline accounts over the same steps, and the realized savings."""

    steps: int
    planned: Account
    actual: Account
    baseline: Account
    savings_cny: float = Field(description="Baseline minus actual cost.")
    savings_co2_kg: float = Field(description="Baseline minus actual CO₂.")
    stored_change_kwh: float = Field(
        description="Metered storage SOC at the end of the last step minus at the end of the "
        "first: energy the savings leave in (> 0) or took from (< 0) storage, not valued."
    )

    def __add__(self, other: Comparison) -> Comparison:
        """Two connections over the same steps (a city's parks)."""
        return Comparison(
            steps=max(self.steps, other.steps),
            planned=self.planned + other.planned,
            actual=self.actual + other.actual,
            baseline=self.baseline + other.baseline,
            savings_cny=self.savings_cny + other.savings_cny,
            savings_co2_kg=self.savings_co2_kg + other.savings_co2_kg,
            stored_change_kwh=self.stored_change_kwh + other.stored_change_kwh,
        )


EMPTY = Comparison(
    steps=0, planned=ZERO, actual=ZERO, baseline=ZERO, savings_cny=0.0, savings_co2_kg=0.0,
    stored_change_kwh=0.0,
)  # fmt: skip


class DaySavings(Comparison):
    day: date = Field(description="Local date of the site.")
    realized: Realized | None = Field(
        default=None, description="Against the counterfactual on metered demand (see realized)."
    )


class GasComparison(BaseModel):
    """Planned vs metered gas over the steps the gas meters read, whether or not any electricity
    meter reads the import: what a gas-only site (boilers, no electricity meter) can compare."""

    steps: int
    planned_kwh: float
    actual_kwh: float
    planned_cny: float
    actual_cny: float
    planned_co2_kg: float
    actual_co2_kg: float


def gas_comparison(parts: Sequence[Part], dt_h: float) -> GasComparison | None:
    """Gas planned vs metered over the steps every connection's gas is metered on (the
    controlled ones, if any of them is), at the plan's gas price and factor."""
    frames = [f for _, f in parts if len(f)]
    if not frames:
        return None
    metered = np.logical_and.reduce([f["actual_gas_kw"].notna().to_numpy() for f in frames])
    controlled = np.logical_or.reduce([f["controlled"].to_numpy(dtype=bool) for f in frames])
    used = metered & controlled if (metered & controlled).any() else metered
    if not used.any():
        return None
    totals = dict.fromkeys(("planned_kwh", "actual_kwh", "planned_cny", "actual_cny",
                            "planned_co2_kg", "actual_co2_kg"), 0.0)  # fmt: skip
    for f in frames:
        for side in ("planned", "actual"):
            gas = f[f"{side}_gas_kw"].to_numpy(dtype=float)[used]
            totals[f"{side}_kwh"] += float(gas.sum() * dt_h)
            totals[f"{side}_cny"] += float(
                (gas * f["p_gas"].to_numpy(dtype=float)[used]).sum() * dt_h
            )
            co2 = float((gas * f["gas_kg"].to_numpy(dtype=float)[used]).sum() * dt_h)
            totals[f"{side}_co2_kg"] += co2
    return GasComparison(steps=int(used.sum()), **totals)


def compare(frame: pd.DataFrame, scope: Scope, dt_h: float, peaks: dict[str, float]) -> Comparison:
    """The three accounts of one connection's steps; `peaks` the month-to-date peak of each."""

    def bill(kind: str, gas: str) -> Account:
        series = frame[f"{kind}_import_kw"]
        return account(series, frame[gas], frame, scope, dt_h, peaks.get(kind, 0.0))

    planned = bill("planned", "planned_gas_kw")
    actual = bill("actual", "actual_gas_kw")
    baseline = bill("baseline", "actual_gas_kw")
    return Comparison(
        steps=len(frame),
        planned=planned,
        actual=actual,
        baseline=baseline,
        savings_cny=baseline.total_cny - actual.total_cny,
        savings_co2_kg=baseline.co2_kg - actual.co2_kg,
        stored_change_kwh=_stored_change(frame),
    )


def _stored_change(frame: pd.DataFrame) -> float:
    socs = frame[[c for c in frame.columns if str(c).startswith("actual_soc_kwh:")]]
    if socs.empty or len(frame) < 2:
        return 0.0
    return float((socs.iloc[-1] - socs.iloc[0]).fillna(0.0).sum())


KINDS = ("planned", "actual", "baseline")


def combine(parts: Sequence[Comparison]) -> Comparison:
    total = EMPTY
    for part in parts:
        total = total + part
    return total


def compare_parts(
    parts: Sequence[Part], dt_h: float, peaks: Mapping[str, Mapping[str, float]]
) -> Comparison:
    """Every connection's accounts over its steps, summed; `peaks` by grid node and KINDS."""
    return combine([compare(f, s, dt_h, dict(peaks.get(s.grid_node, {}))) for s, f in parts])
