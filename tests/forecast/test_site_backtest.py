"""`energyhub forecast backtest` and GET /sites/{id}/forecast[/backtest] on a stored site."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from energyhub.api.app import create_app
from energyhub.api.keys import create_key
from energyhub.cli import app as cli
from energyhub.clock import ManualClock
from energyhub.forecast.profile import nmae
from energyhub.store.db import connect
from tests.scheduler.conftest import (
    SHARED_BROKER,
    HistorySpec,
    make_site,
    office_load_kw,
    prepare_db,
    pv_kw,
    scheduler_for,
    scheduler_settings,
    site_doc,
    write_history,
    write_readings,
)

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")  # a Tuesday
HISTORY_DAYS = 12
DAYS = 3


async def _world(url: str) -> None:
    await prepare_db(url, make_site())
    await write_history(url, HistorySpec(START - timedelta(days=HISTORY_DAYS), START))


def _hourly_main() -> pd.Series:
    """What the main meter read, as the hourly rollup gives it (mean kW per hour)."""
    first = pd.Timestamp(START - timedelta(days=HISTORY_DAYS)).tz_convert("UTC")
    index = pd.date_range(
        first, pd.Timestamp(START).tz_convert("UTC"), freq="15min", inclusive="left"
    )
    main = pd.Series(office_load_kw(index) - pv_kw(index), index=index)
    return main.resample("1h").mean()


def test_the_cli_backtest_scores_models_against_the_naive_forecasts(
    pg_url: str, tmp_path: Path
) -> None:
    asyncio.run(_world(pg_url))
    site_file = tmp_path / "site.json"
    site_file.write_text(json.dumps(site_doc()))
    env = {"ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(site_file), "COLUMNS": "200",
           "ENERGYHUB_SCHEDULER_HISTORY_DAYS": "7"}  # fmt: skip
    args = ["forecast", "backtest", "--site", "office", "--days", str(DAYS), "--step", "1h",
            "--end", START.isoformat()]  # fmt: skip
    done = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    meters = {m["meter"]: m for m in report["meters"]}
    assert set(meters) == {"office/main", "office/pv"}
    main = meters["office/main"]
    assert main["origins"] == DAYS
    # independently: the naive forecasts of the last DAYS local days, from the written series
    hourly = _hourly_main()
    days = hourly.index >= pd.Timestamp(START - timedelta(days=DAYS)).tz_convert("UTC")
    actual = hourly[days]
    expected_day = nmae(actual, hourly.reindex(actual.index - pd.Timedelta(days=1)).to_numpy())
    assert abs(main["models"]["naive 1d"]["nmae"] - expected_day) < 1e-6
    assert main["models"]["naive 7d"]["nmae"] < 1e-6  # the series repeats every week exactly
    assert main["better_naive"] == "naive 7d"
    assert {"chosen", "profile", "boosted", "yesterday"} <= set(main["models"])
    assert sum(main["chosen"].values()) == DAYS
    assert 0.0 <= main["band"]["coverage"] <= 1.0
    pv = meters["office/pv"]
    assert pv["models"]["chosen"]["nmae"] < 0.05  # clear days repeat: every model gets them
    table = CliRunner().invoke(cli, args, env=env)
    assert table.exit_code == 0, table.output
    assert "office/main: 3 day-ahead forecasts from local midnights" in table.output
    assert "P10–P90 band:" in table.output
    unknown = CliRunner().invoke(cli, [*args, "--meter", "nope"], env=env)
    assert unknown.exit_code == 2
    assert "meter: no load or PV meter 'nope' at site 'office' (its meters: main, pv)" in (
        " ".join(unknown.output.split())
    )
    step = CliRunner().invoke(cli, [*args[:-4], "--step", "5m"], env=env)
    assert step.exit_code == 2 and "--step: expected 15m or 1h, got '5m'" in step.output
    site = CliRunner().invoke(cli, ["forecast", "backtest", "--site", "atlantis"], env=env)
    assert site.exit_code == 2 and "site: no park or building 'atlantis'" in site.output


async def test_the_api_serves_the_current_forecast_and_a_backtest(
    pg_url: str, prefix: str, tmp_path: Path
) -> None:
    await _world(pg_url)
    site_file = tmp_path / "site.json"
    site_file.write_text(json.dumps(site_doc()))
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=2)
    async with scheduler_for(settings, make_site(), ManualClock(START)) as scheduler:
        async with connect(pg_url) as conn:
            await scheduler.resume(conn)
            planned = (await scheduler.tick(conn)).replanned[0]
            _, token = await create_key(conn, "viewer", "sp")
            _, city_token = await create_key(conn, "viewer", "tcity")
    api = create_app(settings.model_copy(update={"site_file": site_file}))
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as client:
            current = await client.get("/sites/office/forecast")
            backtest = await client.get(
                "/sites/office/forecast/backtest",
                params={"days": 2, "step": "1h", "meter": "main", "end": START.isoformat()},
            )
            bad_meter = await client.get(
                "/sites/office/forecast/backtest", params={"meter": "nope"}
            )
            too_long = await client.get("/sites/office/forecast/backtest", params={"days": 29})
            missing = await client.get("/sites/sp/forecast")
            fresh = await client.get(
                "/sites/office/forecast",
                params={"source": "now", "at": (START + timedelta(minutes=7)).isoformat()},
            )
            fresh_park = await client.get("/sites/sp/forecast", params={"source": "now"})
            city = await client.get(
                "/sites/tcity/forecast",
                params={"source": "now"},
                headers={"Authorization": f"Bearer {city_token}"},
            )
            at_of_plan = await client.get("/sites/office/forecast", params={"at": "2025-07-08"})
            bad_source = await client.get("/sites/office/forecast", params={"source": "later"})
    assert current.status_code == 200, current.text
    body = current.json()
    assert body["plan_id"] == planned.id
    series = {s["name"]: s for s in body["series"]}
    electricity = series["office:electricity_kw"]
    assert len(electricity["points"]) == 8
    assert all(p["p10"] <= p["p50"] <= p["p90"] for p in electricity["points"])
    assert "chosen by MAE" in electricity["method"]
    assert all(p["p10"] is None for p in series["outdoor_c"]["points"])
    assert backtest.status_code == 200, backtest.text
    assert [m["meter"] for m in backtest.json()["meters"]] == ["office/main"]
    assert backtest.json()["meters"][0]["origins"] == 2
    assert bad_meter.status_code == 422
    assert bad_meter.json()["errors"][0]["field"] == "meter"
    assert too_long.status_code == 422
    assert missing.status_code == 404 and "no stored forecast of site 'sp'" in missing.text
    assert "source=now" in missing.text
    # made now, from the step the time falls in: the same forecast the plan was solved with
    assert fresh.status_code == 200, fresh.text
    made = fresh.json()
    assert made["source"] == "now" and made["plan_id"] is None and made["plan_status"] is None
    assert datetime.fromisoformat(made["issued_at"]) == START
    now_series = {s["name"]: s for s in made["series"]}
    assert len(now_series["office:electricity_kw"]["points"]) == 8  # the scheduler's horizon
    for name in ("office:electricity_kw", "office-pv:available_kw"):
        assert [p["p50"] for p in now_series[name]["points"]] == [
            p["p50"] for p in series[name]["points"]
        ], name
        assert now_series[name]["method"] == series[name]["method"]
    assert made["band_coverage"] == body["band_coverage"]
    assert fresh_park.status_code == 409  # `at` is now: the history ends years before it
    assert "cannot forecast 'sp' now: office/main: only 0 h of readings" in fresh_park.text
    assert city.status_code == 422
    assert city.json()["errors"][0]["field"] == "site_id" and "'tcity'" in city.text
    assert at_of_plan.status_code == 422 and at_of_plan.json()["errors"][0]["field"] == "at"
    assert bad_source.status_code == 422
    assert bad_source.json()["errors"][0]["field"] == "source"


@pytest.mark.parametrize(
    ("end", "message"),
    [
        ("0001-01-01T00:00:00+14:00", "--end: must lie between 1970 and 2200, got 1"),
        ("2300-01-01T00:00:00+00:00", "--end: must lie between 1970 and 2200, got 2300"),
    ],
)
def test_an_end_outside_the_calendar_is_one_line(pg_url: str, end: str, message: str) -> None:
    """Year 1 at +14:00 raised ValueError (a traceback) when the days before it were counted."""
    args = ["forecast", "backtest", "--site", "office", "--days", "1", "--end", end]
    done = CliRunner().invoke(cli, args, env={"ENERGYHUB_DB_URL": pg_url, "COLUMNS": "200"})
    assert done.exit_code == 2, done.output
    assert message in done.output and "Traceback" not in done.output


def test_models_with_no_step_to_compare_are_null_in_json_and_a_dash_in_the_table(
    pg_url: str, tmp_path: Path
) -> None:
    """Four days of history, two held out: the models that need more (a week back, 7 days to
    train) score no step. `--json` printed NaN for them (not JSON: a strict parser refuses it)
    and the table 'nan', the band 'nan% inside'. (Two days of history made this case only while
    the backtest counted a meter's history from the window's start, not its first reading.)"""

    async def world() -> None:
        await prepare_db(pg_url, make_site())
        await write_history(pg_url, HistorySpec(START - timedelta(days=4), START))

    asyncio.run(world())
    site_file = tmp_path / "site.json"
    site_file.write_text(json.dumps(site_doc()))
    env = {"ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(site_file), "COLUMNS": "200"}
    args = ["forecast", "backtest", "--site", "office", "--meter", "main", "--days", "2",
            "--step", "1h", "--end", START.isoformat()]  # fmt: skip
    done = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert done.exit_code == 0, done.output

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    (main,) = json.loads(done.output, parse_constant=refuse)["meters"]
    week = main["models"]["naive 7d"]
    assert week == {"nmae": None, "mae_kw": None, "steps": 0, "ratio_to_better_naive": None}
    assert main["models"]["naive 1d"]["steps"] > 0 and main["models"]["naive 1d"]["nmae"] >= 0
    table = CliRunner().invoke(cli, args, env=env)
    assert table.exit_code == 0, table.output
    assert "nan" not in table.output.lower()
    assert re.search(r"│ naive 7d +│ +— │ +— │", table.output), table.output


def test_a_pv_site_far_from_the_configured_sun_is_told_so(pg_url: str, tmp_path: Path) -> None:
    """A site in Golden, Colorado (America/Denver) with the default coordinates (Shanghai):
    the clear sky peaks at the wrong hour and `clearsky` scored 2.7× the naive forecast on
    SERF's metered PV, with nothing saying why. The notes name the settings to set."""
    asyncio.run(_world(pg_url))
    args = ["forecast", "backtest", "--site", "office", "--meter", "pv", "--days", "1",
            "--step", "1h", "--end", START.isoformat(), "--json"]  # fmt: skip

    def notes(timezone: str, location: dict[str, float] | None = None, **settings: str) -> list[str]:
        site_file = tmp_path / f"{timezone.replace('/', '-')}.json"
        placed = {"location": location} if location else {}
        site_file.write_text(json.dumps({**site_doc(), "timezone": timezone, **placed}))
        env = {"ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(site_file),
               "ENERGYHUB_SCHEDULER_HISTORY_DAYS": "7", **settings}  # fmt: skip
        done = CliRunner().invoke(cli, args, env=env)
        assert done.exit_code == 0, done.output
        return [n for n in json.loads(done.output)["notes"] if "LONGITUDE" in n]

    assert notes("America/Denver") == [
        "office/pv: the sun is placed at 31.23° N, 121.47° E (the site file's `location`, else "
        "ENERGYHUB_SCHEDULER_LATITUDE_DEG and ENERGYHUB_SCHEDULER_LONGITUDE_DEG), 9 h of solar "
        "time from the site's time zone America/Denver (UTC-07:00): the clear sky is another "
        "place's; give the site's coordinates as `location: {latitude_deg: …, longitude_deg: …}` "
        "in its site file"
    ]
    assert notes("Asia/Shanghai") == []
    golden = {"ENERGYHUB_SCHEDULER_LATITUDE_DEG": "39.742",
              "ENERGYHUB_SCHEDULER_LONGITUDE_DEG": "-105.173"}  # fmt: skip
    assert notes("America/Denver", **golden) == []
    # the site file's location places the sun, over the settings' Shanghai default
    assert notes("America/Denver", {"latitude_deg": 39.742, "longitude_deg": -105.173}) == []


def test_an_inverters_night_draw_is_no_pv_outside_the_band(pg_url: str, tmp_path: Path) -> None:
    """Real PV meters read a few watts below zero at night (SERF: −3 to −6 W, the inverter's
    standby draw). The forecast is 0 there, band included; scored against the raw readings,
    every night step fell outside the band and SERF's P10–P90 held 34 % of the values. The
    scheduler already reads PV below 0 as 0 when it checks its bands; so does the backtest."""
    first = START - timedelta(days=HISTORY_DAYS)
    asyncio.run(prepare_db(pg_url, make_site()))
    asyncio.run(write_history(pg_url, HistorySpec(first, START, silent={"pv": first})))
    index = pd.date_range(pd.Timestamp(first).tz_convert("UTC"),
                          pd.Timestamp(START).tz_convert("UTC"), freq="15min",
                          inclusive="left")  # fmt: skip
    pv = pd.Series(pv_kw(index), index=index)
    asyncio.run(write_readings(pg_url, {"pv": pv.where(pv > 0, -0.004)}))
    site_file = tmp_path / "site.json"
    site_file.write_text(json.dumps(site_doc()))
    env = {"ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(site_file),
           "ENERGYHUB_SCHEDULER_HISTORY_DAYS": "7"}  # fmt: skip
    args = ["forecast", "backtest", "--site", "office", "--meter", "pv", "--days", str(DAYS),
            "--step", "1h", "--end", START.isoformat(), "--json"]  # fmt: skip
    done = CliRunner().invoke(cli, args, env=env)
    assert done.exit_code == 0, done.output
    (pv_report,) = json.loads(done.output)["meters"]
    assert pv_report["models"]["naive 1d"]["steps"] == DAYS * 24
    assert pv_report["band"]["coverage"] >= 0.8  # clear days repeat: the band holds them
    assert pv_report["models"]["chosen"]["nmae"] < 0.05


async def test_a_building_of_a_planned_park_gets_its_part_of_the_parks_forecast(
    pg_url: str, prefix: str, tmp_path: Path
) -> None:
    """The scheduler plans every park by default, not its buildings: GET /sites/office/forecast
    was a 404 'no scheduler plan yet' for as long as the park was planned. It is the park plan's
    forecast of the building's own columns (its demand, its PV)."""
    await _world(pg_url)
    site_file = tmp_path / "site.json"
    site_file.write_text(json.dumps(site_doc()))
    settings = scheduler_settings(
        pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=2, scheduler_sites=["sp"]
    )
    async with scheduler_for(settings, make_site(), ManualClock(START)) as scheduler:
        async with connect(pg_url) as conn:
            await scheduler.resume(conn)
            planned = (await scheduler.tick(conn)).replanned[0]
            _, token = await create_key(conn, "viewer", "sp")
    api = create_app(settings.model_copy(update={"site_file": site_file}))
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as client:
            park = (await client.get("/sites/sp/forecast")).json()
            building = await client.get("/sites/office/forecast")
    assert park["plan_id"] == planned.id
    assert building.status_code == 200, building.text
    body = building.json()
    assert (body["site_id"], body["plan_id"]) == ("office", planned.id)
    names = {s["name"] for s in body["series"]}
    assert names == {"office:electricity_kw", "office-pv:available_kw"}
    by_name = {s["name"]: s for s in park["series"]}
    for column in body["series"]:
        assert column == by_name[column["name"]]
    assert any("part of park sp's plan" in note for note in body["notes"])
