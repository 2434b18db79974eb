"""Plan vs actual: per step planned vs metered import, PV and storage SOC; cost and CO₂ realized
vs planned vs baseline; realized savings per plan and per day.

- Actual import is the site's metered electricity (its top-level meters, as the load query sums
  them), net of export; PV is its `pv` meters; a storage SOC is its `soc_pct` meter's last reading
  in the step (the SOC at the step's end, as the plan's `soc_kwh` is).
- The realized baseline is what the meters would have shown with storage idle (DESIGN §6: same
  loads, no storage shifting): metered import minus the batteries' metered charging (their power
  meter, else their SOC changes), no lower than the export limit allows.
- Costs use the plan's own prices: its tariff, or the price columns of the inputs it was solved
  with; energy and gas per step, the demand charge on the peak of the compared steps, the carbon
  price on the CO₂ of imported electricity and gas.
- A plan's figures cover the steps it controlled (a setpoint of it was sent); a plan that never
  controlled a step (a draft, or no controllable asset) is compared over every metered step.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.network import Prices
from energyhub.optimize.scope import Scope, resolve_scope
from energyhub.plans.operations import plan_inputs
from energyhub.plans.store import PlanRecord, get_plan, plan_steps
from energyhub.scheduler.telemetry import stored_meters
from energyhub.sites import PV, Battery, HydrogenStore, SiteFile, ThermalStorage
from energyhub.store.db import Backend
from energyhub.store.queries import meter_series, site_series

Storage = Battery | ThermalStorage | HydrogenStore


class SocStep(BaseModel):
    asset_id: str
    planned_kwh: float | None
    actual_kwh: float | None


class StepActual(BaseModel):
    """One step: planned, metered and baseline (storage idle) net import; PV; SOC at its end."""

    ts: datetime
    controlled: bool = Field(description="A setpoint of this plan was sent for the step.")
    import_price_cny_per_kwh: float
    planned_import_kw: float | None
    actual_import_kw: float | None
    baseline_import_kw: float | None
    planned_pv_kw: float | None
    actual_pv_kw: float | None
    soc: list[SocStep]


class Account(BaseModel):
    """Energy, cost and CO₂ over some steps."""

    import_kwh: float
    export_kwh: float
    peak_import_kw: float
    gas_kwh: float
    energy_cny: float
    demand_cny: float
    gas_cny: float
    carbon_cny: float
    total_cny: float
    co2_kg: float


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


class DaySavings(Comparison):
    day: date = Field(description="Local date of the site.")


class PlanVsActual(Comparison):
    """A plan against the meters: totals, per day, per step."""

    plan_id: int
    site_id: str
    level: str
    status: str
    step_s: int
    basis: str = Field(description="`controlled` steps, or `metered` ones if it controlled none.")
    planned_savings_cny: float | None = Field(
        description="The plan's own expectation over its whole horizon (baseline − objective)."
    )
    planned_savings_co2_kg: float | None
    days: list[DaySavings]
    step_details: list[StepActual]


# --- series ------------------------------------------------------------------------------------


def _storages(scope: Scope) -> list[Storage]:
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
    for asset in _storages(scope):
        out[f"soc_kwh:{asset.id}"] = schedule.get(f"{asset.id}:soc_kwh", np.nan)
    return out


async def _soc_at_step_end(
    conn: AsyncConnection, meters: dict[int, Storage], index: pd.DatetimeIndex, step: pd.Timedelta
) -> pd.DataFrame:
    """Each storage's last SOC reading in each step, in kWh."""
    out = pd.DataFrame(index=index)
    cur = await conn.execute(
        "SELECT meter_id, ts, value FROM readings WHERE meter_id = ANY(%s) AND ts >= %s "
        "AND ts < %s ORDER BY ts",
        (list(meters), index[0].to_pydatetime(), (index[-1] + step).to_pydatetime()),
    )
    raw = pd.DataFrame(await cur.fetchall(), columns=["meter_id", "ts", "value"])
    raw["ts"] = pd.to_datetime(raw["ts"], utc=True).dt.floor(step)
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
    meters = await stored_meters(conn, sorted({n.id for n in scope.nodes}))
    storages = {a.id: a for a in _storages(scope)}
    soc_meters = {
        m.id: storages[m.asset_id]
        for m in meters
        if m.quantity == "soc_pct" and m.asset_id in storages
    }
    extended = index.insert(0, index[0] - step)  # the SOC before the first step, for changes
    soc = await _soc_at_step_end(conn, soc_meters, pd.DatetimeIndex(extended), step)
    power = {
        m.id: m.asset_id
        for m in meters
        if m.carrier == "electricity" and m.quantity == "power_kw" and m.asset_id in storages
    }
    metered = await meter_series(conn, backend, list(power), start, end, step.to_pytimedelta())
    metered["asset_id"] = metered["meter_id"].map(power)
    out["battery_kw"] = _battery_kw(storages, metered, soc, step).reindex(index)
    return out.join(soc.reindex(index))


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


# --- prices and accounts -----------------------------------------------------------------------

PRICE_COLUMNS = ("import_price_cny_per_kwh", "export_price_cny_per_kwh", "grid_kg_per_kwh")
ACCOUNT_COLUMNS = (
    "planned_import_kw", "actual_import_kw", "baseline_import_kw", "planned_gas_kw",
    "actual_gas_kw", "p_import", "p_export", "grid_kg", "p_gas", "gas_kg", "p_carbon",
)  # fmt: skip


def _priced(frame: pd.DataFrame, scope: Scope, inputs: pd.DataFrame, site: SiteFile) -> None:
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


def _account(
    net_kw: pd.Series, gas_kw: pd.Series, f: pd.DataFrame, scope: Scope, dt_h: float
) -> Account:
    imported = net_kw.clip(lower=0.0).fillna(0.0)
    exported = (-net_kw).clip(lower=0.0).fillna(0.0)
    gas = gas_kw.fillna(0.0)
    co2 = float(((imported * f["grid_kg"] + gas * f["gas_kg"]) * dt_h).sum())
    peak = float(imported.max()) if len(imported) else 0.0
    energy = float(((imported * f["p_import"] - exported * f["p_export"]) * dt_h).sum())
    gas_cny = float((gas * f["p_gas"] * dt_h).sum())
    carbon = float((co2 * f["p_carbon"].iloc[0]) if len(f) else 0.0)
    demand = scope.grid.demand_charge_cny_per_kw * peak
    return Account(
        import_kwh=float(imported.sum() * dt_h),
        export_kwh=float(exported.sum() * dt_h),
        peak_import_kw=peak,
        gas_kwh=float(gas.sum() * dt_h),
        energy_cny=energy,
        demand_cny=demand,
        gas_cny=gas_cny,
        carbon_cny=carbon,
        total_cny=energy + demand + gas_cny + carbon,
        co2_kg=co2,
    )


def _compare(frame: pd.DataFrame, scope: Scope, dt_h: float) -> Comparison:
    planned = _account(frame["planned_import_kw"], frame["planned_gas_kw"], frame, scope, dt_h)
    actual = _account(frame["actual_import_kw"], frame["actual_gas_kw"], frame, scope, dt_h)
    baseline = _account(frame["baseline_import_kw"], frame["actual_gas_kw"], frame, scope, dt_h)
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


def _days(frame: pd.DataFrame, scope: Scope, site: SiteFile, dt_h: float) -> list[DaySavings]:
    local = pd.DatetimeIndex(frame.index).tz_convert(site.tz)
    return [
        DaySavings(day=day, **_compare(part, scope, dt_h).model_dump())
        for day, part in frame.groupby(np.asarray(local.date))
    ]


# --- plan vs actual ----------------------------------------------------------------------------


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
    for asset in _storages(scope):
        column = f"soc_kwh:{asset.id}"
        f[f"planned_{column}"] = planned[column]
        f[f"actual_{column}"] = actual[column] if column in actual else np.nan
    return f


async def _controlled(conn: AsyncConnection, plan_id: int) -> set[pd.Timestamp]:
    cur = await conn.execute("SELECT DISTINCT ts FROM setpoints WHERE plan_id = %s", (plan_id,))
    return {pd.Timestamp(row[0]).tz_convert("UTC") for row in await cur.fetchall()}


def _number(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if np.isfinite(number) else None


def _details(frame: pd.DataFrame, scope: Scope) -> list[StepActual]:
    steps = []
    for ts, row in zip(frame.index, frame.to_dict("records"), strict=True):
        soc = [
            SocStep(
                asset_id=a.id,
                planned_kwh=_number(row[f"planned_soc_kwh:{a.id}"]),
                actual_kwh=_number(row[f"actual_soc_kwh:{a.id}"]),
            )
            for a in _storages(scope)
        ]
        steps.append(
            StepActual(
                ts=pd.Timestamp(ts).to_pydatetime(),
                controlled=bool(row["controlled"]),
                import_price_cny_per_kwh=float(row["p_import"]),
                planned_import_kw=_number(row["planned_import_kw"]),
                actual_import_kw=_number(row["actual_import_kw"]),
                baseline_import_kw=_number(row["baseline_import_kw"]),
                planned_pv_kw=_number(row["planned_pv_kw"]),
                actual_pv_kw=_number(row["actual_pv_kw"]),
                soc=soc,
            )
        )
    return steps


async def _plan_frame(
    conn: AsyncConnection, backend: Backend, record: PlanRecord, scope: Scope, site: SiteFile
) -> pd.DataFrame:
    schedule = await plan_steps(conn, record.id)
    if len(schedule) < 2:
        return pd.DataFrame()
    index = pd.DatetimeIndex(schedule.index).tz_convert("UTC")
    schedule.index = index
    actual = await actual_frame(conn, backend, scope, index)
    frame = compared_frame(
        planned_frame(schedule, scope), actual, scope, await _controlled(conn, record.id)
    )
    _priced(frame, scope, await plan_inputs(conn, record.id), site)
    return frame


async def plan_vs_actual(
    conn: AsyncConnection, backend: Backend, plan_id: int, *, site: SiteFile
) -> PlanVsActual:
    """A stored plan against the stored readings (PlanNotFoundError if there is no such plan)."""
    record = await get_plan(conn, plan_id)
    scope = resolve_scope(site, record.level, record.site_id)
    frame = await _plan_frame(conn, backend, record, scope, site)
    dt_h = record.step_s / 3600
    metered = frame
    if not frame.empty:
        metered = frame[frame["actual_import_kw"].notna() & frame["baseline_import_kw"].notna()]
    basis = "controlled" if not metered.empty and metered["controlled"].any() else "metered"
    used = metered[metered["controlled"]] if basis == "controlled" else metered
    if used.empty:
        used = pd.DataFrame(columns=list(ACCOUNT_COLUMNS), dtype="float64")
    baseline = record.baseline.get("cost_cny")
    return PlanVsActual(
        plan_id=record.id,
        site_id=record.site_id,
        level=record.level,
        status=record.status,
        step_s=record.step_s,
        basis=basis,
        planned_savings_cny=None
        if baseline is None or record.objective_cny is None
        else float(baseline) - record.objective_cny,
        planned_savings_co2_kg=_savings_co2(record),
        days=_days(used, scope, site, dt_h) if len(used) else [],
        step_details=_details(frame, scope) if not frame.empty else [],
        **_compare(used, scope, dt_h).model_dump(),
    )


def _savings_co2(record: PlanRecord) -> float | None:
    baseline = record.baseline.get("co2_kg")
    return None if baseline is None or record.co2_kg is None else float(baseline) - record.co2_kg


async def savings_by_day(
    conn: AsyncConnection,
    backend: Backend,
    site_id: str,
    window: tuple[datetime, datetime],
    *,
    site: SiteFile,
) -> list[DaySavings]:
    """Realized savings per local day of the steps in `window` that the site's plans controlled."""
    cur = await conn.execute(
        "SELECT DISTINCT s.plan_id FROM setpoints AS s JOIN plans AS p ON p.id = s.plan_id "
        "WHERE p.site_id = %s AND s.ts >= %s AND s.ts < %s ORDER BY 1",
        (site_id, *window),
    )
    parts, scope, step_s = [], None, 0
    for (plan_id,) in await cur.fetchall():
        record = await get_plan(conn, int(plan_id))
        scope = resolve_scope(site, record.level, record.site_id)
        frame = await _plan_frame(conn, backend, record, scope, site)
        inside = (frame.index >= window[0]) & (frame.index < window[1])
        parts.append(frame[inside & frame["controlled"] & frame["actual_import_kw"].notna()])
        step_s = record.step_s
    if scope is None:
        return []
    steps = pd.concat(parts).sort_index()
    return _days(steps[steps["baseline_import_kw"].notna()], scope, site, step_s / 3600)
