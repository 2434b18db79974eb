"""Weather forecast input: CSV and MQTT checked and stored, then used by the scheduler."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import numpy as np
import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from energyhub.cli import app as cli
from energyhub.clock import ManualClock
from energyhub.forecast.listen import handle, listen, weather_topic
from energyhub.forecast.store import read_weather
from energyhub.forecast.weather import parse_csv, parse_message
from energyhub.store.db import connect
from simulators.weather import TimeGrid, clear_sky_ghi_w_m2, clearness, outdoor_temperature_c
from tests.scheduler.conftest import (
    SHARED_BROKER,
    HistorySpec,
    make_site,
    prepare_db,
    scheduler_for,
    scheduler_settings,
    site_doc,
    write_history,
)

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")
ISSUED = datetime(2025, 7, 7, 9, tzinfo=UTC)
CSV = """park_id,ts,issued_at,outdoor_c,ghi_w_m2,cloud_cover_pct
sp,2025-07-08T00:00:00+08:00,,27.5,0,40
sp,2025-07-08T00:15:00+08:00,2025-07-07T18:00:00+08:00,27.0,,
mars,2025-07-08T00:30:00+08:00,,27.0,0,40
sp,2025-07-08T00:45:00,,27.0,0,40
sp,2025-07-08T01:00:00+08:00,,27.0,-5,40
sp,2025-07-08T01:15:00+08:00,,,,
sp,2025-07-08T01:30:00+08:00,,hot,,
"""


def test_csv_rows_are_checked_one_by_one_and_good_ones_kept() -> None:
    parsed = parse_csv(CSV, parks={"sp"}, issued_at=ISSUED, source="test")
    assert parsed.errors == [
        "row 4.park_id: no park 'mars' in the site file (parks: sp)",
        "row 5.ts: give a UTC offset, got '2025-07-08T00:45:00'",
        "row 6.ghi_w_m2: must be within 0…1500, got '-5'",
        "row 7: give at least one of outdoor_c, ghi_w_m2, cloud_cover_pct",
        "row 8.outdoor_c: expected a number, got 'hot'",
    ]
    issues = {issue.issued_at: issue for issue in parsed.issues}
    assert set(issues) == {ISSUED, datetime.fromisoformat("2025-07-07T18:00:00+08:00")}
    first = issues[ISSUED].frame
    assert first.loc[pd.Timestamp("2025-07-07T16:00:00Z")].tolist() == [27.5, 0.0, 40.0]
    later = issues[datetime.fromisoformat("2025-07-07T18:00:00+08:00")].frame
    assert later["outdoor_c"].tolist() == [27.0] and later["ghi_w_m2"].isna().all()
    missing = parse_csv("ts,outdoor_c\n", parks={"sp"}, issued_at=ISSUED, source="test")
    assert missing.file_problem == "header: missing column(s) park_id, got 'ts,outdoor_c'"


def test_the_cli_stores_good_rows_and_names_the_bad(pg_url: str, tmp_path: Path) -> None:
    asyncio.run(prepare_db(pg_url, make_site()))
    site_file = tmp_path / "site.json"
    site_file.write_text(json.dumps(site_doc()))
    forecast = tmp_path / "weather.csv"
    forecast.write_text(CSV)
    env = {"ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(site_file), "COLUMNS": "200"}
    done = CliRunner().invoke(cli, ["forecast", "weather-import", str(forecast)], env=env)
    assert done.exit_code == 2
    assert "2 weather forecast step(s) stored" in done.output
    assert "5 row problem(s), those rows not stored" in done.output
    assert "row 6.ghi_w_m2: must be within 0…1500, got '-5'" in done.output

    async def stored() -> pd.DataFrame:
        async with connect(pg_url) as conn:
            return await read_weather(
                conn,
                "sp",
                START - timedelta(hours=1),
                START + timedelta(hours=2),
                datetime.now(UTC),
            )

    frame = asyncio.run(stored())
    assert frame["outdoor_c"].tolist() == [27.5, 27.0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("park_id,ts,outdoor_c\n", "no rows after the header"),
        ("park_id,ts,outdoor_c\r\n\r\n\r\n", "no rows after the header"),
        ("", "header: missing column(s) park_id, ts, got ''"),
        ("ts,outdoor_c\n2025-07-08T00:00:00+08:00,27.5\n", "header: missing column(s) park_id"),
    ],
)
def test_a_file_without_a_row_to_read_is_one_line(
    pg_url: str, tmp_path: Path, text: str, problem: str
) -> None:
    """A header alone (or nothing) exited 0 with '0 weather forecast step(s) stored', and a bad
    header printed that too, then called itself '1 row problem(s)'; the intensity and price
    files refuse both in one line, exit 2."""
    forecast = tmp_path / "weather.csv"
    forecast.write_text(text)
    site_file = tmp_path / "site.json"
    site_file.write_text(json.dumps(site_doc()))
    env = {"ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(site_file), "COLUMNS": "200"}
    done = CliRunner().invoke(cli, ["forecast", "weather-import", str(forecast)], env=env)
    assert done.exit_code == 2, done.output
    assert " ".join(done.output.split()).startswith(f"error: {forecast}: {problem}")
    assert "stored" not in done.output and "row problem" not in done.output


def test_a_file_not_in_utf8_names_the_byte_where_it_is(pg_url: str, tmp_path: Path) -> None:
    """The codec's own words came out: "('utf-8' codec can't decode byte 0xe9 in position 5...)"."""
    forecast = tmp_path / "weather.csv"
    forecast.write_bytes(CSV.encode() + b"sp,caf\xe9\n")
    env = {"ENERGYHUB_DB_URL": pg_url, "COLUMNS": "200"}
    done = CliRunner().invoke(cli, ["forecast", "weather-import", str(forecast)], env=env)
    assert done.exit_code == 2
    offset = len(CSV.encode()) + len(b"sp,caf")
    assert f"cannot read it: not UTF-8 text (byte 0xe9 at offset {offset})" in done.output


def test_a_quote_never_closed_is_named_and_the_rows_after_it_kept() -> None:
    """A stray quote read every line after it into one cell: `row 3.ts: ... got
    '2025-07-08T00:15:00+08:00,28\\nsp,...'`, and the good rows after it were lost."""
    text = (
        "park_id,ts,outdoor_c\n"
        "sp,2025-07-08T00:00:00+08:00,27.5\n"
        'sp,"2025-07-08T00:15:00+08:00,28\n'
        "sp,2025-07-08T00:30:00+08:00,29\n"
        "\n"
        "sp,2025-07-08T00:45:00+08:00,30\n"
    )
    parsed = parse_csv(text, parks={"sp"}, issued_at=ISSUED, source="test")
    assert parsed.errors == [
        "row 3: a quote opened in this row is never closed (no cell of this file holds a line "
        "break): the row is not read, the rows after it are"
    ]
    assert parsed.issues[0].frame["outdoor_c"].tolist() == [27.5, 29.0, 30.0]


@pytest.mark.parametrize(
    ("source", "shown"),
    [("a\x1bb", "must not contain control characters"), ("x" * 201, "at most 200 characters")],
)
def test_a_bad_source_option_is_named_once_as_the_option(
    pg_url: str, tmp_path: Path, source: str, shown: str
) -> None:
    """`--source` with an escape sequence or 201 characters was named once per row without a
    source of its own, as `row 2.source`, a column the file does not have."""
    asyncio.run(prepare_db(pg_url, make_site()))
    site_file = tmp_path / "site.json"
    site_file.write_text(json.dumps(site_doc()))
    forecast = tmp_path / "weather.csv"
    forecast.write_text("park_id,ts,outdoor_c\nsp,2025-07-08T00:00:00+08:00,27.5\n")
    env = {"ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(site_file), "COLUMNS": "200"}
    args = ["forecast", "weather-import", str(forecast), "--source", source]
    done = CliRunner().invoke(cli, args, env=env)
    assert done.exit_code == 2, done.output
    assert "Invalid value for '--source'" in done.output and shown in done.output
    assert "row 2" not in done.output


async def test_mqtt_messages_are_stored_and_bad_ones_do_not_stop_the_listener(
    pg_url: str, prefix: str
) -> None:
    await prepare_db(pg_url, make_site())
    stop = asyncio.Event()
    steps = [{"ts": (START + timedelta(minutes=15 * i)).isoformat(), "outdoor_c": 26.0 + i}
             for i in range(4)]  # fmt: skip
    async with connect(pg_url) as conn:
        task = asyncio.create_task(listen(conn, SHARED_BROKER, prefix, {"sp"}, stop, prefix))
        await asyncio.sleep(0.5)
        async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{prefix}-pub") as client:
            await client.publish(weather_topic(prefix, "sp"), b"not json", qos=1)
            await client.publish(
                weather_topic(prefix, "sp"),
                orjson.dumps({"issued_at": ISSUED.isoformat(), "steps": [*steps, 7]}),
                qos=1,
            )
        async with connect(pg_url) as reader:
            for _ in range(100):
                cur = await reader.execute("SELECT count(*) FROM weather_forecasts")
                row = await cur.fetchone()
                if row is not None and row[0] == 4:
                    break
                await asyncio.sleep(0.05)
            frame = await read_weather(
                reader, "sp", START, START + timedelta(hours=1), datetime.now(UTC)
            )
        stop.set()
        await task
    assert frame["outdoor_c"].tolist() == [26.0, 27.0, 28.0, 29.0]


async def test_the_scheduler_plans_with_the_stored_weather_forecast(
    pg_url: str, prefix: str
) -> None:
    """Fed from the simulator's weather: its temperature and its clouded irradiance."""
    site = make_site()
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=9), START))
    grid = TimeGrid(START - timedelta(days=9), 900.0, 96 * 10)
    rng = np.random.default_rng(11)
    index = pd.date_range(pd.Timestamp(grid.start).tz_convert("UTC"), periods=grid.steps,
                          freq="15min")  # fmt: skip
    ghi = clear_sky_ghi_w_m2(grid) * clearness(grid, rng)
    frame = pd.DataFrame(
        {"outdoor_c": outdoor_temperature_c(grid, rng), "ghi_w_m2": ghi,
         "cloud_cover_pct": np.full(grid.steps, 30.0)},
        index=index,
    )  # fmt: skip
    from energyhub.forecast.store import save_weather

    async with connect(pg_url) as conn:
        assert await save_weather(conn, "sp", ISSUED, frame, "simulator") == grid.steps
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=2)
    async with scheduler_for(settings, site, ManualClock(START)) as scheduler:
        async with connect(pg_url) as conn:
            await scheduler.resume(conn)
            planned = (await scheduler.tick(conn)).replanned[0]
            cur = await conn.execute(
                "SELECT methods FROM plan_forecasts WHERE plan_id = %s", (planned.id,)
            )
            row = await cur.fetchone()
            cur = await conn.execute(
                "SELECT ts, value FROM plan_inputs WHERE plan_id = %s AND name = 'outdoor_c' "
                "ORDER BY ts",
                (planned.id,),
            )
            outdoor = await cur.fetchall()
    assert row is not None
    assert row[0]["outdoor_c"].startswith("weather forecast (8 of 8 steps;")
    planned_c = np.array([value for _, value in outdoor])
    given = frame["outdoor_c"].reindex(pd.DatetimeIndex([ts for ts, _ in outdoor])).to_numpy()
    np.testing.assert_allclose(planned_c, given)


async def test_a_stored_forecast_of_a_dull_day_lowers_the_planned_pv(
    pg_url: str, prefix: str
) -> None:
    """PV that follows the sky, a stored forecast that knew the sky: the plan follows it."""
    from energyhub.forecast.solar import clear_sky_ghi_w_m2 as clear_w_m2
    from energyhub.forecast.store import save_weather
    from tests.scheduler.conftest import office_load_kw, write_readings

    site = make_site()
    await prepare_db(pg_url, site)
    now = pd.Timestamp(START).tz_convert("UTC") + pd.Timedelta(hours=10)  # 10:00 local
    index = pd.date_range(now - pd.Timedelta(days=14), now, freq="15min", inclusive="left")
    horizon = pd.date_range(now, periods=8, freq="15min")
    day = np.asarray((index - index[0]) // pd.Timedelta(days=1))
    sky = np.random.default_rng(4).uniform(0.3, 1.0, day.max() + 1)[day]
    clear = clear_w_m2(index, 31.23, 121.47)
    pv = 300.0 * clear / 1000 * 0.8 * sky
    local = index.tz_convert(site.tz)
    await write_readings(pg_url, {
        "main": pd.Series(office_load_kw(index) - pv, index=index),
        "pv": pd.Series(pv, index=index),
        "bess-p": pd.Series(0.0, index=index),
        "bess-soc": pd.Series(50.0, index=index),
        "outdoor": pd.Series(28.0 + 4.0 * np.sin(2 * np.pi * (local.hour - 9) / 24), index=index),
    })  # fmt: skip
    dull = 0.25 * clear_w_m2(horizon, 31.23, 121.47)
    frame = pd.DataFrame({"ghi_w_m2": np.append(clear * sky, dull)}, index=index.append(horizon))
    async with connect(pg_url) as conn:
        await save_weather(conn, "sp", ISSUED, frame, "test")
    settings = scheduler_settings(pg_url, SHARED_BROKER, prefix, scheduler_horizon_h=2)
    async with scheduler_for(settings, site, ManualClock(now.to_pydatetime())) as scheduler:
        async with connect(pg_url) as conn:
            await scheduler.resume(conn)
            planned = (await scheduler.tick(conn)).replanned[0]
            cur = await conn.execute(
                "SELECT ts, value FROM plan_inputs WHERE plan_id = %s "
                "AND name = 'office-pv:available_kw' ORDER BY ts",
                (planned.id,),
            )
            rows = await cur.fetchall()
    planned_kw = np.array([value for _, value in rows], dtype=float)
    clear_day_kw = 300.0 * clear_w_m2(horizon, 31.23, 121.47) / 1000 * 0.8
    assert len(planned_kw) == 8
    assert planned_kw.sum() / clear_day_kw.sum() == pytest.approx(0.25, abs=0.1)


async def test_the_demo_feeds_the_simulator_s_weather_as_the_forecast(pg_url: str) -> None:
    from energyhub.demo.weather import feed_weather_forecast
    from simulators.plant import make_weather

    await prepare_db(pg_url, make_site())
    async with connect(pg_url) as conn:
        stored = await feed_weather_forecast(conn, make_site(), START, 60.0, 120, seed=7)
        frame = await read_weather(
            conn, "sp", START, START + timedelta(hours=2), START + timedelta(seconds=1)
        )
    simulated = make_weather(TimeGrid(START, 60.0, 120), 7)
    assert stored == 8 and len(frame) == 8  # two hours at 15 min, one park
    np.testing.assert_allclose(
        frame["outdoor_c"].to_numpy(), simulated.outdoor_c.reshape(8, 15).mean(axis=1)
    )
    np.testing.assert_allclose(
        frame["ghi_w_m2"].to_numpy(), simulated.ghi_w_m2.reshape(8, 15).mean(axis=1), atol=1e-9
    )
    assert frame["cloud_cover_pct"].isna().all()


def test_hostile_rows_are_named_and_the_good_ones_kept() -> None:
    """Years the calendar cannot shift to UTC (a ValueError that lost the whole file), a NUL in
    `source` (PostgreSQL refused the file's one transaction), Excel's BOM before the header."""
    text = (
        "\ufeffpark_id,ts,issued_at,outdoor_c,source\n"
        "sp,2025-07-08T00:00:00+08:00,,27.5,cma\n"
        "sp,0001-01-01T00:15:00+14:00,,27.0,cma\n"
        "sp,9999-12-31T23:59:00-14:00,,27.0,cma\n"
        "sp,2025-07-08T00:30:00+08:00,3000-01-01T00:00:00+00:00,27.0,cma\n"
        "sp,2025-07-08T00:45:00+08:00,,27.0,c\x00ma\n"
        f"sp,2025-07-08T01:00:00+08:00,,27.0,{'x' * 201}\n"
        "sp,2025-07-07T16:00:00+00:00,,26.0,cma\n"  # row 2's step again: was kept over it
    )
    parsed = parse_csv(text, parks={"sp"}, issued_at=ISSUED, source="test")
    assert parsed.errors == [
        "row 3.ts: must lie between 1970 and 2200, got 1",
        "row 4.ts: must lie between 1970 and 2200, got 9999",
        "row 5.issued_at: must lie between 1970 and 2200, got 3000",
        "row 6.source: must not contain control characters: U+0000 at position 1, got 'c\\x00ma'",
        "row 7.source: at most 200 characters, got 201",
        "row 8.ts: 2025-07-07T16:00:00+00:00 of park 'sp' is given already (row 2); the first is "
        "kept",
    ]
    assert parsed.steps == 1


def test_a_decimal_comma_a_column_twice_and_a_misspelt_column_are_named() -> None:
    """`27,5` was stored as 27 (the cell after it set aside), a column given twice as its later
    value, and a misspelt column (`ghi_wm2`) was dropped without a word."""
    text = (
        "park_id,ts,outdoor_c\n"
        "sp,2025-07-08T00:00:00+08:00,27,5\n"
        "sp,2025-07-08T00:15:00+08:00,27.5,,\n"  # empty cells past the end hold nothing
    )
    parsed = parse_csv(text, parks={"sp"}, issued_at=ISSUED, source="test")
    assert parsed.errors == [
        "row 2: 4 cells under a header of 3 columns (beyond it: '5'); a decimal comma? write 1.5, "
        "not 1,5"
    ]
    assert parsed.steps == 1 and parsed.issues[0].frame["outdoor_c"].tolist() == [27.5]
    twice = parse_csv(
        "park_id,ts,outdoor_c,outdoor_c\nsp,2025-07-08T00:00:00+08:00,27,28\n",
        parks={"sp"},
        issued_at=ISSUED,
        source="test",
    )
    assert twice.steps == 0 and twice.file_problem == (
        "header: the column 'outdoor_c' is given twice (columns 3 and 4); a reader would keep "
        "only the later"
    )
    misspelt = parse_csv(
        "park_id,ts,outdoor_c,ghi_wm2\nsp,2025-07-08T00:00:00+08:00,27,300\n",
        parks={"sp"},
        issued_at=ISSUED,
        source="test",
    )
    assert misspelt.steps == 0 and (misspelt.file_problem or "").startswith(
        "header: unknown column 'ghi_wm2' (the columns are park_id, ts, issued_at, outdoor_c, "
    )


def test_a_cell_past_the_csv_readers_limit_is_named_and_the_other_rows_kept() -> None:
    """A cell over the csv module's 131,072 characters raised `_csv.Error: field larger than
    field limit` out of `forecast weather-import`: a traceback, and none of the good rows kept."""
    text = (
        "park_id,ts,outdoor_c\n"
        "sp,2025-07-08T00:00:00+08:00,27.5\n"
        f"sp,2025-07-08T00:15:00+08:00,{'9' * 200_000}\n"
        "sp,2025-07-08T00:30:00+08:00,28.5\n"
    )
    parsed = parse_csv(text, parks={"sp"}, issued_at=ISSUED, source="test")
    assert parsed.errors == [
        "row 3: not readable as CSV: a cell of more than 131,072 characters (or a quote that "
        "is never closed)"
    ]
    assert parsed.steps == 2
    assert parsed.issues[0].frame["outdoor_c"].tolist() == [27.5, 28.5]
    header = parse_csv(f"park_id,ts,{'x' * 200_000}\n", parks={"sp"}, issued_at=ISSUED,
                       source="test")  # fmt: skip
    assert header.steps == 0 and header.file_problem == (
        "header: not readable as CSV: a cell of more than 131,072 characters (or a quote that "
        "is never closed)"
    )


def test_a_steps_source_that_is_no_string_is_named() -> None:
    """`"source": {"a": 1}` in a step was stored as the text "{'a': 1}", 5 as "5"."""
    steps = [
        {"ts": START.isoformat(), "outdoor_c": 26.0},
        {"ts": (START + timedelta(minutes=15)).isoformat(), "outdoor_c": 1.0, "source": {"a": 1}},
        {"ts": (START + timedelta(minutes=30)).isoformat(), "outdoor_c": 1.0, "source": 5},
    ]
    topic = "p/weather/sp/forecast"
    parsed = parse_message(topic, {"steps": steps}, prefix="p", parks={"sp"}, received_at=ISSUED)
    assert parsed.errors == [
        f"{topic}.steps[1].source: expected a string, got {{'a': 1}}",
        f"{topic}.steps[2].source: expected a string, got 5",
    ]
    assert parsed.steps == 1 and parsed.issues[0].source == "mqtt"


async def test_a_hostile_message_keeps_its_good_steps_and_the_listener(
    pg_url: str, prefix: str
) -> None:
    """A step in year 1 with a +14:00 offset raised ValueError out of the listener (it stopped);
    a NUL in `source` made PostgreSQL refuse the message's good steps with it."""
    await prepare_db(pg_url, make_site())
    stop = asyncio.Event()
    good = [{"ts": (START + timedelta(minutes=15 * i)).isoformat(), "outdoor_c": 26.0 + i}
            for i in range(2)]  # fmt: skip
    later = [{"ts": (START + timedelta(hours=1)).isoformat(), "outdoor_c": 30.0}]
    async with connect(pg_url) as conn:
        task = asyncio.create_task(listen(conn, SHARED_BROKER, prefix, {"sp"}, stop, prefix))
        await asyncio.sleep(0.5)
        async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{prefix}-pub") as client:
            topic = weather_topic(prefix, "sp")
            bad_year = {"ts": "0001-01-01T00:00:00+14:00", "outdoor_c": 1.0}
            bad_source = {"ts": START.isoformat(), "outdoor_c": 1.0, "source": "a\x00b"}
            document = {"issued_at": ISSUED.isoformat(), "steps": [*good, bad_year, bad_source]}
            await client.publish(topic, orjson.dumps(document), qos=1)
            await client.publish(
                topic, orjson.dumps({"issued_at": ISSUED.isoformat(), "steps": later}), qos=1
            )
        async with connect(pg_url) as reader:
            for _ in range(100):
                cur = await reader.execute("SELECT count(*) FROM weather_forecasts")
                row = await cur.fetchone()
                if row is not None and row[0] == 3:
                    break
                await asyncio.sleep(0.05)
            frame = await read_weather(
                reader, "sp", START, START + timedelta(hours=2), datetime.now(UTC)
            )
        stop.set()
        await task
    assert frame["outdoor_c"].tolist() == [26.0, 27.0, 30.0]


async def test_a_forecast_giving_a_key_twice_is_refused_by_name(pg_url: str, prefix: str) -> None:
    """`steps` given twice kept the last list unseen; the message is refused naming the key,
    through the broker, and the listener goes on to store the next one."""
    await prepare_db(pg_url, make_site())
    stop = asyncio.Event()
    first = [{"ts": START.isoformat(), "outdoor_c": 20.0}]
    second = [{"ts": START.isoformat(), "outdoor_c": 35.0}]
    twice = b'{"issued_at": "%s", "steps": %s, "steps": %s}' % (
        ISSUED.isoformat().encode(), orjson.dumps(first), orjson.dumps(second)
    )  # fmt: skip
    after = START + timedelta(minutes=15)
    later = {
        "issued_at": ISSUED.isoformat(),
        "steps": [{"ts": after.isoformat(), "outdoor_c": 26.0}],
    }
    async with connect(pg_url) as conn:
        task = asyncio.create_task(listen(conn, SHARED_BROKER, prefix, {"sp"}, stop, prefix))
        await asyncio.sleep(0.5)
        async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{prefix}-pub") as client:
            topic = weather_topic(prefix, "sp")
            await client.publish(topic, twice, qos=1)
            await client.publish(topic, orjson.dumps(later), qos=1)
        async with connect(pg_url) as reader:
            for _ in range(100):
                cur = await reader.execute(
                    "SELECT count(*) FROM weather_forecasts WHERE ts = %s", (after,)
                )
                row = await cur.fetchone()
                if row is not None and row[0] == 1:
                    break  # the later message is stored: the one before it was handled
                await asyncio.sleep(0.05)
            frame = await read_weather(
                reader, "sp", START, START + timedelta(hours=1), datetime.now(UTC)
            )
        stop.set()
        await task
        refused = await handle(conn, topic, twice, prefix, {"sp"})
    assert frame["outdoor_c"].tolist() == [26.0]
    assert refused.errors == [
        f"{topic}: key 'steps' is given twice in one JSON object (a parser keeps the last "
        "unseen); give it once"
    ]


async def test_a_message_nested_past_the_standard_parser_is_refused_not_fatal(
    pg_url: str, prefix: str
) -> None:
    """orjson reads 1,000 levels, the standard library's parser (the repeated-key check) raises
    RecursionError there: a 2 KB message ended the listener with a traceback."""
    await prepare_db(pg_url, make_site())
    deep = b"[" * 1000 + b'{"a": "\\u0041"}' + b"]" * 1000
    async with connect(pg_url) as conn:
        refused = await handle(conn, weather_topic(prefix, "sp"), deep, prefix, {"sp"})
    assert refused.errors, refused
    assert all("RecursionError" not in e and "recursion" not in e for e in refused.errors)


def test_a_message_s_numbers_and_source_are_json_types_and_an_empty_one_is_named() -> None:
    """`"outdoor_c": "5"` was stored as 5, `"source": 123` as '123', and `"steps": []` stored
    nothing and said nothing: a JSON message carries numbers as numbers (a CSV cell is text)."""
    topic = "eh/weather/sp/forecast"

    def parsed(payload: dict[str, object]) -> tuple[list[str], int]:
        found = parse_message(topic, payload, prefix="eh", parks={"sp"}, received_at=ISSUED)
        return found.errors, found.steps

    good = {"ts": "2025-07-08T00:00:00+08:00", "outdoor_c": 27.5}
    quoted = {"ts": "2025-07-08T00:15:00+08:00", "outdoor_c": "5"}
    assert parsed({"steps": [good, quoted]}) == (
        [f"{topic}.steps[1].outdoor_c: expected a JSON number, got '5'"],
        1,  # the good step is kept
    )
    assert parsed({"source": 123, "steps": [good]}) == (
        [f"{topic}.source: expected a string, got 123"],
        0,
    )
    assert parsed({"steps": []}) == ([f"{topic}.steps: empty, no forecast step to store"], 0)
    assert parsed({"source": "cma", "steps": [good]}) == ([], 1)
