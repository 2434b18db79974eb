"""Realized value of plans, measured against the meters.

For the steps a plan controlled:
- the counterfactual is the rule-based baseline (energyhub.optimize.baseline) re-run on the
  metered demand and PV: what the site would have paid and emitted without the plan;
- realized savings are the counterfactual minus the metered bill (and CO₂);
- perfect foresight is the plan re-solved on the metered demand from the metered SOC to the
  metered SOC at the end (the same stored energy as the meters left): the most any plan could
  have saved; the capture ratio is realized ÷ perfect-foresight savings.
Costs are the bill's terms (energy, demand on the rise above the month-to-date peak, gas, carbon
price); a start or degradation cost of the optimizer is not on any bill and is left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pandas as pd
from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from energyhub.errors import EnergyhubError
from energyhub.optimize import plan
from energyhub.optimize.baseline import UNSERVED_CNY_PER_KWH, compute_baseline
from energyhub.optimize.forecast import ForecastError
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.network import Context
from energyhub.optimize.scope import Scope
from energyhub.optimize.tariffs import month_peak_column
from energyhub.plans.bill import account
from energyhub.plans.counterfactual import metered_inputs
from energyhub.plans.metered import soc_fractions
from energyhub.scheduler.state import with_initial_soc
from energyhub.sites import Asset, SiteFile
from energyhub.store.db import Backend

BILLED_TERMS = ("energy", "demand", "gas", "carbon")
PERFECT_FORESIGHT_TIME_LIMIT_S = 30.0
"""A re-solve on metered demand is a check, not a plan: it may stop at this limit (then it is
reported with the solver's gap as it stands)."""
MIN_FORESIGHT_SAVINGS_CNY = 1e-6
"""Below this, perfect foresight saves nothing and a capture ratio means nothing (None)."""


class Realized(BaseModel):
    """Counterfactual, metered and perfect-foresight figures over the same steps."""

    steps: int
    counterfactual_cny: float = Field(description="The rules on metered demand and PV.")
    counterfactual_co2_kg: float
    metered_cny: float = Field(description="The bill of the metered import and gas.")
    metered_co2_kg: float
    savings_cny: float = Field(description="Counterfactual − metered: what the plans saved.")
    savings_co2_kg: float
    perfect_foresight_cny: float | None = Field(
        description="A plan re-solved on the metered demand: the least it could have cost."
    )
    perfect_foresight_co2_kg: float | None
    perfect_savings_cny: float | None = Field(description="Counterfactual − perfect foresight.")
    capture_ratio: float | None = Field(description="Realized ÷ perfect-foresight savings.")
    notes: list[str] = Field(default_factory=list)

    def __add__(self, other: Realized) -> Realized:
        both = self.perfect_foresight_cny is not None and other.perfect_foresight_cny is not None

        def plus(a: float | None, b: float | None) -> float | None:
            return a + b if both and a is not None and b is not None else None

        return finish(
            steps=max(self.steps, other.steps),
            counterfactual=(
                self.counterfactual_cny + other.counterfactual_cny,
                self.counterfactual_co2_kg + other.counterfactual_co2_kg,
            ),
            metered=(
                self.metered_cny + other.metered_cny,
                self.metered_co2_kg + other.metered_co2_kg,
            ),
            perfect=(
                plus(self.perfect_foresight_cny, other.perfect_foresight_cny),
                plus(self.perfect_foresight_co2_kg, other.perfect_foresight_co2_kg),
            ),
            notes=[*self.notes, *other.notes],
        )


def finish(
    *,
    steps: int,
    counterfactual: tuple[float, float],
    metered: tuple[float, float],
    perfect: tuple[float | None, float | None],
    notes: list[str],
) -> Realized:
    """The figures with the savings and the capture ratio worked out."""
    savings = counterfactual[0] - metered[0]
    perfect_savings = None if perfect[0] is None else counterfactual[0] - perfect[0]
    capture = (
        savings / perfect_savings
        if perfect_savings is not None and perfect_savings > MIN_FORESIGHT_SAVINGS_CNY
        else None
    )
    if perfect_savings is not None and savings > perfect_savings + MIN_FORESIGHT_SAVINGS_CNY:
        capture = None  # a re-solve that does worse than what ran is no bound
        notes = [*notes, "perfect foresight came out worse than the plans that ran: no capture"]
    return Realized(
        steps=steps,
        counterfactual_cny=counterfactual[0],
        counterfactual_co2_kg=counterfactual[1],
        metered_cny=metered[0],
        metered_co2_kg=metered[1],
        savings_cny=savings,
        savings_co2_kg=counterfactual[1] - metered[1],
        perfect_foresight_cny=perfect[0],
        perfect_foresight_co2_kg=perfect[1],
        perfect_savings_cny=perfect_savings,
        capture_ratio=capture,
        notes=notes,
    )


def runs(index: pd.DatetimeIndex, step: pd.Timedelta) -> list[pd.DatetimeIndex]:
    """Contiguous runs of at least two steps."""
    if len(index) == 0:
        return []
    breaks = np.flatnonzero(np.diff(index.as_unit("ns").asi8) != step.value) + 1
    return [pd.DatetimeIndex(r) for r in np.split(np.asarray(index), breaks) if len(r) >= 2]


async def _perfect_foresight(
    conn: AsyncConnection, site: SiteFile, scope: Scope, inputs: pd.DataFrame, step: pd.Timedelta
) -> tuple[tuple[float | None, float | None], list[str]]:
    first = pd.Timestamp(inputs.index[0])
    initial = await soc_fractions(conn, scope, first, step)
    final = await soc_fractions(conn, scope, pd.Timestamp(inputs.index[-1]) + step, step)
    try:
        result = await asyncio.to_thread(
            plan,
            with_storage_soc(with_initial_soc(site, initial), "soc_final", final),
            inputs,
            level=scope.level,
            site_id=scope.id,
            time_limit_s=PERFECT_FORESIGHT_TIME_LIMIT_S,
        )
    except EnergyhubError as exc:
        return (None, None), [f"{scope.id}: no perfect-foresight plan on the metered demand: {exc}"]
    cost = sum(result.cost_cny.get(term, 0.0) for term in BILLED_TERMS)
    notes = []
    if result.status != "optimal":
        notes.append(
            f"{scope.id}: the perfect-foresight re-solve stopped at {result.status} "
            f"(gap {result.gap if result.gap is not None else 'unknown'}): an upper bound"
        )
    return (cost, result.co2_kg), notes


async def realize(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    scope: Scope,
    frame: pd.DataFrame,
    plan_inputs: pd.DataFrame,
    month_peak_kw: float,
    *,
    foresight: bool = True,
) -> Realized | None:
    """Realized figures of one connection over the steps of `frame` (a compared frame, UTC) that
    have readings of every input; None when it has fewer than two steps."""
    if len(frame) < 2:
        return None
    index = pd.DatetimeIndex(frame.index)
    step = pd.Timedelta(np.diff(index.as_unit("ns").asi8).min(), "ns")
    span = pd.date_range(index[0], index[-1], freq=step)
    try:
        metered = await metered_inputs(conn, backend, site, scope, span, plan_inputs)
    except ForecastError as exc:
        return _unavailable(f"{scope.id}: no counterfactual: {exc}")
    wanted = span.isin(index)
    complete = metered.frame.notna().all(axis=1).to_numpy() & wanted
    notes = list(dict.fromkeys(metered.notes))
    if (lacking := int((wanted & ~complete).sum())) > 0:
        missing = metered.frame.columns[metered.frame.loc[wanted].isna().any()]
        notes.append(
            f"{scope.id}: {lacking} step(s) without readings of {', '.join(missing)} left out"
        )
    total: Realized | None = None
    for run in runs(span[complete], step):
        found = await _realize_run(
            conn, site, scope, (frame.loc[run], metered.frame.loc[run]), month_peak_kw, foresight
        )
        steps = found.steps + (total.steps if total is not None else 0)
        total = found if total is None else (total + found).model_copy(update={"steps": steps})
    if total is None:
        return _unavailable(f"{scope.id}: no counterfactual: " + "; ".join(notes[-1:]))
    return total.model_copy(update={"notes": [*notes, *total.notes]})


async def _realize_run(
    conn: AsyncConnection,
    site: SiteFile,
    scope: Scope,
    frames: tuple[pd.DataFrame, pd.DataFrame],
    month_peak_kw: float,
    foresight: bool,
) -> Realized:
    """One contiguous run of steps: (compared frame, metered inputs) → realized figures."""
    part, inputs = frames
    step = pd.Timedelta(part.index[1] - part.index[0])
    local = inputs.copy()
    local.index = pd.DatetimeIndex(local.index).tz_convert(site.tz)
    local[month_peak_column(scope.grid_node)] = month_peak_kw
    base = compute_baseline(Context.bare(scope, read_inputs(local, site.tz)))
    dt_h = step.total_seconds() / 3600
    bill = account(
        part["actual_import_kw"], part["actual_gas_kw"], part, scope, dt_h, month_peak_kw
    )
    perfect: tuple[float | None, float | None] = (None, None)
    notes = [
        f"{scope.id}: the rules leave {kwh:,.0f} kWh of {carrier} unserved, priced at "
        f"{UNSERVED_CNY_PER_KWH[carrier]:g} CNY/kWh in the counterfactual"
        for carrier, kwh in base.unserved_kwh.items()
        if kwh > 1e-6
    ]
    if foresight:
        perfect, more = await _perfect_foresight(conn, site, scope, local, step)
        notes += more
    return finish(
        steps=len(part),
        counterfactual=(base.total_cny, base.co2_kg),
        metered=(bill.total_cny, bill.co2_kg),
        perfect=perfect,
        notes=notes,
    )


def with_storage_soc(site: SiteFile, field: str, fractions: dict[str, float]) -> SiteFile:
    """A copy of the site file whose storage assets have `field` (soc_final) set as given."""

    def fixed(assets: Sequence[Asset]) -> list[Asset]:
        return [
            a.model_copy(update={field: fractions[a.id]}) if a.id in fractions else a
            for a in assets
        ]

    parks = [
        park.model_copy(
            update={
                "assets": fixed(park.assets),
                "buildings": [
                    b.model_copy(update={"assets": fixed(b.assets)}) for b in park.buildings
                ],
            }
        )
        for park in site.city.parks
    ]
    return site.model_copy(update={"city": site.city.model_copy(update={"parks": parks})})


def _unavailable(note: str) -> Realized:
    return finish(steps=0, counterfactual=(0.0, 0.0), metered=(0.0, 0.0), perfect=(None, None),
                  notes=[note])  # fmt: skip


def combined(parts: Sequence[Realized | None]) -> Realized | None:
    """Several connections' realized figures summed (None if none has any)."""
    found = [p for p in parts if p is not None]
    if not found:
        return None
    if any(p.steps == 0 for p in found):  # one connection without a counterfactual: none
        return _unavailable("; ".join(n for p in found if p.steps == 0 for n in p.notes))
    total = found[0]
    for part in found[1:]:
        total = total + part
    return total
