"""Vectorized checks of a decoded batch: finite values, not too far in the future, not too old,
within what the meter can physically read (energyhub/ingest/bounds.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from energyhub.ingest.mapping import MeterRef
from energyhub.ingest.message import BatchBuilder
from energyhub.store.batch import ReadingBatch

MICROS_PER_S = 1_000_000
TINY = float(np.finfo(np.float64).tiny)
"""Nonzero values closer to zero than the smallest normal double (denormals) are garbage, not
readings: PostgreSQL's float arithmetic on them fails with "underflow"."""


@dataclass(frozen=True)
class Limits:
    max_future_skew_s: float
    retention_days: int


@dataclass
class CounterMemory:
    """The newest reading seen of each bounded counter (ts µs, value), across batches, so a
    counter's first reading in a batch is judged against the one before it."""

    last: dict[int, tuple[int, float]] = field(default_factory=dict)


def _bound_arrays(
    meter_id: npt.NDArray[np.int32], meters: Mapping[int, MeterRef]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per reading: its meter's min and max (NaN where none)."""
    ids, inverse = np.unique(meter_id, return_inverse=True)
    refs = [meters.get(int(i)) for i in ids]
    low = np.array([np.nan if r is None or r.min_value is None else r.min_value for r in refs])
    high = np.array([np.nan if r is None or r.max_value is None else r.max_value for r in refs])
    return low[inverse], high[inverse]


def _too_steep(
    batch: ReadingBatch,
    keep: npt.NDArray[np.bool_],
    meters: Mapping[int, MeterRef],
    memory: CounterMemory,
) -> dict[int, str]:
    """Counter readings that rise faster than their meter's `max_rise_kw` from the reading just
    before (accepted or not, so one bad reading cannot hold a stream back); row → reason."""
    steep: dict[int, str] = {}
    bounded = {i: r for i, r in meters.items() if r.max_rise_kw is not None}
    if not bounded:
        return steep
    rows = np.flatnonzero(keep & np.isin(batch.meter_id, list(bounded)))
    ts_us = batch.ts.astype(np.int64)
    for row in rows[np.lexsort((ts_us[rows], batch.meter_id[rows]))]:
        meter = bounded[int(batch.meter_id[row])]
        now, value = int(ts_us[row]), float(batch.value[row])
        before = memory.last.get(meter.id)
        if before is not None and before[0] < now and value > before[1]:
            hours = (now - before[0]) / 3.6e9
            limit_kwh = (meter.max_rise_kw or 0.0) * hours
            if value - before[1] > limit_kwh:
                steep[int(row)] = (
                    f"meter {meter.label}: value {value:g} kWh rose {value - before[1]:g} kWh in "
                    f"{hours * 3600:g} s, more than {limit_kwh:g} kWh "
                    f"(max_rise_kw {meter.max_rise_kw:g}, {meter.bounds_source})"
                )
        if before is None or before[0] < now:
            memory.last[meter.id] = (now, value)
    return steep


def validate(
    builder: BatchBuilder,
    now_us: int,
    limits: Limits,
    meters: Mapping[int, MeterRef] | None = None,
    memory: CounterMemory | None = None,
) -> ReadingBatch:
    """The readings that pass; each one that does not becomes a reject naming why."""
    batch, source = builder.columns()
    if not len(batch):
        return batch
    ts_us = batch.ts.astype(np.int64)
    latest_us = now_us + int(limits.max_future_skew_s * MICROS_PER_S)
    oldest_us = now_us - limits.retention_days * 86_400 * MICROS_PER_S
    not_finite = ~np.isfinite(batch.value)
    tiny = (batch.value != 0) & (np.abs(batch.value) < TINY)
    future = ts_us > latest_us
    old = ts_us < oldest_us
    bad = not_finite | future | old | tiny
    below = above = np.zeros(len(batch), dtype=bool)
    if meters:
        low, high = _bound_arrays(batch.meter_id, meters)
        below, above = ~bad & (batch.value < low), ~bad & (batch.value > high)
        bad = bad | below | above
    steep = _too_steep(batch, ~bad, meters, memory or CounterMemory()) if meters else {}
    if steep:
        bad[list(steep)] = True
    for row in np.flatnonzero(bad):
        if below[row] or above[row]:
            ref = (meters or {})[int(batch.meter_id[row])]
            side, bound = (
                ("below min", ref.min_value) if below[row] else ("above max", ref.max_value)
            )
            kind = "implausible"
            reason = (
                f"meter {ref.label}: value {batch.value[row]:g} is {side} {bound:g} "
                f"({ref.bounds_source})"
            )
        elif row in steep:
            kind, reason = "implausible", steep[int(row)]
        elif tiny[row]:
            kind = "not_finite"
            reason = f"value {batch.value[row]:g} is denormal: too small to be a reading"
        elif not_finite[row]:
            kind, reason = "not_finite", f"value is not finite, got {batch.value[row]}"
        elif future[row]:
            ahead_s = (ts_us[row] - now_us) / MICROS_PER_S
            kind = "future"
            reason = (
                f"ts {batch.ts[row]}Z is {ahead_s:.0f} s in the future "
                f"(limit {limits.max_future_skew_s:g} s)"
            )
        else:
            kind = "too_old"
            reason = (
                f"ts {batch.ts[row]}Z is older than the retention of {limits.retention_days} days"
            )
        builder.reject(int(source[row]), reason, kind)
    return batch.take(~bad) if bad.any() else batch
