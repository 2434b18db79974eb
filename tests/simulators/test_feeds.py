"""Measured feeds from the optional packages, mapped onto meters of the test site."""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from energyhub.sites import SiteFile
from simulators.errors import SimulatorInputError
from simulators.feeds import feed_records

START = datetime.fromisoformat("2025-07-01T00:00:00+08:00")


def _needs(package: str) -> None:
    """Feeds read the packages' data files; the packages are the optional `feeds` extra."""
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (optional extra `feeds`)")


def _values(records: list, topic_end: str) -> np.ndarray:  # type: ignore[type-arg]
    return np.array(
        [orjson.loads(r.payload)["value"] for r in records if r.topic.endswith(topic_end)]
    )


def test_nrel_pv_feed_scaled_to_the_asset_and_dark_at_night(site: SiteFile) -> None:
    _needs("pvanalytics")
    mapping = ["office/pv=pvanalytics:serf_east_15min_ac_power"]
    records = feed_records(site, mapping, START, 2 * 86400.0, "energyhub")
    pv = _values(records, "/office/pv")
    assert len(pv) == 192 and records[1].t - records[0].t == 900
    assert pv.max() <= 0.9 * 300 + 1e-6 and pv.min() >= 0
    assert (pv == 0).sum() > 60  # the measured nights
    assert records[0].topic == "energyhub/tp/office/pv"


def _local(records: list, topic_end: str) -> pd.Series:  # type: ignore[type-arg]
    """A feed's readings by their local time in the test site's zone."""
    mine = [r for r in records if r.topic.endswith(topic_end)]
    ts = pd.to_datetime([orjson.loads(r.payload)["ts"] for r in mine], unit="ms", utc=True)
    return pd.Series(_values(mine, topic_end), index=ts.tz_convert("Asia/Shanghai"))


def test_a_pv_feed_makes_power_in_the_sites_daylight(site: SiteFile) -> None:
    """A replay starting at 07:10:21 published SERF's first row (its midnight) then, so the
    array peaked near 19:00 in Shanghai: a PV forecast learnt from it saw power after dark."""
    _needs("pvanalytics")
    start = datetime.fromisoformat("2025-10-20T07:10:21+08:00")
    mapping = ["office/pv=pvanalytics:serf_east_15min_ac_power"]
    pv = _local(feed_records(site, mapping, start, 3 * 86400.0, "energyhub"), "/office/pv")
    assert len(pv) == 3 * 96 and pv.index[0] == pd.Timestamp("2025-10-20T07:15:00+08:00")
    assert ((pv.index.minute % 15 == 0) & (pv.index.second == 0)).all()
    lit = pv[pv > 0.01 * pv.max()]
    assert lit.index.hour.min() >= 5 and lit.index.hour.max() <= 19
    days = pv[pv.index < pd.Timestamp("2025-10-23T00:00+08:00")]  # the last is 07:00 at most
    peaks = days.groupby(days.index.date).idxmax()
    assert len(peaks) == 3 and all(9 <= t.hour <= 14 for t in peaks), peaks


def test_a_feed_shorter_than_the_window_keeps_its_clock(site: SiteFile) -> None:
    """SERF's 1-minute file holds 1.8 days: no weekday-true week of it fits 3 days, so all of it
    is replayed on whole days of the site's clock."""
    _needs("pvanalytics")
    start = datetime.fromisoformat("2025-10-20T07:10:21+08:00")
    mapping = ["office/pv=pvanalytics:serf_east_1min_ac_power"]
    pv = _local(feed_records(site, mapping, start, 3 * 86400.0, "energyhub"), "/office/pv")
    assert len(pv) > 2500 and pv.index[0] >= pd.Timestamp(start)
    assert pv.index[-1] < pd.Timestamp(start) + pd.Timedelta(days=3)
    assert (pv.index.second == 0).all()
    peaks = pv.groupby(pv.index.date).idxmax()
    assert all(9 <= t.hour <= 14 for t in peaks if pv[t] > 0.5 * pv.max()), peaks


def test_a_load_feed_keeps_its_hour_weekday_and_season(site: SiteFile) -> None:
    """Each reading is the source's value at the same local clock time on the same weekday, at
    the time of year nearest the replayed days: CityLearn's row for the hour and `Day Type`
    (1 = Monday) of the reading's local start, in October for an October replay."""
    _needs("citylearn")
    start = datetime.fromisoformat("2025-10-13T05:30:00+08:00")
    records = feed_records(site, ["lab/main=citylearn:Building_5"], start, 7 * 86400.0, "e")
    load = _local(records, "/lab/main")
    assert len(load) == 168 and load.index[0] == pd.Timestamp("2025-10-13T06:00:00+08:00")
    spec = importlib.util.find_spec("citylearn")
    assert spec is not None and spec.origin is not None
    folder = Path(spec.origin).parent / "data" / "citylearn_challenge_2022_phase_all"
    rows = pd.read_csv(folder / "Building_5.csv")
    column = rows["Equipment Electric Power [kWh]"].round(3).to_numpy()
    starts = [
        i for i in range(len(column) - len(load))
        if np.array_equal(column[i : i + len(load)], load.to_numpy())
    ]  # fmt: skip
    assert len(starts) == 1
    matched = rows.iloc[starts[0] : starts[0] + len(load)]
    assert (matched["Hour"].to_numpy() % 24 == (load.index.hour + 1) % 24).all()
    assert (matched["Day Type"].to_numpy() == load.index.day_of_week + 1).all()
    assert set(matched["Month"]) <= {9.0, 10.0, 11.0}


def test_citylearn_load_feed_with_factor_and_counter(site: SiteFile) -> None:
    _needs("citylearn")
    mapping = ["lab/main=citylearn:Building_5*50", "office/main-kwh=citylearn:Building_5:cooling"]
    records = feed_records(site, mapping, START, 86400.0, "x/energyhub")
    load, counter = _values(records, "/lab/main"), _values(records, "/office/main-kwh")
    assert len(load) == len(counter) == 24
    assert load.mean() > 10 and np.all(np.diff(counter) >= 0)


def test_bdew_profile_feed_matches_its_annual_energy(site: SiteFile) -> None:
    _needs("demandlib")
    records = feed_records(site, ["lab/main=bdew:g25:876000"], START, 7 * 86400.0, "energyhub")
    load = _values(records, "/lab/main")
    assert len(load) == 7 * 96
    assert 60 < load.mean() < 140  # 876 MWh/a is 100 kW on average; a July week is near it


def test_nrel_parquet_feed(site: SiteFile) -> None:
    _needs("pvanalytics")
    _needs("pyarrow")
    mapping = ["office/pv=pvanalytics:system_50_ac_power_2_full_DST"]
    pv = _values(feed_records(site, mapping, START, 86400.0, "energyhub"), "/office/pv")
    assert len(pv) == 96 and pv.max() == pytest.approx(0.9 * 300)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("lab/main=citylearn:Building_5*nan", "--feed lab/main: factor must be a finite number"),
        ("lab/main=citylearn:Building_5*1e400", "factor must be a finite number above 0"),
        ("lab/main=citylearn:Building_5*-3", "factor must be a finite number above 0, got '-3'"),
        ("lab/main=bdew:g25:nan", "feed bdew:g25:nan: annual energy must be a finite number"),
        ("lab/main=bdew:g25:-5", "annual energy must be a finite number above 0, got '-5'"),
    ],
)
def test_a_factor_or_annual_energy_that_is_no_positive_number_is_named(
    site: SiteFile, mapping: str, message: str
) -> None:
    """NaN and inf went out as readings of null (every one refused by the ingest), a negative
    factor as a negative load."""
    _needs(mapping.split("=")[1].split(":")[0].replace("bdew", "demandlib"))
    with pytest.raises(SimulatorInputError) as info:
        feed_records(site, [mapping], START, 3 * 3600.0, "energyhub")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        # a path was joined to the package's data folder: any CSV on the machine was read, and
        # one of one row, text values or a repeated time was a traceback (IndexError,
        # ValueError, ZeroDivisionError)
        ("office/pv=pvanalytics:{tmp}/one_row", "expected the name of one of its data files"),
        ("office/pv=pvanalytics:../../x", "not a path, got '../../x'"),
        ("lab/main=citylearn:{tmp}/one_row", "expected Building_1 … Building_17"),
        # files of pvanalytics/data with a step longer than --duration: "zero-size array to
        # reduction operation maximum" (a traceback)
        ("office/pv=pvanalytics:snow_snowfall", "snow_snowfall has no value in --duration (3600"),
        ("office/pv=pvanalytics:pvlib_data_shift", "its step is 86400 s)"),
    ],
)
def test_a_feed_source_that_is_no_measured_series_is_named(
    site: SiteFile, tmp_path: Path, mapping: str, message: str
) -> None:
    _needs(mapping.split("=")[1].split(":")[0])
    (tmp_path / "one_row.csv").write_text("ts,p\n2026-01-01T00:00:00Z,5\n")
    with pytest.raises(SimulatorInputError) as info:
        feed_records(site, [mapping.format(tmp=tmp_path)], START, 3600.0, "energyhub")
    assert message in str(info.value)
