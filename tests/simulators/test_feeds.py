"""Measured feeds from the optional packages, mapped onto meters of the test site."""

from __future__ import annotations

import importlib.util
from datetime import datetime

import numpy as np
import orjson
import pytest

from energyhub.sites import SiteFile
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
