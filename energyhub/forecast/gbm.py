"""Gradient-boosted day-ahead models (scikit-learn's HistGradientBoostingRegressor).

Demand: the features of `features.py` (calendar, same-time lags and their means, the level at
the origin, outdoor temperature). PV: clear-sky output (`solar.py`), the clear-sky index of the
day before and the output at the same time a day earlier, and forecast irradiance, cloud cover
and temperature where a weather forecast gives them. Missing features stay NaN (the trees
route them).

Lags never reach past the origin: a step on a later local day takes its one-day lag from the
forecast of the day before (predicted one local day at a time).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from energyhub.forecast.features import DAY, demand_features
from energyhub.forecast.features import lag as _lag
from energyhub.forecast.profile import ForecastError
from energyhub.forecast.solar import clear_sky_ghi_w_m2, clear_sky_poa_w_m2

Array = NDArray[np.float64]

PV_TREES = (80, 15, 0.1)
"""PV's (rounds, leaves per tree, learning rate): small trees, few rounds; a month of 15-min
steps is ~3,000 rows, and more rounds did not lower the holdout error."""
DEMAND_TREES = (200, 7, 0.05)
"""Demand's: more, smaller trees learning slower fit about as fast (splits ≈ rounds × leaves)
and lowered the held-out NMAE by ~1 % on CityLearn and the simulator (bench/forecast.py)."""
MIN_SAMPLES_LEAF = 20
WEATHER_COLUMNS = ("outdoor_c", "ghi_w_m2", "cloud_cover_pct")
"""Exogenous series a model may use, on the same UTC grid as the history and the forecast."""


def _one_thread() -> AbstractContextManager[object]:
    """OpenMP on one thread: a few thousand rows gain nothing from threads, and on a shared
    machine a thread per core waits on the others (ten times slower under load, measured)."""
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[object] = threadpool_limits(limits=1, user_api="openmp")
    return limits


def _regressor(trees: tuple[int, int, float]) -> object:
    """The median regressor: absolute error is what NMAE scores."""
    from sklearn.ensemble import HistGradientBoostingRegressor  # on first use: ~1 s import

    rounds, leaves, rate = trees
    return HistGradientBoostingRegressor(
        loss="absolute_error",
        max_iter=rounds,
        max_leaf_nodes=leaves,
        learning_rate=rate,
        min_samples_leaf=MIN_SAMPLES_LEAF,
        early_stopping=False,
        random_state=0,
    )


def _exogenous(weather: pd.DataFrame | None, index: pd.DatetimeIndex, column: str) -> Array:
    if weather is None or column not in weather.columns:
        return np.full(len(index), np.nan)
    return np.asarray(weather[column].reindex(index).to_numpy(dtype=float), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class PvSite:
    """Where the array is and how big: for its clear-sky output and the clip at `peak_kw`."""

    peak_kw: float
    latitude_deg: float
    longitude_deg: float
    tilt_deg: float | None = None
    azimuth_deg: float | None = None
    """The array's plane (azimuth clockwise from north) when known; else horizontal irradiance
    and the meter's own clear-sky envelope stand in for the orientation (`pv.py`)."""

    def upper_kw(self, index: pd.DatetimeIndex) -> Array:
        """The most the array can make in each step: its peak by day, nothing at night."""
        return np.where(self.clear_kw(index) > 0, self.peak_kw, 0.0)

    def clear_w_m2(self, index: pd.DatetimeIndex) -> Array:
        """Clear-sky irradiance on the array's plane, or on the horizontal if it is unknown."""
        if self.tilt_deg is None or self.azimuth_deg is None:
            return clear_sky_ghi_w_m2(index, self.latitude_deg, self.longitude_deg)
        return clear_sky_poa_w_m2(
            index, self.latitude_deg, self.longitude_deg, self.tilt_deg, self.azimuth_deg
        )

    def clear_kw(self, index: pd.DatetimeIndex) -> Array:
        return np.asarray(self.clear_w_m2(index) / 1000.0 * self.peak_kw, dtype=np.float64)


def pv_features(
    values: pd.Series, index: pd.DatetimeIndex, site: PvSite, weather: pd.DataFrame | None
) -> Array:
    """Feature rows of `index` for PV: clear sky, yesterday's clear-sky indexes, the weather."""
    whole = pd.DatetimeIndex(values.index)
    clear_whole = pd.Series(site.clear_kw(whole), index=whole)
    step = pd.Timedelta(whole[1] - whole[0])
    per_day = int(DAY / step)
    produced = values.clip(lower=0.0).rolling(per_day, min_periods=per_day // 2).sum()
    possible = clear_whole.where(values.notna()).rolling(per_day, min_periods=per_day // 2).sum()
    daily_index = (produced / possible.where(possible > 0)).clip(upper=1.5)
    utc = index.tz_convert("UTC")
    columns = [
        site.clear_kw(index),
        np.asarray(utc.hour + utc.minute / 60.0, dtype=float),
        _lag(values.clip(lower=0.0), index, DAY),
        _lag(daily_index, index, DAY),
        _exogenous(weather, index, "ghi_w_m2"),
        _exogenous(weather, index, "cloud_cover_pct"),
        _exogenous(weather, index, "outdoor_c"),
    ]
    return np.column_stack(columns)


@dataclass(frozen=True)
class BoostedModel:
    """A fitted median model with its feature builder."""

    kind: str
    """"demand" or "pv"."""
    median: object
    columns: NDArray[np.bool_]
    """The features it was fitted on: those with at least one value in training."""
    tz: ZoneInfo
    pv: PvSite | None
    weather: pd.DataFrame | None

    def _features(self, values: pd.Series, index: pd.DatetimeIndex) -> Array:
        if self.pv is not None:
            return pv_features(values, index, self.pv, self.weather)
        return demand_features(values, index, self.tz, self.weather)

    def predict(self, known: pd.Series, steps: pd.DatetimeIndex) -> Array:
        """Forecast `steps` from the readings in `known` (all before steps[0]), a day at a time."""
        step = pd.Timedelta(steps[1] - steps[0]) if len(steps) > 1 else DAY
        full = pd.date_range(min(known.index[0], steps[0]), steps[-1], freq=step)
        combined = known.reindex(full)
        combined[combined.index >= steps[0]] = np.nan
        out = np.empty(len(steps))
        local_days = np.asarray(steps.tz_convert(self.tz).date)
        day_of = np.unique(local_days, return_inverse=True)[1]  # 23 h and 25 h days too
        for day in np.unique(day_of):
            chunk = steps[day_of == day]
            features = self._features(combined, chunk)
            with _one_thread():
                predicted = np.asarray(
                    self.median.predict(features[:, self.columns]),  # type: ignore[attr-defined]
                    dtype=np.float64,
                )
            if self.pv is not None:  # nothing at night, never above the array's peak
                predicted = np.where(features[:, 0] > 0, predicted, 0.0)
                predicted = np.clip(predicted, 0.0, self.pv.peak_kw)
            else:
                predicted = np.maximum(predicted, 0.0)
            out[day_of == day] = predicted
            combined.loc[chunk] = predicted
        return out


def fit_boosted(
    train: pd.Series,
    tz: ZoneInfo,
    *,
    pv: PvSite | None = None,
    weather: pd.DataFrame | None = None,
) -> BoostedModel:
    """Fit on the readings of `train` (NaN rows left out); features come from `train` itself."""
    index = pd.DatetimeIndex(train.index)
    if pv is not None:
        features = pv_features(train, index, pv, weather)
    else:
        features = demand_features(train, index, tz, weather)
    y = train.to_numpy(dtype=float)
    ok = np.isfinite(y)
    if pv is not None:
        ok &= features[:, 0] > 0  # night steps are zero by rule, not by learning
    if ok.sum() < MIN_SAMPLES_LEAF * 2:
        raise ForecastError(
            f"{int(ok.sum())} usable step(s) of history, the boosted model needs "
            f"{MIN_SAMPLES_LEAF * 2}"
        )
    columns = ~np.all(np.isnan(features[ok]), axis=0)  # no weather, no weather feature
    model = _regressor(PV_TREES if pv is not None else DEMAND_TREES)
    with _one_thread():
        model.fit(features[ok][:, columns], y[ok])  # type: ignore[attr-defined]
    return BoostedModel("pv" if pv is not None else "demand", model, columns, tz, pv, weather)
