"""Forecast benchmark: day-ahead backtests on measured data against seasonal-naive, same run.

    .venv/bin/python bench/forecast.py [--days 60] [--buildings 17] [--history-days 28]

Every day of the test period, at local midnight, energyhub's forecasts (`energyhub/forecast/`)
predict the next 24 hours from the history before midnight only; so do the seasonal-naive
baselines (the same time one day earlier, and one week earlier). Printed: NMAE = Σ|error| / Σ
actual over all forecast steps, and the ratio of energyhub's NMAE to the better naive one
(< 1: energyhub is better).

- PV: NREL's measured AC power of the SERF east array, 15-min, July–October 2016
  (`pvanalytics/data/serf_east_15min_ac_power.csv`, Golden CO, 39.742 N 105.173 W); the peak
  used for clipping is the history's maximum.
- Building electricity: CityLearn 2.1.2's `citylearn_challenge_2022_phase_all` buildings,
  hourly equipment electricity for a year, with the same folder's measured outdoor temperature
  as history (the future temperature is energyhub's own forecast from that history, as in
  operation: no weather service).

The data ship inside the PyPI packages; only their CSV files are read (`pip install
pvanalytics` and `pip install --no-deps citylearn==2.1.2`). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from energyhub.forecast.profile import (
    ForecastOptions,
    History,
    forecast_demand,
    forecast_outdoor,
    forecast_pv,
    nmae,
    seasonal_naive,
)

SERF_LATITUDE_DEG = 39.742
SERF_LONGITUDE_DEG = -105.1727
SERF_TZ = ZoneInfo("Etc/GMT+7")
"""The SERF file's timestamps carry −07:00 throughout."""
CITYLEARN_TZ = ZoneInfo("Etc/GMT+8")
"""CityLearn's hours are local standard time; its first row is hour 24 of a Sunday, 31 July."""
CITYLEARN_FIRST_STEP = pd.Timestamp("2016-07-31 23:00", tz=CITYLEARN_TZ)


def package_data(package: str, *parts: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"bench/forecast.py needs the package {package!r} (see the docstring)")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the installed {package}")
    return path


def load_serf() -> pd.Series:
    frame = pd.read_csv(package_data("pvanalytics", "data", "serf_east_15min_ac_power.csv"))
    index = pd.DatetimeIndex(pd.to_datetime(frame["measured_on"], utc=True))
    return pd.Series(frame["ac_power"].to_numpy() / 1000.0, index=index, name="serf_kw")


def load_citylearn(buildings: int) -> tuple[dict[str, pd.Series], pd.Series]:
    folder = ("data", "citylearn_challenge_2022_phase_all")
    weather = pd.read_csv(package_data("citylearn", *folder, "weather.csv"))
    index = pd.date_range(CITYLEARN_FIRST_STEP, periods=len(weather), freq="1h").tz_convert("UTC")
    outdoor = pd.Series(weather["Outdoor Drybulb Temperature [C]"].to_numpy(), index=index)
    loads = {}
    for number in range(1, buildings + 1):
        frame = pd.read_csv(package_data("citylearn", *folder, f"Building_{number}.csv"))
        weekday = pd.DatetimeIndex(index).tz_convert(CITYLEARN_TZ).day_of_week + 1
        workdays = frame["Day Type"].to_numpy() <= 7
        assert (weekday.to_numpy()[workdays] == frame["Day Type"].to_numpy()[workdays]).all()
        values = frame["Equipment Electric Power [kWh]"].to_numpy(dtype=float)
        loads[f"Building_{number}"] = pd.Series(values, index=index)
    return loads, outdoor


def midnights(series: pd.Series, tz: ZoneInfo, history_days: int, days: int) -> list[pd.Timestamp]:
    """Forecast origins: local midnights with `history_days` before and a whole day after."""
    local = pd.DatetimeIndex(series.index).tz_convert(tz)
    first = (local[0] + pd.Timedelta(days=history_days)).ceil("1D")
    last = (local[-1] - pd.Timedelta(days=1)).floor("1D")
    origins = pd.date_range(first, last, freq="1D")
    return [pd.Timestamp(t).tz_convert("UTC") for t in origins[-days:]]


def window(series: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    return series[(series.index >= start) & (series.index < end)]


def bench_pv(days: int, history_days: int) -> tuple[str, int, float, float, float]:
    series = load_serf()
    step = pd.Timedelta(minutes=15)
    options = ForecastOptions(latitude_deg=SERF_LATITUDE_DEG, longitude_deg=SERF_LONGITUDE_DEG)
    actual, ours, naive_day, naive_week = [], [], [], []
    for now in midnights(series, SERF_TZ, history_days, days):
        history = window(series, now - pd.Timedelta(days=history_days), now)
        steps = pd.date_range(now, periods=96, freq=step)
        result = forecast_pv(
            History(history, "serf/ac_power"),
            steps,
            column="serf:available_kw",
            peak_kw=float(history.max()),
            now=now,
            options=options,
        )
        actual.append(series.reindex(steps).clip(lower=0.0))
        ours.append(result.values)
        naive_day.append(seasonal_naive(series, steps, timedelta(days=1)).clip(lower=0.0))
        naive_week.append(seasonal_naive(series, steps, timedelta(days=7)).clip(lower=0.0))
    count = len(actual)
    a = pd.concat(actual)
    return (
        "NREL SERF east PV, 15 min",
        count,
        nmae(a, pd.concat(ours)),
        nmae(a, pd.concat(naive_day)),
        nmae(a, pd.concat(naive_week)),
    )


def bench_loads(
    days: int, buildings: int, history_days: int
) -> tuple[str, int, float, float, float]:
    loads, outdoor = load_citylearn(buildings)
    options = ForecastOptions()
    actual, ours, naive_day, naive_week = [], [], [], []
    count = 0
    for name, series in loads.items():
        for now in midnights(series, CITYLEARN_TZ, history_days, days):
            start = now - pd.Timedelta(days=history_days)
            steps = pd.date_range(now, periods=24, freq="1h")
            past_c = window(outdoor, start, now)
            future_c = forecast_outdoor(
                History(past_c, "weather/outdoor"), steps, now=now, tz=CITYLEARN_TZ
            ).values
            result = forecast_demand(
                History(window(series, start, now), f"{name}/equipment"),
                steps,
                column=f"{name}:electricity_kw",
                now=now,
                tz=CITYLEARN_TZ,
                outdoor=(past_c, future_c),
                options=options,
            )
            actual.append(series.reindex(steps))
            ours.append(result.values)
            naive_day.append(seasonal_naive(series, steps, timedelta(days=1)))
            naive_week.append(seasonal_naive(series, steps, timedelta(days=7)))
            count += 1
    a = pd.concat(actual)
    return (
        f"CityLearn 2022 equipment electricity, {buildings} buildings, 1 h",
        count,
        nmae(a, pd.concat(ours)),
        nmae(a, pd.concat(naive_day)),
        nmae(a, pd.concat(naive_week)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60, help="Forecast days per series (latest).")
    parser.add_argument("--buildings", type=int, default=17, choices=range(1, 18))
    parser.add_argument("--history-days", type=int, default=28)
    args = parser.parse_args()
    print(
        f"{'dataset':<58} {'forecasts':>9} {'energyhub':>10} {'naive 1d':>9} {'naive 7d':>9} "
        f"{'ratio':>6}  (NMAE; ratio = energyhub / better naive)"
    )
    for run in (
        lambda: bench_pv(args.days, min(args.history_days, 14)),
        lambda: bench_loads(args.days, args.buildings, args.history_days),
    ):
        started = time.perf_counter()
        name, count, ours, day, week = run()
        ratio = ours / min(day, week)
        print(
            f"{name:<58} {count:>9} {ours:>10.3f} {day:>9.3f} {week:>9.3f} {ratio:>6.2f}  "
            f"({time.perf_counter() - started:.1f} s)"
        )
    print(f"numpy {np.__version__}, pandas {pd.__version__}")


if __name__ == "__main__":
    main()
