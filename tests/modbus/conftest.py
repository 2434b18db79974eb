"""Modbus fixtures: a site with a gateway on a free local port, loaded into a database."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from energyhub.sites import SiteFile, parse_site
from energyhub.store.db import connect
from energyhub.store.embedded import free_port
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site


def modbus_site(path: Path, port: int, gateway: str = "gw-b01") -> dict[str, Any]:
    """The example site with b01's main meter on an SDM630 (unit 1) and its f3 sub-meter on a
    holding register of unit 2 (int32, low word first, hundredths of a kWh)."""
    data = yaml.safe_load(path.read_text())
    park = data["city"]["parks"][0]
    park["modbus_gateways"] = [
        {"id": gateway, "host": "127.0.0.1", "port": port, "units": [1, 2], "timeout_s": 0.5}
    ]
    meters = park["buildings"][0]["meters"]
    main = next(m for m in meters if m["id"] == "main")
    main["modbus"] = {
        "gateway": gateway,
        "unit": 1,
        "map": "eastron-sdm630",
        "point": "total_power_w",
        "interval_s": 0.2,
    }
    f3 = next(m for m in meters if m["id"] == "f3")
    f3["modbus"] = {
        "gateway": gateway,
        "unit": 2,
        "address": 40,
        "function": "holding",
        "type": "int32",
        "word_order": "little",
        "scale": 0.01,
        "reads": "kWh",
        "interval_s": 0.2,
    }
    return data


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def modbus_port() -> int:
    return free_port()


@pytest.fixture
def modbus_site_file(example_site_path: Path, modbus_port: int) -> SiteFile:
    return parse_site(modbus_site(example_site_path, modbus_port))


@pytest.fixture
async def modbus_db(pg_url: str, modbus_site_file: SiteFile) -> str:
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, modbus_site_file)
    return pg_url
