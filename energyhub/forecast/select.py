"""The model of each meter chosen by backtest: the candidates forecast the last held-out days
day-ahead from each local midnight; the *prior* model (the best across the benchmark's data sets)
stays unless another beats it clearly on this meter, its held-out errors give the P10/P90 band,
and it is refitted on the whole history for the forecast itself.

Candidates: for demand the profile model (`profile.py`), for PV clear sky × a clear-sky index
(`pv.py`); the boosted model (`gbm.py`); their mean; and the value a day earlier
("yesterday"). The prior is the mean for demand and for PV with a forecast of the sky (irradiance
or cloud cover), clear sky for PV without one. A history too short to hold days out gets the
first candidate (profile, clear sky), and the forecast says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, tzinfo
from functools import partial
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from energyhub.forecast.bands import NO_BAND, ErrorQuantiles, error_quantiles
from energyhub.forecast.features import DAY
from energyhub.forecast.gbm import BoostedModel, PvSite, fit_boosted
from energyhub.forecast.intraday import (
    NO_PERSISTENCE,
    Persistence,
    fit_persistence,
    intraday,
    intraday_band,
)
from energyhub.forecast.profile import (
    ForecastError,
    ForecastOptions,
    History,
    SeriesForecast,
    check_coverage,
    fit_demand_profile,
    profile_demand,
)
from energyhub.forecast.pv import fit_pv_index
from energyhub.localdays import (
    LONGEST_DAY,
    day_start,
    day_starts_between,
    day_steps,
    wall_clock_back,
)

Array = NDArray[np.float64]
Predictor = Callable[[pd.Series, pd.DatetimeIndex], Array]
"""(readings before the origin, steps from the origin) → forecast."""

HOLDOUT_DAYS = 7
"""Days held out to choose a model and measure its band: a week sees every weekday once."""
SWITCH_CONFIDENCE = 0.95
"""Another model replaces the prior only when its daily MAE is lower at this one-sided confidence
(a paired t-test over the held-out days, Bonferroni-corrected for the number of challengers).
Seven days are few: the least MAE alone picked `yesterday` for PV on 60 of CityLearn's 357 days
and cost 0.03–0.06 of NMAE against clear sky alone (docs/forecasting.md)."""
BOOSTED_TRAIN_DAYS = 7.0
"""The boosted model needs its week lag inside the training days."""


@dataclass(frozen=True)
class Candidate:
    """A model that can be fitted on a training series and then forecast from any origin."""

    name: str
    min_train_days: float
    fit: Callable[[pd.Series], Predictor]
    parts: tuple[str, ...] = ()
    """A blend: the mean of these candidates' forecasts (scored from theirs, not refitted)."""
    prior: bool = False
    """The model kept unless another is clearly better on the meter's held-out days."""


def blend(first: Candidate, second: Candidate) -> Candidate:
    """The mean of two candidates: their errors partly cancel (measured: below either alone on
    CityLearn's and the simulator's loads, see bench/forecast.py)."""

    def fit(train: pd.Series) -> Predictor:
        a, b = first.fit(train), second.fit(train)

        def predict(known: pd.Series, steps: pd.DatetimeIndex) -> Array:
            return np.asarray((a(known, steps) + b(known, steps)) / 2.0, dtype=np.float64)

        return predict

    return Candidate(
        f"{first.name}+{second.name}",
        max(first.min_train_days, second.min_train_days),
        fit,
        (first.name, second.name),
    )


def yesterday(known: pd.Series, steps: pd.DatetimeIndex, tz: tzinfo) -> Array:
    """The same local clock time a day before the origin's day, repeated for steps further
    ahead (by the clock: across a daylight-saving change, not 24 h back; `wall_clock_back`)."""
    wall = steps.tz_convert(tz).tz_localize(None)
    days = np.asarray((wall - wall[0]) // DAY, dtype=np.int64) + 1
    back = wall_clock_back(steps, tz, days)
    return np.asarray(known.reindex(back).to_numpy(dtype=float), dtype=np.float64)


def last_week(values: pd.Series, steps: pd.DatetimeIndex, tz: tzinfo) -> Array:
    """The same local clock time seven local days before each step (`wall_clock_back`)."""
    back = wall_clock_back(steps, tz, 7)
    return np.asarray(values.reindex(back).to_numpy(dtype=float), dtype=np.float64)


def _weather_split(
    weather: pd.DataFrame | None, known: pd.Series, steps: pd.DatetimeIndex
) -> tuple[pd.Series, pd.Series] | None:
    if weather is None or "outdoor_c" not in weather.columns:
        return None
    outdoor = weather["outdoor_c"]
    return outdoor.reindex(known.index), outdoor.reindex(steps)


def demand_candidates(
    meter: str, tz: ZoneInfo, weather: pd.DataFrame | None, options: ForecastOptions
) -> list[Candidate]:
    """Profile, boosted and yesterday for a demand series (cleaned: NaN = left out)."""

    def profile(train: pd.Series) -> Predictor:
        check_coverage(History(train, meter), meter, options)
        split = _weather_split(weather, train, pd.DatetimeIndex([]))
        model = fit_demand_profile(train, tz, None if split is None else split[0])

        def predict(known: pd.Series, steps: pd.DatetimeIndex) -> Array:
            outdoor = _weather_split(weather, known, steps)
            past_c, future_c = (None, None) if outdoor is None else outdoor
            future = None if future_c is None else future_c.to_numpy(dtype=float)
            now = pd.Timestamp(steps[0])
            return profile_demand(model, known, steps, now, past_c, future, options)[0]

        return predict

    def boosted(train: pd.Series) -> Predictor:
        return fit_boosted(train, tz, weather=weather).predict

    models = [
        Candidate("profile", 1.0, profile),
        Candidate("boosted", BOOSTED_TRAIN_DAYS, boosted),
        Candidate("yesterday", 1.0, lambda _train: partial(yesterday, tz=tz)),
    ]
    return [*models, replace(blend(models[0], models[1]), prior=True)]


def pv_candidates(
    meter: str, tz: ZoneInfo, site: PvSite, weather: pd.DataFrame | None, options: ForecastOptions
) -> list[Candidate]:
    """Clear sky × clear-sky index, boosted clear-sky index, and yesterday for a PV meter."""

    def clear_sky_index(train: pd.Series) -> Predictor:
        check_coverage(History(train, meter), meter, options)
        return fit_pv_index(train, site, weather).predict

    def boosted(train: pd.Series) -> Predictor:
        return fit_boosted(train, tz, pv=site, weather=weather).predict

    def clipped_yesterday(known: pd.Series, steps: pd.DatetimeIndex) -> Array:
        """24 h back, not the same clock time: the sun keeps no daylight-saving time."""
        return np.clip(yesterday(known, steps, UTC), 0.0, site.peak_kw)

    # with a forecast of the sky the trees see tomorrow's clouds and the mean of both is the
    # prior; without one they see only history, and clear sky alone is (bench/forecast.py)
    sky = weather is not None and bool({"ghi_w_m2", "cloud_cover_pct"} & set(weather.columns))
    models = [
        Candidate("clearsky", 1.0, clear_sky_index, prior=not sky),
        Candidate("boosted", BOOSTED_TRAIN_DAYS, boosted),
        Candidate("yesterday", 1.0, lambda _train: clipped_yesterday),
    ]
    return [*models, replace(blend(models[0], models[1]), prior=sky)]


@dataclass
class Choice:
    """The chosen model, every candidate's held-out MAE, its band offsets, and notes."""

    name: str
    mae: dict[str, float] = field(default_factory=dict)
    quantiles: ErrorQuantiles = NO_BAND
    persistence: Persistence = NO_PERSISTENCE
    """How the error seen so far today carries to later steps (learnt on the held-out days)."""
    holdout_days: int = 0
    notes: list[str] = field(default_factory=list)
    prior: str | None = None
    """The model kept unless another was clearly better (None: it could not be compared)."""


def _days(values: pd.Series) -> float:
    index = pd.DatetimeIndex(values.index)
    if len(index) < 2:
        return 0.0
    return float(values.notna().sum() * (index[1] - index[0]) / DAY)


def holdout_origins(now: pd.Timestamp, tz: ZoneInfo, days: int) -> list[pd.Timestamp]:
    """The `days` local day starts whose whole day ends at or before `now`, oldest first."""
    today = day_start(pd.Timestamp(now), tz)
    earlier = day_starts_between(today - (days + 1) * LONGEST_DAY, today, tz)
    return [t for t in earlier if t < today][-days:]


def choose(
    values: pd.Series,
    now: pd.Timestamp,
    tz: ZoneInfo,
    candidates: list[Candidate],
    label: str,
    holdout_days: int = HOLDOUT_DAYS,
) -> Choice:
    """Backtest each candidate day-ahead over the last held-out days; the least MAE wins."""
    step = pd.Timedelta(values.index[1] - values.index[0])
    held = min(holdout_days, int(_days(values) // 2))
    fallback = candidates[0].name
    if held < 1:
        return Choice(
            fallback,
            notes=[
                f"{label}: {_days(values):.1f} d of history, too little to hold a day out: the "
                f"{fallback} model, without a measured P10–P90 band"
            ],
        )
    origins = holdout_origins(now, tz, held)
    index = pd.DatetimeIndex(values.index)
    train = values[index < origins[0]]
    held_steps = [day_steps(o, tz, step) for o in origins]
    test_index = pd.DatetimeIndex(np.concatenate(held_steps))
    actual = values.reindex(test_index).to_numpy(dtype=float)
    choice = Choice(fallback, holdout_days=held)
    predictions: dict[str, Array] = {}
    for candidate in candidates:
        if _days(train) < candidate.min_train_days:
            choice.notes.append(
                f"{label}: {_days(train):.1f} d of history before the {held} held-out day(s), "
                f"{candidate.name} model needs {candidate.min_train_days:g} d: not compared"
            )
            continue
        if candidate.parts:
            if not all(p in predictions for p in candidate.parts):
                continue
            forecast = np.mean([predictions[p] for p in candidate.parts], axis=0)
        else:
            try:
                predictor = candidate.fit(train)
                parts = [
                    predictor(values[index < o], steps)
                    for o, steps in zip(origins, held_steps, strict=True)
                ]
            except ForecastError as exc:
                choice.notes.append(f"{label}: {candidate.name} model not compared: {exc}")
                continue
            forecast = np.concatenate(parts)
        ok = np.isfinite(actual) & np.isfinite(forecast)
        if ok.sum() == 0:
            continue
        choice.mae[candidate.name] = float(np.mean(np.abs(forecast[ok] - actual[ok])))
        predictions[candidate.name] = forecast
    if choice.mae:
        days = np.repeat(np.arange(len(origins)), [len(steps) for steps in held_steps])
        choice.prior = next((c.name for c in candidates if c.prior and c.name in choice.mae), None)
        choice.name = _preferred(choice.mae, choice.prior, predictions, actual, days)
        choice.quantiles = error_quantiles(test_index, actual, predictions[choice.name], held)
        choice.persistence = fit_persistence(
            test_index, actual, predictions[choice.name], tz, choice.quantiles
        )
    return choice


def _daily_mae(forecast: Array, actual: Array, days: NDArray[np.int_]) -> Array:
    error = np.abs(forecast - actual)
    ok = np.isfinite(error)
    total = np.bincount(days[ok], weights=error[ok], minlength=int(days.max()) + 1)
    count = np.bincount(days[ok], minlength=int(days.max()) + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / count, dtype=np.float64)


def _clearly_better(challenger: Array, prior: Array, confidence: float) -> bool:
    """Is the challenger's daily MAE lower than the prior's at this confidence (paired,
    one-sided t-test over the days both were scored on)? Fewer than 3 such days are no
    evidence."""
    gain = (prior - challenger)[np.isfinite(prior) & np.isfinite(challenger)]
    if len(gain) < 3 or gain.mean() <= 0:
        return False
    spread = gain.std(ddof=1)
    if spread == 0:
        return True  # better by the same amount every day
    t = gain.mean() / (spread / np.sqrt(len(gain)))
    return bool(t > stats.t.ppf(confidence, len(gain) - 1))


def _preferred(
    mae: dict[str, float],
    prior: str | None,
    predictions: dict[str, Array],
    actual: Array,
    days: NDArray[np.int_],
) -> str:
    """The prior candidate unless one with a lower held-out MAE beats it clearly day by day;
    the least MAE where the prior could not be compared."""
    if prior is None:
        return min(mae, key=lambda name: mae[name])
    daily = {name: _daily_mae(f, actual, days) for name, f in predictions.items()}
    confidence = 1.0 - (1.0 - SWITCH_CONFIDENCE) / max(1, len(predictions) - 1)  # Bonferroni
    better = [
        name
        for name in predictions
        if mae[name] < mae[prior] and _clearly_better(daily[name], daily[prior], confidence)
    ]
    return min(better, key=lambda name: mae[name]) if better else prior


def describe(choice: Choice, intraday_correction: bool = True) -> str:
    """How the model was chosen, for a forecast's method."""
    if not choice.mae:
        return f"{choice.name} (no backtest)"
    scores = ", ".join(f"{name} {mae:.3g}" for name, mae in sorted(choice.mae.items()))
    correction = (
        choice.persistence.describe()
        if intraday_correction
        else "intraday correction off (ENERGYHUB_SCHEDULER_INTRADAY_CORRECTION=false)"
    )
    if choice.prior is None:
        why = "least MAE"
    elif choice.name == choice.prior:
        why = "the prior model, none clearly better"
    else:
        why = f"clearly better than {choice.prior} day by day"
    return (
        f"{choice.name}, chosen by MAE over {choice.holdout_days} held-out day(s) ({scores} kW; "
        f"{why}); {correction}"
    )


@dataclass(frozen=True, slots=True)
class _Fitted:
    choice: Choice
    predictor: Predictor


class ModelCache:
    """Each meter's choice and fitted model, kept for the local day they were made on.

    A scheduler re-plans every few minutes; choosing and fitting again each time would spend
    seconds per meter for the same answer. A fitted model still forecasts from the newest
    readings (its lags), so only the fit is a day old at most.
    """

    def __init__(self, size: int = 2048) -> None:
        self._size = size
        self._items: dict[tuple[str, str, str], _Fitted] = {}

    def get(self, key: tuple[str, str, str]) -> _Fitted | None:
        return self._items.get(key)

    def put(self, key: tuple[str, str, str], fitted: _Fitted) -> None:
        if len(self._items) >= self._size:
            self._items.pop(next(iter(self._items)))
        self._items[key] = fitted


def _fitted(
    values: pd.Series,
    now: pd.Timestamp,
    tz: ZoneInfo,
    candidates: list[Candidate],
    label: str,
    cache: ModelCache | None,
    weather: pd.DataFrame | None,
) -> _Fitted:
    step = pd.Timedelta(values.index[1] - values.index[0])
    key = (label, str(pd.Timestamp(now).tz_convert(tz).date()), f"{step}")
    found = cache.get(key) if cache is not None else None
    known = values[pd.DatetimeIndex(values.index) < now]
    by_name = {c.name: c for c in candidates}
    if found is not None:
        return _Fitted(
            found.choice, _refreshed(found.predictor, by_name, found.choice.name, known, weather)
        )
    choice = choose(values, now, tz, candidates, label)
    fitted = _Fitted(choice, fit_named(by_name, choice.name, known))
    if cache is not None:
        cache.put(key, fitted)
    return fitted


def fit_named(by_name: dict[str, Candidate], name: str, known: pd.Series) -> Predictor:
    """The candidate fitted on `known`; a blend as its parts' fits (kept apart for a refresh)."""
    candidate = by_name[name]
    if not candidate.parts:
        return candidate.fit(known)
    return _Mean({part: by_name[part].fit(known) for part in candidate.parts})


def _refreshed(
    predictor: Predictor,
    by_name: dict[str, Candidate],
    name: str,
    known: pd.Series,
    weather: pd.DataFrame | None,
) -> Predictor:
    """A fit made earlier today, with today's weather forecast: boosted models are kept (their
    fit costs seconds across a park), the others refitted (milliseconds)."""
    if isinstance(predictor, _Mean):
        return _Mean(
            {
                part: _refreshed(one, by_name, part, known, weather)
                for part, one in predictor.parts.items()
            }
        )
    model = getattr(predictor, "__self__", None)
    if isinstance(model, BoostedModel):
        return replace(model, weather=weather).predict
    return by_name[name].fit(known)


@dataclass(frozen=True, slots=True)
class _Mean:
    """A blend's fitted parts, forecasting their mean."""

    parts: dict[str, Predictor]

    def __call__(self, known: pd.Series, steps: pd.DatetimeIndex) -> Array:
        forecasts = [predict(known, steps) for predict in self.parts.values()]
        return np.asarray(np.mean(forecasts, axis=0), dtype=np.float64)


def forecast_chosen(
    values: pd.Series,
    steps: pd.DatetimeIndex,
    *,
    column: str,
    now: pd.Timestamp,
    tz: ZoneInfo,
    candidates: list[Candidate],
    label: str,
    upper_kw: float | Array | None = None,
    cache: ModelCache | None = None,
    weather: pd.DataFrame | None = None,
    intraday_correction: bool = True,
) -> SeriesForecast:
    """Choose by backtest, refit the winner on all of `values` before `now`, forecast with band.

    `upper_kw`: the most each step can be (PV: its peak by day, 0 at night); the least is 0.
    `weather`: the frame the candidates were made with (a cached model forecasts with it).
    `intraday_correction`: False: the day-ahead forecast and band even where a correction was
    learnt (ENERGYHUB_SCHEDULER_INTRADAY_CORRECTION).
    """
    fitted = _fitted(values, now, tz, candidates, label, cache, weather)
    choice = fitted.choice
    known = values[pd.DatetimeIndex(values.index) < now]
    persistence = choice.persistence if intraday_correction else NO_PERSISTENCE
    median, scale = intraday(fitted.predictor, persistence, values, steps, now, tz)
    if not np.isfinite(median).all():  # yesterday had gaps: the first candidate fills them
        fallback = candidates[0].fit(known)(known, steps)
        median = np.where(np.isfinite(median), median, fallback)
        median = np.where(np.isfinite(median), median, 0.0)
    low, high = intraday_band(choice.quantiles, persistence, steps, median, scale)
    upper = (
        np.full(len(steps), np.inf) if upper_kw is None else np.broadcast_to(upper_kw, len(steps))
    )
    median = np.clip(median, 0.0, upper)
    low, high = np.clip(low, 0.0, median), np.clip(high, median, upper)
    measured = choice.quantiles.errors > 0
    return SeriesForecast(
        pd.Series(median, index=steps, name=column),
        describe(choice, intraday_correction),
        tuple(choice.notes),
        low=pd.Series(low, index=steps, name=column) if measured else None,
        high=pd.Series(high, index=steps, name=column) if measured else None,
    )
