"""`energyhub/{park}/{site}`: `[{"meter": ..., "ts": ..., "value": ...}, ...]`, a gateway batch."""

from __future__ import annotations

from energyhub.ingest.decoders.common import DecodeContext
from energyhub.ingest.errors import PayloadError
from energyhub.ingest.timestamps import parse_ts


def decode_gateway_batch(context: DecodeContext, park: str, site: str, items: list[object]) -> None:
    """Each item is checked on its own: one bad item rejects only itself."""
    if not items:
        raise PayloadError("a gateway batch is empty")
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
            context.add(ref, ts_us, item["value"], f"item {position}")
