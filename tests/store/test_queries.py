"""Series from rollups equal an independent pandas calculation from the raw readings, on both paths."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from psycopg import AsyncConnection

from energyhub.sites import SiteFile
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.queries import (
    METER_SERIES_COLUMNS,
    latest_values,
    meter_series,
    meter_state_series,
    parse_step,
    site_meter_ids,
    site_series,
)
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter

START = datetime(2026, 11, 20, tzinfo=UTC)
MINUTES = 2 * 24 * 60
ROLLOVER = 999_999.9


async def meter_ids(conn: AsyncConnection) -> dict[str, int]:
    cur = await conn.execute("SELECT site_id || '/' || name, id FROM meters")
    return dict(await cur.fetchall())


def synthetic(ids: dict[str, int]) -> tuple[ReadingBatch, dict[str, pd.Series]]:
    """Two days at 1-min: power meters, a heat counter that rolls over and resets, and a gap."""
    minutes = pd.date_range(START, periods=MINUTES, freq="1min")
    t = np.arange(MINUTES)
    rng = np.random.default_rng(42)
    series = {
        "b01/main": pd.Series(800 + 300 * np.sin(t / 200) + rng.normal(0, 5, MINUTES), minutes),
        "b02/main": pd.Series(np.full(MINUTES, 500.0), minutes),
        "b01/pv": pd.Series(
            np.clip(200 * np.sin((t % 1440 - 360) / 1440 * 2 * np.pi), 0, None), minutes
        ),
    }
    heat_step = rng.uniform(1, 3, MINUTES)
    heat = ROLLOVER - 500 + np.cumsum(heat_step)
    heat = np.where(heat >= ROLLOVER, heat - ROLLOVER, heat)  # rolls over after ~4 h
    reset_at = 1500
    heat[reset_at:] = np.cumsum(heat_step[reset_at:])  # the counter resets to zero
    series["b01/heat"] = pd.Series(heat, minutes)
    f3 = pd.Series(np.cumsum(rng.uniform(0.5, 1.0, MINUTES)), minutes)
    series["b01/f3"] = f3.drop(f3.index[600:700])  # a 100-minute gap
    batches = [
        ReadingBatch.from_columns(
            s.index.tz_convert(None).values, np.full(len(s), ids[name]), s.values
        )
        for name, s in series.items()
    ]
    return ReadingBatch.concat(batches), series


def expected_kw(samples: pd.Series, counter: bool, step: str, rollover: float | None) -> pd.Series:
    """What a bucket should say, computed without SQL: mean power, or a counter's energy ÷ the
    hours its steps cover.

    A counter's energy is the sum of the rises between consecutive readings, each in the bucket
    of its later reading, whatever the step, and so is the time it covers: the spans between
    those readings (docs/meter-data.md).
    """
    freq = {"5m": "5min", "15m": "15min", "1h": "1h", "1d": "1D"}[step]
    if step == "1d":  # days start at local midnight
        samples = samples.tz_convert("Asia/Shanghai")
    if not counter:
        return samples.resample(freq).mean().dropna()
    delta = samples.diff()
    drops = delta < 0
    previous = samples.shift()
    rolled = drops & (rollover is not None) & (previous > 0.5 * (rollover or 0))
    delta[rolled] = samples[rolled] + (rollover or 0) - previous[rolled]
    delta[drops & ~rolled] = samples[drops & ~rolled]
    hours = samples.index.to_series().diff() / pd.Timedelta("1h")
    return (delta.resample(freq).sum(min_count=1) / hours.resample(freq).sum()).dropna()


async def load(url: str, site: SiteFile) -> tuple[dict[str, int], dict[str, pd.Series], Backend]:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
        ids = await meter_ids(conn)
        backend = await installed_backend(conn)
    batch, series = synthetic(ids)
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(batch)
    return ids, series, backend


@pytest.mark.parametrize("step", ["5m", "15m", "1h", "1d"])
async def test_meter_series_match_raw_computation(
    store_url: str, example_site: SiteFile, step: str
) -> None:
    ids, series, backend = await load(store_url, example_site)
    async with connect(store_url) as conn:
        await refresh_rollups(conn, backend)
        for name, counter, rollover in [
            ("b01/main", False, None),
            ("b01/heat", True, ROLLOVER),
            ("b01/f3", True, None),
        ]:
            tz = "Asia/Shanghai" if step == "1d" else "UTC"
            got = await meter_series(
                conn,
                backend,
                [ids[name]],
                START + timedelta(hours=2),
                START + timedelta(days=2),
                parse_step(step),
                tz,
            )
            want = expected_kw(series[name], counter, step, rollover)
            got_values = pd.Series(
                got["value"].values, pd.DatetimeIndex(got["bucket"]).tz_convert(want.index.tz)
            )
            if step == "1d":  # only the one local day wholly inside the window compares
                day = pd.Timestamp("2026-11-21", tz="Asia/Shanghai")
                want, got_values = want[[day]], got_values[[day]]
            else:
                want = want[
                    (want.index >= START + timedelta(hours=2))
                    & (want.index < START + timedelta(days=2))
                ]
            pd.testing.assert_series_equal(
                got_values, want, check_names=False, check_freq=False, rtol=1e-9
            )


@pytest.mark.parametrize(
    ("step", "offset", "tz"),
    [("5m", "0h", "UTC"), ("15m", "0h", "UTC"), ("1h", "0h", "UTC"),
     ("1h", "30min", "Asia/Kolkata"), ("1d", "0h", "Asia/Shanghai")],
)  # fmt: skip
async def test_a_state_per_step_is_its_last_sample_and_a_step_without_one_is_absent(
    store_url: str, example_site: SiteFile, step: str, offset: str, tz: str
) -> None:
    """`meter_state_series` (a store's SOC at each step's end): each step's last sample, labelled
    by the step's start, on the rollups' grain, off it (an hour from :30 UTC) and local days; the
    quarter hours inside b01/f3's 100-minute gap have no row."""
    ids, series, backend = await load(store_url, example_site)
    start = START + timedelta(hours=2) + pd.Timedelta(offset)
    end = START + timedelta(days=2)
    async with connect(store_url) as conn:
        await refresh_rollups(conn, backend)
        got = await meter_state_series(
            conn, backend, [ids["b01/f3"]], start, end, parse_step(step), tz
        )
    assert list(got.columns) == METER_SERIES_COLUMNS
    freq = {"5m": "5min", "15m": "15min", "1h": "1h", "1d": "1D"}[step]
    samples = series["b01/f3"]
    samples = samples[(samples.index >= start) & (samples.index < end)].tz_convert(tz)
    grouped = samples.resample(freq, origin=start if step != "1d" else "start_day")
    want = pd.DataFrame({"value": grouped.last(), "samples": grouped.count()}).dropna()
    want = want[want["samples"] > 0]
    got = got.set_index(pd.DatetimeIndex(got["bucket"]).tz_convert(tz))
    if step == "1d":  # only the one local day wholly inside the window compares
        want = want.loc[[pd.Timestamp("2026-11-21", tz=tz)]]
        got = got.loc[want.index]
    pd.testing.assert_series_equal(got["value"], want["value"], check_names=False, check_freq=False)
    assert got["samples"].tolist() == want["samples"].tolist()
    assert got["energy_kwh"].isna().all() and got["covered_s"].isna().all()
    if step == "15m":
        inside = pd.date_range(START + timedelta(minutes=600), periods=6, freq="15min")
        assert not set(inside) & set(got.index)  # minutes 600-699: 10:00 to 11:30 wholly
        assert START + timedelta(minutes=690) in got.index  # 11:30 has 11:40 to 11:44


async def test_several_meters_read_at_once_are_each_meters_own_series(
    store_url: str, example_site: SiteFile
) -> None:
    """The packed read (one row of binary columns per meter) gives each meter's own rows, in
    (bucket, meter) order, and a counter's unknown first energy as NaN."""
    ids, _, backend = await load(store_url, example_site)
    first = np.datetime64("2026-11-20T00:05:00", "us")  # alone in its bucket, nothing before it
    heat = ReadingBatch.from_columns(
        [first, first + np.timedelta64(15, "m")], [ids["b02/heat"]] * 2, [100.0, 110.0]
    )
    async with open_pool(store_url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(heat)
    names = ["b01/main", "b01/heat", "b01/f3", "b01/pv", "b02/heat"]
    window = (START, START + timedelta(days=1), parse_step("15m"))
    async with connect(store_url) as conn:
        await refresh_rollups(conn, backend)
        together = await meter_series(conn, backend, [ids[n] for n in names], *window)
        alone = [await meter_series(conn, backend, [ids[n]], *window) for n in names]
    assert list(together.columns) == METER_SERIES_COLUMNS
    assert len(together) == 4 * 96 - 6 + 2  # b01/f3 has no reading in 6 quarter hours of its gap
    expected = pd.concat(alone).sort_values(["bucket", "meter_id"], ignore_index=True)
    pd.testing.assert_frame_equal(together, expected)
    unknown = together[together["energy_kwh"].isna()]
    assert unknown[["bucket", "meter_id"]].values.tolist() == [
        [pd.Timestamp(START), ids["b02/heat"]]
    ]
    assert np.isnan(unknown["value"]).all()


async def test_site_sums_equal_the_sum_of_their_meters(
    store_url: str, example_site: SiteFile
) -> None:
    ids, series, backend = await load(store_url, example_site)
    async with connect(store_url) as conn:
        await refresh_rollups(conn, backend)
        expo = set(await site_meter_ids(conn, "expo"))
        assert {ids["b01/main"], ids["b02/main"], ids["b01/heat"], ids["b01/pv"]} <= expo
        assert ids["b01/f3"] not in expo  # a sub-meter is part of its parent already
        assert ids["b01/bess-soc"] not in expo
        assert await site_meter_ids(conn, "acme-bio") == sorted([ids["b01/f3"], ids["b04/lab2"]])
        park = await site_series(
            conn, backend, "expo", START, START + timedelta(days=1), parse_step("1h")
        )
        electricity = park[park.carrier == "electricity"].set_index("bucket")["power_kw"]
        want = (series["b01/main"] + series["b02/main"]).resample("1h").mean()
        np.testing.assert_allclose(electricity.values, want.iloc[:24].values, rtol=1e-9)
        assert set(park.carrier) == {"electricity", "heat", "pv"}
        b02 = await site_series(
            conn, backend, "b02", START, START + timedelta(days=1), parse_step("1h")
        )
        assert list(b02.carrier.unique()) == ["electricity"]
        assert b02.power_kw.round(9).eq(500).all()


async def test_latest_values(store_url: str, example_site: SiteFile) -> None:
    ids, series, _ = await load(store_url, example_site)
    async with connect(store_url) as conn:
        latest = await latest_values(conn, [ids["b01/main"], ids["b01/f3"], ids["b03/main"]])
    assert [(v.meter_id, v.value) for v in latest] == [
        (ids["b01/main"], series["b01/main"].iloc[-1]),
        (ids["b01/f3"], series["b01/f3"].iloc[-1]),
    ]
    assert latest[0].ts == series["b01/main"].index[-1]


async def test_both_paths_give_the_same_answers(
    pg_url: str, tsdb_url: str, example_site: SiteFile
) -> None:
    answers = []
    for url in (pg_url, tsdb_url):
        _, _, backend = await load(url, example_site)
        async with connect(url) as conn:
            await refresh_rollups(conn, backend)
            frames = [
                await site_series(
                    conn,
                    backend,
                    site,
                    START,
                    START + timedelta(days=2),
                    parse_step(step),
                    "Asia/Shanghai",
                )
                for site in ("shanghai", "b01", "acme-bio")
                for step in ("1m", "15m", "1h", "1d")
            ]
        answers.append(frames)
    for plain, timescale in zip(*answers, strict=True):
        assert len(plain) > 0
        pd.testing.assert_frame_equal(
            plain.reset_index(drop=True), timescale.reset_index(drop=True), rtol=1e-9
        )


def test_bad_step_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"step must be one of 1m, 5m, 15m, 1h, 1d, got '7m'"):
        parse_step("7m")


async def test_bad_range(pg_url: str) -> None:
    async with connect(pg_url) as conn:
        await migrate(conn)
        with pytest.raises(ValueError, match="must be after start"):
            await meter_series(conn, Backend.POSTGRES, [1], START, START, parse_step("1h"))
        with pytest.raises(ValueError, match="UTC offset"):
            await meter_series(
                conn, Backend.POSTGRES, [1], START.replace(tzinfo=None), START, parse_step("1h")
            )


async def test_unknown_counter_energy_is_not_summed_as_zero(
    pg_url: str, example_site: SiteFile
) -> None:
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, example_site)
        ids = await meter_ids(conn)
    first = np.datetime64("2026-11-20T00:05:00", "us")
    batch = ReadingBatch.from_columns(
        [first, first + np.timedelta64(15, "m")], [ids["b02/heat"]] * 2, [100.0, 110.0]
    )
    async with open_pool(pg_url, max_size=1) as pool:
        await ReadingWriter(pool, Backend.POSTGRES).write(batch)
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, Backend.POSTGRES)
        frame = await site_series(
            conn, Backend.POSTGRES, "b02", START, START + timedelta(hours=1), parse_step("15m")
        )
    # The first reading has no predecessor: its bucket is unknown, not 0 kW; the next is 10 kWh / 0.25 h.
    assert frame[["carrier", "power_kw"]].values.tolist() == [["heat", 40.0]]
