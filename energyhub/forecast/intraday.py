"""Intraday correction: the day-ahead forecast moved by the error it has made so far today.

A re-plan at time t knows the meter's readings up to t. The day-ahead forecast made at the
day's local midnight has been off by e = mean(metered − forecast) over the last `WINDOW`; such an
error persists (a busier day stays busier) and fades with lead time, so the step `lead` hours
after t is moved by `weight · decay ** lead · e`. Weight and decay are learnt per meter on the
held-out days that choose its model (`select.choose`): from every hour of those days, the least
squares fit of the later errors on the recent one. A correction that does not help is learnt as
weight 0.

The band of a corrected forecast is centred on it: the day-ahead band's half-width at each hour
of the day (P90 − P10 over 2: the corrected errors are no longer the day-ahead's lopsided ones)
times a factor per lead bin, the one that holds 80 % of the corrected held-out errors in that
bin (between `MIN_BAND_SCALE` and `MAX_BAND_SCALE`): narrow just after the re-plan, where the
error so far explains most of the next hour's, back to the day's width later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from energyhub.forecast.bands import ErrorQuantiles
from energyhub.localdays import day_start, day_starts, next_day_start

Array = NDArray[np.float64]

WINDOW = pd.Timedelta(hours=2)
"""The recent error is the mean over this (long enough to average out a reading's noise)."""
DECAYS_PER_H = (0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0)
"""The decays tried per hour of lead; the best fit on the held-out days wins."""
LEAD_BINS_H = (1.0, 2.0, 4.0, 8.0, np.inf)
"""Upper edges of the lead bins (hours) whose band width is measured apart."""
MIN_BAND_SCALE = 0.5
MAX_BAND_SCALE = 2.0
"""Bounds of the half-width factor (a few held-out days are a small sample)."""
MIN_PAIRS = 50
"""Fewer held-out (recent error, later error) pairs than this: no correction is learnt."""
HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Persistence:
    """How today's observed error carries to later steps, and how much it narrows the band."""

    weight: float
    decay_per_h: float
    band_scale: tuple[float, ...] = field(default=(1.0,) * len(LEAD_BINS_H))
    """Per lead bin of `LEAD_BINS_H`: the factor of the day-ahead band's half-width."""
    pairs: int = 0

    def shift(self, recent_error: float, leads_h: Array) -> Array:
        """What to add to the forecast at each lead (hours after the re-plan)."""
        factor = self.weight * self.decay_per_h ** np.maximum(leads_h, 0.0)
        return np.asarray(recent_error * factor, dtype=np.float64)

    def scale(self, leads_h: Array) -> Array:
        """The band half-width's factor at each lead."""
        bins = np.searchsorted(np.asarray(LEAD_BINS_H), np.maximum(leads_h, 0.0), side="right")
        bins = np.minimum(bins, len(LEAD_BINS_H) - 1)
        return np.asarray(np.asarray(self.band_scale)[bins], dtype=np.float64)

    def describe(self) -> str:
        if self.weight == 0.0:
            return "no intraday correction (it did not help on the held-out days)"
        return (
            f"intraday correction {self.weight:.2f} × {self.decay_per_h:g}^h of the last "
            f"{int(WINDOW / HOUR)} h's error"
        )


NO_PERSISTENCE = Persistence(0.0, 0.0)


def local_midnight(now: pd.Timestamp, tz: ZoneInfo) -> pd.Timestamp:
    """The start of `now`'s local day (its midnight, or what the clocks skip to), in UTC."""
    return day_start(pd.Timestamp(now), tz)


def recent_error(errors: pd.Series, now: pd.Timestamp, since: pd.Timestamp) -> float | None:
    """Mean of `errors` (metered − forecast) over the window before `now`, not before `since`."""
    index = pd.DatetimeIndex(errors.index)
    inside = (index >= max(now - WINDOW, since)) & (index < now)
    values = errors.to_numpy(dtype=float)[inside]
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def _pairs(
    index: pd.DatetimeIndex, errors: Array, tz: ZoneInfo
) -> tuple[Array, Array, Array, NDArray[np.int64]]:
    """From every whole hour of each local day, per later step of the day: the recent error,
    the lead (h), the later error and its UTC hour."""
    series = pd.Series(errors, index=index)
    days = day_starts(index, tz)
    recent, leads, later, hours = [], [], [], []
    for day in days.unique():
        in_day = days == day
        part = series[in_day]
        part_index = pd.DatetimeIndex(part.index)
        start = pd.Timestamp(day).tz_convert("UTC")
        for hour in range(1, 24):
            origin = start + hour * HOUR
            observed = recent_error(part, origin, start)
            after = part_index >= origin
            if observed is None or not after.any():
                continue
            y = part.to_numpy(dtype=float)[after]
            lead = ((part_index[after] - origin) / HOUR).to_numpy(dtype=float)
            ok = np.isfinite(y)
            recent.append(np.full(int(ok.sum()), observed))
            leads.append(lead[ok])
            later.append(y[ok])
            hours.append(np.asarray(part_index[after].tz_convert("UTC").hour)[ok])
    if not recent:
        empty = np.zeros(0)
        return empty, empty, empty, np.zeros(0, dtype=np.int64)
    return (
        np.concatenate(recent),
        np.concatenate(leads),
        np.concatenate(later),
        np.concatenate(hours).astype(np.int64),
    )


def _stretch(errors: Array, half_width: Array) -> float:
    """The factor of `half_width` that holds 80 % of `errors` (NaN: too few to say)."""
    usable = half_width > 0
    if usable.sum() < 8:
        return float("nan")
    return float(np.quantile(np.abs(errors[usable]) / half_width[usable], 0.8))


def fit_persistence(
    index: pd.DatetimeIndex, actual: Array, forecast: Array, tz: ZoneInfo, band: ErrorQuantiles
) -> Persistence:
    """Weight and decay of the recent error, least squares on held-out day-ahead errors; the
    band's scale per lead bin from the same errors against `band`'s offsets."""
    errors = np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float)
    recent, leads, later, hours = _pairs(index, errors, tz)
    if len(later) < MIN_PAIRS or not np.any(recent):
        return NO_PERSISTENCE
    best = (float(np.sum(later**2)), 0.0, 0.0)
    for decay in DECAYS_PER_H:
        x = recent * decay**leads
        weight = float(np.clip(np.dot(x, later) / max(np.dot(x, x), 1e-12), 0.0, 1.0))
        sse = float(np.sum((later - weight * x) ** 2))
        if sse < best[0]:
            best = (sse, weight, decay)
    _, weight, decay = best
    if weight == 0.0:
        return Persistence(0.0, 0.0, pairs=len(later))
    corrected = later - weight * recent * decay**leads
    bins = np.minimum(
        np.searchsorted(np.asarray(LEAD_BINS_H), leads, side="right"), len(LEAD_BINS_H) - 1
    )
    scales = []
    half_width = (band.high - band.low)[hours] / 2.0
    for b in range(len(LEAD_BINS_H)):
        inside = bins == b
        factor = _stretch(corrected[inside], half_width[inside])
        scales.append(float(np.clip(factor, MIN_BAND_SCALE, MAX_BAND_SCALE)) if factor > 0 else 1.0)
    return Persistence(weight, decay, tuple(scales), len(later))


def correct(
    day_ahead: pd.Series, metered: pd.Series, steps: pd.DatetimeIndex, now: pd.Timestamp,
    since: pd.Timestamp, persistence: Persistence,
) -> tuple[Array, Array, float | None]:  # fmt: skip
    """The shift of each step and its band scale, from the day-ahead forecast's error since
    `since` (today's local midnight) up to `now`; and that error (None: nothing metered yet)."""
    leads = ((steps - now) / HOUR).to_numpy(dtype=float)
    errors = metered.reindex(day_ahead.index) - day_ahead
    observed = recent_error(errors, now, since)
    if observed is None or persistence.weight == 0.0:
        return np.zeros(len(steps)), np.ones(len(steps)), observed
    return persistence.shift(observed, leads), persistence.scale(leads), observed


def intraday(
    predictor: Callable[[pd.Series, pd.DatetimeIndex], Array],
    persistence: Persistence,
    values: pd.Series,
    steps: pd.DatetimeIndex,
    now: pd.Timestamp,
    tz: ZoneInfo,
) -> tuple[Array, Array]:
    """The forecast of `steps` from `now` and its band scale per step.

    Without a learnt correction: the model from the readings before `now`. With one: the rest
    of today from the day-ahead forecast made at today's local midnight (what the correction
    was learnt on), later days from `now`, all moved by today's error so far.
    """
    index = pd.DatetimeIndex(values.index)
    median = np.array(predictor(values[index < now], steps), dtype=np.float64)
    midnight = local_midnight(now, tz)
    if persistence.weight == 0.0 or len(steps) < 2 or now <= midnight:
        return median, np.ones(len(steps))
    step = pd.Timedelta(steps[1] - steps[0])
    next_midnight = next_day_start(midnight, tz)
    day = pd.date_range(midnight, next_midnight, freq=step, inclusive="left")
    day_ahead = pd.Series(predictor(values[index < midnight], day), index=day)
    today = np.asarray(steps < next_midnight)
    from_midnight = day_ahead.reindex(steps[today]).to_numpy(dtype=float)
    median[today] = np.where(np.isfinite(from_midnight), from_midnight, median[today])
    shift, scale, _ = correct(day_ahead, values, steps, now, midnight, persistence)
    return median + shift, scale


def intraday_band(
    quantiles: ErrorQuantiles, persistence: Persistence, steps: pd.DatetimeIndex,
    median: Array, scale: Array,
) -> tuple[Array, Array]:  # fmt: skip
    """P10 and P90 of a forecast from `intraday`: centred on a corrected one, else day-ahead."""
    if persistence.weight == 0.0:
        return quantiles.band(steps, median)
    hours = np.asarray(steps.tz_convert("UTC").hour, dtype=np.int64)
    half_width = (quantiles.high - quantiles.low)[hours] / 2.0 * scale
    return median - half_width, median + half_width
