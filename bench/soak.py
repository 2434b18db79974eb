"""Soak: a steady 5,000 readings/s for 10 minutes through the whole ingest path, the API polled.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 5000] [--csv soak.csv]

A simulated park (rate/100 buildings of 100 power meters, one gateway frame per building per
second, from the simulators' plant) publishes through a private Mosquitto (deploy/mosquitto.conf
without passwords) to `energyhub ingest --workers 2` writing into a fresh database on the local
PostgreSQL (ENERGYHUB_BENCH_PG_URL); `energyhub api` is polled meanwhile (load, latest, health).
Each frame carries the second it is published at, so the ingest's lag metric (now − the newest
reading at its commit) is the delay from publish to commit.

Every 10 s it samples the RSS of every process (simulator, broker, ingest supervisor and workers,
API) and the lag, prints the curve as a table and a summary (start/end/max RSS per process, max
lag, readings published vs stored, API answers), and writes the samples to a CSV. Not a test.

Ctrl-C (SIGINT) stops the simulator, the API, the ingest and Mosquitto, prints what was sampled
so far, drops the database and exits 130.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import yaml
from psycopg import sql

from energyhub.api.keys import create_key
from energyhub.sites import SiteFile, parse_site
from energyhub.store.db import connect
from energyhub.store.embedded import free_port
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site

REPO = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "ENERGYHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
METERS_PER_BUILDING = 100
SAMPLE_S = 10.0
PREFIX = "energyhub"


def site_document(buildings: int) -> dict[str, object]:
    park = {
        "id": "soak",
        "grid": {"import_max_kw": 1_000_000},
        "buildings": [
            {
                "id": f"s{b:03d}",
                "class": "office-A",
                "floor_area_m2": 10000,
                "meters": [
                    {"id": f"m{m:03d}", "carrier": "electricity", "quantity": "power_kw"}
                    for m in range(METERS_PER_BUILDING)
                ],
            }
            for b in range(buildings)
        ],
    }
    return {"version": 1, "timezone": "Asia/Shanghai", "city": {"id": "city", "parks": [park]}}


# --- the publisher (a process of its own) ------------------------------------------------------


async def publish(site: SiteFile, url: str, seconds: int) -> int:
    """One step per second, every frame stamped with the second it is due; returns how many
    readings were published (and acknowledged by the broker)."""
    from simulators.engine import DEFAULT_RESET_PER_STEP, Engine, SetpointBook
    from simulators.mqtt import MqttClient, MqttUrl
    from simulators.payloads import Router
    from simulators.plant import build_plant
    from simulators.weather import TimeGrid

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    plant = build_plant(site, TimeGrid(start, 1.0, seconds), seed=1)
    engine = Engine(plant, SetpointBook(3600.0), DEFAULT_RESET_PER_STEP)
    router = Router(plant, PREFIX)
    per_step = sum(len(frame.pick(engine.step(0).value)) for frame in router.frames)
    published = 0
    async with MqttClient(MqttUrl.parse(url), f"soak-sim-{uuid.uuid4().hex[:8]}") as client:
        start_wall = time.time() + max(start.timestamp() - time.time(), 0.0)
        for t in range(seconds):
            due = start_wall + t
            await asyncio.sleep(max(due - time.time(), 0.0))
            ts = datetime.fromtimestamp(due, UTC)  # the second it is published at
            await client.publish_many(router.messages(engine.step(t), ts))
            published += per_step
        await client.flush(120)
    return published


# --- the stack -------------------------------------------------------------------------------


@dataclass
class Stack:
    root: Path
    db_url: str
    broker_port: int
    metrics_port: int
    api_port: int
    token: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
        return env | {
            "ENERGYHUB_DB_URL": self.db_url,
            "ENERGYHUB_MQTT_URL": f"mqtt://127.0.0.1:{self.broker_port}",
            "ENERGYHUB_MQTT_CLIENT_ID_PREFIX": f"soak{self.root.name[-6:]}",
            "ENERGYHUB_SITE_FILE": str(self.root / "site.yaml"),
            "ENERGYHUB_INGEST_METRICS_PORT": str(self.metrics_port),
            "ENERGYHUB_API_PORT": str(self.api_port),
            "ENERGYHUB_LOG_LEVEL": "INFO",
        }

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("wb") as out:
            process = subprocess.Popen(
                list(args), env=self.env(), cwd=REPO, stdout=out, stderr=out, start_new_session=True
            )
        self.processes[name] = process
        return process

    def pids(self) -> dict[str, int]:
        """Every process to sample: the ingest supervisor's workers found by their parent."""
        pids = {name: p.pid for name, p in self.processes.items() if p.poll() is None}
        if "ingest" in self.processes:
            for index, child in enumerate(sorted(children(self.processes["ingest"].pid))):
                pids[f"worker-{index}"] = child
        return pids

    def stop(self) -> None:
        """SIGTERM each process, the last started first (the simulator before the broker)."""
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def broker_config(root: Path, port: int) -> Path:
    kept = [
        line
        for line in (REPO / "deploy" / "mosquitto.conf").read_text().splitlines()
        if not line.startswith(("password_file", "acl_file", "allow_anonymous"))
    ]
    config = "\n".join([*kept, "allow_anonymous true", ""])
    config = config.replace("listener 1883", f"listener {port} 127.0.0.1")
    config = config.replace("/mosquitto/data/", f"{root}/mqtt/")
    if os.geteuid() == 0:
        config += "user root\n"
    (root / "mqtt").mkdir()
    path = root / "mosquitto.conf"
    path.write_text(config)
    return path


def wait_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout_s} s")


def wait_log(stack: Stack, name: str, text: str, count: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    log = stack.root / f"{name}.log"
    while log.read_text(errors="replace").count(text) < count:
        if stack.processes[name].poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name}: no {text!r}:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)


async def prepare(url: str, buildings: int, root: Path) -> str:
    document = site_document(buildings)
    (root / "site.yaml").write_text(yaml.safe_dump(document))
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, parse_site(document))
        _, token = await create_key(conn, "viewer", "city", "soak")
    return token


# --- sampling ----------------------------------------------------------------------------------


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


@dataclass
class Sample:
    t_s: float
    rss_mb: dict[str, float | None]
    lag_s: float | None
    """The ingest's lag metric (now − newest reading at its last commit), max over workers."""
    behind_s: float | None
    """Now − the newest stored reading (includes the 1 s between frames)."""
    written: int


async def sample(stack: Stack, client: httpx.AsyncClient, began: float) -> Sample:
    lags, written = [], 0
    for index in range(2):
        try:
            text = (await client.get(f"http://127.0.0.1:{stack.metrics_port + index}/metrics")).text
        except httpx.HTTPError:
            continue
        lag = metric(text, "energyhub_ingest_lag_seconds")
        if lag is not None:
            lags.append(lag)
        written += int(metric(text, "energyhub_ingest_readings_written_total") or 0)
    async with connect(stack.db_url) as conn:
        row = await (
            await conn.execute("SELECT extract(epoch FROM now() - max(ts)) FROM meter_latest")
        ).fetchone()
    behind = float(row[0]) if row and row[0] is not None else None
    rss = {name: rss_mb(pid) for name, pid in stack.pids().items()}
    return Sample(time.monotonic() - began, rss, max(lags) if lags else None, behind, written)


async def poll_api(stack: Stack, stop: asyncio.Event, statuses: Counter[int]) -> None:
    """The API polled like a dashboard: a building's load, a meter's latest value, health."""
    paths = ["/sites/s000/load?step=15m", "/sites/soak/load?step=1h", "/meters/1/latest", "/health"]
    headers = {"Authorization": f"Bearer {stack.token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.api_port}", headers=headers, timeout=30
    ) as client:
        turn = 0
        while not stop.is_set():
            try:
                statuses[(await client.get(paths[turn % len(paths)])).status_code] += 1
            except httpx.HTTPError:
                statuses[0] += 1
            turn += 1
            await asyncio.sleep(0.5)


@dataclass
class Results:
    """What a soak gathered; filled as it goes, so that an interrupted one still has its samples."""

    samples: list[Sample] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    published: int | None = None
    """Readings the simulator published; None until it has finished."""
    drain_s: float | None = None


async def soak(stack: Stack, seconds: int, results: Results) -> None:
    stop, statuses = asyncio.Event(), results.statuses
    poller = asyncio.create_task(poll_api(stack, stop, statuses))
    counts = stack.root / "published"
    simulator = stack.start(
        "simulator", sys.executable, __file__, "--publish", "--site", str(stack.root / "site.yaml"),
        "--url", f"mqtt://127.0.0.1:{stack.broker_port}", "--seconds", str(seconds), "--counts", str(counts),
    )  # fmt: skip
    samples = results.samples
    began = time.monotonic()
    async with httpx.AsyncClient(timeout=5) as client:
        while simulator.poll() is None:
            samples.append(await sample(stack, client, began))
            print_row(samples[-1], header=len(samples) == 1)
            await asyncio.sleep(max(SAMPLE_S * len(samples) - (time.monotonic() - began), 0.1))
        published = int(counts.read_text()) if counts.exists() else -1
        results.published = published
        drained = time.monotonic()
        while time.monotonic() - drained < 120:
            last = await sample(stack, client, began)
            if last.written >= published:
                break
            await asyncio.sleep(1)
        samples.append(last)
        print_row(last, header=False)
        results.drain_s = time.monotonic() - drained
    stop.set()
    await poller


NAMES = ["simulator", "broker", "ingest", "worker-0", "worker-1", "api"]


def print_row(s: Sample, header: bool) -> None:
    if header:
        print(
            f"{'t_s':>6} "
            + " ".join(f"{n:>10}" for n in NAMES)
            + f" {'lag_s':>7} {'behind_s':>8} {'written':>10}"
        )
    rss = " ".join(f"{s.rss_mb.get(n) or float('nan'):>10.1f}" for n in NAMES)
    lag = f"{s.lag_s:>7.2f}" if s.lag_s is not None else f"{'-':>7}"
    behind = f"{s.behind_s:>8.2f}" if s.behind_s is not None else f"{'-':>8}"
    print(f"{s.t_s:>6.0f} {rss} {lag} {behind} {s.written:>10}", flush=True)


def report(results: Results, stored: int, out: Path) -> None:
    samples = results.samples
    print("\nRSS (MB) per process: start / end / max")
    for name in NAMES:
        values = [mb for s in samples if (mb := s.rss_mb.get(name)) is not None]
        if values:
            print(f"  {name:<10} {values[0]:8.1f} {values[-1]:8.1f} {max(values):8.1f}")
    lags = [s.lag_s for s in samples if s.lag_s is not None]
    finished = results.drain_s is not None  # else the last sample was taken while publishing
    behind = [s.behind_s for s in (samples[:-1] if finished else samples) if s.behind_s is not None]
    print(
        f"lag (ingest metric): max {max(lags, default=float('nan')):.2f} s, last {lags[-1] if lags else float('nan'):.2f} s"
    )
    print(
        f"now − newest stored reading while publishing: max {max(behind, default=float('nan')):.2f} s"
    )
    if results.published is None:
        print(f"readings stored {stored:,} (interrupted: the simulator's count is unknown)")
    else:
        print(
            f"readings published {results.published:,}, stored {stored:,} (drained {results.drain_s:.1f} s after the last publish)"
        )
    print(f"API answers: {dict(sorted(results.statuses.items()))}")
    try:
        print(f"load average: {os.getloadavg()}")
    except OSError:
        pass
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t_s", *(f"rss_mb_{n}" for n in NAMES), "lag_s", "behind_s", "written"])
        for s in samples:
            writer.writerow(
                [f"{s.t_s:.1f}", *(s.rss_mb.get(n) for n in NAMES), s.lag_s, s.behind_s, s.written]
            )
    print(f"samples written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=5000, help="readings/s (a multiple of 100)")
    parser.add_argument("--csv", type=Path, default=Path("soak.csv"))
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--site", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--counts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        site = parse_site(yaml.safe_load(Path(args.site).read_text()))
        published = asyncio.run(publish(site, args.url, args.seconds))
        Path(args.counts).write_text(str(published))
        return
    root = Path(tempfile.mkdtemp(prefix="energyhub-soak-"))
    name = f"eh_soak_{uuid.uuid4().hex[:8]}"
    db_url = ADMIN_URL.rpartition("/")[0] + "/" + name
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    stack = Stack(root, db_url, free_port(), free_port(), free_port(), "")
    results = Results()
    interrupted = False
    try:
        try:
            start_stack(stack, args.rate)
            print(
                f"soak: {args.rate:,} readings/s for {args.minutes:g} min; logs in {root}",
                flush=True,
            )
            asyncio.run(soak(stack, round(args.minutes * 60), results))
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
            interrupted = True
            running = ", ".join(reversed(stack.processes)) or "nothing started yet"
            print(f"\ninterrupted: stopping {running}", flush=True)
        finally:
            stack.stop()
        if results.samples:
            with psycopg.connect(db_url) as conn:
                stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]  # type: ignore[index]
            restarts = (root / "ingest.log").read_text(errors="replace").count("restarting in")
            report(results, int(stored), args.csv)
            print(f"ingest worker restarts: {restarts}")
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        shutil.rmtree(root, ignore_errors=True)
    if interrupted:
        sys.exit(130)


def start_stack(stack: Stack, rate: int) -> None:
    """The database's schema, site and API key, then Mosquitto, the ingest and the API."""
    stack.token = asyncio.run(prepare(stack.db_url, rate // METERS_PER_BUILDING, stack.root))
    stack.start("broker", "mosquitto", "-c", str(broker_config(stack.root, stack.broker_port)))
    wait_port(stack.broker_port)
    stack.start("ingest", sys.executable, "-m", "energyhub", "ingest", "--workers", "2")
    wait_log(stack, "ingest", " subscribed to ", 2)
    stack.start("api", sys.executable, "-m", "energyhub", "api")
    wait_port(stack.api_port, 60)


if __name__ == "__main__":
    main()
