"""Stores without SOC readings, tracked through the setpoints sent to them.

One estimate for the valuation of what the meters left in a store (energyhub.plans.realized) and
for the SOC a re-plan starts it from (energyhub.scheduler.state): from the store's soc_initial at
its first setpoint, each setpoint in turn as the planner models the store — the standing loss,
then charge × η_charge or discharge ÷ η_discharge — held inside its SOC window step by step (a
device does not follow a setpoint past its limits). Steps without a setpoint count as idle: what
a device did on its own rule there is not seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.optimize.assets import keep_per_step
from energyhub.plans.store import storage_setpoints
from energyhub.sites import Battery, HydrogenStore, ThermalStorage

Storage = Battery | ThermalStorage | HydrogenStore

SETPOINTS_SINCE = pd.Timestamp("1970-01-01", tz="UTC")
"""A store's setpoints are tracked from its first one (SetpointTrack)."""


def tracked_soc_kwh(
    store: Storage, p_kw: np.ndarray, hours: float, level_kwh: float | None = None
) -> np.ndarray:
    """The energy in a store without SOC readings after each of its setpoints in turn, from
    `level_kwh` (default its soc_initial): what the standing loss keeps of it, plus charge ×
    η_charge or minus discharge ÷ η_discharge, held inside its SOC window step by step."""
    low, high = store.soc_min * store.energy_kwh, store.soc_max * store.energy_kwh
    keep = keep_per_step(store.loss_per_h if isinstance(store, ThermalStorage) else 0.0, hours)
    gain = np.where(p_kw > 0, p_kw * store.eta_charge, p_kw / store.eta_discharge) * hours
    level = store.soc_initial * store.energy_kwh if level_kwh is None else level_kwh
    out = np.empty(len(gain))
    for i, kwh in enumerate(gain):
        level = min(max(keep * level + kwh, low), high)
        out[i] = level
    return out


@dataclass
class SetpointTrack:
    """Stores without SOC readings tracked through every setpoint since their first
    (tracked_soc_kwh), read forward: per store, the time read up to and the energy then. Spans
    asked for in time order (the days of a savings report) read each setpoint once; a span
    before what was read starts again from the first setpoint."""

    until: dict[str, pd.Timestamp] = field(default_factory=dict)
    level_kwh: dict[str, float] = field(default_factory=dict)

    async def advance(
        self, conn: AsyncConnection, stores: Sequence[Storage], to: pd.Timestamp, hours: float
    ) -> dict[str, int]:
        """Track `stores` through their setpoints up to `to` (exclusive); how many each had."""
        for store in stores:
            if self.until.get(store.id, SETPOINTS_SINCE) > to:
                del self.until[store.id]
            if store.id not in self.until:
                self.until[store.id] = SETPOINTS_SINCE
                self.level_kwh[store.id] = store.soc_initial * store.energy_kwh
        first = min((self.until[s.id] for s in stores), default=to)
        sent = await storage_setpoints(
            conn, [s.id for s in stores], first.to_pydatetime(), to.to_pydatetime()
        )
        ts = pd.DatetimeIndex(pd.to_datetime(sent["ts"], utc=True))
        counts = {}
        for store in stores:
            mine = (sent["asset_id"] == store.id).to_numpy() & (ts >= self.until[store.id])
            p_kw = sent.loc[mine, "p_kw"].to_numpy(dtype=float)
            if p_kw.size:
                levels = tracked_soc_kwh(store, p_kw, hours, self.level_kwh[store.id])
                self.level_kwh[store.id] = float(levels[-1])
            self.until[store.id] = to
            counts[store.id] = int(p_kw.size)
        return counts
