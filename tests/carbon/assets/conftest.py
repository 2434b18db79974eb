"""The carbon test city (tests/carbon/conftest.py) with a residual mix and a trading scheme, loaded
once into a template database; each test gets its own copy, since ledgers only grow.

Readings as there: b1 bought 2200 kWh on 2026-10-05 and 2400 kWh on 2026-10-04; b3 720 kWh a
day; nothing after 2026-10-05.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from energyhub.sites import SiteFile, parse_site
from tests.carbon.conftest import ADMIN_URL, SITE, load

RESIDUAL_MIX = 0.6
CCER_SHARE = 0.05


def assets_site() -> dict[str, Any]:
    data = copy.deepcopy(SITE)
    data["city"]["carbon"]["residual_mix_kg_per_kwh"] = RESIDUAL_MIX
    data["city"]["carbon"]["residual_mix_source"] = "test residual mix 2025, AIB-style"
    tenant = data["city"]["parks"][0]["buildings"][0]["enterprises"][0]
    tenant["carbon_scheme"] = {
        "name": "shanghai-ets",
        "offset_share": CCER_SHARE,
        "surrender_due": "06-30",
        "price_series": "SHEA",
        "warn_days": 60,
    }
    building = data["city"]["parks"][0]["buildings"][0]
    building["carbon_scheme"] = {
        "price_series": "SHEA",
        "plan_price": "position",
        "surplus_price": "sale",
    }
    return data


def _url(name: str) -> str:
    return f"{ADMIN_URL.rpartition('/')[0]}/{name}"


def _drop(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def assets_site_file() -> SiteFile:
    return parse_site(assets_site())


@pytest.fixture(scope="session")
def assets_template(assets_site_file: SiteFile) -> Iterator[str]:
    """A database with the city and its readings, used only as a template."""
    name = f"eh_assets_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        asyncio.run(load(_url(name), assets_site_file))
        yield name
    finally:
        _drop(name)


@pytest.fixture
def assets_url(assets_template: str) -> Iterator[str]:
    """A fresh copy of the template for one test."""
    name = f"eh_assets_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(assets_template)
            )
        )
    try:
        yield _url(name)
    finally:
        _drop(name)
