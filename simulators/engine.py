"""Step through a plant in simulated time: apply setpoints, integrate counters, round readings.

The plant holds every reading precomputed under the default rules; a step only does work beyond
reading a column when a setpoint is active or a storage SOC has left its default trajectory.

A setpoint may carry the connection's import limit (`import_limit_kw`): the park's local
controller (what a BESS or EMS controller at the connection does) then holds the park's import
under it at every simulator step, taking the excess off the devices whose setpoints carry it
(`hold_import`), not only at the plan's 15-minute boundaries. A heat or cold store under
setpoints charges only from what its node's machines make beyond the demand
(`_serve_demand_first`).
"""

from __future__ import annotations

import math
from bisect import insort
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from energyhub.sites import (
    CHP,
    Asset,
    Battery,
    ElectricChiller,
    Electrolyzer,
    FuelCell,
    HeatPump,
    HydrogenStore,
    ThermalStorage,
)
from simulators.devices import CONTROLLABLE, machine_cop
from simulators.plant import Node, Plant, redispatch_park, rng_for
from simulators.weather import Array

DEFAULT_ROLLOVER_KWH = 999_999.9
"""Where a counter without `rollover_kwh` wraps: six digits and one decimal, as on most meters."""
DEFAULT_RESET_PER_STEP = 1e-5
"""Chance that a counter resets to zero in a step (a meter swap or a lost register)."""

UNSERVED_TOLERANCE_KW = 1e-6
"""Heat or cooling left unserved below which no store's charging is held (float noise)."""

_DECIMALS = {"power_kw": 3, "energy_kwh": 3, "temperature_c": 2, "humidity_pct": 1, "soc_pct": 2}


Key = tuple[str, str]
"""(node id, asset id)."""


@dataclass
class SetpointBook:
    """Setpoints by (node, asset); each applies from its `ts` for at most `hold_s` simulated s,
    with the connection's import limit it carries (inf: none)."""

    hold_s: float
    by_asset: dict[Key, list[tuple[float, float, float]]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        node_id: str,
        asset_id: str,
        ts_s: float,
        p_kw: float,
        import_limit_kw: float = math.inf,
    ) -> None:
        insort(self.by_asset.setdefault((node_id, asset_id), []), (ts_s, p_kw, import_limit_kw))
        self.outcomes["accepted"] += 1

    def active_order(self, key: Key, now_s: float) -> tuple[float, float] | None:
        """(p_kw, import limit) of the latest setpoint at or before `now_s`, unless older than
        the hold time."""
        latest = None
        for entry in self.by_asset.get(key, ()):
            if entry[0] > now_s:
                break
            latest = entry
        if latest is None or now_s - latest[0] >= self.hold_s:
            return None
        return latest[1], latest[2]

    def active(self, key: Key, now_s: float) -> float | None:
        """The latest setpoint at or before `now_s`, unless older than the hold time."""
        order = self.active_order(key, now_s)
        return None if order is None else order[0]


@dataclass(frozen=True, slots=True)
class StepReadings:
    """One step's published values: `value` per channel (counters as their register), `rate_kw`."""

    t: int
    value: list[float]
    rate_kw: list[float]
    total_kwh: list[float]


class Engine:
    """Advances the plant one step at a time; the only per-step state is SOC and counters."""

    def __init__(self, plant: Plant, book: SetpointBook, reset_per_step: float) -> None:
        self.plant, self.book = plant, book
        self.events: Counter[str] = Counter()
        self._nodes = {node.id: node for node in plant.nodes()}
        self._park_of = {n.id: park for park in plant.parks for n in park.subtree()}
        self._live: set[Key] = set()
        self._soc_before: dict[Key, float] = {}
        channels = plant.channels
        self._counter_idx = np.array(
            [i for i, c in enumerate(channels) if c.counter or c.meter.device], dtype=np.int64
        )
        self._totals, self._rollover, self._resets = self._counter_state(reset_per_step)
        published = [channels[i].counter for i in self._counter_idx.tolist()]
        self._register_idx = self._counter_idx[np.array(published, dtype=bool)]
        self._published_registers = np.array(published, dtype=bool)
        self._decimals = np.array([_DECIMALS.get(c.meter.quantity, 0) for c in channels])
        self._integer = [i for i, c in enumerate(channels) if c.meter.quantity == "occupancy"]

    def _counter_state(self, reset_per_step: float) -> tuple[Array, Array, np.ndarray]:
        starts, rollovers, resets = [], [], []
        for i in self._counter_idx.tolist():
            channel = self.plant.channels[i]
            rollover = channel.meter.rollover_kwh or DEFAULT_ROLLOVER_KWH
            rng = rng_for(self.plant.seed, channel.node.id, channel.meter.id, "counter")
            starts.append(rng.uniform(0.0, 0.9 * rollover))
            rollovers.append(rollover)
            resets.append(rng.random(self.plant.grid.steps) < reset_per_step)
        shape = (len(resets), self.plant.grid.steps)
        return np.array(starts), np.array(rollovers), np.array(resets, dtype=bool).reshape(shape)

    def controllable(self, node_id: str, asset_id: str) -> Asset | None:
        """The asset if it exists on that node and follows setpoints."""
        node = self._nodes.get(node_id)
        asset = next((a for a in node.site.assets if a.id == asset_id), None) if node else None
        return asset if asset is not None and asset.type in CONTROLLABLE else None

    def step(self, t: int) -> StepReadings:
        now_s = self.plant.grid.start.timestamp() + t * self.plant.grid.step_s
        dirty = self._apply_setpoints(t, now_s)
        for park in {self._park_of[node.id] for node in dirty}:
            self._refresh(park, t, now_s)
            self._serve_demand_first(park, t, now_s)
            self._hold_import(park, t, now_s)
        return self._readings(t)

    def _apply_setpoints(self, t: int, now_s: float) -> list[Node]:
        """Step live storage and mark nodes whose flows at `t` differ from the default."""
        dirty = []
        for key in self.book.by_asset.keys() | self._live:
            node = self._nodes[key[0]]
            p_kw = self.book.active(key, now_s)
            state = node.storage.get(key[1])
            if state is not None and (p_kw is not None or key in self._live):
                if key not in self._live:
                    soc = node.flows[key[1]].readings["soc"]
                    state.soc = float(soc[t - 1]) if t else state.asset.soc_initial
                    self._live.add(key)
                request = node.requests[key[1]][t] if p_kw is None else p_kw
                self._soc_before[key] = state.soc
                power = state.step(float(request), self.plant.grid.step_h)
                node.write_storage(
                    state.asset, slice(t, t + 1), np.array([power]), np.array([state.soc])
                )
                dirty.append(node)
            elif p_kw is not None:
                dirty.append(node)
            self.events["setpoint steps"] += p_kw is not None
        return dirty

    def _refresh(
        self, park: Node, t: int, now_s: float, held: dict[Key, float] | None = None
    ) -> None:
        """Redispatch a park's nodes at step t with their active setpoints (or what the local
        controller `held` them to: a CHP held runs for the import limit, heat used or not),
        then its channels."""
        sl, plant = slice(t, t + 1), self.plant
        held = held or {}
        setpoints = {
            node.id: {
                asset.id: np.array([held.get((node.id, asset.id), p)])
                for asset in node.site.assets
                if (p := self.book.active((node.id, asset.id), now_s)) is not None
            }
            for node in park.subtree()
        }
        free = {asset_id for _, asset_id in held}
        redispatch_park(park, plant.hours, plant.weather, sl, setpoints, free)
        members = set(park.subtree())
        for i, channel in enumerate(plant.channels):
            if channel.node in members:
                plant.values[i, t] = channel.evaluate(sl)[0]

    def _restep(self, key: Key, node: Node, store: Asset, request_kw: float, t: int) -> float:
        """Re-run a live store's step `t` at `request_kw` from where it started; the new power."""
        state = node.storage[store.id]
        state.soc = self._soc_before[key]
        power = state.step(request_kw, self.plant.grid.step_h)
        node.write_storage(state.asset, slice(t, t + 1), np.array([power]), np.array([state.soc]))
        return power

    def _serve_demand_first(self, park: Node, t: int, now_s: float) -> None:
        """The plant's local control: a heat or cold store charges only from what is made beyond
        the demand. Where the refresh at step t left heat or cooling unserved on a node while a
        store of that carrier there charged at its setpoint, the store takes that much less
        (never below 0) and the park is redispatched: a chiller at its limit serves the building
        before the ice store, as a plant's controls keep comfort first."""
        held = False
        for node in park.subtree():
            for store in node.storage_assets():
                key = (node.id, store.id)
                if not isinstance(store, ThermalStorage) or key not in self._live:
                    continue
                short = float(node.unserved_kw[store.carrier][t])
                charging = float(node.flows[store.id].readings[store.carrier][t])
                if short <= UNSERVED_TOLERANCE_KW or charging <= 0:
                    continue
                self._restep(key, node, store, max(charging - short, 0.0), t)
                node.unserved_kw[store.carrier][t] = max(short - charging, 0.0)
                held = True
        if held:
            self.events["store charging held for demand"] += 1
            self._refresh(park, t, now_s)

    def _hold_import(self, park: Node, t: int, now_s: float) -> None:
        """The park's local controller: where its import at step t is above the lowest import
        limit its active setpoints carry, take the excess off the devices that carry one, in
        the scheduler's peak-guard order (energyhub.scheduler.guard.hold_import): batteries
        charge less, electrolyzers draw less, heat or cold stores charged by an electric machine
        of their building take less and the machine makes that much less, batteries discharge
        (within power and state of charge), CHPs run higher (a stopped one at least at its
        minimum load), fuel cells run higher on what their node's hydrogen stores can give (the
        store discharging that much more), heat or cold stores discharge more and their
        building's heat pumps or chillers make that much less. The building's demand is still
        met: a store only takes over from a machine."""
        limited: dict[Key, tuple[Node, Asset, float]] = {}
        limit = math.inf
        for node in park.subtree():
            for asset in node.site.assets:
                order = self.book.active_order((node.id, asset.id), now_s)
                if order is not None and math.isfinite(order[1]):
                    limited[(node.id, asset.id)] = (node, asset, order[0])
                    limit = min(limit, order[1])
        if not limited:
            return
        excess = float(park.grid_kw[t]) - limit
        if excess <= 1e-6:
            return
        held: dict[Key, float] = {}

        def restep(key: Key, node: Node, store: Asset, request_kw: float) -> float:
            return self._restep(key, node, store, request_kw, t)

        batteries = [(k, n, a) for k, (n, a, _) in limited.items() if isinstance(a, Battery)]
        for key, node, battery in batteries:  # 1. charging cut
            power = float(node.flows[battery.id].readings["electricity"][t])
            if excess > 0 and power > 0:
                excess -= power - restep(key, node, battery, max(power - excess, 0.0))
        for key, (_, asset, p_kw) in limited.items():  # 2. electrolysis cut
            if excess > 0 and isinstance(asset, Electrolyzer):
                drawn = min(max(p_kw, 0.0), asset.power_max_kw)
                held[key] = max(drawn - excess, 0.0)
                excess -= drawn - held[key]
        for key, (node, store, _) in limited.items():  # 3. stores charged by their machines
            if not isinstance(store, ThermalStorage):
                continue
            for mkey, (mnode, machine, m_kw) in limited.items():
                charging = float(node.flows[store.id].readings[store.carrier][t])
                makes = "heat" if isinstance(machine, HeatPump) else "cooling"
                if (
                    excess <= 0 or charging <= 0 or mnode is not node
                    or not isinstance(machine, HeatPump | ElectricChiller)
                    or makes != store.carrier
                ):  # fmt: skip
                    continue
                cop = machine_cop(machine, float(self.plant.weather.outdoor_c[t]))
                making = held.get(mkey, m_kw)
                less = min(charging, max(making, 0.0), excess * cop)
                if less <= 0:
                    continue
                taken = charging - restep(key, node, store, charging - less)
                held[mkey] = making - taken
                excess -= taken / cop
        for key, node, battery in batteries:  # 4. discharge
            power = float(node.flows[battery.id].readings["electricity"][t])
            if excess > 0:
                excess -= power - restep(key, node, battery, power - excess)
        for key, (node, chp, _) in limited.items():  # 5. CHPs up to full electric output
            if excess > 0 and isinstance(chp, CHP):
                running = float(node.flows[chp.id].readings["electricity"][t])
                full_kw = chp.fuel_max_kw * chp.eta_el
                held[key] = min(full_kw, max(running + excess, full_kw * chp.min_load))
                excess -= max(held[key] - running, 0.0)
        for key, (node, cell, _) in limited.items():  # 6. fuel cells, on their node's hydrogen
            if not isinstance(cell, FuelCell):
                continue
            for skey, (snode, store, _) in limited.items():
                if excess <= 0 or snode is not node or not isinstance(store, HydrogenStore):
                    continue
                running = held.get(key, float(node.flows[cell.id].readings["electricity"][t]))
                room_kw = cell.power_max_kw - running
                if room_kw <= 1e-9:
                    continue
                power = float(node.flows[store.id].readings["hydrogen"][t])
                wanted = min(excess, room_kw) / cell.eta_el
                given = power - restep(skey, node, store, power - wanted)
                held[key] = running + given * cell.eta_el
                excess -= given * cell.eta_el
        for key, (node, store, _) in limited.items():  # 7. stores discharge for their machines
            if not isinstance(store, ThermalStorage):
                continue
            for mkey, (mnode, machine, m_kw) in limited.items():
                makes = "heat" if isinstance(machine, HeatPump) else "cooling"
                if (
                    excess <= 0 or mnode is not node
                    or not isinstance(machine, HeatPump | ElectricChiller)
                    or makes != store.carrier
                ):  # fmt: skip
                    continue
                cop = machine_cop(machine, float(self.plant.weather.outdoor_c[t]))
                making = float(node.flows[machine.id].readings[makes][t]) - (
                    m_kw - held.get(mkey, m_kw)
                )  # what it makes now, less what step 3 took off it
                power = float(node.flows[store.id].readings[store.carrier][t])
                wanted = min(max(making, 0.0), excess * cop)
                if wanted <= 1e-9:
                    continue
                given = power - restep(key, node, store, power - wanted)
                held[mkey] = making - given
                excess -= given / cop
        self.events["import held steps"] += 1
        self._refresh(park, t, now_s, held)

    def _readings(self, t: int) -> StepReadings:
        rates = self.plant.values[:, t]
        idx = self._counter_idx
        totals = np.where(self._resets[:, t], 0.0, self._totals)
        totals = totals + np.maximum(rates[idx], 0.0) * self.plant.grid.step_h
        self.events["counter rollovers"] += int((totals >= self._rollover).sum())
        self.events["counter resets"] += int(self._resets[:, t].sum())
        self._totals = np.mod(totals, self._rollover)
        values = rates.copy()
        all_totals = np.full(len(rates), np.nan)
        all_totals[idx] = self._totals
        values[self._register_idx] = self._totals[self._published_registers]
        for decimals in np.unique(self._decimals).tolist():
            mask = self._decimals == decimals
            values[mask] = np.round(values[mask], decimals)
        listed = values.tolist()
        for i in self._integer:
            listed[i] = int(listed[i])
        return StepReadings(t, listed, rates.tolist(), all_totals.tolist())
