"""The site page's "same hours last week" on the week of a daylight-saving change: the same clock
hours of the same weekday, not the hours 168 h before."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from energyhub.api.app import create_app
from energyhub.api.keys import create_key
from energyhub.sites import parse_site
from energyhub.store.db import connect
from tests.api.conftest import settings_for
from tests.scheduler.conftest import prepare_db, write_readings

TZ = "Europe/Berlin"


def site_doc() -> dict[str, Any]:
    building = {"id": "office", "class": "office-A", "floor_area_m2": 2000,
                "meters": [{"id": "main", "carrier": "electricity", "quantity": "power_kw"}]}  # fmt: skip
    park = {"id": "bp", "grid": {"import_max_kw": 1000}, "buildings": [building]}
    return {"version": 1, "timezone": TZ, "city": {"id": "bc", "parks": [park]}}


@pytest.fixture
async def client(pg_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """100 kW every quarter hour from 20 March to 1 April 2026 (the clocks went forward on the
    29th), and the API."""
    await prepare_db(pg_url, parse_site(site_doc(), "berlin.yaml"))
    index = pd.date_range(pd.Timestamp("2026-03-20", tz=TZ), pd.Timestamp("2026-04-01", tz=TZ),
                          freq="15min", inclusive="left")  # fmt: skip
    await write_readings(pg_url, {"main": pd.Series(100.0, index)})
    site_file = tmp_path / "berlin.yaml"
    site_file.write_text(yaml.safe_dump(site_doc()))
    async with connect(pg_url) as conn:
        _, token = await create_key(conn, "admin", "bc", "admin@bc")
    app = create_app(settings_for(pg_url, site_file=site_file))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as c:
            yield c


@pytest.mark.parametrize(
    ("end", "today_kwh", "last_week_kwh"),
    [
        ("2026-03-30T10:00:00+02:00", 1000.0, 1000.0),  # 00:00–10:00 both Mondays
        ("2026-03-29T10:00:00+02:00", 900.0, 1000.0),  # the 23 h Sunday: 9 h to 10:00
    ],
)
async def test_last_week_is_the_same_clock_hours_across_the_change(
    client: httpx.AsyncClient, end: str, today_kwh: float, last_week_kwh: float
) -> None:
    page = await client.get("/ui/sites/office", params={"end": end})
    assert page.status_code == 200, page.text[:300]
    row = page.text.split('data-carrier="electricity"', 1)[1].split("</tr>", 1)[0]
    today, last_week = re.findall(r'<td class="num">([^<]*)</td>', row)[:2]
    assert (today, last_week) == (f"{today_kwh:,.1f}", f"{last_week_kwh:,.1f}"), row
