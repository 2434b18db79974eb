"""What every decoder shares: the context it decodes in and the number check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
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


def _when(ts_us: int) -> str:
    try:
        return datetime.fromtimestamp(ts_us / 1e6, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return f"{ts_us} µs after the epoch"


def one_value_per_meter_and_time(out: BatchBuilder, start: int, by_id: dict[int, MeterRef]) -> None:
    """The rule every format keeps: a message gives one value per meter and time (the store keeps
    one reading per meter and time, so a second would be lost unseen). The readings of the message
    from row `start` that repeat a meter and time are taken out and rejected by name
    (`repeated_meter`); the same value repeated is stored once, different values not at all, for
    which one the meter read is unknown."""
    keys = list(zip(out.meter_id[start:], out.ts_us[start:], strict=True))
    if len(set(keys)) == len(keys):
        return
    rows: dict[tuple[int, int], list[int]] = {}
    for row, key in enumerate(keys, start):
        rows.setdefault(key, []).append(row)
    repeated = {key: found for key, found in rows.items() if len(found) > 1}
    dropped = {row for found in repeated.values() for row in found[1:]}
    for (meter_id, ts_us), found in repeated.items():
        values = [out.value[row] for row in found]
        listed = ", ".join(f"{value:g}" for value in values)
        ref = by_id.get(meter_id)
        name = ref.label if ref is not None and ref.label else str(meter_id)
        if all(value == values[0] for value in values):
            why = f"the same value ({listed}): stored once"
        else:
            why = f"different values ({listed}): none stored, which one it read is unknown"
            dropped.add(found[0])
        reason = f"meter {name}: given {len(found)} times at {_when(ts_us)} with {why}"
        out.reject(out.source[found[0]], reason, "repeated_meter")
    kept = [row for row in range(start, out.rows) if row not in dropped]
    out.meter_id[start:] = [out.meter_id[row] for row in kept]
    out.ts_us[start:] = [out.ts_us[row] for row in kept]
    out.value[start:] = [out.value[row] for row in kept]
    out.source[start:] = [out.source[row] for row in kept]


def require_mapping(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PayloadError(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def required(data: dict[str, Any], key: str, what: str) -> Any:
    if key not in data:
        raise PayloadError(f"{what} has no {key!r}")
    return data[key]
