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


def test_a_topic_past_mqtts_length_is_refused_before_any_role_connects() -> None:
    """`simulate --prefix` of 70,000 characters was a struct.error traceback at the first
    publish, and `record --topic` one at the subscription: a topic has two bytes of length."""
    filter_bytes = "é" * 32_767 + "/#"  # 65,536 bytes of UTF-8
    with pytest.raises(ValueError, match="at most 65,535 bytes of UTF-8, not 65,536"):
        check_topic_filter(filter_bytes)
    assert check_topic_filter(filter_bytes[1:]) == filter_bytes[1:]
    with pytest.raises(ValueError, match="at most 1,024 bytes of UTF-8, not 1,025"):
        check_topic_prefix("a" * 1_025)
    assert check_topic_prefix("é" * 512) == "é" * 512


def test_the_simulator_names_a_prefix_too_long_in_one_line() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "energyhub", "simulate", "--site", "examples/expo-park.yaml",
         "--prefix", "a" * 70_000, "--duration", "1m", "--mqtt-url", "mqtt://127.0.0.1:1883"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "--prefix: expected at most 1,024 bytes of UTF-8, not 70,000" in done.stderr
    assert len(done.stderr) < 400
