"""Forecasts from telemetry history, in the units of plan inputs (kW per step, °C).

- Demand (electricity, heat, cooling): a weekday × time-of-day profile fitted with heating and
  cooling degree terms when an outdoor temperature series exists (balance points chosen by least
  squares, kept only if they pay for themselves by BIC), plus the recent level: the mean residual
  of the last hours, its weight decaying with lead time.
- PV: clear-sky irradiance (`forecast/solar.py`) scaled by the measured ratio per
  time of day over the last days, recent days weighted most.
- Outdoor temperature: its time-of-day profile of the last days plus the recent level.

A history is a regular series with NaN where readings are missing. Short gaps are interpolated,
long ones left out of the fit, and a meter that is silent or nearly empty is refused with a
ForecastError naming it; every fill is reported in the forecast's notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, tzinfo
from itertools import product
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from energyhub.errors import EnergyhubError
from energyhub.forecast.solar import (
    SHANGHAI_LATITUDE_DEG,
    SHANGHAI_LONGITUDE_DEG,
    clear_sky_ghi_w_m2,
)
from energyhub.localdays import wall_clock_back

Array = NDArray[np.float64]

DEFAULT_LATITUDE_DEG = SHANGHAI_LATITUDE_DEG
DEFAULT_LONGITUDE_DEG = SHANGHAI_LONGITUDE_DEG
DEFAULT_PERFORMANCE_RATIO = 0.75
"""PV output per kW of peak at 1000 W/m² clear sky, used when no PV history can be measured."""
HEATING_BALANCE_C = (10.0, 12.0, 14.0, 16.0, 18.0)
COOLING_BALANCE_C = (18.0, 20.0, 22.0, 24.0, 26.0)
"""Candidate balance points of the degree terms; the fit picks the pair with the least error."""
DEGREE_MIN_DAYS = 7
"""Days of history before heating and cooling terms are fitted (and at least two readings per
profile key): what tells them from the profile is how days of unlike temperature differ at the
same time of day. With fewer, the daily cycle of the outdoor temperature stands in for the
building's own (two days gave an office 540 kW/K below 16 °C and forecast three times its
highest reading)."""
HOLDOUT = pd.Timedelta(days=7)
MIN_WEEKDAY_HISTORY = pd.Timedelta(days=14)
"""Seven day types compete with workday/weekend on the last week once this much precedes it."""
PV_DAYLIGHT_SHARE = 0.05
"""A time of day whose clear-sky output is below this share of peak uses the all-day ratio."""


class ForecastError(EnergyhubError):
    """A history too thin or too long silent to forecast from; the message names the meter."""


@dataclass(frozen=True, slots=True)
class ForecastOptions:
    """How much history counts and how gaps are treated; lengths are timedeltas."""

    max_gap: timedelta = timedelta(hours=1)
    max_silence: timedelta = timedelta(hours=6)
    min_history: timedelta = timedelta(hours=24)
    recent: timedelta = timedelta(hours=24)
    level_decay: timedelta = timedelta(hours=24)
    pv_days: int = 7
    pv_half_life_days: float = 1.0
    outdoor_days: int = 3
    latitude_deg: float = DEFAULT_LATITUDE_DEG
    longitude_deg: float = DEFAULT_LONGITUDE_DEG


@dataclass(frozen=True, slots=True)
class History:
    """One metered series on a regular UTC grid (NaN where missing) and the meter's name."""

    values: pd.Series
    meter: str


@dataclass(frozen=True, slots=True)
class SeriesForecast:
    """Forecast values on the requested steps, how they were made, what was filled, its band."""

    values: pd.Series
    method: str
    notes: tuple[str, ...] = ()
    low: pd.Series | None = None
    """P10 on the same steps (None: no band measured); `values` is the P50."""
    high: pd.Series | None = None
    """P90 on the same steps."""


def _step(index: pd.DatetimeIndex) -> pd.Timedelta:
    if len(index) < 2:
        raise ValueError("a series needs at least two steps to tell its step length")
    return pd.Timedelta(index[1] - index[0])


def _hours(delta: timedelta | pd.Timedelta) -> str:
    hours = pd.Timedelta(delta).total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 10 else f"{hours:.2g} h"


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of `mask`."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _interior_gaps(valid: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) of the runs without a value between the first and the last value."""
    first = int(np.flatnonzero(valid)[0]) if valid.any() else len(valid)
    return [(a, b) for a, b in _runs(~valid) if a > first and b < len(valid)]


def check_coverage(history: History, column: str, options: ForecastOptions) -> None:
    """Refuse a history with less than `min_history` of readings, naming its meter.

    The time readings cover is their steps and the short gaps between them (up to `max_gap`,
    which are interpolated): a meter read once an hour covers each hour of a 15-min grid, not
    the one step in four its reading falls in."""
    step = _step(pd.DatetimeIndex(history.values.index))
    valid = history.values.notna().to_numpy()
    short = [b - a for a, b in _interior_gaps(valid) if (b - a) * step <= options.max_gap]
    covered = (int(valid.sum()) + sum(short)) * step
    if covered < options.min_history:
        raise ForecastError(
            f"{history.meter}: only {_hours(covered)} of readings in the last "
            f"{_hours(len(history.values) * step)} (need {_hours(options.min_history)}): cannot "
            f"forecast {column}; check the meter and its gateway"
        )


def clean_history(
    history: History, column: str, now: pd.Timestamp, options: ForecastOptions
) -> tuple[pd.Series, list[str]]:
    """Interpolate short interior gaps; refuse a silent or nearly empty meter; say what was done."""
    values = history.values.astype("float64")
    step = _step(pd.DatetimeIndex(values.index))
    check_coverage(history, column, options)
    valid = values.notna().to_numpy()
    last = pd.Timestamp(values.index[np.flatnonzero(valid)[-1]])
    silent = now - (last + step)
    if silent > options.max_silence:
        raise ForecastError(
            f"{history.meter}: last reading {last.isoformat()}, silent for {_hours(silent)} "
            f"(limit {_hours(options.max_silence)}): cannot forecast {column}; check the meter "
            "and its gateway"
        )
    notes = []
    runs = _interior_gaps(valid)
    short = [(a, b) for a, b in runs if (b - a) * step <= options.max_gap]
    if short:
        filled = values.interpolate(method="linear", limit_area="inside")
        keep = np.ones(len(values), dtype=bool)
        for a, b in runs:
            if (a, b) not in short:
                keep[a:b] = False
        values = filled.where(keep)
        notes.append(
            f"{history.meter}: {len(short)} gap(s) of up to {_hours(options.max_gap)} filled by "
            "linear interpolation"
        )
    long_steps = sum(b - a for a, b in runs if (a, b) not in short)
    if long_steps:
        notes.append(
            f"{history.meter}: {len(runs) - len(short)} gap(s) longer than "
            f"{_hours(options.max_gap)} ({_hours(long_steps * step)} in all) left out of the fit"
        )
    if silent > pd.Timedelta(0):
        notes.append(
            f"{history.meter}: no reading for the last {_hours(silent)}; the recent level comes "
            "from earlier readings"
        )
    return values, notes


# --- demand: profile, degree terms, recent level -----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Keys:
    """Profile keys of some steps: day type (weekday, or workday/weekend) and time-of-day slot."""

    day: NDArray[np.int64]
    slot: NDArray[np.int64]


def _keys(index: pd.DatetimeIndex, tz: ZoneInfo, step: pd.Timedelta, weekdays: bool) -> _Keys:
    local = index.tz_convert(tz)
    minutes = np.asarray(local.hour * 60 + local.minute, dtype=np.int64)
    slot = minutes // max(int(step.total_seconds() // 60), 1)
    dow = np.asarray(local.day_of_week, dtype=np.int64)
    return _Keys(dow if weekdays else (dow >= 5).astype(np.int64), slot)


@dataclass(frozen=True, slots=True)
class DegreeTerms:
    """Temperature sensitivity: kW per K below the heating and above the cooling balance point."""

    heating_kw_per_k: float
    heating_balance_c: float
    cooling_kw_per_k: float
    cooling_balance_c: float

    def effect(self, outdoor_c: Array) -> Array:
        heating = np.maximum(self.heating_balance_c - outdoor_c, 0.0)
        cooling = np.maximum(outdoor_c - self.cooling_balance_c, 0.0)
        return np.asarray(
            self.heating_kw_per_k * heating + self.cooling_kw_per_k * cooling, dtype=np.float64
        )


NO_DEGREE_TERMS = DegreeTerms(0.0, HEATING_BALANCE_C[0], 0.0, COOLING_BALANCE_C[-1])


def _demean(values: Array, groups: NDArray[np.int64]) -> Array:
    sums = np.bincount(groups, weights=values)
    counts = np.bincount(groups)
    return np.asarray(values - (sums / np.maximum(counts, 1))[groups], dtype=np.float64)


def _degree_fit(
    y: Array, groups: NDArray[np.int64], outdoor_c: Array, hb: float, cb: float
) -> tuple[DegreeTerms, float]:
    """Non-negative degree coefficients with the profile's groups partialled out; and the SSE."""
    columns = [np.maximum(hb - outdoor_c, 0.0), np.maximum(outdoor_c - cb, 0.0)]
    yd = _demean(y, groups)
    xd = np.column_stack([_demean(c, groups) for c in columns])
    active = [i for i in range(2) if np.ptp(xd[:, i]) > 1e-9]
    coef = np.zeros(2)
    while active:
        solved = np.linalg.lstsq(xd[:, active], yd, rcond=None)[0]
        if (solved >= 0).all():
            coef[active] = solved
            break
        active = [i for i, c in zip(active, solved, strict=True) if c > 0]
    sse = float(np.sum((yd - xd @ coef) ** 2))
    return DegreeTerms(float(coef[0]), hb, float(coef[1]), cb), sse


def _bic(sse: float, n: int, k: int) -> float:
    return n * float(np.log(max(sse, 1e-12) / n)) + k * float(np.log(n))


def fit_degree_terms(y: Array, groups: NDArray[np.int64], outdoor_c: Array) -> DegreeTerms:
    """The best balance points by least squares; no terms unless they lower the BIC."""
    n, k = len(y), int(groups.max()) + 1
    baseline = float(np.sum(_demean(y, groups) ** 2))
    best, best_sse = NO_DEGREE_TERMS, baseline
    for hb, cb in product(HEATING_BALANCE_C, COOLING_BALANCE_C):
        terms, sse = _degree_fit(y, groups, outdoor_c, hb, cb)
        if sse < best_sse:
            best, best_sse = terms, sse
    used = (best.heating_kw_per_k > 0) + (best.cooling_kw_per_k > 0)
    if used and _bic(best_sse, n, k + 2 * used) < _bic(baseline, n, k):
        return best
    return NO_DEGREE_TERMS


def group_means(keys: NDArray[np.int64], values: Array) -> dict[int, float]:
    """Mean of `values` per distinct key."""
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse)
    return dict(zip(unique.tolist(), (sums / counts).tolist(), strict=True))


@dataclass(frozen=True, slots=True)
class ProfileModel:
    """Mean per (day type, slot), per slot, and overall, after the degree terms are taken off."""

    weekdays: bool
    by_key: dict[int, float]
    """Keyed by day type × slots per day + slot."""
    by_slot: dict[int, float]
    overall: float
    degrees: DegreeTerms
    step: pd.Timedelta
    tz: ZoneInfo

    @property
    def slots_per_day(self) -> int:
        return int(pd.Timedelta(days=1) / self.step)

    def predict(self, index: pd.DatetimeIndex, outdoor_c: Array | None) -> Array:
        """The profile at each step, plus the degree terms where a temperature is given."""
        keys = _keys(index, self.tz, self.step, self.weekdays)
        codes = (keys.day * self.slots_per_day + keys.slot).tolist()
        base = np.array(
            [
                self.by_key.get(code, self.by_slot.get(slot, self.overall))
                for code, slot in zip(codes, keys.slot.tolist(), strict=True)
            ],
            dtype=np.float64,
        )
        if outdoor_c is not None:
            effect = self.degrees.effect(outdoor_c)
            base = base + np.where(np.isfinite(effect), effect, 0.0)
        return base


def fit_profile(
    values: pd.Series, tz: ZoneInfo, outdoor_c: pd.Series | None, weekdays: bool
) -> ProfileModel:
    """Fit the profile (and degree terms where `outdoor_c` covers the same steps) on valid rows."""
    index = pd.DatetimeIndex(values.index)
    step = _step(index)
    slots_per_day = int(pd.Timedelta(days=1) / step)
    temps = None if outdoor_c is None else outdoor_c.reindex(index).to_numpy(dtype=float)
    ok = values.notna().to_numpy() & (np.isfinite(temps) if temps is not None else True)
    if temps is not None and ok.sum() < slots_per_day:
        temps, ok = None, values.notna().to_numpy()
    valid = index[ok]
    keys = _keys(valid, tz, step, weekdays)
    y = values.to_numpy(dtype=float)[ok]
    codes = keys.day * slots_per_day + keys.slot
    degrees = NO_DEGREE_TERMS
    groups, compact = np.unique(codes, return_inverse=True)
    days = len(y) / slots_per_day
    if temps is not None and days >= DEGREE_MIN_DAYS and len(y) >= 2 * len(groups):
        degrees = fit_degree_terms(y, compact.astype(np.int64), temps[ok])
        y = y - degrees.effect(temps[ok])
    return ProfileModel(
        weekdays=weekdays,
        by_key=group_means(codes, y),
        by_slot=group_means(keys.slot, y),
        overall=float(np.mean(y)),
        degrees=degrees,
        step=step,
        tz=tz,
    )


def choose_day_types(values: pd.Series, tz: ZoneInfo, outdoor_c: pd.Series | None) -> bool:
    """Seven day types if they predict the last week better than workday/weekend, fitted before."""
    index = pd.DatetimeIndex(values.index)
    cut = index[-1] - HOLDOUT
    train = values.where(index <= cut)
    test = values[index > cut].dropna()
    if train.notna().sum() * _step(index) < MIN_WEEKDAY_HISTORY or test.empty:
        return False
    temps = None if outdoor_c is None else outdoor_c.reindex(test.index).to_numpy(dtype=float)
    errors = []
    for weekdays in (False, True):
        predicted = fit_profile(train, tz, outdoor_c, weekdays).predict(
            pd.DatetimeIndex(test.index), temps
        )
        errors.append(float(np.mean(np.abs(predicted - test.to_numpy(dtype=float)))))
    return errors[1] < errors[0]


def _recent_bias(
    values: pd.Series, fitted: Array, now: pd.Timestamp, options: ForecastOptions
) -> tuple[float, int]:
    """Mean residual over the recent window (0 if it has no readings) and how many it used."""
    index = pd.DatetimeIndex(values.index)
    recent = (index >= now - options.recent) & values.notna().to_numpy()
    if not recent.any():
        return 0.0, 0
    return float(np.mean(values.to_numpy(dtype=float)[recent] - fitted[recent])), int(recent.sum())


def _lead_weight(steps: pd.DatetimeIndex, now: pd.Timestamp, options: ForecastOptions) -> Array:
    lead_s = np.maximum((steps - now).total_seconds().to_numpy(dtype=float), 0.0)
    return np.asarray(np.exp(-lead_s / options.level_decay.total_seconds()), dtype=np.float64)


def _describe(model: ProfileModel, days: float) -> str:
    kind = "weekday" if model.weekdays else "workday/weekend"
    minutes = int(model.step.total_seconds() // 60)
    text = f"{kind} × {minutes}-min profile over {days:.0f} d"
    d = model.degrees
    if d.heating_kw_per_k > 0:
        text += f", {d.heating_kw_per_k:.3g} kW/K below {d.heating_balance_c:g} °C"
    if d.cooling_kw_per_k > 0:
        text += f", {d.cooling_kw_per_k:.3g} kW/K above {d.cooling_balance_c:g} °C"
    return text


def forecast_demand(
    history: History,
    steps: pd.DatetimeIndex,
    *,
    column: str,
    now: pd.Timestamp,
    tz: ZoneInfo,
    outdoor: tuple[pd.Series, pd.Series] | None = None,
    options: ForecastOptions | None = None,
    cleaned: bool = False,
) -> SeriesForecast:
    """Demand on `steps`: profile (+ degree terms on `outdoor` = (history, forecast)) + level.

    `cleaned`: the history went through `clean_history` already (NaN means left out).
    """
    options = options or ForecastOptions()
    notes: list[str] = []
    if cleaned:
        check_coverage(history, column, options)
        values = history.values.astype("float64")
    else:
        values, notes = clean_history(history, column, now, options)
    past_c = outdoor[0] if outdoor is not None else None
    model = fit_demand_profile(values, tz, past_c)
    future_c = None if outdoor is None else outdoor[1].reindex(steps).to_numpy(dtype=float)
    predicted, bias, used = profile_demand(model, values, steps, now, past_c, future_c, options)
    days = values.notna().sum() * model.step / pd.Timedelta(days=1)
    method = _describe(model, days)
    if used:
        method += f", recent level {bias:+.3g} kW over {_hours(options.recent)}"
    return SeriesForecast(pd.Series(predicted, index=steps, name=column), method, tuple(notes))


def fit_demand_profile(values: pd.Series, tz: ZoneInfo, past_c: pd.Series | None) -> ProfileModel:
    """The demand profile of a cleaned history: day types chosen on its last week, then fitted."""
    return fit_profile(values, tz, past_c, choose_day_types(values, tz, past_c))


def profile_demand(
    model: ProfileModel,
    known: pd.Series,
    steps: pd.DatetimeIndex,
    now: pd.Timestamp,
    past_c: pd.Series | None,
    future_c: Array | None,
    options: ForecastOptions,
) -> tuple[Array, float, int]:
    """A fitted profile on `steps` plus the recent level of `known` before `now` (never < 0);
    and that level and how many readings it came from."""
    index = pd.DatetimeIndex(known.index)
    recent = known[(index >= now - options.recent) & (index < now)]
    recent_index = pd.DatetimeIndex(recent.index)
    temps = None if past_c is None else past_c.reindex(recent_index).to_numpy(dtype=float)
    fitted = model.predict(recent_index, temps) if len(recent) else np.zeros(0)
    bias, used = _recent_bias(recent, fitted, now, options)
    predicted = model.predict(steps, future_c) + bias * _lead_weight(steps, now, options)
    return np.maximum(predicted, 0.0), bias, used


def forecast_outdoor(
    history: History,
    steps: pd.DatetimeIndex,
    *,
    now: pd.Timestamp,
    tz: ZoneInfo,
    options: ForecastOptions | None = None,
) -> SeriesForecast:
    """Outdoor temperature: time-of-day profile of the last days, shifted by the recent level."""
    options = options or ForecastOptions()
    values, notes = clean_history(history, "outdoor_c", now, options)
    index = pd.DatetimeIndex(values.index)
    window = values.where(index >= now - pd.Timedelta(days=options.outdoor_days))
    model = fit_profile(window, tz, None, weekdays=False)
    model = ProfileModel(
        False, {}, model.by_slot, model.overall, NO_DEGREE_TERMS, model.step, tz
    )  # one day type: weather does not keep office hours
    bias, _ = _recent_bias(values, model.predict(index, None), now, options)
    predicted = model.predict(steps, None) + bias * _lead_weight(steps, now, options)
    method = f"time-of-day profile of the last {options.outdoor_days} d, recent level {bias:+.2g} K"
    return SeriesForecast(pd.Series(predicted, index=steps, name="outdoor_c"), method, tuple(notes))


# --- PV: clear sky × measured ratio ------------------------------------------------------------


def _utc_slot(index: pd.DatetimeIndex, step: pd.Timedelta) -> NDArray[np.int64]:
    """Time-of-day slot in UTC (the sun keeps no daylight saving time)."""
    utc = index.tz_convert("UTC")
    seconds = np.asarray(utc.hour * 3600 + utc.minute * 60, dtype=np.int64)
    return seconds // int(step.total_seconds())


def _pv_ratios(
    values: pd.Series, clear_kw: Array, peak_kw: float, now: pd.Timestamp, options: ForecastOptions
) -> tuple[dict[int, float], float]:
    """Measured / clear-sky per time-of-day slot and overall, recent days weighted most."""
    index = pd.DatetimeIndex(values.index)
    age_days = np.floor((now - index).total_seconds().to_numpy() / 86400.0)
    weight = 0.5 ** (age_days / options.pv_half_life_days)
    measured = np.maximum(values.to_numpy(dtype=float), 0.0)
    ok = np.isfinite(measured) & (age_days < options.pv_days)
    step = _step(index)
    slot = _utc_slot(index, step)
    unique, inverse = np.unique(slot[ok], return_inverse=True)
    measured_sum = np.bincount(inverse, weights=(measured * weight)[ok])
    clear_sum = np.bincount(inverse, weights=(clear_kw * weight)[ok])
    total_c = float(clear_sum.sum())
    overall = float(measured_sum.sum()) / total_c if total_c > 0 else DEFAULT_PERFORMANCE_RATIO
    days = float(np.sum(weight[ok])) * step / pd.Timedelta(days=1)
    daylight = clear_sum >= PV_DAYLIGHT_SHARE * peak_kw * max(days, 1e-9)
    ratios = measured_sum[daylight] / clear_sum[daylight]
    return dict(zip(unique[daylight].tolist(), ratios.tolist(), strict=True)), overall


def forecast_pv(
    history: History | None,
    steps: pd.DatetimeIndex,
    *,
    column: str,
    peak_kw: float,
    now: pd.Timestamp,
    options: ForecastOptions | None = None,
) -> SeriesForecast:
    """Available PV on `steps`: clear sky × the measured ratio, or a default ratio without one."""
    options = options or ForecastOptions()
    lat, lon = options.latitude_deg, options.longitude_deg
    future_clear = clear_sky_ghi_w_m2(steps, lat, lon) / 1000.0 * peak_kw
    notes: list[str] = []
    ratios: dict[int, float] = {}
    overall = DEFAULT_PERFORMANCE_RATIO
    if history is None:
        notes.append(
            f"{column}: no PV meter; clear sky × a default performance ratio of "
            f"{DEFAULT_PERFORMANCE_RATIO:g}"
        )
    else:
        try:
            values, notes = clean_history(history, column, now, options)
        except ForecastError as exc:
            notes = [f"{exc}; clear sky × a default ratio of {DEFAULT_PERFORMANCE_RATIO:g} instead"]
        else:
            index = pd.DatetimeIndex(values.index)
            past_clear = clear_sky_ghi_w_m2(index, lat, lon) / 1000.0 * peak_kw
            ratios, overall = _pv_ratios(values, past_clear, peak_kw, now, options)
    slot = _utc_slot(steps, _step(steps))
    ratio = np.array([ratios.get(s, overall) for s in slot.tolist()])
    predicted = np.clip(future_clear * ratio, 0.0, peak_kw)
    method = (
        f"clear sky at {lat:.2f}°, {lon:.2f}° × measured ratio by time of day over "
        f"{options.pv_days} d (overall {overall:.2f})"
    )
    return SeriesForecast(pd.Series(predicted, index=steps, name=column), method, tuple(notes))


# --- comparison --------------------------------------------------------------------------------


def seasonal_naive(
    values: pd.Series, steps: pd.DatetimeIndex, period: timedelta, tz: tzinfo | None = None
) -> pd.Series:
    """The value one `period` (a day, a week) before each step: the benchmark to beat. With a
    zone and a period of whole days, at the same local clock time (`wall_clock_back`)."""
    days, rest = divmod(pd.Timedelta(period), pd.Timedelta(days=1))
    if tz is not None and rest == pd.Timedelta(0):
        back = wall_clock_back(steps, tz, int(days))
    else:
        back = steps - pd.Timedelta(period)
    return pd.Series(values.reindex(back).to_numpy(), index=steps)


def nmae(actual: pd.Series | Array, predicted: pd.Series | Array) -> float:
    """Normalized mean absolute error: Σ|predicted − actual| / Σ|actual| over finite pairs."""
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    ok = np.isfinite(a) & np.isfinite(p)
    denominator = float(np.abs(a[ok]).sum())
    return float(np.abs(p[ok] - a[ok]).sum()) / denominator if denominator > 0 else float("nan")
