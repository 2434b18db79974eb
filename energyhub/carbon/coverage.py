"""Data coverage: which of the expected intervals each meter has data for, and its longest gaps."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from energyhub.carbon.models import Coverage, Gap, MeterCoverage
from energyhub.carbon.tree import MeterInfo

LONGEST_GAPS = 3
"""Gaps listed per incomplete meter (the longest first)."""
LONGEST_READING_INTERVAL = timedelta(hours=1)
"""The longest interval a meter is taken to be read at (utility interval data is 15, 30 or 60
min): readings further apart than that leave gaps."""


def expected_buckets(start: datetime, end: datetime, step: timedelta) -> pd.DatetimeIndex:
    """The bucket starts `meter_series` can return for [start, end)."""
    first = pd.Timestamp(start).tz_convert("UTC").ceil(step)
    return pd.date_range(first, pd.Timestamp(end).tz_convert("UTC"), freq=step, inclusive="left")


def _gaps(missing: np.ndarray, expected: pd.DatetimeIndex, step: timedelta) -> list[Gap]:
    """Runs of consecutive missing positions, the longest first."""
    if not len(missing):
        return []
    breaks = np.flatnonzero(np.diff(missing) != 1) + 1
    runs = np.split(missing, breaks)
    runs.sort(key=len, reverse=True)
    return [
        Gap(
            start=expected[run[0]].to_pydatetime(),
            end=(expected[run[-1]] + step).to_pydatetime(),
            intervals=len(run),
        )
        for run in runs[:LONGEST_GAPS]
    ]


def _covered(have: np.ndarray, step: timedelta) -> np.ndarray:
    """The intervals a meter's readings stand for: each reading its own and, for a meter read
    less often than `step` (its median spacing, up to LONGEST_READING_INTERVAL), the intervals
    after it up to its next due reading. An hourly meter covers its hours, not 1 in 4 of their
    15-min intervals."""
    known = np.flatnonzero(have)
    if len(known) < 2:
        return have
    most = max(1, int(LONGEST_READING_INTERVAL / step))
    every = int(min(max(np.median(np.diff(known)), 1), most))
    if every == 1:
        return have
    marks = np.concatenate(([0], np.cumsum(have, dtype=np.int64)))
    since = marks[1:] - marks[np.maximum(np.arange(1, len(have) + 1) - every, 0)]
    return np.asarray(since > 0)


def measure(
    series: pd.DataFrame,
    meters: list[MeterInfo],
    start: datetime,
    end: datetime,
    step: timedelta,
    timezone: str,
) -> Coverage:
    """Coverage of these meters in [start, end): a bucket counts when its value is known."""
    expected = expected_buckets(start, end, step)
    local = expected.tz_convert(timezone)
    known = series.dropna(subset=["value"])
    present_by_meter = {
        int(str(meter_id)): pd.DatetimeIndex(group["bucket"]).tz_convert("UTC")
        for meter_id, group in known.groupby("meter_id")
    }
    incomplete, present_total = [], 0
    for meter in sorted(meters, key=lambda m: m.label):
        have = _covered(
            expected.isin(present_by_meter.get(meter.id, pd.DatetimeIndex([], tz="UTC"))), step
        )
        present_total += int(have.sum())
        missing = np.flatnonzero(~have)
        if len(missing):
            incomplete.append(
                MeterCoverage(
                    meter=meter.label,
                    counter=meter.quantity == "energy_kwh",
                    share=float(have.mean()) if len(have) else 0.0,
                    missing_intervals=len(missing),
                    longest_gaps=_gaps(missing, local, step),
                )
            )
    expected_total = len(expected) * len(meters)
    window_s = len(meters) * (end - start).total_seconds()
    covered_s = float(series["covered_s"].sum()) if "covered_s" in series else 0.0
    return Coverage(
        share=present_total / expected_total if expected_total else 0.0,
        time_share=min(1.0, covered_s / window_s) if window_s > 0 else 0.0,
        expected_intervals=expected_total,
        present_intervals=present_total,
        interval_minutes=int(step / timedelta(minutes=1)),
        meters=len(meters),
        incomplete=incomplete,
    )
