"""Benchmark: `energyhub simulate --speed max` against `mosquitto_pub -l`, same broker, same run.

A 100-building park, 24 h at 1-min steps. First the simulator publishes it (QoS 1) and its
messages/s are measured (wall time of the whole run, plant build included); then the very same
payloads, generated offline from the same seed, are piped into `mosquitto_pub -q 1 -l` and its
acknowledged messages/s are measured. `mosquitto_pub -l` takes one topic, so its messages all go
to one topic of typical length.
A `mosquitto_sub -q 1` subscribes to each run's topics: broker drops are the acknowledged
messages it did not receive (Mosquitto drops QoS 1 messages for a subscriber whose queue is full).

    .venv/bin/python bench/simulate.py [--buildings 100] [--hours 24] [--no-subscriber]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from energyhub.sites import SiteFile, parse_site
from simulators.engine import Engine, SetpointBook
from simulators.mqtt import MqttClient, MqttUrl
from simulators.payloads import Router
from simulators.plant import build_plant
from simulators.simulate import SimulationOptions, simulate
from simulators.weather import TimeGrid

CLASSES = ("office-A", "office-B", "lab", "data-center", "hotel", "retail")
START = datetime.fromisoformat("2025-07-01T00:00:00+08:00")


def park_site(buildings: int) -> SiteFile:
    """A park of `buildings` buildings of every class; every fourth has PV and a battery."""
    rows = []
    for i in range(buildings):
        bid = f"b{i:03d}"
        meters = [
            {"id": "main", "carrier": "electricity", "quantity": "power_kw"},
            {"id": "main-kwh", "carrier": "electricity", "quantity": "energy_kwh"},
            {"id": "cooling", "carrier": "cooling", "quantity": "energy_kwh"},
            {"id": "indoor", "carrier": "none", "quantity": "temperature_c"},
            {"id": "occupancy", "carrier": "none", "quantity": "occupancy"},
        ]
        assets: list[dict[str, object]] = [
            {"id": f"{bid}-chiller", "type": "electric_chiller", "cooling_max_kw": 2000, "cop": 5}
        ]
        if i % 4 == 0:
            meters += [
                {"id": "pv", "carrier": "pv", "quantity": "power_kw", "asset": f"{bid}-pv"},
                {"id": "soc", "carrier": "none", "quantity": "soc_pct", "asset": f"{bid}-bess"},
            ]
            assets += [
                {"id": f"{bid}-pv", "type": "pv", "peak_kw": 300},
                {"id": f"{bid}-bess", "type": "battery", "energy_kwh": 800, "power_kw": 400},
            ]
        if i % 10 == 0:
            device = {"format": "tasmota", "device": f"plug-{bid}"}
            meters.append(
                {"id": "plug", "carrier": "electricity", "quantity": "energy_kwh",
                 "submeter_of": "main", "device": device}
            )  # fmt: skip
        rows.append({"id": bid, "class": CLASSES[i % len(CLASSES)], "floor_area_m2": 20000,
                     "meters": meters, "assets": assets})  # fmt: skip
    park = {"id": "bench", "grid": {"import_max_kw": 200000}, "buildings": rows}
    return parse_site({"version": 1, "city": {"id": "city", "parks": [park]}})


def offline_messages(site: SiteFile, hours: float, seed: int) -> list[tuple[str, bytes]]:
    """What the simulator publishes for this run, generated without a broker."""
    grid = TimeGrid(START, 60.0, int(hours * 60))
    plant = build_plant(site, grid, seed)
    engine, router = Engine(plant, SetpointBook(3600.0), 1e-5), Router(plant, "energyhub")
    messages = router.status("online")
    for t in range(grid.steps):
        messages += router.messages(engine.step(t), START + timedelta(seconds=60.0 * t))
    return messages + router.status("offline")


@contextmanager
def subscriber(url: MqttUrl, topic_filter: str, on: bool) -> Iterator[Callable[[], int | None]]:
    """A `mosquitto_sub -q 1` on the run's topics; yields a function counting what it received."""
    if not on:
        yield lambda: None
        return
    with tempfile.TemporaryFile() as out:
        command = ["mosquitto_sub", "-h", url.host, "-p", str(url.port), "-q", "1",
                   "-t", topic_filter]  # fmt: skip
        process = subprocess.Popen(command, stdout=out)
        time.sleep(0.5)  # subscribed before the first publish

        def count() -> int:
            time.sleep(1.0)  # let the last messages through
            process.terminate()
            process.wait()
            out.seek(0)
            return out.read().count(b"\n")  # one line per message: payloads hold no newline

        try:
            yield count
        finally:
            if process.poll() is None:
                process.kill()


def mosquitto_pub_rate(url: MqttUrl, payloads: list[bytes], topic: str) -> tuple[float, int, int]:
    """Acknowledged messages/s of `mosquitto_pub -q 1 -l`, how many it sent, how many were acked.

    In line mode mosquitto_pub 2.0 skips input lines while its in-flight window is full, so only
    the PUBACKs it received (counted from its `-d` output) are messages it surely published.
    """
    with tempfile.NamedTemporaryFile("wb", suffix=".lines") as lines:
        lines.write(b"\n".join(payloads) + b"\n")
        lines.flush()
        command = ["mosquitto_pub", "-d", "-h", url.host, "-p", str(url.port), "-q", "1",
                   "-t", topic, "-l"]  # fmt: skip
        with Path(lines.name).open("rb") as stdin:
            started = time.perf_counter()
            done = subprocess.run(command, stdin=stdin, check=True, capture_output=True)
            elapsed = time.perf_counter() - started
    acked = done.stdout.count(b"received PUBACK")
    return acked / elapsed, done.stdout.count(b"sending PUBLISH"), acked


async def main(args: argparse.Namespace) -> None:
    url = MqttUrl.parse(args.mqtt_url)
    site = park_site(args.buildings)
    messages = offline_messages(site, args.hours, args.seed)
    print(
        f"{args.buildings} buildings, {args.hours:g} h at 1-min steps: {len(messages):,} messages"
    )
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    options = SimulationOptions(
        site, START, args.hours * 3600, 60.0, None, args.seed, url, f"{namespace}/energyhub"
    )
    with subscriber(url, f"{namespace}/#", args.subscriber) as received:
        started = time.perf_counter()
        summary = await simulate(options)
        wall = time.perf_counter() - started
        sim_received = received()
    assert summary.published == len(messages), (summary.published, len(messages))
    topic = f"{namespace}/mosquitto_pub"
    with subscriber(url, topic, args.subscriber) as received:
        pub_rate, pub_sent, pub_acked = mosquitto_pub_rate(url, [p for _, p in messages], topic)
        pub_received = received()
    status = [f"{namespace}/energyhub/bench/{o.id}/status" for _, o in site.metered_sites()]
    async with MqttClient(url, f"bench-clear-{uuid.uuid4().hex[:8]}") as client:
        await client.publish_many(((t, b"") for t in status), retain=True)
    sim_rate = summary.published / wall
    print(f"energyhub simulate --speed max: {sim_rate:,.0f} msg/s acknowledged "
          f"({summary.published:,} in {wall:.2f} s, plant build included; "
          f"publishing alone {summary.published / summary.wall_s:,.0f} msg/s)")  # fmt: skip
    print(f"mosquitto_pub -q 1 -l:          {pub_rate:,.0f} msg/s acknowledged "
          f"({pub_acked:,} of the {len(messages):,} lines it was given)")  # fmt: skip
    print(f"ratio: {sim_rate / pub_rate:.2f}x (target >= 0.5x)")
    if sim_received is not None and pub_received is not None:
        print(f"broker drops to a mosquitto_sub subscriber: simulate "
              f"{summary.published - sim_received:,}, mosquitto_pub "
              f"{pub_sent - pub_received:,} (of {pub_sent:,} it sent)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    parser.add_argument(
        "--subscriber",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="attach a mosquitto_sub to each run and count the messages the broker dropped",
    )
    asyncio.run(main(parser.parse_args()))
