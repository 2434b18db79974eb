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
    counter's first reading in a batch is judged against the one before it; and the reading at
    the time before that, so a resent copy of the newest reading is judged as the first was."""

    last: dict[int, tuple[int, float]] = field(default_factory=dict)
    before: dict[int, tuple[int, float]] = field(default_factory=dict)


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
    before (accepted or not, so one bad reading cannot hold a stream back); row → reason.

    "Just before" is the newest earlier time among the readings seen so far (the memory of
    earlier batches and this batch's), the first reading at that time. A repeat of a time is
    judged the same way, against the time before it, so a spike sent twice is refused twice
    (judged against its own first copy, the second rose by nothing and was stored). Vectorized
    per batch: a Python step per meter, none per reading (only the refused ones get a reason)."""
    rows = np.flatnonzero(keep)
    if not len(rows):
        return {}
    ids, inverse = np.unique(batch.meter_id[rows], return_inverse=True)
    refs = [meters.get(int(i)) for i in ids]
    rise = np.array([np.nan if r is None or r.max_rise_kw is None else r.max_rise_kw for r in refs])
    rows = rows[~np.isnan(rise[inverse])]
    if not len(rows):
        return {}
    ts_all = batch.ts.astype(np.int64)
    rows = rows[np.lexsort((rows, ts_all[rows], batch.meter_id[rows]))]
    m, t, v = batch.meter_id[rows], ts_all[rows], batch.value[rows]
    n = len(rows)
    new_meter = np.r_[True, m[1:] != m[:-1]]
    new_time = new_meter | np.r_[True, t[1:] != t[:-1]]
    run_start = np.maximum.accumulate(np.where(new_time, np.arange(n), 0))
    # the previous time's first reading in this batch, if the meter had one earlier in it
    prev_row = run_start[np.maximum(run_start - 1, 0)]
    in_batch = ~new_meter[run_start]
    never = np.iinfo(np.int64).min
    mem_t, mem_v = np.full(n, never), np.zeros(n)
    before_t, before_v = np.full(n, never), np.zeros(n)
    starts = np.flatnonzero(new_meter)
    for start, end in zip(starts, [*starts[1:], n], strict=True):
        seen = memory.last.get(int(m[start]))
        if seen is not None:
            mem_t[start:end], mem_v[start:end] = seen
        earlier = memory.before.get(int(m[start]))
        if earlier is not None:
            before_t[start:end], before_v[start:end] = earlier
    # a repeat of the memory's newest time is judged against the time the memory had before it
    repeat = mem_t == t
    mem_t, mem_v = np.where(repeat, before_t, mem_t), np.where(repeat, before_v, mem_v)
    from_memory = ~in_batch | (mem_t >= t[prev_row])  # at a tie the memory's came first
    prev_t = np.where(from_memory, mem_t, t[prev_row])
    prev_v = np.where(from_memory, mem_v, v[prev_row])
    max_rise = rise[np.searchsorted(ids, m)]
    hours = (t - prev_t) / 3.6e9
    checked = (prev_t < t) & (prev_t > never) & (v > prev_v)
    too_steep = checked & (v - prev_v > max_rise * hours)
    for start, end in zip(starts, [*starts[1:], n], strict=True):  # the newest time of each meter
        last = int(run_start[end - 1])
        meter_id = int(m[start])
        seen = memory.last.get(meter_id)
        if seen is None or seen[0] < t[last]:
            memory.last[meter_id] = (int(t[last]), float(v[last]))
            # the newest time before it: this batch's time before, or the memory's newest
            earlier = (int(t[prev_row[last]]), float(v[prev_row[last]])) if in_batch[last] else None
            if seen is not None and (earlier is None or seen[0] >= earlier[0]):
                earlier = seen
            if earlier is not None:
                memory.before[meter_id] = earlier
    steep: dict[int, str] = {}
    for i in np.flatnonzero(too_steep):
        meter = meters[int(m[i])]
        rose, limit_kwh = float(v[i] - prev_v[i]), float(max_rise[i] * hours[i])
        steep[int(rows[i])] = (
            f"meter {meter.label}: value {v[i]:g} kWh rose {rose:g} kWh in "
            f"{hours[i] * 3600:g} s, more than {limit_kwh:g} kWh "
            f"(max_rise_kw {meter.max_rise_kw:g}, {meter.bounds_source})"
        )
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
