"""Topics and payloads as field hardware sends them (DESIGN §4).

- a gateway per building (and per park) sends one frame per step on `{prefix}/{park}/{site}`:
  `{"ts": "<RFC 3339 with the site's offset>", "values": {meter: value, ...}}`;
- meters that measure an asset report from the asset's controller, one reading per message on
  `{prefix}/{park}/{site}/{meter}`: `{"ts": <epoch ms>, "value": v}`;
- meters with a `device:` mapping speak their device's format: Tasmota `tele/<device>/SENSOR`
  (`ENERGY.Total` kWh, `ENERGY.Power` W, `Time` in local time) or Shelly Gen2
  `<device>/status/switch:N` / `em:N` (`apower` W, `aenergy.total` Wh, `aenergy.minute_ts`).

Device topics have no `energyhub` root; they share whatever namespace precedes the prefix's last
segment (prefix `t-42/energyhub` → `t-42/tele/<device>/SENSOR`), so a test's traffic stays apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson

from energyhub.sites import DeviceMapping
from simulators.engine import StepReadings
from simulators.plant import Channel, Plant

VOLTAGE_V = 230.0
POWER_FACTOR = 0.95


def device_namespace(prefix: str) -> str:
    """What device topics start with: the prefix without its last segment (and a slash)."""
    head, _, _ = prefix.rstrip("/").rpartition("/")
    return f"{head}/" if head else ""


def device_topic(mapping: DeviceMapping, namespace: str = "") -> str:
    if mapping.format == "tasmota":
        return f"{namespace}tele/{mapping.device}/SENSOR"
    return f"{namespace}{mapping.device}/status/{mapping.component}:{mapping.channel}"


@dataclass(frozen=True, slots=True)
class Frame:
    topic: str
    names: tuple[str, ...]
    getter: itemgetter[Any]
    """Picks the frame's values, plus one spare so that a one-meter frame still gets a tuple."""

    def pick(self, values: list[float]) -> dict[str, float]:
        return dict(zip(self.names, self.getter(values), strict=False))


@dataclass(frozen=True, slots=True)
class Single:
    topic: str
    index: int


@dataclass(frozen=True, slots=True)
class Device:
    topic: str
    index: int
    mapping: DeviceMapping


class Router:
    """Which channel goes out how; `messages` turns one step's readings into (topic, payload)."""

    def __init__(self, plant: Plant, prefix: str, skip_modbus: bool = False) -> None:
        """`skip_modbus`: meters with `modbus:` are served by the Modbus gateways instead."""
        self.plant, self.prefix = plant, prefix.rstrip("/")
        namespace = device_namespace(self.prefix)
        self.frames: list[Frame] = []
        self.singles: list[Single] = []
        self.devices: list[Device] = []
        framed: dict[tuple[str, str], list[tuple[str, int]]] = {}
        for i, channel in enumerate(plant.channels):
            mapping = channel.meter.device
            if skip_modbus and channel.meter.modbus is not None:
                continue
            if mapping is not None:
                self.devices.append(Device(device_topic(mapping, namespace), i, mapping))
            elif channel.meter.asset is not None:
                self.singles.append(Single(f"{self.site_topic(channel)}/{channel.meter.id}", i))
            else:
                framed.setdefault((channel.node.park.id, channel.node.id), []).append(
                    (channel.meter.id, i)
                )
        for (park_id, site_id), members in framed.items():
            names, indices = zip(*members, strict=True)
            getter = itemgetter(*indices, indices[0])
            self.frames.append(Frame(f"{self.prefix}/{park_id}/{site_id}", names, getter))
        self.gateways = sorted(
            {f"{self.prefix}/{c.node.park.id}/{c.node.id}" for c in plant.channels}
        )

    def site_topic(self, channel: Channel) -> str:
        return f"{self.prefix}/{channel.node.park.id}/{channel.node.id}"

    def setpoint_filter(self) -> str:
        return f"{self.prefix}/+/+/+/setpoint"

    def status(self, state: str) -> list[tuple[str, bytes]]:
        """Gateway availability (`online` / `offline`), to be published retained."""
        return [(f"{gateway}/status", state.encode()) for gateway in self.gateways]

    def messages(self, readings: StepReadings, ts: datetime) -> Iterator[tuple[str, bytes]]:
        rfc3339, epoch_s = ts.isoformat(), ts.timestamp()
        values = readings.value
        for frame in self.frames:
            yield frame.topic, orjson.dumps({"ts": rfc3339, "values": frame.pick(values)})
        epoch_ms = round(epoch_s * 1000)
        for single in self.singles:
            yield single.topic, orjson.dumps({"ts": epoch_ms, "value": values[single.index]})
        local = ts.replace(tzinfo=None).isoformat(timespec="seconds")
        for device in self.devices:
            rate_kw = max(readings.rate_kw[device.index], 0.0)
            total_kwh = readings.total_kwh[device.index]
            if device.mapping.format == "tasmota":
                payload = tasmota_sensor(local, rate_kw, total_kwh)
            else:
                payload = shelly_status(device.mapping, int(epoch_s), rate_kw, total_kwh)
            yield device.topic, payload


def tasmota_sensor(local_time: str, power_kw: float, total_kwh: float) -> bytes:
    """A Tasmota `tele/<device>/SENSOR` message of an energy-monitoring plug or relay."""
    watts = round(power_kw * 1000.0)
    return orjson.dumps(
        {
            "Time": local_time,
            "ENERGY": {
                "Total": round(total_kwh, 3),
                "Power": watts,
                "ApparentPower": round(watts / POWER_FACTOR),
                "Factor": POWER_FACTOR,
                "Voltage": round(VOLTAGE_V),
                "Current": round(watts / POWER_FACTOR / VOLTAGE_V, 3),
            },
        }
    )


def shelly_status(
    mapping: DeviceMapping, minute_ts: int, power_kw: float, total_kwh: float
) -> bytes:
    """A Shelly Gen2 `status/switch:N` or `status/em:N` notification."""
    watts = round(power_kw * 1000.0, 1)
    body: dict[str, object] = {
        "id": mapping.channel,
        "apower": watts,
        "voltage": VOLTAGE_V,
        "current": round(watts / POWER_FACTOR / VOLTAGE_V, 3),
        "aenergy": {"total": round(total_kwh * 1000.0, 3), "minute_ts": minute_ts},
    }
    if mapping.component == "switch":
        body = {"id": mapping.channel, "source": "timer", "output": watts > 0, **body}
    return orjson.dumps(body)
