"""One decoder per payload format, all appending to the same columnar batch; a router by topic.

A message that breaks the contract as a whole is rejected with one reason; a reading that does is
rejected alone and the good readings of the same message are kept.
"""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from energyhub.ingest.decoders.common import DecodeContext, one_value_per_meter_and_time
from energyhub.ingest.decoders.frame import decode_frame
from energyhub.ingest.decoders.gateway_batch import decode_gateway_batch
from energyhub.ingest.decoders.reading import decode_reading
from energyhub.ingest.decoders.shelly import decode_shelly
from energyhub.ingest.decoders.sparkplug import decode_sparkplug, is_sparkplug
from energyhub.ingest.decoders.tasmota import decode_tasmota
from energyhub.ingest.errors import PayloadError
from energyhub.ingest.mapping import MeterMap, MeterRef
from energyhub.ingest.message import BatchBuilder, Delivery
from energyhub.ingest.sparkplug.session import SparkplugSessions
from energyhub.ingest.timestamps import parse_ts
from energyhub.json_keys import (
    first_repeat,
    may_repeat_a_key,
    parse_with_repeats,
    repeated_key_reason,
)

log = logging.getLogger(__name__)

IGNORED_LEAVES = frozenset({"status", "alert"})
"""Contract topics that are not readings: gateway availability and alert notifications."""
WEATHER_TOPIC = ("weather", "forecast")
"""`<prefix>/weather/<park>/forecast`: a weather forecast (energyhub.forecast.weather.TOPIC_LEVEL),
stored by `forecast weather-listen`, not a reading of park `weather`."""
TIMES_CACHED = 4096


def _number(text: str) -> int | float:
    """A JSON integer as orjson reads it: a float beyond 64 bits (infinite if it overflows one),
    never a Python int too large for the float the batch stores."""
    value = int(text)
    return value if -(2**63) <= value < 2**64 else float(text)


def _parse_json(payload: bytes) -> Any:
    """orjson first; the standard library as a fallback for NaN, Infinity and 1e400, which some
    devices send and orjson refuses, so that their good neighbours in a frame are kept. A payload
    that may give a key twice in one object is parsed once more keeping every value given
    (`energyhub.json_keys`): the parsers would keep the last one unseen."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        try:
            data = json.loads(payload, parse_int=_number)
        except (ValueError, RecursionError):
            raise PayloadError(f"payload is not JSON: {exc}", "not_json") from None
    if not may_repeat_a_key(payload, data):
        return data
    data = parse_with_repeats(payload, parse_int=_number)
    _refuse_repeated_keys(data)
    return data


def _refuse_repeated_keys(data: Any) -> None:
    """A key given twice in one object, but for a gateway frame's meters (the frame names and
    drops those alone): the whole message is refused, naming the key."""
    frame_values = data.get("values") if isinstance(data, dict) else None
    key = first_repeat(data, skip=frame_values if isinstance(frame_values, dict) else None)
    if key is not None:
        raise PayloadError(repeated_key_reason(key), "duplicate_key")


class Decoder:
    """Routes each message to its decoder and turns contract breaches into rejects.

    Well-formed single readings of known meters, the bulk of a stream, take a short path: the
    topic's meter is looked up once per topic, a timestamp string once per distinct string.
    Everything else, and anything the short path doubts, goes through the full decoders.
    """

    def __init__(
        self,
        mapping: MeterMap,
        prefix: str,
        max_payload_bytes: int,
        sparkplug: SparkplugSessions | None = None,
    ) -> None:
        self.mapping = mapping
        self.sparkplug = sparkplug if sparkplug is not None else SparkplugSessions()
        """Edge-node state: kept by the worker across site reloads, which make a new Decoder."""
        self.prefix = prefix
        self.max_payload_bytes = max_payload_bytes
        self.zone = ZoneInfo(mapping.timezone)
        self._singles: dict[str, MeterRef] = {}
        """Single-reading topics seen so far → their meter."""
        self._times: dict[str, int] = {}
        """RFC 3339 strings seen lately → microseconds (meters of a site share their times)."""

    def decode(self, delivery: Delivery, out: BatchBuilder) -> None:
        """Append the delivery's messages to the batch and decode them."""
        first = out.messages
        out.receive(delivery)
        singles, times, limit = self._singles, self._times, self.max_payload_bytes
        meter_ids, ts_us, values, sources = out.meter_id, out.ts_us, out.value, out.source
        for index, topic, payload in zip(
            itertools.count(first), delivery.topics, delivery.payloads, strict=False
        ):
            ref = singles.get(topic)
            if ref is not None and len(payload) <= limit:
                try:
                    body = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    body = None
                if type(body) is dict and len(body) == 2:
                    ts, value = body.get("ts"), body.get("value")
                    micros = times.get(ts) if type(ts) is str else None
                    if micros is None and type(ts) is str:
                        micros = self._remember(ts)
                    if (
                        micros is not None
                        and type(ts) is str
                        and (type(value) is float or type(value) is int)
                        and payload.count(b":") == 2 + ts.count(":")  # no key given twice
                        and b"\\u" not in payload  # (an escaped colon would hide one)
                    ):
                        meter_ids.append(ref.id)
                        ts_us.append(micros)
                        values.append(float(value))
                        sources.append(index)
                        continue
            self._decode_one(index, topic, payload, out)

    def _remember(self, ts: str) -> int | None:
        try:
            micros = parse_ts(ts)
        except PayloadError:
            return None  # the full decoder rejects it with the reason
        if len(self._times) >= TIMES_CACHED:
            self._times.clear()
        self._times[ts] = micros
        return micros

    def _decode_one(self, index: int, topic: str, payload: bytes, out: BatchBuilder) -> None:
        context = DecodeContext(index, out.received_us[index], out, self.mapping, self.zone)
        start = out.rows
        try:
            self._route(context, topic, payload)
        except PayloadError as exc:
            out.reject(index, str(exc), exc.kind)
        except RecursionError:  # JSON nested almost to orjson's limit of 1024, then repr()'d
            out.reject(index, "payload is nested too deeply", "not_json")
        except Exception as exc:  # a poison message must not stop the worker (nor, redelivered,
            # every restart of it): rejected with the error, logged with its traceback
            log.exception("decoding a message on %s failed", topic)
            out.reject(index, f"could not decode: {type(exc).__name__}: {exc}"[:200], "error")
        if out.rows - start > 1:
            one_value_per_meter_and_time(out, start, self.mapping.by_id)

    def _route(self, context: DecodeContext, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if parts[0] == self.prefix and self._ignored(parts):
            return
        if len(payload) > self.max_payload_bytes:
            raise PayloadError(
                f"payload of {len(payload)} bytes exceeds the limit of {self.max_payload_bytes}",
                "too_large",
            )
        if is_sparkplug(topic):
            decode_sparkplug(context, self.sparkplug, topic, payload)
            return
        data = _parse_json(payload)
        if parts[0] == self.prefix and len(parts) == 4:
            ref = self.mapping.by_topic.get((parts[1], parts[2], parts[3]))
            if ref is not None:
                self._singles[topic] = ref
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
            raise PayloadError(f"topic {topic!r} is not part of the MQTT contract", "bad_topic")

    @staticmethod
    def _ignored(parts: list[str]) -> bool:
        """Availability, alerts, setpoints and weather forecasts share the prefix but carry no
        readings."""
        if len(parts) == 4:
            return parts[3] in IGNORED_LEAVES or (parts[1], parts[3]) == WEATHER_TOPIC
        return len(parts) == 5 and parts[4] == "setpoint"
