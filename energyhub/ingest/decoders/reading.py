"""`energyhub/{park}/{site}/{meter}`: `{"ts": ..., "value": <number>}`, one reading."""

from __future__ import annotations

from typing import Any

from energyhub.ingest.decoders.common import DecodeContext, require_mapping, required
from energyhub.ingest.timestamps import parse_ts


def decode_reading(context: DecodeContext, park: str, site: str, meter: str, data: Any) -> None:
    body = require_mapping(data, "a single reading")
    ts_us = parse_ts(required(body, "ts", "a single reading"))
    value = required(body, "value", "a single reading")
    ref = context.meter(park, site, meter)
    if ref is not None:
        context.add(ref, ts_us, value, f"meter {meter}")
