"""Record MQTT traffic to JSON Lines, and read it back.

One line per message: `{"t": <receive time, epoch s>, "topic": ..., "payload": <text>,
"retain": false}`; a payload that is not UTF-8 is stored as `"payload_b64"` instead.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from energyhub.bounds import EARLIEST, LATEST
from energyhub.errors import CONTROL
from energyhub.json_keys import repeated_key, repeated_key_reason
from energyhub.mqtt import MAX_TOPIC_BYTES
from energyhub.userfiles import cannot_write, read_text
from energyhub.waiting import within
from simulators.errors import RecordFileError
from simulators.mqtt import MqttClient, MqttUrl

TOPIC_NAME_REFUSED = ("+", "#")
"""What a topic name (unlike a filter) may not hold, beside a control character (CONTROL, NUL
included): Mosquitto disconnects whoever publishes it."""


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded message."""

    t: float
    topic: str
    payload: bytes
    retain: bool = False

    def to_json(self) -> dict[str, object]:
        line: dict[str, object] = {"t": round(self.t, 6), "topic": self.topic}
        line.update(payload_field(self.payload))
        line["retain"] = self.retain
        return line


def payload_field(payload: bytes, name: str = "payload") -> dict[str, str]:
    """`{name: text}` for UTF-8 payloads, `{name_b64: ...}` otherwise."""
    try:
        return {name: payload.decode()}
    except UnicodeDecodeError:
        return {f"{name}_b64": base64.b64encode(payload).decode()}


def payload_from(line: dict[str, object], name: str = "payload") -> bytes:
    """The inverse of `payload_field`; raise KeyError/ValueError when neither key holds a string."""
    if isinstance(text := line.get(name), str):
        return text.encode()
    encoded = line[f"{name}_b64"]
    if not isinstance(encoded, str):
        raise ValueError(f"{name}_b64 must be a string")
    return base64.b64decode(encoded, validate=True)


def read_json_lines(path: Path, what: str) -> list[dict[str, object]]:
    """Every line of a JSON Lines file as an object; errors name the file and line."""
    try:
        text = read_text(path, encoding="utf-8-sig")  # a byte-order mark is no part of line 1
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise RecordFileError(f"{path}: cannot read the {what}: {reason}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise RecordFileError(f"{path} line {number}: not JSON") from None
        if not isinstance(row, dict):
            raise RecordFileError(f"{path} line {number}: expected a JSON object")
        if (key := repeated_key(line.encode(), row)) is not None:  # the last was kept unseen
            raise RecordFileError(f"{path} line {number}: {repeated_key_reason(key)}")
        rows.append(row)
    return rows


def read_records(path: Path) -> list[Record]:
    """A record file's messages in file order; at least one is required."""
    records = []
    for number, row in enumerate(read_json_lines(path, "record file"), 1):
        try:
            t, topic = row["t"], row["topic"]
            if (
                not isinstance(t, int | float)
                or isinstance(t, bool)  # `true` is no time
                or not isinstance(topic, str)
                or not topic
            ):
                raise ValueError
            records.append(Record(float(t), topic, payload_from(row), bool(row.get("retain"))))
        except (KeyError, ValueError):
            raise RecordFileError(
                f"{path} record {number}: expected t (epoch seconds), topic and payload, "
                f"got {row!r:.120}"
            ) from None
        # within the years stored times take: a `t` beyond had `replay` wait for centuries
        if not EARLIEST.timestamp() <= t < LATEST.timestamp():
            raise RecordFileError(
                f"{path} record {number}: t must be epoch seconds from {EARLIEST:%Y} to "
                f"{LATEST:%Y}, got {t!r}"
            )
        if any(c in topic for c in TOPIC_NAME_REFUSED) or CONTROL.search(topic):
            raise RecordFileError(
                f"{path} record {number}: topic must hold no '+', '#' or a control character "
                f"(the broker closes the connection of whoever publishes it), got {topic!r:.120}"
            )
        if (size := len(topic.encode())) > MAX_TOPIC_BYTES:  # struct.error at the publish
            raise RecordFileError(
                f"{path} record {number}: topic must be at most {MAX_TOPIC_BYTES:,} bytes of "
                f"UTF-8 (MQTT's limit), got {size:,}"
            )
    if not records:
        raise RecordFileError(f"{path}: the record file holds no messages")
    return records


def write_records(path: Path, records: Iterable[Record]) -> None:
    with path.open("wb") as out:
        for record in records:
            out.write(orjson.dumps(record.to_json()) + b"\n")


@dataclass(frozen=True, slots=True)
class RecordLimits:
    """When a recording stops (whichever comes first; none of them: on Ctrl-C)."""

    count: int | None = None
    duration_s: float | None = None
    idle_s: float | None = None


async def record(
    url: MqttUrl,
    filters: list[str],
    out: Path,
    limits: RecordLimits,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Subscribe to `filters` and append each message to `out`; return how many were written."""
    written = 0
    deadline = time.monotonic() + limits.duration_s if limits.duration_s else None
    try:
        handle = out.open("wb")
    except OSError as exc:
        raise RecordFileError(cannot_write("--out", out, exc)) from None
    try:
        async with MqttClient(url, f"energyhub-rec-{uuid.uuid4().hex[:12]}") as client:
            await client.subscribe(filters)
            messages = client.messages()
            while limits.count is None or written < limits.count:
                # idle once traffic has started: a recorder runs up before what it records
                timeout = _next_timeout(deadline, limits.idle_s if written else None)
                try:
                    message = await within(anext(messages), timeout)
                except TimeoutError:
                    break
                line = Record(time.time(), message.topic, message.payload, message.retain)
                _write(handle, out, orjson.dumps(line.to_json()) + b"\n")
                written += 1
                if progress is not None:
                    progress(written)
    finally:
        _write(handle, out, None)  # closes it: a full disk is told at the last flush
    return written


def _write(handle: BinaryIO, out: Path, line: bytes | None) -> None:
    """Append a line to the record file (None: close it); RecordFileError on a disk error."""
    try:
        if line is None:
            handle.close()
        else:
            handle.write(line)
    except OSError as exc:
        raise RecordFileError(cannot_write("--out", out, exc)) from None


def _next_timeout(deadline: float | None, idle_s: float | None) -> float | None:
    left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    if idle_s is None:
        return left
    return idle_s if left is None else min(idle_s, left)
