"""`energyhub/{park}/{site}`: `{"ts": ..., "values": {"<meter>": <number>, ...}}`, a frame."""

from __future__ import annotations

from typing import Any

from energyhub.ingest.decoders.common import DecodeContext, require_mapping
from energyhub.ingest.errors import PayloadError
from energyhub.ingest.timestamps import parse_ts


def decode_frame(context: DecodeContext, park: str, site: str, body: dict[str, Any]) -> None:
    ts_us = parse_ts(body.get("ts"))
    values = require_mapping(body["values"], "a gateway frame's values")
    if not values:
        raise PayloadError("a gateway frame's values are empty")
    for meter, value in values.items():
        ref = context.meter(park, site, meter)
        if ref is not None:
            context.add(ref, ts_us, value, f"meter {meter}")
