"""Which meter a topic or a device feeds, loaded from the `meters` table (after `sites load`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from psycopg import AsyncConnection

from energyhub.ingest.bounds import Bounds, with_physical_limits

METERS = """
SELECT m.id, m.name, m.quantity, m.device, s.id,
       CASE WHEN s.kind = 'park' THEN s.id ELSE s.parent_id END,
       m.min_value, m.max_value, m.max_rise_kw, coalesce(m.bounds_source, '')
FROM meters AS m JOIN sites AS s ON s.id = m.site_id
WHERE m.active"""

SITES = """
SELECT CASE WHEN kind = 'park' THEN id ELSE parent_id END, id
FROM sites WHERE active AND kind IN ('park', 'building')"""


@dataclass(frozen=True, slots=True)
class MeterRef:
    """A meter as the ingest sees it: id, quantity, label and plausibility bounds."""

    id: int
    quantity: str
    label: str = ""
    min_value: float | None = None
    max_value: float | None = None
    max_rise_kw: float | None = None
    bounds_source: str = ""


@dataclass(frozen=True, slots=True)
class SparkplugRef:
    """The meter a Sparkplug metric feeds, and the factor from the metric's unit to the meter's."""

    ref: MeterRef
    scale: float


SparkplugSource = tuple[str, str, str]
"""(group, edge node, device or "" for the node itself)."""


@dataclass(frozen=True, slots=True)
class DeviceKey:
    format: str
    device: str
    component: str
    channel: int


@dataclass
class MeterMap:
    """Topic (park, site, meter) and device → meter lookups, and the version they were read at."""

    by_topic: dict[tuple[str, str, str], MeterRef] = field(default_factory=dict)
    by_device: dict[DeviceKey, MeterRef] = field(default_factory=dict)
    by_sparkplug: dict[SparkplugSource, dict[str, SparkplugRef]] = field(default_factory=dict)
    """Sparkplug source → metric name → meter."""
    by_id: dict[int, MeterRef] = field(default_factory=dict)
    sites: set[tuple[str, str]] = field(default_factory=set)
    """(park, site) of every park and building: the `{park}/{site}` levels of their topics."""
    timezone: str = "UTC"
    version: datetime | None = None

    def device_topics(self) -> list[str]:
        """The MQTT topics of every mapped device (Tasmota SENSOR, Shelly Gen2 status) and one
        filter per Sparkplug group: a group's nodes stay with the worker that keeps their state."""
        topics = {f"spBv1.0/{group}/#" for group, _, _ in self.by_sparkplug}
        for key in self.by_device:
            if key.format == "tasmota":
                topics.add(f"tele/{key.device}/SENSOR")
            else:
                topics.add(f"{key.device}/status/{key.component}:{key.channel}")
        return sorted(topics)


async def site_version(conn: AsyncConnection) -> datetime | None:
    """Changes whenever `sites load` runs (it touches every site's updated_at)."""
    cur = await conn.execute("SELECT max(updated_at) FROM sites")
    row = await cur.fetchone()
    return row[0] if row else None


async def load_meter_map(conn: AsyncConnection) -> MeterMap:
    mapping = MeterMap(version=await site_version(conn))
    cur = await conn.execute(METERS)
    for meter_row in await cur.fetchall():
        meter_id, name, quantity, device, site_id, park_id, low, high, rise, source = meter_row
        # a meter stored before its bounds were derived (or with a side open) still gets the
        # physical limits of its quantity
        bounds = with_physical_limits(quantity, Bounds(low, high, rise, source or "none"))
        ref = MeterRef(
            int(meter_id), quantity, f"{site_id}/{name}", bounds.min_value, bounds.max_value,
            bounds.max_rise_kw, bounds.source,
        )  # fmt: skip
        mapping.by_topic[(park_id, site_id, name)] = ref
        mapping.by_id[ref.id] = ref
        if device and device.get("format") == "sparkplug":
            source = (device["group"], device["node"], device.get("device") or "")
            metrics = mapping.by_sparkplug.setdefault(source, {})
            metrics[device["metric"]] = SparkplugRef(ref, float(device.get("scale", 1.0)))
        elif device and device.get("format") in ("tasmota", "shelly"):  # modbus is polled
            key = DeviceKey(
                device["format"], device["device"], device["component"], device["channel"]
            )
            mapping.by_device[key] = ref
    cur = await conn.execute(SITES)
    mapping.sites = {(park, site) for park, site in await cur.fetchall()}
    mapping.sites |= {(park, site) for park, site, _ in mapping.by_topic}
    cur = await conn.execute(
        "SELECT attributes->>'timezone' FROM sites WHERE kind = 'city' AND active LIMIT 1"
    )
    row = await cur.fetchone()
    if row and row[0]:
        mapping.timezone = row[0]
    return mapping
