"""deploy/mosquitto.conf, its ACL and start.sh, loaded by a real Mosquitto on a free port.

The broker is started the way the compose service starts it: start.sh builds the password file
from MQTT_<ACCOUNT>_PASSWORD and a gateways.passwd made with mosquitto_passwd, then runs
mosquitto on the repository's config (only the listener and the paths moved to this test).
A refused publish is shown by a subscriber that never sees it: each gateway publishes a sentinel
after its refused messages, and a broker delivers one client's QoS 1 messages in order.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
import yaml

from energyhub.store.embedded import free_port
from tests.conftest import REPO

SERVICE_PASSWORDS = {
    "MQTT_INGEST_PASSWORD": "ingest-pw",
    "MQTT_SCHEDULER_PASSWORD": "scheduler-pw",
    "MQTT_ALERTS_PASSWORD": "alerts-pw",
    "MQTT_SIMULATOR_PASSWORD": "simulator-pw",
    "MQTT_HEALTHCHECK_PASSWORD": "healthcheck-pw",
}
GATEWAYS = {"expo/b01": "b01-pw", "expo/b02": "b02-pw"}
ACCOUNTS = {
    "ingest": "ingest-pw",
    "scheduler": "scheduler-pw",
    "alerts": "alerts-pw",
    "simulator": "simulator-pw",
    **GATEWAYS,
}
WAIT_S = 10.0


@dataclass(frozen=True)
class Broker:
    port: int
    passwords: Path


def _config(root: Path, port: int) -> Path:
    """The repository's config with the listener and the container paths moved here."""
    config = (REPO / "deploy" / "mosquitto.conf").read_text()
    moves = {
        "listener 1883": f"listener {port} 127.0.0.1",
        "/mosquitto/data/": f"{root}/data/",
        "password_file /mosquitto/run/passwd": f"password_file {root}/passwd",
        "acl_file /mosquitto/deploy/acl": f"acl_file {REPO}/deploy/mosquitto/acl",
    }
    for old, new in moves.items():
        assert config.count(old) == 1, f"deploy/mosquitto.conf: expected one {old!r}"
        config = config.replace(old, new)
    if os.geteuid() == 0:  # else mosquitto becomes `mosquitto`, who cannot reach tmp_path
        config += "\nuser root\n"
    path = root / "mosquitto.conf"
    path.write_text(config)
    return path


def _gateways(root: Path) -> Path:
    path = root / "gateways.passwd"
    path.touch()
    for user, password in GATEWAYS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True)
    return path


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"mosquitto exited: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on {port}")


@contextmanager
def start_broker(root: Path, passwords: dict[str, str], gateways: Path | None) -> Iterator[Broker]:
    """start.sh on the repository's config and ACL, with the service accounts' passwords
    (`MQTT_<ACCOUNT>_PASSWORD`) and gateways.passwd as the compose service passes them."""
    (root / "data").mkdir()
    port = free_port()
    environment = {
        "PATH": os.environ["PATH"],
        "MOSQUITTO_CONFIG": str(_config(root, port)),
        "MOSQUITTO_PASSWORD_FILE": str(root / "passwd"),
        "MOSQUITTO_GATEWAYS": str(gateways or root / "no-gateways.passwd"),
        **passwords,
    }
    process = subprocess.Popen(
        ["sh", str(REPO / "deploy" / "mosquitto" / "start.sh")],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, process)
        yield Broker(port, root / "passwd")
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    root = tmp_path_factory.mktemp("mosquitto")
    with start_broker(root, SERVICE_PASSWORDS, _gateways(root)) as running:
        yield running


def client(broker: Broker, user: str | None, password: str | None = None) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=user,
        password=ACCOUNTS.get(user or "") if password is None else password,
        identifier=f"test-{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5,
    )


async def _receive_until(subscriber: aiomqtt.Client, sentinel: str) -> list[str]:
    """Topics received, in order, up to and including the sentinel topic."""
    topics: list[str] = []
    async with asyncio.timeout(WAIT_S):
        async for message in subscriber.messages:
            topics.append(message.topic.value)
            if message.topic.value == sentinel:
                return topics
    return topics


def test_start_sh_writes_every_account_hashed(broker: Broker) -> None:
    lines = broker.passwords.read_text().splitlines()
    users = {line.split(":", 1)[0] for line in lines}
    assert users == {"ingest", "scheduler", "alerts", "simulator", "healthcheck", *GATEWAYS}
    assert not any(password in broker.passwords.read_text() for password in ACCOUNTS.values())
    assert broker.passwords.stat().st_mode & 0o077 == 0


async def test_a_gateway_publishes_only_under_its_own_prefix(broker: Broker) -> None:
    async with client(broker, "ingest") as ingest, client(broker, "expo/b01") as gateway:
        await ingest.subscribe("$share/energyhub/energyhub/#", qos=1)
        for topic in (
            "energyhub/expo/b01",
            "energyhub/expo/b01/main",
            "energyhub/expo/b02/main",
            "energyhub/expo/b02",
            "energyhub/lingang/l01/main",
            "energyhub/expo/b01/b01-bess/setpoint",
            "energyhub/expo/b01/alert",
            "energyhub/expo/b01/status",
        ):
            await gateway.publish(topic, b'{"ts": 0, "value": 1}', qos=1)
        received = await _receive_until(ingest, "energyhub/expo/b01/status")
    assert received == [
        "energyhub/expo/b01",
        "energyhub/expo/b01/main",
        "energyhub/expo/b01/status",
    ]


async def test_only_the_scheduler_sends_setpoints_each_gateway_reads_its_own(
    broker: Broker,
) -> None:
    async with (
        client(broker, "expo/b01") as b01,
        client(broker, "scheduler") as scheduler,
        client(broker, "expo/b02") as b02,
    ):
        await b01.subscribe("energyhub/expo/+/+/setpoint", qos=1)
        await b02.publish("energyhub/expo/b01/b01-bess/setpoint", b'{"p_kw": 9}', qos=1)
        await scheduler.publish("energyhub/expo/b02/b02-bess/setpoint", b'{"p_kw": 2}', qos=1)
        await scheduler.publish("energyhub/expo/b01/b01-bess/setpoint", b'{"p_kw": 1}', qos=1)
        received = []
        async with asyncio.timeout(WAIT_S):
            async for message in b01.messages:
                received.append((message.topic.value, message.payload))
                break
    assert received == [("energyhub/expo/b01/b01-bess/setpoint", b'{"p_kw": 1}')]


async def test_ingest_reads_but_cannot_publish(broker: Broker) -> None:
    async with client(broker, "ingest") as watcher, client(broker, "ingest") as ingest:
        await watcher.subscribe("energyhub/#", qos=1)
        await ingest.publish("energyhub/expo/b01/main", b'{"ts": 0, "value": 7}', qos=1)
        async with client(broker, "simulator") as simulator:
            await simulator.publish("energyhub/expo/b03", b'{"ts": 0, "values": {}}', qos=1)
            await simulator.publish("energyhub/expo/b03/b03-hp/setpoint", b"{}", qos=1)
            await simulator.publish("energyhub/expo/b03/status", b"online", qos=1)
        received = await _receive_until(watcher, "energyhub/expo/b03/status")
    assert received == ["energyhub/expo/b03", "energyhub/expo/b03/status"]


@pytest.mark.parametrize(
    ("user", "password"), [(None, None), ("ingest", "wrong"), ("expo/b09", "b09-pw")]
)
async def test_unknown_clients_are_refused(broker: Broker, user: str | None, password: str) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker, user, password):
            pass


def test_the_compose_healthcheck_command_succeeds(broker: Broker) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    _, command = compose["services"]["mosquitto"]["healthcheck"]["test"]
    command = command.replace("$$", "$").replace("-p 1883", f"-p {broker.port}")
    command = command.replace("-h localhost", "-h 127.0.0.1")
    environment = {"PATH": os.environ["PATH"], **SERVICE_PASSWORDS}
    done = subprocess.run(
        ["sh", "-c", command], env=environment, capture_output=True, timeout=WAIT_S, check=False
    )
    assert done.returncode == 0, done.stderr
    assert shlex.split(command)[0] == "mosquitto_sub"
