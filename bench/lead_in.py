"""Benchmark: what a savings query pays for the month's lead-in.

Each side's billed demand peak runs from the local month's start, so `savings_by_day` over a
window late in a month first runs the counterfactual over the month's earlier days (the lead-in:
energyhub.plans.days, `_carried`) only to carry each side's peak into the window. This times,
for every local day of a database a closed loop kept (`bench/closed_loop.py`, ENERGYHUB_DB_URL),
a one-day query of each park with the lead-in and the same query without it (`lead_in=False`),
and reports the ratio: what the days of the month before it cost. Perfect foresight is off (as on
the site page); `--foresight` turns it on.

    flock /tmp/energyhub-bench.lock .venv/bin/python bench/lead_in.py [--site FILE]
        [--repeat 3] [--foresight]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import datetime

import pandas as pd
from psycopg import AsyncConnection
from rich.console import Console
from rich.table import Table

from energyhub.config import load_settings
from energyhub.plans.days import savings_by_day
from energyhub.sites import SiteFile, load_site
from energyhub.store.db import Backend, connect, installed_backend


async def _timed(
    conn: AsyncConnection,
    backend: Backend,
    park: str,
    window: tuple[datetime, datetime],
    how: tuple[SiteFile, bool, bool],
) -> float:
    """Seconds of one query; `how`: the site, perfect foresight, the lead-in."""
    site, foresight, lead_in = how
    started = time.perf_counter()
    await savings_by_day(
        conn, backend, park, window, site=site, foresight=foresight, lead_in=lead_in
    )
    return time.perf_counter() - started


async def measure(site: SiteFile, repeat: int, foresight: bool) -> Table:
    url = load_settings().db_url
    if url is None:
        raise SystemExit("set ENERGYHUB_DB_URL to the database a closed loop kept")
    async with connect(url) as conn:
        backend = await installed_backend(conn)
        cur = await conn.execute("SELECT min(ts), max(ts) FROM setpoints")
        first, last = await cur.fetchone() or (None, None)
        if first is None:
            raise SystemExit("no setpoints in ENERGYHUB_DB_URL: run bench/closed_loop.py first")
        table = Table(title="one-day savings query: with the month's lead-in vs without")
        for column in ("park", "day", "lead-in days", "without s", "with s", "ratio"):
            table.add_column(column, justify="right")
        start = pd.Timestamp(first).tz_convert(site.tz).normalize()
        days = pd.date_range(start, pd.Timestamp(last).tz_convert(site.tz), freq="D")
        for park in (p.id for p in site.city.parks):
            for day in days:
                window = (day.to_pydatetime(), (day + pd.DateOffset(days=1)).to_pydatetime())
                lead_days = (day - day.replace(day=1)).days
                times: dict[bool, list[float]] = {False: [], True: []}
                for _ in range(repeat):
                    for lead in (False, True):
                        how = (site, foresight, lead)
                        times[lead].append(await _timed(conn, backend, park, window, how))
                without, with_ = (statistics.median(times[k]) for k in (False, True))
                table.add_row(
                    park, str(day.date()), str(lead_days), f"{without:.2f}", f"{with_:.2f}",
                    f"{with_ / without:.2f}",
                )  # fmt: skip
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="examples/expo-park.yaml")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per query (median).")
    parser.add_argument("--foresight", action="store_true", help="Re-solve perfect foresight.")
    args = parser.parse_args()
    table = asyncio.run(measure(load_site(args.site), args.repeat, args.foresight))
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
