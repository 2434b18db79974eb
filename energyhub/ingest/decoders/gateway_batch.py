"""`energyhub/{park}/{site}`: `[{"meter": ..., "ts": ..., "value": ...}, ...]`, a gateway batch."""

from __future__ import annotations

from typing import Any

from energyhub.ingest.decoders.common import DecodeContext
from energyhub.ingest.errors import PayloadError
from energyhub.ingest.mapping import MeterRef
from energyhub.ingest.timestamps import parse_ts


def decode_gateway_batch(context: DecodeContext, park: str, site: str, items: list[object]) -> None:
    """Each item is checked on its own: one bad item rejects only itself (a meter given twice at
    one time: those items, `DecodeContext.add_repeated`)."""
    if not items:
        raise PayloadError("a gateway batch is empty")
    given: dict[tuple[int, int], tuple[MeterRef, list[tuple[str, Any]]]] = {}
    for position, item in enumerate(items):
        if not isinstance(item, dict) or not {"meter", "ts", "value"} <= item.keys():
            context.out.reject(
                context.index,
                f"item {position}: needs meter, ts and value, got {item!r:.80}",
                "malformed",
            )
            continue
        try:
            ts_us = parse_ts(item["ts"])
        except PayloadError as exc:
            context.out.reject(context.index, f"item {position}: {exc}", exc.kind)
            continue
        ref = context.meter(park, site, str(item["meter"]))
        if ref is not None:
            given.setdefault((ref.id, ts_us), (ref, []))[1].append(
                (f"item {position}", item["value"])
            )
    for (_, ts_us), (ref, values) in given.items():
        if len(values) == 1:
            context.add(ref, ts_us, values[0][1], values[0][0])
        else:
            context.add_repeated(ref, ts_us, values)
