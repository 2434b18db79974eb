"""Record, replay with faults, and the fault log's prediction of what the broker received."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from energyhub.sites import SiteFile
from simulators.counters import CounterLocator, reset_counters
from simulators.errors import FaultSpecError, RecordFileError
from simulators.faults import FaultSpec, expected_deliveries, plan_faults, read_fault_log, schedule
from simulators.mqtt import MqttClient
from simulators.record import Record, RecordLimits, read_records, record, write_records
from simulators.replay import ReplayOptions, replay
from simulators.simulate import SimulationOptions, simulate
from tests.simulators.conftest import BROKER, clear_status, collect

FAULTS = (
    "drop=0.05,duplicate=0.05,reorder=0.1,delay=2s,garbage=0.02,clock-skew=+300s,"
    "counter-reset=0.05,disconnect=60s"
)


def _tasmota(t: float, total: float) -> Record:
    payload = orjson.dumps({"Time": "2025-07-01T12:00:00", "ENERGY": {"Total": total, "Power": 5}})
    return Record(t, "tele/plug/SENSOR", payload)


def test_fault_spec_parses_and_rejects() -> None:
    spec = FaultSpec.parse(FAULTS)
    assert (spec.drop, spec.delay_s, spec.clock_skew_s, spec.disconnect_s) == (0.05, 2, 300, 60)
    assert spec.counter_reset == 0.05
    assert FaultSpec.parse("") == FaultSpec()
    for bad in ("drop=2", "drop", "explode=0.1", "delay=soon", "clock-skew=5", "garbage=-0.1"):
        with pytest.raises(FaultSpecError, match="--faults"):
            FaultSpec.parse(bad)
    with pytest.raises(FaultSpecError, match="--faults: clock-skew is given twice"):
        FaultSpec.parse("clock-skew=+5s,drop=0.1,CLOCK-SKEW=-5s")  # the last one was taken


def test_counter_reset_restarts_the_counter_and_shifts_later_readings() -> None:
    records = [_tasmota(i, 100.0 + i) for i in range(6)]
    offsets: dict[str, float] = {}
    totals = []
    for i, r in enumerate(records):
        payload, started = reset_counters(r.payload, r.topic, CounterLocator(), offsets, i == 2)
        assert started == (["ENERGY.Total"] if i == 2 else [])
        assert (payload is r.payload) == (i < 2)  # untouched payloads keep their bytes
        totals.append(orjson.loads(payload)["ENERGY"]["Total"])
    assert totals == [100.0, 101.0, 0.0, 1.0, 2.0, 3.0]
    log = plan_faults(records, FaultSpec(counter_reset=1.0), 1, CounterLocator())
    assert [e["fault"] for e in log] == ["counter-reset"] * 6
    assert log[0]["payload"] == records[0].payload.decode()
    sent = [orjson.loads(p)["ENERGY"]["Total"] for _, p in expected_deliveries(records, log)]
    assert sent == [0.0] * 6


def test_schedule_applies_the_log_exactly() -> None:
    records = [
        Record(float(i), f"a/{i}", f'{{"ts": {i}, "value": {i}}}'.encode()) for i in range(5)
    ]
    log: list[dict[str, object]] = [
        {"fault": "drop", "index": 0, "topic": "a/0", "payload": "x"},
        {"fault": "duplicate", "index": 1, "topic": "a/1", "payload": "x"},
        {"fault": "reorder", "index": 2, "topic": "a/2", "payload": "x", "delay_s": 1.5},
        {"fault": "garbage", "index": 3, "topic": "a/3", "payload": "x", "sent_b64": "/w=="},
    ]
    outgoing, _ = schedule(records, log)
    assert [(o.index, o.payload) for o in outgoing] == [
        (1, records[1].payload), (1, records[1].payload), (3, b"\xff"),
        (2, records[2].payload), (4, records[4].payload),
    ]  # fmt: skip


def test_clock_skew_moves_every_timestamp_format() -> None:
    records = [
        Record(0.0, "e/p/b", b'{"ts": "2025-07-01T12:00:00+08:00", "values": {"m": 1}}'),
        Record(1.0, "e/p/b/m", b'{"ts": 1751342400000, "value": 1}'),
        Record(2.0, "d/status/em:0", b'{"apower": 1, "aenergy": {"total": 5, "minute_ts": 100}}'),
    ]
    log = plan_faults(records, FaultSpec(clock_skew_s=300, skewed_topics=1.0), 0, CounterLocator())
    sent = [orjson.loads(p) for _, p in expected_deliveries(records, log)]
    assert sent[0]["ts"] == "2025-07-01T12:05:00+08:00"
    assert sent[1]["ts"] == 1751342400000 + 300_000
    assert sent[2]["aenergy"]["minute_ts"] == 400
    assert {e["fault"] for e in log} == {"clock-skew"}


def test_same_seed_same_fault_log(tmp_path: Path) -> None:
    records = [_tasmota(i, float(i)) for i in range(500)]
    spec = FaultSpec.parse(FAULTS)
    first = plan_faults(records, spec, 5, CounterLocator())
    assert first == plan_faults(records, spec, 5, CounterLocator())
    assert first != plan_faults(records, spec, 6, CounterLocator())
    path = tmp_path / "faults.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in first))
    assert read_fault_log(path) == first


@pytest.mark.slow
async def test_record_replay_round_trip_matches_the_fault_log(
    site: SiteFile, namespace: str, tmp_path: Path
) -> None:
    prefix = f"{namespace}energyhub"
    recording = tmp_path / "run.jsonl"
    options = SimulationOptions(
        site, datetime.fromisoformat("2025-07-01T08:00:00+08:00"), 1800.0, 60.0, 1800.0, 3,
        BROKER, prefix,
    )  # fmt: skip
    limits = RecordLimits(idle_s=1.0)
    recorder = asyncio.create_task(record(BROKER, [f"{namespace}#"], recording, limits))
    await asyncio.sleep(0.2)
    summary = await simulate(options)
    written = await recorder
    await clear_status(site, prefix)
    assert written == summary.published
    records = read_records(recording)
    assert [r.topic.startswith(namespace) for r in records] == [True] * written

    fault_log = tmp_path / "faults.jsonl"
    replay_options = ReplayOptions(
        BROKER, 60.0, FaultSpec.parse(FAULTS), 9, fault_log, CounterLocator(site)
    )
    async with collect([f"{namespace}#"]) as collector:
        result = await replay(records, replay_options)
        received = await collector.idle(0.5)
    await clear_status(site, prefix)
    log = read_fault_log(fault_log)
    expected = expected_deliveries(records, log)
    assert Counter((m.topic, m.payload) for m in received) == Counter(expected)
    assert result.sent == len(expected) and result.reconnects == 1
    kinds = Counter(str(e["fault"]) for e in log)
    for fault in ("drop", "duplicate", "reorder", "garbage", "clock-skew", "counter-reset"):
        assert kinds[fault] > 0, fault
    dropped = {int(e["index"]) for e in log if e["fault"] == "drop"}  # type: ignore[call-overload]
    assert len(expected) == len(records) - len(dropped) + kinds["duplicate"]


async def test_record_idles_out_only_once_traffic_has_started(
    namespace: str, tmp_path: Path
) -> None:
    """Started before what it records, a recorder waits for the first message however long the
    publisher takes to start; then a pause of `idle_s` ends it."""
    recording = tmp_path / "late.jsonl"
    limits = RecordLimits(duration_s=20.0, idle_s=0.3)
    recorder = asyncio.create_task(record(BROKER, [f"{namespace}#"], recording, limits))
    await asyncio.sleep(1.0)  # a publisher slow to start: over 3 idle periods of nothing
    assert not recorder.done()
    async with MqttClient(BROKER, f"late-{namespace.strip('/')}") as client:
        await client.publish(f"{namespace}a", b"1")
        await client.publish(f"{namespace}a", b"2")
    assert await asyncio.wait_for(recorder, 5.0) == 2
    assert [r.payload for r in read_records(recording)] == [b"1", b"2"]


async def test_a_record_file_the_disk_refuses_is_named(namespace: str) -> None:
    """Recording to a full disk (/dev/full) ended in `OSError: [Errno 28] No space left on
    device`, a traceback, when the file was closed."""
    limits = RecordLimits(count=200, duration_s=10.0)
    recorder = asyncio.create_task(record(BROKER, [f"{namespace}#"], Path("/dev/full"), limits))
    await asyncio.sleep(0.5)
    async with MqttClient(BROKER, f"full-{namespace.strip('/')}") as client:
        for i in range(200):
            await client.publish(f"{namespace}a", b"x" * 100 + str(i).encode())
    with pytest.raises(RecordFileError) as info:
        await asyncio.wait_for(recorder, 15.0)
    assert str(info.value) == "--out /dev/full: no space left on device"


async def test_a_fault_log_the_disk_refuses_is_named_with_its_option() -> None:
    """It said "/dev/full: cannot write the fault log: No space left on device"."""
    options = ReplayOptions(BROKER, None, FaultSpec.parse("drop=0.5"), 1, Path("/dev/full"))
    with pytest.raises(RecordFileError) as info:
        await replay([_tasmota(float(t), t) for t in range(100)], options)
    assert str(info.value) == "--fault-log /dev/full: no space left on device"


def test_write_and_read_records_keep_binary_payloads(tmp_path: Path) -> None:
    records = [Record(1.5, "a", b"\xff\x00"), Record(2.0, "b", b'{"x": 1}', retain=True)]
    write_records(tmp_path / "r.jsonl", records)
    assert read_records(tmp_path / "r.jsonl") == records
