"""The margin a re-plan keeps under the billed peak: the forecast bands', floored at the
connection's own measured error.

The bands' margin (energyhub.scheduler.bands.peak_margin) adds the buildings' errors as if they
were independent; they are not (the buildings miss together), and the import also misses by what
the dispatch did not do as planned. So the margin of each step is at least the P90 of metered −
planned import at the connection over the recent steps the site's plans controlled: each step's
metered import against the import planned by the plan whose setpoints it ran on. Only the upward
side matters (the demand charge is on a rise); with too few such steps the bands' margin stands
and the plan says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.optimize.scope import Scope
from energyhub.plans.metered import actual_frame
from energyhub.plans.store import controlled_imports
from energyhub.store.db import Backend

MEASURED_QUANTILE = 0.9
"""The measured error's quantile the margin is floored at: the P90, as the bands are P10–P90."""
TIME_OF_DAY_H = 1.0
"""The measured error is also taken per local time of day, within this many hours of a step's:
a forecast that misses at the same hours every day (the first hours after midnight, where the
next day's forecast starts) gets its margin there, not the day's average."""
TIME_OF_DAY_MIN_STEPS = 16
"""Errors a step's time of day needs (two days' worth within ±1 h) before they count."""
RESERVE_QUANTILE = 0.99
"""The measured error's quantile the plan keeps covered by the peak reserve
(energyhub.optimize.reserve): the tail beyond the margin, exceeded at about one step a day."""


@dataclass(frozen=True, slots=True)
class MeasuredMarginConfig:
    """SCHEDULER_MEASURED_MARGIN*: on or off, how far back, how many steps at least."""

    enabled: bool = True
    window: timedelta = timedelta(days=14)
    min_steps: int = 48
    reserve: bool = True
    """Also the P99 as the peak reserve (SCHEDULER_PEAK_RESERVE)."""


@dataclass(frozen=True, slots=True)
class PeakMargin:
    """The margin per step, how it was set (the plan JSON's `peak_margin`) and a warning if the
    measured floor could not be used."""

    margin_kw: pd.Series
    summary: dict[str, Any]
    warnings: list[str]
    reserve_kw: pd.Series | None = None
    """The tail error the plan keeps covered per step (at least the margin), if measured."""


async def import_errors(
    conn: AsyncConnection,
    backend: Backend,
    scope: Scope,
    window: tuple[datetime, datetime],
    step: timedelta,
) -> pd.Series:
    """Metered − planned net import at the scope's connection per step in `window` that the
    scope's own plans controlled and the meters read (kW, indexed by step)."""
    planned = await controlled_imports(conn, scope.id, scope.grid_node, window)
    planned = planned[np.isfinite(planned["import_kw"])]
    if planned.empty:
        return _no_errors()
    freq = pd.Timedelta(step)
    first, last = planned.index.min(), planned.index.max()  # on the plans' step grid
    index = pd.date_range(first, last + freq, freq=freq, name="ts")  # ≥ 2 steps
    metered: pd.Series = (await actual_frame(conn, backend, scope, index))["import_kw"]
    error: pd.Series = metered.reindex(planned.index) - planned["import_kw"]
    return error.dropna()


REREAD = timedelta(hours=1)
"""Steps this close to the end of the last read are read again (their readings may come late)."""


@dataclass
class ImportErrorCache:
    """Each connection's import errors read so far, so that a re-plan reads only the steps since
    the one before (less REREAD) instead of the whole window: a re-plan's wall time is steps
    the loop does not control. A read before what is kept starts over."""

    found: dict[tuple[str, timedelta], pd.Series] = field(default_factory=dict)
    until: dict[tuple[str, timedelta], datetime] = field(default_factory=dict)

    async def errors(
        self,
        conn: AsyncConnection,
        backend: Backend,
        scope: Scope,
        window: tuple[datetime, datetime],
        step: timedelta,
    ) -> pd.Series:
        """import_errors over `window`, from what is kept plus the steps since."""
        key, (start, end) = (scope.id, step), window
        since = self.until.get(key)
        kept = self.found.get(key, _no_errors())
        read_from = start
        if since is not None and start <= since <= end:
            read_from = max(start, since - REREAD)
            kept = kept[
                (kept.index >= pd.Timestamp(start)) & (kept.index < pd.Timestamp(read_from))
            ]
        else:
            kept = _no_errors()
        new = await import_errors(conn, backend, scope, (read_from, end), step)
        parts = [part for part in (kept, new) if len(part)]
        self.found[key] = pd.concat(parts).sort_index() if parts else new
        self.until[key] = end
        return self.found[key]


async def peak_margin_floored(
    conn: AsyncConnection,
    backend: Backend,
    scope: Scope,
    bands_kw: pd.Series,
    at: datetime,
    step: timedelta,
    config: MeasuredMarginConfig,
    cache: ImportErrorCache | None = None,
    tz: tzinfo | str = "UTC",
) -> PeakMargin:
    """`bands_kw` (the bands' margin per step) floored at the P90 of the connection's measured
    import error over `config.window` before `at` and at the P90 of those within TIME_OF_DAY_H
    of the step's time of day in `tz`, within the connection's import limit; the reserve
    (energyhub.optimize.reserve) likewise at the P99."""
    limit = scope.grid.import_max_kw
    summary: dict[str, Any] = {
        "node": scope.grid_node,
        "source": "bands",
        "bands_median_kw": _median(bands_kw),
        "median_kw": _median(bands_kw.clip(upper=limit)),
        "measured_p90_kw": None,
        "steps": 0,
        "window_days": config.window / timedelta(days=1),
    }
    if not config.enabled:
        summary.update(reason="off (ENERGYHUB_SCHEDULER_MEASURED_MARGIN=false)")
        return PeakMargin(bands_kw.clip(upper=limit), summary, [])
    errors = await (cache or ImportErrorCache()).errors(
        conn, backend, scope, (at - config.window, at), step
    )
    summary["steps"] = len(errors)
    if len(errors) < config.min_steps:
        summary.update(reason=f"too few controlled steps (need {config.min_steps})")
        warning = (
            f"peak margin: {len(errors)} controlled step(s) of metered − planned import at "
            f"{scope.grid_node} in the last {summary['window_days']:g} d, fewer than "
            f"{config.min_steps}: the margin is the forecast bands' alone"
        )
        return PeakMargin(bands_kw.clip(upper=limit), summary, [warning])
    p90 = max(float(np.quantile(errors.to_numpy(), MEASURED_QUANTILE)), 0.0)
    at_hour = by_time_of_day(errors, pd.DatetimeIndex(bands_kw.index), tz)
    hour_p90 = at_hour.quantile(MEASURED_QUANTILE)
    margin = bands_kw.clip(lower=p90)
    raised = hour_p90 > margin
    margin = margin.where(~raised, hour_p90).clip(upper=limit)
    floored = int((bands_kw < p90).sum())
    summary.update(
        source="measured" if floored or raised.any() else "bands",
        measured_p90_kw=p90,
        floored_steps=floored,
        time_of_day_steps=int(raised.sum()),
        time_of_day_p90_max_kw=_max(hour_p90),
        median_kw=_median(margin),
    )
    if not config.reserve:
        return PeakMargin(margin, summary, [])
    p99 = max(float(np.quantile(errors.to_numpy(), RESERVE_QUANTILE)), 0.0)
    hour_p99 = at_hour.quantile(RESERVE_QUANTILE).fillna(p99)
    summary.update(reserve_p99_kw=p99, reserve_median_kw=_median(hour_p99))
    return PeakMargin(margin, summary, [], hour_p99.clip(lower=margin).clip(upper=limit))


@dataclass(frozen=True, slots=True)
class TimeOfDayErrors:
    """For each step, the measured errors within TIME_OF_DAY_H of its local time of day."""

    errors: np.ndarray
    within: np.ndarray
    index: pd.DatetimeIndex

    def quantile(self, q: float) -> pd.Series:
        """Per step, the errors' q-quantile there (NaN with fewer than TIME_OF_DAY_MIN_STEPS)."""
        out = np.full(len(self.index), np.nan)
        for i, row in enumerate(self.within):
            if row.sum() >= TIME_OF_DAY_MIN_STEPS:
                out[i] = max(float(np.quantile(self.errors[row], q)), 0.0)
        return pd.Series(out, index=self.index)


def by_time_of_day(errors: pd.Series, steps: pd.DatetimeIndex, tz: tzinfo | str) -> TimeOfDayErrors:
    """The errors grouped around each step's local time of day (the day wraps at midnight)."""

    def minute(index: pd.DatetimeIndex) -> np.ndarray:
        local = index.tz_convert(tz)
        return np.asarray(local.hour * 60 + local.minute, dtype=np.float64)

    apart = np.abs(minute(steps)[:, None] - minute(pd.DatetimeIndex(errors.index))[None, :])
    apart = np.minimum(apart, 1440.0 - apart)
    return TimeOfDayErrors(errors.to_numpy(), apart <= TIME_OF_DAY_H * 60, steps)


def _no_errors() -> pd.Series:
    return pd.Series(dtype="float64", index=pd.DatetimeIndex([], tz="UTC", name="ts"))


def _max(series: pd.Series) -> float | None:
    return float(series.max()) if series.notna().any() else None


def _median(series: pd.Series) -> float | None:
    return float(series.median()) if len(series) else None
