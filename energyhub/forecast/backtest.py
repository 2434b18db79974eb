"""Rolling-origin day-ahead backtest of one series: every model against the naive forecasts.

From each local midnight of the last `days` days, each model is fitted on the history before
that midnight only and forecasts the whole next day; so does the per-meter choice ("chosen":
the model the scheduler would use, with its P10/P90 band), and so do the two naive forecasts
(the same time a day and a week earlier). Scores over all origins: NMAE = Σ|error| / Σ|actual|,
MAE, and for the band the pinball loss of P10 and P90 and the share of actual values inside.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from energyhub.forecast.bands import HIGH_Q, LOW_Q, coverage, pinball
from energyhub.forecast.features import DAY
from energyhub.forecast.intraday import intraday, intraday_band
from energyhub.forecast.profile import ForecastError, nmae
from energyhub.forecast.select import Candidate, choose, fit_named, last_week, yesterday
from energyhub.localdays import day_starts_between, day_steps, next_day_start

Array = NDArray[np.float64]

CHOSEN = "chosen"
NAIVE_DAY = "naive 1d"
NAIVE_WEEK = "naive 7d"


@dataclass(frozen=True, slots=True)
class ModelScore:
    """One model's errors over every forecast step of the backtest."""

    nmae: float
    mae_kw: float
    steps: int


@dataclass(frozen=True, slots=True)
class BandScore:
    """The chosen model's band over the backtest: pinball losses (kW) and coverage (0–1)."""

    pinball_p10_kw: float
    pinball_p90_kw: float
    coverage: float


@dataclass
class SeriesBacktest:
    """A series' backtest: scores by model, the chosen band's, and how often each was chosen."""

    label: str
    origins: int
    scores: dict[str, ModelScore] = field(default_factory=dict)
    band: BandScore | None = None
    chosen: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def better_naive(self) -> str | None:
        naive = [n for n in (NAIVE_DAY, NAIVE_WEEK) if n in self.scores]
        valid = [n for n in naive if np.isfinite(self.scores[n].nmae)]
        return min(valid, key=lambda n: self.scores[n].nmae) if valid else None

    def ratio(self, model: str) -> float:
        """The model's NMAE over the better naive's (< 1: better than naive)."""
        naive = self.better_naive
        if naive is None or model not in self.scores or self.scores[naive].nmae == 0:
            return float("nan")
        return self.scores[model].nmae / self.scores[naive].nmae


def backtest_origins(
    values: pd.Series, tz: ZoneInfo, days: int, min_history: pd.Timedelta
) -> list[pd.Timestamp]:
    """The last `days` local midnights with `min_history` before and a whole day of index after.

    The history counts from the first reading, not from the grid's start: the store's grid
    starts with the backtest's window, and a meter connected later has NaN before it."""
    index = pd.DatetimeIndex(values.index)
    valid = np.flatnonzero(values.notna().to_numpy())
    if len(index) < 2 or not len(valid):
        return []
    step = pd.Timedelta(index[1] - index[0])
    end = index[-1] + step
    starts = day_starts_between(index[valid[0]] + min_history, end, tz)
    return [t for t in starts if next_day_start(t, tz) <= end][-days:]


def backtest_series(
    values: pd.Series,
    tz: ZoneInfo,
    candidates: list[Candidate],
    *,
    label: str,
    days: int,
    history: pd.Timedelta,
    upper_kw: float | None = None,
) -> SeriesBacktest:
    """Rolling-origin day-ahead backtest of `values` (cleaned: NaN = missing) over `days` days."""
    origins = backtest_origins(values, tz, days, pd.Timedelta(days=2))
    result = SeriesBacktest(label, len(origins))
    if not origins:
        result.notes.append(f"{label}: not enough history for a day-ahead backtest (need 3 d)")
        return result
    index = pd.DatetimeIndex(values.index)
    step = pd.Timedelta(index[1] - index[0])
    upper = np.inf if upper_kw is None else upper_kw
    forecasts: dict[str, list[Array]] = {}
    lows, highs, actuals = [], [], []
    chosen: Counter[str] = Counter()
    for origin in origins:
        known = values[(index >= origin - history) & (index < origin)]
        steps = day_steps(origin, tz, step)
        by_model: dict[str, Array] = {}
        for candidate in candidates:
            if candidate.parts:  # a blend: from its parts' forecasts, not fitted again
                blended = [by_model[p] for p in candidate.parts if p in by_model]
                by_model[candidate.name] = np.mean(blended, axis=0)
                continue
            trained_days = float(known.notna().sum() * step / DAY)
            if trained_days < candidate.min_train_days:
                by_model[candidate.name] = np.full(len(steps), np.nan)
                continue
            try:
                by_model[candidate.name] = np.clip(candidate.fit(known)(known, steps), 0.0, upper)
            except ForecastError as exc:
                result.notes.append(f"{label} {origin.date()}: {candidate.name}: {exc}")
                by_model[candidate.name] = np.full(len(steps), np.nan)
        choice = choose(known, origin, tz, candidates, label)
        chosen[choice.name] += 1
        median = by_model.get(choice.name, np.full(len(steps), np.nan))
        low, high = choice.quantiles.band(steps, median)
        if choice.quantiles.errors == 0:
            low, high = median, median
        by_model[CHOSEN] = median
        by_model[NAIVE_DAY] = np.clip(yesterday(values[index < origin], steps, tz), 0.0, upper)
        by_model[NAIVE_WEEK] = np.clip(last_week(values, steps, tz), 0.0, upper)
        for name, forecast in by_model.items():
            forecasts.setdefault(name, []).append(forecast)
        lows.append(np.clip(low, 0.0, median))
        highs.append(np.clip(high, median, upper))
        actuals.append(values.reindex(steps).to_numpy(dtype=float))
    actual = np.concatenate(actuals)
    if not np.isfinite(actual).any():
        valid = np.flatnonzero(values.notna().to_numpy())
        result.notes.append(
            f"{label}: no reading in the {len(origins)} day(s) backtested: nothing to score (the "
            f"meter's last reading is {pd.Timestamp(index[valid[-1]]).isoformat()})"
        )
    for name, parts in forecasts.items():
        forecast = np.concatenate(parts)
        ok = np.isfinite(actual) & np.isfinite(forecast)
        mae = float(np.mean(np.abs(forecast[ok] - actual[ok]))) if ok.any() else float("nan")
        result.scores[name] = ModelScore(nmae(actual, forecast), mae, int(ok.sum()))
    low, high = np.concatenate(lows), np.concatenate(highs)
    result.band = BandScore(
        pinball(actual, low, LOW_Q), pinball(actual, high, HIGH_Q), coverage(actual, low, high)
    )
    result.chosen = dict(chosen)
    return result


INTRADAY_EVERY = pd.Timedelta(hours=4)
NEXT_HOURS = pd.Timedelta(hours=4)
FROM_ORIGIN = "model from t"
DAY_AHEAD = "day-ahead"
CORRECTED = "corrected"


@dataclass
class IntradayBacktest:
    """Re-plans every `INTRADAY_EVERY` of each backtest day: absolute errors and actuals summed
    per horizon ("next 4 h", "rest of day") and forecast, and the band's steps inside."""

    label: str
    origins: int = 0
    error: dict[tuple[str, str], float] = field(default_factory=dict)
    actual: dict[tuple[str, str], float] = field(default_factory=dict)
    inside: dict[tuple[str, str], int] = field(default_factory=dict)
    count: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, horizon: str, name: str, actual: Array, forecast: Array) -> None:
        ok = np.isfinite(actual) & np.isfinite(forecast)
        key = (horizon, name)
        self.error[key] = self.error.get(key, 0.0) + float(np.abs(forecast - actual)[ok].sum())
        self.actual[key] = self.actual.get(key, 0.0) + float(np.abs(actual[ok]).sum())

    def add_band(self, horizon: str, name: str, actual: Array, low: Array, high: Array) -> None:
        ok = np.isfinite(actual)
        key = (horizon, name)
        inside = (actual[ok] >= low[ok] - 1e-9) & (actual[ok] <= high[ok] + 1e-9)
        self.inside[key] = self.inside.get(key, 0) + int(inside.sum())
        self.count[key] = self.count.get(key, 0) + int(ok.sum())


def backtest_intraday(
    values: pd.Series,
    tz: ZoneInfo,
    candidates: list[Candidate],
    *,
    label: str,
    days: int,
    history: pd.Timedelta,
    upper_kw: float | None = None,
) -> IntradayBacktest:
    """Each backtest day's model (chosen and fitted at its local midnight, as the scheduler's
    day cache does) re-forecast every 4 h with the readings up to then: from that time as
    before (`model from t`), day-ahead from midnight, and corrected by today's error."""
    origins = backtest_origins(values, tz, days, pd.Timedelta(days=2))
    result = IntradayBacktest(label)
    index = pd.DatetimeIndex(values.index)
    step = pd.Timedelta(index[1] - index[0])
    upper = np.inf if upper_kw is None else upper_kw
    by_name = {c.name: c for c in candidates}
    for origin in origins:
        known = values[(index >= origin - history) & (index < origin)]
        choice = choose(known, origin, tz, candidates, label)
        try:
            predictor = fit_named(by_name, choice.name, known)
        except ForecastError:
            continue
        end = next_day_start(origin, tz)
        day = day_steps(origin, tz, step)
        day_ahead = pd.Series(np.clip(predictor(known, day), 0.0, upper), index=day)
        window = values[(index >= origin - history) & (index < end)]
        t = origin + INTRADAY_EVERY
        while t < end:
            steps = pd.date_range(t, end, freq=step, inclusive="left")
            actual = values.reindex(steps).to_numpy(dtype=float)
            corrected, scale = intraday(predictor, choice.persistence, window, steps, t, tz)
            forecasts: dict[str, Array] = {
                FROM_ORIGIN: predictor(window[pd.DatetimeIndex(window.index) < t], steps),
                DAY_AHEAD: np.asarray(day_ahead.reindex(steps), dtype=np.float64),
                CORRECTED: corrected,
                NAIVE_DAY: yesterday(values[index < origin], steps, tz),
                NAIVE_WEEK: last_week(values, steps, tz),
            }
            bands = {
                DAY_AHEAD: choice.quantiles.band(steps, forecasts[DAY_AHEAD]),
                CORRECTED: intraday_band(
                    choice.quantiles,
                    choice.persistence,
                    steps,
                    np.clip(corrected, 0.0, upper),
                    scale,
                ),
            }
            horizons = (("next 4 h", steps < t + NEXT_HOURS), ("rest of day", steps >= t))
            for horizon, part in horizons:
                for name, forecast in forecasts.items():
                    result.add(horizon, name, actual[part], np.clip(forecast, 0.0, upper)[part])
                if choice.quantiles.errors == 0:
                    continue
                for name, (low, high) in bands.items():
                    median = np.clip(forecasts[name], 0.0, upper)
                    result.add_band(
                        horizon, name, actual[part],
                        np.clip(low, 0.0, median)[part], np.clip(high, median, upper)[part],
                    )  # fmt: skip
            result.origins += 1
            t += INTRADAY_EVERY
    return result
