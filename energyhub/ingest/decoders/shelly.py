"""Shelly Gen2 `<device>/status/switch:N` and `em:N`: `apower` (W), `aenergy.total` (Wh).

The reading's time is `aenergy.minute_ts` when the device sends it, else the receive time.
"""

from __future__ import annotations

from typing import Any

from energyhub.ingest.decoders.common import DecodeContext, require_mapping, required
from energyhub.ingest.errors import PayloadError
from energyhub.ingest.mapping import DeviceKey
from energyhub.ingest.timestamps import parse_ts


def _kilo(value: Any) -> Any:
    return (
        value / 1000.0 if isinstance(value, int | float) and not isinstance(value, bool) else value
    )


def decode_shelly(context: DecodeContext, device: str, component: str, data: Any) -> None:
    kind, _, channel = component.partition(":")
    if kind not in ("switch", "em") or not channel.isdigit():
        raise PayloadError(f"unsupported Shelly component {component!r}")
    ref = context.mapping.by_device.get(DeviceKey("shelly", device, kind, int(channel)))
    if ref is None:
        raise PayloadError(
            f"unknown Shelly device {device!r} {component} (map it with device:)", "unknown_device"
        )
    body = require_mapping(data, "a Shelly status message")
    energy = body.get("aenergy")
    ts_us = context.received_us
    if isinstance(energy, dict) and "minute_ts" in energy:
        ts_us = parse_ts(energy["minute_ts"])
    if ref.quantity == "energy_kwh":
        energy = require_mapping(required(body, "aenergy", "a Shelly status message"), "aenergy")
        context.add(ref, ts_us, _kilo(required(energy, "total", "aenergy")), "aenergy.total")
        return
    power = body["apower"] if "apower" in body else required(body, "total_act_power", component)
    context.add(ref, ts_us, _kilo(power), "apower")
