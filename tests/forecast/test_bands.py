"""Band offsets from held-out errors, pinball loss and coverage against hand calculations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from energyhub.forecast.bands import coverage, error_quantiles, pinball


def test_band_offsets_follow_the_errors_of_each_hour() -> None:
    index = pd.date_range("2025-03-03", periods=96 * 14, freq="15min", tz="UTC")
    rng = np.random.default_rng(3)
    spread = np.where(np.asarray(index.hour) < 12, 1.0, 10.0)  # calm mornings, wild afternoons
    errors = rng.normal(0.0, 1.0, len(index)) * spread
    q = error_quantiles(index, errors, np.zeros(len(index)))
    assert q.errors == len(index)
    assert -1.6 < q.low[5] < -0.9 and 0.9 < q.high[5] < 1.6  # ±1.28 σ
    assert -16 < q.low[17] < -9 and 9 < q.high[17] < 16
    low, high = q.band(index, np.zeros(len(index)))
    assert 0.75 < coverage(errors, low, high) < 0.85


def test_offsets_never_put_the_median_outside_its_band() -> None:
    index = pd.date_range("2025-03-03", periods=96, freq="15min", tz="UTC")
    q = error_quantiles(index, np.full(96, 5.0), np.zeros(96))  # always under-forecast
    assert (q.low == 0).all() and (q.high == 5).all()


def test_pinball_and_coverage_by_hand() -> None:
    actual = np.array([10.0, 0.0, 5.0, np.nan])
    forecast = np.array([8.0, 2.0, 5.0, 1.0])
    # q = 0.9: under-forecast by 2 costs 0.9·2, over-forecast by 2 costs 0.1·2, exact costs 0.
    assert pinball(actual, forecast, 0.9) == (1.8 + 0.2 + 0.0) / 3
    assert coverage(actual, np.array([9.0, 0, 6, 0]), np.array([11.0, 1, 7, 2])) == 2 / 3
