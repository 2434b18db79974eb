"""A Sparkplug B edge node for tests: births, data by alias, deaths, as the specification has them.

Sequence numbers run 0…255 across NBIRTH, DBIRTH, NDATA, DDATA and DDEATH; NBIRTH carries `bdSeq`,
which the node's NDEATH repeats; births name every metric with its alias, data carries aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from energyhub.ingest.sparkplug.payload import DataType, encode_frame


@dataclass
class EdgeNode:
    group: str
    node: str
    metrics: dict[str, tuple[int, DataType]]
    """Node-level metric name → (alias, datatype)."""
    devices: dict[str, dict[str, tuple[int, DataType]]] = field(default_factory=dict)
    """Device → its metrics, likewise (aliases unique across the node)."""
    seq: int = 0
    bd_seq: int = 0

    def topic(self, kind: str, device: str | None = None) -> str:
        tail = f"/{device}" if device else ""
        return f"spBv1.0/{self.group}/{kind}/{self.node}{tail}"

    def _next_seq(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) % 256
        return seq

    def nbirth(self, ts_ms: int, values: dict[str, Any]) -> tuple[str, bytes]:
        self.seq = 0
        metrics: list[dict[str, Any]] = [
            {"name": "bdSeq", "datatype": DataType.INT64, "value": self.bd_seq, "timestamp": ts_ms},
            {"name": "Node Control/Rebirth", "datatype": DataType.BOOLEAN, "value": False},
        ]
        metrics += [
            {"name": n, "alias": a, "datatype": t, "value": values.get(n), "timestamp": ts_ms}
            for n, (a, t) in self.metrics.items()
        ]
        return self.topic("NBIRTH"), encode_frame(metrics, self._next_seq(), ts_ms)

    def dbirth(self, device: str, ts_ms: int, values: dict[str, Any]) -> tuple[str, bytes]:
        metrics = [
            {"name": n, "alias": a, "datatype": t, "value": values.get(n), "timestamp": ts_ms}
            for n, (a, t) in self.devices[device].items()
        ]
        return self.topic("DBIRTH", device), encode_frame(metrics, self._next_seq(), ts_ms)

    def data(
        self, ts_ms: int, values: dict[str, Any], device: str | None = None
    ) -> tuple[str, bytes]:
        """NDATA (device None) or DDATA with the metrics by alias only."""
        known = self.devices[device] if device else self.metrics
        metrics = [
            {"alias": known[n][0], "datatype": known[n][1], "value": v, "timestamp": ts_ms}
            for n, v in values.items()
        ]
        kind = "DDATA" if device else "NDATA"
        return self.topic(kind, device), encode_frame(metrics, self._next_seq(), ts_ms)

    def raw(
        self,
        kind: str,
        metrics: list[dict[str, Any]],
        device: str | None = None,
        seq: int | None = None,
        ts_ms: int | None = None,
    ) -> tuple[str, bytes]:
        """Any frame, for the cases a conforming node would not send."""
        return self.topic(kind, device), encode_frame(
            metrics, self._next_seq() if seq is None else seq, ts_ms
        )

    def ndeath(self) -> tuple[str, bytes]:
        metrics = [{"name": "bdSeq", "datatype": DataType.INT64, "value": self.bd_seq}]
        return self.topic("NDEATH"), encode_frame(metrics, None, None)
