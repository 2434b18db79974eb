"""Vectorized checks of a decoded batch: finite values, not too far in the future, not too old,
within what the meter can physically read (energyhub/ingest/bounds.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from energyhub.ingest.mapping import MeterRef
from energyhub.ingest.message import BatchBuilder
from energyhub.ingest.timestamps import latest_ts_us
from energyhub.store.batch import ReadingBatch

MICROS_PER_S = 1_000_000
TINY = float(np.finfo(np.float64).tiny)
"""Nonzero values closer to zero than the smallest normal double (denormals) are garbage, not
readings: PostgreSQL's float arithmetic on them fails with "underflow"."""


@dataclass(frozen=True)
class Limits:
    max_future_skew_s: float
    retention_days: int


COUNTER_MEMORY_READINGS = 192
"""Readings kept per bounded counter to judge late ones against: two days at 15 minutes, a
gateway's store-and-forward backlog after a day's outage (8 days of an hourly meter)."""


@dataclass
class CounterMemory:
    """The newest readings seen of each bounded counter, across batches: per meter its times
    (µs, ascending) and the first value at each, at most COUNTER_MEMORY_READINGS. A reading is
    judged against the one before it in time, even when it arrives after newer ones."""

    seen: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(
        default_factory=dict
    )


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
    judged the same way, against the time before it, so a spike sent twice is refused twice; a
    late reading (a backlog sent after newer readings) likewise, while the memory reaches back
    before it. Vectorized per meter: a Python step per meter, none per reading."""
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
    m, t, v = batch.meter_id[rows].astype(np.int64), ts_all[rows], batch.value[rows]
    n = len(rows)
    new_meter = np.r_[True, m[1:] != m[:-1]]
    starts = np.flatnonzero(new_meter)
    # the memory each meter needs: its newest reading when the batch is all newer, else all of it
    kept_m, kept_t, kept_v = [], [], []
    older: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
    for start in starts:
        meter_id = int(m[start])
        seen = memory.seen.get(meter_id)
        if seen is None:
            continue
        times, values = seen
        if t[start] > times[-1]:  # in order: only the newest is needed; the rest is kept aside
            older[meter_id] = (times[:-1], values[:-1])
            times, values = times[-1:], values[-1:]
        kept_m.append(np.full(len(times), meter_id, dtype=np.int64))
        kept_t.append(times)
        kept_v.append(values)
    first = new_meter | np.r_[True, t[1:] != t[:-1]]  # the first reading at each time
    # every reading seen (memory first, then this batch's first at each time), and the batch's
    # readings as queries ordered before the entries at their own time: each query's newest
    # earlier entry is the last entry before it
    em = np.concatenate([*kept_m, m[first]])
    et = np.concatenate([*kept_t, t[first]])
    ev = np.concatenate([*kept_v, v[first]])
    fresh = int(first.sum())
    source = np.r_[np.zeros(len(em) - fresh, np.int8), np.ones(fresh, np.int8)]
    order = np.lexsort((source, et, em))
    em, et, ev = em[order], et[order], ev[order]
    repeat = np.r_[False, (em[1:] == em[:-1]) & (et[1:] == et[:-1])]  # the memory's came first
    em, et, ev = em[~repeat], et[~repeat], ev[~repeat]
    is_entry = np.concatenate([np.zeros(n, bool), np.ones(len(em), bool)])
    merged = np.lexsort((is_entry, np.concatenate([t, et]), np.concatenate([m, em])))
    entry = is_entry[merged]
    last = np.maximum.accumulate(np.where(entry, np.arange(len(merged)), -1))
    at = np.empty(n, dtype=np.int64)
    at[merged[~entry]] = last[~entry]  # per reading: where the last entry before it sorts
    has = at >= 0
    before = np.where(has, merged[np.maximum(at, 0)] - n, 0)  # that entry's index
    has &= em[before] == m
    prev_t, prev_v = et[before], ev[before]
    max_rise = rise[np.searchsorted(ids, m)]
    hours = (t - prev_t) / 3.6e9
    too_steep = has & (v > prev_v) & (v - prev_v > max_rise * hours)
    bounds = np.flatnonzero(np.r_[True, em[1:] != em[:-1]])
    for lo, hi in zip(bounds, [*bounds[1:], len(em)], strict=True):
        meter_id = int(em[lo])
        times, values = et[lo:hi], ev[lo:hi]
        if meter_id in older:
            times = np.concatenate([older[meter_id][0], times])
            values = np.concatenate([older[meter_id][1], values])
        memory.seen[meter_id] = (
            times[-COUNTER_MEMORY_READINGS:].copy(),
            values[-COUNTER_MEMORY_READINGS:].copy(),
        )
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
    latest_us = latest_ts_us(now_us, limits.max_future_skew_s)
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
