"""A private Mosquitto for the demo (and tests) when no ENERGYHUB_MQTT_URL is configured.

We run the distribution's `mosquitto` binary rather than the in-process `amqtt` broker: amqtt
speaks MQTT 3.1.1 only, and the ingest needs MQTT 5 (Receive Maximum for back-pressure, session
expiry, shared subscriptions). The broker gets the queue limits of deploy/mosquitto.conf, listens
on 127.0.0.1 only, keeps its persistence in its own temporary folder, and is stopped on exit.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from energyhub.errors import EmbeddedServiceError
from energyhub.store.embedded import free_port

CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {data}/
max_inflight_messages 20000
max_queued_messages 1000000
max_queued_bytes 2147483648
queue_qos0_messages false
log_dest file {data}/mosquitto.log
"""
START_TIMEOUT_S = 10.0


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise EmbeddedServiceError(
        "no mosquitto binary found: install the distribution's package (apt-get install "
        "mosquitto) or set ENERGYHUB_MQTT_URL"
    )


async def _wait_listening(port: int, process: asyncio.subprocess.Process) -> None:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        if process.returncode is not None:
            raise EmbeddedServiceError(f"mosquitto exited with {process.returncode} at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            await asyncio.sleep(0.05)
    raise EmbeddedServiceError(f"mosquitto did not listen on 127.0.0.1:{port} within 10 s")


@asynccontextmanager
async def embedded_mosquitto() -> AsyncIterator[str]:
    """A started private broker; yields its URL; stopped and its folder removed on every path."""
    binary = find_mosquitto()
    root = Path(tempfile.mkdtemp(prefix="energyhub-mqtt-"))
    port = free_port()
    config = CONFIG.format(port=port, data=root)
    if os.geteuid() == 0:  # as root mosquitto switches to `mosquitto`, who cannot use our folder
        config += "user root\n"
    (root / "mosquitto.conf").write_text(config)
    process = await asyncio.create_subprocess_exec(
        binary,
        "-c",
        str(root / "mosquitto.conf"),
        stdout=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to the terminal's group is ours to act on, in order
    )
    try:
        await _wait_listening(port, process)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        shutil.rmtree(root, ignore_errors=True)
