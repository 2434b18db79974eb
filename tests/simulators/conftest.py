"""Fixtures for the simulator tests: the test site, a unique topic prefix, a real-broker collector."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from energyhub.sites import SiteFile, load_site
from simulators.mqtt import Message, MqttClient, MqttUrl

SITE_FILE = Path(__file__).with_name("site.yaml")
BROKER = MqttUrl.parse(os.environ.get("ENERGYHUB_MQTT_URL", "mqtt://127.0.0.1:1883"))


@pytest.fixture
def site() -> SiteFile:
    return load_site(SITE_FILE)


@pytest.fixture
def namespace() -> str:
    """A topic namespace of this test alone: `t-<uuid>/`."""
    return f"t-{uuid.uuid4().hex[:12]}/"


@pytest.fixture
def prefix(namespace: str) -> str:
    return f"{namespace}energyhub"


class Collector:
    """Messages received on a subscription, skipping retained ones from earlier runs."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrived = asyncio.Event()

    async def idle(self, quiet_s: float = 1.0, timeout_s: float = 30.0) -> list[Message]:
        """Wait until nothing has arrived for `quiet_s`; return everything so far."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), quiet_s)
            except TimeoutError:
                return self.messages
        return self.messages


@asynccontextmanager
async def collect(filters: list[str]) -> AsyncIterator[Collector]:
    """Subscribe (SUBACK awaited) and collect in the background while the block runs."""
    collector = Collector()
    async with MqttClient(BROKER, f"test-{uuid.uuid4().hex[:10]}") as client:
        await client.subscribe(filters)

        async def pump() -> None:
            async for message in client.messages():
                if not message.retain:
                    collector.messages.append(message)
                    collector.arrived.set()

        task = asyncio.create_task(pump())
        try:
            yield collector
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def clear_status(site: SiteFile, prefix: str) -> None:
    """Remove the retained gateway status messages a simulation left on the broker."""
    topics = [f"{prefix}/{park.id}/{owner.id}/status" for park, owner in site.metered_sites()]
    async with MqttClient(BROKER, f"test-clear-{uuid.uuid4().hex[:10]}") as client:
        await client.publish_many(((topic, b"") for topic in topics), retain=True)


async def energyhub_command(*args: str) -> tuple[int | None, str]:
    """`energyhub ARGS` as a user runs it: exit status and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "energyhub", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, output.decode()
