"""Under a site's CO₂ policy, stores move only on CO₂ the local day has already saved on the meters.

The policy asks for local days that emit no more than the counterfactual (the rules on the metered
demand, stores idle) × (1 + max_co2_vs_baseline_pct / 100); that less the day's metered CO₂ (net
of the storage credit) is the day's slack. A plan's CO₂ limit is met on a forecast; every kWh
that then goes through a store costs its losses on the meters (flat grid factor: charging c kWh
costs c · m and leaves η_charge · c worth η_discharge · m each; discharging d kWh saves d · m and
takes d ÷ η_discharge worth m ÷ η_charge each, as energyhub.plans.stored values them), and the
peak guard and the local controller discharge stores no plan accounted for. So before each
step's setpoints go out the gate reads the day so far as realized savings read it
(energyhub.scheduler.co2_account, at most every READ_EVERY, the moves since booked against it)
and lets a store move only while that slack covers the move's loss; a store it stops is idle, as
the counterfactual's: a battery at 0, a hydrogen store with its electrolyzer and fuel cells off,
a heat or cold store with its building's heat pump or chiller making what it would have given (a
discharge no machine can take over is left as planned). Stores whose full-power discharge the
slack left does not cover are locked for the peak guard and the local controller (no import
limit on their setpoints).

A day opens with no slack: its stores stay idle until the rest of the dispatch (a CHP, a cheaper
or cleaner machine than the rules would run) has saved what their losses cost. The price is the
stores' cost savings and the guard's store levers, so a demand peak they would have held may be
billed (docs/billing-and-savings.md). Without a policy, or with `gate_stores_on_meters: false`,
nothing here runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pandas as pd
from psycopg import AsyncConnection

from energyhub.localdays import day_start
from energyhub.optimize.scope import Scope
from energyhub.scheduler.co2_account import day_co2_account
from energyhub.scheduler.guard import CHARGERS, planned_cops
from energyhub.scheduler.setpoints import Setpoint
from energyhub.sites import (
    Battery,
    ElectricChiller,
    Electrolyzer,
    FuelCell,
    HeatPump,
    HydrogenStore,
    SiteFile,
    ThermalStorage,
)
from energyhub.store.db import Backend

log = logging.getLogger(__name__)

READ_EVERY = pd.Timedelta(hours=1)
"""How often the day's account is read from the meters (a counterfactual re-run over the day so
far); between reads the moves let through are booked against it."""
LOSS_SAFETY = 1.25
"""Factor on each move's estimated loss: the estimate takes the step's marginal kg for the
window's mean the savings value a store with, and a flat COP over the day."""

Store = Battery | ThermalStorage | HydrogenStore


@dataclass(frozen=True, slots=True)
class GateStep:
    """What the gate let through at one step of one site."""

    setpoints: list[Setpoint]
    locked: frozenset[str]
    """Stores the peak guard and the local controller may not discharge this step."""
    slack_kg: float
    """The day's CO₂ below its counterfactual so far, less the moves booked since it was read."""


@dataclass(slots=True)
class _Day:
    start: pd.Timestamp
    read_at: pd.Timestamp | None = None
    read_kg: float = 0.0
    booked: dict[pd.Timestamp, float] = field(default_factory=dict)

    def slack_kg(self, step: pd.Timedelta) -> float:
        """The reading less the moves since (those of the step before it too: its readings
        may not have been in)."""
        since = self.start if self.read_at is None else self.read_at - step
        return self.read_kg - sum(kg for ts, kg in self.booked.items() if ts >= since)


def carrier_kg(scope: Scope, store: Store, cops: dict[str, float]) -> float:
    """kg CO₂ of one more kWh of the store's carrier at its node: the grid's for electricity, ÷
    its node's electrolyzer efficiency for hydrogen, ÷ the COP of its building's electric heat
    pump or chiller for heat and cold (the grid's, an upper bound, if none is running)."""
    grid_kg = scope.carbon.grid_kg_per_kwh
    node = next(n for n, a in scope.assets() if a.id == store.id)
    if isinstance(store, Battery):
        return grid_kg
    if isinstance(store, HydrogenStore):
        eta = next((a.eta for a in node.assets if isinstance(a, Electrolyzer)), 1.0)
        return grid_kg / eta
    found = [
        cops[a.id] for a in node.assets
        if a.id in cops and CHARGERS.get(type(a), ("",))[0] == store.carrier
    ]  # fmt: skip
    return grid_kg / max(found) if found else grid_kg


def move_loss_kg(scope: Scope, store: Store, p_kw: float, step_h: float, kg: float) -> float:
    """kg CO₂ a store's move of `p_kw` (charge > 0, discharge < 0) for a step loses against the
    counterfactual's idle store, as realized savings value it (kg: carrier_kg). A hydrogen
    store's discharge displaces what its node's fuel cells make of it."""
    eta = store.eta_charge * store.eta_discharge
    if p_kw >= 0:
        return LOSS_SAFETY * p_kw * step_h * kg * (1 - eta)
    displaced = kg
    if isinstance(store, HydrogenStore):
        node = next(n for n, a in scope.assets() if a.id == store.id)
        cells = [a.eta_el for a in node.assets if isinstance(a, FuelCell)]
        displaced = max(cells, default=0.0) * scope.carbon.grid_kg_per_kwh
    return LOSS_SAFETY * -p_kw * step_h * (kg / eta - displaced)


class Co2Gate:
    """Per scheduled site: the local day's CO₂ slack, read from the meters and booked against."""

    def __init__(self, site: SiteFile, step: timedelta) -> None:
        self.site, self.step = site, pd.Timedelta(step)
        self._days: dict[str, _Day] = {}

    async def open(
        self,
        conn: AsyncConnection,
        backend: Backend,
        scope: Scope,
        schedule: pd.DataFrame,
        ts: pd.Timestamp,
        setpoints: list[Setpoint],
    ) -> GateStep:
        """The step's setpoints with each store's move let through while the day's slack covers
        its loss, else idle; and the stores locked for the guard."""
        day = await self._day(conn, backend, scope, ts)
        slack = day.slack_kg(self.step)
        step_h = self.step.total_seconds() / 3600
        cops = planned_cops(scope, schedule, ts)
        stores = {a.id: a for _, a in scope.assets() if isinstance(a, Store)}
        out, left = list(setpoints), slack
        for s in setpoints:
            store = stores.get(s.asset_id)
            if store is None:
                continue
            loss = move_loss_kg(scope, store, s.p_kw, step_h, carrier_kg(scope, store, cops))
            if loss <= max(left, 0.0) or abs(s.p_kw) <= 1e-9:
                left -= loss
                continue
            why = (
                f"CO₂ policy: the day's {max(left, 0.0):,.0f} kg below its counterfactual so far "
                f"does not cover the {loss:,.0f} kg {s.asset_id}'s move would lose: idle, as "
                "the counterfactual's"
            )
            out = idle(scope, out, store, cops, why)
            left -= move_loss_kg(
                scope, store, _p(out, store.id), step_h, carrier_kg(scope, store, cops)
            )
        locked = set()
        for store in stores.values():
            lever = move_loss_kg(
                scope, store, -store.power_kw, step_h, carrier_kg(scope, store, cops)
            )
            if lever <= max(left, 0.0):
                left -= lever
            else:
                locked.add(store.id)
        return GateStep(out, frozenset(locked), slack)

    def close(
        self, scope: Scope, schedule: pd.DataFrame, ts: pd.Timestamp, gate: GateStep,
        setpoints: list[Setpoint],
    ) -> list[Setpoint]:  # fmt: skip
        """The setpoints as sent: no import limit on the locked stores (and the fuel cells of
        locked hydrogen stores); the loss of their moves booked against the day."""
        assets = {a.id: a for _, a in scope.assets()}
        node_of = {a.id: n.id for n, a in scope.assets()}
        locked_nodes = {node_of[a] for a in gate.locked if isinstance(assets[a], HydrogenStore)}
        out = [
            replace(s, import_limit_kw=None)
            if s.import_limit_kw is not None
            and (
                s.asset_id in gate.locked
                or (isinstance(assets.get(s.asset_id), FuelCell)
                    and node_of[s.asset_id] in locked_nodes)
            )
            else s
            for s in setpoints
        ]  # fmt: skip
        cops = planned_cops(scope, schedule, ts)
        step_h = self.step.total_seconds() / 3600
        loss = sum(
            move_loss_kg(scope, a, s.p_kw, step_h, carrier_kg(scope, a, cops))
            for s in out
            if isinstance(a := assets.get(s.asset_id), Store)
        )
        day = self._days.get(scope.id)
        if day is not None:
            day.booked[ts] = loss
        return out

    async def _day(
        self, conn: AsyncConnection, backend: Backend, scope: Scope, ts: pd.Timestamp
    ) -> _Day:
        start = day_start(ts, self.site.tz)
        day = self._days.get(scope.id)
        if day is None or day.start != start:
            day = self._days[scope.id] = _Day(start)
        if day.read_at is None or ts >= day.read_at + READ_EVERY:
            try:
                account = await day_co2_account(
                    conn, backend, self.site, scope.id, ts.to_pydatetime(), pd.DatetimeIndex([ts])
                )
            except Exception:  # the step's setpoints still go out, on the slack read last
                log.exception("CO₂ gate: the day's account of %s could not be read", scope.id)
                account = None
            if account is not None:  # what the policy allows the day so far, less what it emitted
                day.read_kg = account.slack_kg
            day.read_at = ts
        return day


def _p(setpoints: list[Setpoint], asset_id: str) -> float:
    return next(s.p_kw for s in setpoints if s.asset_id == asset_id)


def idle(
    scope: Scope, setpoints: list[Setpoint], store: Store, cops: dict[str, float], why: str
) -> list[Setpoint]:
    """The setpoints with `store` idle and its node's devices doing what the counterfactual's
    would: a hydrogen store's electrolyzers and fuel cells off; a heat or cold store's electric
    heat pumps or chillers (those running in the plan, `cops`) making its discharge instead
    (within their capacity; what they cannot take over stays with the store) and not its charge."""
    node = next(n for n, a in scope.assets() if a.id == store.id)
    out = list(setpoints)
    at = {s.asset_id: i for i, s in enumerate(out)}

    def change(asset_id: str, p_kw: float) -> None:
        i = at[asset_id]
        s = out[i]
        reason = why if s.override is None else f"{s.override}; {why}"
        out[i] = replace(s, p_kw=p_kw, override=reason)

    p = out[at[store.id]].p_kw
    if isinstance(store, HydrogenStore):
        for a in node.assets:
            if isinstance(a, Electrolyzer | FuelCell) and a.id in at and out[at[a.id]].p_kw:
                change(a.id, 0.0)
    if isinstance(store, ThermalStorage):
        machines = [
            a for a in node.assets
            if isinstance(a, HeatPump | ElectricChiller) and a.id in at and a.id in cops
            and CHARGERS[type(a)][0] == store.carrier
        ]  # fmt: skip
        if p < 0:  # discharge: the machines make it, within their capacity
            wanted = -p
            for a in machines:
                high = a.heat_max_kw if isinstance(a, HeatPump) else a.cooling_max_kw
                more = min(wanted, max(high - out[at[a.id]].p_kw, 0.0))
                if more > 1e-9:
                    change(a.id, out[at[a.id]].p_kw + more)
                    wanted -= more
            change(store.id, -wanted)
            return out
        for a in machines:  # charge: the machines make that much less
            less = min(p, out[at[a.id]].p_kw)
            if less > 1e-9:
                change(a.id, out[at[a.id]].p_kw - less)
                p -= less
    change(store.id, 0.0)
    return out
