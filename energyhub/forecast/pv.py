"""PV as clear sky × a clear-sky index, the envelope learnt from the meter.

- Envelope: for each UTC time of day (pooled with the steps either side), a high quantile of
  metered output ÷ clear-sky irradiance over the last weeks: what the array makes under a clear
  sky at that time of day, its orientation, shading and losses included without being told.
- Index without a weather forecast: per time of day, the median of metered ÷ envelope over the
  last two weeks (the median, as absolute error is what is scored; not yesterday's alone, which
  is right on a run of like days and wrong at every change of weather).
- Index with a weather forecast: forecast irradiance ÷ clear-sky irradiance (or, without
  irradiance, the cloud cover through Kasten & Czeplak), mapped to the meter's index by the
  median metered index per band of forecast index over the history where both exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from energyhub.forecast.features import DAY
from energyhub.forecast.gbm import PvSite
from energyhub.forecast.profile import ForecastError
from energyhub.forecast.solar import clear_sky_ghi_w_m2

Array = NDArray[np.float64]

ENVELOPE_DAYS = 28
ENVELOPE_QUANTILE = 0.9
"""A high quantile, not the maximum: one cloud-edge enhancement must not set the clear sky."""
INDEX_DAYS = 14
"""Days whose clear-sky indexes make the expected index without a weather forecast."""
POOL = pd.Timedelta(minutes=30)
"""Steps within this much of a time of day count for it (more samples, smoother envelope)."""
MIN_CLEAR_W_M2 = 20.0
"""Below this clear-sky irradiance (dawn, dusk) a ratio is noise; those steps teach nothing."""
MAX_INDEX = 1.3
"""Clouds' edges can lift output above clear sky for minutes, not by more than this."""
MAX_FORECAST_INDEX = 3.0
"""A forecast that overstates irradiance keeps its information up to here: the learnt mapping
takes it to the meter's scale, and the forecast index is capped at MAX_INDEX after it."""
INDEX_BANDS = 8
MIN_PAIRS = 48
"""Forecast/metered index pairs needed to learn the mapping; fewer: the forecast as it is."""


def metered_pv_kw(values: pd.Series) -> pd.Series:
    """A PV meter's readings as output: below 0 (an inverter's standby draw at night, a few
    watts on real arrays) is 0, as the forecast, which is 0 when the sun is down, reads it."""
    return values.clip(lower=0.0)


def cloud_index(cloud_cover_pct: Array) -> Array:
    """Clear-sky index from cloud cover (Kasten & Czeplak 1980: 1 − 0.75 · (C/100)^3.4)."""
    cover = np.clip(np.asarray(cloud_cover_pct, dtype=float) / 100.0, 0.0, 1.0)
    return np.asarray(1.0 - 0.75 * cover**3.4, dtype=np.float64)


def weather_index(weather: pd.DataFrame | None, index: pd.DatetimeIndex, site: PvSite) -> Array:
    """The weather forecast's clear-sky index at each step (NaN where it says nothing)."""
    out = np.full(len(index), np.nan)
    if weather is None:
        return out
    clear = clear_sky_ghi_w_m2(index, site.latitude_deg, site.longitude_deg)
    if "ghi_w_m2" in weather.columns:
        ghi = weather["ghi_w_m2"].reindex(index).to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.clip(ghi / clear, 0.0, MAX_FORECAST_INDEX)
            out = np.where(clear >= MIN_CLEAR_W_M2, ratio, np.nan)
    if "cloud_cover_pct" in weather.columns:
        cover = weather["cloud_cover_pct"].reindex(index).to_numpy(dtype=float)
        out = np.where(np.isfinite(out), out, cloud_index(cover))
    return out


def _slots(index: pd.DatetimeIndex, step: pd.Timedelta) -> NDArray[np.int64]:
    utc = index.tz_convert("UTC")
    seconds = np.asarray(utc.hour * 3600 + utc.minute * 60 + utc.second, dtype=np.int64)
    return seconds // int(step.total_seconds())


def _by_slot(slot: NDArray[np.int64], values: Array, per_day: int, pool: int, q: float) -> Array:
    """The q-quantile of `values` per time-of-day slot, pooled `pool` slots either side."""
    ok = np.isfinite(values)
    slot, values = slot[ok], values[ok]
    out = np.full(per_day, np.nan)
    for s in range(per_day):
        near = np.abs((slot - s + per_day // 2) % per_day - per_day // 2) <= pool
        if near.any():
            out[s] = np.quantile(values[near], q)
    return out


def _smooth(values: Array, pool: int) -> Array:
    """The mean of each slot's finite values within `pool` slots either side (circular)."""
    ok = np.isfinite(values)
    total, count = np.zeros(len(values)), np.zeros(len(values))
    for shift in range(-pool, pool + 1):
        total += np.roll(np.where(ok, values, 0.0), shift)
        count += np.roll(ok, shift)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(ok, total / count, np.nan), dtype=np.float64)


@dataclass(frozen=True)
class ClearSkyIndexModel:
    """A fitted envelope (kW per W/m² of clear sky, per UTC slot) and the index mapping."""

    site: PvSite
    step: pd.Timedelta
    envelope: Array
    mapping: tuple[Array, Array] | None
    """(forecast index, metered index) knots learnt from the history; None: the identity."""
    weather: pd.DataFrame | None

    @property
    def per_day(self) -> int:
        return int(DAY / self.step)

    @property
    def pool(self) -> int:
        return int(POOL / self.step)

    def envelope_kw(self, index: pd.DatetimeIndex) -> Array:
        """What the array makes under a clear sky at each step (0 at night)."""
        clear = self.site.clear_w_m2(index)
        kw = self.envelope[_slots(index, self.step)] * clear
        return np.asarray(np.where(clear >= MIN_CLEAR_W_M2, kw, 0.0), dtype=np.float64)

    def metered_index(self, values: pd.Series) -> Array:
        """Metered ÷ envelope at each step (NaN where the envelope is ~0 or nothing metered)."""
        envelope = self.envelope_kw(pd.DatetimeIndex(values.index))
        measured = values.to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            index = np.clip(np.maximum(measured, 0.0) / envelope, 0.0, MAX_INDEX)
        return np.asarray(np.where(envelope > 0, index, np.nan), dtype=np.float64)

    def expected_index(self, known: pd.Series, steps: pd.DatetimeIndex) -> Array:
        """The median clear-sky index per time of day over the last INDEX_DAYS of `known`."""
        index = pd.DatetimeIndex(known.index)
        recent = known[index >= index[-1] - pd.Timedelta(days=INDEX_DAYS)]
        slots = _slots(pd.DatetimeIndex(recent.index), self.step)
        median = _by_slot(slots, self.metered_index(recent), self.per_day, self.pool, 0.5)
        overall = np.nanmedian(median) if np.isfinite(median).any() else 1.0
        return np.asarray(
            np.where(np.isfinite(median), median, overall)[_slots(steps, self.step)],
            dtype=np.float64,
        )

    def predict(self, known: pd.Series, steps: pd.DatetimeIndex) -> Array:
        """Envelope × index on `steps`, from the readings in `known` and the weather forecast."""
        index = self.expected_index(known, steps)
        forecast = weather_index(self.weather, steps, self.site)
        if self.mapping is not None:
            forecast = np.interp(forecast, *self.mapping)
        index = np.where(np.isfinite(forecast), np.clip(forecast, 0.0, MAX_INDEX), index)
        return np.clip(self.envelope_kw(steps) * index, 0.0, self.site.peak_kw)


def fit_pv_index(
    train: pd.Series, site: PvSite, weather: pd.DataFrame | None = None
) -> ClearSkyIndexModel:
    """Learn the envelope from the last ENVELOPE_DAYS of `train`, and the weather mapping."""
    index = pd.DatetimeIndex(train.index)
    step = pd.Timedelta(index[1] - index[0])
    recent = train[index >= index[-1] - pd.Timedelta(days=ENVELOPE_DAYS)]
    recent_index = pd.DatetimeIndex(recent.index)
    clear = site.clear_w_m2(recent_index)
    measured = np.maximum(recent.to_numpy(dtype=float), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(clear >= MIN_CLEAR_W_M2, measured / clear, np.nan)
    per_day, pool = int(DAY / step), int(POOL / step)
    # per slot, then smoothed: a quantile pooled over neighbours would pick the top of a slope
    envelope = _by_slot(_slots(recent_index, step), ratio, per_day, 0, ENVELOPE_QUANTILE)
    envelope = _smooth(envelope, pool)
    if not np.isfinite(envelope).any():
        raise ForecastError("no daylight readings to learn the array's clear-sky output from")
    model = ClearSkyIndexModel(site, step, np.nan_to_num(envelope), None, weather)
    if weather is None:
        return model
    forecast = weather_index(weather, index, site)
    metered = model.metered_index(train)
    ok = np.isfinite(forecast) & np.isfinite(metered)
    if ok.sum() < MIN_PAIRS:
        return model
    edges = np.quantile(forecast[ok], np.linspace(0.0, 1.0, INDEX_BANDS + 1))
    band = np.clip(np.searchsorted(edges, forecast[ok], side="right") - 1, 0, INDEX_BANDS - 1)
    knots = [
        (float(np.median(forecast[ok][band == b])), float(np.median(metered[ok][band == b])))
        for b in np.unique(band).tolist()
    ]
    x, y = np.array([(0.0, 0.0), *sorted(knots)]).T  # no sun in the forecast, none metered
    return ClearSkyIndexModel(site, step, model.envelope, (x, y), weather)
