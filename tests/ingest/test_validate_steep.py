"""The counter rise check, vectorized, against a plain reading-by-reading reference."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from energyhub.ingest.mapping import MeterRef
from energyhub.ingest.validate import CounterMemory, _too_steep
from energyhub.store.batch import ReadingBatch

METERS = {
    1: MeterRef(1, "energy_kwh", "b1/a", None, None, 360.0, "test"),  # 0.1 kWh per second
    2: MeterRef(2, "energy_kwh", "b1/b", None, None, 36.0, "test"),
    3: MeterRef(3, "power_kw", "b1/c", None, None, None, "test"),  # not bounded
}


def reference(
    rows: list[tuple[int, int, float]],
    memory: dict[int, tuple[int, float]],
    before: dict[int, tuple[int, float]],
) -> set[int]:
    """The rule read plainly: each reading against the first reading at the newest time earlier
    than its own seen so far (earlier batches included); only rises count. A repeat of a time
    is judged like the first reading at it, against the time before (a resent spike is still a
    spike); a reading older than the newest seen is not judged."""
    steep = set()
    firsts: dict[int, list[tuple[int, float]]] = {}  # this batch's first reading at each time
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1], i))
    for i in order:
        meter, ts, value = rows[i]
        limit = METERS[meter].max_rise_kw
        if limit is None:
            continue
        seen = firsts.setdefault(meter, [])
        if not seen or seen[-1][0] < ts:
            seen.append((ts, value))
        newest = memory.get(meter)
        earlier = newest if newest is not None and newest[0] < ts else None
        if newest is not None and newest[0] == ts:
            earlier = before.get(meter)
            in_batch = [f for f in seen if f[0] < ts]
            if in_batch and (earlier is None or in_batch[-1][0] > earlier[0]):
                earlier = in_batch[-1]
        if earlier is not None:
            if value > earlier[1] and value - earlier[1] > limit * (ts - earlier[0]) / 3.6e9:
                steep.add(i)
        if newest is None or newest[0] < ts:
            if newest is not None:
                before[meter] = newest
            memory[meter] = (ts, value)
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
def test_the_vectorized_check_refuses_what_the_plain_rule_refuses(
    batches: list[list[tuple[int, int, float]]],
) -> None:
    memory, expected_memory, expected_before = CounterMemory(), {}, {}
    for rows in batches:
        expected = reference(rows, expected_memory, expected_before)
        batch = ReadingBatch.from_columns(
            np.array([ts for _, ts, _ in rows], dtype="datetime64[us]"),
            np.array([m for m, _, _ in rows], dtype=np.int32),
            np.array([v for _, _, v in rows], dtype=np.float64),
        )
        steep = _too_steep(batch, np.ones(len(rows), dtype=bool), METERS, memory)
        assert set(steep) == expected
        assert memory.last == expected_memory
        assert memory.before == expected_before
        for row, reason in steep.items():
            assert reason.startswith(f"meter {METERS[rows[row][0]].label}: value ")
