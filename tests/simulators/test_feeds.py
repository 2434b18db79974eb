"""Measured feeds from the optional packages, mapped onto meters of the test site."""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
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
