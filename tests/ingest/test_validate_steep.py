"""The counter rise check, vectorized, against a plain reading-by-reading reference."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from energyhub.ingest.mapping import MeterRef
from energyhub.ingest.validate import COUNTER_MEMORY_READINGS, CounterMemory, _too_steep
from energyhub.store.batch import ReadingBatch

METERS = {
    1: MeterRef(1, "energy_kwh", "b1/a", None, None, 360.0, "test"),  # 0.1 kWh per second
    2: MeterRef(2, "energy_kwh", "b1/b", None, None, 36.0, "test"),
    3: MeterRef(3, "power_kw", "b1/c", None, None, None, "test"),  # not bounded
}


def reference(
    rows: list[tuple[int, int, float]], memory: dict[int, dict[int, float]], keep: int
) -> set[int]:
    """The rule read plainly: each reading against the first reading at the newest time earlier
    than its own among the readings seen so far (earlier batches' newest `keep` times, and this
    batch's), whatever order they came in; only rises count. A repeat of a time is judged like
    the first reading at it, against the time before (a resent spike is still a spike)."""
    steep = set()
    for meter in {m for m, _, _ in rows}:
        limit = METERS[meter].max_rise_kw
        if limit is None:
            continue
        timeline = dict(memory.get(meter, {}))  # time → the first value seen at it
        mine = [i for i in range(len(rows)) if rows[i][0] == meter]
        for i in sorted(mine, key=lambda i: (rows[i][1], i)):
            timeline.setdefault(rows[i][1], rows[i][2])
        for i in mine:
            _, ts, value = rows[i]
            earlier = [t for t in timeline if t < ts]
            if earlier:
                before_ts = max(earlier)
                before = timeline[before_ts]
                if value > before and value - before > limit * (ts - before_ts) / 3.6e9:
                    steep.add(i)
        memory[meter] = {t: timeline[t] for t in sorted(timeline)[-keep:]}
    return steep


READING = st.tuples(
    st.sampled_from([1, 2, 3]),
    st.integers(0, 40).map(lambda s: s * 1_000_000),
    st.sampled_from([0.0, 0.5, 1.0, 3.0, 10.0]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(READING, max_size=25), min_size=1, max_size=3))
@example([[(2, 0, 0.0)], [(2, 0, 0.5), (2, 1_000_000, 0.5)]])  # a repeat of the memory's time
@example([[(2, 0, 0.0), (2, 1_000_000, 10.0), (2, 1_000_000, 10.0)]])  # a spike repeated
@example([[(2, 0, 0.0), (2, 1_000_000, 10.0)], [(2, 1_000_000, 10.0)]])  # resent later
@example([[(2, 0, 0.0), (2, 9_000_000, 1.0)], [(2, 1_000_000, 10.0)]])  # a late spike
def test_the_vectorized_check_refuses_what_the_plain_rule_refuses(
    batches: list[list[tuple[int, int, float]]],
) -> None:
    memory: CounterMemory = CounterMemory()
    expected_memory: dict[int, dict[int, float]] = {}
    for rows in batches:
        expected = reference(rows, expected_memory, COUNTER_MEMORY_READINGS)
        batch = ReadingBatch.from_columns(
            np.array([ts for _, ts, _ in rows], dtype="datetime64[us]"),
            np.array([m for m, _, _ in rows], dtype=np.int32),
            np.array([v for _, _, v in rows], dtype=np.float64),
        )
        steep = _too_steep(batch, np.ones(len(rows), dtype=bool), METERS, memory)
        assert set(steep) == expected
        kept = {
            m: dict(zip(t.tolist(), v.tolist(), strict=True)) for m, (t, v) in memory.seen.items()
        }
        assert kept == expected_memory
        for row, reason in steep.items():
            assert reason.startswith(f"meter {METERS[rows[row][0]].label}: value ")


def test_the_memory_keeps_the_newest_readings_and_judges_late_ones_within_them() -> None:
    """A meter's memory is bounded; a late reading inside it is judged, one older is not."""
    memory = CounterMemory()
    n = COUNTER_MEMORY_READINGS + 50
    times = np.arange(n, dtype=np.int64) * 60_000_000  # a reading a minute, 0.1 kWh each
    batch = ReadingBatch.from_columns(
        times.astype("datetime64[us]"), np.full(n, 1, dtype=np.int32), times / 6e8
    )
    assert _too_steep(batch, np.ones(n, dtype=bool), METERS, memory) == {}
    kept_t, _ = memory.seen[1]
    assert len(kept_t) == COUNTER_MEMORY_READINGS and kept_t[-1] == times[-1]
    late = np.array([times[-10] + 30_000_000, times[10] + 30_000_000])  # inside, and too old
    spikes = ReadingBatch.from_columns(
        late.astype("datetime64[us]"), np.array([1, 1], dtype=np.int32), np.array([1e6, 1e6])
    )
    assert set(_too_steep(spikes, np.ones(2, dtype=bool), METERS, memory)) == {0}
