"""Plan vs actual, the series: planned and metered import, PV, gas and storage SOC per step.

- Actual import is the site's metered electricity (its top-level meters, as the load query sums
  them), net of export; PV is its `pv` meters; a storage SOC is its `soc_pct` meter's last reading
  in the step (the SOC at the step's end, as the plan's `soc_kwh` is).
- The storage-idle import is what the meters would have shown with storage idle: metered import
  minus the batteries' metered charging (their power meter, else their SOC changes), no lower
  than the export limit allows.
- Coverage: per step and compared carrier (electricity, PV, gas), the meter-seconds the readings
  cover (`covered_s:<carrier>`) and the meters that should cover them (`meters:<carrier>`), as
  docs/meter-data.md defines them; a carrier's share of a span is covered_s ÷ (meters × seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.optimize.scope import Scope
from energyhub.scheduler.telemetry import LOAD_QUANTITIES, StoredMeter, stored_meters
from energyhub.sites import CHP, PV, Battery, FuelCell, HydrogenStore, ThermalStorage, Wind
from energyhub.store.db import Backend
from energyhub.store.queries import (
    load_member_windows,
    meter_series,
    meters_per_step,
    retired_connections,
    site_series,
)

Storage = Battery | ThermalStorage | HydrogenStore

COMPARED_CARRIERS = ("electricity", "pv", "gas")
"""The carriers plan vs actual reads from the meters (net import, PV, gas), whose coverage it
reports."""


def storages(scope: Scope) -> list[Storage]:
    return [a for _, a in scope.assets() if isinstance(a, Battery | ThermalStorage | HydrogenStore)]


def planned_frame(schedule: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    """Planned net import, PV output, gas and storage SOC per step, from a schedule."""
    out = pd.DataFrame(index=schedule.index)
    node = scope.grid_node
    export = schedule.get(f"{node}:export_kw", 0.0)
    out["import_kw"] = schedule.get(f"{node}:import_kw", np.nan) - export
    pv = [f"{a.id}:output_kw" for _, a in scope.assets() if isinstance(a, PV)]
    out["pv_kw"] = schedule[[c for c in pv if c in schedule]].sum(axis=1) if pv else np.nan
    gas = [c for c in (f"{n.id}:gas_kw" for n in scope.nodes) if c in schedule]
    out["gas_kw"] = schedule[gas].sum(axis=1) if gas else 0.0
    for asset in storages(scope):
        out[f"soc_kwh:{asset.id}"] = schedule.get(f"{asset.id}:soc_kwh", np.nan)
    return out


async def _soc_at_step_end(
    conn: AsyncConnection, meters: dict[int, Storage], index: pd.DatetimeIndex, step: pd.Timedelta
) -> pd.DataFrame:
    """Each storage's last SOC reading in each step, in kWh."""
    out = pd.DataFrame(index=index)
    if not meters:
        return out
    cur = await conn.execute(
        "SELECT meter_id, ts, value FROM readings WHERE meter_id = ANY(%s) AND ts >= %s "
        "AND ts < %s ORDER BY ts",
        (list(meters), index[0].to_pydatetime(), (index[-1] + step).to_pydatetime()),
    )
    raw = pd.DataFrame(await cur.fetchall(), columns=["meter_id", "ts", "value"])
    raw = raw.astype({"meter_id": "int64", "value": "float64"})
    since_ns = pd.to_datetime(raw["ts"], utc=True).dt.as_unit("ns").astype("int64") - index[0].value
    # the step each reading falls in, on the plan's own grid (its steps may start at :30 UTC)
    raw["ts"] = pd.to_datetime(index[0].value + since_ns - since_ns % step.value, utc=True)
    for meter_id, asset in meters.items():
        rows = raw[raw["meter_id"] == meter_id].groupby("ts")["value"].last()
        out[f"soc_kwh:{asset.id}"] = rows.reindex(index) / 100.0 * asset.energy_kwh
    return out


def _charge_from_soc(soc_kwh: pd.Series, asset: Storage, step_h: float) -> pd.Series:
    delta = soc_kwh.diff() / step_h
    return delta.where(delta <= 0, delta / asset.eta_charge).where(
        delta > 0, delta * asset.eta_discharge
    )


async def actual_frame(
    conn: AsyncConnection, backend: Backend, scope: Scope, index: pd.DatetimeIndex
) -> pd.DataFrame:
    """Metered net import, PV, gas, storage SOC and battery charging per step (NaN: no data)."""
    step = pd.Timedelta(index[1] - index[0])
    start, end = index[0].to_pydatetime(), (index[-1] + step).to_pydatetime()
    load = await site_series(conn, backend, scope.id, start, end, step.to_pytimedelta())
    wide = load.pivot_table(index="bucket", columns="carrier", values="power_kw").reindex(index)
    out = pd.DataFrame(index=index)
    for carrier, column in (("electricity", "import_kw"), ("pv", "pv_kw"), ("gas", "gas_kw")):
        out[column] = wide[carrier] if carrier in wide.columns else np.nan
    covered = load.pivot_table(index="bucket", columns="carrier", values="covered_s", aggfunc="sum")
    windows = await load_member_windows(conn, scope.id)
    metered_carriers = {w.carrier for w in windows}
    for carrier in COMPARED_CARRIERS:
        if carrier in metered_carriers:
            found = covered[carrier] if carrier in covered.columns else pd.Series(dtype="float64")
            out[f"covered_s:{carrier}"] = found.reindex(index).fillna(0.0).astype("float64")
            out[f"meters:{carrier}"] = meters_per_step(windows, carrier, index)
    meters = await stored_meters(conn, sorted({n.id for n in scope.nodes}))
    stores = {a.id: a for a in storages(scope)}
    soc_meters = {
        m.id: stores[m.asset_id] for m in meters if m.quantity == "soc_pct" and m.asset_id in stores
    }
    extended = index.insert(0, index[0] - step)  # the SOC before the first step, for changes
    soc = await _soc_at_step_end(conn, soc_meters, pd.DatetimeIndex(extended), step)
    power = {
        m.id: m.asset_id
        for m in meters
        if m.carrier == "electricity" and m.quantity == "power_kw" and m.asset_id in stores
    }
    metered = await meter_series(conn, backend, list(power), start, end, step.to_pytimedelta())
    metered["asset_id"] = metered["meter_id"].map(power)
    out["battery_kw"] = _battery_kw(stores, metered, soc, step).reindex(index)
    await _add_outside_mains(
        conn, backend, (scope, metered_carriers), meters, (out, index),
        (metered, soc),
    )  # fmt: skip
    return out.join(soc.reindex(index))


OUTPUTS = (PV, Wind, CHP, FuelCell)
"""Asset types whose electricity (or pv) meter reads what they supply to the bus."""


@dataclass(frozen=True, slots=True)
class OutsideMains:
    """What passes no main meter: a park's shared assets' meters (id → (column, sign)) and its
    batteries, when the park has no main meter of its own for the carrier."""

    signs: dict[int, tuple[str, float]]
    batteries: dict[str, Storage]

    def __bool__(self) -> bool:
        return bool(self.signs or self.batteries)


def outside_mains(scope: Scope, meters: list[StoredMeter]) -> OutsideMains:
    """The shared assets of the scope's park that no main meter sees (none at building level)."""
    head = scope.nodes[0]
    if head.is_building:
        return OutsideMains({}, {})
    own = {m.carrier for m in meters if m.site_id == head.id and m.measures_load}
    assets = {a.id: a for a in head.assets}
    signs: dict[int, tuple[str, float]] = {}
    for m in meters:
        asset = assets.get(m.asset_id or "")
        if asset is None or isinstance(asset, Battery) or m.quantity not in LOAD_QUANTITIES:
            continue  # a battery's charging is added from its power meter, else its SOC
        if m.carrier in ("electricity", "pv") and "electricity" not in own:
            signs[m.id] = ("import_kw", -1.0 if isinstance(asset, OUTPUTS) else 1.0)
        elif m.carrier == "gas" and "gas" not in own:
            signs[m.id] = ("gas_kw", 1.0)
    batteries: dict[str, Storage] = (
        {} if "electricity" in own else {a.id: a for a in head.assets if isinstance(a, Battery)}
    )
    return OutsideMains(signs, batteries)


async def _add_outside_mains(
    conn: AsyncConnection,
    backend: Backend,
    where: tuple[Scope, set[str]],
    meters: list[StoredMeter],
    frame: tuple[pd.DataFrame, pd.DatetimeIndex],
    storage: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """A park without a main meter of its own: the mains are its buildings', and what its shared
    assets draw, supply and burn passes none of them. Their own meters are added to the import
    (a generator's output taken off, a battery's charging added) and to the gas. `where` is the
    scope and the carriers its load meters have (a carrier without any starts from 0)."""
    (scope, loaded), (out, index) = where, frame
    outside = outside_mains(scope, meters)
    if not outside:
        return
    step = pd.Timedelta(index[1] - index[0])
    start, end = index[0].to_pydatetime(), (index[-1] + step).to_pydatetime()
    ids = list(outside.signs)
    series = await meter_series(conn, backend, ids, start, end, step.to_pytimedelta())
    columns = (("import_kw", "electricity"), ("gas_kw", "gas"))
    started = {column for column, carrier in columns if carrier in loaded}
    # before a retired connection meter's end, it saw them (and the load already holds it)
    until = (await retired_connections(conn)).get(scope.nodes[0].id)
    beside = index >= pd.Timestamp(until) if until is not None else np.full(len(index), True)
    for meter_id, (column, sign) in outside.signs.items():
        rows = series[series["meter_id"] == meter_id].set_index("bucket")["value"]
        seen = sign * rows.reindex(index).where(beside, 0.0)
        out[column] = (out[column] if column in started else 0.0) + seen
        started.add(column)
    if outside.batteries:
        metered, soc = storage
        charging = _battery_kw(outside.batteries, metered, soc, step).reindex(index)
        out["import_kw"] = out["import_kw"] + charging.where(beside, 0.0)


def _battery_kw(
    storages: dict[str, Storage], metered: pd.DataFrame, soc: pd.DataFrame, step: pd.Timedelta
) -> pd.Series:
    """Batteries' charging (+) per step: their power meter, else their SOC changes."""
    charging = pd.Series(0.0, index=soc.index)
    for asset in (a for a in storages.values() if isinstance(a, Battery)):
        own = metered[metered["asset_id"] == asset.id].set_index("bucket")["value"]
        if not own.empty:
            charging = charging + own.reindex(soc.index)
        elif f"soc_kwh:{asset.id}" in soc:
            hours = step.total_seconds() / 3600
            charging = charging + _charge_from_soc(soc[f"soc_kwh:{asset.id}"], asset, hours)
    return charging


def compared_frame(
    planned: pd.DataFrame, actual: pd.DataFrame, scope: Scope, controlled: set[pd.Timestamp]
) -> pd.DataFrame:
    """Per step: planned, actual and baseline import and gas, PV and SOC, `controlled`."""
    f = pd.DataFrame(index=planned.index)
    f["controlled"] = [ts in controlled for ts in planned.index]
    f["planned_import_kw"] = planned["import_kw"]
    f["actual_import_kw"] = actual["import_kw"]
    floor = -scope.grid.export_max_kw
    f["baseline_import_kw"] = (actual["import_kw"] - actual["battery_kw"]).clip(lower=floor)
    f["planned_gas_kw"] = planned["gas_kw"]
    f["actual_gas_kw"] = actual["gas_kw"]
    f["planned_pv_kw"] = planned["pv_kw"]
    f["actual_pv_kw"] = actual["pv_kw"]
    for asset in storages(scope):
        column = f"soc_kwh:{asset.id}"
        f[f"planned_{column}"] = planned[column]
        f[f"actual_{column}"] = actual[column] if column in actual else np.nan
    for column in actual.columns:
        if str(column).startswith(("covered_s:", "meters:")):
            f[column] = actual[column]
    return f


async def soc_fractions(
    conn: AsyncConnection, scope: Scope, first: pd.Timestamp, step: pd.Timedelta
) -> dict[str, float]:
    """Each metered storage's SOC fraction at the end of the step before `first` (within its
    SOC window), for a plan re-solved from there."""
    meters = await stored_meters(conn, sorted({n.id for n in scope.nodes}))
    stores = {a.id: a for a in storages(scope)}
    soc_meters = {
        m.id: stores[m.asset_id] for m in meters if m.quantity == "soc_pct" and m.asset_id in stores
    }
    soc = await _soc_at_step_end(conn, soc_meters, pd.DatetimeIndex([first - step]), step)
    out = {}
    for asset in soc_meters.values():
        kwh = float(soc[f"soc_kwh:{asset.id}"].iloc[0])
        if np.isfinite(kwh):
            out[asset.id] = min(max(kwh / asset.energy_kwh, asset.soc_min), asset.soc_max)
    return out
