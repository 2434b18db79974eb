"""Load: subtree sums, rollups, CSV and JSON, limits, bad input."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
import numpy as np
import pandas as pd
import pytest

from energyhub.api.schemas.load import LoadPublic
from tests.api.conftest import START, World

DAY = {"start": START.isoformat(), "end": (START + timedelta(days=1)).isoformat()}
BUILDINGS = ("b01", "b02", "b03", "b04", "b05", "b06", "b07")


@pytest.fixture
def world(shared_world: World) -> World:
    """These tests only read: one database for the module."""
    return shared_world


async def load(client: httpx.AsyncClient, site: str, step: str, **extra: str) -> pd.DataFrame:
    response = await client.get(f"/sites/{site}/load", params={**DAY, "step": step, **extra})
    assert response.status_code == 200, response.text
    points = response.json()["points"]
    frame = pd.DataFrame(points).set_index("ts")
    frame.index = pd.to_datetime(frame.index, utc=True)
    return frame.astype("float64")


@pytest.mark.parametrize("step", ["1m", "15m", "1h"])
async def test_subtree_sums_equal_the_sum_of_its_parts(
    client: httpx.AsyncClient, step: str
) -> None:
    park = await load(client, "expo", step)
    parts = [await load(client, b, step) for b in BUILDINGS]
    for column in ("electricity_kw", "pv_kw", "heat_kw"):
        total = sum(p[column].fillna(0) for p in parts)
        np.testing.assert_allclose(
            park[column].fillna(0), total.reindex(park.index).fillna(0), rtol=1e-9
        )
    city = await load(client, "shanghai", step)
    lingang = await load(client, "lingang", step)
    np.testing.assert_allclose(
        city["electricity_kw"], park["electricity_kw"] + lingang["electricity_kw"], rtol=1e-9
    )


async def test_building_load_matches_its_raw_readings(
    client: httpx.AsyncClient, world: World
) -> None:
    got = await load(client, "b01", "15m")
    main = world.series["b01/main"].resample("15min").mean()
    np.testing.assert_allclose(got["electricity_kw"], main.values, rtol=1e-9)
    pv = world.series["b01/pv"].resample("15min").mean()
    np.testing.assert_allclose(got["pv_kw"], pv.values, rtol=1e-9)
    heat = world.series["b01/heat"].resample("15min").last().diff() / 0.25
    np.testing.assert_allclose(got["heat_kw"].iloc[1:], heat.iloc[1:].values, rtol=1e-9)
    assert got["cooling_kw"].isna().all()


async def test_enterprise_is_the_sum_of_its_submeters(
    client: httpx.AsyncClient, world: World
) -> None:
    got = await load(client, "acme-bio", "1h")

    def counter_kw(readings: pd.Series) -> pd.Series:
        """Each hour's rises ÷ the hours their steps span: the mean power while it measured."""
        hours = readings.index.to_series().diff() / pd.Timedelta("1h")
        return readings.diff().resample("1h").sum(min_count=1) / hours.resample("1h").sum()

    f3, lab2 = (counter_kw(world.series[m]) for m in ("b01/f3", "b04/lab2"))
    # each rise lands in its later reading's hour: the hour f3 was silent holds lab2 only, the
    # next the gap's energy over the gap's span; the first hour lacks only the step before its
    # first reading, and its time
    kw = lab2.add(f3, fill_value=0).dropna()
    electricity = got["electricity_kw"].dropna()
    assert list(electricity.index) == list(kw.index)
    np.testing.assert_allclose(electricity, kw.values, rtol=1e-9)


@pytest.mark.parametrize("step", ["5m", "1h", "1d"])
async def test_csv_and_json_agree(client: httpx.AsyncClient, step: str) -> None:
    params = {**DAY, "step": step}
    as_json = (await client.get("/sites/expo/load", params=params)).json()["points"]
    response = await client.get("/sites/expo/load", params={**params, "format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(as_json) > 0
    for row, point in zip(rows, as_json, strict=True):
        assert pd.Timestamp(row.pop("ts")) == pd.Timestamp(point.pop("ts"))
        assert {k: float(v) if v else None for k, v in row.items()} == point


@pytest.mark.parametrize("site", ["b01", "expo", "acme-bio"])
async def test_json_is_the_models_own(client: httpx.AsyncClient, site: str) -> None:
    """Built from plain dicts, the body is what LoadPublic itself serializes, byte for byte."""
    response = await client.get(f"/sites/{site}/load", params={**DAY, "step": "15m"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert LoadPublic.model_validate_json(response.content).model_dump_json() == response.text


async def test_times_carry_the_site_offset(client: httpx.AsyncClient) -> None:
    body = (await client.get("/sites/b01/load", params={**DAY, "step": "1d"})).json()
    assert body["start"] == "2026-11-20T08:00:00+08:00"
    assert [p["ts"] for p in body["points"]] == [
        "2026-11-20T00:00:00+08:00",
        "2026-11-21T00:00:00+08:00",
    ]


async def test_an_unescaped_plus_in_the_offset_still_parses(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/sites/b01/load?step=1h&start=2026-11-20T08:00:00+08:00&end=2026-11-20T10:00:00+08:00"
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["points"]) == 2


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"step": "7m"}, "step", "'1m', '5m', '15m', '1h' or '1d'"),
        ({"start": "2026-11-20T00:00:00"}, "start", "timezone"),
        ({"start": "yesterday"}, "start", "datetime"),
        ({"end": "0001-01-01T00:00:00Z"}, "end", "between 1970 and 2200"),
        (
            {"start": "2026-11-21T00:00:00Z", "end": "2026-11-20T00:00:00Z"},
            "end",
            "must be after start",
        ),
        ({"format": "xml"}, "format", "'json' or 'csv'"),
        (
            {"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "step": "1d"},
            "end",
            "ENERGYHUB_API_MAX_RANGE_DAYS",
        ),
        (
            {"start": "2026-11-01T00:00:00Z", "end": "2026-11-20T00:00:00Z", "step": "1m"},
            "step",
            "ENERGYHUB_API_MAX_POINTS",
        ),
    ],
)
async def test_bad_input_names_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], field: str, words: str
) -> None:
    response = await client.get("/sites/b01/load", params=params)
    assert response.status_code == 422
    body = response.json()
    assert [e["field"] for e in body["errors"]] == [field]
    assert words in body["detail"]


async def test_the_points_limit_says_how_to_page(client: httpx.AsyncClient) -> None:
    params = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-20T00:00:00Z", "step": "1m"}
    detail = (await client.get("/sites/b01/load", params=params)).json()["detail"]
    assert "27360 rows, more than the limit of 2000" in detail
    assert "windows of at most 33.3333 h" in detail


async def test_unknown_site(client: httpx.AsyncClient) -> None:
    response = await client.get("/sites/nowhere/load")
    assert response.status_code == 404


async def test_energy_and_coverage_are_the_same_at_every_step(client: httpx.AsyncClient) -> None:
    """The window's energy per carrier is one answer whatever the step (docs/meter-data.md)."""
    answers = {}
    for step in ("1m", "5m", "15m", "1h"):
        response = await client.get("/sites/b01/load", params={**DAY, "step": step})
        assert response.status_code == 200, response.text
        document = LoadPublic.model_validate(response.json())
        answers[step] = (document.energy_kwh, document.coverage)
    energy, coverage = answers["1m"]
    assert set(energy) >= {"electricity", "pv", "heat"}
    assert 0.5 < coverage <= 1.0
    for step, (other, other_coverage) in answers.items():
        assert other.keys() == energy.keys(), step
        for carrier, kwh in energy.items():
            assert other[carrier] == pytest.approx(kwh, rel=1e-9), (step, carrier)
        assert other_coverage == pytest.approx(coverage, rel=1e-9), step
