"""P10/P90 bands from out-of-sample errors, and the scores of a band: pinball loss and coverage.

A band is the median forecast plus the 10th and 90th percentiles of the errors the same model
made on held-out days, per hour of the day (with the hours either side, so a 15-min series has
~80 errors per hour over a week): errors grow and shrink with the daily cycle, and PV's are
zero at night. Every model gets its band the same way, so bands compare across models.

Few held-out days make a band too narrow: a day's errors move together (a busier day is busier
all day), so one or two days show the spread within a day but not from one day to the next.
Offsets measured on fewer than `FULL_SAMPLE_DAYS` days are widened by `small_sample_widening`;
the factor was measured on the simulator and CityLearn with 2–9 days of history (bench/forecast.py
`--only short`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

Array = NDArray[np.float64]

LOW_Q, HIGH_Q = 0.1, 0.9
NEIGHBOUR_HOURS = 1
"""Hours either side pooled with each hour's errors."""
FULL_SAMPLE_DAYS = 7
"""Held-out days from which a band is taken as measured, unwidened (a week: every weekday)."""
SMALL_SAMPLE_WIDENING = 1.5
"""Widening per missing fraction of a week: offsets × (1 + this × (1/days − 1/7))."""


def small_sample_widening(days: int) -> float:
    """How much wider a band from `days` held-out days is made (1 from a week on)."""
    if days >= FULL_SAMPLE_DAYS:
        return 1.0
    return 1.0 + SMALL_SAMPLE_WIDENING * (1.0 / max(days, 1) - 1.0 / FULL_SAMPLE_DAYS)


@dataclass(frozen=True, slots=True)
class ErrorQuantiles:
    """10th and 90th percentile of actual − forecast, per UTC hour of the day (24 each)."""

    low: Array
    high: Array
    errors: int
    """How many held-out errors they came from (0: no band could be measured)."""
    days: int = FULL_SAMPLE_DAYS
    """How many held-out days (fewer than a week: the offsets are widened)."""

    def band(self, index: pd.DatetimeIndex, median: Array) -> tuple[Array, Array]:
        hours = np.asarray(index.tz_convert("UTC").hour, dtype=np.int64)
        return median + self.low[hours], median + self.high[hours]


NO_BAND = ErrorQuantiles(np.zeros(24), np.zeros(24), 0, 0)


def error_quantiles(
    index: pd.DatetimeIndex, actual: Array, forecast: Array, days: int = FULL_SAMPLE_DAYS
) -> ErrorQuantiles:
    """Band offsets from `days` held-out days' errors, widened if they are fewer than a week;
    hours with no error of their own borrow the overall."""
    errors = np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float)
    ok = np.isfinite(errors)
    if not ok.any():
        return NO_BAND
    hours = np.asarray(index.tz_convert("UTC").hour, dtype=np.int64)[ok]
    errors = errors[ok]
    overall = np.quantile(errors, [LOW_Q, HIGH_Q])
    low, high = np.empty(24), np.empty(24)
    for hour in range(24):
        near = np.abs((hours - hour + 12) % 24 - 12) <= NEIGHBOUR_HOURS
        q = np.quantile(errors[near], [LOW_Q, HIGH_Q]) if near.sum() >= 8 else overall
        low[hour], high[hour] = min(q[0], 0.0), max(q[1], 0.0)
    widen = small_sample_widening(days)
    return ErrorQuantiles(low * widen, high * widen, int(ok.sum()), days)


def pinball(actual: Array, forecast: Array, quantile: float) -> float:
    """Mean pinball (quantile) loss over finite pairs, in the series' unit."""
    a, f = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    ok = np.isfinite(a) & np.isfinite(f)
    diff = a[ok] - f[ok]
    if not ok.any():
        return float("nan")
    return float(np.mean(np.maximum(quantile * diff, (quantile - 1.0) * diff)))


def coverage(actual: Array, low: Array, high: Array) -> float:
    """Share of finite actual values inside [low, high]."""
    a = np.asarray(actual, dtype=float)
    ok = np.isfinite(a) & np.isfinite(low) & np.isfinite(high)
    if not ok.any():
        return float("nan")
    return float(np.mean((a[ok] >= low[ok]) & (a[ok] <= high[ok])))


COVERAGE_WINDOW = pd.Timedelta(days=7)
"""How far back a plan counts the metered values that fell inside earlier plans' bands."""


def band_coverage(bands: pd.DataFrame, metered: dict[str, pd.Series]) -> dict[str, object]:
    """Per column and overall: metered values inside [p10, p90] of the band issued for them.

    `bands` is long (ts, name, p10, p90); `metered` the histories the forecasts learnt from.
    """
    columns: dict[str, dict[str, float | int]] = {}
    inside_all = count_all = 0
    for name, rows in bands.groupby("name", sort=True):
        series = metered.get(str(name))
        if series is None:
            continue
        actual = series.reindex(pd.DatetimeIndex(rows["ts"])).to_numpy(dtype=float)
        ok = np.isfinite(actual)
        count = int(ok.sum())
        if count == 0:
            continue
        p10 = rows["p10"].to_numpy(dtype=float)[ok]
        p90 = rows["p90"].to_numpy(dtype=float)[ok]
        inside = int(np.sum((actual[ok] >= p10 - 1e-9) & (actual[ok] <= p90 + 1e-9)))
        columns[str(name)] = {"inside": inside, "count": count, "share": inside / count}
        inside_all += inside
        count_all += count
    total: dict[str, float | int] = {"inside": inside_all, "count": count_all}
    if count_all:
        total["share"] = inside_all / count_all
    return {"window_days": COVERAGE_WINDOW.days, "total": total, "columns": columns}
