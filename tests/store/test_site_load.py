"""The per-site load rollups say what summing the site's meters says, on both paths and after
late data, fresh data and a change of the site tree."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from psycopg import AsyncConnection

from energyhub.render import sync_summary
from energyhub.sites import SiteFile, parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.maintenance import refresh_dirty_rollups, refresh_rollups
from energyhub.store.queries import (
    STEPS,
    _summed_series,
    every_sites_meter_ids,
    site_meter_ids,
    site_series,
)
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter
from tests.store.test_queries import MINUTES, START, load, meter_ids

SITES = ("shanghai", "expo", "b01", "b02", "acme-bio")
DAYS = timedelta(days=2)


async def assert_rollup_matches_meters(
    conn: AsyncConnection, backend: Backend, sites: tuple[str, ...] = SITES
) -> int:
    """Every site and rollup step: the rollup's series equals the summed meters'; rows compared."""
    compared = 0
    for site_id in sites:
        for step in ("15m", "1h"):
            got = await site_series(conn, backend, site_id, START, START + DAYS, STEPS[step])
            want = await _summed_series(
                conn, backend, site_id, START, START + DAYS, STEPS[step], "UTC"
            )
            assert list(got.columns) == list(want.columns)
            assert len(got) == len(want), (site_id, step)
            assert got.bucket.tolist() == want.bucket.tolist(), (site_id, step)
            assert got.carrier.tolist() == want.carrier.tolist(), (site_id, step)
            np.testing.assert_allclose(got.power_kw, want.power_kw, rtol=1e-9, atol=1e-9)
            compared += len(got)
    return compared


async def test_rollup_equals_the_sum_of_meters(store_url: str, example_site: SiteFile) -> None:
    _, _, backend = await load(store_url, example_site)
    async with connect(store_url) as conn:
        await refresh_rollups(conn, backend)
        assert await assert_rollup_matches_meters(conn, backend) > 2 * 96 * len(SITES)
        rows = await (await conn.execute("SELECT count(*) FROM site_load_15m")).fetchone()
        assert rows is not None and rows[0] > 0


def late_and_fresh(ids: dict[str, int]) -> ReadingBatch:
    """A late burst into a refreshed hour of b02 and an hour past the end for b01's main."""
    late = pd.date_range(START + timedelta(hours=5, seconds=30), periods=30, freq="1min")
    fresh = pd.date_range(START + DAYS - timedelta(hours=1, seconds=-30), periods=60, freq="1min")
    return ReadingBatch.concat(
        [
            ReadingBatch.from_columns(
                late.tz_convert(None).values, np.full(30, ids["b02/main"]), np.full(30, 9000.0)
            ),
            ReadingBatch.from_columns(
                fresh.tz_convert(None).values, np.full(60, ids["b01/main"]), np.full(60, 1234.0)
            ),
        ]
    )


async def test_late_and_fresh_readings_reach_the_rollup(
    store_url: str, example_site: SiteFile
) -> None:
    ids, _, backend = await load(store_url, example_site)
    async with connect(store_url) as conn:
        await refresh_rollups(conn, backend)
        before = await site_series(conn, backend, "expo", START, START + DAYS, STEPS["15m"])
    async with open_pool(store_url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(late_and_fresh(ids))
    async with connect(store_url) as conn:
        assert await refresh_dirty_rollups(conn, backend) > 0
        await assert_rollup_matches_meters(conn, backend)
        after = await site_series(conn, backend, "expo", START, START + DAYS, STEPS["15m"])
    changed = before.merge(after, on=["bucket", "carrier"], suffixes=("_before", "_after"))
    moved = changed[~np.isclose(changed.power_kw_before, changed.power_kw_after)]
    assert set(moved.bucket.dt.hour) == {5, 23}  # only the hours written to


async def test_a_meter_joining_the_load_rebuilds_its_sites(
    pg_url: str, example_site_path: Path
) -> None:
    url = pg_url
    document = yaml.safe_load(example_site_path.read_text())
    await load(url, parse_site(document))
    async with connect(url) as conn:
        await refresh_rollups(conn, Backend.POSTGRES)
        for building in document["city"]["parks"][0]["buildings"]:
            for meter in building.get("meters", []):
                if building["id"] == "b01" and meter["id"] == "f3":
                    del meter["submeter_of"]  # f3 now counts on its own
        report = await sync_site(conn, parse_site(document))
        assert set(report.site_load_rebuilt) == {"shanghai", "expo", "b01"}
        await assert_rollup_matches_meters(conn, Backend.POSTGRES)
        again = await sync_site(conn, parse_site(document))
        assert again.site_load_rebuilt == []


@pytest.mark.parametrize(
    ("meter", "key", "value", "said"),
    [
        ("heat", "carrier", "gas", "b01/heat: carrier heat → gas"),
        ("main", "quantity", "energy_kwh", "b01/main: quantity power_kw → energy_kwh"),
        ("heat", "rollover_kwh", 5000.0, "b01/heat: rollover_kwh 999999.9 → 5000.0"),
    ],
)
async def test_a_meter_whose_readings_mean_something_else_is_rolled_up_again(
    pg_url: str, example_site_path: Path, meter: str, key: str, value: object, said: str
) -> None:
    """b01/heat declared gas kept its history as heat in the load rollups (the API's load and
    every report read from them), b01/main as a counter kept its kW: only a changed interval
    marked a meter's buckets for the refresh."""
    document = yaml.safe_load(example_site_path.read_text())
    await load(pg_url, parse_site(document))
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, Backend.POSTGRES)
        (b01,) = (b for b in document["city"]["parks"][0]["buildings"] if b["id"] == "b01")
        (changed,) = (m for m in b01["meters"] if m["id"] == meter)
        changed[key] = value
        report = await sync_site(conn, parse_site(document))
        assert report.reread == [said]
        assert "stored readings read anew" in sync_summary(report)
        assert await refresh_dirty_rollups(conn, Backend.POSTGRES) > 0
        await assert_rollup_matches_meters(conn, Backend.POSTGRES, ("shanghai", "expo", "b01"))
        again = await sync_site(conn, parse_site(document))
        assert again.reread == []


async def test_every_sites_meters_at_once_are_each_sites_own(
    store_url: str, example_site: SiteFile
) -> None:
    """The one query `sites load` asks for the load's meters of every site gives each site the
    meters its own subtree query gives (enterprises by their sub-meters)."""
    await load(store_url, example_site)
    async with connect(store_url) as conn:
        every = await every_sites_meter_ids(conn)
        sites = [row[0] for row in await (await conn.execute("SELECT id FROM sites")).fetchall()]
        assert {"shanghai", "expo", "b01", "acme-bio"} <= set(every)
        for site_id in sites:
            assert every.get(site_id, set()) == set(await site_meter_ids(conn, site_id)), site_id


def _with_park_main(document: dict[str, Any], main_meter: str | None) -> SiteFile:
    """The example with a main electricity meter on park expo (its connection, unless told)."""
    park = document["city"]["parks"][0]
    park["meters"].append({"id": "main", "carrier": "electricity", "quantity": "power_kw"})
    if main_meter is not None:
        park["main_meter"] = main_meter
    return parse_site(document)


async def test_a_park_main_is_the_park_s_load_not_added_to_its_buildings(
    pg_url: str, example_site_path: Path
) -> None:
    """A park's main meter is its connection: the park's (and city's) electricity is that meter,
    not that meter plus its buildings' mains; each building keeps its own; `own-loads` adds."""
    document = yaml.safe_load(example_site_path.read_text())
    ids, series, backend = await load(pg_url, _with_park_main(document, None))
    connection = pd.Series(
        np.full(MINUTES, 2000.0), pd.date_range(START, periods=MINUTES, freq="1min")
    )
    async with open_pool(pg_url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(
            ReadingBatch.from_columns(
                connection.index.tz_convert(None).values,
                np.full(MINUTES, ids["expo/main"]),
                connection.values,
            )
        )
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, backend)
        expo = set(await site_meter_ids(conn, "expo"))
        assert ids["expo/main"] in expo
        assert not {ids["b01/main"], ids["b02/main"]} & expo
        assert ids["b01/main"] in set(await site_meter_ids(conn, "b01"))
        for site_id in ("expo", "shanghai"):
            for step in ("15m", "1h", "5m"):
                got = await site_series(conn, backend, site_id, START, START + DAYS, STEPS[step])
                electricity = got[got.carrier == "electricity"].power_kw
                np.testing.assert_allclose(electricity, 2000.0, rtol=1e-9)  # not 2000 + b01 + b02
        await assert_rollup_matches_meters(conn, backend)

        document = yaml.safe_load(example_site_path.read_text())
        report = await sync_site(conn, _with_park_main(document, "own-loads"))
        assert {"expo", "shanghai"} <= set(report.site_load_rebuilt)
        got = await site_series(conn, backend, "expo", START, START + DAYS, STEPS["1h"])
        want = 2000.0 + series["b01/main"].resample("1h").mean() + 500.0
        electricity = got[got.carrier == "electricity"].set_index("bucket").power_kw
        np.testing.assert_allclose(electricity, want.reindex(electricity.index), rtol=1e-9)


async def _write_park_main(url: str, backend: Backend, meter_id: int, day: int, kw: float) -> None:
    """`kw` on one park main for the `day`-th day (0 or 1) of the example's two."""
    index = pd.date_range(START + timedelta(days=day), periods=MINUTES // 2, freq="1min")
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(
            ReadingBatch.from_columns(
                index.tz_convert(None).values,
                np.full(len(index), meter_id),
                np.full(len(index), kw),
            )
        )


async def _electricity(
    conn: AsyncConnection, backend: Backend, site_id: str, step: str
) -> pd.Series:
    got = await site_series(conn, backend, site_id, START, START + DAYS, STEPS[step])
    return got[got.carrier == "electricity"].set_index("bucket").power_kw


async def test_a_retired_park_main_keeps_the_history_counted_once(
    pg_url: str, example_site_path: Path
) -> None:
    """Park expo was measured at its connection (2,000 kW) on the first day and its main meter
    was then removed from the site file: the first day stays the connection's 2,000 kW, not
    2,000 kW plus its buildings' mains again; the second day is its buildings' mains, as if there
    had never been a park main; the rollups agree with the sum of the meters at every step."""
    plain = yaml.safe_load(example_site_path.read_text())
    _, _, backend = await load(pg_url, parse_site(plain))
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, backend)
        without = {
            (site, step): await _electricity(conn, backend, site, step)
            for site in ("expo", "shanghai")
            for step in ("15m", "1h", "5m")
        }
        await sync_site(conn, _with_park_main(yaml.safe_load(example_site_path.read_text()), None))
        main = (await meter_ids(conn))["expo/main"]
    await _write_park_main(pg_url, backend, main, 0, 2000.0)
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, backend)
        report = await sync_site(conn, parse_site(plain))  # the park main is retired
        assert report.retired == ["expo/main"]
        assert {"expo", "shanghai"} <= set(report.site_load_rebuilt)
        for (site, step), before in without.items():
            after = await _electricity(conn, backend, site, step)
            first = after.index < START + timedelta(days=1)
            np.testing.assert_allclose(after[first], 2000.0, rtol=1e-9, err_msg=f"{site} {step}")
            np.testing.assert_allclose(
                after[~first], before.reindex(after[~first].index), rtol=1e-9, err_msg=site
            )
        await assert_rollup_matches_meters(conn, backend)
        assert (await sync_site(conn, parse_site(plain))).site_load_rebuilt == []


async def test_a_replaced_park_main_keeps_the_history_counted_once(
    pg_url: str, example_site_path: Path
) -> None:
    """The park main replaced by another (a new id) on the second day: the park is the old
    meter's 2,000 kW, then the new one's 1,500 kW, never its buildings' mains as well."""
    ids, _, backend = await load(
        pg_url, _with_park_main(yaml.safe_load(example_site_path.read_text()), None)
    )
    await _write_park_main(pg_url, backend, ids["expo/main"], 0, 2000.0)
    replaced = yaml.safe_load(example_site_path.read_text())
    replaced["city"]["parks"][0]["meters"].append(
        {"id": "main2", "carrier": "electricity", "quantity": "power_kw"}
    )
    async with connect(pg_url) as conn:
        await sync_site(conn, parse_site(replaced))
        new = (await meter_ids(conn))["expo/main2"]
    await _write_park_main(pg_url, backend, new, 1, 1500.0)
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, backend)
        for step in ("15m", "1h", "5m"):
            after = await _electricity(conn, backend, "expo", step)
            first = after.index < START + timedelta(days=1)
            np.testing.assert_allclose(after[first], 2000.0, rtol=1e-9)
            np.testing.assert_allclose(after[~first], 1500.0, rtol=1e-9)
        await assert_rollup_matches_meters(conn, backend)


async def test_a_retired_sub_meter_stays_part_of_its_parent(
    pg_url: str, example_site_path: Path
) -> None:
    """b01's sub-meter f3 removed from the site file: its readings were part of b01's main and
    stay so, not a top-level meter added to b01's (and its park's) load history."""
    document = yaml.safe_load(example_site_path.read_text())
    ids, _, backend = await load(pg_url, parse_site(document))
    async with connect(pg_url) as conn:
        await refresh_rollups(conn, backend)
        before = {
            s: await site_series(conn, backend, s, START, START + DAYS, STEPS["1h"])
            for s in ("b01", "expo")
        }
        b01 = document["city"]["parks"][0]["buildings"][0]
        b01["meters"] = [m for m in b01["meters"] if m["id"] != "f3"]
        acme = next(e for e in b01["enterprises"] if e["id"] == "acme-bio")
        acme["meters"] = [m for m in acme["meters"] if m != "f3"]
        report = await sync_site(conn, parse_site(document))
        assert report.retired == ["b01/f3"]
        assert ids["b01/f3"] not in await site_meter_ids(conn, "b01")
        for site, want in before.items():
            got = await site_series(conn, backend, site, START, START + DAYS, STEPS["1h"])
            pd.testing.assert_frame_equal(got, want)
        await assert_rollup_matches_meters(conn, backend)
