"""Republish a record file with faults injected, paced by the recorded receive times."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import orjson

from energyhub.userfiles import cannot_write
from simulators.counters import CounterLocator
from simulators.errors import RecordFileError
from simulators.faults import Disconnect, FaultSpec, Outgoing, plan_faults, schedule
from simulators.mqtt import MqttClient, MqttUrl
from simulators.record import Record

BATCH = 1000
"""Most messages handed to the client at once."""
PACING_SLACK_S = 0.005
"""Messages due within this much of wall time go out together."""


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    url: MqttUrl = field(default_factory=MqttUrl)
    speed: float | None = 1.0
    """Recorded seconds per wall-clock second; None sends as fast as the broker takes it."""
    faults: FaultSpec = field(default_factory=FaultSpec)
    seed: int = 0
    fault_log: Path | None = None
    counters: CounterLocator = field(default_factory=CounterLocator)


@dataclass
class ReplaySummary:
    records: int = 0
    sent: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    wall_s: float = 0.0


async def replay(
    records: list[Record], options: ReplayOptions, progress: Callable[[int], None] | None = None
) -> ReplaySummary:
    """Plan the faults, write the fault log, then send the schedule the log implies."""
    log = plan_faults(records, options.faults, options.seed, options.counters)
    if options.fault_log is not None:
        try:
            with options.fault_log.open("wb") as out:
                out.writelines(orjson.dumps(entry) + b"\n" for entry in log)
        except OSError as exc:
            raise RecordFileError(cannot_write("--fault-log", options.fault_log, exc)) from None
    outgoing, disconnects = schedule(records, log)
    summary = ReplaySummary(records=len(records))
    summary.faults.update(str(entry["fault"]) for entry in log)
    started = time.monotonic()
    await _send(outgoing, disconnects, options, summary, progress)
    summary.wall_s = time.monotonic() - started
    return summary


async def _send(
    outgoing: list[Outgoing],
    disconnects: list[Disconnect],
    options: ReplayOptions,
    summary: ReplaySummary,
    progress: Callable[[int], None] | None,
) -> None:
    pending = sorted(disconnects, key=lambda gap: gap.t)
    clock = _Clock(outgoing[0].t if outgoing else 0.0, options.speed)
    i = 0
    while i < len(outgoing):
        client_id = f"energyhub-replay-{uuid.uuid4().hex[:12]}"
        async with MqttClient(options.url, client_id) as client:
            while i < len(outgoing) and not (pending and outgoing[i].t >= pending[0].t):
                await clock.wait_until(outgoing[i].t)
                end = _batch_end(outgoing, i, clock, pending[0].t if pending else None)
                for retain, group in groupby(outgoing[i:end], key=lambda o: o.retain):
                    await client.publish_many(((o.topic, o.payload) for o in group), retain=retain)
                summary.sent += end - i
                i = end
                if progress is not None:
                    progress(i)
        if i < len(outgoing):
            pending.pop(0)
            summary.reconnects += 1
            await clock.wait_until(outgoing[i].t)


def _batch_end(outgoing: list[Outgoing], i: int, clock: _Clock, gap_t: float | None) -> int:
    end = i + 1
    while (
        end < len(outgoing)
        and end - i < BATCH
        and clock.due(outgoing[end].t)
        and (gap_t is None or outgoing[end].t < gap_t)
    ):
        end += 1
    return end


class _Clock:
    """Maps recorded time to wall time at the replay speed."""

    def __init__(self, first_t: float, speed: float | None) -> None:
        self.first_t, self.speed, self.started = first_t, speed, time.monotonic()

    def wall(self, t: float) -> float:
        return self.started + (t - self.first_t) / self.speed if self.speed else self.started

    def due(self, t: float) -> bool:
        return self.wall(t) <= time.monotonic() + PACING_SLACK_S

    async def wait_until(self, t: float) -> None:
        delay = self.wall(t) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
