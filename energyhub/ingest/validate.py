"""Vectorized checks of a decoded batch: finite values, not too far in the future, not too old."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from energyhub.ingest.message import BatchBuilder
from energyhub.store.batch import ReadingBatch

MICROS_PER_S = 1_000_000


@dataclass(frozen=True)
class Limits:
    max_future_skew_s: float
    retention_days: int


def validate(builder: BatchBuilder, now_us: int, limits: Limits) -> ReadingBatch:
    """The readings that pass; each one that does not becomes a reject naming why."""
    batch, source = builder.columns()
    if not len(batch):
        return batch
    ts_us = batch.ts.astype(np.int64)
    latest_us = now_us + int(limits.max_future_skew_s * MICROS_PER_S)
    oldest_us = now_us - limits.retention_days * 86_400 * MICROS_PER_S
    not_finite = ~np.isfinite(batch.value)
    future = ts_us > latest_us
    old = ts_us < oldest_us
    bad = not_finite | future | old
    for row in np.flatnonzero(bad):
        if not_finite[row]:
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
