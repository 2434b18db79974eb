"""Run a simulated park against a broker: publish every step, follow setpoints, pace the clock."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from energyhub.sites import SiteFile
from simulators.engine import DEFAULT_RESET_PER_STEP, Engine, SetpointBook
from simulators.errors import BrokerError
from simulators.modbus import ModbusGateways
from simulators.mqtt import Message, MqttClient, MqttUrl
from simulators.payloads import Router
from simulators.plant import build_plant
from simulators.weather import TimeGrid

Progress = Callable[[int], None]
"""Called after each step with the number of steps done."""
Pause = Callable[[], Awaitable[None]]
"""Awaited once between the fast steps and the paced ones."""
Backlog = Callable[[int], Awaitable[None]]
"""Awaited before each fast step with the messages published so far: returns once their
consumer is near enough (a broker queues only so much for a subscriber, then drops)."""
Gate = Callable[[int, int, "SimulationSummary"], Awaitable[None]]
"""Awaited before each step after the fast ones with the step, the messages published so far and
the summary so far (`setpoints_heard` counts the setpoint messages received): a co-simulation
holds a step back until its controller has acted on the steps before it."""


@dataclass(frozen=True, slots=True)
class SimulationOptions:
    site: SiteFile
    start: datetime
    duration_s: float
    step_s: float
    speed: float | None
    """Simulated seconds per wall-clock second; None publishes as fast as the broker takes it."""
    seed: int = 0
    url: MqttUrl = field(default_factory=MqttUrl)
    prefix: str = "energyhub"
    setpoint_hold_s: float = 3600.0
    reset_per_step: float = DEFAULT_RESET_PER_STEP
    fast_steps: int = 0
    """Steps published as fast as the broker takes them before `speed` applies (a history)."""
    modbus: bool = False
    """Serve meters with `modbus:` from the site's Modbus TCP gateways instead of over MQTT."""

    @property
    def steps(self) -> int:
        return max(math.ceil(self.duration_s / self.step_s - 1e-9), 1)


@dataclass
class SimulationSummary:
    steps: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    setpoints: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    setpoints_heard: int = 0
    """Setpoint messages received so far, applied or not."""
    curtailed_kwh: float = 0.0
    """PV and wind energy the parks' controllers curtailed to hold their export limit."""
    throttled_kwh: float = 0.0
    """CHP and fuel cell energy the parks' controllers turned down to hold their export limit."""

    @property
    def published(self) -> int:
        return sum(self.messages.values())


async def simulate(
    options: SimulationOptions,
    progress: Progress | None = None,
    pause: Pause | None = None,
    backlog: Backlog | None = None,
    gate: Gate | None = None,
) -> SimulationSummary:
    """Publish the whole run; setpoints received meanwhile steer the controllable assets.

    With `fast_steps`, `pause` (if given) is awaited after them, and pacing starts after it;
    `backlog` (if given) holds each fast step back until the consumer has nearly caught up;
    `gate` (if given) holds each later step back until it returns.
    """
    grid = TimeGrid(options.start, options.step_s, options.steps)
    plant = build_plant(options.site, grid, options.seed)
    book = SetpointBook(options.setpoint_hold_s)
    engine = Engine(plant, book, options.reset_per_step)
    router = Router(plant, options.prefix, skip_modbus=options.modbus)
    summary = SimulationSummary()
    client_id = f"energyhub-sim-{uuid.uuid4().hex[:12]}"
    gateways = ModbusGateways(options.site, plant) if options.modbus else None
    async with MqttClient(options.url, client_id) as client, _serving(gateways):
        await client.subscribe([router.setpoint_filter()])
        listener = asyncio.create_task(_listen(client, router, engine, book, summary))
        try:
            await client.publish_many(router.status("online"), retain=True)
            await _run_steps(
                options, client, engine, router, summary, progress, pause, backlog, gate, gateways
            )
        finally:  # also on Ctrl-C: the gateways go offline as they would on a clean stop
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, BrokerError):
                await listener
            with contextlib.suppress(BrokerError):
                await client.publish_many(router.status("offline"), retain=True)
    summary.setpoints, summary.events = book.outcomes, engine.events
    summary.curtailed_kwh, summary.throttled_kwh = plant.export_held_kwh(summary.steps)
    summary.messages["status"] = 2 * len(router.gateways)
    return summary


async def _run_steps(
    options: SimulationOptions,
    client: MqttClient,
    engine: Engine,
    router: Router,
    summary: SimulationSummary,
    progress: Progress | None,
    pause: Pause | None,
    backlog: Backlog | None,
    gate: Gate | None = None,
    gateways: ModbusGateways | None = None,
) -> None:
    started = paced_from = time.monotonic()
    per_step = {
        "frame": len(router.frames),
        "single": len(router.singles),
        "device": len(router.devices),
    }
    published = len(router.gateways)  # the gateways' "online"
    for t in range(options.steps):
        if backlog is not None and t < options.fast_steps:
            await backlog(published)
        if t == options.fast_steps and t:
            if pause is not None:
                await pause()
            paced_from = time.monotonic()
        if options.speed is not None and t >= options.fast_steps:
            due = paced_from + (t - options.fast_steps + 1) * options.step_s / options.speed
            await asyncio.sleep(max(due - time.monotonic(), 0.0))
        if gate is not None and t >= options.fast_steps:
            await gate(t, published, summary)
        ts = options.start + timedelta(seconds=t * options.step_s)
        readings = engine.step(t)
        if gateways is not None:
            gateways.update(readings)
        await client.publish_many(router.messages(readings, ts))
        published += sum(per_step.values())
        summary.steps = t + 1
        if progress is not None:
            progress(t + 1)
    summary.messages.update({kind: n * options.steps for kind, n in per_step.items()})
    summary.wall_s = time.monotonic() - started


@contextlib.asynccontextmanager
async def _serving(gateways: ModbusGateways | None) -> AsyncIterator[None]:
    if gateways is None:
        yield
        return
    async with gateways:
        yield


async def _listen(
    client: MqttClient,
    router: Router,
    engine: Engine,
    book: SetpointBook,
    summary: SimulationSummary,
) -> None:
    """Turn setpoint messages into book entries; count the ones that cannot be applied."""
    async for message in client.messages():
        summary.setpoints_heard += 1
        outcome = _accept(message, router, engine, book)
        if outcome:
            book.outcomes[outcome] += 1


def _accept(message: Message, router: Router, engine: Engine, book: SetpointBook) -> str | None:
    """Record one setpoint; return why it was ignored, or None when it was accepted."""
    parts = message.topic[len(router.prefix) + 1 :].split("/")
    if len(parts) != 4:
        return "ignored: bad topic"
    _park_id, site_id, asset_id, _ = parts
    if engine.controllable(site_id, asset_id) is None:
        return "ignored: no controllable asset"
    try:
        body = orjson.loads(message.payload)
        p_kw, ts = float(body["p_kw"]), body["ts"]
        ts_s = (
            ts / 1000.0 if isinstance(ts, int | float) else datetime.fromisoformat(ts).timestamp()
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return "ignored: bad payload"
    if not math.isfinite(p_kw):
        return "ignored: bad payload"
    limit = _import_limit_kw(body)
    if limit is None:  # the setpoint stands; the device runs it without a limit
        book.add(site_id, asset_id, ts_s, p_kw)
        return "import_limit_kw ignored: not a number >= 0"
    book.add(site_id, asset_id, ts_s, p_kw, limit)
    return None


def _import_limit_kw(body: dict[str, object]) -> float | None:
    """The payload's `import_limit_kw` (inf when absent); None when it is not a number >= 0."""
    value = body.get("import_limit_kw")
    if value is None and "import_limit_kw" not in body:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None
