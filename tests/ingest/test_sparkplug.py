"""Sparkplug B through the real Mosquitto into PostgreSQL: births, aliases, deaths, bad frames."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from energyhub.alerts.checks import SilenceCheck, Snapshot
from energyhub.errors import SiteFileError
from energyhub.ingest.sparkplug.payload import DataType, decode_frame
from energyhub.sites import parse_site
from energyhub.store.db import connect
from energyhub.store.devices import field_devices, offline_meters
from energyhub.store.sync import sync_site
from tests.support.sparkplug import EdgeNode

from .conftest import ingest_settings, publish, running_worker, scalar, wait_for

READINGS = "SELECT count(*) FROM readings"
REJECTED = "SELECT count(*) FROM rejected"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


def ms(seconds: float) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


def site_with_sparkplug(path: Path, group: str) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    meters = data["city"]["parks"][0]["buildings"][0]["meters"]
    main = next(m for m in meters if m["id"] == "main")
    main["sparkplug"] = {
        "group": group,
        "node": "gw1",
        "device": "pm1",
        "metric": "Active Power",
        "scale": 0.001,
    }
    f3 = next(m for m in meters if m["id"] == "f3")
    f3["sparkplug"] = {"group": group, "node": "gw1", "metric": "Energy/Import kWh"}
    return data


def edge_node(group: str) -> EdgeNode:
    return EdgeNode(
        group,
        "gw1",
        {"Energy/Import kWh": (1, DataType.DOUBLE), "Temperature/CPU": (2, DataType.FLOAT)},
        {"pm1": {"Active Power": (10, DataType.INT32), "Status": (11, DataType.STRING)}},
    )


@pytest.fixture
async def spb_db(pg_url: str, example_site_path: Path, prefix: str) -> str:
    from energyhub.store.migrations import migrate

    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, parse_site(site_with_sparkplug(example_site_path, prefix)))
    return pg_url


async def meter_values(db_url: str, meter: str) -> list[tuple[datetime, float]]:
    async with connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT r.ts, r.value FROM readings AS r JOIN meters AS m ON m.id = r.meter_id "
            "JOIN sites AS s ON s.id = m.site_id WHERE s.id = 'b01' AND m.name = %s ORDER BY r.ts",
            (meter,),
        )
        return [(ts, float(v)) for ts, v in await cur.fetchall()]


async def reasons(db_url: str) -> list[str]:
    async with connect(db_url) as conn:
        cur = await conn.execute("SELECT reason FROM rejected ORDER BY id")
        return [str(r) for (r,) in await cur.fetchall()]


async def test_births_and_aliased_data_become_readings(spb_db: str, prefix: str) -> None:
    node = edge_node(prefix)
    frames = [
        node.nbirth(ms(0), {"Energy/Import kWh": 100.0, "Temperature/CPU": 41.0}),
        node.dbirth("pm1", ms(0), {"Active Power": 250_000, "Status": "ok"}),
        node.data(ms(60), {"Active Power": -1_500}, device="pm1"),  # signed: export
        node.data(ms(60), {"Energy/Import kWh": 104.25}),
        node.data(ms(120), {"Active Power": 262_000, "Status": "ok"}, device="pm1"),
    ]
    async with running_worker(ingest_settings(spb_db, prefix)):
        await publish(frames)
        assert await wait_for(spb_db, READINGS, 5) == 5
    assert await meter_values(spb_db, "main") == [
        (T0, 250.0),
        (T0 + timedelta(seconds=60), -1.5),
        (T0 + timedelta(seconds=120), 262.0),
    ]
    assert await meter_values(spb_db, "f3") == [(T0, 100.0), (T0 + timedelta(seconds=60), 104.25)]
    assert await scalar(spb_db, REJECTED) == 0
    async with connect(spb_db) as conn:
        devices = {(d.key, d.online) for d in await field_devices(conn)}
    assert devices == {(f"{prefix}/gw1", True), (f"{prefix}/gw1/pm1", True)}


async def test_bad_frames_are_rejected_with_reasons_and_good_metrics_kept(
    spb_db: str, prefix: str
) -> None:
    node = edge_node(prefix)
    birth = [
        node.nbirth(ms(0), {"Energy/Import kWh": 100.0}),
        node.dbirth("pm1", ms(0), {"Active Power": 1_000}),
    ]
    garbage = (node.topic("NDATA"), b"\x0a\xff\xff\xff\xff\x0f not protobuf")
    unknown_alias = node.raw(
        "NDATA",
        [
            {"alias": 99, "datatype": DataType.DOUBLE, "value": 1.0, "timestamp": ms(30)},
            {"alias": 1, "datatype": DataType.DOUBLE, "value": 101.0, "timestamp": ms(30)},
        ],
    )
    wrong_type = node.raw(
        "DDATA",
        [
            {"alias": 10, "datatype": DataType.STRING, "value": "n/a", "timestamp": ms(40)},
            {"alias": 10, "datatype": DataType.INT32, "value": 2_000, "timestamp": ms(45)},
        ],
        device="pm1",
    )
    node.seq = (node.seq + 3) % 256  # three messages lost on the way
    after_gap = node.data(ms(50), {"Energy/Import kWh": 103.0})
    async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as watcher:
        await watcher.subscribe(f"spBv1.0/{prefix}/NCMD/gw1", qos=0)
        async with running_worker(ingest_settings(spb_db, prefix)):
            await publish([*birth, garbage, unknown_alias, wrong_type, after_gap])
            assert await wait_for(spb_db, REJECTED, 4) == 4
            assert await wait_for(spb_db, READINGS, 5) == 5
            command = await asyncio.wait_for(anext(aiter(watcher.messages)), 10)
    found = await reasons(spb_db)
    assert "not a Sparkplug B protobuf" in found[0]
    assert "unknown alias 99" in found[1] and "rebirth requested" in found[1]
    assert f"{prefix}/gw1/pm1 metric 'Active Power': value must be a number, got 'n/a'" in found[2]
    assert "sequence gap, expected seq 4, got 7" in found[3]
    assert [v for _, v in await meter_values(spb_db, "f3")] == [100.0, 101.0, 103.0]
    assert [v for _, v in await meter_values(spb_db, "main")] == [1.0, 2.0]
    rebirth = decode_frame(bytes(command.payload))  # type: ignore[arg-type]
    assert [(m.name, m.value) for m in rebirth.metrics] == [("Node Control/Rebirth", True)]


async def test_a_metric_given_twice_at_one_time_is_rejected_by_name(
    spb_db: str, prefix: str
) -> None:
    """A DDATA carrying Active Power twice with one timestamp stored one of the two values
    unseen (the store keeps one reading per meter and time); now both are rejected by name, as
    for a JSON frame, and the metrics beside them kept."""
    node = edge_node(prefix)
    birth = [
        node.nbirth(ms(0), {"Energy/Import kWh": 100.0}),
        node.dbirth("pm1", ms(0), {"Active Power": 1_000}),
    ]
    twice = node.raw(
        "DDATA",
        [
            {"alias": 10, "datatype": DataType.INT32, "value": 2_000, "timestamp": ms(30)},
            {"alias": 10, "datatype": DataType.INT32, "value": 3_000, "timestamp": ms(30)},
            {"alias": 10, "datatype": DataType.INT32, "value": 4_000, "timestamp": ms(40)},
        ],
        device="pm1",
    )
    async with running_worker(ingest_settings(spb_db, prefix)):
        await publish([*birth, twice])
        assert await wait_for(spb_db, REJECTED, 1) == 1
        assert await wait_for(spb_db, READINGS, 3) == 3
    at = (T0 + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    assert await reasons(spb_db) == [
        f"meter b01/main: given 2 times at {at} with different values (2, 3): none stored, "
        "which one it read is unknown"
    ]
    assert [v for _, v in await meter_values(spb_db, "main")] == [1.0, 4.0]


async def test_data_before_a_birth_asks_for_rebirth_then_flows(spb_db: str, prefix: str) -> None:
    """A host that (re)started after the node's birth knows no aliases: it asks for a rebirth."""
    node = edge_node(prefix)
    node.nbirth(ms(0), {})  # published before this host was there
    node.dbirth("pm1", ms(0), {})
    early = node.data(ms(10), {"Active Power": 5_000}, device="pm1")
    async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as watcher:
        await watcher.subscribe(f"spBv1.0/{prefix}/NCMD/gw1", qos=0)
        async with running_worker(ingest_settings(spb_db, prefix)):
            await publish([early])
            await asyncio.wait_for(anext(aiter(watcher.messages)), 10)
            rebirth = [
                node.nbirth(ms(20), {"Energy/Import kWh": 7.0}),
                node.dbirth("pm1", ms(20), {"Active Power": 6_000}),
                node.data(ms(30), {"Active Power": 7_000}, device="pm1"),
            ]
            await publish(rebirth)
            assert await wait_for(spb_db, READINGS, 3) == 3
    found = await reasons(spb_db)
    assert any("before its NBIRTH in this session" in r for r in found)
    assert [v for _, v in await meter_values(spb_db, "main")] == [6.0, 7.0]


async def test_a_node_death_makes_its_meters_silent_at_once(spb_db: str, prefix: str) -> None:
    node = edge_node(prefix)
    stale = EdgeNode(prefix, "gw1", {}, bd_seq=7).ndeath()  # the will of an earlier session
    async with running_worker(ingest_settings(spb_db, prefix)):
        await publish(
            [
                node.nbirth(ms(0), {"Energy/Import kWh": 1.0}),
                node.dbirth("pm1", ms(0), {"Active Power": 1_000}),
                stale,
            ]
        )
        assert await wait_for(spb_db, READINGS, 2) == 2
        await asyncio.sleep(0.5)
        async with connect(spb_db) as conn:
            assert {d.online for d in await field_devices(conn)} == {True}
        await publish([node.ndeath()])
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            async with connect(spb_db) as conn:
                states = {d.key: d.online for d in await field_devices(conn)}
            if not any(states.values()):
                break
            await asyncio.sleep(0.2)
    assert states == {f"{prefix}/gw1": False, f"{prefix}/gw1/pm1": False}
    main_id = await scalar(spb_db, "SELECT id FROM meters WHERE site_id = 'b01' AND name = 'main'")
    async with connect(spb_db) as conn:
        offline = await offline_meters(conn, [main_id])
        latest = await (
            await conn.execute("SELECT ts, value FROM meter_latest WHERE meter_id = %s", (main_id,))
        ).fetchone()
    assert main_id in offline and "NDEATH" in offline[main_id][1]
    assert latest is not None
    now = latest[0] + timedelta(seconds=5)  # five seconds after its last reading: not yet aged
    snap = Snapshot(now, now, {main_id: (latest[0], latest[1])}, {}, offline=offline)
    observed = SilenceCheck(main_id, "main", silent_s=900).observe(snap, is_open=False)
    assert observed.active and "NDEATH" in observed.message
    assert (
        not SilenceCheck(main_id, "main", 900)
        .observe(Snapshot(now, now, {main_id: (latest[0], latest[1])}, {}), is_open=False)
        .active
    )


def test_site_file_refuses_bad_sparkplug_mappings(example_site_path: Path) -> None:
    data = site_with_sparkplug(example_site_path, "grp")
    meters = data["city"]["parks"][0]["buildings"][0]["meters"]
    meters[0]["sparkplug"]["node"] = "gw/1"
    meters[3]["sparkplug"] = dict(meters[0]["sparkplug"], node="gw1")
    with pytest.raises(SiteFileError) as error:
        parse_site(data)
    text = str(error.value)
    assert "city.parks[0].buildings[0].meters[0].sparkplug.node" in text and "gw/1" in text
    meters[0]["sparkplug"]["node"] = "gw1"
    with pytest.raises(SiteFileError, match="feeds more than one meter"):
        parse_site(data)
    meters[3].pop("sparkplug")
    meters[0]["device"] = {"format": "tasmota", "device": "plug-1"}
    with pytest.raises(SiteFileError, match="one source, not device and sparkplug"):
        parse_site(data)


def test_a_rebirth_rebinds_aliases_and_signed_integers_keep_their_sign() -> None:
    """Decoder alone: aliases bound by the last birth win, and Int16 -2 is -2, not 65534."""
    from energyhub.ingest.decoders import Decoder
    from energyhub.ingest.mapping import MeterMap, MeterRef, SparkplugRef
    from energyhub.ingest.message import BatchBuilder, Delivery

    mapping = MeterMap()
    mapping.by_sparkplug[("g", "n", "d")] = {
        "Active Power": SparkplugRef(MeterRef(1, "power_kw"), 1.0),
        "Import": SparkplugRef(MeterRef(2, "energy_kwh"), 1.0),
    }
    decoder = Decoder(mapping, "energyhub", 1 << 16)
    node = EdgeNode(
        "g", "n", {}, {"d": {"Active Power": (10, DataType.INT16), "Import": (11, DataType.DOUBLE)}}
    )
    first = [
        node.nbirth(ms(0), {}),
        node.dbirth("d", ms(0), {}),
        node.data(ms(1), {"Active Power": -2}, "d"),
    ]
    node.devices["d"] = {"Active Power": (11, DataType.INT16), "Import": (10, DataType.DOUBLE)}
    second = [
        node.nbirth(ms(2), {}),
        node.dbirth("d", ms(2), {}),
        node.data(ms(3), {"Active Power": -3, "Import": 5.5}, "d"),
    ]
    out = BatchBuilder()
    messages = [*first, *second]
    decoder.decode(
        Delivery([t for t, _ in messages], [p for _, p in messages], [0] * len(messages), b"", 0),
        out,
    )
    assert not out.rejects
    readings = [
        (m, v)
        for m, v, ts in zip(out.meter_id, out.value, out.ts_us, strict=True)
        if ts >= ms(1) * 1000
    ]
    assert readings == [(1, -2.0), (1, -3.0), (2, 5.5)]
