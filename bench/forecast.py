"""Forecast benchmark: rolling-origin day-ahead backtests on measured and simulated series.

    flock /tmp/energyhub-bench.lock .venv/bin/python bench/forecast.py \\
        [--days 21] [--buildings 17] [--history-days 28] [--park 100]

Every day of the test period (the last `--days` days of each series), at local midnight, every
model is fitted on the `--history-days` before that midnight only and forecasts the next day;
"chosen" is the per-meter choice the scheduler makes (`energyhub/forecast/select.py`: the
candidates compete on the 7 days before the origin, the least MAE wins). The naive forecasts are
the same time one day and one week earlier. Printed per data set and model: NMAE = Σ|error| /
Σ|actual| over all forecast steps and its ratio to the better naive forecast (< 1: better), and
for the chosen model's P10–P90 band its coverage (share of actual values inside). Targets
(issue #22): chosen ≤ 0.65× the better naive for building electricity, ≤ 0.70× for PV at
15 min; coverage within 70–90 %.

- PV: NREL's measured AC power of the SERF east array, 15-min, July–October 2016
  (`pvanalytics/data/serf_east_15min_ac_power.csv`, Golden CO, 39.742 N 105.173 W); the peak
  is the history's maximum. No weather forecast ships with it: without weather, and with the
  NSRDB PSM3 satellite GHI of the same months (`serf_east_psm3_data.csv`) in the forecast's
  place: measured, so a bound on what a perfect irradiance forecast gives, not a forecast figure.
- PV: CityLearn 2.1.2's `citylearn_challenge_2022_phase_all`, the 17 homes' metered
  generation (W per kW installed, hourly, a year; Fontana CA, 34.09 N 117.43 W), without
  weather and with the weather file's "24h Prediction" irradiance columns (direct normal ×
  cos z + diffuse). Those columns are exactly the file's own values 24 h later (checked), so
  not a forecast; and that irradiance is not the homes' sky (it peaks ~1 h after their
  output and reaches ~1.6× clear sky), so not a bound either: the row shows what it is worth.
  The other CityLearn sets' predictions are their actuals plus noise (2020, 2021: ~6 %;
  2023: ~24 % at 24 h) over simulated PV; pvanalytics' PVDAQ system 50 has unlabelled clock
  shifts (the file exists to test their detection): neither is used.
- Building electricity: CityLearn 2.1.2's `citylearn_challenge_2022_phase_all` buildings,
  hourly equipment electricity for a year, with the same folder's measured outdoor temperature
  (taken as the temperature forecast: perfect, so the loads' figures are a bound on what a
  temperature forecast adds).
- Simulator (`simulators/`): 15-min electricity of one building per class and a PV array under
  the simulated Shanghai weather, without and with a weather forecast fed from the simulated
  weather (the day's mean clear-sky index, perturbed by N(0, 0.1): not the passing clouds).
- Park timing: forecasting a `--park`-building simulated park for the next day at 15 min, with
  the fits (cold), and with the day's fits cached (warm, as the scheduler re-plans), each as a
  ratio to the profile model alone in the same process. Target: ≤ 10 s on 2 cores.

The data ship inside the PyPI packages; only their CSV files are read (`pip install
pvanalytics` and `pip install --no-deps citylearn==2.1.2`). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from energyhub.forecast.backtest import (
    CHOSEN,
    CORRECTED,
    DAY_AHEAD,
    FROM_ORIGIN,
    NAIVE_DAY,
    NAIVE_WEEK,
    IntradayBacktest,
    SeriesBacktest,
    backtest_intraday,
    backtest_series,
)
from energyhub.forecast.gbm import PvSite
from energyhub.forecast.profile import ForecastOptions, History, forecast_demand
from energyhub.forecast.select import ModelCache, demand_candidates, forecast_chosen, pv_candidates
from energyhub.forecast.solar import cos_zenith
from energyhub.sites import Building, parse_site
from simulators.plant import rng_for
from simulators.profiles import PROFILES, building_loads, occupancy_fraction
from simulators.weather import (
    TimeGrid,
    clear_sky_ghi_w_m2,
    clearness,
    outdoor_temperature_c,
    pv_power_kw,
)

SERF_LATITUDE_DEG = 39.742
SERF_LONGITUDE_DEG = -105.1727
SERF_TZ = ZoneInfo("Etc/GMT+7")
"""The SERF file's timestamps carry −07:00 throughout."""
CITYLEARN_TZ = ZoneInfo("Etc/GMT+8")
"""CityLearn's hours are local standard time; its first row is hour 24 of a Sunday, 31 July."""
CITYLEARN_FIRST_STEP = pd.Timestamp("2016-07-31 23:00", tz=CITYLEARN_TZ)
SHANGHAI = ZoneInfo("Asia/Shanghai")
SIM_START = datetime(2025, 4, 1, tzinfo=SHANGHAI)
SIM_PV_PEAK_KW = 400.0
CITYLEARN_PV_LATITUDE_DEG = 34.09
CITYLEARN_PV_LONGITUDE_DEG = -117.43
"""Fontana, California: the Sierra Crest homes of CityLearn's 2022 challenge."""
CITYLEARN_PV_FOLDER = ("data", "citylearn_challenge_2022_phase_all")
MODELS = (
    "profile", "clearsky", "boosted", "profile+boosted", "clearsky+boosted", "yesterday", CHOSEN,
    NAIVE_DAY, NAIVE_WEEK,
)  # fmt: skip


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
    series = pd.Series(frame["ac_power"].to_numpy() / 1000.0, index=index, name="serf_kw")
    full = pd.date_range(index[0], index[-1], freq="15min")
    return series.reindex(full).clip(lower=0.0)


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


def window(series: pd.Series, days: int, history_days: int) -> pd.Series:
    """The last `days` whole days with the `history_days` before them (and a week for naive)."""
    keep = pd.Timedelta(days=days + history_days + 8)
    return series[series.index >= series.index[-1] - keep]


class Pooled:
    """Scores of several series pooled by their actual totals (NMAE of the whole set)."""

    def __init__(self) -> None:
        self.error: dict[str, float] = {}
        self.actual: dict[str, float] = {}
        self.inside = 0.0
        self.steps = 0
        self.forecasts = 0
        self.chosen: dict[str, int] = {}

    def add(self, result: SeriesBacktest, actual_abs_sum: float) -> None:
        self.forecasts += result.origins
        for name, score in result.scores.items():
            self.error[name] = self.error.get(name, 0.0) + score.nmae * actual_abs_sum
            self.actual[name] = self.actual.get(name, 0.0) + actual_abs_sum
        if result.band is not None and CHOSEN in result.scores:
            steps = result.scores[CHOSEN].steps
            self.inside += result.band.coverage * steps
            self.steps += steps
        for name, count in result.chosen.items():
            self.chosen[name] = self.chosen.get(name, 0) + count

    def nmae(self, name: str) -> float:
        return self.error.get(name, np.nan) / self.actual.get(name, np.nan)

    def row(self, label: str, seconds: float) -> str:
        naive = min(self.nmae(NAIVE_DAY), self.nmae(NAIVE_WEEK))
        cells = " ".join(f"{self.nmae(m):>9.3f}" for m in MODELS)
        ratio = self.nmae(CHOSEN) / naive
        coverage = self.inside / self.steps if self.steps else np.nan
        chosen = " ".join(f"{k} {v}" for k, v in sorted(self.chosen.items()))
        return (
            f"{label:<44} {self.forecasts:>5} {cells} {ratio:>6.2f} {coverage:>6.0%}  "
            f"({seconds:.0f} s; chosen: {chosen})"
        )


def _actual_sum(series: pd.Series, result: SeriesBacktest, tz: ZoneInfo, days: int) -> float:
    local_end = series.index[-1].tz_convert(tz).floor("D")
    start = (local_end - pd.Timedelta(days=result.origins)).tz_convert("UTC")
    end = local_end.tz_convert("UTC")
    part = series[(series.index >= start) & (series.index < end)]
    return float(part.abs().sum())


def load_serf_psm3(index: pd.DatetimeIndex) -> pd.DataFrame:
    """NSRDB PSM3 satellite GHI at SERF over the same months: measured, not forecast."""
    frame = pd.read_csv(package_data("pvanalytics", "data", "serf_east_psm3_data.csv"))
    times = pd.DatetimeIndex(pd.to_datetime(frame["measured_on"], utc=True))
    ghi = pd.Series(frame["ghi"].to_numpy(dtype=float), index=times)
    return pd.DataFrame({"ghi_w_m2": ghi.reindex(index)})


def load_citylearn_pv(buildings: int) -> tuple[dict[str, pd.Series], pd.DataFrame]:
    """Measured PV of the 2022 buildings (kW per kW installed) and the weather file's 24 h
    prediction as GHI: its row t predicts t + 24 h; direct (normal) × cos z + diffuse."""
    weather = pd.read_csv(package_data("citylearn", *CITYLEARN_PV_FOLDER, "weather.csv"))
    index = pd.date_range(CITYLEARN_FIRST_STEP, periods=len(weather), freq="1h").tz_convert("UTC")
    sun = np.clip(cos_zenith(index + pd.Timedelta(minutes=30), CITYLEARN_PV_LATITUDE_DEG,
                             CITYLEARN_PV_LONGITUDE_DEG), 0.0, None)  # fmt: skip
    direct = weather["24h Prediction Direct Solar Radiation [W/m2]"].shift(24).to_numpy()
    diffuse = weather["24h Prediction Diffuse Solar Radiation [W/m2]"].shift(24).to_numpy()
    forecast = pd.DataFrame({"ghi_w_m2": direct * sun + diffuse}, index=index)
    pv = {}
    for number in range(1, buildings + 1):
        frame = pd.read_csv(
            package_data("citylearn", *CITYLEARN_PV_FOLDER, f"Building_{number}.csv")
        )
        values = frame["Solar Generation [W/kW]"].to_numpy(dtype=float) / 1000.0
        pv[f"Building_{number}"] = pd.Series(values, index=index)
    return pv, forecast


def _pv_row(
    label: str,
    series: dict[str, pd.Series],
    tz: ZoneInfo,
    site: Callable[[pd.Series], PvSite],
    weather: pd.DataFrame | None,
    options: ForecastOptions,
    days: int,
    history_days: int,
) -> str:
    started = time.perf_counter()
    pooled = Pooled()
    for name, values in series.items():
        part = window(values, days, history_days)
        pv = site(part)
        result = backtest_series(
            part, tz, pv_candidates(name, tz, pv, weather, options), label=name, days=days,
            history=pd.Timedelta(days=history_days), upper_kw=pv.peak_kw,
        )  # fmt: skip
        pooled.add(result, _actual_sum(part, result, tz, days))
    return pooled.row(label, time.perf_counter() - started)


def bench_pv(days: int, history_days: int, buildings: int) -> list[str]:
    """SERF and CityLearn's measured PV, without and with irradiance that was measured (the
    bound a perfect weather forecast would reach: neither ships a genuine forecast)."""
    serf = {"serf": load_serf()}
    serf_options = ForecastOptions(latitude_deg=SERF_LATITUDE_DEG, longitude_deg=SERF_LONGITUDE_DEG)

    def serf_site(part: pd.Series) -> PvSite:
        return PvSite(float(part.max()), SERF_LATITUDE_DEG, SERF_LONGITUDE_DEG)

    psm3 = load_serf_psm3(pd.DatetimeIndex(serf["serf"].index))
    pv, forecast = load_citylearn_pv(buildings)
    cl_options = ForecastOptions(
        latitude_deg=CITYLEARN_PV_LATITUDE_DEG, longitude_deg=CITYLEARN_PV_LONGITUDE_DEG
    )

    def cl_site(_part: pd.Series) -> PvSite:  # the series are kW per kW installed
        return PvSite(1.0, CITYLEARN_PV_LATITUDE_DEG, CITYLEARN_PV_LONGITUDE_DEG)

    serf_args = (serf, SERF_TZ, serf_site)
    cl_args = (pv, CITYLEARN_TZ, cl_site)
    cl = f"CityLearn 2022 PV, {buildings} bldgs, 1 h"
    return [
        _pv_row("NREL SERF east PV, 15 min, no weather fcst", *serf_args, None, serf_options,
                days, history_days),
        _pv_row("  + PSM3 satellite GHI (measured: bound)", *serf_args, psm3, serf_options,
                days, history_days),
        _pv_row(f"{cl}, no weather fcst", *cl_args, None, cl_options, days, history_days),
        _pv_row("  + file's 24 h prediction (its own later values)", *cl_args, forecast, cl_options,
                days, history_days),
    ]  # fmt: skip


def bench_loads(days: int, buildings: int, history_days: int) -> str:
    started = time.perf_counter()
    loads, outdoor = load_citylearn(buildings)
    weather = pd.DataFrame({"outdoor_c": outdoor})
    pooled = Pooled()
    for name, series in loads.items():
        part = window(series, days, history_days)
        result = backtest_series(
            part, CITYLEARN_TZ, demand_candidates(name, CITYLEARN_TZ, weather, ForecastOptions()),
            label=name, days=days, history=pd.Timedelta(days=history_days),
        )  # fmt: skip
        pooled.add(result, _actual_sum(part, result, CITYLEARN_TZ, days))
    label = f"CityLearn 2022 electricity, {buildings} bldgs, 1 h"
    naive = min(pooled.nmae(NAIVE_DAY), pooled.nmae(NAIVE_WEEK))
    oracle = day_energy_oracle_nmae(loads, days, history_days)
    return (
        pooled.row(label, time.perf_counter() - started)
        + f"\n  reference: each day's metered energy known in advance, shaped by the mean hour of "
        f"the {history_days} days before, NMAE {oracle:.3f}, ratio {oracle / naive:.2f} (not a "
        "forecast: what knowing the day's total alone is worth)"
    )


def day_energy_oracle_nmae(loads: dict[str, pd.Series], days: int, history_days: int) -> float:
    """NMAE over the last `days` local days of a forecast that knows each day's metered energy
    and spreads it by the mean hourly shape of the `history_days` before the day. It bounds
    nothing, but a day-ahead model that cannot know the day's total is unlikely to beat it by
    much on hour-level noise: a reference for how hard the set is."""
    error = actual = 0.0
    for series in loads.values():
        local = window(series, days, history_days).tz_convert(CITYLEARN_TZ)
        end = local.index[-1].floor("D")
        for back in range(days, 0, -1):
            start = end - pd.Timedelta(days=back)
            day = local[(local.index >= start) & (local.index < start + pd.Timedelta(days=1))]
            before = local[(local.index >= start - pd.Timedelta(days=history_days))
                           & (local.index < start)]  # fmt: skip
            shape = before.groupby(before.index.hour).mean()
            shape = shape / shape.mean()
            forecast = day.mean() * shape.reindex(day.index.hour).to_numpy()
            error += float(np.abs(day.to_numpy() - forecast).sum())
            actual += float(np.abs(day.to_numpy()).sum())
    return error / actual


def park_buildings(buildings: int) -> list[Building]:
    """`buildings` buildings cycling through the simulator's classes."""
    classes = sorted(PROFILES)
    doc_buildings = [
        {
            "id": f"b{i:03d}",
            "class": classes[i % len(classes)],
            "floor_area_m2": 8000 + 500 * (i % 7),
        }
        for i in range(buildings)
    ]
    site = parse_site(
        {"version": 1, "timezone": "Asia/Shanghai", "city": {"id": "c", "parks": [
            {"id": "p", "grid": {"import_max_kw": 1e6}, "buildings": doc_buildings}]}},
        "bench",
    )  # fmt: skip
    return site.city.parks[0].buildings


def noise_floor_nmae(buildings: int, days: int, test_days: int) -> float:
    """NMAE over the last `test_days` of the simulator's electricity forecast by its own noiseless
    load (class profile × floor area, without the AR(1) wobble and the meter noise): no model
    can do better on average, so this bounds the loads' ratio from below."""
    grid, loads, _ = simulated_park(buildings, days)
    error = actual = 0.0
    for building in park_buildings(buildings):
        profile = PROFILES[building.building_class]
        occupied = occupancy_fraction(profile, grid)
        noiseless = building.floor_area_m2 * (profile.base_w_m2 + profile.occupied_w_m2 * occupied)
        metered = loads[building.id].to_numpy()[-96 * test_days :]
        error += float(np.abs(metered - noiseless[-96 * test_days :] / 1000.0).sum())
        actual += float(np.abs(metered).sum())
    return error / actual


def simulated_park(
    buildings: int, days: int, seed: int = 7
) -> tuple[TimeGrid, dict[str, pd.Series], pd.DataFrame]:
    """Electricity of `buildings` buildings cycling through the classes, and the weather."""
    grid = TimeGrid(SIM_START, 900.0, 96 * days)
    index = pd.date_range(
        pd.Timestamp(SIM_START).tz_convert("UTC"), periods=grid.steps, freq="15min"
    )
    rng = rng_for(seed, "weather")
    outdoor = outdoor_temperature_c(grid, rng)
    clear = clear_sky_ghi_w_m2(grid)
    ghi = clear * clearness(grid, rng)
    loads = {}
    for building in park_buildings(buildings):
        electric = building_loads(building, grid, outdoor, rng_for(seed, building.id)).electric_kw
        noise = 1 + 0.02 * rng_for(seed, building.id, "meter").standard_normal(grid.steps)
        loads[building.id] = pd.Series(electric * noise, index=index)
    pv = pv_power_kw(SIM_PV_PEAK_KW, ghi, outdoor)
    loads["pv"] = pd.Series(pv, index=index)
    days_of = np.arange(grid.steps) // 96
    with np.errstate(invalid="ignore", divide="ignore"):
        daily_index = (
            pd.Series(ghi).groupby(days_of).sum() / pd.Series(clear).groupby(days_of).sum()
        )
    noisy = np.clip(
        daily_index.to_numpy()[days_of]
        + 0.1 * rng_for(seed, "fc").standard_normal(days_of.max() + 1)[days_of],
        0.05,
        1.0,
    )
    weather = pd.DataFrame(
        {"outdoor_c": outdoor, "ghi_w_m2": clear * noisy, "cloud_cover_pct": 100 * (1 - noisy)},
        index=index,
    )
    return grid, loads, weather


def bench_simulated(days: int, history_days: int) -> list[str]:
    started = time.perf_counter()
    classes = len(PROFILES)
    _, loads, weather = simulated_park(classes, days + history_days + 9)
    options = ForecastOptions()
    pooled = Pooled()
    for name, series in loads.items():
        if name == "pv":
            continue
        result = backtest_series(
            series, SHANGHAI, demand_candidates(name, SHANGHAI, weather[["outdoor_c"]], options),
            label=name, days=days, history=pd.Timedelta(days=history_days),
        )  # fmt: skip
        pooled.add(result, _actual_sum(series, result, SHANGHAI, days))
    floor = noise_floor_nmae(classes, days + history_days + 9, days)
    naive = min(pooled.nmae(NAIVE_DAY), pooled.nmae(NAIVE_WEEK))
    rows = [
        pooled.row(
            f"simulator electricity, {classes} classes, 15 min", time.perf_counter() - started
        ),
        f"  noise floor: the simulator's noiseless load as the forecast, NMAE {floor:.3f}, "
        f"ratio {floor / naive:.2f} (no forecast can do better on average)",
    ]
    site = PvSite(SIM_PV_PEAK_KW, 31.23, 121.47)
    for label, frame in (("simulator PV, 15 min, no weather forecast", None),
                         ("simulator PV, 15 min, weather forecast", weather)):  # fmt: skip
        started = time.perf_counter()
        result = backtest_series(
            loads["pv"], SHANGHAI, pv_candidates("pv", SHANGHAI, site, frame, options),
            label="pv", days=days, history=pd.Timedelta(days=history_days), upper_kw=SIM_PV_PEAK_KW,
        )  # fmt: skip
        one = Pooled()
        one.add(result, _actual_sum(loads["pv"], result, SHANGHAI, days))
        rows.append(one.row(label, time.perf_counter() - started))
    return rows


def bench_park(buildings: int, history_days: int) -> str:
    """Seconds to forecast every building of a park for the next day: profile alone, chosen
    with its fits, chosen from the day's cached fits."""
    _, loads, weather = simulated_park(buildings, history_days + 1)
    loads.pop("pv")
    now = pd.Timestamp(SIM_START + pd.Timedelta(days=history_days)).tz_convert("UTC")
    steps = pd.date_range(now, periods=96, freq="15min")
    frame = weather[["outdoor_c"]]
    past = {n: s[s.index < now] for n, s in loads.items()}
    options = ForecastOptions()

    def profile_only() -> None:
        for name, history in past.items():
            forecast_demand(
                History(history, name), steps, column=name, now=now, tz=SHANGHAI,
                outdoor=(frame["outdoor_c"].reindex(history.index), frame["outdoor_c"].reindex(steps)),
                options=options, cleaned=True,
            )  # fmt: skip

    def chosen(cache: ModelCache) -> None:
        for name, history in past.items():
            forecast_chosen(
                history, steps, column=name, now=now, tz=SHANGHAI,
                candidates=demand_candidates(name, SHANGHAI, frame, options), label=name,
                cache=cache, weather=frame,
            )  # fmt: skip

    timings = []
    cache = ModelCache()
    for run in (profile_only, lambda: chosen(cache), lambda: chosen(cache)):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    base, cold, warm = timings
    return (
        f"park of {buildings} buildings, next day at 15 min, {history_days} d history: profile "
        f"alone {base:.1f} s; chosen with fits {cold:.1f} s ({cold / base:.1f}×); chosen from "
        f"the day's cached fits {warm:.1f} s ({warm / base:.1f}×)"
    )


INTRADAY_MODELS = (FROM_ORIGIN, DAY_AHEAD, CORRECTED, NAIVE_DAY, NAIVE_WEEK)


def intraday_rows(label: str, results: list[IntradayBacktest], seconds: float) -> list[str]:
    """Pooled NMAE per horizon: the model from t, day-ahead, corrected, the naives; coverage."""
    rows = []
    origins = sum(r.origins for r in results)
    for horizon in ("next 4 h", "rest of day"):

        def pooled(name: str, h: str = horizon) -> float:
            error = sum(r.error.get((h, name), 0.0) for r in results)
            actual = sum(r.actual.get((h, name), 0.0) for r in results)
            return error / actual if actual else np.nan

        def share(name: str, h: str = horizon) -> float:
            inside = sum(r.inside.get((h, name), 0) for r in results)
            count = sum(r.count.get((h, name), 0) for r in results)
            return inside / count if count else np.nan

        naive = min(pooled(NAIVE_DAY), pooled(NAIVE_WEEK))
        cells = " ".join(f"{pooled(m):>12.3f}" for m in INTRADAY_MODELS)
        rows.append(
            f"{label if horizon == 'next 4 h' else '':<44} {origins:>5} {horizon:<11} {cells} "
            f"{pooled(DAY_AHEAD) / naive:>6.2f} {pooled(CORRECTED) / naive:>6.2f} "
            f"{share(DAY_AHEAD):>6.0%} {share(CORRECTED):>6.0%}"
            + (f"  ({seconds:.0f} s)" if horizon == "next 4 h" else "")
        )
    return rows


def bench_intraday(days: int, history_days: int, buildings: int) -> list[str]:
    """Re-plans every 4 h of each test day on CityLearn's loads, SERF PV and the simulator."""
    header = " ".join(f"{m:>12}" for m in INTRADAY_MODELS)
    rows = [
        f"{'intraday NMAE (re-plans every 4 h)':<44} {'re-pl':>5} {'horizon':<11} {header} "
        f"{'DA÷nv':>6} {'cor÷nv':>6} {'DA P':>6} {'cor P':>6}"
    ]
    history = pd.Timedelta(days=history_days)
    started = time.perf_counter()
    loads, outdoor = load_citylearn(buildings)
    weather = pd.DataFrame({"outdoor_c": outdoor})
    results = [
        backtest_intraday(
            window(series, days, history_days),
            CITYLEARN_TZ,
            demand_candidates(name, CITYLEARN_TZ, weather, ForecastOptions()),
            label=name,
            days=days,
            history=history,
        )
        for name, series in loads.items()
    ]
    label = f"CityLearn 2022 electricity, {buildings} bldgs, 1 h"
    rows += intraday_rows(label, results, time.perf_counter() - started)
    started = time.perf_counter()
    serf = window(load_serf(), days, history_days)
    options = ForecastOptions(latitude_deg=SERF_LATITUDE_DEG, longitude_deg=SERF_LONGITUDE_DEG)
    site = PvSite(float(serf.max()), SERF_LATITUDE_DEG, SERF_LONGITUDE_DEG)
    result = backtest_intraday(
        serf, SERF_TZ, pv_candidates("serf", SERF_TZ, site, None, options), label="serf",
        days=days, history=history, upper_kw=site.peak_kw,
    )  # fmt: skip
    rows += intraday_rows(
        "NREL SERF east PV, 15 min, no weather fcst", [result], time.perf_counter() - started
    )
    started = time.perf_counter()
    _, sim, sim_weather = simulated_park(len(PROFILES), days + history_days + 9)
    options = ForecastOptions()
    results = [
        backtest_intraday(
            series,
            SHANGHAI,
            demand_candidates(name, SHANGHAI, sim_weather[["outdoor_c"]], options),
            label=name,
            days=days,
            history=history,
        )
        for name, series in sim.items()
        if name != "pv"
    ]
    label = f"simulator electricity, {len(PROFILES)} classes, 15 min"
    rows += intraday_rows(label, results, time.perf_counter() - started)
    started = time.perf_counter()
    pv_site = PvSite(SIM_PV_PEAK_KW, 31.23, 121.47)
    result = backtest_intraday(
        sim["pv"], SHANGHAI, pv_candidates("pv", SHANGHAI, pv_site, None, options), label="pv",
        days=days, history=history, upper_kw=SIM_PV_PEAK_KW,
    )  # fmt: skip
    rows += intraday_rows(
        "simulator PV, 15 min, no weather fcst", [result], time.perf_counter() - started
    )
    return rows


SHORT_HISTORY_DAYS = (2, 3, 5, 9)
"""Histories of a newly connected site (the closed loop starts with 2 days)."""


def bench_short(days: int, buildings: int) -> list[str]:
    """Day-ahead with only a few days of history: the band's coverage while the history grows."""
    rows = []
    loads, outdoor = load_citylearn(buildings)
    weather = pd.DataFrame({"outdoor_c": outdoor})
    _, sim, sim_weather = simulated_park(len(PROFILES), days + 30)
    sets = [
        ("CityLearn 2022 electricity, 1 h", loads, CITYLEARN_TZ, weather),
        ("simulator electricity, 15 min", {k: v for k, v in sim.items() if k != "pv"}, SHANGHAI,
         sim_weather[["outdoor_c"]]),
    ]  # fmt: skip
    for label, series, tz, frame in sets:
        for history_days in SHORT_HISTORY_DAYS:
            started = time.perf_counter()
            pooled = Pooled()
            for name, values in series.items():
                part = window(values, days, history_days)
                result = backtest_series(
                    part, tz, demand_candidates(name, tz, frame, ForecastOptions()), label=name,
                    days=days, history=pd.Timedelta(days=history_days),
                )  # fmt: skip
                pooled.add(result, _actual_sum(part, result, tz, days))
            rows.append(
                pooled.row(f"{label}, {history_days} d history", time.perf_counter() - started)
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=21, help="Forecast days per series (latest).")
    parser.add_argument("--buildings", type=int, default=17, choices=range(1, 18))
    parser.add_argument("--history-days", type=int, default=28)
    parser.add_argument("--park", type=int, default=100, help="Buildings of the timed park.")
    parser.add_argument(
        "--only", choices=("pv", "loads", "simulator", "park", "intraday", "short"), default=None
    )
    args = parser.parse_args()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, numpy {np.__version__}, pandas {pd.__version__}"
    )
    header = " ".join(f"{m:>9}" for m in MODELS)
    print(
        f"{'NMAE by model':<44} {'fcsts':>5} {header} {'ratio':>6} {'P10-90':>6}  (ratio: chosen ÷ better naive)"
    )
    runs = {
        "pv": lambda: bench_pv(args.days, args.history_days, args.buildings),
        "loads": lambda: [bench_loads(args.days, args.buildings, args.history_days)],
        "simulator": lambda: bench_simulated(args.days, args.history_days),
        "park": lambda: [bench_park(args.park, args.history_days)],
        "intraday": lambda: bench_intraday(args.days, args.history_days, args.buildings),
        "short": lambda: bench_short(args.days, args.buildings),
    }
    for name, run in runs.items():
        if args.only == name or (args.only is None and name not in ("intraday", "short")):
            for line in run():
                print(line, flush=True)


if __name__ == "__main__":
    main()
