"""What the pages chart: a site's load per carrier, and a plan's dispatch, SOC, import and cost.

Plan figures read the schedule's `<asset>:<variable>` columns with the site file's assets, so
each asset is drawn by the variable that says what it does (a heat pump's heat, a battery's
discharge − charge) and a storage's SOC in % of its capacity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from markupsafe import Markup

from energyhub.api.schemas.load import LoadPointPublic
from energyhub.api.ui.charts import Bar, Limit, Series, bar_chart, color, time_chart, xy_chart
from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.scope import Scope, resolve_scopes
from energyhub.plans.store import PlanRecord
from energyhub.sites import Asset, Battery, HydrogenStore, SiteFile, ThermalStorage

CARRIERS = (
    ("electricity_kw", "electricity", "#1f77b4"),
    ("heat_kw", "heat", "#d62728"),
    ("cooling_kw", "cooling", "#17becf"),
    ("gas_kw", "gas", "#ff7f0e"),
    ("pv_kw", "PV", "#2ca02c"),
)
DISPATCH = {
    "pv": ("output_kw", "output"),
    "wind": ("output_kw", "output"),
    "heat_pump": ("heat_kw", "heat"),
    "gas_boiler": ("heat_kw", "heat"),
    "electric_boiler": ("heat_kw", "heat"),
    "electric_chiller": ("cooling_kw", "cooling"),
    "absorption_chiller": ("cooling_kw", "cooling"),
    "chp": ("electricity_kw", "electricity"),
    "fuel_cell": ("electricity_kw", "electricity"),
    "electrolyzer": ("electricity_kw", "electricity use"),
    "flexible_load": ("power_kw", "power"),
}
"""Asset type → (schedule variable, legend label); storages are drawn as discharge − charge."""
GREY = "#999999"
Storage = Battery | ThermalStorage | HydrogenStore


def _value(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _grid(lo: datetime, hi: datetime, step: timedelta) -> list[datetime]:
    """Bucket starts in [lo, hi), on whole steps since the epoch (as the rollups are)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = epoch + step * math.ceil((lo - epoch) / step)
    return [first + step * k for k in range(math.ceil((hi - first) / step))]


def load_chart(
    points: Sequence[LoadPointPublic], lo: datetime, hi: datetime, step: timedelta, zone: ZoneInfo
) -> Markup:
    """Average kW per carrier per step over [lo, hi); steps without readings are gaps."""
    by_ts = {p.ts.astimezone(UTC): p for p in points}
    times = _grid(lo, hi, step)
    series = [
        Series(label, [_value(getattr(by_ts[t], column, None)) if t in by_ts else None
                       for t in times], colour)
        for column, label, colour in CARRIERS
        if any(getattr(p, column) is not None for p in points)
    ]  # fmt: skip
    local = [t.astimezone(zone) for t in times]
    title = "Load per carrier (kW, average per 15 min)"
    span = (lo.astimezone(zone), hi.astimezone(zone))
    return time_chart("load", title, local, series, unit="kW", span=span)


def _scopes(site: SiteFile, record: PlanRecord) -> tuple[Scope, ...]:
    """The plan's scopes in the current site file; none if the file no longer has the site."""
    try:
        return resolve_scopes(site, record.level, record.site_id)
    except PlanInputError:
        return ()


def _assets(scopes: Sequence[Scope]) -> list[Asset]:
    seen: dict[str, Asset] = {}
    for scope in scopes:
        for _, asset in scope.assets():
            seen.setdefault(asset.id, asset)
    return list(seen.values())


def _column(schedule: pd.DataFrame, name: str) -> pd.Series | None:
    return schedule[name] if name in schedule.columns else None


def chart_values(series: pd.Series) -> list[float | None]:
    """A series as chart values: NaN and infinities become gaps (None)."""
    return [_value(float(v)) for v in series]


def dispatch_series(schedule: pd.DataFrame, assets: Sequence[Asset]) -> list[Series]:
    """One line per asset the schedule dispatches: its main output, storages net discharge."""
    out: list[Series] = []
    for asset in assets:
        if isinstance(asset, Storage):
            charge = _column(schedule, f"{asset.id}:charge_kw")
            discharge = _column(schedule, f"{asset.id}:discharge_kw")
            if charge is None or discharge is None:
                continue
            values, label = chart_values(discharge - charge), "discharge − charge"
        else:
            variable, label = DISPATCH.get(asset.type, ("", ""))
            column = _column(schedule, f"{asset.id}:{variable}")
            if column is None:
                continue
            values = chart_values(column)
        out.append(Series(f"{asset.id} {label}", values, color(len(out)), dashed=len(out) >= 12))
    return out


def soc_series(schedule: pd.DataFrame, assets: Sequence[Asset]) -> list[Series]:
    """Each storage's planned state of charge at the end of each step, in % of its capacity."""
    out: list[Series] = []
    for asset in assets:
        column = _column(schedule, f"{asset.id}:soc_kwh")
        if isinstance(asset, Storage) and column is not None:
            out.append(
                Series(asset.id, chart_values(column / asset.energy_kwh * 100), color(len(out)))
            )
    return out


def import_series(
    schedule: pd.DataFrame, scopes: Sequence[Scope], actual: pd.Series | None
) -> tuple[list[Series], list[Limit]]:
    """Planned grid import (summed over the plan's grid connections), metered import if any,
    and the connections' summed import limit."""
    columns = [f"{s.grid_node}:import_kw" for s in scopes]
    present = [c for c in columns if c in schedule.columns]
    series: list[Series] = []
    if present:
        planned = schedule[present].sum(axis=1)
        name = f"planned import (peak {planned.max():,.0f} kW)"
        series.append(Series(name, chart_values(planned), color(0)))
    if actual is not None and actual.notna().any():
        values = chart_values(actual.reindex(schedule.index))
        series.append(Series("metered import", values, "#444444", dashed=True))
    limit = sum(s.grid.import_max_kw for s in scopes)
    return series, [Limit("import limit", limit)] if scopes else []


def plan_charts(
    record: PlanRecord,
    schedule: pd.DataFrame,
    site: SiteFile,
    zone: ZoneInfo,
    actual_import: pd.Series | None,
) -> dict[str, Markup]:
    """The plan page's charts by name: dispatch, soc, import, cost, co2."""
    scopes = _scopes(site, record)
    assets = _assets(scopes)
    times = [t.to_pydatetime() for t in pd.DatetimeIndex(schedule.index).tz_convert(zone)]
    step = timedelta(seconds=record.step_s)
    span = (times[0], times[-1] + step)
    imports, limits = import_series(schedule, scopes, actual_import)
    charts = {
        "dispatch": time_chart(
            "dispatch", "Dispatch by asset (kW)", times,
            dispatch_series(schedule, assets), unit="kW", step=step,
        ),
        "soc": time_chart(
            "soc", "State of charge of storage (% of capacity, end of step)",
            [t + step for t in times], soc_series(schedule, assets), unit="%", span=span,
        ),
        "import": time_chart(
            "import", "Grid import vs the connection limit (kW)", times, imports,
            unit="kW", step=step, limits=limits,
        ),
    }  # fmt: skip
    baseline_cost = record.baseline.get("cost_cny")
    if record.objective_cny is not None and baseline_cost is not None:
        bars = [
            Bar(
                "plan",
                record.objective_cny,
                "#d62728" if record.objective_cny > baseline_cost else "#1f77b4",
            ),
            Bar("baseline", baseline_cost, "#999"),
        ]
        charts["cost"] = bar_chart("cost", "Cost vs baseline (CNY)", bars, unit="CNY")
    baseline_co2 = record.baseline.get("co2_kg")
    if record.co2_kg is not None and baseline_co2 is not None:
        worse = record.co2_kg > baseline_co2
        bars = [
            Bar("plan", record.co2_kg, "#d62728" if worse else "#2ca02c"),
            Bar("baseline", baseline_co2, GREY),
        ]
        charts["co2"] = bar_chart("co2", "CO2 vs baseline (kg CO2)", bars, unit="kg CO2")
    return charts


def frontier_chart(record: PlanRecord) -> Markup | None:
    """The plan's cost–CO₂ frontier (CO₂ across, cost up), this plan's point marked."""
    points = record.solver.get("frontier") or []
    if len(points) < 2:
        return None
    return xy_chart(
        "frontier",
        "Cost–CO2 frontier: cost (CNY, without the carbon price) against CO2 (kg)",
        [(float(p["co2_kg"]), float(p["cost_cny"])) for p in points],
        labels=("CO2 kg", "cost CNY"),
        marked=record.solver.get("frontier_point", 0),
    )
