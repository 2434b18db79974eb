"""A received MQTT message and the columnar batch decoders append to."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from energyhub.store.batch import ReadingBatch


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message as received: acknowledged (by `mid`) only once its readings are committed."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    received_us: int
    """Receive time, microseconds since the Unix epoch."""


@dataclass(frozen=True, slots=True)
class Reject:
    message: int
    """Index of the message in its batch."""
    reason: str
    kind: str


@dataclass
class BatchBuilder:
    """Readings decoded so far, as parallel lists, plus rejects; one builder per write batch."""

    messages: list[RawMessage] = field(default_factory=list)
    meter_id: list[int] = field(default_factory=list)
    ts_us: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    """Index of the message each reading came from."""
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.meter_id)

    def add(self, message: int, meter_id: int, ts_us: int, value: float) -> None:
        self.meter_id.append(meter_id)
        self.ts_us.append(ts_us)
        self.value.append(value)
        self.source.append(message)

    def reject(self, message: int, reason: str, kind: str) -> None:
        self.rejects.append(Reject(message, reason, kind))

    def columns(self) -> tuple[ReadingBatch, np.ndarray]:
        """The readings as a ReadingBatch and the message index of each."""
        batch = ReadingBatch(
            np.array(self.ts_us, dtype=np.int64).astype("datetime64[us]"),
            np.array(self.meter_id, dtype=np.int32),
            np.array(self.value, dtype=np.float64),
        )
        return batch, np.array(self.source, dtype=np.int64)
