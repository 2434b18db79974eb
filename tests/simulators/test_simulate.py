"""The simulator against the real Mosquitto: determinism, payload formats, setpoints."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime, timedelta

import orjson
import pytest

from energyhub.sites import SiteFile
from simulators.mqtt import MqttClient
from simulators.simulate import SimulationOptions, SimulationSummary, simulate
from tests.simulators.conftest import BROKER, clear_status, collect

START = datetime.fromisoformat("2025-07-01T12:00:00+08:00")  # a Tuesday, flat tariff period


def _options(site: SiteFile, prefix: str, **changes: object) -> SimulationOptions:
    values: dict[str, object] = {
        "site": site, "start": START, "duration_s": 3600.0, "step_s": 60.0, "speed": None,
        "seed": 11, "url": BROKER, "prefix": prefix,
    }  # fmt: skip
    values.update(changes)
    return SimulationOptions(**values)  # type: ignore[arg-type]


async def _run(
    site: SiteFile, namespace: str, **changes: object
) -> tuple[SimulationSummary, list[tuple[str, bytes]]]:
    prefix = f"{namespace}energyhub"
    async with collect([f"{namespace}#"]) as collector:
        summary = await simulate(_options(site, prefix, **changes))
        messages = await collector.idle(0.5)
    await clear_status(site, prefix)
    return summary, [(m.topic.removeprefix(namespace), m.payload) for m in messages]


async def test_same_seed_same_messages_other_seed_differs(site: SiteFile, namespace: str) -> None:
    summary, first = await _run(site, namespace)
    _, again = await _run(site, namespace + "again/")
    _, other = await _run(site, namespace + "other/", seed=12)
    assert len(first) == summary.published == 60 * (2 + 4 + 3) + 2 * 3
    assert Counter(first) == Counter(again)
    assert Counter(first) != Counter(other)


async def test_topics_and_payload_formats(site: SiteFile, namespace: str) -> None:
    _, messages = await _run(site, namespace, duration_s=120.0)
    by_topic: dict[str, list[dict[str, object]]] = {}
    for topic, payload in messages:
        if not topic.endswith("/status"):
            by_topic.setdefault(topic, []).append(orjson.loads(payload))
    frame = by_topic["energyhub/tp/office"][0]
    assert frame["ts"] == "2025-07-01T12:00:00+08:00"
    assert set(frame["values"]) == {"main", "main-kwh", "indoor", "occupancy"}  # type: ignore[arg-type]
    assert set(by_topic["energyhub/tp/tp"][0]["values"]) == {"incomer", "outdoor"}  # type: ignore[arg-type]
    soc = by_topic["energyhub/tp/office/bess-soc"][0]
    assert soc["ts"] == int(START.timestamp() * 1000)
    tasmota = by_topic["tele/plug-1/SENSOR"]
    assert tasmota[0]["Time"] == "2025-07-01T12:00:00"
    energy = [m["ENERGY"] for m in tasmota]
    assert energy[1]["Total"] > energy[0]["Total"] and energy[0]["Power"] > 0  # type: ignore[index,operator]
    em = by_topic["pro3em-1/status/em:0"][0]
    switch = by_topic["pro1pm-1/status/switch:0"][0]
    assert em["aenergy"]["total"] > 0 and em["apower"] > 0  # type: ignore[index,operator]
    assert switch["output"] is True and switch["id"] == 0


async def _set(namespace: str, plan: str, at: datetime, p_kw: float) -> None:
    async with MqttClient(BROKER, f"test-scheduler-{plan}") as client:
        payload = orjson.dumps({"plan": plan, "ts": at.isoformat(), "p_kw": p_kw})
        await client.publish(f"{namespace}energyhub/tp/office/office-bess/setpoint", payload)
        await client.publish(f"{namespace}energyhub/tp/office/no-such-asset/setpoint", payload)


async def test_battery_follows_setpoints_within_its_limits(site: SiteFile, namespace: str) -> None:
    """Charge far beyond the limits from step 20, discharge from step 50; read SOC back."""
    prefix = f"{namespace}energyhub"
    async with collect([f"{prefix}/tp/office/+"]) as collector:
        run = asyncio.create_task(simulate(_options(site, prefix, duration_s=4800.0, speed=1200.0)))
        await asyncio.wait_for(collector.arrived.wait(), 10)  # the simulator is subscribed
        await _set(namespace, "p1", START + timedelta(minutes=20), 5000.0)
        await _set(namespace, "p2", START + timedelta(minutes=50), -5000.0)
        summary = await run
        messages = await collector.idle(0.3)
    await clear_status(site, prefix)
    assert summary.setpoints == {"accepted": 2, "ignored: no controllable asset": 2}
    series: dict[str, dict[int, float]] = {"bess-soc": {}, "bess-p": {}}
    for message in messages:
        meter = message.topic.rsplit("/", 1)[1]
        if meter in series:
            body = orjson.loads(message.payload)
            series[meter][(body["ts"] - int(START.timestamp() * 1000)) // 60_000] = body["value"]
    soc, power = series["bess-soc"], series["bess-p"]
    assert sorted(soc) == list(range(80))
    assert all(soc[t] == pytest.approx(50.0, abs=0.01) for t in range(20))  # flat period: idle
    per_step = 100.0 * 0.95 / 60 / 50 * 100  # % SOC per step at 100 kW charge
    for t in range(20, 80):
        assert 10.0 - 0.01 <= soc[t] <= 90.0 + 0.01
        assert abs(soc[t] - soc[t - 1]) <= per_step * 1.16 + 0.02  # discharge loses 1/0.95
    assert soc[20] - soc[19] == pytest.approx(per_step, abs=0.02)
    assert power[20] == pytest.approx(100.0, rel=0.03)  # clipped to power_kw, 0.5 % meter noise
    assert soc[49] == pytest.approx(90.0, abs=0.01) and power[49] == pytest.approx(0.0, abs=0.01)
    assert power[50] == pytest.approx(-100.0, rel=0.03)
    assert soc[79] == pytest.approx(10.0, abs=0.01)


async def test_a_gate_holds_each_later_step_until_its_controller_has_acted(
    site: SiteFile, namespace: str
) -> None:
    """Lockstep: a setpoint sent while the gate holds step 5 steers step 5 itself."""
    prefix = f"{namespace}energyhub"
    gated: list[tuple[int, int, int]] = []

    async def gate(t: int, published: int, summary: SimulationSummary) -> None:
        gated.append((t, published, summary.setpoints_heard))
        if t == 5:
            await _set(namespace, "p1", START + timedelta(minutes=5), 5000.0)
            while summary.setpoints_heard < 2:  # noqa: ASYNC110 - the listener only counts
                await asyncio.sleep(0.01)

    async with collect([f"{prefix}/tp/office/bess-p"]) as collector:
        summary = await simulate(_options(site, prefix, duration_s=8 * 60.0, fast_steps=3), gate=gate)
        messages = await collector.idle(0.3)
    await clear_status(site, prefix)
    per_step = (summary.published - summary.messages["status"]) // summary.steps
    gateways = summary.messages["status"] // 2
    assert [(t, published) for t, published, _ in gated] == [
        (t, gateways + t * per_step) for t in range(3, 8)
    ]
    assert [heard for t, _, heard in gated if t <= 5] == [0, 0, 0]
    assert [heard for t, _, heard in gated if t > 5] == [2, 2]
    bodies = [orjson.loads(m.payload) for m in messages]
    power = {(b["ts"] - int(START.timestamp() * 1000)) // 60_000: b["value"] for b in bodies}
    assert power[4] == pytest.approx(0.0, abs=0.01)
    assert power[5] == pytest.approx(100.0, rel=0.03)  # clipped to power_kw, meter noise


async def test_fast_steps_then_one_pause_then_paced(site: SiteFile, namespace: str) -> None:
    """A history as fast as the broker takes it, one pause, then the rest at `speed` (the demo)."""
    prefix = f"{namespace}energyhub"
    stepped: list[float] = []
    paused: list[tuple[int, float]] = []

    async def pause() -> None:
        paused.append((len(stepped), time.monotonic()))
        await asyncio.sleep(0.3)

    options = _options(site, prefix, duration_s=53 * 60.0, speed=120.0, fast_steps=50)
    summary = await simulate(options, lambda _: stepped.append(time.monotonic()), pause)
    await clear_status(site, prefix)
    assert summary.steps == len(stepped) == 53
    assert [steps for steps, _ in paused] == [50]  # once, after the fast steps
    assert stepped[49] - stepped[0] < 5.0  # paced (0.5 s a step), these would take 24.5 s
    assert stepped[52] - paused[0][1] >= 0.3 + 3 * 0.5  # the pause, then 3 paced steps


async def test_backlog_holds_each_fast_step_back_with_the_count_published(
    site: SiteFile, namespace: str
) -> None:
    """The demo's flow control: awaited before every fast step, never before a paced one."""
    prefix = f"{namespace}energyhub"
    seen: list[int] = []

    async def backlog(published: int) -> None:
        seen.append(published)
        await asyncio.sleep(0.05)

    options = _options(site, prefix, duration_s=8 * 60.0, speed=600.0, fast_steps=5)
    started = time.monotonic()
    summary = await simulate(options, backlog=backlog)
    await clear_status(site, prefix)
    per_step = (summary.published - summary.messages["status"]) // summary.steps
    gateways = summary.messages["status"] // 2
    assert seen == [gateways + t * per_step for t in range(5)]
    assert time.monotonic() - started >= 5 * 0.05


async def test_a_battery_holds_the_park_s_import_under_its_setpoint_s_limit_each_step(
    site: SiteFile, namespace: str
) -> None:
    """Charge at 100 kW from step 20 under an import limit 30 kW above the park's lowest
    import without the battery: each minute the battery charges only up to the limit, or
    discharges; a limit that is not a number leaves the setpoint without one."""
    from simulators.devices import StorageState
    from simulators.plant import build_plant
    from simulators.weather import TimeGrid

    free = build_plant(site, TimeGrid(START, 60.0, 80), 11)  # the same park, battery idle
    base = free.parks[0].grid_kw
    limit = float(base[20:50].min()) + 30.0
    prefix = f"{namespace}energyhub"
    topic = f"{prefix}/tp/office/office-bess/setpoint"
    async with collect([f"{prefix}/tp/office/+"]) as collector:
        run = asyncio.create_task(simulate(_options(site, prefix, duration_s=4800.0, speed=1200.0)))
        await asyncio.wait_for(collector.arrived.wait(), 10)  # the simulator is subscribed
        async with MqttClient(BROKER, "test-scheduler-limit") as client:
            at = (START + timedelta(minutes=20)).isoformat()
            body = {"plan": 1, "ts": at, "p_kw": 100.0, "import_limit_kw": limit}
            await client.publish(topic, orjson.dumps(body))
            at = (START + timedelta(minutes=50)).isoformat()
            body = {"plan": 2, "ts": at, "p_kw": 100.0, "import_limit_kw": "high"}
            await client.publish(topic, orjson.dumps(body))
        summary = await run
        messages = await collector.idle(0.3)
    await clear_status(site, prefix)
    power: dict[int, float] = {}
    for message in messages:
        if message.topic.endswith("/bess-p"):
            body = orjson.loads(message.payload)
            power[(body["ts"] - int(START.timestamp() * 1000)) // 60_000] = body["value"]
    battery = StorageState(free.parks[0].children[0].storage["office-bess"].asset, 0.5)
    for t in range(20, 50):  # what keeps base + battery at the limit, within power and SOC
        held = battery.step(min(limit - float(base[t]), 100.0), 1 / 60)
        assert power[t] == pytest.approx(held, abs=1.0 + 0.02 * abs(held)), t
    assert min(power[t] for t in range(20, 50)) < 99.0  # the limit did cut charging
    for t in range(50, 80):  # no limit: charging as asked, within power and SOC
        assert power[t] == pytest.approx(battery.step(100.0, 1 / 60), abs=1.0), t
    assert summary.setpoints == {
        "accepted": 2, "import_limit_kw ignored: not a number >= 0": 1
    }  # fmt: skip
