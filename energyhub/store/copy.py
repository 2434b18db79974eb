"""PostgreSQL binary COPY encoding of a ReadingBatch, built with numpy in one pass (no row loop)."""

from __future__ import annotations

import numpy as np

from energyhub.store.batch import TS_DTYPE, ReadingBatch

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)

PG_EPOCH = np.datetime64("2000-01-01T00:00:00", "us")
"""PostgreSQL counts timestamptz in microseconds from 2000-01-01 UTC."""

ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
        ("meter_len", ">i4"),
        ("meter_id", ">i4"),
        ("value_len", ">i4"),
        ("value", ">f8"),
    ]
)
"""One tuple of (ts timestamptz, meter_id int4, value float8) in binary COPY framing, packed."""


def encode(batch: ReadingBatch) -> bytes:
    """The whole COPY stream (header, rows, trailer) for `COPY ... (FORMAT BINARY)`."""
    rows = np.empty(len(batch), dtype=ROW)
    rows["fields"] = 3
    rows["ts_len"] = 8
    rows["ts"] = (batch.ts.astype(TS_DTYPE) - PG_EPOCH).astype(np.int64)
    rows["meter_len"] = 4
    rows["meter_id"] = batch.meter_id
    rows["value_len"] = 8
    rows["value"] = batch.value
    return HEADER + rows.tobytes() + TRAILER
