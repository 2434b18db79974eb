"""Field-protocol benchmark: Modbus registers/s of one poller, Sparkplug frames against our own.

    .venv/bin/python bench/field.py [--gateways 20] [--units 5] [--seconds 10] [--frames 20000]

(a) Modbus: `--gateways` simulated Modbus TCP gateways (pymodbus servers, the simulator's
    `GatewayServer`, in a child process so the poller's process is alone), each with `--units`
    Eastron SDM630 meters of 7 points (4 requests, 18 registers per meter and poll). One
    `GatewayPoller` per gateway in this process polls every 0.1 s for `--seconds` and publishes its
    frames to the local Mosquitto (a unique prefix nobody reads); registers read per second
    (target ≥ 2,000). Baseline in the same process: a bare pymodbus client per gateway reading the
    same blocks back to back, nothing else (the protocol's ceiling here); the ratio says what the
    poller's scheduling, decoding and publishing cost.
(b) Sparkplug: the ingest's Decoder on `--frames` Sparkplug DDATA frames of 10 aliased metrics
    against the same number of the contract's JSON gateway frames of the same 10 meters
    (target ≥ 0.5×); decoding is the only step where the two differ (broker, validation and COPY
    are shared).

Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.synchronize
import time
import uuid
from datetime import UTC, datetime

import orjson
from pymodbus.client import AsyncModbusTcpClient

from energyhub.config import Settings
from energyhub.ingest.decoders import Decoder
from energyhub.ingest.mapping import MeterMap, MeterRef, SparkplugRef
from energyhub.ingest.message import BatchBuilder, Delivery
from energyhub.ingest.sparkplug.payload import DataType, encode_frame
from energyhub.modbus.maps import map_point, register_maps
from energyhub.modbus.poller import Events, GatewayPoller, PollerMetrics, schedule
from energyhub.modbus.registers import Point
from energyhub.modbus.service import FramePublisher
from energyhub.modbus.store import Gateway, PolledMeter
from energyhub.sites import ModbusGateway
from energyhub.store.embedded import free_port
from simulators.modbus import GatewayServer

MAP = "eastron-sdm630"
INTERVAL_S = 0.1


def sdm630_points() -> list[tuple[str, Point]]:
    """Every point of the map: power and energy scaled into kW and kWh, the rest read raw."""
    quantities = {"W": "power_kw", "kWh": "energy_kwh"}
    points = []
    for name, p in register_maps()[MAP].points.items():
        quantity = quantities.get(p.unit)
        points.append((name, map_point(MAP, name, quantity) if quantity else Point(p.address)))
    return points


def gateways(ports: list[int], units: int) -> list[Gateway]:
    out = []
    for g, port in enumerate(ports):
        meters = tuple(
            PolledMeter("bench", f"b{g}", f"u{unit}-{name}", unit, INTERVAL_S, point)
            for unit in range(1, units + 1)
            for name, point in sdm630_points()
        )
        out.append(Gateway(f"gw{g}", "bench", "127.0.0.1", port, 1.0, meters))
    return out


def _serve(ports: list[int], units: int, ready: multiprocessing.synchronize.Event) -> None:
    async def main() -> None:
        servers = []
        for port in ports:
            gw = ModbusGateway(
                id=f"gw{port}", host="127.0.0.1", port=port, units=list(range(1, units + 1))
            )
            server = GatewayServer(gw, images={u: [u] * 344 for u in range(1, units + 1)})
            await server.start()
            servers.append(server)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def bare_rate(plan: list[Gateway], seconds: float) -> float:
    """Registers/s of bare pymodbus clients reading each gateway's blocks back to back."""
    read = 0

    async def one(g: Gateway, stop_at: float) -> None:
        nonlocal read
        blocks = [b for _, bs in schedule(g) for b in bs]
        client = AsyncModbusTcpClient(g.host, port=g.port, timeout=1.0, retries=0)
        await client.connect()
        try:
            while time.monotonic() < stop_at:
                for b in blocks:
                    r = await client.read_input_registers(
                        b.address, count=b.count, device_id=b.unit
                    )
                    read += len(r.registers)
        finally:
            client.close()

    started = time.monotonic()
    await asyncio.gather(*(one(g, started + seconds) for g in plan))
    return read / (time.monotonic() - started)


async def poller_rate(plan: list[Gateway], seconds: float, mqtt_url: str) -> tuple[float, int]:
    settings = Settings(mqtt_url=mqtt_url, mqtt_topic_prefix=f"bench{uuid.uuid4().hex[:8]}")
    metrics = PollerMetrics()
    stop = asyncio.Event()
    async with FramePublisher(settings, f"bench-modbus-{uuid.uuid4().hex[:6]}") as publisher:
        pollers = [GatewayPoller(g, publisher.publish, Events(), metrics) for g in plan]
        started = time.monotonic()
        tasks = [asyncio.create_task(p.run(stop)) for p in pollers]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        return sum(p.registers_read for p in pollers) / elapsed, publisher.published


def sparkplug_ratio(frames: int) -> tuple[float, float]:
    meters = [f"m{i}" for i in range(10)]
    mapping = MeterMap(timezone="Asia/Shanghai")
    for i, name in enumerate(meters):
        ref = MeterRef(i + 1, "power_kw")
        mapping.by_topic[("expo", "b01", name)] = ref
        mapping.by_sparkplug.setdefault(("g", "n", "d"), {})[name] = SparkplugRef(ref, 1.0)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    json_frames = [
        (
            "energyhub/expo/b01",
            orjson.dumps(
                {
                    "ts": datetime.fromtimestamp(now_ms / 1000 + i, UTC).isoformat(),
                    "values": {m: float(i + k) for k, m in enumerate(meters)},
                }
            ),
        )
        for i in range(frames)
    ]
    birth = [
        (
            "spBv1.0/g/NBIRTH/n",
            encode_frame([{"name": "bdSeq", "datatype": DataType.INT64, "value": 0}], 0, now_ms),
        ),
        (
            "spBv1.0/g/DBIRTH/n/d",
            encode_frame(
                [
                    {"name": m, "alias": k, "datatype": DataType.DOUBLE, "value": 0.0}
                    for k, m in enumerate(meters)
                ],
                1,
                now_ms,
            ),
        ),
    ]
    spb_frames = [
        (
            "spBv1.0/g/DDATA/n/d",
            encode_frame(
                [
                    {
                        "alias": k,
                        "datatype": DataType.DOUBLE,
                        "value": float(i + k),
                        "timestamp": now_ms + 1000 * i,
                    }
                    for k in range(len(meters))
                ],
                (i + 2) % 256,
                now_ms + 1000 * i,
            ),
        )
        for i in range(frames)
    ]

    def rate(messages: list[tuple[str, bytes]], warm: list[tuple[str, bytes]]) -> float:
        decoder = Decoder(mapping, "energyhub", 1 << 20)
        if warm:
            decoder.decode(_delivery(warm), BatchBuilder())
        out = BatchBuilder()
        started = time.perf_counter()
        for chunk in range(0, len(messages), 500):
            decoder.decode(_delivery(messages[chunk : chunk + 500]), out)
        elapsed = time.perf_counter() - started
        assert out.rows == 10 * len(messages) and not out.rejects, out.rejects[:3]
        return len(messages) / elapsed

    return rate(json_frames, []), rate(spb_frames, birth)


def _delivery(messages: list[tuple[str, bytes]]) -> Delivery:
    now_us = time.time_ns() // 1000
    return Delivery(
        [t for t, _ in messages], [p for _, p in messages], [now_us] * len(messages), b"", 0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=20)
    parser.add_argument("--units", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    args = parser.parse_args()

    ports = [free_port() for _ in range(args.gateways)]
    ready = multiprocessing.Event()
    child = multiprocessing.Process(target=_serve, args=(ports, args.units, ready), daemon=True)
    child.start()
    if not ready.wait(60):
        raise SystemExit("the simulated gateways did not start within 60 s")
    try:
        plan = gateways(ports, args.units)
        demand = sum(b.count for g in plan for _, bs in schedule(g) for b in bs) / INTERVAL_S
        print(
            f"(a) Modbus: {args.gateways} gateways × {args.units} SDM630 meters, every {INTERVAL_S} s "
            f"(asks {demand:,.0f} registers/s), {args.seconds:.0f} s each"
        )
        bare = asyncio.run(bare_rate(plan, args.seconds))
        polled, frames = asyncio.run(poller_rate(plan, args.seconds, args.mqtt_url))
        print(f"    bare pymodbus clients, back to back: {bare:,.0f} registers/s")
        print(
            f"    energyhub poller (schedule, decode, {frames:,} MQTT frames): {polled:,.0f} registers/s "
            f"= {polled / bare:.2f}× bare; target ≥ 2,000: {'met' if polled >= 2000 else 'NOT met'}"
        )
    finally:
        child.terminate()
        child.join(10)

    json_rate, spb_rate = sparkplug_ratio(args.frames)
    print(
        f"(b) decode, {args.frames:,} frames of 10 metrics: JSON gateway frames {json_rate:,.0f}/s, "
        f"Sparkplug DDATA {spb_rate:,.0f}/s = {spb_rate / json_rate:.2f}× (target ≥ 0.5×)"
    )


if __name__ == "__main__":
    main()
