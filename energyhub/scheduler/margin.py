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
from datetime import datetime, timedelta
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
    first, last = planned.index.min().floor(freq), planned.index.max().floor(freq)
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
) -> PeakMargin:
    """`bands_kw` (the bands' margin per step) floored at the P90 of the connection's measured
    import error over `config.window` before `at`, within the connection's import limit."""
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
    margin = bands_kw.clip(lower=p90).clip(upper=limit)
    floored = int((bands_kw < p90).sum())
    summary.update(
        source="measured" if floored else "bands",
        measured_p90_kw=p90,
        floored_steps=floored,
        median_kw=_median(margin),
    )
    if not config.reserve:
        return PeakMargin(margin, summary, [])
    p99 = max(float(np.quantile(errors.to_numpy(), RESERVE_QUANTILE)), 0.0)
    summary.update(reserve_p99_kw=p99)
    return PeakMargin(margin, summary, [], margin.clip(lower=p99).clip(upper=limit))


def _no_errors() -> pd.Series:
    return pd.Series(dtype="float64", index=pd.DatetimeIndex([], tz="UTC", name="ts"))


def _median(series: pd.Series) -> float | None:
    return float(series.median()) if len(series) else None
