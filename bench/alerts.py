"""Alerts benchmark: a 100-building park's rules against a live stream of 10,000 readings/s.

    .venv/bin/python bench/alerts.py [--seconds 60] [--rate 10000] [--tick-s 1.0]

A writer commits readings (100 buildings × 20 meters, in 10 batches a second) through the COPY
writer; every second one building's main meter jumps over 90 % of its connection limit for a few
seconds. The `energyhub alerts` role runs in its own process on the wall clock. Printed:

- evaluation lag, the time from the commit of the first over-limit reading to the alert's
  `opened_at`, p50 / p99 / max (bounded below by the tick: an alert is seen on the next tick);
- the alerts process's CPU time over the stream as a share of one core;
- the cost of one incremental tick against a baseline measured in the same run: the same
  questions asked by rescanning the last 15 minutes of `readings` (newest reading per meter
  and the latest value per site), which is what evaluation without `meter_latest` costs.

Not a test: it prints figures. Needs the PostgreSQL of ENERGYHUB_BENCH_PG_URL (default local).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import yaml
from psycopg import sql

from energyhub.alerts.evaluator import Evaluator
from energyhub.alerts.service import run_alerts
from energyhub.clock import SystemClock
from energyhub.config import Settings
from energyhub.sites import load_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

ADMIN_URL = os.environ.get(
    "ENERGYHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BUILDINGS, METERS = 100, 20
LIMIT_KW, NORMAL_KW, HIGH_KW = 1000.0, 500.0, 950.0
EVENT_S = 3.0
RESCAN = """
SELECT meter_id, max(ts) FROM readings WHERE ts > %(since)s GROUP BY meter_id"""
RESCAN_LOAD = """
SELECT DISTINCT ON (meter_id) meter_id, value FROM readings
WHERE ts > %(since)s AND meter_id = ANY(%(mains)s) ORDER BY meter_id, ts DESC"""


def site_document() -> dict[str, Any]:
    buildings = []
    for b in range(BUILDINGS):
        meters = [{"id": "main", "carrier": "electricity", "quantity": "power_kw"}]
        meters += [
            {
                "id": f"m{i:02d}",
                "carrier": "electricity",
                "quantity": "power_kw",
                "submeter_of": "main",
            }
            for i in range(1, METERS)
        ]
        buildings.append({
            "id": f"b{b:03d}", "class": "office-A", "floor_area_m2": 10000,
            "grid": {"import_max_kw": LIMIT_KW}, "meters": meters,
            "alerts": {"limit": {"for_min": 0, "clear_min": 0}},
        })  # fmt: skip
    park = {"id": "bench", "grid": {"import_max_kw": 1e6}, "buildings": buildings}
    return {"version": 1, "timezone": "Asia/Shanghai", "city": {"id": "c", "parks": [park]}}


def alerts_process(url: str, site_path: str, tick_s: float) -> None:
    """The alerts role, as `energyhub alerts` runs it, until SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        settings = Settings(db_url=url, alerts_tick_s=tick_s, mqtt_url=None)
        await run_alerts(settings, load_site(site_path), SystemClock(), stop)

    asyncio.run(main())


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def stream(
    url: str, ids: np.ndarray, mains: dict[str, int], seconds: float, rate: int
) -> dict[str, float]:
    """Write `rate` readings/s for `seconds`; returns commit time of each building's first high."""
    per_batch = rate // 10
    rng = np.random.default_rng(1)
    committed: dict[str, float] = {}
    high_until: dict[int, float] = {}
    jitter = rng.uniform(0, 1, len(mains))  # one building a second from 3 s, at random phases
    starts = [(3 + i + jitter[i], name) for i, name in enumerate(mains)]
    offset = 0
    async with open_pool(url, max_size=2) as pool:
        writer = ReadingWriter(pool, Backend.POSTGRES)
        start = time.monotonic()
        step = 0
        while (elapsed := time.monotonic() - start) < seconds:
            while starts and starts[0][0] <= elapsed and elapsed < seconds - 5:
                high_until[mains[starts.pop(0)[1]]] = elapsed + EVENT_S
            take = ids[(offset + np.arange(per_batch)) % len(ids)]
            offset += per_batch
            values = rng.normal(NORMAL_KW / METERS, 1.0, per_batch)
            is_main = np.isin(take, list(mains.values()))
            values[is_main] = NORMAL_KW
            fresh = [m for m, until in high_until.items() if until > elapsed]
            values[np.isin(take, fresh)] = HIGH_KW
            now = np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us")
            await writer.write(ReadingBatch.from_columns(np.full(per_batch, now), take, values))
            done = time.time()
            for name, meter in mains.items():
                if meter in fresh and name not in committed and meter in take:
                    committed[name] = done
            step += 1
            await asyncio.sleep(max(start + step * 0.1 - time.monotonic(), 0))
    return committed


async def tick_costs(
    url: str, site_path: str, mains: list[int], rounds: int = 20
) -> tuple[float, float]:
    """Seconds per incremental tick and per rescan of the last 15 minutes, same data."""
    async with open_pool(url, max_size=2) as pool:
        evaluator = Evaluator(pool, load_site(site_path), SystemClock())
        await evaluator.load()
        started = time.perf_counter()
        for _ in range(rounds):
            await evaluator.tick()
        incremental = (time.perf_counter() - started) / rounds
        async with pool.connection() as conn:
            since = datetime.now(UTC) - timedelta(minutes=15)
            started = time.perf_counter()
            for _ in range(rounds):
                await (await conn.execute(RESCAN, {"since": since})).fetchall()
                await (await conn.execute(RESCAN_LOAD, {"since": since, "mains": mains})).fetchall()
            rescan = (time.perf_counter() - started) / rounds
    return incremental, rescan


async def run(args: argparse.Namespace, url: str, site_path: str) -> None:
    async with connect(url) as conn:
        await migrate(conn, timescaledb="off")
        await sync_site(conn, load_site(site_path))
        rows = await (await conn.execute("SELECT site_id, name, id FROM meters")).fetchall()
    ids = np.array(sorted(int(i) for _, _, i in rows), dtype=np.int32)
    mains = {str(s): int(i) for s, n, i in rows if n == "main"}
    child = multiprocessing.get_context("spawn").Process(
        target=alerts_process, args=(url, site_path, args.tick_s)
    )
    child.start()
    await asyncio.sleep(3)  # the role connects and loads its watches
    assert child.pid is not None
    cpu_before, wall_before = cpu_s(child.pid), time.monotonic()
    committed = await stream(url, ids, mains, args.seconds, args.rate)
    await asyncio.sleep(args.tick_s * 2 + 1)
    cpu = (cpu_s(child.pid) - cpu_before) / (time.monotonic() - wall_before)
    os.kill(child.pid, signal.SIGTERM)
    child.join(30)
    async with connect(url) as conn:
        cur = await conn.execute(
            "SELECT site_id, min(opened_at) FROM alerts WHERE rule = 'limit' GROUP BY 1"
        )
        opened = {str(s): ts.timestamp() for s, ts in await cur.fetchall()}
        total = (await (await conn.execute("SELECT count(*) FROM readings")).fetchone() or [0])[0]
    lags = np.array([opened[s] - t for s, t in committed.items() if s in opened])
    missed = sorted(set(committed) - set(opened))
    incremental, rescan = await tick_costs(url, site_path, list(mains.values()))
    print(
        f"stream: {total:,} readings in {args.seconds:.0f} s ({total / args.seconds:,.0f}/s), "
        f"{BUILDINGS} buildings × {METERS} meters, tick {args.tick_s} s"
    )
    print(
        f"limit alerts: {len(lags)} of {len(committed)} over-limit episodes opened"
        + (f"; missed: {missed}" if missed else "")
    )
    if len(lags):
        p50, p99 = np.percentile(lags, [50, 99])
        print(
            f"evaluation lag (commit → opened_at): p50 {p50:.3f} s, p99 {p99:.3f} s, max {lags.max():.3f} s"
        )
    print(f"alerts process CPU: {cpu:.1%} of one core")
    print(f"one tick: incremental {incremental * 1000:.1f} ms vs 15-minute rescan baseline "
          f"{rescan * 1000:.1f} ms (ratio {rescan / incremental:.1f}×)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--tick-s", type=float, default=1.0)
    args = parser.parse_args()
    name = f"eh_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            site_path = str(Path(tmp) / "bench-park.yaml")
            Path(site_path).write_text(yaml.safe_dump(site_document()))
            asyncio.run(run(args, url, site_path))
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
