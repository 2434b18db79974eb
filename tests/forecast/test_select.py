"""Models chosen per meter by backtest: bands, bounds, short histories, the boosted model."""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from energyhub.forecast.calendar import HOLIDAY, WEEKEND, day_kinds
from energyhub.forecast.gbm import PvSite
from energyhub.forecast.profile import ForecastOptions
from energyhub.forecast.select import (
    Candidate,
    ModelCache,
    Predictor,
    blend,
    choose,
    demand_candidates,
    describe,
    forecast_chosen,
    pv_candidates,
)
from energyhub.forecast.solar import clear_sky_ghi_w_m2

TZ = ZoneInfo("Asia/Shanghai")
STEP = "15min"
ORIGIN = pd.Timestamp("2025-03-03", tz=TZ).tz_convert("UTC")  # a Monday, local midnight
OPTIONS = ForecastOptions()


def office_kw(index: pd.DatetimeIndex, seed: int) -> pd.Series:
    """Workdays 08–18 at ~800 kW over ~200 kW, a daily level that wanders, and noise."""
    local = index.tz_convert(TZ)
    hours = np.asarray(local.hour + local.minute / 60)
    working = (np.asarray(local.day_of_week) < 5) & (hours >= 8) & (hours < 18)
    rng = np.random.default_rng(seed)
    days = np.asarray((index - index[0]) // pd.Timedelta(days=1))
    level = 1.0 + 0.1 * rng.standard_normal(days.max() + 1)[days]
    noise = rng.normal(0.0, 30.0, len(index))
    return pd.Series(np.where(working, 800.0, 200.0) * level + noise, index=index)


def test_a_demand_forecast_has_a_band_that_holds_most_of_the_next_days() -> None:
    index = pd.date_range(ORIGIN, periods=96 * 42, freq=STEP)
    series = office_kw(index, seed=1)
    inside, total = 0, 0
    for day in range(28, 42):
        now = ORIGIN + pd.Timedelta(days=day)
        history = series[(index >= now - pd.Timedelta(days=28)) & (index < now)]
        steps = pd.date_range(now, periods=96, freq=STEP)
        forecast = forecast_chosen(
            history, steps, column="b:electricity_kw", now=now, tz=TZ,
            candidates=demand_candidates("b/main", TZ, None, OPTIONS), label="b/main",
        )  # fmt: skip
        assert forecast.low is not None and forecast.high is not None
        assert (forecast.low <= forecast.values).all() and (forecast.values <= forecast.high).all()
        assert (forecast.low >= 0).all()
        assert "chosen by MAE over 7 held-out day(s)" in forecast.method
        actual = series.reindex(steps).to_numpy()
        inside += int(np.sum((actual >= forecast.low) & (actual <= forecast.high)))
        total += len(steps)
    assert 0.65 <= inside / total <= 0.95


def test_too_little_history_gets_the_profile_model_and_says_so() -> None:
    index = pd.date_range(ORIGIN, periods=96 + 40, freq=STEP)
    series = office_kw(index, seed=2)
    now = ORIGIN + pd.Timedelta(days=1, hours=10)
    steps = pd.date_range(now, periods=96, freq=STEP)
    forecast = forecast_chosen(
        series[index < now], steps, column="b:electricity_kw", now=now, tz=TZ,
        candidates=demand_candidates("b/main", TZ, None, OPTIONS), label="b/main",
    )  # fmt: skip
    assert forecast.method == "profile (no backtest)"
    assert forecast.notes == (
        "b/main: 1.4 d of history, too little to hold a day out: the profile model, without a "
        "measured P10–P90 band",
    )
    assert forecast.low is None and forecast.high is None
    assert (forecast.values >= 0).all()


def test_the_boosted_model_needs_a_week_before_the_held_out_days() -> None:
    index = pd.date_range(ORIGIN, periods=96 * 10, freq=STEP)
    series = office_kw(index, seed=3)
    now = ORIGIN + pd.Timedelta(days=10)
    choice = choose(series, now, TZ, demand_candidates("b/main", TZ, None, OPTIONS), "b/main")
    assert choice.holdout_days == 5
    assert set(choice.mae) == {"profile", "yesterday"}
    assert choice.notes == [
        "b/main: 5.0 d of history before the 5 held-out day(s), boosted model needs 7 d: "
        "not compared",
        "b/main: 5.0 d of history before the 5 held-out day(s), profile+boosted model needs "
        "7 d: not compared",
    ]


def test_a_holiday_load_is_learnt_from_china_s_calendar() -> None:
    """Sunday 27 April 2025 was worked for Labour Day; Spring Festival's 26 Jan and 8 Feb too."""
    start = pd.Timestamp("2025-01-01", tz=TZ).tz_convert("UTC")
    index = pd.date_range(start, periods=96 * 130, freq=STEP)
    off = np.isin(day_kinds(index, TZ), [HOLIDAY, WEEKEND])
    local = index.tz_convert(TZ)
    hours = np.asarray(local.hour + local.minute / 60)
    rng = np.random.default_rng(4)
    series = pd.Series(
        np.where(~off & (hours >= 8) & (hours < 18), 800.0, 200.0) + rng.normal(0, 20, len(index)),
        index=index,
    )
    model_of = {c.name: c for c in demand_candidates("lab/main", TZ, None, OPTIONS)}
    sunday = pd.Timestamp("2025-04-27", tz=TZ).tz_convert("UTC")
    steps = pd.date_range(sunday, periods=96, freq=STEP)
    known = series[index < sunday]
    boosted = model_of["boosted"].fit(known)(known, steps)
    working_hours = (hours[index.isin(steps)] >= 9) & (hours[index.isin(steps)] < 17)
    assert boosted[working_hours].mean() > 650  # a working Sunday
    profile = model_of["profile"].fit(known)(known, steps)
    assert profile[working_hours].mean() < 400  # the profile sees only a Sunday
    holiday = pd.Timestamp("2025-05-01", tz=TZ).tz_convert("UTC")  # a Thursday off
    steps = pd.date_range(holiday, periods=96, freq=STEP)
    known = series[index < holiday]
    boosted = model_of["boosted"].fit(known)(known, steps)
    assert boosted[working_hours].mean() < 350


def test_pv_is_zero_at_night_and_never_above_peak() -> None:
    index = pd.date_range(ORIGIN, periods=96 * 21, freq=STEP)
    site = PvSite(500.0, 31.23, 121.47)
    clear = clear_sky_ghi_w_m2(index, 31.23, 121.47) / 1000 * 500
    rng = np.random.default_rng(5)
    days = np.asarray((index - index[0]) // pd.Timedelta(days=1))
    cloud = rng.uniform(0.3, 1.1, days.max() + 1)[days]
    series = pd.Series(np.minimum(clear * cloud * 1.2, 520.0), index=index)  # over-peak readings
    now = ORIGIN + pd.Timedelta(days=21)
    steps = pd.date_range(now, periods=96, freq=STEP)
    cache = ModelCache()
    candidates = pv_candidates("b/pv", TZ, site, None, OPTIONS)
    forecast = forecast_chosen(
        series, steps, column="pv:available_kw", now=now, tz=TZ, candidates=candidates,
        label="b/pv", upper_kw=site.upper_kw(steps), cache=cache,
    )  # fmt: skip
    assert forecast.high is not None and forecast.low is not None
    night = clear_sky_ghi_w_m2(steps, 31.23, 121.47) == 0
    assert (forecast.values[night] == 0).all() and (forecast.high[night] == 0).all()
    assert forecast.values.max() <= 500.0 and forecast.high.max() <= 500.0
    assert forecast.values.max() > 100.0
    again = forecast_chosen(
        series, steps, column="pv:available_kw", now=now + pd.Timedelta(hours=1), tz=TZ,
        candidates=candidates, label="b/pv", upper_kw=site.upper_kw(steps), cache=cache,
    )  # fmt: skip
    assert again.method == forecast.method  # the day's choice, not made again


def test_a_pv_meter_with_a_day_of_history_gets_the_clear_sky_model_and_says_so() -> None:
    index = pd.date_range(ORIGIN, periods=96 + 48, freq=STEP)
    site = PvSite(500.0, 31.23, 121.47)
    series = pd.Series(clear_sky_ghi_w_m2(index, 31.23, 121.47) / 1000 * 400, index=index)
    now = index[-1] + pd.Timedelta(minutes=15)
    steps = pd.date_range(now, periods=96, freq=STEP)
    forecast = forecast_chosen(
        series, steps, column="pv:available_kw", now=now, tz=TZ,
        candidates=pv_candidates("b/pv", TZ, site, None, OPTIONS), label="b/pv",
        upper_kw=site.upper_kw(steps),
    )  # fmt: skip
    assert forecast.method == "clearsky (no backtest)"
    assert any("too little to hold a day out: the clearsky model" in n for n in forecast.notes)
    assert forecast.low is None and forecast.high is None
    clear = clear_sky_ghi_w_m2(steps, 31.23, 121.47) / 1000 * 400
    assert np.abs(forecast.values.to_numpy() - clear).sum() / clear.sum() < 0.05


def test_a_cached_blend_keeps_its_boosted_fit_for_the_day() -> None:
    index = pd.date_range(ORIGIN, periods=96 * 28, freq=STEP)
    series = office_kw(index, seed=5)
    fits = []

    def counted(candidate: Candidate) -> Candidate:
        def fit(train: pd.Series) -> Predictor:
            fits.append(candidate.name)
            return candidate.fit(train)

        return replace(candidate, fit=fit)

    made = demand_candidates("b/main", TZ, None, OPTIONS)
    profile, boosted = (counted(c) if c.name in ("profile", "boosted") else c for c in made[:2])
    candidates = [profile, boosted, blend(profile, boosted)]
    cache = ModelCache()
    forecasts = []
    for minutes in (0, 15):  # two re-plans on the same local day
        now = ORIGIN + pd.Timedelta(days=27, hours=9, minutes=minutes)
        steps = pd.date_range(now, periods=96, freq=STEP)
        forecast = forecast_chosen(
            series[index < now], steps, column="b:electricity_kw", now=now, tz=TZ,
            candidates=candidates, label="b/main", cache=cache,
        )  # fmt: skip
        forecasts.append(forecast)
        if minutes == 0:
            first_boosted_fits = fits.count("boosted")
    assert forecasts[0].method.startswith("profile+boosted, chosen by MAE")
    assert fits.count("boosted") == first_boosted_fits  # the re-plan fitted no tree
    assert fits.count("profile") == 3  # held-out choice, today's fit, the re-plan's refit
    assert np.isfinite(forecasts[1].values).all() and (forecasts[1].values >= 0).all()


def test_the_intraday_correction_can_be_turned_off() -> None:
    """A day running 30 % above its forecast: a mid-day re-plan moves the next steps towards it;
    with the correction off (ENERGYHUB_SCHEDULER_INTRADAY_CORRECTION=false) it keeps the
    day-ahead forecast and says so."""
    index = pd.date_range(ORIGIN, periods=96 * 29, freq=STEP)
    series = office_kw(index, seed=3)
    today = index >= ORIGIN + pd.Timedelta(days=28)
    series[today] *= 1.3
    now = ORIGIN + pd.Timedelta(days=28, hours=12)
    history = series[index < now]
    steps = pd.date_range(now, periods=8, freq=STEP)
    candidates = demand_candidates("b/main", TZ, None, OPTIONS)

    def forecast(correction: bool) -> tuple[np.ndarray, str]:
        made = forecast_chosen(
            history, steps, column="b:electricity_kw", now=now, tz=TZ, candidates=candidates,
            label="b/main", intraday_correction=correction,
        )  # fmt: skip
        return made.values.to_numpy(), made.method

    on, on_method = forecast(True)
    off, off_method = forecast(False)
    assert "intraday correction 0." in on_method or "intraday correction 1." in on_method
    assert "intraday correction off (ENERGYHUB_SCHEDULER_INTRADAY_CORRECTION=false)" in off_method
    actual = series.reindex(steps).to_numpy()
    assert np.abs(on - actual).mean() < np.abs(off - actual).mean()


def _constant(name: str, kw_by_day: list[float], prior: bool = False) -> Candidate:
    """A candidate forecasting each held-out day (by its order) at a given constant."""

    def fit(_train: pd.Series) -> Predictor:
        def predict(known: pd.Series, steps: pd.DatetimeIndex) -> np.ndarray:
            day = int((steps[0] - ORIGIN) // pd.Timedelta(days=1)) + 7
            return np.full(len(steps), kw_by_day[day] if 0 <= day < 7 else 0.0)

        return predict

    return Candidate(name, 1.0, fit, prior=prior)


def _flat_week_before(kw: float) -> pd.Series:
    index = pd.date_range(ORIGIN - pd.Timedelta(days=21), ORIGIN, freq=STEP, inclusive="left")
    return pd.Series(kw, index=index)


def test_the_prior_model_stays_unless_another_is_better_day_by_day() -> None:
    """Actual 100 kW every held-out day. `lucky` is 1 kW off on six days and 50 kW off on one
    (mean 7.9), `prior` 10 kW off every day (mean 10): the least MAE alone would take `lucky`,
    but it is not better day by day at 95 %, so the prior stays. `steady`, 5 kW off every day,
    is: it replaces the prior."""
    series = _flat_week_before(100.0)
    prior = _constant("prior", [110.0] * 7, prior=True)
    lucky = _constant("lucky", [101.0, 99.0, 101.0, 150.0, 99.0, 101.0, 99.0])
    choice = choose(series, ORIGIN, TZ, [prior, lucky], "m")
    assert choice.mae["lucky"] < choice.mae["prior"]
    assert (choice.name, choice.prior) == ("prior", "prior")
    assert "the prior model, none clearly better" in describe(choice)
    steady = _constant("steady", [105.0, 95.0, 105.0, 95.0, 105.0, 95.0, 105.0])
    choice = choose(series, ORIGIN, TZ, [prior, lucky, steady], "m")
    assert choice.name == "steady"
    assert "clearly better than prior day by day" in describe(choice)


def test_without_a_comparable_prior_the_least_mae_wins() -> None:
    series = _flat_week_before(100.0)
    a = _constant("a", [120.0] * 7)
    b = _constant("b", [101.0, 99.0, 101.0, 150.0, 99.0, 101.0, 99.0])
    choice = choose(series, ORIGIN, TZ, [a, b], "m")
    assert (choice.name, choice.prior) == ("b", None)
    assert "least MAE" in describe(choice)


def test_pv_s_prior_is_the_blend_only_with_a_forecast_of_the_sky() -> None:
    site = PvSite(500.0, 31.23, 121.47)
    index = pd.date_range(ORIGIN, periods=4, freq=STEP)

    def prior(weather: pd.DataFrame | None) -> list[str]:
        return [c.name for c in pv_candidates("b/pv", TZ, site, weather, OPTIONS) if c.prior]

    assert prior(None) == ["clearsky"]
    assert prior(pd.DataFrame({"outdoor_c": 20.0}, index=index)) == ["clearsky"]
    assert prior(pd.DataFrame({"cloud_cover_pct": 40.0}, index=index)) == ["clearsky+boosted"]
    assert [c.name for c in demand_candidates("b/main", TZ, None, OPTIONS) if c.prior] == [
        "profile+boosted"
    ]
