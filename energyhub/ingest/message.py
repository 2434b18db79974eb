"""Received MQTT messages and the columnar batch decoders append to."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from energyhub.store.batch import ReadingBatch
from energyhub.store.devices import PresenceChange


@dataclass(frozen=True, slots=True)
class Delivery:
    """Messages received together, as parallel lists, and the PUBACKs that acknowledge them."""

    topics: list[str]
    payloads: list[bytes]
    received_us: list[int]
    """Receive times, microseconds since the Unix epoch."""
    acks: bytes
    """PUBACK packets of the QoS 1 messages, sent only once their readings are committed."""
    connection: int
    """The connection they came on: acknowledged on that one or not at all."""


@dataclass(frozen=True, slots=True)
class Reject:
    message: int
    """Index of the message in its batch."""
    reason: str
    kind: str


@dataclass
class BatchBuilder:
    """Messages and the readings decoded from them, as parallel lists, plus rejects."""

    deliveries: list[Delivery] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    received_us: list[int] = field(default_factory=list)
    meter_id: list[int] = field(default_factory=list)
    ts_us: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    """Index of the message each reading came from."""
    rejects: list[Reject] = field(default_factory=list)
    presence: list[PresenceChange] = field(default_factory=list)
    """Field devices that came online or went offline (Sparkplug births and deaths)."""

    @property
    def messages(self) -> int:
        return len(self.topics)

    def receive(self, delivery: Delivery) -> None:
        """Append a delivery's messages (decoded by the caller)."""
        self.deliveries.append(delivery)
        self.topics += delivery.topics
        self.payloads += delivery.payloads
        self.received_us += delivery.received_us

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
