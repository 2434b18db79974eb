"""The /ui pages over HTTP: login and cookie, every page, scope answers as the JSON API's, the
approve and reject flow, and the SVG chart helpers."""

from __future__ import annotations

import dataclasses
import html as html_text
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI

from energyhub.api.keys import ROLES
from energyhub.api.ui.charts import Band, Limit, Series, nice_step, time_chart
from energyhub.forecast.store import save_bands
from energyhub.numbers import number
from energyhub.optimize import plan
from energyhub.plans.operations import save_forecast
from energyhub.plans.policy import plan_by_policy
from energyhub.plans.store import store_plan
from energyhub.sites import PlanPolicy, load_site
from energyhub.store.db import connect
from tests.api.conftest import SITE_FILE, World, as_key, plan_inputs, solved

DAY_END = "2026-11-21T00:00:00+08:00"  # the end of the conftest's day of readings
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def world(shared_world: World) -> World:
    """Read-only, or changes only plans made by the test itself."""
    return shared_world


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client without a key, keeping cookies, as a browser would."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as c:
        yield c


async def draft(world: World, level: str = "building", site_id: str = "b01") -> int:
    async with connect(world.url) as conn:
        return (await store_plan(conn, solved(level, site_id))).id


async def log_in(browser: httpx.AsyncClient, token: str, next_page: str = "/ui") -> None:
    answer = await browser.post("/ui/login", data={"key": token, "next": next_page})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == next_page


def charts(html: str) -> dict[str, str]:
    """data-chart name → its <svg> markup."""
    found = re.findall(r'(<svg class="chart[^"]*" data-chart="([a-z0-9]+)".*?</svg>)', html, re.S)
    return {name: svg for svg, name in found}


def series_names(svg: str) -> list[str]:
    return re.findall(r'<path class="series" data-name="([^"]*)" d="M', svg)


def message(html: str) -> str:
    found = re.search(r'id="message">([^<]*)<', html)
    assert found, html
    return html_text.unescape(found.group(1))


async def test_no_key_gets_the_login_form_with_401(browser: httpx.AsyncClient) -> None:
    answer = await browser.get("/ui/sites/b01")
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("text/html")
    assert 'name="next" value="/ui/sites/b01"' in answer.text
    assert message(answer.text) == "log in with an API key"


async def test_login_sets_an_httponly_strict_cookie_and_returns_to_the_page(
    browser: httpx.AsyncClient, world: World
) -> None:
    answer = await browser.post(
        "/ui/login", data={"key": world.token("viewer", "b01"), "next": "/ui/sites/b01"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/sites/b01"
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("energyhub_key=ehk_")
    for attribute in ("httponly", "samesite=strict", "path=/ui"):
        assert attribute in cookie
    assert "secure" not in cookie  # plain http here; set over https
    page = await browser.get("/ui")
    assert page.status_code == 200
    assert "viewer · b01" in page.text


async def test_a_bad_key_is_refused_on_the_form(browser: httpx.AsyncClient, world: World) -> None:
    answer = await browser.post("/ui/login", data={"key": "ehk_not-a-key", "next": "/ui"})
    assert answer.status_code == 401
    assert message(answer.text) == "unknown or revoked API key"
    assert "set-cookie" not in answer.headers
    assert (await browser.post("/ui/login", data={"key": ""})).status_code == 401
    browser.cookies.set("energyhub_key", "ehk_forged", path="/ui")
    stale = await browser.get("/ui")
    assert stale.status_code == 401
    assert message(stale.text) == "unknown or revoked API key"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/ui", "/docs", ""])
async def test_login_never_redirects_off_the_ui(
    browser: httpx.AsyncClient, world: World, target: str
) -> None:
    answer = await browser.post("/ui/login", data={"key": world.token(), "next": target})
    assert answer.headers["location"] == "/ui"


async def test_login_form_keeps_only_a_ui_target(browser: httpx.AsyncClient) -> None:
    form = await browser.get("/ui/login", params={"next": "/ui/plans?site_id=b01"})
    assert form.status_code == 200
    assert 'name="next" value="/ui/plans?site_id=b01"' in form.text
    assert 'id="message"' not in form.text
    foreign = await browser.get("/ui/login", params={"next": "https://evil.example/"})
    assert 'name="next" value="/ui"' in foreign.text


async def test_logout_clears_the_cookie(browser: httpx.AsyncClient, world: World) -> None:
    await log_in(browser, world.token())
    answer = await browser.post("/ui/logout")
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
    assert (await browser.get("/ui")).status_code == 401


async def test_bearer_header_works_as_for_the_api(client: httpx.AsyncClient) -> None:
    answer = await client.get("/ui")
    assert answer.status_code == 200
    assert "admin · shanghai" in answer.text


async def test_tree_lists_the_subtree_with_links(browser: httpx.AsyncClient, world: World) -> None:
    await log_in(browser, world.token("viewer", "shanghai"))
    city = (await browser.get("/ui")).text
    sites = re.findall(r'data-site="([^"]+)"', city)
    assert sites[:3] == ["shanghai", "expo", "b01"]
    assert {"acme-bio", "b02", "b07"} <= set(sites)
    assert '<a href="/ui/sites/b01">Tower A (headquarters offices)</a>' in city
    assert '<a href="/ui/plans?site_id=expo">plans</a>' in city
    browser.cookies.clear()
    await log_in(browser, world.token("viewer", "b01"))
    building = (await browser.get("/ui")).text
    assert re.findall(r'data-site="([^"]+)"', building) == ["b01", "acme-bio", "zj-semi"]


async def test_site_page_charts_the_load_per_carrier(client: httpx.AsyncClient) -> None:
    answer = await client.get("/ui/sites/b01", params={"end": DAY_END})
    assert answer.status_code == 200
    svg = charts(answer.text)["load"]
    assert series_names(svg) == ["electricity", "heat", "PV"]
    assert ">kW</text>" in svg and "Load per carrier (kW" in svg
    assert "<script>" not in answer.text  # a fixed window does not refresh
    assert 'href="/ui/sites/acme-bio"' in answer.text and 'href="/ui/sites/expo"' in answer.text


async def test_live_site_page_refreshes_its_chart(client: httpx.AsyncClient, world: World) -> None:
    live = await client.get("/ui/sites/b01")
    assert live.status_code == 200
    assert 'fetch(location.pathname + "/load-chart"' in live.text
    assert "setInterval" in live.text and "30000" in live.text
    # the readings are a day in the past: now's window is empty and says so
    assert "no data in this window" in charts(live.text)["load"]
    fragment = await client.get("/ui/sites/b01/load-chart", params={"end": DAY_END})
    assert fragment.status_code == 200
    assert fragment.text.startswith("<figure>") and "<html" not in fragment.text
    assert series_names(charts(fragment.text)["load"]) == ["electricity", "heat", "PV"]


async def test_bad_input_is_a_422_page_naming_the_field(client: httpx.AsyncClient) -> None:
    for path, params, field in (
        ("/ui/sites/b01", {"end": "yesterday"}, "end"),
        ("/ui/plans", {"status": "maybe"}, "status"),
        ("/ui/plans/0", {}, "plan_id"),
    ):
        answer = await client.get(path, params=params)
        assert answer.status_code == 422, path
        assert f"<code>{field}</code>" in answer.text


@pytest.mark.parametrize("role", ROLES)
async def test_out_of_scope_answers_as_the_api_does(
    client: httpx.AsyncClient, world: World, role: str
) -> None:
    """A b01 key: a sibling, the park and the city answer 404 with the API's words, exactly
    like ids that do not exist."""
    key = as_key(world, role, "b01")
    unknown_plan = 2**62
    pairs = [
        (f"/ui/sites/{site}", f"/sites/{site}") for site in ("b02", "expo", "shanghai", "nope")
    ]
    pairs += [(f"/ui/sites/{site}/load-chart", f"/sites/{site}/load") for site in ("b02", "nope")]
    pairs += [(f"/ui/plans?site_id={site}", f"/plans?site_id={site}") for site in ("b02", "nope")]
    pairs += [
        (f"/ui/plans/{plan_id}", f"/plans/{plan_id}")
        for plan_id in (world.plans["b02"], world.plans["expo"], unknown_plan)
    ]
    for ui_path, api_path in pairs:
        ui, api = await client.get(ui_path, headers=key), await client.get(api_path, headers=key)
        assert (ui.status_code, api.status_code) == (404, 404), ui_path
        assert message(ui.text) == api.json()["detail"]
    for plan_id in (world.plans["b02"], unknown_plan):
        for action, data in (("approve", {}), ("reject", {"reason": "no"})):
            path = f"/plans/{plan_id}/{action}"
            ui = await client.post(f"/ui{path}", headers={**key, **FORM}, data=data)
            api = await client.post(path, headers=key, json=data or None)
            assert (ui.status_code, api.status_code) == (404, 404), path
            assert message(ui.text) == api.json()["detail"]


async def test_plan_list_shows_the_plans_in_scope(client: httpx.AsyncClient, world: World) -> None:
    everything = await client.get("/ui/plans")
    assert everything.status_code == 200
    listed = re.findall(r'data-plan="(\d+)"', everything.text)
    assert set(world.plans.values()) <= {int(i) for i in listed}
    assert listed == sorted(listed, key=int, reverse=True)  # newest first
    b01 = (await client.get("/ui/plans", headers=as_key(world, "viewer", "b01"))).text
    assert world.plans["b01"] in _ids_of(b01) and world.plans["b02"] not in _ids_of(b01)
    assert "cost (CNY)" in b01 and "CO2 (kg CO2)" in b01 and "Asia/Shanghai" in b01
    expo = _ids_of((await client.get("/ui/plans", params={"site_id": "expo"})).text)
    assert world.plans["expo"] in expo and world.plans["b01"] not in expo


def _ids_of(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-plan="(\d+)"', html)}


async def test_plan_page_charts_dispatch_soc_import_and_cost(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await client.get(f"/ui/plans/{world.plans['b01']}")
    assert answer.status_code == 200
    svgs = charts(answer.text)
    assert set(svgs) == {"dispatch", "soc", "import", "cost", "co2"}
    dispatch = series_names(svgs["dispatch"])
    assert "b01-bess discharge − charge" in dispatch and "b01-pv output" in dispatch
    assert "b01-hp heat" in dispatch and "b01-chiller cooling" in dispatch
    assert series_names(svgs["soc"]) == ["b01-bess", "b01-tes"]
    plan = solved("building", "b01")
    peak = plan.schedule["b01:import_kw"].max()
    assert series_names(svgs["import"]) == [f"planned import (peak {peak:,.0f} kW)"]
    assert svgs["import"].count('class="limit"') == 1
    assert "import limit 20,000 kW" in answer.text  # b01 has no grid of its own: the park's
    assert f"{plan.objective_cny:,.1f} CNY" in svgs["cost"]
    assert f"{plan.to_json()['baseline']['cost_cny']:,.1f} CNY" in svgs["cost"]
    assert f"{plan.co2_kg:,.1f} kg CO2" in svgs["co2"]
    assert 'id="status">draft<' in answer.text


async def test_plan_page_says_which_peak_margin_the_plan_kept(
    client: httpx.AsyncClient, world: World
) -> None:
    summary = {
        "node": "b01", "source": "measured", "measured_p90_kw": 891.0, "steps": 100,
        "window_days": 14.0, "floored_steps": 48, "bands_median_kw": 0.0, "median_kw": 891.0,
    }  # fmt: skip
    async with connect(world.url) as conn:
        measured = dataclasses.replace(solved("building", "b01"), peak_margin=summary)
        few = {**summary, "source": "bands", "measured_p90_kw": None, "steps": 12,
               "median_kw": 240.5, "reason": "too few controlled steps (need 48)"}  # fmt: skip
        bands = dataclasses.replace(solved("building", "b01"), peak_margin=few)
        ids = [(await store_plan(conn, p)).id for p in (measured, bands)]
    shown = [margin_row((await client.get(f"/ui/plans/{i}")).text) for i in ids]
    assert shown[0] == (
        "b01: median 891.0 kW kept free under the billed peak for forecast error; at least the "
        "P90 of metered − planned import, 891.0 kW, over 100 controlled steps of the last 14 d"
    )
    assert shown[1] == (
        "b01: median 240.5 kW kept free under the billed peak for forecast error; the forecast "
        "bands' alone (too few controlled steps (need 48); 12 controlled steps)"
    )
    plain = (await client.get(f"/ui/plans/{world.plans['b01']}")).text
    assert 'id="peak-margin"' not in plain  # a plan made without the scheduler


async def test_plan_page_of_a_margin_the_measured_error_did_not_raise(
    client: httpx.AsyncClient, world: World
) -> None:
    """Enough controlled steps, but their P90 nowhere above the bands' margin (a park without a
    demand charge, or good forecasts): the plan keeps the bands' margin, with no `reason` in the
    summaries stored before one was written. The page was a 500 (`'dict object' has no attribute
    'reason'`) from the scheduler's first day on."""
    summary = {
        "node": "b01", "source": "bands", "measured_p90_kw": 0.0, "steps": 48,
        "window_days": 14.0, "floored_steps": 0, "bands_median_kw": 0.0, "median_kw": 0.0,
        "time_of_day_steps": 0, "time_of_day_p90_max_kw": None,
    }  # fmt: skip
    async with connect(world.url) as conn:
        record = await store_plan(
            conn, dataclasses.replace(solved("building", "b01"), peak_margin=summary)
        )
    answer = await client.get(f"/ui/plans/{record.id}")
    assert answer.status_code == 200, answer.text
    assert margin_row(answer.text) == (
        "b01: median 0.0 kW kept free under the billed peak for forecast error; the forecast "
        "bands' (the P90 of metered − planned import, 0.0 kW, over 48 controlled steps of the "
        "last 14 d, was nowhere above them)"
    )


async def test_plan_page_says_whether_the_carbon_policy_was_met(
    client: httpx.AsyncClient, world: World
) -> None:
    """A plan made under a CO₂ limit: the page shows the policy's note, marked better when met
    and worse when not: b01's cost-optimal plan over the hour is within twice its baseline; no
    schedule of it comes 50 % under the baseline."""
    site = load_site(SITE_FILE)
    inputs = plan_inputs(site, 4, start="2026-11-20 12:00")
    notes = []
    async with connect(world.url) as conn:
        for pct in (100.0, -50.0):
            found = plan_by_policy(
                site, inputs, level="building", site_id="b01",
                policy=PlanPolicy(max_co2_vs_baseline_pct=pct),
            )  # fmt: skip
            record = await store_plan(conn, found)
            notes.append(found.carbon_policy["note"])
            page = (await client.get(f"/ui/plans/{record.id}")).text
            row = re.search(r'<td id="carbon-policy" class="(\w+)">(.*?)</td>', page, re.S)
            assert row, page
            assert row.group(1) == ("better" if pct > 0 else "worse")
            assert html_text.unescape(row.group(2)) == found.carbon_policy["note"]
    assert not notes[0].startswith("not met") and notes[1].startswith("not met: CO2 ")
    plain = (await client.get(f"/ui/plans/{world.plans['b01']}")).text
    assert 'id="carbon-policy"' not in plain


def margin_row(html: str) -> str:
    found = re.search(r'id="peak-margin">(.*?)</td>', html, re.S)
    assert found, html
    return " ".join(html_text.unescape(found.group(1)).split())


async def test_import_chart_adds_the_metered_import_where_readings_exist(
    client: httpx.AsyncClient, world: World
) -> None:
    """A plan over hours that have readings: the metered import is drawn beside the plan."""
    site = load_site(SITE_FILE)
    inputs = plan_inputs(site, 4, start="2026-11-20 12:00")
    async with connect(world.url) as conn:
        record = await store_plan(conn, plan(site, inputs, level="building", site_id="b01"))
    answer = await client.get(f"/ui/plans/{record.id}")
    names = series_names(charts(answer.text)["import"])
    assert names[1:] == ["metered import"]
    actual = (await client.get(f"/plans/{record.id}/actual")).json()
    assert all(step["actual_import_kw"] is not None for step in actual["steps"])


async def test_plan_page_draws_the_forecast_in_its_band(
    client: httpx.AsyncClient, world: World
) -> None:
    """A plan stored with its inputs and bands (as the scheduler stores them): the page charts
    the largest banded power by default, any input on request, and names a wrong one."""
    site = load_site(SITE_FILE)
    inputs = plan_inputs(site, 4, start="2026-11-20 12:00")
    inputs["b01:electricity_kw"] = [300.0, 320.0, 340.0, 360.0]
    index = inputs.index.tz_convert("UTC")
    low = pd.DataFrame({"b01:electricity_kw": inputs["b01:electricity_kw"] - 40.0}, index=index)
    high = low + 90.0
    async with connect(world.url) as conn:
        record = await store_plan(conn, plan(site, inputs, level="building", site_id="b01"))
        await save_forecast(
            conn, record.id, inputs.tz_convert("UTC"), issued_at=index[0].to_pydatetime(),
            methods={"b01:electricity_kw": "boosted (backtest MAE 12.0 kW)"}, notes=[],
            initial_soc={}, unplanned=[],
        )  # fmt: skip
        await save_bands(conn, record.id, low, high)
    answer = await client.get(f"/ui/plans/{record.id}")
    assert answer.status_code == 200
    svg = charts(answer.text)["forecast"]
    assert "Forecast of b01:electricity_kw (kW)" in svg
    assert series_names(svg) == ["P50 (planned on)"]
    band = re.search(r'<path class="band" data-name="P10–P90" d="(M[^"]+Z)"', svg)
    assert band is not None and band.group(1).count("M") == 1  # one run, no gap
    assert "boosted (backtest MAE 12.0 kW)" in answer.text
    other = await client.get(f"/ui/plans/{record.id}", params={"forecast": "outdoor_c"})
    svg = charts(other.text)["forecast"]
    assert "Forecast of outdoor_c (°C)" in svg and 'class="band"' not in svg
    wrong = await client.get(f"/ui/plans/{record.id}", params={"forecast": "b99:heat_kw"})
    assert wrong.status_code == 422 and "<code>forecast</code>" in wrong.text
    assert "b99:heat_kw" in html_text.unescape(wrong.text)
    plain = await client.get(f"/ui/plans/{world.plans['b01']}")  # made elsewhere: no inputs
    assert "forecast" not in charts(plain.text) and 'id="forecast"' not in plain.text


def test_a_band_breaks_at_missing_bounds() -> None:
    t0 = datetime(2026, 11, 20, tzinfo=ZoneInfo("Asia/Shanghai"))
    times = [t0 + timedelta(hours=h) for h in range(4)]
    svg = time_chart(
        "f", "band", times, [Series("p50", [1.0, 2.0, 3.0, 4.0], "#000")], unit="kW",
        step=timedelta(hours=1), bands=[Band("P10–P90", [0.5, None, 2.0, 3.0], [2, None, 4, 5], "#00f")],
    )  # fmt: skip
    band = re.search(r'class="band" data-name="P10–P90" d="([^"]+)"', str(svg))
    assert band is not None and band.group(1).count("M") == 2 and band.group(1).count("Z") == 2


async def test_a_park_plan_sums_every_asset_of_its_buildings(
    client: httpx.AsyncClient, world: World
) -> None:
    svgs = charts((await client.get(f"/ui/plans/{world.plans['expo']}")).text)
    dispatch = series_names(svgs["dispatch"])
    assert "expo-chp electricity" in dispatch and "b07-hw discharge − charge" in dispatch
    assert len(dispatch) == len(set(dispatch)) > 20
    assert "b06-bess" in series_names(svgs["soc"])


async def test_approve_button_only_for_operators(client: httpx.AsyncClient, world: World) -> None:
    plan_id = await draft(world)
    for role in ROLES:
        page = (await client.get(f"/ui/plans/{plan_id}", headers=as_key(world, role, "b01"))).text
        shown = 'id="approve"' in page and 'id="reject"' in page
        assert shown == (role in ("operator", "admin")), role


async def test_operator_approves_through_the_form(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, world: World
) -> None:
    plan_id = await draft(world)
    await log_in(browser, world.token("operator", "b01"), f"/ui/plans/{plan_id}")
    approved = await browser.post(f"/ui/plans/{plan_id}/approve")
    assert approved.status_code == 303
    assert approved.headers["location"] == f"/ui/plans/{plan_id}"
    page = (await browser.get(f"/ui/plans/{plan_id}")).text
    assert 'id="status">approved<' in page and 'id="approve"' not in page
    assert 'id="reject"' in page  # an approved plan can still be rejected
    stored = (await client.get(f"/plans/{plan_id}")).json()
    assert stored["status"] == "approved"
    assert stored["approved_by"] == (await _key_name(client, world, "operator", "b01"))
    again = await browser.post(f"/ui/plans/{plan_id}/approve")
    assert again.status_code == 409
    api = await client.post(f"/plans/{plan_id}/approve")
    assert message(again.text) == api.json()["detail"]


async def _key_name(client: httpx.AsyncClient, world: World, role: str, site: str) -> str:
    """`key:<id>` of a key, as the API records who decided."""
    async with connect(world.url) as conn:
        cur = await conn.execute("SELECT id FROM api_keys WHERE name = %s", (f"{role}@{site}",))
        row = await cur.fetchone()
    assert row is not None
    return f"key:{row[0]}"


async def test_lower_roles_get_the_apis_403(client: httpx.AsyncClient, world: World) -> None:
    plan_id = await draft(world)
    for role in ("viewer", "manager"):
        key = as_key(world, role, "b01")
        ui = await client.post(f"/ui/plans/{plan_id}/approve", headers={**key, **FORM})
        api = await client.post(f"/plans/{plan_id}/approve", headers=key)
        assert (ui.status_code, api.status_code) == (403, 403)
        assert message(ui.text) == api.json()["detail"]
    assert (await client.get(f"/plans/{plan_id}")).json()["status"] == "draft"


async def test_reject_records_the_reason_escaped(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, world: World
) -> None:
    plan_id = await draft(world)
    await log_in(browser, world.token("operator", "b01"))
    empty = await browser.post(f"/ui/plans/{plan_id}/reject", data={"reason": "  "})
    assert empty.status_code == 422 and "<code>reason</code>" in empty.text
    reason = "<script>alert(1)</script> the fair is on"
    rejected = await browser.post(f"/ui/plans/{plan_id}/reject", data={"reason": reason})
    assert rejected.status_code == 303
    page = (await browser.get(f"/ui/plans/{plan_id}")).text
    assert 'id="status">rejected<' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; the fair is on" in page
    assert "<script>alert(1)" not in page
    assert (await client.get(f"/plans/{plan_id}")).json()["rejected_reason"] == reason


async def test_forms_from_another_site_are_refused(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, world: World
) -> None:
    plan_id = await draft(world)
    await log_in(browser, world.token("operator", "b01"))
    foreign = {"Origin": "https://evil.example"}
    answer = await browser.post(f"/ui/plans/{plan_id}/approve", headers=foreign)
    assert answer.status_code == 403
    assert "https://evil.example" in message(answer.text)
    login = await browser.post("/ui/login", headers=foreign, data={"key": world.token()})
    assert login.status_code == 403
    assert (await client.get(f"/plans/{plan_id}")).json()["status"] == "draft"
    same = await browser.post(f"/ui/plans/{plan_id}/approve", headers={"Origin": "http://ui.test"})
    assert same.status_code == 303


async def test_forms_must_be_url_encoded_and_small(
    browser: httpx.AsyncClient, world: World
) -> None:
    plan_id = await draft(world)
    await log_in(browser, world.token("operator", "b01"))
    as_json = await browser.post(f"/ui/plans/{plan_id}/reject", json={"reason": "no"})
    assert as_json.status_code == 415
    huge = await browser.post(f"/ui/plans/{plan_id}/reject", data={"reason": "x" * 5000})
    assert huge.status_code == 413


def test_time_chart_breaks_lines_at_gaps_and_draws_limits() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    times = [datetime(2026, 11, 20, tzinfo=zone) + timedelta(hours=h) for h in range(4)]
    svg = time_chart(
        "t",
        "A <title>",
        times,
        [Series("a&b", [1.0, None, 3.0, 4.0], "#123456")],
        unit="kW",
        limits=[Limit("limit", 10.0)],
    )
    path = re.search(r' d="([^"]*)"', svg)
    assert path and path.group(1).count("M") == 2  # a gap starts a new line
    assert "A &lt;title&gt;" in svg and 'data-name="a&amp;b"' in svg
    assert "limit 10 kW" in svg and ">10<" in svg  # the axis reaches the limit
    empty = time_chart("e", "E", times, [Series("x", [None] * 4, "#000")], unit="kW")
    assert "no data in this window" in empty


@pytest.mark.parametrize(
    ("value", "text"),
    [(-1e-12, "0.0"), (None, "—"), (12491.54, "12,491.5"), (-3.0, "\N{MINUS SIGN}3.0")],
)
def test_number_never_prints_minus_zero(value: float | None, text: str) -> None:
    assert number(value) == text


@pytest.mark.parametrize(
    ("span", "step"), [(1.0, 0.2), (97.0, 20.0), (20000.0, 5000.0), (0.0, 1.0)]
)
def test_nice_step(span: float, step: float) -> None:
    assert nice_step(span) == pytest.approx(step)
