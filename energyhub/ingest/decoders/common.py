"""What every decoder shares: the context it decodes in and the number check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from energyhub.ingest.errors import PayloadError
from energyhub.ingest.mapping import MeterMap, MeterRef
from energyhub.ingest.message import BatchBuilder


@dataclass
class DecodeContext:
    """One message being decoded into the batch under construction."""

    index: int
    received_us: int
    out: BatchBuilder
    mapping: MeterMap
    zone: ZoneInfo

    def meter(self, park: str, site: str, meter: str) -> MeterRef | None:
        """The meter of a contract topic, or None after rejecting the reading as unknown."""
        ref = self.mapping.by_topic.get((park, site, meter))
        if ref is None:
            self.out.reject(self.index, f"unknown meter {park}/{site}/{meter}", "unknown_meter")
        return ref

    def add(self, ref: MeterRef, ts_us: int, value: Any, what: str) -> None:
        """Append one reading, or reject it if its value is not a number."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.out.reject(
                self.index, f"{what}: value must be a number, got {value!r:.64}", "bad_value"
            )
            return
        self.out.add(self.index, ref.id, ts_us, float(value))


def require_mapping(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PayloadError(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def required(data: dict[str, Any], key: str, what: str) -> Any:
    if key not in data:
        raise PayloadError(f"{what} has no {key!r}")
    return data[key]
