import aiomqtt
import pytest

from energyhub.embedded_broker import embedded_mosquitto
from energyhub.mqtt import parse_mqtt_url


async def test_private_broker_round_trip_and_cleanup() -> None:
    async with embedded_mosquitto() as url:
        endpoint = parse_mqtt_url(url)
        async with aiomqtt.Client(
            endpoint.host, endpoint.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as sub:
            await sub.subscribe("demo/#", qos=1)
            async with aiomqtt.Client(endpoint.host, endpoint.port) as pub:
                await pub.publish("demo/x", b"hello", qos=1)
            async for message in sub.messages:
                assert (str(message.topic), message.payload) == ("demo/x", b"hello")
                break
    with pytest.raises(aiomqtt.MqttError):  # the broker no longer listens
        async with aiomqtt.Client(endpoint.host, endpoint.port, timeout=2):
            pass
