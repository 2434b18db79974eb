"""The peak guard: at each step boundary, before the step's setpoints go out, hold the
connection's import at the peak the bill already carries when the metered demand runs above plan.

A plan is solved on a forecast; when demand comes in above it, the plan's import plus that error can
set a new month peak, billed for the whole month. The guard compares the connection's metered import
over the last step with what was expected for it (the plan's import with the guard's own changes)
and takes the error as persisting into this step: estimate = plan's import now + error, the error of
the step's mean or of its last five minutes, whichever is higher (a rise goes on). If the estimate
is above the limit, max(month-to-date billed peak, the month's demand target the plan took as free,
the plan's own peak over its horizon) − headroom, the excess is taken off, in this order, within
each asset's power and state of charge: batteries' charging is cut; electrolysis is cut; a heat or
cold store charged by a heat pump or chiller of its building charges less, and that machine makes
that much less (the import falls by the heat or cold ÷ the machine's COP in the plan at that step);
batteries discharge more; CHPs run higher (a stopped CHP at least at its minimum load); fuel cells
run higher on the hydrogen their node's stores hold above their minimum, those stores discharging as
much more; a heat or cold store discharges more, within its power and what it holds above its
minimum, and a heat pump or chiller of its building makes that much less of the demand it serves
(the import falls by the heat or cold ÷ the machine's COP in the plan at that step). The building's
demand is still met in full: a store only takes over from a machine, it never leaves comfort
short. It never raises a plan's import: charging that would set a new peak is the first thing it
cuts.

Every change is an override: logged, and stored with the setpoint (`planned_p_kw`, `override`) so
plan vs actual shows what the plan asked and why the device was told otherwise. Without a metered
import for the last step (readings not in yet, or a restart), the guard does nothing that step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.optimize.scope import Scope
from energyhub.plans.metered import actual_frame, soc_fractions
from energyhub.plans.peak import connection_month_peak_kw
from energyhub.scheduler.setpoints import Setpoint
from energyhub.sites import (
    CHP,
    Battery,
    ElectricChiller,
    Electrolyzer,
    FuelCell,
    HeatPump,
    HydrogenStore,
    ThermalStorage,
)
from energyhub.store.billing import month_start
from energyhub.store.db import Backend

log = logging.getLogger(__name__)

MIN_COVERAGE = 0.9
"""Share of the last step's electricity meter-time the readings must cover for the guard to act:
a meter not yet heard from would read as less import than there was."""
TAIL = pd.Timedelta(minutes=5)
"""The end of the last step whose import, if above the step's mean, is taken as persisting: a
demand rising through a step has not stopped at its mean."""
READ_STEP = pd.Timedelta(minutes=1)
"""Resolution the last step's import is read at: from the raw readings, not the rollups, which
the ingest refreshes on a timer and may not have caught up with."""


@dataclass(frozen=True, slots=True)
class StepImport:
    """The import a step was expected to have: the plan's, with the guard's changes."""

    ts: datetime
    expected_kw: float


@dataclass(frozen=True, slots=True)
class GuardDecision:
    """What the guard saw and did at one step of one site."""

    estimate_kw: float
    limit_kw: float
    setpoints: list[Setpoint]
    cut_kw: float

    @property
    def overridden(self) -> list[Setpoint]:
        return [s for s in self.setpoints if s.override is not None]


def planned_import_kw(schedule: pd.DataFrame, node: str) -> pd.Series:
    """The plan's net import per step at the connection."""
    export = schedule.get(f"{node}:export_kw", 0.0)
    return schedule[f"{node}:import_kw"] - export


def free_peak_kw(schedule: pd.DataFrame, node: str) -> float:
    """The import the plan took as free of demand charge, its month's demand target included
    (`<node>:free_peak_kw`, energyhub.scheduler.target); 0 for a plan without a target."""
    column = schedule.get(f"{node}:free_peak_kw")
    if column is None or not len(column):
        return 0.0
    value = float(pd.Series(column).max())
    return value if np.isfinite(value) else 0.0


class PeakGuard:
    """Per scheduled site: the import expected of the last step sent, and the month's peak."""

    def __init__(self, tz: ZoneInfo, step: timedelta, headroom_kw: float) -> None:
        self.tz, self.step, self.headroom_kw = tz, pd.Timedelta(step), headroom_kw
        self._expected: dict[str, StepImport] = {}
        self._peaks: dict[str, tuple[datetime, float]] = {}

    async def check(
        self,
        conn: AsyncConnection,
        backend: Backend,
        scope: Scope,
        schedule: pd.DataFrame,
        ts: pd.Timestamp,
        setpoints: list[Setpoint],
        locked: frozenset[str] = frozenset(),
    ) -> GuardDecision | None:
        """The step's setpoints, overridden where the import would pass the limit; None when the
        guard cannot judge the step (no metered import of the last one, or no expectation).
        `locked` stores are not discharged (a CO₂ policy's gate, energyhub.scheduler.co2_gate)."""
        node = scope.grid_node
        planned = planned_import_kw(schedule, node)
        if ts not in planned.index:
            return None
        planned_now = float(planned.loc[ts])
        previous = ts - self.step
        judged = self._expected.get(scope.id)
        if judged is not None and pd.Timestamp(judged.ts) == ts:
            return None  # judged this step already (its setpoints are claimed)
        read = await self._metered_kw(conn, backend, scope, previous)
        metered, tail = read if read is not None else (None, None)
        expected = self._expected.get(scope.id)
        if expected is None or pd.Timestamp(expected.ts) != previous:
            before = planned.get(previous)  # no guard record: the plan's own, if it has one
            expected = None if before is None else StepImport(previous, float(before))
        self._expected[scope.id] = StepImport(ts.to_pydatetime(), planned_now)
        if metered is None or tail is None or expected is None:
            return None
        peak = await self._month_peak(conn, backend, scope, ts, previous, metered)
        limit = self._limit(peak, schedule, node)
        estimate = planned_now + max(metered, tail) - expected.expected_kw  # a rise goes on
        if estimate <= limit:
            return GuardDecision(estimate, limit, setpoints, 0.0)
        why = (
            f"peak guard: last step metered {metered:,.0f} kW (its last 5 min {tail:,.0f}) "
            f"against {expected.expected_kw:,.0f} expected; this step estimated "
            f"{estimate:,.0f} kW above the limit {limit:,.0f} kW"
        )
        soc = await soc_fractions(conn, scope, ts, self.step)
        soc = {asset: f for asset, f in soc.items() if asset not in locked}
        cops = planned_cops(scope, schedule, ts)
        changed, cut = hold_import(scope, setpoints, estimate - limit, soc, self.step, why, cops)
        self._expected[scope.id] = StepImport(ts.to_pydatetime(), planned_now - cut)
        decision = GuardDecision(estimate, limit, changed, cut)
        for s in decision.overridden:
            log.info(
                "%s %s %s: %s; p_kw %.0f → %.0f",
                scope.id, ts.isoformat(), s.asset_id, why, s.planned_p_kw, s.p_kw,
            )  # fmt: skip
        if cut < estimate - limit - 1e-6:
            log.warning(
                "%s %s: peak guard could take %.0f of the %.0f kW above the limit of %.0f kW "
                "(the month's billed peak, its demand target or the plan's own, less %.0f kW of "
                "headroom) off the "
                "import: the other %.0f kW may raise the month's billed peak (the storage, fuel "
                "cells and flexible loads the guard steers had no more to give this step)",
                scope.id, ts.isoformat(), cut, estimate - limit, limit, self.headroom_kw,
                estimate - limit - cut,
            )  # fmt: skip
        return decision

    def _limit(self, month_peak_kw: float, schedule: pd.DataFrame, node: str) -> float:
        """max(month-to-date billed peak, the month's demand target the plan took as free, the
        plan's own peak over its horizon) − headroom: a peak the bill carries, the month will
        reach or the plan chose to set is not fought."""
        planned = float(planned_import_kw(schedule, node).max())
        free = max(month_peak_kw, free_peak_kw(schedule, node), planned)
        return max(free - self.headroom_kw, 0.0)

    async def import_limit(
        self,
        conn: AsyncConnection,
        backend: Backend,
        scope: Scope,
        schedule: pd.DataFrame,
        ts: pd.Timestamp,
        setpoints: list[Setpoint],
    ) -> list[Setpoint]:
        """The step's setpoints of the devices whose local controller holds the connection's
        import (LIMITED), carrying the guard's limit as `import_limit_kw`; the month's peak as
        the guard last kept it up (read from the rollups at a month's first use)."""
        planned = planned_import_kw(schedule, scope.grid_node)
        if ts not in planned.index:
            return setpoints
        month = month_start(ts.to_pydatetime(), self.tz)
        known = self._peaks.get(scope.id)
        if known is None or known[0] != month:
            peak = await connection_month_peak_kw(conn, backend, scope, ts.to_pydatetime(), self.tz)
            known = self._peaks[scope.id] = (month, peak)
        limit = self._limit(known[1], schedule, scope.grid_node)
        assets = {a.id: a for _, a in scope.assets()}
        return [
            replace(s, import_limit_kw=limit) if isinstance(assets.get(s.asset_id), LIMITED) else s
            for s in setpoints
        ]

    async def _metered_kw(
        self, conn: AsyncConnection, backend: Backend, scope: Scope, step_start: pd.Timestamp
    ) -> tuple[float, float] | None:
        """The connection's mean metered net import over the step from `step_start`, and over
        its last TAIL (where demand rising through the step has got to)."""
        index = pd.date_range(step_start, step_start + self.step, freq=READ_STEP, inclusive="left")
        frame = await actual_frame(conn, backend, scope, index)
        imports = frame["import_kw"].to_numpy(dtype=float)
        meters = frame.get("meters:electricity")
        if meters is not None and len(meters):
            covered = float(frame["covered_s:electricity"].sum())
            expected_s = float(meters.sum()) * READ_STEP.total_seconds()  # meters per read step
            if expected_s > 0 and covered / expected_s < MIN_COVERAGE:
                return None
        if not np.isfinite(imports).all():
            return None
        tail = max(int(TAIL / READ_STEP), 1)
        return float(imports.mean()), float(imports[-tail:].mean())

    async def _month_peak(
        self,
        conn: AsyncConnection,
        backend: Backend,
        scope: Scope,
        ts: pd.Timestamp,
        previous: pd.Timestamp,
        metered: float,
    ) -> float:
        """The billed peak this month before `ts`: read once a month, then kept up from the
        steps the guard measures (the rollups it is read from may lag the readings)."""
        month = month_start(ts.to_pydatetime(), self.tz)
        known = self._peaks.get(scope.id)
        if known is None or known[0] != month:
            peak = await connection_month_peak_kw(conn, backend, scope, ts.to_pydatetime(), self.tz)
            known = (month, peak)
        if previous.to_pydatetime() >= month:
            known = (month, max(known[1], metered))
        self._peaks[scope.id] = known
        return known[1]


LIMITED = (
    Battery, Electrolyzer, ThermalStorage, HeatPump, ElectricChiller, CHP, FuelCell, HydrogenStore,
)  # fmt: skip
"""Devices whose setpoints carry the import limit: what the local controller may take off the
import (a battery's charging, then its discharge; electrolysis; a store's charging by its
building's heat pump or chiller, with that machine's output for it; a CHP's output raised; a
fuel cell's output raised, with the discharge of its node's hydrogen store for it; a heat or cold
store's discharge raised, with its building's heat pump or chiller making that much less)."""

CHARGERS: dict[type, tuple[str, str]] = {
    HeatPump: ("heat", "heat_kw"),
    ElectricChiller: ("cooling", "cooling_kw"),
}
"""Electric machines that take setpoints and can charge a store of their building: the carrier
and the plan column of what they make (their setpoint)."""


def planned_cops(scope: Scope, schedule: pd.DataFrame, ts: pd.Timestamp) -> dict[str, float]:
    """Per electric heat or cold machine running in the plan at `ts`: what it makes ÷ what it
    draws there (its COP at that step's outdoor temperature, as the plan had it)."""
    if ts not in schedule.index:
        return {}
    row = schedule.loc[ts].to_dict()
    cops = {}
    for _, asset in scope.assets():
        charger = CHARGERS.get(type(asset))
        if charger is None:
            continue
        made, drawn = row.get(f"{asset.id}:{charger[1]}"), row.get(f"{asset.id}:electricity_kw")
        if made is not None and drawn is not None and drawn > 1e-6 and made > 0:
            cops[asset.id] = float(made) / float(drawn)
    return cops


def hold_import(
    scope: Scope,
    setpoints: list[Setpoint],
    excess_kw: float,
    soc: dict[str, float],
    step: pd.Timedelta,
    why: str,
    cops: dict[str, float] | None = None,
) -> tuple[list[Setpoint], float]:
    """The setpoints changed to take up to `excess_kw` off the import; the kW taken off. `cops`
    (planned_cops) lets it cut a store's charging by its electric charger, and let the store
    discharge for that machine."""
    assets = {a.id: a for _, a in scope.assets()}
    node_of = {a.id: node.id for node, a in scope.assets()}
    out = list(setpoints)
    left = excess_kw
    step_h = step.total_seconds() / 3600

    def change(i: int, p_kw: float, action: str, taken_kw: float | None = None) -> None:
        nonlocal left
        s = out[i]
        left -= abs(p_kw - s.p_kw) if taken_kw is None else taken_kw
        reason = f"{why}: {action}" if s.override is None else f"{s.override}; {action}"
        out[i] = replace(s, p_kw=p_kw, override=reason)

    batteries = [(i, s) for i, s in enumerate(out) if isinstance(assets.get(s.asset_id), Battery)]
    for i, s in batteries:  # 1. charging that would set a new peak
        if left > 0 and s.p_kw > 0:
            change(i, max(s.p_kw - left, 0.0), "charging cut")
    for i, s in enumerate(out):  # 2. electrolysis
        if left > 0 and s.p_kw > 0 and isinstance(assets.get(s.asset_id), Electrolyzer):
            change(i, max(s.p_kw - left, 0.0), "electrolysis cut")
    for i, s in enumerate(out):  # 3. stores charged by electric machines of their building
        store = assets.get(s.asset_id)
        if not isinstance(store, ThermalStorage):
            continue
        for j, m in enumerate(out):
            machine, cop = assets.get(m.asset_id), (cops or {}).get(m.asset_id)
            charger = CHARGERS.get(type(machine))
            if (
                left <= 0 or out[i].p_kw <= 0 or m.p_kw <= 0 or cop is None or charger is None
                or charger[0] != store.carrier or node_of[m.asset_id] != node_of[store.id]
            ):  # fmt: skip
                continue
            made = min(out[i].p_kw, out[j].p_kw, left * cop)
            change(i, out[i].p_kw - made, "charging cut", taken_kw=0.0)
            change(j, out[j].p_kw - made, f"{store.id} charged less", taken_kw=made / cop)
    for i, _ in batteries:  # 4. discharge within power and state of charge
        s, battery = out[i], assets[out[i].asset_id]
        assert isinstance(battery, Battery)  # noqa: S101 - selected above
        if left <= 0 or battery.id not in soc:
            continue
        usable_kwh = (soc[battery.id] - battery.soc_min) * battery.energy_kwh
        floor = -min(battery.power_kw, max(usable_kwh, 0.0) * battery.eta_discharge / step_h)
        if s.p_kw > floor:
            change(i, max(s.p_kw - left, floor), "discharge raised")
    for i, s in enumerate(out):  # 5. CHPs up to full electric output
        chp = assets.get(s.asset_id)
        if left <= 0 or not isinstance(chp, CHP):
            continue
        full_kw = chp.fuel_max_kw * chp.eta_el
        raised = min(full_kw, max(s.p_kw + left, full_kw * chp.min_load))
        if raised > s.p_kw:
            change(i, raised, "CHP output raised")
    for i, s in enumerate(out):  # 6. fuel cells, on the hydrogen their node's stores hold
        cell = assets.get(s.asset_id)
        if not isinstance(cell, FuelCell):
            continue
        for j, h in enumerate(out):
            store = assets.get(h.asset_id)
            if (
                left <= 0 or not isinstance(store, HydrogenStore) or store.id not in soc
                or node_of[store.id] != node_of[cell.id]
            ):  # fmt: skip
                continue
            stock_kw = max(soc[store.id] - store.soc_min, 0.0) * store.energy_kwh / step_h
            floor = -min(store.power_kw, stock_kw * store.eta_discharge)
            more = min(left, cell.power_max_kw - out[i].p_kw, (out[j].p_kw - floor) * cell.eta_el)
            if more <= 1e-9:
                continue
            change(j, out[j].p_kw - more / cell.eta_el, f"{cell.id} fed", taken_kw=0.0)
            change(i, out[i].p_kw + more, "fuel cell output raised")
    for i, s in enumerate(out):  # 7. stores discharge for their building's electric machines
        store = assets.get(s.asset_id)
        if not isinstance(store, ThermalStorage) or store.id not in soc:
            continue
        stock_kw = max(soc[store.id] - store.soc_min, 0.0) * store.energy_kwh / step_h
        floor = -min(store.power_kw, stock_kw * store.eta_discharge)
        for j, m in enumerate(out):
            machine, cop = assets.get(m.asset_id), (cops or {}).get(m.asset_id)
            charger = CHARGERS.get(type(machine))
            if (
                left <= 0 or cop is None or charger is None or charger[0] != store.carrier
                or node_of[m.asset_id] != node_of[store.id]
            ):  # fmt: skip
                continue
            made = min(out[i].p_kw - floor, out[j].p_kw, left * cop)
            if made <= 1e-9:
                continue
            change(i, out[i].p_kw - made, "discharge raised", taken_kw=0.0)
            change(j, out[j].p_kw - made, f"{store.id} discharged for it", taken_kw=made / cop)
    return out, excess_kw - left
