"""The columnar batch every decoder produces and the writer stores: three aligned numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

TS_DTYPE = np.dtype("datetime64[us]")
"""Timestamps are UTC, microsecond precision (PostgreSQL's own), without a zone attached."""


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Readings as columns: ts (UTC datetime64[us]), meter_id (int32), value (float64)."""

    ts: npt.NDArray[np.datetime64]
    meter_id: npt.NDArray[np.int32]
    value: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        if not (len(self.ts) == len(self.meter_id) == len(self.value)):
            raise ValueError(
                f"columns differ in length: ts {len(self.ts)}, meter_id {len(self.meter_id)}, "
                f"value {len(self.value)}"
            )

    @classmethod
    def from_columns(
        cls, ts: npt.ArrayLike, meter_id: npt.ArrayLike, value: npt.ArrayLike
    ) -> ReadingBatch:
        """Coerce array-likes to the batch's dtypes (datetime64 values are taken as UTC)."""
        return cls(
            np.asarray(ts).astype(TS_DTYPE),
            np.asarray(meter_id, dtype=np.int32),
            np.asarray(value, dtype=np.float64),
        )

    @classmethod
    def empty(cls) -> ReadingBatch:
        return cls(np.empty(0, TS_DTYPE), np.empty(0, np.int32), np.empty(0, np.float64))

    @classmethod
    def concat(cls, batches: list[ReadingBatch]) -> ReadingBatch:
        if not batches:
            return cls.empty()
        return cls(
            np.concatenate([b.ts for b in batches]),
            np.concatenate([b.meter_id for b in batches]),
            np.concatenate([b.value for b in batches]),
        )

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> ReadingBatch:
        """The rows selected by a boolean mask or an index array."""
        return ReadingBatch(self.ts[index], self.meter_id[index], self.value[index])
