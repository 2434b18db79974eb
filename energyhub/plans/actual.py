"""Plan vs actual per step: planned and metered grid import, PV output and battery SOC.

A simple reading: the site's metered electricity (its top-level meters, as the load query sums
them) stands for its import; PV is its `pv` meters; a battery's SOC is the mean of its `soc_pct`
meter over the step, against the plan's SOC at the step's end.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.plans.store import PlanRecord
from energyhub.sites import PV, Battery, Building, Park, SiteFile
from energyhub.store.db import Backend
from energyhub.store.queries import meter_series, site_series

Assets = list[PV | Battery]


def _assets(site: SiteFile, site_id: str) -> Assets:
    """PV and batteries the plan of `site_id` dispatches (a park's include its buildings')."""
    owners: list[Park | Building] = []
    park = site.find_park(site_id)
    if park is not None:
        owners = [park, *park.buildings]
    elif (found := site.find_building(site_id)) is not None:
        owners = [found[1]]
    return [a for owner in owners for a in owner.assets if isinstance(a, PV | Battery)]


def _planned(schedule: pd.DataFrame, site_id: str, assets: Assets) -> pd.DataFrame:
    out = pd.DataFrame(index=schedule.index)
    out["planned_import_kw"] = schedule.get(f"{site_id}:import_kw", np.nan)
    pv = [f"{a.id}:output_kw" for a in assets if isinstance(a, PV)]
    present = [c for c in pv if c in schedule.columns]
    out["planned_pv_kw"] = schedule[present].sum(axis=1) if present else np.nan
    for battery in (a for a in assets if isinstance(a, Battery)):
        soc = schedule.get(f"{battery.id}:soc_kwh", np.nan)
        out[f"planned_soc_pct:{battery.id}"] = soc / battery.energy_kwh * 100
    return out


async def _actual_soc(
    conn: AsyncConnection,
    backend: Backend,
    batteries: list[str],
    window: tuple[pd.Timestamp, pd.Timestamp],
    step: timedelta,
) -> pd.DataFrame:
    cur = await conn.execute(
        "SELECT id, asset_id FROM meters WHERE active AND quantity = 'soc_pct' "
        "AND asset_id = ANY(%s)",
        (batteries,),
    )
    owners = {int(meter_id): asset for meter_id, asset in await cur.fetchall()}
    start, end = (t.to_pydatetime() for t in window)
    series = await meter_series(conn, backend, list(owners), start, end, step)
    series["column"] = "actual_soc_pct:" + series["meter_id"].map(owners).astype(str)
    return series.pivot_table(index="bucket", columns="column", values="value", aggfunc="mean")


async def plan_vs_actual(
    conn: AsyncConnection,
    backend: Backend,
    record: PlanRecord,
    schedule: pd.DataFrame,
    site: SiteFile,
) -> pd.DataFrame:
    """One row per plan step (UTC): planned_/actual_ import_kw, pv_kw and soc_pct:<battery>."""
    assets = _assets(site, record.site_id)
    step = timedelta(seconds=record.step_s)
    planned = _planned(schedule, record.site_id, assets)
    window = (pd.Timestamp(record.horizon_start), pd.Timestamp(record.horizon_end))
    start, end = (t.to_pydatetime() for t in window)
    load = await site_series(conn, backend, record.site_id, start, end, step)
    metered = load.pivot_table(index="bucket", columns="carrier", values="power_kw")
    actual = pd.DataFrame(index=planned.index)
    for carrier, column in (("electricity", "actual_import_kw"), ("pv", "actual_pv_kw")):
        source = metered[carrier] if carrier in metered.columns else pd.Series(dtype="float64")
        actual[column] = source.reindex(planned.index)
    batteries = [a.id for a in assets if isinstance(a, Battery)]
    soc = await _actual_soc(conn, backend, batteries, window, step)
    for battery in batteries:
        column = f"actual_soc_pct:{battery}"
        source = soc[column] if column in soc.columns else pd.Series(dtype="float64")
        actual[column] = source.reindex(planned.index)
    return planned.join(actual)
