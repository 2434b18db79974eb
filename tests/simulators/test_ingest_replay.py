"""Replay with faults through the real broker into `energyhub ingest`: the database holds exactly
what the fault log predicts (dropped readings absent, duplicates once, garbage in `rejected`)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from energyhub.sites import SiteFile, parse_site
from energyhub.store.db import connect
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from simulators.counters import CounterLocator
from simulators.faults import FaultSpec, expected_deliveries, read_fault_log
from simulators.payloads import device_topic
from simulators.record import RecordLimits, read_records, record
from simulators.replay import ReplayOptions, replay
from simulators.simulate import SimulationOptions, simulate
from tests.ingest.conftest import ingest_settings, running_worker, scalar, wait_for
from tests.simulators.conftest import BROKER, SITE_FILE, clear_status, collect, energyhub_command

FAULTS = "drop=0.05,duplicate=0.05,reorder=0.1,garbage=0.03,clock-skew=+330s,counter-reset=0.02"
"""A skew that is no whole number of steps, so a skewed reading never lands on another's key."""

Key = tuple[str, str, datetime]


def unique_devices_text(prefix: str) -> str:
    """The test site file with device names of this test alone (device topics have no prefix)."""
    text = SITE_FILE.read_text()
    for device in ("plug-1", "pro3em-1", "pro1pm-1"):
        text = text.replace(f"device: {device}", f"device: {device}-{prefix}")
    return text


def unique_devices(prefix: str) -> SiteFile:
    return parse_site(yaml.safe_load(unique_devices_text(prefix)))


def _meters(site: SiteFile) -> tuple[dict[str, tuple[str, str, str]], dict[tuple[str, str], str]]:
    """Device topic → (site, meter, quantity); (site, meter) → quantity."""
    devices, quantities = {}, {}
    for _, owner in site.metered_sites():
        for meter in owner.meters:
            quantities[(owner.id, meter.id)] = meter.quantity
            if meter.device is not None:
                devices[device_topic(meter.device)] = (owner.id, meter.id, meter.quantity)
    return devices, quantities


def _readings(topic: str, body: Any, prefix: str, site: SiteFile) -> list[tuple[Key, float]]:
    """What the ingest stores for one well-formed message of the simulator's formats."""
    devices, _ = _meters(site)
    parts = topic.split("/")
    if parts[0] == prefix and len(parts) == 3:
        ts = datetime.fromisoformat(body["ts"])
        return [((parts[2], m, ts), float(v)) for m, v in body["values"].items()]
    if parts[0] == prefix and len(parts) == 4:
        return [
            ((parts[2], parts[3], datetime.fromtimestamp(body["ts"] / 1000, UTC)), body["value"])
        ]
    if topic not in devices:
        return []
    site_id, meter, quantity = devices[topic]
    if topic.startswith("tele/"):
        ts = datetime.fromisoformat(body["Time"]).replace(tzinfo=site.tz)
        value = body["ENERGY"]["Total" if quantity == "energy_kwh" else "Power"]
        return [((site_id, meter, ts), value if quantity == "energy_kwh" else value / 1000.0)]
    ts = datetime.fromtimestamp(body["aenergy"]["minute_ts"], UTC)
    value = body["aenergy"]["total"] if quantity == "energy_kwh" else body["apower"]
    return [((site_id, meter, ts), value / 1000.0)]


def predict(
    deliveries: list[tuple[str, bytes]], prefix: str, site: SiteFile
) -> tuple[dict[Key, float], int]:
    """Rows the readings table must hold, and how many messages must land in `rejected`."""
    rows: dict[Key, float] = {}
    rejected = 0
    for topic, payload in deliveries:
        if topic.endswith("/status"):
            continue  # gateway availability: the ingest ignores it, whatever it holds
        try:
            body = orjson.loads(payload)
            found = _readings(topic, body, prefix, site)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
            rejected += 1
            continue
        for key, value in found:
            rows.setdefault(key, value)
    return rows, rejected


async def _database(pg_url: str, site: SiteFile) -> None:
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, site)


async def _stored(pg_url: str) -> dict[Key, float]:
    query = (
        "SELECT m.site_id, m.name, r.ts, r.value FROM readings r JOIN meters m ON m.id = r.meter_id"
    )
    async with connect(pg_url) as conn:
        rows = await (await conn.execute(query)).fetchall()
    return {(s, m, ts): value for s, m, ts, value in rows}


@pytest.mark.slow
async def test_replay_with_faults_into_ingest_matches_the_fault_log(
    pg_url: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    site = unique_devices(prefix)
    await _database(pg_url, site)
    start = datetime.now(site.tz).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    filters = [f"{prefix}/#", *_meters(site)[0]]
    recording = tmp_path / "run.jsonl"
    recorder = asyncio.create_task(record(BROKER, filters, recording, RecordLimits(idle_s=1.0)))
    await asyncio.sleep(0.2)
    options = SimulationOptions(site, start, 40 * 60.0, 60.0, None, 21, BROKER, prefix)
    await simulate(options)
    await recorder
    await clear_status(site, prefix)
    records = read_records(recording)

    fault_log = tmp_path / "faults.jsonl"
    spec = FaultSpec.parse(FAULTS)
    async with running_worker(ingest_settings(pg_url, prefix)):
        await replay(records, ReplayOptions(BROKER, None, spec, 4, fault_log, CounterLocator(site)))
        log = read_fault_log(fault_log)
        expected, garbage = predict(expected_deliveries(records, log), prefix, site)
        await wait_for(pg_url, "SELECT count(*) FROM readings", len(expected), timeout_s=60)
        await wait_for(pg_url, "SELECT count(*) FROM rejected", garbage, timeout_s=30)
        await asyncio.sleep(0.5)  # nothing more may arrive
    stored = await _stored(pg_url)
    assert set(stored) == set(expected)
    assert all(stored[key] == pytest.approx(expected[key], abs=1e-9) for key in expected)
    dropped = [e for e in log if e["fault"] == "drop" and not str(e["topic"]).endswith("/status")]
    assert dropped and garbage > 0
    async with connect(pg_url) as conn:
        count = await (await conn.execute("SELECT count(*) FROM rejected")).fetchone()
    assert count is not None and count[0] == garbage


@pytest.mark.slow
async def test_simulate_takes_a_start_only_when_the_ingest_takes_its_readings(
    pg_url: str, tmp_path: Path
) -> None:
    """`simulate --start` took any start before 2200 and published readings the ingest refused
    as `future` (more than ENERGYHUB_INGEST_MAX_FUTURE_SKEW_S, 300 s, ahead of their arrival).
    It now holds the start to the ingest's own rule: a run the ingest takes every reading of
    runs, a start 10 minutes ahead is refused by name and publishes nothing."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    site = unique_devices(prefix)
    site_file = tmp_path / "site.yaml"
    site_file.write_text(unique_devices_text(prefix))
    await _database(pg_url, site)
    run = ["--site", str(site_file), "--only", "lab", "--prefix", prefix,
           "--duration", "2min", "--step", "1min", "--speed", "max"]  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0)
    taken, refused = (now + timedelta(seconds=s) for s in (120, 600))
    async with running_worker(ingest_settings(pg_url, prefix)):
        async with collect([f"{prefix}/#"]) as collector:
            code, output = await energyhub_command("simulate", *run, "--start", taken.isoformat())
            assert code == 0, output
            code, output = await energyhub_command("simulate", *run, "--start", refused.isoformat())
            received = await collector.idle(0.5)
        expected, garbage = predict([(m.topic, m.payload) for m in received], prefix, site)
        await wait_for(pg_url, "SELECT count(*) FROM readings", len(expected), timeout_s=60)
        await asyncio.sleep(0.5)  # nothing more may arrive
    await clear_status(site, prefix)
    assert code == 2, output
    message = " ".join(output.split())
    assert "--start: the run's readings would be stamped more than 300 s after" in message
    assert message.endswith(f"got '{refused.isoformat()}'"), message
    assert expected and garbage == 0
    assert {ts for _, _, ts in expected} == {taken, taken + timedelta(minutes=1)}
    assert set(await _stored(pg_url)) == set(expected)
    assert await scalar(pg_url, "SELECT count(*) FROM rejected") == 0


@pytest.mark.slow
async def test_replay_takes_a_feed_start_only_when_the_ingest_takes_its_readings(
    pg_url: str, site: SiteFile
) -> None:
    """`replay --feed --start` published the feed wherever the start put it, and the ingest
    refused every reading stamped more than ENERGYHUB_INGEST_MAX_FUTURE_SKEW_S (300 s) ahead of
    its arrival as `future`. It now holds the start to the ingest's rule as `simulate` does: a
    replay the ingest takes every reading of goes in whole, one whose readings lie ahead is
    refused by name and publishes nothing."""
    pytest.importorskip("demandlib")  # the bdew feed's package: the optional `feeds` extra
    prefix = f"t{uuid.uuid4().hex[:10]}"
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
    now = datetime.now(UTC)
    quarter = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    taken, refused = quarter - timedelta(minutes=15), quarter + timedelta(minutes=30)
    run = ["replay", "--site", str(SITE_FILE), "--feed", "lab/main=bdew:g25:876000",
           "--prefix", prefix, "--duration", "30min", "--speed", "max"]  # fmt: skip
    async with running_worker(ingest_settings(pg_url, prefix)):
        code, output = await energyhub_command(*run, "--start", taken.isoformat())
        assert code == 0, output
        await wait_for(pg_url, "SELECT count(*) FROM readings", 2, timeout_s=60)
        code, output = await energyhub_command(*run, "--start", refused.isoformat())
        await asyncio.sleep(0.5)  # nothing more may arrive
    assert code == 2, output
    message = " ".join(output.split())
    assert "--start: the replay's readings would be stamped more than 300 s after" in message
    assert message.endswith(f"got '{refused.isoformat()}'"), message
    assert {ts for _, _, ts in await _stored(pg_url)} == {taken, quarter}
    assert await scalar(pg_url, "SELECT count(*) FROM rejected") == 0
