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

    def add_repeated(self, ref: MeterRef, ts_us: int, given: list[tuple[str, Any]]) -> None:
        """A meter given more than once at one time, as (where, value): one value is stored
        once and its copies rejected; different values are all rejected, for which one the meter
        read is unknown (a store keeps one reading per meter and time, so one would be lost)."""
        listed = ", ".join(f"{where} {value!r:.32}" for where, value in given)
        first = given[0][1]
        if all(type(value) is type(first) and value == first for _, value in given):
            self.add(ref, ts_us, first, given[0][0])
            why = f"the same value ({listed}): stored once"
        else:
            why = f"different values ({listed}): none stored, which one it read is unknown"
        name = ref.label or str(ref.id)
        reason = f"meter {name}: given {len(given)} times at one time with {why}"
        self.out.reject(self.index, reason, "repeated_meter")


def require_mapping(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PayloadError(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def required(data: dict[str, Any], key: str, what: str) -> Any:
    if key not in data:
        raise PayloadError(f"{what} has no {key!r}")
    return data[key]
