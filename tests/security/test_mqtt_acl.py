"""The Mosquitto ACL (deploy/mosquitto/acl) beyond tests/deploy/test_mosquitto.py: what an account
may not read, and that no service account but the scheduler sends setpoints.

The broker is the one of tests/deploy (start.sh, the repository's config and ACL, passwords). A
denied subscription or publish is shown by a sentinel: one client's QoS 1 messages reach a
subscriber in order, so a message the broker had accepted would arrive before the sentinel.
"""

from __future__ import annotations

from tests.deploy.test_mosquitto import Broker, broker, client
from tests.deploy.test_mosquitto import _receive_until as receive_until

__all__ = ["broker"]  # the module-scoped private broker fixture, used by every test here
READING = b'{"ts": 0, "value": 1}'


async def test_a_gateway_reads_nothing_of_other_buildings_or_parks(broker: Broker) -> None:
    async with (
        client(broker, "expo/b01") as b01,
        client(broker, "simulator") as simulator,
        client(broker, "scheduler") as scheduler,
    ):
        for topic in (
            "energyhub/#",
            "energyhub/lingang/#",
            "energyhub/expo/b02/#",
            "+/status/#",
            "tele/+/SENSOR",
            "$SYS/#",
        ):
            await b01.subscribe(topic, qos=1)
        for topic in (
            "energyhub/lingang/l01",
            "energyhub/lingang/l01/main",
            "energyhub/expo/b02",
            "energyhub/expo/b02/main",
            "energyhub/expo/b01/main",  # its own readings are the ingest's to read
            "tele/b02-plug/SENSOR",
            "shelly-b02/status/switch:0",
        ):
            await simulator.publish(topic, READING, qos=1)
        await scheduler.publish("energyhub/lingang/l01/l01-bess/setpoint", b"{}", qos=1)
        await scheduler.publish("energyhub/expo/b02/b02-bess/setpoint", b"{}", qos=1)
        await scheduler.publish("energyhub/expo/b01/b01-bess/setpoint", b"{}", qos=1)
        received = await receive_until(b01, "energyhub/expo/b01/b01-bess/setpoint")
    assert received == ["energyhub/expo/b01/b01-bess/setpoint"]


async def test_no_service_account_but_the_scheduler_sends_setpoints(broker: Broker) -> None:
    setpoint = "energyhub/expo/b01/b01-bess/setpoint"
    async with client(broker, "expo/b01") as b01:
        await b01.subscribe(setpoint, qos=1)
        for user in ("ingest", "simulator", "expo/b02"):
            async with client(broker, user) as sender:
                await sender.publish(setpoint, f'{{"from": "{user}"}}', qos=1)
        async with client(broker, "scheduler") as scheduler:
            await scheduler.publish(setpoint, b'{"from": "scheduler"}', qos=1)
        messages = []
        async for message in b01.messages:
            messages.append(message.payload)
            break
    assert messages == [b'{"from": "scheduler"}']


async def test_the_scheduler_sends_setpoints_but_no_readings(broker: Broker) -> None:
    async with client(broker, "ingest") as ingest, client(broker, "scheduler") as scheduler:
        await ingest.subscribe("energyhub/#", qos=1)
        await scheduler.publish("energyhub/expo/b01", b'{"ts": 0, "values": {"main": 1}}', qos=1)
        await scheduler.publish("energyhub/expo/b01/main", READING, qos=1)
        await scheduler.publish("energyhub/expo/b01/alert", b"{}", qos=1)
        async with client(broker, "expo/b01") as b01:
            await b01.publish("energyhub/expo/b01/status", b"online", qos=1)
        received = await receive_until(ingest, "energyhub/expo/b01/status")
    assert received == ["energyhub/expo/b01/status"]


async def test_a_gateway_cannot_take_the_ingest_shared_subscription(broker: Broker) -> None:
    """Joining the ingest's share group would steal readings from the workers."""
    async with client(broker, "expo/b01") as b01, client(broker, "expo/b01") as sender:
        await b01.subscribe("$share/energyhub/energyhub/#", qos=1)
        await b01.subscribe("energyhub/expo/b01/+/setpoint", qos=1)
        await sender.publish("energyhub/expo/b01/main", READING, qos=1)
        async with client(broker, "scheduler") as scheduler:
            await scheduler.publish("energyhub/expo/b01/b01-bess/setpoint", b"{}", qos=1)
        received = await receive_until(b01, "energyhub/expo/b01/b01-bess/setpoint")
    assert received == ["energyhub/expo/b01/b01-bess/setpoint"]
