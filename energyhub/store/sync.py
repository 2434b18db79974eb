"""`sites load`: bring `sites`, `meters` and `enterprise_meters` in line with a site file.

Idempotent. Meters are never deleted (their readings stay): a meter gone from the file is
retired (a sub-meter stays part of its parent, so its history is never counted beside it), a
meter with `renamed_from` keeps its row (and readings) under the new id, a retired meter that
comes back is reactivated. Sites gone from the file are marked inactive. Listeners on the
`energyhub_sites` channel (the ingest) are notified so they reload the mapping without a restart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from energyhub.ingest.bounds import site_bounds
from energyhub.sites import Building, Enterprise, Meter, Park, SiteFile, SiteNode, modbus_point
from energyhub.store.site_versions import record_version
from energyhub.store.siteload import sync_members

SITES_CHANNEL = "energyhub_sites"
SYNC_LOCK_KEY = 7_326_140_002
"""pg_advisory_xact_lock key serializing site loads."""


@dataclass
class SyncReport:
    """What a site load changed; `unchanged` meters are counted, the rest named `site/meter`."""

    sites_upserted: int = 0
    sites_deactivated: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    unchanged: int = 0
    site_load_rebuilt: list[str] = field(default_factory=list)
    """Sites whose load rollup was rebuilt because their set of meters with data changed."""
    reread: list[str] = field(default_factory=list)
    """Meters whose stored readings now mean something else (`b01/heat: carrier heat → gas`):
    their rollups are recomputed at the next refresh."""

    @property
    def changed(self) -> bool:
        return bool(
            self.sites_deactivated
            or self.added
            or self.renamed
            or self.updated
            or self.reactivated
            or self.retired
        )


def _attributes(node: SiteNode, site: SiteFile) -> dict[str, Any]:
    """A node's own settings, without its children (stored as JSON for the API and reports)."""
    children = {"parks", "buildings", "enterprises", "meters", "assets"}
    data = node.model.model_dump(mode="json", by_alias=True, exclude=children | {"id", "name"})
    if isinstance(node.model, Park | Building):
        data["assets"] = [a.model_dump(mode="json") for a in node.model.assets]
    if node.kind == "city":
        data["timezone"] = site.timezone
    return data


def _meter_values(meter: Meter) -> tuple[Any, ...]:
    device = meter.device.model_dump(mode="json") if meter.device else None
    if meter.sparkplug is not None:
        device = {"format": "sparkplug", **meter.sparkplug.model_dump(mode="json")}
    if meter.modbus is not None:
        point = modbus_point(meter.modbus, meter.quantity)
        device = {
            "format": "modbus",
            **meter.modbus.model_dump(mode="json", exclude_none=True),
            "resolved": dataclasses.asdict(point),
        }
    return (meter.carrier, meter.quantity, meter.asset, meter.rollover_kwh, device)


async def _sync_sites(conn: AsyncConnection, site: SiteFile, report: SyncReport) -> None:
    nodes = list(site.nodes())
    for node in nodes:  # parents first, so the parent_id reference always resolves
        await conn.execute(
            """INSERT INTO sites (id, kind, parent_id, name, attributes, active, updated_at)
               VALUES (%s, %s, %s, %s, %s, true, now())
               ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, parent_id = excluded.parent_id,
                   name = excluded.name, attributes = excluded.attributes, active = true,
                   updated_at = now()""",
            (node.id, node.kind, node.parent_id, node.name, Jsonb(_attributes(node, site))),
        )
    report.sites_upserted = len(nodes)
    cur = await conn.execute(
        "UPDATE sites SET active = false, updated_at = now() "
        "WHERE active AND NOT (id = ANY(%s)) RETURNING id",
        ([n.id for n in nodes],),
    )
    report.sites_deactivated = sorted(row[0] for row in await cur.fetchall())


@dataclass
class StoredMeter:
    row_id: int
    active: bool
    values: tuple[Any, ...]


async def _existing_meters(conn: AsyncConnection) -> dict[tuple[str, str], StoredMeter]:
    """The newest row per (site, meter name), active rows first."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (site_id, name) site_id, name, id, active, carrier, quantity, "
        "asset_id, rollover_kwh, device FROM meters ORDER BY site_id, name, active DESC, id DESC"
    )
    return {
        (row[0], row[1]): StoredMeter(row[2], row[3], tuple(row[4:]))
        for row in await cur.fetchall()
    }


REREAD = {0: "carrier", 1: "quantity", 3: "rollover_kwh"}
"""What a meter's readings mean, by position in `_meter_values`: a change rereads its history
(kW as a counter, heat as gas), so its rollups and its sites' loads are computed again."""


def _reread(stored: tuple[Any, ...], values: tuple[Any, ...]) -> list[str]:
    return [
        f"{name} {stored[i]} → {values[i]}" for i, name in REREAD.items() if stored[i] != values[i]
    ]


def _json_or_none(value: Any) -> Jsonb | None:
    return Jsonb(value) if value is not None else None


async def _sync_meter(
    conn: AsyncConnection,
    site_id: str,
    meter: Meter,
    existing: dict[tuple[str, str], StoredMeter],
    report: SyncReport,
    reread: list[int],
) -> int:
    """Add, rename, reactivate or update one meter; return its row id (added to `reread` when
    its readings now mean something else)."""
    label = f"{site_id}/{meter.id}"
    values = _meter_values(meter)
    stored = existing.get((site_id, meter.id))
    renamed = False
    if stored is None and meter.renamed_from is not None:
        previous = existing.pop((site_id, meter.renamed_from), None)
        if previous is not None and previous.active:
            await conn.execute(
                "UPDATE meters SET name = %s WHERE id = %s", (meter.id, previous.row_id)
            )
            report.renamed.append(f"{site_id}/{meter.renamed_from} → {meter.id}")
            stored, renamed = previous, True
    if stored is None:
        cur = await conn.execute(
            "INSERT INTO meters (site_id, name, carrier, quantity, asset_id, rollover_kwh, device) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (site_id, meter.id, *values[:4], _json_or_none(values[4])),
        )
        report.added.append(label)
        return int((await cur.fetchall())[0][0])
    if not stored.active:
        report.reactivated.append(label)
    elif stored.values != values:
        report.updated.append(label)
    elif not renamed:
        report.unchanged += 1
    changes = _reread(stored.values, values)
    if changes:
        report.reread.append(f"{label}: {', '.join(changes)}")
        reread.append(stored.row_id)
    if not stored.active or stored.values != values:
        await conn.execute(
            "UPDATE meters SET active = true, retired_at = NULL, carrier = %s, quantity = %s, "
            "asset_id = %s, rollover_kwh = %s, device = %s WHERE id = %s",
            (*values[:4], _json_or_none(values[4]), stored.row_id),
        )
    return stored.row_id


async def _sync_meters(conn: AsyncConnection, site: SiteFile, report: SyncReport) -> None:
    existing = await _existing_meters(conn)
    ids: dict[tuple[str, str], int] = {}
    reread: list[int] = []
    for _, owner in site.metered_sites():
        for meter in owner.meters:
            ids[(owner.id, meter.id)] = await _sync_meter(
                conn, owner.id, meter, existing, report, reread
            )
    if reread:
        await conn.execute(MARK_METER_DIRTY, (reread,))
    cur = await conn.execute(
        "UPDATE meters SET active = false, retired_at = now() "
        "WHERE active AND NOT (id = ANY(%s)) RETURNING site_id || '/' || name",
        (list(ids.values()),),
    )
    report.retired = sorted(row[0] for row in await cur.fetchall())
    for _, owner in site.metered_sites():
        for meter in owner.meters:
            parent = ids[(owner.id, meter.submeter_of)] if meter.submeter_of else None
            await conn.execute(
                "UPDATE meters SET parent_meter_id = %s WHERE id = %s "
                "AND parent_meter_id IS DISTINCT FROM %s",
                (parent, ids[(owner.id, meter.id)], parent),
            )
    await _sync_meter_details(conn, site, ids)
    await _sync_enterprises(conn, site, ids)


MARK_METER_DIRTY = """
INSERT INTO rollup_dirty (bucket)
SELECT DISTINCT date_bin('15 minutes', ts, '2000-01-01 00:00:00+00') FROM readings
WHERE meter_id = ANY(%s)
ON CONFLICT (bucket) DO UPDATE SET bucket = excluded.bucket"""
"""A meter whose nominal interval, carrier, quantity or rollover changed gets its rollups
recomputed (the next refresh)."""


async def _sync_meter_details(
    conn: AsyncConnection, site: SiteFile, ids: dict[tuple[str, str], int]
) -> None:
    """Each meter's nominal interval and plausibility bounds (energyhub/ingest/bounds.py)."""
    bounds = site_bounds(site)
    cur = await conn.execute(
        "SELECT id, interval_s FROM meters WHERE id = ANY(%s)", (list(ids.values()),)
    )
    before = {int(row_id): interval for row_id, interval in await cur.fetchall()}
    changed = []
    for _, owner in site.metered_sites():
        for meter in owner.meters:
            row_id, b = ids[(owner.id, meter.id)], bounds[(owner.id, meter.id)]
            await conn.execute(
                "UPDATE meters SET min_value = %s, max_value = %s, max_rise_kw = %s, "
                "bounds_source = %s, interval_s = %s WHERE id = %s",
                (b.min_value, b.max_value, b.max_rise_kw, b.source, meter.interval_s, row_id),
            )
            if before.get(row_id) != meter.interval_s:
                changed.append(row_id)
    if changed:
        await conn.execute(MARK_METER_DIRTY, (changed,))


async def _sync_enterprises(
    conn: AsyncConnection, site: SiteFile, ids: dict[tuple[str, str], int]
) -> None:
    await conn.execute("DELETE FROM enterprise_meters")
    for _, owner in site.metered_sites():
        if not isinstance(owner, Building):
            continue
        for enterprise in owner.enterprises:
            await conn.execute(
                "INSERT INTO enterprise_meters (enterprise_id, meter_id) "
                "SELECT %s, unnest(%s::integer[])",
                (enterprise.id, _enterprise_meter_ids(owner, enterprise, ids)),
            )


def _enterprise_meter_ids(
    building: Building, enterprise: Enterprise, ids: dict[tuple[str, str], int]
) -> list[int]:
    result = []
    for ref in enterprise.meters:
        building_id, _, meter_id = ref.rpartition("/")
        result.append(ids[(building_id or building.id, meter_id)])
    return result


async def sync_site(conn: AsyncConnection, site: SiteFile) -> SyncReport:
    """Load a validated site file into the database in one transaction."""
    report = SyncReport()
    async with conn.transaction(), conn.pipeline():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SYNC_LOCK_KEY,))
        await _sync_sites(conn, site, report)
        await _sync_meters(conn, site, report)
        report.site_load_rebuilt = await sync_members(conn)
        await record_version(conn, site)  # the change history carbon disclosures read
        await conn.execute("SELECT pg_notify(%s, %s)", (SITES_CHANNEL, site.city.id))
    return report
