"""One decoder per payload format, all appending to the same columnar batch; a router by topic.

A message that breaks the contract as a whole is rejected with one reason; a reading that does is
rejected alone and the good readings of the same message are kept.
"""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from energyhub.ingest.decoders.common import DecodeContext
from energyhub.ingest.decoders.frame import decode_frame
from energyhub.ingest.decoders.gateway_batch import decode_gateway_batch
from energyhub.ingest.decoders.reading import decode_reading
from energyhub.ingest.decoders.shelly import decode_shelly
from energyhub.ingest.decoders.tasmota import decode_tasmota
from energyhub.ingest.errors import PayloadError
from energyhub.ingest.mapping import MeterMap
from energyhub.ingest.message import BatchBuilder, RawMessage

IGNORED_LEAVES = frozenset({"status", "alert"})
"""Contract topics that are not readings: gateway availability and alert notifications."""


def _parse_json(payload: bytes) -> Any:
    """orjson first; the standard library as a fallback for NaN, Infinity and 1e400, which some
    devices send and orjson refuses, so that their good neighbours in a frame are kept."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        try:
            return json.loads(payload)
        except (ValueError, RecursionError):
            raise PayloadError(f"payload is not JSON: {exc}", "not_json") from None


class Decoder:
    """Routes each message to its decoder and turns contract breaches into rejects."""

    def __init__(self, mapping: MeterMap, prefix: str, max_payload_bytes: int) -> None:
        self.mapping = mapping
        self.prefix = prefix
        self.max_payload_bytes = max_payload_bytes
        self.zone = ZoneInfo(mapping.timezone)

    def decode(self, message: RawMessage, out: BatchBuilder) -> None:
        index = len(out.messages)
        out.messages.append(message)
        try:
            self._route(DecodeContext(message, index, out, self.mapping, self.zone))
        except PayloadError as exc:
            out.reject(index, str(exc), exc.kind)

    def _route(self, context: DecodeContext) -> None:
        message = context.message
        parts = message.topic.split("/")
        if parts[0] == self.prefix and self._ignored(parts):
            return
        if len(message.payload) > self.max_payload_bytes:
            raise PayloadError(
                f"payload of {len(message.payload)} bytes exceeds the limit of "
                f"{self.max_payload_bytes}",
                "too_large",
            )
        data = _parse_json(message.payload)
        if parts[0] == self.prefix and len(parts) == 4:
            decode_reading(context, parts[1], parts[2], parts[3], data)
        elif parts[0] == self.prefix and len(parts) == 3:
            if isinstance(data, list):
                decode_gateway_batch(context, parts[1], parts[2], data)
            elif isinstance(data, dict) and "values" in data:
                decode_frame(context, parts[1], parts[2], data)
            else:
                raise PayloadError("a gateway message must be a frame with values or a list")
        elif len(parts) == 3 and parts[0] == "tele" and parts[2] == "SENSOR":
            decode_tasmota(context, parts[1], data)
        elif len(parts) == 3 and parts[1] == "status":
            decode_shelly(context, parts[0], parts[2], data)
        else:
            raise PayloadError(
                f"topic {message.topic!r} is not part of the MQTT contract", "bad_topic"
            )

    @staticmethod
    def _ignored(parts: list[str]) -> bool:
        """Availability, alerts and setpoints share the prefix but carry no readings."""
        return (len(parts) == 4 and parts[3] in IGNORED_LEAVES) or (
            len(parts) == 5 and parts[4] == "setpoint"
        )
