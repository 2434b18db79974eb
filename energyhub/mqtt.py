"""MQTT broker URLs: `mqtt://[user[:password]@]host[:port]`, `mqtts://` for TLS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from energyhub.errors import ConfigError

if TYPE_CHECKING:
    import aiomqtt

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


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
