"""Fault injection for replays: a seeded plan, logged line by line, and the pure function that
turns a record file and its fault log into exactly what the broker was sent.

Per message, in this order: `drop` (nothing else applies), `counter-reset` (a counter reading
restarts at zero; later readings of that counter are shifted alike), `clock-skew` (every timestamp
of the messages of a seeded share of topics, `skewed-topics`, moves by the skew), `garbage` (the
payload is replaced by malformed bytes), `duplicate` (sent twice), `reorder` (held back by up to
`delay`). `disconnect` drops the connection once, at a seeded message, for its duration of
recorded time: the messages in that window are held and sent on reconnecting.

Every fault-log line names the fault, the message `index` (0-based, in the record file), its
`topic` and original `payload`; a line that changes the payload also carries what was `sent`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulators.counters import CounterLocator, reset_counters, shift_timestamps
from simulators.durations import parse_duration_s
from simulators.errors import FaultSpecError, RecordFileError, SimulatorInputError
from simulators.record import Record, payload_field, payload_from, read_json_lines

_RATES = ("drop", "duplicate", "reorder", "garbage", "counter-reset", "skewed-topics")
_DURATIONS = ("delay", "disconnect")
FAULTS = (*_RATES, *_DURATIONS, "clock-skew")
LOGGED = frozenset((*FAULTS, "counter-offset")) - {"skewed-topics", "delay"}
"""Fault names a log line may carry (`counter-offset`: a reading shifted by an earlier reset)."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """Rates are per message (`skewed-topics`: share of topics); durations are in seconds."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    garbage: float = 0.0
    counter_reset: float = 0.0
    skewed_topics: float = 0.1
    delay_s: float = 2.0
    disconnect_s: float = 0.0
    clock_skew_s: float = 0.0

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Read `drop=0.01,delay=2s,clock-skew=+300s,...`; an empty text injects nothing."""
        values: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, raw = item.partition("=")
            name = name.strip().lower()
            if not sep or name not in FAULTS:
                raise FaultSpecError(
                    f"--faults: {item!r} is not NAME=VALUE with NAME one of {', '.join(FAULTS)}"
                )
            if name.replace("-", "_") in values:  # the last one silently won
                raise FaultSpecError(f"--faults: {name} is given twice, in {text!r}")
            values[name.replace("-", "_")] = _value(name, raw.strip())
        renamed = {
            "delay_s": values.pop("delay", 2.0),
            "disconnect_s": values.pop("disconnect", 0.0),
            "clock_skew_s": values.pop("clock_skew", 0.0),
        }
        return cls(**values, **renamed)


def _value(name: str, raw: str) -> float:
    where = f"--faults: {name}"
    try:
        if name in _DURATIONS:
            return parse_duration_s(raw, where)
        if name == "clock-skew":
            return parse_duration_s(raw, where, signed=True)
    except SimulatorInputError as exc:
        raise FaultSpecError(str(exc)) from None
    try:
        rate = float(raw)
    except ValueError:
        rate = float("nan")
    if not 0.0 <= rate <= 1.0:
        raise FaultSpecError(f"{where}: expected a probability between 0 and 1, got {raw!r}")
    return rate


def _entry(fault: str, index: int, record: Record, **extra: object) -> dict[str, object]:
    return {
        "fault": fault,
        "index": index,
        "topic": record.topic,
        **payload_field(record.payload),
        **extra,
    }


def plan_faults(
    records: list[Record], spec: FaultSpec, seed: int, counters: CounterLocator
) -> list[dict[str, object]]:
    """The fault log: which message gets which fault, decided by a seeded Generator."""
    rng = np.random.default_rng(seed)
    n = len(records)
    draws = {name: rng.random(n) for name in ("drop", "reset", "garbage", "duplicate", "reorder")}
    topics = sorted({r.topic for r in records})
    skewed = set()
    if spec.clock_skew_s:
        count = max(1, round(spec.skewed_topics * len(topics)))
        skewed = {topics[i] for i in rng.choice(len(topics), size=count, replace=False)}
    log: list[dict[str, object]] = []
    offsets: dict[str, float] = {}
    for i, record in enumerate(records):
        if draws["drop"][i] < spec.drop:
            log.append(_entry("drop", i, record))
            continue
        payload = record.payload
        fresh = draws["reset"][i] < spec.counter_reset
        payload, started = reset_counters(payload, record.topic, counters, offsets, fresh)
        if payload != record.payload:
            fault = "counter-reset" if started else "counter-offset"
            sent = payload_field(payload, "sent")
            log.append(_entry(fault, i, record, **sent, counters=started))
        if record.topic in skewed:
            payload = shift_timestamps(payload, spec.clock_skew_s)
            sent = payload_field(payload, "sent")
            log.append(_entry("clock-skew", i, record, skew_s=spec.clock_skew_s, **sent))
        if draws["garbage"][i] < spec.garbage:
            payload = _garbage(payload, rng)
            log.append(_entry("garbage", i, record, **payload_field(payload, "sent")))
        if draws["duplicate"][i] < spec.duplicate:
            log.append(_entry("duplicate", i, record))
        if draws["reorder"][i] < spec.reorder:
            log.append(_entry("reorder", i, record, delay_s=float(rng.uniform(0, spec.delay_s))))
    if spec.disconnect_s and n:
        i = int(rng.integers(n))
        log.append(_entry("disconnect", i, records[i], duration_s=spec.disconnect_s))
    return log


def _garbage(payload: bytes, rng: np.random.Generator) -> bytes:
    """Malformed bytes of a kind field devices really send."""
    kind = int(rng.integers(4))
    if kind == 0 and len(payload) > 1:
        return payload[: int(rng.integers(1, len(payload)))]  # cut off mid-message
    if kind == 1:
        return bytes(rng.integers(0, 256, size=int(rng.integers(1, 64)), dtype=np.uint8))
    if kind == 2:
        return b'{"ts": null, "value": "n/a"}'
    return b""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One publish of a replay: when (recorded time), which record, what."""

    t: float
    index: int
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True, slots=True)
class Disconnect:
    t: float
    duration_s: float


def schedule(
    records: list[Record], log: Iterable[dict[str, object]]
) -> tuple[list[Outgoing], list[Disconnect]]:
    """What a replay sends, in order, given the records and the fault log (a pure function)."""
    payloads: dict[int, bytes] = {}
    dropped, copies, delays, disconnects = set(), {}, {}, []
    for entry in log:
        index, fault = int(str(entry["index"])), entry["fault"]
        if fault == "drop":
            dropped.add(index)
        elif fault == "duplicate":
            copies[index] = 2
        elif fault == "reorder":
            delays[index] = float(str(entry["delay_s"]))
        elif fault == "disconnect":
            disconnects.append(Disconnect(records[index].t, float(str(entry["duration_s"]))))
        elif "sent" in entry or "sent_b64" in entry:
            payloads[index] = payload_from(entry, "sent")
    out = []
    for i, record in enumerate(records):
        if i in dropped:
            continue
        t = record.t + delays.get(i, 0.0)
        for gap in disconnects:
            if gap.t <= record.t < gap.t + gap.duration_s:
                t = max(t, gap.t + gap.duration_s)
        payload = payloads.get(i, record.payload)
        out += [Outgoing(t, i, record.topic, payload, record.retain)] * copies.get(i, 1)
    out.sort(key=lambda o: (o.t, o.index))
    return out, disconnects


def expected_deliveries(
    records: list[Record], log: Iterable[dict[str, object]]
) -> list[tuple[str, bytes]]:
    """(topic, payload) of every message the broker receives, in send order, duplicates included."""
    return [(o.topic, o.payload) for o in schedule(records, log)[0]]


def read_fault_log(path: Path) -> list[dict[str, object]]:
    entries = read_json_lines(path, "fault log")
    for number, entry in enumerate(entries, 1):
        if entry.get("fault") not in LOGGED or not isinstance(entry.get("index"), int):
            raise RecordFileError(f"{path} line {number}: not a fault-log entry")
    return entries
