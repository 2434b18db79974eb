"""GET /alerts in scope with filters, acknowledgement by a manager, rules edited through the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from energyhub.alerts.evaluator import Evaluator
from energyhub.alerts.store import open_alert
from energyhub.api.app import create_app
from energyhub.api.keys import create_key
from energyhub.clock import ManualClock
from energyhub.config import Settings
from energyhub.sites import load_site
from energyhub.store.db import connect, open_pool
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site

T0 = datetime(2026, 11, 20, 8, tzinfo=UTC)
KEYS = (("manager", "b01"), ("viewer", "b01"), ("manager", "expo"), ("admin", "shanghai"))


@pytest.fixture
async def api(
    pg_url: str, example_site_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], dict[str, int]]]:
    tokens: dict[str, str] = {}
    ids: dict[str, int] = {}
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, load_site(example_site_path))
        for role, site in KEYS:
            _, tokens[f"{role}@{site}"] = await create_key(conn, role, site, f"{role} of {site}")  # type: ignore[arg-type]
        for site, rule, subject in (
            ("b01", "limit", ""),
            ("b02", "silence", "main"),
            ("expo", "ingest", ""),
        ):
            row = await open_alert(
                conn, (site, rule, subject), "expo", "warning", f"{rule} at {site}", T0, {"x": 1.0}
            )
            assert row is not None
            ids[site] = row.id
        await conn.execute(
            "UPDATE alerts SET closed_at = %s WHERE id = %s", (T0 + timedelta(hours=1), ids["b02"])
        )
    settings = Settings.model_validate(
        {"db_url": pg_url, "site_file": example_site_path, "db_pool_max": 2}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client, tokens, ids


def auth(tokens: dict[str, str], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


async def test_scope_filters_and_acknowledgement(
    api: tuple[httpx.AsyncClient, dict[str, str], dict[str, int]],
) -> None:
    client, tokens, ids = api
    every = (await client.get("/alerts", headers=auth(tokens, "admin@shanghai"))).json()
    assert {a["site_id"] for a in every} == {"b01", "b02", "expo"}
    mine = (await client.get("/alerts", headers=auth(tokens, "manager@b01"))).json()
    assert [a["site_id"] for a in mine] == ["b01"]
    park = auth(tokens, "manager@expo")
    assert {
        a["site_id"] for a in (await client.get("/alerts?status=open", headers=park)).json()
    } == {"b01", "expo"}
    assert [
        a["rule"]
        for a in (await client.get("/alerts?rule=silence&status=closed", headers=park)).json()
    ] == ["silence"]
    assert (
        await client.get("/alerts?site=b02", headers=auth(tokens, "manager@b01"))
    ).status_code == 404
    assert (await client.get("/alerts?status=maybe", headers=park)).status_code == 422

    assert (
        await client.post(f"/alerts/{ids['b02']}/ack", headers=auth(tokens, "manager@b01"))
    ).status_code == 404
    assert (
        await client.post(f"/alerts/{ids['b01']}/ack", headers=auth(tokens, "viewer@b01"))
    ).status_code == 403
    acked = await client.post(f"/alerts/{ids['b01']}/ack", headers=auth(tokens, "manager@b01"))
    assert acked.status_code == 200
    body = acked.json()
    assert body["acknowledged_by"].startswith("manager of b01") and body["acknowledged_at"]
    again = (await client.post(f"/alerts/{ids['b01']}/ack", headers=park)).json()
    assert again["acknowledged_by"] == body["acknowledged_by"]  # the first acknowledgement stays


async def test_rules_edited_through_the_api(
    api: tuple[httpx.AsyncClient, dict[str, str], dict[str, int]],
    pg_url: str,
    example_site_path: Path,
) -> None:
    client, tokens, _ = api
    manager = auth(tokens, "manager@b01")
    before = (await client.get("/alerts/rules/b01", headers=manager)).json()
    assert before["source"] == "site-file" and before["effective"]["limit"] is None  # no own grid
    bad = await client.put(
        "/alerts/rules/b01", json={"silence": {"meters": ["main", "ghost"]}}, headers=manager
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "silence.meters[1]"
    assert "no meter 'ghost' in b01" in bad.json()["detail"]
    nonsense = await client.put(
        "/alerts/rules/b01", json={"limit": {"share": -0.2}}, headers=manager
    )
    assert nonsense.status_code == 422 and "limit.share" in nonsense.json()["detail"]
    viewer = await client.put("/alerts/rules/b01", json={}, headers=auth(tokens, "viewer@b01"))
    assert viewer.status_code == 403
    good = await client.put(
        "/alerts/rules/b01",
        json={"silence": {"meters": ["main"], "intervals": 2}, "limit": {"limit_kw": 800}},
        headers=manager,
    )
    assert good.status_code == 200, good.text
    rules = good.json()
    assert rules["source"] == "api" and rules["effective"]["silence"]["intervals"] == 2
    assert (
        rules["effective"]["limit"]["limit_kw"] == 800
        and rules["effective"]["limit"]["share"] == 0.9
    )
    # The evaluator builds its watches from the edited rules; the other sites keep theirs.
    async with open_pool(pg_url, max_size=1) as pool:
        evaluator = Evaluator(pool, load_site(example_site_path), ManualClock(T0))
        await evaluator.load()
    b01 = {(w.rule, w.subject) for w in evaluator.watches if w.target.site_id == "b01"}
    assert ("silence", "main") in b01 and ("silence", "heat") not in b01 and ("limit", "") in b01
    assert any(w.target.site_id == "b02" and w.rule == "silence" for w in evaluator.watches)


BAD_RULES: list[tuple[dict[str, object], str, str]] = [
    ({"soc": {"assets": ["b01-bess", "b01-pv"]}}, "soc.assets[1]", "no battery 'b01-pv' in b01"),
    ({"night_base": {"start_h": 5}}, "night_base.start_h", "start_h and end_h must differ, both are 5"),
    ({"ingest": {"max_lag_s": 60}}, "ingest", "applies to parks only, not building 'b01'"),
    ({"limit": {"share": 0.8}}, "limit", "b01 has no grid connection of its own"),
    ({"silence": {"intervals": 0}}, "silence.intervals", "greater than or equal to 1"),
    ({"silense": {}}, "silense", "Extra inputs are not permitted"),
]  # fmt: skip


async def test_bad_rules_are_422_naming_the_field(
    api: tuple[httpx.AsyncClient, dict[str, str], dict[str, int]],
) -> None:
    client, tokens, _ = api
    manager = auth(tokens, "manager@b01")
    for body, field, detail in BAD_RULES:
        response = await client.put("/alerts/rules/b01", json=body, headers=manager)
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        assert any(e["field"].endswith(field) and detail in e["message"] for e in errors), errors
    after = await client.get("/alerts/rules/b01", headers=manager)
    assert after.json()["source"] == "site-file"  # nothing stored


async def test_rules_of_an_unknown_site_or_not_a_park_or_building(
    api: tuple[httpx.AsyncClient, dict[str, str], dict[str, int]],
) -> None:
    client, tokens, _ = api
    admin = auth(tokens, "admin@shanghai")
    unknown = await client.put("/alerts/rules/nowhere", json={}, headers=admin)
    assert unknown.status_code == 404 and "site 'nowhere'" in unknown.json()["detail"]
    city = await client.put("/alerts/rules/shanghai", json={}, headers=admin)
    assert city.status_code == 422
    assert "'shanghai' is not a park or building" in city.json()["detail"]
