"""The MQTT topic checks against the real Mosquitto: a character the broker drops a connection
for is refused by name before any role connects."""

from __future__ import annotations

import uuid

import aiomqtt
import pytest

from energyhub.config import load_settings
from energyhub.errors import ConfigError, printable
from energyhub.mqtt import check_topic_filter, check_topic_prefix

CHARACTERS = ["\x01", "\x1b", "\x7f", "\x80", "\x85", "\x9b", "\x9f", "\xa0", "é"]
"""C0, DEL and C1 controls (U+0085 next line, U+009B a terminal's CSI), and two that are not."""


async def broker_takes(prefix: str) -> bool:
    """Whether the shared Mosquitto takes a subscription under `prefix` and a message published
    there (it drops the connection as a malformed packet for a topic it refuses)."""
    try:
        async with aiomqtt.Client(
            "127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5, timeout=2
        ) as client:
            await client.subscribe(f"{prefix}/#", qos=1)
            await client.publish(f"{prefix}/b01/main", b"x", qos=1)
    except aiomqtt.MqttError:
        return False
    return True


def refused(check: object, value: str) -> bool:
    try:
        check(value)  # type: ignore[operator]
    except ValueError:
        return True
    return False


@pytest.mark.parametrize("character", CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
async def test_a_topic_the_broker_drops_is_refused_by_the_checks(
    character: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks let C1 controls through: `ENERGYHUB_MQTT_TOPIC_PREFIX=energy<U+0085>hub` was
    taken, and the broker dropped every role's connection on its first subscription."""
    prefix = f"eh-{uuid.uuid4().hex[:8]}{character}x"
    taken = await broker_takes(prefix)
    assert refused(check_topic_prefix, prefix) is not taken
    assert refused(check_topic_filter, f"{prefix}/#") is not taken
    monkeypatch.setenv("ENERGYHUB_MQTT_TOPIC_PREFIX", prefix)
    if taken:
        assert load_settings().mqtt_topic_prefix == prefix
        return
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"ENERGYHUB_MQTT_TOPIC_PREFIX='{printable(prefix)}'" in message, message
    assert character not in message  # escaped: the message itself rewrites no terminal
