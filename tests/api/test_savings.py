"""GET /sites/{id}/savings: the realized figures of the steps a site's plans controlled, per
local day, scoped like the other site routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from energyhub.api.app import create_app
from energyhub.api.keys import create_key
from energyhub.numbers import figure
from energyhub.store.db import connect
from tests.api.conftest import settings_for
from tests.plans.test_realized import DAY_MEAN_CNY_PER_KWH
from tests.scheduler.conftest import BATTERY_KWH, site_doc
from tests.scheduler.test_actual import GRID_KG_PER_KWH, MAIN_KW, VALLEY_CNY_PER_KWH, run_steps

BATTERY_KW = [475.0, 400.0, 160.0]
WINDOW = {"start": "2025-07-08T00:00:00+08:00", "end": "2025-07-09T00:00:00+08:00"}


@pytest.fixture
async def api(
    pg_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """Three scheduler-controlled steps of `office` (tests/scheduler/test_actual), an API over
    them, and tokens for the park and for another site."""
    await run_steps(pg_url, "auto", 3)
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site_doc("auto")))
    tokens = {}
    async with connect(pg_url) as conn:
        for site in ("sp", "office"):
            _, tokens[site] = await create_key(conn, "viewer", site, f"viewer@{site}")
    app = create_app(settings_for(pg_url, site_file=site_file))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client, tokens


async def test_savings_per_day_against_the_counterfactual(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, tokens = api
    answer = await client.get(
        "/sites/office/savings", params=WINDOW, headers={"Authorization": f"Bearer {tokens['sp']}"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [d["day"] for d in body["days"]] == ["2025-07-08"]
    demand_kwh = sum(m - b for m, b in zip(MAIN_KW[:3], BATTERY_KW, strict=True)) * 0.25
    metered_kwh = sum(MAIN_KW[:3]) * 0.25
    realized = body["realized"]
    assert realized["steps"] == 3 and body["days"][0]["compared_steps"] == 3
    assert realized["counterfactual_cny"] == pytest.approx(demand_kwh * VALLEY_CNY_PER_KWH)
    assert realized["metered_cny"] == pytest.approx(metered_kwh * VALLEY_CNY_PER_KWH)
    left_kwh = 0.12 * BATTERY_KWH * 0.95  # what the meters left in the battery, as discharged
    # valued at the local day's mean price, not the three valley steps' (docs/billing-and-savings)
    assert realized["savings_cny"] == pytest.approx(
        (demand_kwh - metered_kwh) * VALLEY_CNY_PER_KWH + left_kwh * DAY_MEAN_CNY_PER_KWH
    )
    assert realized["savings_co2_kg"] == pytest.approx(
        (demand_kwh - metered_kwh + left_kwh) * GRID_KG_PER_KWH
    )
    assert realized["stored_value_cny"] == pytest.approx(left_kwh * DAY_MEAN_CNY_PER_KWH)
    sides = realized["breakdown"]
    assert set(sides) >= {"counterfactual", "metered"}
    assert sides["metered"]["energy_cny"] == pytest.approx(metered_kwh * VALLEY_CNY_PER_KWH)
    assert sides["counterfactual"]["energy_cny"] == pytest.approx(demand_kwh * VALLEY_CNY_PER_KWH)
    assert sides["metered"]["stored_cny"] == pytest.approx(realized["stored_value_cny"])
    assert body["days"][0]["realized"] == realized
    assert body["start"] == WINDOW["start"]


async def test_savings_are_scoped_and_checked(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, tokens = api
    office = {"Authorization": f"Bearer {tokens['office']}"}
    outside = await client.get("/sites/sp/savings", params=WINDOW, headers=office)
    assert outside.status_code == 404
    backwards = await client.get(
        "/sites/office/savings",
        params={"start": WINDOW["end"], "end": WINDOW["start"]},
        headers=office,
    )
    assert backwards.status_code == 422 and "end" in backwards.text
    nothing = await client.get(
        "/sites/office/savings",
        params={"start": "2025-06-01T00:00:00+08:00", "end": "2025-06-02T00:00:00+08:00"},
        headers=office,
    )
    assert nothing.status_code == 200 and nothing.json()["days"] == []
    assert nothing.json()["realized"] is None


async def test_the_plan_page_shows_the_realized_figures(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, tokens = api
    headers = {"Authorization": f"Bearer {tokens['sp']}"}
    plans = (await client.get("/plans", params={"site_id": "office"}, headers=headers)).json()
    first = min(p["id"] for p in plans["plans"] if p["status"] != "failed")
    page = await client.get(f"/ui/plans/{first}", headers=headers)
    assert page.status_code == 200
    demand_kwh = sum(m - b for m, b in zip(MAIN_KW[:3], BATTERY_KW, strict=True)) * 0.25
    left_kwh = 0.12 * BATTERY_KWH * 0.95  # what the meters left in the battery, as discharged
    stored_cny = left_kwh * DAY_MEAN_CNY_PER_KWH  # at the local day's mean price
    saved = (demand_kwh - sum(MAIN_KW[:3]) * 0.25) * VALLEY_CNY_PER_KWH + stored_cny
    assert 'id="realized"' in page.text
    # 91.95 CNY: either rounding of the last digit is the same figure
    assert any(f"{figure(saved + d)} CNY" in page.text for d in (-0.01, 0.0, 0.01))
    assert f"{figure(stored_cny)} CNY" in page.text  # the stored value
    assert "counterfactual − (metered − stored value)" in page.text
    assert 'id="capture">0.98' in page.text  # stored in the valley, worth the day's mean
