"""The whole stack under faults: simulated meters → Mosquitto → 2 ingest workers → PostgreSQL,
the scheduler steering simulated devices, the API polled throughout.

One run on simulated time, faults one after the other: an ingest worker SIGKILLed (its supervisor
restarts it), Mosquitto restarted, a burst at 5x the normal rate (a gateway flushing a backlog
of an older week alongside the live traffic), PostgreSQL down for 30 s. Afterwards every reading
the fields' record logs say was published is stored exactly once, the scheduler sent no step
twice, and every API request was answered: 200, or 503 fast while the database was away.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from energyhub.store.db import connect

from .conftest import (
    MeterIndex,
    Poll,
    Reading,
    Stack,
    children,
    count,
    monitor_stored,
    poll_api,
    published_readings,
    stored_readings,
)

pytestmark = [pytest.mark.system, pytest.mark.slow]

SPEED = 300.0
"""Simulated seconds per second: a 1-min step every 0.2 s, a 15-min scheduler step every 3 s."""
STEP_S = 60.0
HISTORY_DAYS = 3
LIVE_S = 95.0
"""Wall seconds of live traffic; the faults happen inside it."""
KILL_AT, BROKER_AT, BURST_AT, BURST_S, DB_AT, DB_DOWN_S = 8.0, 20.0, 32.0, 10.0, 50.0, 30.0
BURST_FACTOR = 5
API_TIMEOUT_S = 5.0
"""A request unanswered after this counts as hung."""
FAST_503_S = 3.0
"""A 503 must come within this: failing fast, not after waiting out the outage."""
API_GRACE_S = 15.0
"""After the database is back, the API answers 200 again within this."""
DRAIN_S = 60.0
DEVICE_RESUBSCRIBE_S = 5.0
"""The simulated devices subscribe to their setpoints in a clean session (as simple gateways do):
a setpoint the broker acknowledges after restarting, before they have subscribed again, reaches
none of them. Such setpoints are excused from "received" if acknowledged this soon after it."""
RECOVERY_MAX_S = 20.0
"""After each fault, what was published by its end is stored within this (the ingest retries a
write at most 10 s apart)."""


@dataclass
class Fault:
    name: str
    began: float
    ended: float
    """When the fault was over (epoch s); recovery is measured from here."""


async def until(epoch_s: float) -> None:
    await asyncio.sleep(max(epoch_s - time.time(), 0.0))


async def wait_for_file(path: Path, timeout_s: float) -> None:
    """Until the file has content: the field published (and logged) its first step."""
    deadline = time.monotonic() + timeout_s
    while not path.exists() or not path.stat().st_size:
        assert time.monotonic() < deadline, f"nothing in {path} after {timeout_s} s"
        await asyncio.sleep(0.05)


async def wait_stored(stack: Stack, expected: int, timeout_s: float) -> bool:
    """Until `expected` readings are stored; False after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while await count(stack.database.url, "SELECT count(*) FROM readings") < expected:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True


async def drain(stack: Stack, published: set[Reading], timeout_s: float) -> float | None:
    """Seconds until every published reading is stored (None: not within `timeout_s`)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if not published - set(await stored_readings(stack.database.url)):
            return time.monotonic() - began
        await asyncio.sleep(1.0)
    return None


async def wait_api(stack: Stack, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=2) as client:
        while True:
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert stack.processes["api"].poll() is None, stack.tail("api")
            assert time.monotonic() < deadline, f"the API did not answer:\n{stack.tail('api')}"
            await asyncio.sleep(0.2)


def first_meter(meters: MeterIndex) -> int:
    return meters.by_name[("expo", "b05", "main")][0]


@dataclass(frozen=True)
class Sent:
    """A row of the scheduler's `setpoints` table."""

    plan: int
    site: str
    asset: str
    ts: datetime
    p_kw: float
    status: str
    acked_at: float | None
    """When the broker acknowledged it (epoch s)."""


async def setpoints(stack: Stack) -> tuple[list[Sent], list[dict[str, Any]]]:
    """What the scheduler recorded as sent, and what the simulated devices received."""
    async with connect(stack.database.url) as conn:
        cur = await conn.execute(
            "SELECT plan_id, site_id, asset_id, ts, p_kw, status, acked_at FROM setpoints"
        )
        sent = [
            Sent(int(p), s, a, ts, float(kw), st, acked.timestamp() if acked else None)
            for p, s, a, ts, kw, st, acked in await cur.fetchall()
        ]
    received = []
    for line in (stack.root / "setpoints.jsonl").read_bytes().splitlines():
        entry = orjson.loads(line)
        body = orjson.loads(entry["payload"])
        assert entry["outcome"] is None, entry
        received.append({"topic": entry["topic"], **body})
    return sent, received


def report(polls: list[Poll], recoveries: dict[str, float | None], **figures: Any) -> None:
    """The run's figures, printed for the README (pytest -s shows them)."""
    answered = [p for p in polls if p.status]
    statuses = Counter(p.status for p in polls)
    lines = [f"{name}: {value:.1f}" if isinstance(value, float) else f"{name}: {value}"
             for name, value in figures.items()]  # fmt: skip
    lines.append(f"API polls: {len(polls)}, statuses {dict(sorted(statuses.items()))}")
    if answered:
        latencies = sorted(p.latency_s for p in answered)
        lines.append(
            f"API latency: median {latencies[len(latencies) // 2] * 1000:.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms; max 503 latency "
            f"{max((p.latency_s for p in answered if p.status == 503), default=0) * 1000:.0f} ms"
        )
    for name, seconds in recoveries.items():
        text = "never" if seconds is None else f"{seconds:.1f} s"
        lines.append(f"recovered from {name}: {text}")
    print("\n== system test under faults ==\n" + "\n".join(lines))


def lost(stack: Stack, meters: MeterIndex, missing: set[Reading], t0: float) -> str:
    """Which published readings are missing: by field, topic and second of publication."""
    where: Counter[tuple[str, str, int]] = Counter()
    for name in ("history", "live", "burst"):
        for record in stack.records(name):
            for reading in published_readings([record], meters):
                if reading in missing:
                    where[(name, record.topic, int(record.t - t0))] += 1
    return f"{len(missing)} published readings not stored: {sorted(where.items())[:40]}"


def recovery_s(
    fault: Fault,
    timeline: list[tuple[float, int]],
    samples: list[tuple[float, int | None]],
    before: int,
) -> float | None:
    """From the fault's end until everything published by then was stored (None: never seen);
    `timeline` holds (acknowledged at, readings) of each live message."""
    due = before + sum(n for t, n in timeline if t <= fault.ended)
    for t, stored in samples:
        if t >= fault.ended and stored is not None and stored >= due:
            return t - fault.ended
    return None


async def test_the_stack_loses_nothing_and_sends_nothing_twice_under_faults(stack: Stack) -> None:
    meters = await MeterIndex.load(stack.database.url)
    today = datetime.now(meters.zone).replace(hour=0, minute=0, second=0, microsecond=0)
    live_start = today - timedelta(days=2)
    began = time.monotonic()

    # history for the scheduler's forecasts, through the real path at full speed
    stack.start("ingest", "-m", "energyhub", "ingest", "--workers", "2")
    await stack.wait_for_log("ingest", " subscribed to ", count=2)
    history_steps = HISTORY_DAYS * 96
    stack.field("history", live_start - timedelta(days=HISTORY_DAYS), history_steps, step_s=900)
    assert await stack.wait_exit("history", 120) == 0, stack.tail("history")
    history = published_readings(stack.records("history"), meters)
    assert await wait_stored(stack, len(history), 60), stack.tail("ingest")
    setup_s = time.monotonic() - began

    # live: the field (meters and devices), the scheduler on its clock, the API polled
    live_steps = int(LIVE_S * SPEED / STEP_S)
    stack.field("live", live_start, live_steps, step_s=STEP_S, speed=SPEED,
                setpoint_log=stack.root / "setpoints.jsonl")  # fmt: skip
    await wait_for_file(stack.root / "live.jsonl", 60)
    t0 = time.time()
    stack.start("scheduler", "-m", "energyhub", "scheduler", "--sim-start",
                live_start.isoformat(), "--speed", str(SPEED))  # fmt: skip
    stack.start("api", "-m", "energyhub", "api")
    await wait_api(stack, 30)
    polls: list[Poll] = []
    samples: list[tuple[float, int | None]] = []
    stop = asyncio.Event()
    paths = ["/health", "/sites/b05/load?step=15m", f"/meters/{first_meter(meters)}/latest"]
    background = [
        asyncio.create_task(
            poll_api(stack.api_url, stack.api_key, paths, polls, stop, API_TIMEOUT_S)
        ),
        asyncio.create_task(monitor_stored(stack.database.url, samples, stop)),
    ]
    faults: list[Fault] = []
    restarted_after: float | None = None
    try:
        await until(t0 + KILL_AT)
        supervisor = stack.processes["ingest"].pid
        workers = children(supervisor)
        assert len(workers) == 2, f"ingest workers: {workers}\n{stack.tail('ingest')}"
        victim = workers[0]
        killed = time.time()
        os.kill(victim, signal.SIGKILL)
        faults.append(Fault("ingest worker SIGKILL", killed, killed))
        while restarted_after is None and time.time() - killed < 20:
            fresh = [p for p in children(supervisor) if p != victim]
            if len(fresh) == 2:
                restarted_after = time.time() - killed
            await asyncio.sleep(0.05)

        await until(t0 + BROKER_AT)
        down = time.time()
        stack.broker.stop()
        await asyncio.sleep(1.0)
        stack.broker.start()
        faults.append(Fault("Mosquitto restart", down, time.time()))

        await until(t0 + BURST_AT)
        burst_steps = int(BURST_S * SPEED * (BURST_FACTOR - 1) / STEP_S)
        burst_from = live_start - timedelta(days=HISTORY_DAYS + 7)
        burst_t = time.time()
        stack.field("burst", burst_from, burst_steps, step_s=STEP_S,
                    speed=SPEED * (BURST_FACTOR - 1), seed=1)  # fmt: skip
        assert await stack.wait_exit("burst", 60) == 0, stack.tail("burst")
        faults.append(Fault(f"burst at {BURST_FACTOR}x", burst_t, time.time()))

        await until(t0 + DB_AT)
        db_down = time.time()
        await stack.database.stop()
        await asyncio.sleep(DB_DOWN_S)
        await stack.database.start()
        db_up = time.time()
        faults.append(Fault(f"PostgreSQL down {DB_DOWN_S:.0f} s", db_down, db_up))

        assert await stack.wait_exit("live", LIVE_S + 60) == 0, stack.tail("live")
        stack.processes["scheduler"].send_signal(signal.SIGTERM)
        published = published_readings(stack.records("history", "live", "burst"), meters)
        acked_at = {
            reading: record.t
            for record in stack.records("live", "burst")
            for reading in published_readings([record], meters)
        }
        drained = await drain(stack, set(published), DRAIN_S)
    finally:
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)
    assert await stack.wait_exit("scheduler", 30) == 0, stack.tail("scheduler")

    # what was published, stored, sent and received; the figures first, then the verdicts
    stored = await stored_readings(stack.database.url)
    missing = set(published) - set(stored)
    timeline = [(t, 1) for t in acked_at.values()]
    sent, received = await setpoints(stack)
    report(
        setup_s=setup_s,
        history=len(history),
        published=len(published),
        stored=len(stored),
        lost=len(missing),
        worker_restarted_after_s=restarted_after,
        drained_after_live_s=drained,
        setpoints_sent=len(sent),
        setpoints_acked=sum(1 for row in sent if row.status == "acked"),
        setpoints_received=len(received),
        api_200_again_after_db_s=next(
            (p.t - db_up for p in polls if p.status == 200 and p.t >= db_up), None
        ),
        total_s=time.monotonic() - began,
        polls=polls,
        recoveries={f.name: recovery_s(f, timeline, samples, len(history)) for f in faults},
    )

    # every published reading stored exactly once
    assert max(Counter(published).values()) == 1, "the fields published a (meter, ts) twice"
    duplicates = [r for r, n in Counter((m, ts) for m, ts, _ in stored).items() if n > 1]
    assert not duplicates, f"{len(duplicates)} readings stored twice, e.g. {duplicates[:3]}"
    assert not missing, lost(stack, meters, missing, t0)
    extra = set(stored) - set(published)
    assert not extra, f"{len(extra)} stored readings never published, e.g. {sorted(extra)[:3]}"
    assert await count(stack.database.url, "SELECT count(*) FROM rejected") == 0

    # the scheduler sent no step twice; the devices got no step twice, and only what was sent
    assert len(sent) >= 10, f"too few setpoints to test anything:\n{stack.tail('scheduler')}"
    per_step = Counter((row.site, row.asset, row.ts) for row in sent)
    assert max(per_step.values()) == 1
    got = Counter((r["topic"], r["ts"]) for r in received)
    assert max(got.values()) == 1, [k for k, n in got.items() if n > 1][:3]
    rows = {(row.plan, row.asset, row.ts): row for row in sent}
    for r in received:
        key = (r["plan"], r["topic"].split("/")[3], datetime.fromisoformat(r["ts"]))
        assert key in rows and rows[key].p_kw == pytest.approx(r["p_kw"], abs=1e-3), r
    got_keys = {
        (r["plan"], r["topic"].split("/")[3], datetime.fromisoformat(r["ts"])) for r in received
    }
    listening = [r.t for r in stack.records("live")]
    broker = next(f for f in faults if f.name == "Mosquitto restart")
    unheard = [
        row
        for key, row in rows.items()
        if row.acked_at is not None
        and min(listening) <= row.acked_at <= max(listening)
        and not broker.began <= row.acked_at <= broker.ended + DEVICE_RESUBSCRIBE_S
        and key not in got_keys
    ]
    assert not unheard, f"acknowledged while the devices listened, never received: {unheard[:3]}"

    # the API answered throughout, or failed fast with 503 while the database was away
    statuses = Counter(p.status for p in polls)
    assert set(statuses) <= {200, 503}, [p for p in polls if p.status not in (200, 503)][:5]
    slow_503 = [p for p in polls if p.status == 503 and p.latency_s > FAST_503_S]
    assert not slow_503, slow_503[:5]
    outside = [p for p in polls if p.status != 200 and not db_down <= p.t <= db_up + API_GRACE_S]
    assert not outside, outside[:5]
    assert statuses[503] > 0, "the outage never showed in the API"
    for role in ("api", "ingest"):  # an outage is expected: logged in a line, no traceback
        assert "Traceback" not in stack.log(role).read_text(errors="replace"), stack.tail(role)
    for fault in faults:
        recovered = recovery_s(fault, timeline, samples, len(history))
        assert recovered is not None and recovered <= RECOVERY_MAX_S, (fault, recovered)
