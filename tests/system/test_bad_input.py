"""The bad-input campaign: 10,000 malformed messages, generated with Hypothesis, interleaved with
good readings, published through a real Mosquitto to a running `energyhub ingest` process.

Every format of the MQTT contract is covered — single readings, gateway frames, gateway batches,
Tasmota SENSOR and Shelly status — with wrong types, NaN and infinities, missing fields, bad and
skewed timestamps, unknown meters, truncated JSON, binary garbage, payloads over the size limit,
deep nesting and topics of the wrong shape. Each generated case knows what it must become: which
readings are stored and which rejects, by reason, it leaves. Afterwards the database holds exactly
the good readings, `rejected` holds exactly the expected rejects (per topic and kind of reason),
and the worker is the process that started: never restarted, nothing logged above INFO.

The cases are drawn deterministically (`derandomize`), so the count is exact on every run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import string
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from energyhub.sites import SiteFile, parse_site
from energyhub.store.db import connect
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from simulators.mqtt import MqttClient, MqttUrl
from tests.support.broker import Broker

pytestmark = [pytest.mark.system, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SITE_FILE = REPO / "examples" / "expo-park.yaml"
ZONE = ZoneInfo("Asia/Shanghai")
PREFIX = "energyhub"
BAD_MESSAGES = 10_000
GOOD_EVERY = 2
"""A good message after every second bad one."""
MAX_PAYLOAD = 262_144
"""ENERGYHUB_INGEST_MAX_PAYLOAD_BYTES (its default)."""
SKEW_S = 300
RETENTION_DAYS = 730
NOW_S = int(time.time())
GOOD_FROM_S = NOW_S - 3 * 86_400
"""Good readings get distinct seconds from here on (every (meter, ts) is new)."""
DRAIN_S = 120.0

# Which kind of reason a reject has: the first label whose text the reason contains.
REASONS = {
    "too_large": "exceeds the limit of",
    "nested": "nested too deeply",
    "not_json": "payload is not JSON",
    "bad_topic": "is not part of the MQTT contract",
    "unknown_meter": "unknown meter ",
    "not_finite": "value is not finite",
    "future": "s in the future (limit",
    "repeated_meter": " times at ",
    "too_old": "is older than the retention",
    "bad_value": "value must be a number",
    "bad_ts": "ts ",
    "missing": "has no '",
    "not_object": "must be a JSON object",
    "shape": "gateway",
    "item": "needs meter, ts and value",
}


def reason_kind(reason: str) -> str:
    """The label of a stored reason; specific texts first, a bare `ts ` after them."""
    for label, text in REASONS.items():
        if label in ("shape", "item", "missing", "not_object", "bad_ts"):
            continue
        if text in reason:
            return label
    for label in ("item", "missing", "not_object", "shape", "bad_ts"):
        if REASONS[label] in reason:
            return label
    return f"unclassified: {reason}"


# --- the site's meters --------------------------------------------------------------------------


@dataclass(frozen=True)
class Meters:
    """Meter ids of the loaded example site by contract topic and by device topic."""

    by_topic: dict[tuple[str, str, str], int]
    tasmota: dict[str, int]
    """`tele/<device>/SENSOR` → meter id (all energy_kwh meters in the example)."""
    shelly: dict[str, int]
    """`<device>/status/<component>:<n>` → meter id (energy_kwh)."""

    @property
    def sites(self) -> list[tuple[str, str]]:
        return sorted({(park, site) for park, site, _ in self.by_topic})

    def names(self, park: str, site: str) -> list[str]:
        return sorted(n for p, s, n in self.by_topic if (p, s) == (park, site))


async def load_meters(db_url: str) -> Meters:
    query = """SELECT m.id, m.name, m.quantity, m.device, s.id,
                      CASE WHEN s.kind = 'park' THEN s.id ELSE s.parent_id END
               FROM meters m JOIN sites s ON s.id = m.site_id WHERE m.active"""
    async with connect(db_url) as conn:
        rows = await (await conn.execute(query)).fetchall()
    by_topic: dict[tuple[str, str, str], int] = {}
    tasmota: dict[str, int] = {}
    shelly: dict[str, int] = {}
    for meter_id, name, quantity, device, site_id, park_id in rows:
        by_topic[(park_id, site_id, name)] = int(meter_id)
        if device:
            assert quantity == "energy_kwh", "the generator sends device energy counters"
            if device["format"] == "tasmota":
                tasmota[f"tele/{device['device']}/SENSOR"] = int(meter_id)
            else:
                topic = f"{device['device']}/status/{device['component']}:{device['channel']}"
                shelly[topic] = int(meter_id)
    return Meters(by_topic, tasmota, shelly)


# --- cases: a message and what it must become ---------------------------------------------------

Reading = tuple[int, int, float]
"""(meter id, epoch seconds, value)."""


@dataclass
class Case:
    topic: str
    payload: bytes
    rejects: list[str] = field(default_factory=list)
    """Labels of the rejects it must leave (one per bad reading or per refused message)."""
    good: list[Reading] = field(default_factory=list)


class Clock:
    """Distinct seconds for good readings, so that no (meter, ts) comes twice."""

    def __init__(self) -> None:
        self.next_s = GOOD_FROM_S

    def __call__(self) -> int:
        self.next_s += 1
        return self.next_s


Make = Callable[[Meters, Clock], Case]
"""A drawn case, built once the meters are known and good seconds are handed out in order."""


def rfc3339(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, ZONE).isoformat()


def tasmota_time(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, ZONE).replace(tzinfo=None).isoformat()


def dumps(body: Any) -> bytes:
    return orjson.dumps(body)


NAME = st.text(alphabet=string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=12)
WORD = st.text(alphabet=string.ascii_letters, max_size=16)
"""Text that is neither a number nor a time, and holds no reason's words."""
INT64 = st.integers(-(2**63), 2**63 - 1)
FINITE = st.floats(
    allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64
) | st.integers(-(2**53), 2**53)
"""Good values: any finite double but denormals, which the ingest rejects as no reading."""
NOT_A_NUMBER = st.one_of(
    WORD, st.booleans(), st.none(), st.lists(INT64, max_size=3), st.just({"v": 1})
)
NON_FINITE = st.sampled_from(
    [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"1" + b"0" * 400]
)
BAD_TS = st.one_of(
    WORD,
    st.sampled_from(
        [
            "2026-11-26T14:00:00",  # no offset
            "2026-11-26 14:00",
            "2026-02-30T00:00:00Z",
            "2026-11-26T25:00:00+08:00",
            "2026-11-26T14:00:00+25:00",
            "26/11/2026 14:00",
            "",
        ]
    ),
    st.integers(-(2**63), -1),
    st.floats(max_value=-0.001, allow_nan=False, allow_infinity=False),
    st.integers(min_value=100_000_000_000_000, max_value=2**63 - 1),
    st.booleans(),
    st.none(),
    st.lists(INT64, max_size=2),
)
TASMOTA_BAD_TS = st.one_of(
    WORD,
    st.sampled_from(["2026-02-30T00:00:00", "2026-11-26T25:00:00", "26/11/2026 14:00", ""]),
    st.integers(-(2**63), -1),
    st.integers(min_value=100_000_000_000_000, max_value=2**63 - 1),
    st.booleans(),
    st.none(),
)
"""Tasmota's Time has no offset (it is the device's local time): only these are bad."""
FUTURE_S = st.integers(3_600, 50 * 365 * 86_400)
"""Seconds ahead of now: well past the 300 s skew allowed."""
PAST_S = st.integers((RETENTION_DAYS + 2) * 86_400, 50 * 365 * 86_400)


def _time(epoch_s: int, as_text: bool) -> str | int:
    return rfc3339(epoch_s) if as_text else epoch_s * 1000


def pick(items: list[Any], index: int) -> Any:
    return items[index % len(items)]


@st.composite
def single_reading(draw: st.DrawFn) -> Make:
    """`energyhub/{park}/{site}/{meter}` with one fault."""
    fault = draw(
        st.sampled_from(
            ["type", "non_finite", "missing", "ts", "future", "old", "unknown", "not_object"]
        )
    )
    which = draw(st.integers(0, 10_000))
    text_ts = draw(st.booleans())
    value: Any = draw(NOT_A_NUMBER) if fault == "type" else draw(FINITE)
    raw = draw(NON_FINITE) if fault == "non_finite" else b""
    bad_ts = draw(BAD_TS) if fault == "ts" else None
    skew = draw(FUTURE_S if fault == "future" else PAST_S) if fault in ("future", "old") else 0
    missing = draw(st.sampled_from(["ts", "value", "both"])) if fault == "missing" else ""
    unknown = draw(NAME) if fault == "unknown" else ""
    top = (
        draw(st.one_of(st.lists(INT64, max_size=3), INT64, WORD, st.none()))
        if fault == "not_object"
        else None
    )

    def make(meters: Meters, clock: Clock) -> Case:
        park, site, name = pick(sorted(meters.by_topic), which)
        topic = f"{PREFIX}/{park}/{site}/{name}"
        ts = _time(clock(), text_ts)
        if fault == "type":
            return Case(topic, dumps({"ts": ts, "value": value}), ["bad_value"])
        if fault == "non_finite":
            return Case(topic, b'{"ts": %s, "value": %s}' % (dumps(ts), raw), ["not_finite"])
        if fault == "missing":
            body = {"ts": ts, "value": value}
            for key in ("ts", "value") if missing == "both" else (missing,):
                del body[key]
            return Case(topic, dumps(body), ["missing"])
        if fault == "ts":
            return Case(topic, dumps({"ts": bad_ts, "value": value}), ["bad_ts"])
        if fault in ("future", "old"):
            moment = NOW_S + skew if fault == "future" else NOW_S - skew
            label = "future" if fault == "future" else "too_old"
            return Case(topic, dumps({"ts": _time(moment, text_ts), "value": value}), [label])
        if fault == "unknown":
            known = set(meters.names(park, site)) | {"status", "alert"}
            meter = unknown if unknown not in known else f"{unknown}-x"
            topic = f"{PREFIX}/{park}/{site}/{meter}"
            return Case(topic, dumps({"ts": ts, "value": value}), ["unknown_meter"])
        return Case(topic, dumps(top), ["not_object"])

    return make


@st.composite
def frame(draw: st.DrawFn) -> Make:
    """`energyhub/{park}/{site}` frames: good values beside bad ones, or a frame bad as a whole."""
    fault = draw(st.sampled_from(["values", "values", "ts", "future", "empty", "not_map", "shape"]))
    which = draw(st.integers(0, 10_000))
    text_ts = draw(st.booleans())
    entries = draw(
        st.lists(
            st.tuples(st.sampled_from(["good", "unknown", "type", "non_finite"]), FINITE, NAME),
            min_size=1,
            max_size=8,
        )
    )
    kinds = {kind for kind, _, _ in entries}
    bad_ts = draw(BAD_TS) if fault == "ts" else None
    skew = draw(FUTURE_S) if fault == "future" else 0
    raw = draw(NON_FINITE) if "non_finite" in kinds else b""
    not_map = draw(st.one_of(st.lists(INT64, max_size=3), WORD, INT64)) if fault == "not_map" else 0
    other = (
        draw(st.dictionaries(WORD.filter(lambda k: k != "values"), INT64, max_size=3))
        if fault == "shape"
        else {}
    )
    wrong = draw(NOT_A_NUMBER) if "type" in kinds else None

    def make(meters: Meters, clock: Clock) -> Case:
        park, site = pick(meters.sites, which)
        topic = f"{PREFIX}/{park}/{site}"
        names = meters.names(park, site)
        epoch_s = clock()
        ts = _time(epoch_s, text_ts)
        if fault == "empty":
            return Case(topic, dumps({"ts": ts, "values": {}}), ["shape"])
        if fault == "not_map":
            return Case(topic, dumps({"ts": ts, "values": not_map}), ["not_object"])
        if fault == "shape":  # an object without values is no gateway message
            return Case(topic, dumps(other), ["shape"])
        parts: list[bytes] = []
        case = Case(topic, b"")
        used: set[str] = set()
        for position, (kind, value, unknown) in enumerate(entries):
            if kind in ("good", "type", "non_finite"):
                meter = names[(which + position) % len(names)]
                if meter in used:
                    continue
            else:
                meter = unknown if unknown not in names else f"{unknown}-x"
                if meter in used:
                    continue
            used.add(meter)
            if kind == "good":
                parts.append(dumps(meter) + b": " + dumps(value))
                if fault == "values":
                    case.good.append((meters.by_topic[(park, site, meter)], epoch_s, float(value)))
                elif fault == "future":  # refused one by one, for their time
                    case.rejects.append("future")
            elif kind == "unknown":
                parts.append(dumps(meter) + b": " + dumps(value))
                case.rejects.append("unknown_meter")
            elif kind == "type":
                parts.append(dumps(meter) + b": " + dumps(wrong))
                case.rejects.append("bad_value")
            else:
                parts.append(dumps(meter) + b": " + raw)
                case.rejects.append("not_finite")
        if fault == "values" and not case.rejects:  # at least one bad value in the frame
            parts.append(b'"%s-x": 1' % names[0].encode())
            case.rejects.append("unknown_meter")
        values = b"{" + b", ".join(parts) + b"}"
        if fault == "ts":  # the frame is refused whole, for its time
            case.good, case.rejects = [], ["bad_ts"]
            case.payload = b'{"ts": %s, "values": %s}' % (dumps(bad_ts), values)
            return case
        if fault == "future":
            ts = _time(NOW_S + skew, text_ts)
        case.payload = b'{"ts": %s, "values": %s}' % (dumps(ts), values)
        return case

    return make


@st.composite
def gateway_batch(draw: st.DrawFn) -> Make:
    """`energyhub/{park}/{site}` lists: each item stored or rejected on its own."""
    items = draw(
        st.lists(
            st.sampled_from(["good", "good", "item", "ts", "unknown", "type", "future"]).flatmap(
                lambda kind: st.tuples(
                    st.just(kind),
                    FINITE,
                    NAME if kind == "unknown" else st.just(""),
                    BAD_TS if kind == "ts" else st.just(None),
                    NOT_A_NUMBER if kind == "type" else st.just(None),
                )
            ),
            max_size=10,
        )
    )
    which = draw(st.integers(0, 10_000))
    text_ts = draw(st.booleans())
    skew = draw(FUTURE_S) if any(item[0] == "future" for item in items) else 0

    def make(meters: Meters, clock: Clock) -> Case:
        park, site = pick(meters.sites, which)
        topic = f"{PREFIX}/{park}/{site}"
        names = meters.names(park, site)
        if not items:
            return Case(topic, b"[]", ["shape"])
        body: list[Any] = []
        case = Case(topic, b"")
        future: dict[str, list[float]] = {}
        for position, (kind, value, unknown, bad_ts, wrong) in enumerate(items):
            meter = names[(which + position) % len(names)]
            epoch_s = clock()
            ts = _time(epoch_s, text_ts)
            if kind == "good":
                body.append({"meter": meter, "ts": ts, "value": value})
                case.good.append((meters.by_topic[(park, site, meter)], epoch_s, float(value)))
            elif kind == "item":
                body.append([meter, ts, value] if position % 2 else {"meter": meter, "ts": ts})
                case.rejects.append("item")
            elif kind == "ts":
                body.append({"meter": meter, "ts": bad_ts, "value": value})
                case.rejects.append("bad_ts")
            elif kind == "unknown":
                name = unknown if unknown not in names else f"{unknown}-x"
                body.append({"meter": name, "ts": ts, "value": value})
                case.rejects.append("unknown_meter")
            elif kind == "type":
                body.append({"meter": meter, "ts": ts, "value": wrong})
                case.rejects.append("bad_value")
            else:
                body.append({"meter": meter, "ts": _time(NOW_S + skew, text_ts), "value": value})
                future.setdefault(meter, []).append(float(value))
        for sent in future.values():  # all at one time: a meter given twice is named first
            if len(sent) == 1:
                case.rejects.append("future")
            else:  # the same value is kept once (then refused for its time), different ones not
                case.rejects += ["repeated_meter"] + (["future"] if len(set(sent)) == 1 else [])
        if not case.rejects:  # at least one bad item in the batch
            body.append({"meter": names[0], "value": 1})
            case.rejects.append("item")
        case.payload = dumps(body)
        return case

    return make


@st.composite
def device(draw: st.DrawFn) -> Make:
    """Tasmota SENSOR and Shelly status messages of mapped devices, each with one fault."""
    tasmota = draw(st.booleans())
    fault = draw(st.sampled_from(["type", "non_finite", "missing", "ts", "future", "not_object"]))
    which = draw(st.integers(0, 10_000))
    value = draw(FINITE)
    wrong = draw(NOT_A_NUMBER) if fault == "type" else None
    raw = draw(NON_FINITE) if fault == "non_finite" else b""
    bad_ts = draw(TASMOTA_BAD_TS if tasmota else BAD_TS) if fault == "ts" else None
    skew = draw(FUTURE_S) if fault == "future" else 0
    top = draw(st.one_of(st.lists(INT64, max_size=3), INT64, WORD)) if fault == "not_object" else 0

    def make(meters: Meters, clock: Clock) -> Case:
        epoch_s = clock()
        if fault == "future":
            epoch_s = NOW_S + skew
        if tasmota:
            topic = pick(sorted(meters.tasmota), which)
            time_ = bad_ts if fault == "ts" else tasmota_time(epoch_s)
            energy = b'{"Total": %s, "Power": 5}'
            total = {"type": dumps(wrong), "non_finite": raw}.get(fault, dumps(value))
            body = b'{"Time": %s, "ENERGY": %s}' % (dumps(time_), energy % total)
            if fault == "missing":
                body = dumps({"Time": time_, "Energy": {"Total": value}})
        else:
            topic = pick(sorted(meters.shelly), which)
            minute = bad_ts if fault == "ts" else epoch_s
            total = {"type": dumps(wrong), "non_finite": raw}.get(fault, dumps(value))
            body = b'{"apower": 1.5, "aenergy": {"total": %s, "minute_ts": %s}}' % (
                total,
                dumps(minute),
            )
            if fault == "missing":
                body = dumps({"apower": 1.5})
        if fault == "not_object":
            body = dumps(top)
        label = {"type": "bad_value", "ts": "bad_ts", "non_finite": "not_finite"}.get(fault, fault)
        return Case(topic, body, [label])

    return make


@st.composite
def broken(draw: st.DrawFn) -> Make:
    """Not JSON at all, too large, too deep, or on a topic outside the contract."""
    fault = draw(
        st.sampled_from(["truncated", "garbage", "garbage", "deep", "topic"] * 4 + ["large"])
    )
    which = draw(st.integers(0, 10_000))
    cut = draw(st.floats(0, 1, exclude_max=True)) if fault == "truncated" else 0.0
    garbage = (
        draw(st.binary(min_size=1, max_size=200).filter(_not_json)) if fault == "garbage" else b""
    )
    size = draw(st.integers(MAX_PAYLOAD + 1, MAX_PAYLOAD + 65_536)) if fault == "large" else 0
    depth = draw(st.integers(1_000, 1_020)) if fault == "deep" else 0
    levels = (
        []
        if fault != "topic"
        else draw(
            st.lists(NAME, min_size=0, max_size=6).filter(
                lambda levels: (
                    len(levels) not in (2, 3)
                    and not (len(levels) == 4 and levels[-1] == "setpoint")
                )
            )
        )
    )

    def make(meters: Meters, clock: Clock) -> Case:
        park, site, name = pick(sorted(meters.by_topic), which)
        topic = pick(
            [f"{PREFIX}/{park}/{site}/{name}", f"{PREFIX}/{park}/{site}", *meters.tasmota],
            which,
        )
        good = dumps({"ts": rfc3339(clock()), "value": 1.0})
        if fault == "truncated":
            return Case(topic, good[: int(cut * len(good))], ["not_json"])
        if fault == "garbage":
            return Case(topic, garbage, ["not_json"])
        if fault == "large":
            padding = b" " * (size - len(good))
            return Case(topic, good[:-1] + padding + b"}", ["too_large"])
        if fault == "deep":  # valid JSON that only a reject reason's repr() trips over
            nested = b"[" * depth + b"]" * depth
            deep = {
                4: b'{"ts": 1, "value": %s}',
                3: b'[{"meter": %s, "ts": 1}]',
                1: b'{"Time": "2026-01-01T00:00:00", "ENERGY": {"Total": %s}}',
            }[len(topic.split("/")) if topic.startswith(PREFIX) else 1]
            return Case(topic, deep % nested, ["nested"])
        return Case("/".join([PREFIX, *levels]), good, ["bad_topic"])

    return make


def _not_json(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            json.loads(raw)
        except (ValueError, RecursionError):
            return True
    return False


BAD = st.one_of(single_reading(), frame(), gateway_batch(), device(), broken())


PER_EXAMPLE = 50
"""Cases drawn per Hypothesis example (`st.data()`): far less overhead than one each."""


def draw_cases(n: int) -> list[Make]:
    """n cases, the same on every run: Hypothesis derandomized, generation phase only; a few
    more examples than needed run (an example may overrun), the first n cases are kept."""
    drawn: list[Make] = []

    @settings(
        max_examples=n // PER_EXAMPLE + 10,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        for _ in range(PER_EXAMPLE):
            drawn.append(data.draw(BAD))

    collect()
    assert len(drawn) >= n, f"Hypothesis drew {len(drawn)} cases, not {n}"
    drawn = drawn[:n]
    assert len(drawn) == n, f"Hypothesis drew {len(drawn)} cases, not {n}"
    return drawn


def good_message(meters: Meters, clock: Clock, rng: random.Random) -> Case:
    """A well-formed message of one of the five formats, and the readings it carries."""
    kind = rng.choice(["single", "single", "frame", "batch", "tasmota", "shelly"])
    value = round(rng.uniform(-1000, 100_000), rng.randint(0, 6))
    epoch_s = clock()
    if kind == "single":
        (park, site, name), meter_id = rng.choice(sorted(meters.by_topic.items()))
        ts = _time(epoch_s, rng.random() < 0.5)
        return Case(
            f"{PREFIX}/{park}/{site}/{name}",
            dumps({"ts": ts, "value": value}),
            [],
            [(meter_id, epoch_s, value)],
        )
    if kind in ("frame", "batch"):
        park, site = rng.choice(meters.sites)
        names = meters.names(park, site)
        values = {name: round(value + i, 3) for i, name in enumerate(names)}
        good = [(meters.by_topic[(park, site, n)], epoch_s, v) for n, v in values.items()]
        if kind == "frame":
            return Case(
                f"{PREFIX}/{park}/{site}",
                dumps({"ts": rfc3339(epoch_s), "values": values}),
                [],
                good,
            )
        items = [{"meter": n, "ts": epoch_s * 1000, "value": v} for n, v in values.items()]
        return Case(f"{PREFIX}/{park}/{site}", dumps(items), [], good)
    if kind == "tasmota":
        topic, meter_id = rng.choice(sorted(meters.tasmota.items()))
        body = {"Time": tasmota_time(epoch_s), "ENERGY": {"Total": value, "Power": 12}}
        return Case(topic, dumps(body), [], [(meter_id, epoch_s, value)])
    topic, meter_id = rng.choice(sorted(meters.shelly.items()))
    body = {"apower": 3.5, "aenergy": {"total": value, "minute_ts": epoch_s}}
    return Case(topic, dumps(body), [], [(meter_id, epoch_s, value / 1000.0)])


def campaign(meters: Meters) -> list[Case]:
    """The 10,000 bad messages with a good one after every GOOD_EVERY of them."""
    clock, rng = Clock(), random.Random(12)
    cases: list[Case] = []
    for index, make in enumerate(draw_cases(BAD_MESSAGES)):
        case = make(meters, clock)
        assert case.rejects, f"case {index} on {case.topic} is not bad: {case.payload[:200]!r}"
        cases.append(case)
        if index % GOOD_EVERY == GOOD_EVERY - 1:
            cases.append(good_message(meters, clock, rng))
    return cases


# --- the running stack ---------------------------------------------------------------------------


@dataclass
class Ingest:
    db_url: str
    broker: Broker
    process: subprocess.Popen[bytes]
    log: Path


def start_ingest(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "energyhub", "ingest"], env=env, cwd=REPO, stdout=out, stderr=out
        )


def wide_open_site() -> SiteFile:
    """The example site with every meter's bounds declared wide open: this campaign is about
    malformed messages, any finite number is a good value here (plausibility at ingest has its
    own tests, tests/ingest/test_plausibility.py)."""
    document = yaml.safe_load(SITE_FILE.read_text())
    for park in document["city"]["parks"]:
        for owner in [park, *park.get("buildings", [])]:
            for meter in owner.get("meters", []):
                meter.update({"min": -sys.float_info.max, "max": sys.float_info.max})
    return parse_site(document)


@pytest.fixture
async def ingest(pg_url: str, tmp_path: Path) -> AsyncIterator[Ingest]:
    """A fresh database with the example site, a private Mosquitto with the production config,
    and `energyhub ingest` (one worker) as a process of its own."""
    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, wide_open_site())
    broker = Broker(tmp_path / "mosquitto")
    broker.start()
    log = tmp_path / "ingest.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")} | {
        "ENERGYHUB_DB_URL": pg_url,
        "ENERGYHUB_MQTT_URL": broker.url,
        "ENERGYHUB_MQTT_TOPIC_PREFIX": PREFIX,
        "ENERGYHUB_MQTT_CLIENT_ID_PREFIX": f"bad{tmp_path.name[-8:]}",
        "ENERGYHUB_INGEST_METRICS_PORT": "0",
        "ENERGYHUB_INGEST_MAX_PAYLOAD_BYTES": str(MAX_PAYLOAD),
        "ENERGYHUB_INGEST_MAX_FUTURE_SKEW_S": str(SKEW_S),
        "ENERGYHUB_RETENTION_DAYS": str(RETENTION_DAYS),
        "ENERGYHUB_LOG_LEVEL": "INFO",
    }
    process = start_ingest(env, log)
    try:
        deadline = time.monotonic() + 60
        while "subscribed to" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the ingest did not subscribe within 60 s"
            await asyncio.sleep(0.1)
        yield Ingest(pg_url, broker, process, log)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)
        broker.stop()


async def publish(url: str, cases: list[Case]) -> None:
    async with MqttClient(MqttUrl.parse(url), "bad-input-publisher") as client:
        for start in range(0, len(cases), 500):
            await client.publish_many((c.topic, c.payload) for c in cases[start : start + 500])
        await client.flush(120)


async def wait_for_counts(db_url: str, readings: int, rejects: int) -> tuple[int, int]:
    """Until the database holds this many readings and rejects, or DRAIN_S passed."""
    deadline = time.monotonic() + DRAIN_S
    counts = (-1, -1)
    async with connect(db_url) as conn:
        while time.monotonic() < deadline:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM rejected)"
            )
            row = await cur.fetchone()
            assert row is not None
            counts = (int(row[0]), int(row[1]))
            if counts[0] >= readings and counts[1] >= rejects:
                break
            await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)  # anything more would come now
    return counts


async def test_bad_input_campaign(ingest: Ingest) -> None:
    meters = await load_meters(ingest.db_url)
    started = time.perf_counter()
    cases = campaign(meters)
    generated_s = time.perf_counter() - started
    bad = [c for c in cases if c.rejects]
    assert len(bad) == BAD_MESSAGES
    expected_good = Counter(
        (m, datetime.fromtimestamp(s, UTC), v) for c in cases for m, s, v in c.good
    )
    expected_rejects = Counter((c.topic, label) for c in cases for label in c.rejects)
    assert max(expected_good.values()) == 1  # distinct (meter, ts, value): each stored once
    pid = ingest.process.pid

    await publish(ingest.broker.url, cases)
    published_s = time.perf_counter() - started - generated_s
    await wait_for_counts(ingest.db_url, len(expected_good), sum(expected_rejects.values()))
    drained_s = time.perf_counter() - started - generated_s - published_s

    log = ingest.log.read_text(errors="replace")
    assert ingest.process.poll() is None, f"the ingest worker exited:\n{log[-3000:]}"
    assert ingest.process.pid == pid
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]

    async with connect(ingest.db_url) as conn:
        stored = await (await conn.execute("SELECT meter_id, ts, value FROM readings")).fetchall()
        rejected = await (await conn.execute("SELECT topic, reason FROM rejected")).fetchall()
    stored_counter = Counter((int(m), ts, float(v)) for m, ts, v in stored)
    missing = expected_good - stored_counter
    extra = stored_counter - expected_good
    assert not missing and not extra, f"missing {list(missing)[:5]}, extra {list(extra)[:5]}"

    assert all(reason.strip() for _, reason in rejected)
    got_rejects = Counter((topic, reason_kind(reason)) for topic, reason in rejected)
    unexpected = got_rejects - expected_rejects
    absent = expected_rejects - got_rejects
    examples = [r for r in rejected if (r[0], reason_kind(r[1])) in unexpected][:5]
    assert not unexpected and not absent, (
        f"unexpected {list(unexpected.items())[:5]} e.g. {examples}; absent {list(absent.items())[:5]}"
    )

    print(
        f"\n{BAD_MESSAGES} bad + {len(cases) - BAD_MESSAGES} good messages: "
        f"{sum(expected_good.values())} readings stored, {len(rejected)} rejects; "
        f"generated in {generated_s:.1f} s, published in {published_s:.1f} s, "
        f"drained {drained_s:.1f} s after"
    )
