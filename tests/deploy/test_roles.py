"""Every long-running role of the CLI runs in docker-compose.yml, with the MQTT access it needs.

The roles are the commands `energyhub --help` lists under `ROLES_PANEL`, read from the typer app
(a new role joins this test by being registered there). The compose file is parsed, not run: Docker does not run here. The broker is a real Mosquitto started by
deploy/mosquitto/start.sh with the compose mosquitto service's own environment (passwords from
.env.example) on the repository's config and ACL; each role logs in with the account of its
compose service's ENERGYHUB_MQTT_URL and does what its code does: an ingest worker subscribes to
the filters `partition.subscriptions` gives it for the example site, the scheduler publishes the
setpoint topic of every controllable asset, the alerts role publishes through its own
`MqttNotifier`. One client's QoS 1 messages reach a subscriber in order, so a last (sentinel)
message shows that nothing refused before it was going to arrive.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import pytest

from energyhub.alerts.notify import AlertEvent, MqttNotifier, alert_topic
from energyhub.alerts.store import AlertRow
from energyhub.api.routes.health import _broker_reachable
from energyhub.cli import COMMANDS, ROLES_PANEL
from energyhub.config import Settings
from energyhub.ingest.mapping import DeviceKey, MeterMap, MeterRef
from energyhub.ingest.partition import Membership, subscriptions
from energyhub.modbus.service import FramePublisher
from energyhub.mqtt import MqttEndpoint, parse_mqtt_url
from energyhub.optimize.scope import resolve_scope
from energyhub.scheduler.setpoints import Setpoint, controllable
from energyhub.sites import SiteFile, load_site
from tests.conftest import REPO
from tests.deploy.test_compose import EXAMPLE_ENV, SERVICES, interpolate
from tests.deploy.test_mosquitto import Broker, start_broker
from tests.deploy.test_mosquitto import _receive_until as receive_until


def long_running_roles() -> list[str]:
    return sorted(command.name for command in COMMANDS if command.panel == ROLES_PANEL)


ROLES = long_running_roles()
SITE: SiteFile = load_site(REPO / "examples" / "expo-park.yaml")
STACK = {name: s for name, s in SERVICES.items() if "profiles" not in s}
"""The services `docker compose up` starts (the demo profile's simulator is not one)."""

MQTT_ACCESS = {
    "ingest": "reads the contract topics and the mapped devices' topics",
    "scheduler": "publishes setpoints",
    "alerts": "publishes alerts",
    "modbus": "publishes gateway frames",
    "api": None,  # /health only opens a TCP connection to the broker
}
"""What each role's MQTT account must be allowed; each is exercised by a test below."""


def role_services(role: str) -> list[str]:
    return [
        name
        for name, service in STACK.items()
        if service.get("image") == "energyhub:local" and service["command"][0] == role
    ]


def test_the_roles_are_read_from_the_cli() -> None:
    assert ROLES, f"no command of `energyhub --help` is under {ROLES_PANEL!r}"
    assert "ingest" in ROLES  # the introspection finds the command every deployment runs


@pytest.mark.parametrize("role", ROLES)
def test_every_role_runs_in_the_production_stack(role: str) -> None:
    services = role_services(role)
    assert services, f"docker-compose.yml: no service runs `energyhub {role}`"
    for name in services:
        service = STACK[name]
        assert service["restart"] == "unless-stopped", name
        assert service["depends_on"]["load-sites"] == {
            "condition": "service_completed_successfully"
        }, f"{name} must start after the schema and the site file are loaded"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_says_what_it_needs_of_the_broker(role: str) -> None:
    assert role in MQTT_ACCESS, (
        f"`energyhub {role}` is a long-running role: add to MQTT_ACCESS what its MQTT account may "
        "do, grant it in deploy/mosquitto/acl and exercise it in this module"
    )


def service_settings(service: str) -> Settings:
    environment = SERVICES[service]["environment"]
    values = {
        key.removeprefix("ENERGYHUB_").lower(): interpolate(value, EXAMPLE_ENV)
        for key, value in environment.items()
        if key.startswith("ENERGYHUB_")
    }
    return Settings(**values)


def account(service: str) -> MqttEndpoint:
    url = service_settings(service).mqtt_url
    assert url, f"{service}: ENERGYHUB_MQTT_URL is not set"
    return parse_mqtt_url(url)


def on(broker: Broker, endpoint: MqttEndpoint) -> MqttEndpoint:
    """The compose service's endpoint, moved from the `mosquitto` container to the test broker."""
    assert endpoint.host == "mosquitto" and endpoint.port == 1883, endpoint
    return MqttEndpoint("127.0.0.1", broker.port, endpoint.username, endpoint.password)


def url(endpoint: MqttEndpoint) -> str:
    return f"mqtt://{endpoint.username}:{endpoint.password}@{endpoint.host}:{endpoint.port}"


def connect(endpoint: MqttEndpoint, name: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=endpoint.username,
        password=endpoint.password,
        identifier=f"test-roles-{name}",
        protocol=aiomqtt.ProtocolVersion.V5,
    )


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Mosquitto as the compose service starts it, with .env.example's passwords."""
    environment = STACK["mosquitto"]["environment"]
    passwords = {key: interpolate(value, EXAMPLE_ENV) for key, value in environment.items()}
    with start_broker(tmp_path_factory.mktemp("mosquitto"), passwords, None) as running:
        yield running


def test_every_service_account_is_made_by_start_sh(broker: Broker) -> None:
    """start.sh makes an account of each MQTT_<ACCOUNT>_PASSWORD that compose passes it."""
    users = {line.split(":", 1)[0] for line in broker.passwords.read_text().splitlines()}
    for name, service in STACK.items():
        if "ENERGYHUB_MQTT_URL" in (service.get("environment") or {}):
            user = account(name).username
            assert user is None or user in users, f"{name} logs in as {user!r}: no such account"


def concrete(topic_filter: str) -> list[str]:
    """Topics a publisher would use that the filter matches (a shared filter's own topic)."""
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2]
    if topic_filter.endswith("/#"):
        head = topic_filter.removesuffix("/#")
        return [head, f"{head}/main"]
    assert "+" not in topic_filter and "#" not in topic_filter, topic_filter
    return [topic_filter]


def example_meter_map() -> MeterMap:
    """The mapping an ingest worker reads after `sites load` of the example site: its parks and
    buildings, and its mapped devices."""
    mapping = MeterMap()
    for park in SITE.city.parks:
        mapping.sites.add((park.id, park.id))
        for building in park.buildings:
            mapping.sites.add((park.id, building.id))
            for meter in building.meters:
                if meter.device is not None:
                    d = meter.device
                    key = DeviceKey(d.format, d.device, d.component, d.channel)
                    mapping.by_device[key] = MeterRef(0, meter.quantity)
    return mapping


INGEST = role_services("ingest")


@pytest.mark.parametrize("service", INGEST)
async def test_each_ingest_worker_receives_every_topic_it_subscribes_to(
    broker: Broker, service: str
) -> None:
    command = [str(part) for part in STACK[service]["command"]]
    workers = int(command[command.index("--workers") + 1])
    index = int(command[command.index("--worker-index") + 1])
    settings = service_settings(service)
    mapping = example_meter_map()
    assert mapping.by_device, "the example site maps no device: the device topics go untested"
    plan = subscriptions(
        Membership(index, workers, settings.ingest_subscription),
        settings.mqtt_topic_prefix,
        settings.mqtt_client_id_prefix,
        mapping.sites,
        mapping.device_topics(),
    )
    topics = [topic for topic_filter in plan.hold for topic in concrete(topic_filter)]
    assert topics
    simulator = account("simulator")  # the demo profile's stand-in for every gateway and device
    async with (
        connect(on(broker, account(service)), service) as ingest,
        connect(on(broker, simulator), "simulator") as publisher,
    ):
        for topic_filter in plan.hold:
            await ingest.subscribe(topic_filter, qos=1)
        for topic in topics:
            await publisher.publish(topic, b'{"ts": 0, "value": 1}', qos=1)
        received = await receive_until(ingest, topics[-1])
    assert sorted(received) == sorted(topics)


async def test_the_scheduler_sends_the_setpoint_of_every_controllable_asset(
    broker: Broker,
) -> None:
    (service,) = role_services("scheduler")
    prefix = service_settings(service).mqtt_topic_prefix
    now = datetime(2026, 12, 6, tzinfo=UTC)
    topics = [
        Setpoint(1, park.id, site_id, asset.id, now, 1.0).topic(prefix)
        for park in SITE.city.parks
        for site_id, asset in controllable(resolve_scope(SITE, "park", park.id))
    ]
    assert topics
    async with (
        connect(on(broker, account(INGEST[0])), "watcher") as watcher,
        connect(on(broker, account(service)), service) as scheduler,
    ):
        await watcher.subscribe(f"{prefix}/+/+/+/setpoint", qos=1)
        for topic in topics:
            await scheduler.publish(topic, b'{"plan": 1, "p_kw": 1.0}', qos=1)
        received = await receive_until(watcher, topics[-1])
    assert received == topics


def alert(park_id: str, site_id: str) -> AlertRow:
    at = datetime(2026, 12, 6, tzinfo=UTC)
    values: dict[str, Any] = {"kw": 1.0}
    return AlertRow(
        1, site_id, park_id, "limit", "main", "critical", "test", at, None, values, None, None, None
    )


async def test_the_alerts_role_publishes_on_every_alert_topic_and_nothing_else(
    broker: Broker,
) -> None:
    (service,) = role_services("alerts")
    settings = service_settings(service)
    prefix = settings.mqtt_topic_prefix
    events = [AlertEvent("opened", alert(park.id, park.id), None) for park in SITE.city.parks]
    events += [
        AlertEvent("opened", alert(park.id, building.id), building.id)
        for park in SITE.city.parks
        for building in park.buildings
    ]
    topics = [alert_topic(prefix, e.alert.park_id, e.building_id) for e in events]
    endpoint = on(broker, account(service))
    notifier = MqttNotifier(url(endpoint), f"{settings.mqtt_client_id_prefix}-alerts", prefix)
    async with connect(on(broker, account(INGEST[0])), "watcher") as watcher:
        await watcher.subscribe(f"{prefix}/#", qos=1)
        try:
            async with connect(endpoint, "alerts-others") as others:
                await others.publish(f"{prefix}/expo/b01/main", b'{"ts": 0, "value": 1}', qos=1)
                await others.publish(f"{prefix}/expo/b01/b01-bess/setpoint", b"{}", qos=1)
                await others.publish(f"{prefix}/expo/b01", b'{"ts": 0, "values": {}}', qos=1)
            for service_name in (INGEST[0], "scheduler", "simulator"):  # alerts are the role's
                async with connect(on(broker, account(service_name)), service_name) as other:
                    await other.publish(topics[0], b'{"event": "forged"}', qos=1)
            for event in events:
                await notifier.send(event)
        finally:
            await notifier.close()
        received = await receive_until(watcher, topics[-1])
    assert received == topics


async def test_the_modbus_poller_publishes_every_building_frame_and_nothing_else(
    broker: Broker,
) -> None:
    (service,) = role_services("modbus")
    settings = service_settings(service)
    prefix = settings.mqtt_topic_prefix
    places = [f"{park.id}/{park.id}" for park in SITE.city.parks]
    places += [f"{park.id}/{b.id}" for park in SITE.city.parks for b in park.buildings]
    topics = [f"{prefix}/{place}" for place in places]
    endpoint = on(broker, account(service))
    async with connect(on(broker, account(INGEST[0])), "watcher") as watcher:
        await watcher.subscribe(f"{prefix}/#", qos=1)
        async with connect(endpoint, "modbus-others") as others:  # not the poller's to send
            await others.publish(f"{prefix}/expo/b01/main", b'{"ts": 0, "value": 1}', qos=1)
            await others.publish(f"{prefix}/expo/b01/b01-bess/setpoint", b"{}", qos=1)
            await others.publish(f"{prefix}/expo/b01/alert", b"{}", qos=1)
        async with FramePublisher(
            settings.model_copy(update={"mqtt_url": url(endpoint)}), "t"
        ) as out:
            for place in places:
                await out.publish(place, b'{"ts": 0, "values": {"main": 1}}')
        received = await receive_until(watcher, topics[-1])
    assert received == topics


async def test_the_ingest_reads_sparkplug_and_may_ask_for_a_rebirth(broker: Broker) -> None:
    endpoint = on(broker, account(INGEST[0]))
    async with connect(endpoint, "sparkplug-host") as host:
        await host.subscribe("spBv1.0/#", qos=1)
        await host.publish("spBv1.0/g1/NCMD/node1", b"\x00", qos=1)
        received = await receive_until(host, "spBv1.0/g1/NCMD/node1")
    assert received == ["spBv1.0/g1/NCMD/node1"]


async def test_the_api_reaches_the_broker_for_its_health(broker: Broker) -> None:
    (service,) = role_services("api")
    endpoint = on(broker, account(service))
    assert endpoint.username is None  # it opens a TCP connection, no MQTT session
    assert await _broker_reachable(f"mqtt://{endpoint.host}:{endpoint.port}") is True
