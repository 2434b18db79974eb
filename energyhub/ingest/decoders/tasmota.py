"""Tasmota `tele/<device>/SENSOR`: `ENERGY.Total` (kWh) and `ENERGY.Power` (W).

Tasmota's `Time` is the device's local time without an offset: it is read in the site's zone
(the hour the clocks repeat by when the message arrived, energyhub.ingest.timestamps).
"""

from __future__ import annotations

from typing import Any

from energyhub.ingest.decoders.common import DecodeContext, require_mapping, required
from energyhub.ingest.errors import PayloadError
from energyhub.ingest.mapping import DeviceKey
from energyhub.ingest.timestamps import parse_ts


def decode_tasmota(context: DecodeContext, device: str, data: Any) -> None:
    ref = context.mapping.by_device.get(DeviceKey("tasmota", device, "switch", 0))
    if ref is None:
        raise PayloadError(
            f"unknown Tasmota device {device!r} (map it with a meter's device:)", "unknown_device"
        )
    body = require_mapping(data, "a Tasmota SENSOR message")
    time = required(body, "Time", "a Tasmota SENSOR message")
    ts_us = parse_ts(time, context.zone, context.received_us)
    energy = require_mapping(required(body, "ENERGY", "a Tasmota SENSOR message"), "ENERGY")
    if ref.quantity == "energy_kwh":
        context.add(ref, ts_us, required(energy, "Total", "ENERGY"), "ENERGY.Total")
        return
    power_w = required(energy, "Power", "ENERGY")
    if isinstance(power_w, list):  # multi-channel devices report one power per channel
        power_w = power_w[0] if power_w else None
    if isinstance(power_w, int | float) and not isinstance(power_w, bool):
        power_w = power_w / 1000.0
    context.add(ref, ts_us, power_w, "ENERGY.Power")
