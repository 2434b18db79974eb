"""Ingest benchmark: readings/s end to end against mosquitto_sub, raw COPY and a naive ingester.

    .venv/bin/python bench/ingest.py [--messages 200000] [--frames 2000] [--naive 5000] [--naive-frames 500]

Everything runs in one process tree on this machine, against a private Mosquitto started with
deploy/mosquitto.conf and the local PostgreSQL (ENERGYHUB_BENCH_PG_URL), so the ratios compare
runs made seconds apart on the same load:

(a) single-reading messages at QoS 1 through `energyhub ingest --workers 2`: first publish →
    last commit, against `mosquitto_sub`'s receive rate of the same stream (target ≥ 1.0×); with
    the workers partitioned by site (the default), then on the shared subscription;
(b) gateway frames of 100 readings through the same workers, against raw binary COPY of the
    same rows into the same table (target ≥ 0.5×);
(c) the (a) rate against a naive ingester doing one autocommit INSERT per message (≥ 50×),
    and the (b) rate against the same ingester on frames (one INSERT of 100 rows per frame).

It counts broker drops ($SYS/broker/publish/messages/dropped: a run with drops is a failed run)
and reports each worker's peak RSS. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql

from energyhub.sites import parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.copy import encode
from energyhub.store.db import connect
from energyhub.store.embedded import free_port
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from simulators.mqtt import MqttClient, MqttUrl

REPO = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("ENERGYHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BUILDINGS, METERS = 10, 100
SINGLE_METERS = 20


def bench_site() -> dict[str, object]:
    """One park of 10 buildings with 100 power meters each (1,000 meters)."""
    buildings = [
        {
            "id": f"b{b:02d}",
            "class": "office-A",
            "floor_area_m2": 10000,
            "meters": [{"id": f"m{m:03d}", "carrier": "electricity", "quantity": "power_kw"} for m in range(METERS)],
        }
        for b in range(BUILDINGS)
    ]
    park = {"id": "bench", "grid": {"import_max_kw": 50000}, "buildings": buildings}
    return {"version": 1, "timezone": "Asia/Shanghai", "city": {"id": "city", "parks": [park]}}


class Broker:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="energyhub-bench-mqtt-"))
        self.port = free_port()
        config = "\n".join(
            line
            for line in (REPO / "deploy" / "mosquitto.conf").read_text().splitlines()
            if not line.startswith(("password_file", "acl_file", "allow_anonymous"))
        ) + "\nallow_anonymous true\n"
        config = config.replace("listener 1883", f"listener {self.port} 127.0.0.1")
        config = config.replace("/mosquitto/data/", f"{self.root}/")
        config += "\nuser root\nsys_interval 1\n" if os.geteuid() == 0 else "\nsys_interval 1\n"
        (self.root / "mosquitto.conf").write_text(config)
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.root / "mosquitto.conf")], stdout=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

    def dropped(self) -> int:
        out = subprocess.run(
            ["mosquitto_sub", "-p", str(self.port), "-t", "$SYS/broker/publish/messages/dropped", "-C", "1", "-W", "5"],
            capture_output=True, text=True, check=False,
        )
        return int(out.stdout.strip() or 0)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


def single_messages(prefix: str, count: int, days_back: int = 5) -> dict[str, list[bytes]]:
    """`count` single readings from SINGLE_METERS meters spread over the buildings, 1 s apart
    (several buildings, so that workers partitioned by site share the stream), from `days_back`
    days ago (another stream into the same table must start elsewhere, or it is all duplicates)."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_back)
    by_topic: dict[str, list[bytes]] = {}
    for i in range(count):
        m = i % SINGLE_METERS
        ts = base + timedelta(seconds=i // SINGLE_METERS)
        topic = f"{prefix}/bench/b{m % BUILDINGS:02d}/m{m // BUILDINGS:03d}"
        by_topic.setdefault(topic, []).append(orjson.dumps({"ts": ts.isoformat(), "value": float(i % 997)}))
    return by_topic


def frame_messages(prefix: str, frames: int) -> dict[str, list[bytes]]:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    by_topic: dict[str, list[bytes]] = {}
    for f in range(frames):
        b = f % BUILDINGS
        ts = base + timedelta(seconds=f // BUILDINGS)
        values = {f"m{m:03d}": float((f + m) % 991) for m in range(METERS)}
        by_topic.setdefault(f"{prefix}/bench/b{b:02d}", []).append(orjson.dumps({"ts": ts.isoformat(), "values": values}))
    return by_topic


def publish_all(port: int, by_topic: dict[str, list[bytes]]) -> float:
    """Publish everything at QoS 1 with the simulators' pipelined client; returns the start time.

    `mosquitto_pub -l` would be the obvious C publisher, but at QoS 1 it skips input lines while
    its in-flight window is full (seen here), so it cannot feed a count-exact benchmark.
    """
    items = [(topic, payload) for topic, payloads in by_topic.items() for payload in payloads]
    items.sort(key=lambda item: item[1])  # interleave topics as meters would (ts leads each payload)

    async def run() -> None:
        async with MqttClient(MqttUrl("127.0.0.1", port), f"bench-{uuid.uuid4().hex[:8]}") as client:
            await client.publish_many(items)
            await client.flush(600)

    started = time.perf_counter()
    asyncio.run(run())
    return started


def mosquitto_sub_rate(broker: Broker, by_topic: dict[str, list[bytes]], prefix: str) -> tuple[float, float]:
    """mosquitto_sub's receive rate, and how long publishing took."""
    total = sum(len(v) for v in by_topic.values())
    sub = subprocess.Popen(
        ["mosquitto_sub", "-p", str(broker.port), "-q", "1", "-t", f"{prefix}/#", "-C", str(total)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    started = publish_all(broker.port, by_topic)
    published = time.perf_counter()
    sub.wait()
    return total / (time.perf_counter() - started), published - started


def count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
        return int(row[0]) if row else 0


def wait_rows(url: str, expected: int, timeout_s: float = 600) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if count(url) >= expected:
            return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError(f"only {count(url)} of {expected} readings arrived")


def wait_subscribed(process: subprocess.Popen[str], workers: int) -> None:
    """Read the workers' log until each says it subscribed (what is published before is lost)."""
    assert process.stderr is not None
    subscribed = 0
    while subscribed < workers:
        line = process.stderr.readline()
        if not line:
            raise RuntimeError("the ingest workers exited before subscribing")
        sys.stderr.write(line)
        subscribed += " subscribed to " in line
    threading.Thread(target=process.stderr.read, daemon=True).start()  # keep draining the pipe


def children(parent: int) -> list[str]:
    return subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False).stdout.split()


def peak_rss_mb(parent: int) -> list[float]:
    peaks = []
    for pid in children(parent):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return peaks


def cpu_s(parent: int) -> float:
    """User + system CPU seconds of the worker processes so far."""
    ticks = 0
    for pid in children(parent):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class IngestRun:
    rate: float
    rss_mb: list[float]
    publish_s: float
    """First publish → the broker acknowledged the last."""
    tail_s: float
    """The broker acknowledged the last publish → the last commit."""
    cpu_s: float
    """The workers' CPU seconds over the run."""


def ingest_rate(
    url: str, broker: Broker, by_topic: dict[str, list[bytes]], prefix: str, readings: int, mode: str = "partitioned"
) -> IngestRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
    env |= {
        "ENERGYHUB_DB_URL": url,
        "ENERGYHUB_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}",
        "ENERGYHUB_MQTT_TOPIC_PREFIX": prefix,
        "ENERGYHUB_MQTT_CLIENT_ID_PREFIX": prefix,
        "ENERGYHUB_INGEST_METRICS_PORT": "0",
        "ENERGYHUB_LOG_LEVEL": "INFO",
        "ENERGYHUB_INGEST_SUBSCRIPTION": mode,
    }
    before = count(url)
    workers = subprocess.Popen(
        [sys.executable, "-m", "energyhub", "ingest", "--workers", "2"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_subscribed(workers, 2)
        cpu_before = cpu_s(workers.pid)
        started = publish_all(broker.port, by_topic)
        published = time.perf_counter()
        finished = wait_rows(url, before + readings)
        cpu = cpu_s(workers.pid) - cpu_before
        rss = peak_rss_mb(workers.pid)
    finally:
        workers.terminate()
        workers.wait(30)
    return IngestRun(readings / (finished - started), rss, published - started, finished - published, cpu)


def raw_copy_rate(url: str, rows: int) -> float:
    """Binary COPY of `rows` rows of the frame shape into the keyed readings table."""
    base = np.datetime64("2026-01-01T00:00:00", "us")
    steps = rows // (BUILDINGS * METERS)
    ts = np.repeat(base + np.arange(steps) * np.timedelta64(1, "s"), BUILDINGS * METERS)
    batch = ReadingBatch.from_columns(ts, np.tile(np.arange(1, 1001), steps), np.ones(len(ts)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT energyhub_ensure_partition('2026-01-01')")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor().copy("COPY readings (ts, meter_id, value) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(encode(batch))
        return rows / (time.perf_counter() - started)


def naive_rate(url: str, broker: Broker, by_topic: dict[str, list[bytes]]) -> float:
    """Readings/s of one autocommit INSERT per message (a frame: one INSERT of its rows), as a
    hand-wired subscriber would do it."""
    conn = psycopg.connect(url, autocommit=True)
    ids = dict(conn.execute("SELECT s.id || '/' || m.name, m.id FROM meters m JOIN sites s ON s.id = m.site_id").fetchall())
    done: list[float] = []
    readings = 0

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        nonlocal readings
        parts = message.topic.split("/")
        body = orjson.loads(message.payload)
        ts = datetime.fromisoformat(body["ts"]) + timedelta(days=30)
        values = body["values"] if len(parts) == 3 else {parts[3]: body["value"]}
        rows = [(ts, ids[f"{parts[2]}/{meter}"], value) for meter, value in values.items()]
        conn.execute(
            "INSERT INTO readings VALUES " + ", ".join(["(%s, %s, %s)"] * len(rows)) + " ON CONFLICT DO NOTHING",
            [field for row in rows for field in row],
        )
        readings += len(rows)
        done.append(time.perf_counter())

    messages = sum(len(v) for v in by_topic.values())
    prefix = next(iter(by_topic)).split("/")[0]
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_message = on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe(f"{prefix}/#", qos=1)
    client.loop_start()
    time.sleep(0.5)
    started = publish_all(broker.port, by_topic)
    while len(done) < messages:
        time.sleep(0.05)
    client.loop_stop()
    conn.close()
    return readings / (done[-1] - started)


async def prepare(url: str) -> None:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, parse_site(bench_site()))


def main(messages: int, frames: int, naive: int, naive_frames: int) -> None:
    name = f"energyhub_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    broker = Broker()
    try:
        asyncio.run(prepare(url))
        prefix = f"b{uuid.uuid4().hex[:6]}"
        singles = single_messages(prefix, messages)
        sub_rate, sub_publish_s = mosquitto_sub_rate(broker, singles, prefix)
        a = ingest_rate(url, broker, singles, prefix, messages)
        shared_prefix = f"s{prefix}"
        shared = ingest_rate(url, broker, single_messages(shared_prefix, messages, days_back=8), shared_prefix, messages, "shared")
        frames_by_topic = frame_messages(prefix, frames)
        b = ingest_rate(url, broker, frames_by_topic, prefix, frames * METERS)
        copy_rate = raw_copy_rate(url, frames * METERS)
        naive_messages_rate = naive_rate(url, broker, single_messages(f"n{prefix}", naive))
        naive_frames_rate = naive_rate(url, broker, frame_messages(f"f{prefix}", naive_frames))
        dropped = broker.dropped()
    finally:
        broker.close()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    single_rate, frame_rate = a.rate, b.rate
    print(f"(a) {messages:,} single readings, QoS 1, 2 workers: {single_rate:,.0f} readings/s end to end")
    print(f"    mosquitto_sub receiving the same stream: {sub_rate:,.0f} msg/s → ratio {single_rate / sub_rate:.2f}× (target ≥ 1.0×)")
    print(f"    publishing took {a.publish_s:.2f} s (with mosquitto_sub: {sub_publish_s:.2f} s), the last commit came {a.tail_s:.2f} s after;")
    print(f"    the workers used {a.cpu_s:.2f} CPU-s ({a.cpu_s / messages * 1e6:.1f} µs per message)")
    print(f"    on the shared subscription instead of partitioned by site: {shared.rate:,.0f} readings/s → {shared.rate / sub_rate:.2f}×")
    print(f"(b) {frames:,} frames × {METERS} readings: {frame_rate:,.0f} readings/s end to end")
    print(f"    raw binary COPY of the same rows: {copy_rate:,.0f} rows/s → ratio {frame_rate / copy_rate:.2f}× (target ≥ 0.5×)")
    print(f"    publishing took {b.publish_s:.2f} s, the last commit came {b.tail_s:.2f} s after; the workers used {b.cpu_s:.2f} CPU-s")
    print(f"(c) naive one-INSERT-per-message ingester: {naive_messages_rate:,.0f} readings/s → (a) is {single_rate / naive_messages_rate:.1f}× (target ≥ 50×)")
    print(f"    ceiling of (c) with single readings: the stream itself, mosquitto_sub / naive = {sub_rate / naive_messages_rate:.1f}×")
    print(f"    on frames, one INSERT of 100 rows per frame: {naive_frames_rate:,.0f} readings/s → (b) is {frame_rate / naive_frames_rate:.1f}×")
    print(f"peak RSS per worker: (a) {', '.join(f'{r:.0f} MB' for r in a.rss_mb)}; (b) {', '.join(f'{r:.0f} MB' for r in b.rss_mb)}")
    print(f"broker drops: {dropped} ({'a failed run' if dropped else 'none'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--frames", type=int, default=2_000)
    parser.add_argument("--naive", type=int, default=5_000)
    parser.add_argument("--naive-frames", type=int, default=500)
    arguments = parser.parse_args()
    main(arguments.messages, arguments.frames, arguments.naive, arguments.naive_frames)
