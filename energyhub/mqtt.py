"""MQTT broker URLs: `mqtt://[user[:password]@]host[:port]`, `mqtts://` for TLS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from energyhub.errors import CONTROL, ConfigError

if TYPE_CHECKING:
    import aiomqtt

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
MAX_TOPIC_BYTES = 65_535
"""MQTT's limit on a topic name or filter: a two-byte length before its UTF-8 bytes."""
MAX_PREFIX_BYTES = 1_024
"""A topic prefix leaves the rest of MQTT's limit to the levels after it (park, site, meter)."""


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def __str__(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """Parse a broker URL; ConfigError naming ENERGYHUB_MQTT_URL and the expected form."""
    parts = urlsplit(url)
    expected = "expected mqtt://[user[:password]@]host[:port] or mqtts://..."
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(f"ENERGYHUB_MQTT_URL={url!r}: {expected}")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ConfigError(f"ENERGYHUB_MQTT_URL={url!r}: the port is not a number") from None
    return MqttEndpoint(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=parts.scheme == "mqtts",
    )


def check_topic_prefix(prefix: str) -> str:
    """The prefix, or ValueError saying why a broker would refuse (or misfile) topics under it:
    it is published and subscribed to as the first level(s) of every topic, so it may hold no
    wildcard (`+`, `#`), no control character and no empty level. The message names no value:
    the caller names the setting or option with it."""
    levels = prefix.split("/")
    if "" in levels or any(c in prefix for c in "+#") or CONTROL.search(prefix):
        raise ValueError(
            "expected one or more topic levels (e.g. energyhub or site-a/energyhub) without '+', "
            "'#', control characters or an empty level"
        )
    return _within_bytes(prefix)


def _within_bytes(prefix: str) -> str:
    """The prefix, or ValueError if its UTF-8 is longer than MAX_PREFIX_BYTES."""
    if (size := len(prefix.encode())) > MAX_PREFIX_BYTES:
        raise ValueError(f"expected at most {MAX_PREFIX_BYTES:,} bytes of UTF-8, not {size:,}")
    return prefix


def check_client_id_prefix(prefix: str) -> str:
    """The prefix, or ValueError saying why a broker would refuse it: it starts every client id
    (`<prefix>-ingest-<i>`, a two-byte length before its UTF-8 bytes; Mosquitto closes the
    connection of one with a control character) and names the ingest's shared-subscription
    group (`$share/<prefix>/...`: MQTT 5 wants one or more characters, no '/', '+' or '#').
    The message names no value: the caller names the setting with it."""
    if not prefix or any(c in prefix for c in "/+#") or CONTROL.search(prefix):
        raise ValueError(
            "expected one or more characters (e.g. energyhub or site-a) without '/', '+', '#' "
            "or control characters"
        )
    return _within_bytes(prefix)


def check_topic_filter(topic_filter: str) -> str:
    """The filter, or ValueError saying why the broker would drop the connection on subscribing:
    `#` only as the last level, `+` only as a whole level, no control character."""
    levels = topic_filter.split("/")
    bad_level = any(
        ("#" in level and (level != "#" or i != len(levels) - 1)) or ("+" in level and level != "+")
        for i, level in enumerate(levels)
    )
    if not topic_filter or bad_level or CONTROL.search(topic_filter):
        raise ValueError(
            "expected a topic filter ('+' as a whole level, '#' only as the last one, no control "
            "characters; e.g. energyhub/#)"
        )
    if (size := len(topic_filter.encode())) > MAX_TOPIC_BYTES:
        raise ValueError(f"expected at most {MAX_TOPIC_BYTES:,} bytes of UTF-8, not {size:,}")
    return topic_filter


def mqtt_client(
    endpoint: MqttEndpoint, identifier: str, timeout_s: float | None = None
) -> aiomqtt.Client:
    """An aiomqtt client (MQTT 5) for the endpoint: credentials and TLS as its URL says.

    For the roles that publish or listen a little (setpoints, alerts, Modbus frames, weather);
    the ingest reads the stream with its own receiver (energyhub/ingest/source.py)."""
    import aiomqtt

    return aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=endpoint.username,
        password=endpoint.password,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=timeout_s,
        tls_params=aiomqtt.TLSParameters() if endpoint.tls else None,
    )
