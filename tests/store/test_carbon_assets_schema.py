"""Migration 14 on both storage paths: serials retired once (exclusion constraint), append-only
tables, and a site-file version per changed load."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.types.range import Range

from energyhub.sites import SiteFile, parse_site
from energyhub.store.sync import sync_site
from tests.store.test_sync import edited

INSTRUMENT = """
INSERT INTO green_instruments (kind, site_id, registry, project, technology, location, vintage,
    serials, mwh, recorded_by, reason)
VALUES ('certificate', 'b01', %s, 'p', 'wind', 'x', 2026, %s, %s, 't', 't') RETURNING id"""


async def test_serial_ranges_are_held_once_per_registry(
    conn: AsyncConnection, example_site: SiteFile
) -> None:
    await sync_site(conn, example_site)
    await conn.execute(INSTRUMENT, ("GEC", Range(100, 200, "[)"), 100))
    with pytest.raises(psycopg.errors.ExclusionViolation):
        await conn.execute(INSTRUMENT, ("GEC", Range(199, 205, "[)"), 6))
    await conn.execute(INSTRUMENT, ("I-REC", Range(199, 205, "[)"), 6))  # another registry
    await conn.execute(INSTRUMENT, ("GEC", Range(200, 205, "[)"), 5))  # adjacent, not overlapping
    with pytest.raises(psycopg.errors.CheckViolation):  # MWh must equal the certificates
        await conn.execute(INSTRUMENT, ("GEC", Range(300, 305, "[)"), 4))
    for statement in (
        "UPDATE green_instruments SET reason = 'edited'",
        "DELETE FROM green_instruments",
        "TRUNCATE carbon_ledger",
    ):
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
            await conn.execute(statement)
    cur = await conn.execute("SELECT count(*) FROM green_instruments")
    assert await cur.fetchone() == (3,)


async def test_a_site_file_version_per_changed_load(
    conn: AsyncConnection, example_site: SiteFile
) -> None:
    await sync_site(conn, example_site)
    await sync_site(conn, example_site)  # unchanged: no new version
    changed = edited(example_site)
    changed["city"]["carbon"]["residual_mix_kg_per_kwh"] = 0.6
    await sync_site(conn, parse_site(changed))
    cur = await conn.execute(
        "SELECT content->'city'->'carbon'->>'residual_mix_kg_per_kwh' FROM site_file_versions "
        "ORDER BY id"
    )
    assert await cur.fetchall() == [(None,), ("0.6",)]
