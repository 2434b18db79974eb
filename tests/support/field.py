"""A simulated field for system tests: a park's meters published step by step, its devices
following setpoints, and a record log of every message the broker acknowledged.

It is the simulators' plant, engine and router (what `energyhub simulate` publishes), with what
`simulate` lacks for a fault test: it outlives a broker restart. A step is published, then
flushed (every PUBACK in); a step cut off by a lost connection is published again, whole, on a
new one (the ingest stores a reading once however often it comes). Only a step the broker
acknowledged goes into the record log (`simulators.record` JSON Lines), so the log is what was
published. With `--setpoint-log`, the field subscribes to setpoints as `simulate` does, applies
them to its devices and logs each one received.

    python -m tests.support.field --site S --url mqtt://127.0.0.1:P --start 2025-07-01T00:00+08:00
        --step-s 60 --steps 500 --speed 300 --log published.jsonl [--setpoint-log received.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import orjson

from energyhub.sites import load_site
from simulators.engine import Engine, SetpointBook
from simulators.errors import BrokerError
from simulators.mqtt import MqttClient, MqttUrl
from simulators.payloads import Router
from simulators.plant import build_plant
from simulators.record import Record
from simulators.simulate import _accept
from simulators.weather import TimeGrid

RETRY_S = 0.2
"""Pause between connection attempts while the broker is away."""
FLUSH_S = 20.0
"""A step whose PUBACKs take longer than this is published again on a new connection."""


class Link:
    """One MQTT connection at a time, replaced whenever the broker goes away."""

    def __init__(self, url: MqttUrl, router: Router, engine: Engine, received: IO[bytes] | None):
        self.url, self.router, self.engine, self.received = url, router, engine, received
        self.book = engine.book
        self.reconnects = 0
        self._stack: AsyncExitStack | None = None
        self._client: MqttClient | None = None
        self._listener: asyncio.Task[None] | None = None

    async def publish(self, messages: list[tuple[str, bytes]]) -> None:
        """Return once the broker acknowledged every message (on whichever connection)."""
        while True:
            try:
                client = await self._connected()
                await client.publish_many(messages)
                await client.flush(FLUSH_S)
                return
            except BrokerError as exc:
                await self.close(exc)
                self.reconnects += 1
                await asyncio.sleep(RETRY_S)

    async def _connected(self) -> MqttClient:
        if self._client is not None:
            return self._client
        stack = AsyncExitStack()
        client_id = f"system-field-{uuid.uuid4().hex[:10]}"
        try:
            client = await stack.enter_async_context(MqttClient(self.url, client_id))
            if self.received is not None:
                await client.subscribe([self.router.setpoint_filter()])
                self._listener = asyncio.create_task(self._listen(client))
        except BaseException as exc:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack, self._client = stack, client
        return client

    async def _listen(self, client: MqttClient) -> None:
        """Apply and log every setpoint until this connection ends."""
        assert self.received is not None
        with contextlib.suppress(BrokerError):
            async for message in client.messages():
                line = {"t": time.time(), "topic": message.topic}
                line["payload"] = message.payload.decode(errors="replace")
                line["outcome"] = _accept(message, self.router, self.engine, self.book)
                self.received.write(orjson.dumps(line) + b"\n")
                self.received.flush()

    async def close(self, exc: BaseException | None = None) -> None:
        """Drop the connection (without waiting for PUBACKs when it failed)."""
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        stack, self._stack, self._client, self._listener = self._stack, None, None, None
        if stack is not None:
            with contextlib.suppress(BrokerError, OSError):
                await stack.__aexit__(type(exc) if exc else None, exc, None)


async def run(args: argparse.Namespace, log: IO[bytes], received: IO[bytes] | None) -> None:
    site = load_site(args.site)
    start = datetime.fromisoformat(args.start)
    plant = build_plant(site, TimeGrid(start, args.step_s, args.steps), args.seed)
    engine = Engine(plant, SetpointBook(3600.0), 0.0)
    router = Router(plant, args.prefix)
    link = Link(MqttUrl.parse(args.url), router, engine, received)
    began = time.monotonic()
    try:
        for t in range(args.steps):
            if args.speed:
                due = began + t * args.step_s / args.speed
                await asyncio.sleep(max(due - time.monotonic(), 0.0))
            ts = start + timedelta(seconds=t * args.step_s)
            messages = list(router.messages(engine.step(t), ts))
            await link.publish(messages)
            acked = time.time()
            log.write(b"".join(orjson.dumps(Record(acked, *m).to_json()) + b"\n" for m in messages))
            log.flush()
    finally:
        await link.close()
    print(f"published {args.steps} steps, reconnects {link.reconnects}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", required=True, type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", default="energyhub")
    parser.add_argument("--start", required=True, help="first step, RFC 3339")
    parser.add_argument("--step-s", type=float, default=60.0)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--speed", type=float, default=0.0, help="simulated s per s; 0: max")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", required=True, type=Path, help="record log to append to")
    parser.add_argument("--setpoint-log", type=Path, help="follow setpoints, log them here")
    args = parser.parse_args()
    with contextlib.ExitStack() as files:
        log = files.enter_context(args.log.open("ab"))
        received = files.enter_context(args.setpoint_log.open("ab")) if args.setpoint_log else None
        asyncio.run(run(args, log, received))


if __name__ == "__main__":
    main()
