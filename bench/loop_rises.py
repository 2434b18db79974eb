"""Where a closed-loop run's demand charge went: every step that raised a park's metered month peak.

bench/closed_loop.py keeps its database (ENERGYHUB_DB_URL). A park-day loses on the demand charge
when its metered import sets a month-to-date peak above what the counterfactual (the rules on the
metered demand) rises to. This lists, for one park over the run's controlled steps, each step
whose metered import rose above the month's peak so far: the planned and metered import, the
import limit the setpoints carried, the peak before, the metered CHP output, each battery's
metered SOC (kWh) and the counterfactual's import there. Then, per local midnight, the buildings'
electricity demand the plan running at that step forecast against the metered demand, the hour
before and the two after (a forecast that steps at the day boundary shows here).

    ENERGYHUB_DB_URL=postgresql://…/<db> .venv/bin/python bench/loop_rises.py --park expo
        [--site FILE] [--from 2026-12-01] [--to 2026-12-06]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.config import load_settings
from energyhub.optimize.baseline import rules_import_kw
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.network import Context
from energyhub.optimize.scope import Scope, resolve_scope
from energyhub.optimize.tariffs import month_peak_column
from energyhub.plans.counterfactual import metered_inputs
from energyhub.plans.metered import actual_frame
from energyhub.plans.operations import plan_inputs
from energyhub.plans.store import controlled_imports, import_limits
from energyhub.scheduler.telemetry import stored_meters
from energyhub.sites import CHP, SiteFile, load_site
from energyhub.store.db import Backend, connect, installed_backend
from energyhub.store.queries import meter_series

SITE = Path(__file__).resolve().parents[1] / "examples" / "expo-park.yaml"
STEP = pd.Timedelta(minutes=15)


async def _inputs(conn: AsyncConnection, plan_ids: list[int]) -> pd.DataFrame:
    frames = [await plan_inputs(conn, p) for p in plan_ids]
    joined = pd.concat(frames)
    return joined[~joined.index.duplicated(keep="last")].sort_index()


async def _counterfactual(
    conn: AsyncConnection, backend: Backend, site: SiteFile, scope: Scope,
    index: pd.DatetimeIndex, prices: pd.DataFrame,
) -> pd.Series:  # fmt: skip
    """The rules' import on the metered inputs (NaN where an input was not metered)."""
    found = await metered_inputs(conn, backend, site, scope, index, prices)
    frame = found.frame[found.frame.notna().all(axis=1)].copy()
    out = pd.Series(np.nan, index=index)
    if len(frame) < 2:
        return out
    frame.index = pd.DatetimeIndex(frame.index).tz_convert(site.tz)
    frame[month_peak_column(scope.grid_node)] = 0.0
    ctx = Context.bare(scope, read_inputs(frame, site.tz))
    out.loc[pd.DatetimeIndex(frame.index).tz_convert("UTC")] = rules_import_kw(ctx)[scope.grid_node]
    return out


async def _chp_kw(
    conn: AsyncConnection, backend: Backend, scope: Scope, index: pd.DatetimeIndex
) -> pd.Series:
    chps = {a.id for _, a in scope.assets() if isinstance(a, CHP)}
    meters = await stored_meters(conn, sorted({n.id for n in scope.nodes}))
    ids = [m.id for m in meters if m.asset_id in chps and m.carrier == "electricity"]
    if not ids:
        return pd.Series(np.nan, index=index)
    end = (index[-1] + STEP).to_pydatetime()
    read = await meter_series(conn, backend, ids, index[0].to_pydatetime(), end, STEP)
    return read.groupby("bucket")["value"].sum().reindex(index)


async def rises(park: str, site: SiteFile, first: str, last: str) -> None:
    scope = resolve_scope(site, "park", park)
    node = scope.grid_node
    month = pd.Timestamp(first, tz=site.tz).replace(day=1)
    end = pd.Timestamp(last, tz=site.tz) + pd.Timedelta(days=1)
    index = pd.date_range(month, end, freq=STEP, inclusive="left").tz_convert("UTC")
    async with connect(str(load_settings().db_url)) as conn:
        backend = await installed_backend(conn)
        window = (index[0].to_pydatetime(), (index[-1] + STEP).to_pydatetime())
        planned = await controlled_imports(conn, park, node, window)
        plan_ids = sorted({int(p) for p in planned["plan_id"]})
        if not plan_ids:
            raise SystemExit(f"no controlled steps of {park} in that window")
        actual = await actual_frame(conn, backend, scope, index)
        frame = pd.DataFrame(index=index)
        frame["metered"] = actual["import_kw"]
        frame["planned"] = planned["import_kw"].reindex(index)
        limits = pd.concat([await import_limits(conn, p) for p in plan_ids])
        nodes = {n.id for n in scope.nodes}
        held = limits[limits["site_id"].isin(nodes)].groupby("ts")["import_limit_kw"].min()
        frame["limit"] = held.reindex(index)
        frame["peak before"] = frame["metered"].cummax().shift(1)
        controlled = index[frame["planned"].notna().to_numpy()]
        span = pd.date_range(controlled[0], controlled[-1], freq=STEP)
        frame["counterfactual"] = (
            await _counterfactual(conn, backend, site, scope, span, await _inputs(conn, plan_ids))
        ).reindex(index)
        frame["CHP"] = await _chp_kw(conn, backend, scope, index)
        for column in actual.columns:
            if str(column).startswith("soc_kwh:"):
                frame[str(column).removeprefix("soc_kwh:")] = actual[column]
        up = frame[(frame["metered"] > frame["peak before"]) & frame["planned"].notna()]
        up = up[up.index >= pd.Timestamp(first, tz=site.tz)]
        shown = up.copy()
        shown.index = pd.DatetimeIndex(shown.index).tz_convert(site.tz)
        pd.set_option("display.width", 250, "display.max_columns", 40, "display.max_rows", 500)
        print(f"{park}: steps that raised the metered month peak (kW; storage SOC in kWh)")
        print(shown.round(0).to_string())
        print(f"\n{park}: buildings' electricity demand around each local midnight (kW)")
        for day in pd.date_range(first, last):
            await _midnight(conn, backend, site, scope, planned, pd.Timestamp(day, tz=site.tz))


async def _midnight(
    conn: AsyncConnection, backend: Backend, site: SiteFile, scope: Scope,
    planned: pd.DataFrame, midnight: pd.Timestamp,
) -> None:  # fmt: skip
    """The forecast of the plan running at `midnight` against the metered demand around it."""
    index = pd.date_range(midnight - pd.Timedelta(hours=1), midnight + pd.Timedelta(hours=2),
                          freq=STEP, inclusive="left").tz_convert("UTC")  # fmt: skip
    running = planned["plan_id"].reindex(index).dropna()
    if running.empty:
        return
    inputs = await plan_inputs(conn, int(running.iloc[0]))
    metered = (await metered_inputs(conn, backend, site, scope, index, inputs)).frame
    demand = [c for c in inputs.columns if str(c).endswith(":electricity_kw") and c in metered]
    forecast = inputs[demand].reindex(index).sum(axis=1)
    error = metered[demand].sum(axis=1) - forecast
    before, after = index < midnight, index >= midnight
    print(
        f"{midnight:%Y-%m-%d %a} (plan {int(running.iloc[0])}): forecast {forecast.iloc[3]:,.0f} "
        f"at 23:45 → {forecast.iloc[4]:,.0f} at 00:00; metered − forecast {error[before].mean():+,.0f}"
        f" the hour before, {error[after].mean():+,.0f} the two after"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--park", required=True)
    parser.add_argument("--site", type=Path, default=SITE)
    parser.add_argument("--from", dest="first", default="2026-12-01", help="First local day.")
    parser.add_argument("--to", dest="last", default="2026-12-06", help="Last local day.")
    args = parser.parse_args()
    asyncio.run(rises(args.park, load_site(args.site), args.first, args.last))


if __name__ == "__main__":
    main()
