"""`energyhub/{park}/{site}`: `{"ts": ..., "values": {"<meter>": <number>, ...}}`, a frame."""

from __future__ import annotations

from typing import Any

from energyhub.ingest.decoders.common import DecodeContext, require_mapping
from energyhub.ingest.errors import PayloadError
from energyhub.ingest.timestamps import parse_ts
from energyhub.json_keys import Repeated


def decode_frame(context: DecodeContext, park: str, site: str, body: dict[str, Any]) -> None:
    ts_us = parse_ts(body.get("ts"))
    values = require_mapping(body["values"], "a gateway frame's values")
    if not values:
        raise PayloadError("a gateway frame's values are empty")
    by_topic, out, index = context.mapping.by_topic, context.out, context.index
    repeats = values.repeats if isinstance(values, Repeated) else {}
    for meter, given in repeats.items():  # every value given: the decoder rejects them by name
        ref = context.meter(park, site, meter)
        if ref is not None:
            for value in given:
                context.add(ref, ts_us, value, f"meter {meter}")
    for meter, value in values.items():
        if meter in repeats:
            continue
        ref = by_topic.get((park, site, meter))
        if ref is not None and (type(value) is float or type(value) is int):  # the usual case
            out.meter_id.append(ref.id)
            out.ts_us.append(ts_us)
            out.value.append(float(value))
            out.source.append(index)
            continue
        ref = context.meter(park, site, meter)  # rejects it with the reason
        if ref is not None:
            context.add(ref, ts_us, value, f"meter {meter}")
