"""API benchmark: a year of 15-min readings, then 50 concurrent clients against `energyhub api`.

    .venv/bin/python bench/api.py [--meters 1000] [--days 365] [--clients 50] [--requests 2000]
                                  [--load-requests 300] [--api-workers 1]
                                  [--reuse] [--wrk-seconds 20] [--wrk-warmup-s 10]
                                  [--load-cache-s S]
                                  [--direct-runs 20]

1. Loads `meters` meters (100 buildings × 10 meters: main, PV, heat and cooling counters, five
   sub-meters, a temperature sensor) × `days` days of 15-min readings through the COPY writer
   (ReadingWriter, one batch per day), refreshing the 15-min and hourly rollups day by day, and
   prints rows and rows/s. `--reuse` keeps the database of a previous run (no reload).
2. Starts `energyhub api --workers N` (`--api-workers`, default 1) and sends 20 requests from
   one client, then
   `load-requests` / `requests` from `clients` concurrent async clients (one httpx pool):
   `/sites/park/load?step=15m` over a random 24 h of the year (its 400 top-level meters), and
   `/meters/{random}/latest`; prints p50, p99, requests/s and non-200 answers. Where `wrk` is
   installed (`make bench` installs it), the same paths again from wrk's `clients` connections:
   `--wrk-warmup-s` first (printed as "first N s": caches filling, pools opening connections),
   then `--wrk-seconds` measured on the running API; a C client leaves the two shared cores to
   the API and PostgreSQL. `--load-cache-s` sets the API's ENERGYHUB_API_LOAD_CACHE_S (default:
   the API's own; 0: no load answer reused): the 300 load paths (of 364 days) repeat.
3. Runs the park's load query directly against the database — from the per-site rollup (what the
   API reads), summed from the meters' rollups, and summed from raw readings — one client, and
   prints each as a ratio to the per-site rollup (median of `--direct-runs`; 0 skips it).

Not a test: it prints figures. Needs the PostgreSQL of ENERGYHUB_BENCH_PG_URL (default local).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import psycopg
import yaml
from psycopg import sql

from energyhub.api.keys import create_key
from energyhub.sites import load_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.embedded import free_port
from energyhub.store.migrations import migrate
from energyhub.store.queries import RAW_SOURCE, SITE_LOAD, per_meter_query, site_meter_ids
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

ADMIN_URL = os.environ.get(
    "ENERGYHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "eh_bench_api"
START = datetime(2025, 1, 1, tzinfo=UTC)
STEPS_PER_DAY = 96
METERS_PER_BUILDING = 10


def site_document(buildings: int) -> dict[str, object]:
    """One city, one park, `buildings` offices of ten meters each."""
    meters = [
        {"id": "main", "carrier": "electricity", "quantity": "power_kw"},
        {"id": "pv", "carrier": "pv", "quantity": "power_kw"},
        {"id": "heat", "carrier": "heat", "quantity": "energy_kwh"},
        {"id": "cooling", "carrier": "cooling", "quantity": "energy_kwh"},
        *(
            {
                "id": f"f{i}",
                "carrier": "electricity",
                "quantity": "energy_kwh",
                "submeter_of": "main",
            }
            for i in range(5)
        ),
        {"id": "indoor", "carrier": "none", "quantity": "temperature_c"},
    ]
    park = {
        "id": "park",
        "grid": {"import_max_kw": 100000},
        "buildings": [
            {"id": f"b{i:03d}", "class": "office-A", "floor_area_m2": 10000, "meters": meters}
            for i in range(buildings)
        ],
    }
    return {"version": 1, "timezone": "Asia/Shanghai", "city": {"id": "city", "parks": [park]}}


def day_batch(day: int, ids: np.ndarray, counters: np.ndarray, state: np.ndarray) -> ReadingBatch:
    """One day at 15 min for every meter: power around 100 kW, counters rising, sensors."""
    rng = np.random.default_rng(day)
    steps = START.replace(tzinfo=None) + timedelta(days=day)
    ts = np.datetime64(steps, "us") + np.arange(STEPS_PER_DAY) * np.timedelta64(15, "m")
    values = rng.normal(100.0, 20.0, (STEPS_PER_DAY, len(ids)))
    increments = rng.uniform(10.0, 30.0, (STEPS_PER_DAY, counters.sum()))
    values[:, counters] = state + np.cumsum(increments, axis=0)
    state[:] = values[-1, counters]
    return ReadingBatch.from_columns(
        np.repeat(ts, len(ids)), np.tile(ids, STEPS_PER_DAY), values.ravel()
    )


async def load_year(url: str, meters: int, days: int) -> None:
    """Migrate, load the site, write every day through the COPY writer, refresh rollups."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "site.yaml"
        path.write_text(yaml.safe_dump(site_document(meters // METERS_PER_BUILDING)))
        site = load_site(path)
    async with connect(url) as conn:
        await migrate(conn, timescaledb="off", retention_days=3650)
        await sync_site(conn, site)
        cur = await conn.execute("SELECT id, quantity FROM meters ORDER BY id")
        rows = await cur.fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int32)
    counters = np.array([r[1] == "energy_kwh" for r in rows])
    state = np.zeros(counters.sum())
    started, written = time.perf_counter(), 0
    async with open_pool(url, max_size=2) as pool, connect(url) as conn:
        writer = ReadingWriter(pool, Backend.POSTGRES)
        for day in range(days):
            batch = day_batch(day, ids, counters, state)
            written += (await writer.write(batch)).new
            lo = START + timedelta(days=day)
            await conn.execute(
                "SELECT energyhub_refresh_rollups(%s, %s)", (lo, lo + timedelta(days=1))
            )
            if day % 30 == 29 or day == days - 1:
                rate = written / (time.perf_counter() - started)
                print(
                    f"  day {day + 1}/{days}: {written:,} rows, {rate:,.0f} rows/s with rollups",
                    flush=True,
                )
        await conn.execute("DELETE FROM rollup_dirty")  # refreshed day by day above
        await conn.execute("VACUUM ANALYZE")
    seconds = time.perf_counter() - started
    print(
        f"loaded {written:,} rows ({len(ids)} meters × {days} days × 96) in {seconds:,.0f} s: {written / seconds:,.0f} rows/s"
    )


def serve(
    url: str, port: int, workers: int, log: Path, load_cache_s: float | None
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
    env.update(ENERGYHUB_DB_URL=url, ENERGYHUB_DB_POOL_MAX="10", ENERGYHUB_LOG_LEVEL="WARNING")
    env.update(ENERGYHUB_DB_CONNECT_TIMEOUT_S="120")  # queued requests wait for a connection
    if load_cache_s is not None:
        env.update(ENERGYHUB_API_LOAD_CACHE_S=str(load_cache_s))
    return subprocess.Popen(
        [sys.executable, "-m", "energyhub", "api", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        text=True,
    )


async def hammer(
    base: str, token: str, paths: list[str], clients: int
) -> tuple[list[float], float, int]:
    """Send every path from `clients` concurrent workers; latencies (ms), wall seconds, errors."""
    queue = iter(paths)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=300
    ) as client:

        async def worker() -> None:
            nonlocal errors
            for path in queue:
                started = time.perf_counter()
                try:
                    status = (await client.get(path)).status_code
                except httpx.TransportError:  # counted, and the run goes on
                    status = 0
                latencies.append((time.perf_counter() - started) * 1000)
                errors += status != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, time.perf_counter() - started, errors


async def wait_healthy(base: str, server: subprocess.Popen[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=1) as client:
        for _ in range(300):
            if server.poll() is not None:
                raise RuntimeError("energyhub api exited (see its log)")
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise RuntimeError(f"energyhub api did not answer at {base}")


WRK_SCRIPT = """
local paths, i = {}, 0
function init(args)
    for line in io.lines(args[1]) do paths[#paths + 1] = line end
    i = math.random(#paths)
end
function request()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end
function done(summary, latency, requests)
    local bad = summary.errors.status + summary.errors.connect + summary.errors.read
                + summary.errors.write + summary.errors.timeout
    io.write(string.format("RESULT %d %d %f %f %d\\n", summary.requests, summary.duration,
                           latency:percentile(50), latency:percentile(99), bad))
end
"""


def wrk(base: str, token: str, paths: list[str], clients: int, seconds: int) -> str:
    """Closed-loop load from wrk (C, two threads): `clients` connections each sending the next
    path as soon as the previous answer came; one line of figures."""
    with tempfile.TemporaryDirectory() as tmp:
        script, listing = Path(tmp) / "paths.lua", Path(tmp) / "paths.txt"
        script.write_text(WRK_SCRIPT)
        listing.write_text("\n".join(paths) + "\n")
        command = [
            "wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "--timeout", "30s",
            "-H", f"Authorization: Bearer {token}", "-s", str(script), base, "--", str(listing),
        ]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(row for row in output.splitlines() if row.startswith("RESULT"))
    requests, duration_us, p50_us, p99_us, bad = (float(x) for x in line.split()[1:])
    return (
        f"p50 {p50_us / 1000:8.1f} ms  p99 {p99_us / 1000:8.1f} ms  "
        f"{requests / duration_us * 1e6:6.1f} req/s  n={requests:.0f}  non-2xx/errors: {bad:.0f}"
    )


def report(name: str, clients: int, result: tuple[list[float], float, int]) -> None:
    latencies, seconds, errors = result
    p50 = statistics.median(latencies)
    p99 = float(np.percentile(latencies, 99))
    print(
        f"{name:<42} {clients:>3} client(s)  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  "
        f"{len(latencies) / seconds:6.1f} req/s  n={len(latencies)}  non-200: {errors}"
    )


async def direct(url: str, days: int, step: str, span: timedelta, runs: int) -> dict[str, float]:
    """Median ms of the park's load three ways: what the API reads (the per-site rollup), the
    sum of its meters' rollups, and the sum of its meters' raw readings."""
    step_td = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1)}[step]
    bucket = sql.SQL("date_bin({}, bucket, '2000-01-01 00:00:00+00')").format(sql.Literal(step_td))
    meter_rollup = sql.Identifier("readings_15m" if step == "15m" else "readings_1h")
    site_rollup = sql.SQL(SITE_LOAD).format(table=sql.Identifier(f"site_load_{step}"))
    queries = {
        "site rollup": site_rollup,
        "meter rollups": per_meter_query(meter_rollup, bucket),
        "raw readings": per_meter_query(RAW_SOURCE, bucket),
    }
    timings: dict[str, list[float]] = {name: [] for name in queries}
    rng = random.Random(3)
    async with connect(url) as conn:
        meters = await site_meter_ids(conn, "park")
        for _ in range(runs):
            # a window inside the loaded days (after the first, for the lookback); with fewer
            # days than the span, the window starts on day 1 and reaches past the data
            start = START + timedelta(days=rng.randrange(1, max(2, days - span.days)))
            params = {
                "site": "park",
                "meters": meters,
                "start": start,
                "end": start + span,
                "step_h": step_td / timedelta(hours=1),
            }
            for name, query in queries.items():
                began = time.perf_counter()
                await (await conn.execute(query, params)).fetchall()
                timings[name].append((time.perf_counter() - began) * 1000)
    return {name: statistics.median(ms) for name, ms in timings.items()}


async def run(args: argparse.Namespace) -> None:
    url = ADMIN_URL.rpartition("/")[0] + "/" + DATABASE
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if exists and not args.reuse:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        if not exists or not args.reuse:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    if not (exists and args.reuse):
        await load_year(url, args.meters, args.days)
    async with connect(url) as conn:
        await migrate(conn, timescaledb="off", retention_days=3650)  # a reused database may lag
        rows = (await (await conn.execute("SELECT count(*) FROM readings")).fetchone() or [0])[0]
        _, token = await create_key(conn, "admin", "city", "bench")
        meter_ids = [r[0] for r in await (await conn.execute("SELECT id FROM meters")).fetchall()]
    print(f"database {DATABASE}: {rows:,} readings, {len(meter_ids)} meters")
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"energyhub-bench-api-{port}.log"
    server = serve(url, port, args.api_workers, log, args.load_cache_s)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, server)
        rng = random.Random(1)
        days = args.days

        def load_path() -> str:
            start = START + timedelta(days=rng.randrange(0, days - 1))
            end = start + timedelta(days=1)
            return f"/sites/park/load?step=15m&start={start:%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}"

        await hammer(base, token, [load_path() for _ in range(20)], 1)  # warm up
        cache = "default" if args.load_cache_s is None else f"{args.load_cache_s:g} s"
        print(
            f"energyhub api --workers {args.api_workers}, pools of 10 connections, "
            f"load cache {cache}, 2 shared cores:"
        )
        for name, make, count in (
            ("/sites/park/load?step=15m, a random 24 h", load_path, args.load_requests),
            (
                "/meters/{random}/latest",
                lambda: f"/meters/{rng.choice(meter_ids)}/latest",
                args.requests,
            ),
        ):
            report(name, 1, await hammer(base, token, [make() for _ in range(20)], 1))
            paths = [make() for _ in range(count)]
            report(name, args.clients, await hammer(base, token, paths, args.clients))
            if shutil.which("wrk"):
                if args.wrk_warmup_s:
                    figures = wrk(base, token, paths, args.clients, args.wrk_warmup_s)
                    print(
                        f"{name:<42} {args.clients:>3} wrk conns  {figures}  (first {args.wrk_warmup_s} s)"
                    )
                figures = wrk(base, token, paths, args.clients, args.wrk_seconds)
                print(f"{name:<42} {args.clients:>3} wrk conns  {figures}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    if log.stat().st_size:
        print(f"the API's log ({log}) ends with:\n{log.read_text()[-2000:]}")
    if not args.direct_runs:
        return
    print(f"park load query straight on the database, one client, median of {args.direct_runs}:")
    for step, span in (("15m", timedelta(days=1)), ("1h", timedelta(days=7))):
        ms = await direct(url, args.days, step, span, args.direct_runs)
        rollup_ms = ms["site rollup"]
        print(
            f"  step {step} over {span.days} d: "
            + ", ".join(f"{name} {v:.1f} ms ({v / rollup_ms:.1f}×)" for name, v in ms.items())
        )


def at_least(lowest: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least `lowest` (else argparse's one-line error)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be at least {lowest}, got {value}")
        return value

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--days", type=at_least(2), default=365)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000, help="Latest-value requests.")
    parser.add_argument("--load-requests", type=int, default=300, help="Park load requests.")
    parser.add_argument("--api-workers", type=int, default=1, help="energyhub api --workers.")
    parser.add_argument(
        "--reuse", action="store_true", help="Keep the loaded database of a previous run."
    )
    parser.add_argument(
        "--wrk-seconds", type=int, default=20, help="Seconds of wrk load per route, if installed."
    )
    parser.add_argument(
        "--wrk-warmup-s",
        type=int,
        default=10,
        help="Seconds of wrk load per route before the measured run (printed apart; 0: none).",
    )
    parser.add_argument(
        "--load-cache-s",
        type=float,
        default=None,
        help="The API's ENERGYHUB_API_LOAD_CACHE_S (default: its own; 0: off).",
    )
    parser.add_argument(
        "--direct-runs", type=int, default=20, help="Direct database queries per way (0: none)."
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
