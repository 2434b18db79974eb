"""What perfect foresight dispatched on one park-day of a closed-loop run against what was run.

bench/closed_loop.py keeps its database (ENERGYHUB_DB_URL). This re-runs that day's realized
figures (energyhub.plans.days.savings_by_day, perfect foresight included) and prints, per hour
(local), perfect foresight's schedule beside the meters and the setpoints the scheduler sent:
import, the storage SOCs (kWh), and per asset that takes setpoints its metered power where it
has a meter, else the setpoint (p_kw as energyhub.scheduler.setpoints defines it). Then the
day's energy cost of each side's import by tariff period, and its totals.

    ENERGYHUB_DB_URL=postgresql://…/<db> .venv/bin/python bench/loop_foresight.py --park lingang
        --day 2026-12-04 [--site FILE] [--hourly]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.config import load_settings
from energyhub.optimize import Plan
from energyhub.optimize.scope import resolve_scope
from energyhub.optimize.tariffs import PERIODS, TARIFFS
from energyhub.plans import realized
from energyhub.plans.days import savings_by_day
from energyhub.plans.metered import actual_frame
from energyhub.scheduler.setpoints import SETPOINT_OF
from energyhub.scheduler.telemetry import stored_meters
from energyhub.sites import SiteFile, load_site
from energyhub.store.db import Backend, connect, installed_backend
from energyhub.store.queries import meter_series

SITE = Path(__file__).resolve().parents[1] / "examples" / "expo-park.yaml"
STEP = pd.Timedelta(minutes=15)


def _capturing() -> list[tuple[pd.DataFrame, Plan]]:
    """Wrap the planner perfect foresight calls so that each solve's inputs and plan are kept."""
    solves: list[tuple[pd.DataFrame, Plan]] = []
    solve = getattr(realized, "plan")  # noqa: B009 - the name perfect foresight calls

    def kept(*args: Any, **kwargs: Any) -> Plan:
        result: Plan = solve(*args, **kwargs)
        solves.append((args[1], result))
        return result

    setattr(realized, "plan", kept)  # noqa: B010
    return solves


async def _setpoints(conn: AsyncConnection, park: str, index: pd.DatetimeIndex) -> pd.DataFrame:
    cur = await conn.execute(
        "SELECT s.asset_id, s.ts, s.p_kw FROM setpoints AS s JOIN plans AS p ON p.id = s.plan_id "
        "WHERE p.site_id = %s AND s.ts >= %s AND s.ts < %s",
        (park, index[0].to_pydatetime(), (index[-1] + STEP).to_pydatetime()),
    )
    rows = pd.DataFrame(await cur.fetchall(), columns=["asset", "ts", "p_kw"])
    if rows.empty:
        return pd.DataFrame(index=index)
    rows["ts"] = pd.to_datetime(rows["ts"], utc=True)
    return rows.pivot_table(index="ts", columns="asset", values="p_kw").reindex(index)


async def _asset_meters(
    conn: AsyncConnection, backend: Backend, site: SiteFile, park: str, index: pd.DatetimeIndex
) -> pd.DataFrame:
    scope = resolve_scope(site, "park", park)
    meters = await stored_meters(conn, sorted({n.id for n in scope.nodes}))
    power = {m.id: m.asset_id for m in meters if m.asset_id and m.quantity == "power_kw"}
    if not power:
        return pd.DataFrame(index=index)
    end = (index[-1] + STEP).to_pydatetime()
    read = await meter_series(conn, backend, sorted(power), index[0].to_pydatetime(), end, STEP)
    read["asset"] = read["meter_id"].map(power)
    return read.pivot_table(index="bucket", columns="asset", values="value").reindex(index)


def _foresight_columns(schedule: pd.DataFrame, site: SiteFile, park: str) -> pd.DataFrame:
    scope = resolve_scope(site, "park", park)
    out = pd.DataFrame(index=schedule.index)
    out["import"] = schedule[f"{scope.grid_node}:import_kw"] - schedule.get(
        f"{scope.grid_node}:export_kw", 0.0
    )
    for _, asset in scope.assets():
        if f"{asset.id}:soc_kwh" in schedule:
            out[f"{asset.id} soc"] = schedule[f"{asset.id}:soc_kwh"]
        how = SETPOINT_OF.get(type(asset))
        if how is not None:
            out[asset.id] = schedule.apply(lambda row, a=asset.id, h=how: h(a, row), axis=1)
        if f"{asset.id}:output_kw" in schedule:
            out[asset.id] = schedule[f"{asset.id}:output_kw"]
    return out


async def compare(park: str, site: SiteFile, day: str, hourly: bool) -> None:
    solves = _capturing()
    start = pd.Timestamp(day, tz=site.tz)
    window = (start.to_pydatetime(), (start + pd.Timedelta(days=1)).to_pydatetime())
    scope = resolve_scope(site, "park", park)
    async with connect(str(load_settings().db_url)) as conn:
        backend = await installed_backend(conn)
        days = await savings_by_day(conn, backend, park, window, site=site)
        if not solves:
            raise SystemExit(f"no perfect-foresight solve of {park} on {day}")
        frames = [s[1].schedule for s in solves]
        schedule = pd.concat(frames).sort_index()
        schedule.index = pd.DatetimeIndex(schedule.index).tz_convert("UTC")
        index = pd.DatetimeIndex(schedule.index)
        foresight = _foresight_columns(schedule, site, park)
        actual = await actual_frame(conn, backend, scope, index)
        metered = pd.DataFrame(index=index)
        metered["import"] = actual["import_kw"]
        for column in actual.columns:
            if str(column).startswith("soc_kwh:"):
                metered[f"{str(column).removeprefix('soc_kwh:')} soc"] = actual[column]
        sent = await _setpoints(conn, park, index)
        read = await _asset_meters(conn, backend, site, park, index)
        for asset in foresight.columns:
            if asset in read.columns:
                metered[asset] = read[asset]
            elif asset in sent.columns and asset not in metered:
                metered[asset] = sent[asset]
    inputs = pd.concat([s[0] for s in solves]).sort_index()
    prices = inputs["import_price_cny_per_kwh"] if "import_price_cny_per_kwh" in inputs else None
    tariff = TARIFFS[scope.grid.tariff if scope.grid is not None else "shanghai-two-part"]
    local = index.tz_convert(site.tz)
    period = pd.Series(np.array(PERIODS)[tariff.periods(local)], index=index)
    price = pd.Series(tariff.prices(local, None), index=index) if prices is None else prices
    both = pd.concat({"foresight": foresight, "metered": metered}, axis=1)
    both = both.swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)
    both.index = local
    pd.set_option("display.width", 300, "display.max_columns", 80, "display.max_rows", 500)
    shown = both.resample("1h").mean() if hourly else both
    print(f"{park} {day}: perfect foresight (kW; SOC kWh at each step's end) against the meters "
          "(power meters; setpoints where an asset has none)")  # fmt: skip
    print(shown.round(0).to_string())
    hours = STEP.total_seconds() / 3600
    print("\nimport energy cost by tariff period (CNY; import − export at the import price)")
    for side, frame in (("foresight", foresight), ("metered", metered)):
        cost = (frame["import"] * price.to_numpy() * hours).groupby(period.to_numpy()).sum()
        kwh = (frame["import"] * hours).groupby(period.to_numpy()).sum()
        print(
            f"  {side:9}", "  ".join(f"{p} {cost[p]:,.0f} ({kwh[p]:,.0f} kWh)" for p in cost.index)
        )
    for found in days:
        if found.realized is not None:
            for name, figures in found.realized.breakdown.items():
                print(f"  {name:18} {figures}")
            print("  notes:", *found.realized.notes, sep="\n    ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--park", required=True)
    parser.add_argument("--day", required=True, help="Local day, e.g. 2026-12-04.")
    parser.add_argument("--site", type=Path, default=SITE)
    parser.add_argument("--hourly", action="store_true", help="Hourly means, not 15-min steps.")
    args = parser.parse_args()
    asyncio.run(compare(args.park, load_site(args.site), args.day, args.hourly))


if __name__ == "__main__":
    main()
