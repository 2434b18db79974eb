"""The ingest's MQTT 5 receiver against the real Mosquitto: framing, sessions, acknowledgement."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import pytest

from energyhub.ingest import mqtt5
from energyhub.ingest.errors import BrokerUnavailableError
from energyhub.ingest.message import Delivery
from energyhub.ingest.source import MqttSource
from energyhub.mqtt import MqttEndpoint, parse_mqtt_url
from energyhub.store.embedded import free_port
from tests.support.broker import Broker

from .conftest import SHARED_BROKER, publish

# Remaining lengths of one, two, three and four bytes (the topic adds a few bytes to each).
SIZES = [0, 1, 100, 127, 128, 16_000, 16_383, 16_384, 200_000, 2_100_000]


def source(
    url: str,
    topics: list[str],
    client_id: str | None = None,
    keepalive_s: int = 30,
    drop: list[str] | None = None,
) -> MqttSource:
    return MqttSource(
        parse_mqtt_url(url),
        client_id or f"t-{uuid.uuid4().hex[:10]}",
        topics,
        receive_maximum=1000,
        session_expiry_s=60,
        drop=drop or [],
        keepalive_s=keepalive_s,
    )


async def receive(
    mqtt: MqttSource, count: int, timeout_s: float = 20
) -> tuple[list[str], list[bytes], list[Delivery]]:
    """Take deliveries until `count` messages came; their topics, payloads and the deliveries."""
    deliveries: list[Delivery] = []
    async with asyncio.timeout(timeout_s):
        while sum(len(d.topics) for d in deliveries) < count:
            await mqtt.wait(0.1)
            deliveries += mqtt.take()
    topics = [t for d in deliveries for t in d.topics]
    payloads = [p for d in deliveries for p in d.payloads]
    return topics, payloads, deliveries


async def nothing_more(mqtt: MqttSource, seconds: float = 1.0) -> list[Delivery]:
    await asyncio.sleep(seconds)
    return mqtt.take()


class ChoppingProxy:
    """A TCP relay to the broker that hands its bytes on in pieces of 1 to 13 bytes, each written
    on its own loop turn, so packets and their length bytes straddle the receiver's reads.
    It also records what the broker sent."""

    PIECES = (1, 2, 3, 5, 7, 13)

    def __init__(self, upstream: MqttEndpoint) -> None:
        self.upstream = upstream
        self.recorded = bytearray()
        self.pieces = 0
        self._tasks: list[asyncio.Task[None]] = []

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"mqtt://127.0.0.1:{port}"
        finally:
            server.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.upstream.host, self.upstream.port)
        self._tasks += [
            asyncio.create_task(self._pipe(reader, up_writer, chop=False)),
            asyncio.create_task(self._pipe(up_reader, writer, chop=True)),
        ]

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chop: bool
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(1 << 16):
                if not chop:
                    writer.write(data)
                    continue
                self.recorded += data
                pos = 0
                while pos < len(data):
                    size = self.PIECES[self.pieces % len(self.PIECES)]
                    writer.write(data[pos : pos + size])
                    pos += size
                    self.pieces += 1
                    await writer.drain()
                    await asyncio.sleep(0)
        writer.close()


async def test_packets_split_across_reads_arrive_whole() -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    messages = [(f"{prefix}/m{i}", bytes([i % 251]) * size) for i, size in enumerate(SIZES[:9])]
    messages += [(f"{prefix}/small/{i}", f'{{"i": {i}}}'.encode()) for i in range(200)]
    proxy = ChoppingProxy(parse_mqtt_url(SHARED_BROKER))
    async with proxy.running() as url, source(url, [f"{prefix}/#"]) as mqtt:
        await publish(messages)
        topics, payloads, deliveries = await receive(mqtt, len(messages), 60)
        mqtt.ack(deliveries)
    assert list(zip(topics, payloads, strict=True)) == messages
    assert proxy.pieces > len(proxy.recorded) // 13


async def test_every_cut_of_a_recorded_stream_splits_the_same() -> None:
    """The broker's own bytes, cut at every position: split keeps the tail and loses nothing."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    messages = [(f"{prefix}/m/{i}", b"x" * size) for i, size in enumerate([0, 5, 127, 128, 300])]
    proxy = ChoppingProxy(parse_mqtt_url(SHARED_BROKER))
    drop = [f"$share/g/{prefix}/#"]  # a filter of another mode: its UNSUBACK is in the stream
    async with proxy.running() as url, source(url, [f"{prefix}/#"], drop=drop) as mqtt:
        await publish(messages)
        _, _, deliveries = await receive(mqtt, len(messages))
        mqtt.ack(deliveries)
    stream = bytes(proxy.recorded)
    whole: tuple[list[str], list[bytes], bytearray] = ([], [], bytearray())
    assert mqtt5.split(stream, *whole, [], {}) == len(stream)
    assert list(zip(whole[0], whole[1], strict=True)) == messages
    assert len(whole[2]) == 4 * len(messages)  # a PUBACK per QoS 1 message
    for cut in range(len(stream) + 1):
        parts: tuple[list[str], list[bytes], bytearray] = ([], [], bytearray())
        control: list[tuple[int, bytes]] = []
        used = mqtt5.split(stream[:cut], *parts, control, {})
        assert mqtt5.split(stream[used:], *parts, control, {}) == len(stream) - used
        assert parts == whole, cut
        assert [first for first, _ in control] == [mqtt5.CONNACK, mqtt5.SUBACK, mqtt5.UNSUBACK]


async def test_remaining_lengths_of_one_to_four_bytes() -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    messages = [(f"{prefix}/s/{size}", bytes(range(256)) * (size // 256) + b"e" * (size % 256))
                for size in SIZES]  # fmt: skip
    async with source(SHARED_BROKER, [f"{prefix}/#"]) as mqtt:
        await publish(messages)
        topics, payloads, deliveries = await receive(mqtt, len(messages), 60)
        mqtt.ack(deliveries)
    assert list(zip(topics, payloads, strict=True)) == messages


async def test_only_acknowledged_messages_leave_the_session() -> None:
    """Unacknowledged messages come again on the next connection of the same client id;
    acknowledged ones do not, whether the client disconnects cleanly or vanishes."""
    prefix, client = f"t{uuid.uuid4().hex[:10]}", f"t-{uuid.uuid4().hex[:10]}"
    first = [(f"{prefix}/a", f"first {i}".encode()) for i in range(20)]
    second = [(f"{prefix}/a", f"second {i}".encode()) for i in range(30)]
    async with source(SHARED_BROKER, [f"{prefix}/#"], client) as mqtt:
        await publish(first)
        _, _, deliveries = await receive(mqtt, 20)
        mqtt.ack(deliveries)
        await publish(second)
        _, payloads, _ = await receive(mqtt, 30)  # taken, never acknowledged: "not committed"
        assert payloads == [p for _, p in second]
        assert mqtt.unacknowledged == 30
    async with source(SHARED_BROKER, [f"{prefix}/#"], client) as mqtt:
        _, payloads, deliveries = await receive(mqtt, 30)
        assert payloads == [p for _, p in second]
        assert await nothing_more(mqtt) == []
        mqtt.ack(deliveries)
        assert mqtt.unacknowledged == 0
        await asyncio.sleep(0.2)  # the PUBACKs reach the broker before the client vanishes
        assert mqtt._transport is not None
        mqtt._transport.abort()  # no DISCONNECT: as if killed
    async with source(SHARED_BROKER, [f"{prefix}/#"], client) as mqtt:
        assert await nothing_more(mqtt) == []


async def test_messages_of_a_dropped_connection_are_not_acknowledged_on_the_next(
    broker: Broker,
) -> None:
    """Their packet ids belong to the old connection: the broker redelivers them instead."""
    prefix, client = f"t{uuid.uuid4().hex[:10]}", f"t-{uuid.uuid4().hex[:10]}"
    messages = [(f"{prefix}/a", f"{i}".encode()) for i in range(10)]
    async with source(broker.url, [f"{prefix}/#"], client) as mqtt:
        await publish(messages, broker.url)
        _, _, old = await receive(mqtt, 10)
        broker.stop()
        broker.start()
        _, payloads, new = await receive(mqtt, 10)  # redelivered on the new connection
        assert payloads == [p for _, p in messages] and mqtt.reconnects == 1
        assert {d.connection for d in new}.isdisjoint({d.connection for d in old})
        mqtt.ack(old)  # committed after the drop: must not acknowledge the redeliveries
    async with source(broker.url, [f"{prefix}/#"], client) as mqtt:
        _, payloads, new = await receive(mqtt, 10)
        assert payloads == [p for _, p in messages]
        mqtt.ack(new)
    async with source(broker.url, [f"{prefix}/#"], client) as mqtt:
        assert await nothing_more(mqtt) == []


async def test_keepalive_holds_an_idle_connection() -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    async with source(SHARED_BROKER, [f"{prefix}/#"], keepalive_s=1) as mqtt:
        await asyncio.sleep(3.5)  # the broker drops a client silent for 1.5 keep-alives
        await publish([(f"{prefix}/x", b"1")])
        _, payloads, deliveries = await receive(mqtt, 1)
        mqtt.ack(deliveries)
        assert mqtt.reconnects == 0
        assert payloads == [b"1"]


async def test_a_message_with_the_cancellation_does_not_keep_the_worker_waiting() -> None:
    """The worker's wait for messages, cancelled in the turn a message came: it must end in the
    cancellation (asyncio.wait_for returned, and the worker's loop went on after its cancel)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    async with source(SHARED_BROKER, [f"{prefix}/#"]) as mqtt:
        assert mqtt._transport is not None
        protocol = cast(asyncio.Protocol, mqtt._transport.get_protocol())
        waiting = asyncio.create_task(mqtt.wait(30))
        await asyncio.sleep(0)  # waiting for a message now
        protocol.data_received(mqtt5.publish_packet(f"{prefix}/a", b"1"))  # as the loop does
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert mqtt.pending == 1


async def test_a_connection_lost_as_the_source_closes_does_not_keep_it_reconnecting() -> None:
    """The broker's connection lost in the turn before the close cancels the keep-alive task:
    asyncio.wait_for dropped that cancellation, the task reconnected and pinged on, and the
    close waited for it forever."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    async with asyncio.timeout(10):
        async with source(SHARED_BROKER, [f"{prefix}/#"]) as mqtt:
            assert mqtt._transport is not None
            mqtt._transport.abort()
            await asyncio.sleep(0)  # connection_lost runs first in this turn, then the close
        assert mqtt.reconnects == 0


@pytest.fixture
def password_broker(tmp_path: Path) -> Broker:
    server = Broker(tmp_path / "mosquitto")
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "ingest", "s3cret"], check=True)
    passwd.chmod(0o644)
    config = server.config.read_text().replace("allow_anonymous true", "allow_anonymous false")
    server.config.write_text(f"{config}\npassword_file {passwd}\n")
    server.start()
    return server


async def test_credentials_are_sent_and_a_refusal_names_the_reason(
    password_broker: Broker,
) -> None:
    port, prefix = password_broker.port, f"t{uuid.uuid4().hex[:10]}"
    try:
        with pytest.raises(BrokerUnavailableError, match=r"refused t-\w+: 0x87 not authorized"):
            async with source(f"mqtt://ingest:wrong@127.0.0.1:{port}", ["x"]):
                pass
        async with source(f"mqtt://ingest:s3cret@127.0.0.1:{port}", [f"{prefix}/#"]) as mqtt:
            assert mqtt.reconnects == 0
    finally:
        password_broker.stop()


def _certificates(folder: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1, signed by it."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = ["openssl", "req", *key, "-days", "2", "-subj"]
    subprocess.run(
        [*run, "/CN=energyhub test CA", "-x509", "-keyout", "ca.key", "-out", "ca.crt"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*run, "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(
        (
            "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
            "-out server.crt -days 2 -extfile san.cnf"
        ).split(),
        cwd=folder,
        check=True,
        capture_output=True,
    )


async def test_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mqtts:// verifies the broker against the system's trust store (here: our CA alone)."""
    _certificates(tmp_path)
    server, plain = Broker(tmp_path / "mosquitto"), free_port()
    tls = f"cafile {tmp_path}/ca.crt\ncertfile {tmp_path}/server.crt\nkeyfile {tmp_path}/server.key"
    config = f"{server.config.read_text()}\n{tls}\nlistener {plain} 127.0.0.1\n"
    server.config.write_text(config)
    server.start()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    try:
        url = f"mqtts://127.0.0.1:{server.port}"
        with pytest.raises(BrokerUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
            async with source(url, ["x"]):
                pass
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.crt"))
        async with source(url, [f"{prefix}/#"]) as mqtt:
            await publish([(f"{prefix}/a", b"over TLS")], f"mqtt://127.0.0.1:{plain}")
            _, payloads, deliveries = await receive(mqtt, 1)
            mqtt.ack(deliveries)
        assert payloads == [b"over TLS"]
    finally:
        server.stop()
