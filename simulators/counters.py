"""Find counters and timestamps inside recorded payloads, to reset or skew them.

Counters are the Tasmota `ENERGY.Total`, the Shelly `aenergy.total`, and, when a site file is
given, the energy_kwh meters of gateway frames, batches and single readings. A payload that is
not changed is returned as the very same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson

from energyhub.sites import SiteFile
from simulators.engine import DEFAULT_ROLLOVER_KWH

Slot = tuple[dict[str, Any], str]
"""A JSON object and the key in it that holds a counter."""


class CounterLocator:
    """Which values of a message are cumulative counters, and where each wraps."""

    def __init__(self, site: SiteFile | None = None) -> None:
        self.rollover: dict[tuple[str, str, str], float] = {}
        for park, owner in site.metered_sites() if site else ():
            for meter in owner.meters:
                if meter.quantity == "energy_kwh":
                    key = (park.id, owner.id, meter.id)
                    self.rollover[key] = meter.rollover_kwh or DEFAULT_ROLLOVER_KWH

    def slots(self, topic: str, body: Any) -> Iterator[tuple[str, Slot, float]]:
        """(counter name, where it is, rollover) for each counter in a parsed payload."""
        parts = topic.split("/")
        if isinstance(body, list):
            for item in body:
                if isinstance(item, dict) and "value" in item:
                    yield from self._meter(parts[-2:], str(item.get("meter")), (item, "value"))
            return
        if not isinstance(body, dict):
            return
        energy, aenergy = body.get("ENERGY"), body.get("aenergy")
        if isinstance(energy, dict) and "Total" in energy:
            yield "ENERGY.Total", (energy, "Total"), DEFAULT_ROLLOVER_KWH
        elif isinstance(aenergy, dict) and "total" in aenergy:
            yield "aenergy.total", (aenergy, "total"), DEFAULT_ROLLOVER_KWH * 1000.0
        elif isinstance(body.get("values"), dict):
            for meter in body["values"]:
                yield from self._meter(parts[-2:], meter, (body["values"], meter))
        elif "value" in body:
            yield from self._meter(parts[-3:-1], parts[-1], (body, "value"))

    def _meter(self, site: list[str], meter: str, slot: Slot) -> Iterator[tuple[str, Slot, float]]:
        if len(site) == 2 and (rollover := self.rollover.get((site[0], site[1], meter))):
            yield meter, slot, rollover


def _parse(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def reset_counters(
    payload: bytes, topic: str, locator: CounterLocator, offsets: dict[str, float], fresh: bool
) -> tuple[bytes, list[str]]:
    """Shift counters by the offsets of their resets; with `fresh`, reset the message's first one.

    `offsets` maps `topic|counter` to the raw reading at its last reset and is updated in place.
    Returns the (possibly new) payload and the counters reset by this message.
    """
    body = _parse(payload)
    changed, started = False, list[str]()
    for name, (obj, key), rollover in locator.slots(topic, body):
        value = obj[key]
        if not isinstance(value, int | float):
            continue
        ident = f"{topic}|{name}"
        if fresh and not started:
            offsets[ident] = float(value)
            started.append(name)
        if ident in offsets:
            shifted = float(value) - offsets[ident]
            obj[key] = round(shifted + rollover if shifted < 0 else shifted, 3)
            changed = True
    return (orjson.dumps(body) if changed else payload), started


def shift_timestamps(payload: bytes, skew_s: float) -> bytes:
    """Every timestamp in the payload moved by `skew_s` (formats kept); other bytes unchanged."""
    body = _parse(payload)
    items = body if isinstance(body, list) else [body]
    changed = False
    for item in items:
        if not isinstance(item, dict):
            continue
        for key in ("ts", "Time"):
            if key in item and (moved := _shift(item[key], skew_s)) is not None:
                item[key], changed = moved, True
        aenergy = item.get("aenergy")
        if isinstance(aenergy, dict) and isinstance(aenergy.get("minute_ts"), int):
            aenergy["minute_ts"] += round(skew_s)
            changed = True
    return orjson.dumps(body) if changed else payload


def _shift(value: Any, skew_s: float) -> Any:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value + (round(skew_s * 1000) if value > 1e11 else skew_s)  # epoch ms or s
    if isinstance(value, str):
        try:
            return (datetime.fromisoformat(value) + timedelta(seconds=skew_s)).isoformat()
        except ValueError:
            return None
    return None
