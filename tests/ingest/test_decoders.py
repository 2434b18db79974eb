"""Decoders on their own: each format, malformed variants, and no input that escapes as a crash."""

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energyhub.ingest.decoders import Decoder
from energyhub.ingest.mapping import DeviceKey, MeterMap, MeterRef
from energyhub.ingest.message import BatchBuilder, Delivery
from energyhub.ingest.timestamps import parse_ts
from energyhub.ingest.validate import Limits, validate

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
NOW_US = int(NOW.timestamp() * 1_000_000)
MAPPING = MeterMap(
    by_topic={
        ("expo", "b01", "main"): MeterRef(1, "power_kw"),
        ("expo", "b01", "heat"): MeterRef(2, "energy_kwh"),
        ("expo", "expo", "outdoor"): MeterRef(3, "temperature_c"),
    },
    by_device={
        DeviceKey("tasmota", "plug-1", "switch", 0): MeterRef(10, "energy_kwh"),
        DeviceKey("tasmota", "plug-2", "switch", 0): MeterRef(11, "power_kw"),
        DeviceKey("shelly", "pro3em", "em", 0): MeterRef(12, "power_kw"),
        DeviceKey("shelly", "pro1pm", "switch", 0): MeterRef(13, "energy_kwh"),
    },
    timezone="Asia/Shanghai",
)


def decode(*messages: tuple[str, object]) -> BatchBuilder:
    decoder = Decoder(MAPPING, "energyhub", max_payload_bytes=1024)
    out = BatchBuilder()
    topics = [topic for topic, _ in messages]
    raws = [p if isinstance(p, bytes) else orjson.dumps(p) for _, p in messages]
    decoder.decode(Delivery(topics, raws, [NOW_US] * len(raws), b"", 1), out)
    return out


def readings(out: BatchBuilder) -> list[tuple[int, datetime, float]]:
    return [
        (m, datetime.fromtimestamp(t / 1e6, UTC), v)
        for m, t, v in zip(out.meter_id, out.ts_us, out.value, strict=True)
    ]


def test_single_reading_rfc3339_and_epoch() -> None:
    out = decode(
        ("energyhub/expo/b01/main", {"ts": "2026-11-26T14:00:00+08:00", "value": 512.5}),
        ("energyhub/expo/b01/heat", {"ts": 1_795_672_800_000, "value": 10}),
        ("energyhub/expo/expo/outdoor", {"ts": 1_795_672_800, "value": 12.5}),
    )
    assert readings(out) == [
        (1, NOW, 512.5),
        (2, NOW, 10.0),
        (3, NOW, 12.5),
    ]
    assert out.rejects == []


def test_gateway_frame_keeps_good_values_and_rejects_bad_ones() -> None:
    out = decode(
        (
            "energyhub/expo/b01",
            {"ts": "2026-11-26T06:00:00Z", "values": {"main": 1, "heat": "x", "nope": 3}},
        )
    )
    assert readings(out) == [(1, NOW, 1.0)]
    assert [(r.kind, r.reason) for r in out.rejects] == [
        ("bad_value", "meter heat: value must be a number, got 'x'"),
        ("unknown_meter", "unknown meter expo/b01/nope"),
    ]


def test_gateway_batch_item_by_item() -> None:
    out = decode(
        (
            "energyhub/expo/b01",
            [
                {"meter": "main", "ts": "2026-11-26T06:00:00Z", "value": 2},
                {"meter": "heat", "ts": "2026-11-26T06:00:00", "value": 5},
                {"meter": "heat"},
                {"meter": "heat", "ts": "2026-11-26T06:00:00Z", "value": True},
            ],
        )
    )
    assert readings(out) == [(1, NOW, 2.0)]
    assert [r.reason for r in out.rejects] == [
        "item 1: ts has no UTC offset, got '2026-11-26T06:00:00'",
        "item 2: needs meter, ts and value, got {'meter': 'heat'}",
        "item 3: value must be a number, got True",
    ]


def test_tasmota_energy_and_power_in_site_local_time() -> None:
    sensor = {"Time": "2026-11-26T14:00:00", "ENERGY": {"Total": 123.456, "Power": 450}}
    out = decode(
        ("tele/plug-1/SENSOR", sensor),
        ("tele/plug-2/SENSOR", sensor),
        ("tele/plug-9/SENSOR", sensor),
    )
    assert readings(out) == [(10, NOW, 123.456), (11, NOW, 0.45)]
    assert [r.kind for r in out.rejects] == ["unknown_device"]


def test_tasmota_local_time_the_clocks_repeat_is_the_pass_it_arrived_in() -> None:
    """Europe/Berlin repeats 02:00-03:00 on 2026-10-25. Read always as the first pass, the
    second pass's readings landed on the first's instants (dropped as their duplicates) and
    the hour between had none. A message far from either (a replay) stays the first."""
    berlin = MeterMap(MAPPING.by_topic, MAPPING.by_device, timezone="Europe/Berlin")
    sensor = orjson.dumps({"Time": "2026-10-25T02:30:00", "ENERGY": {"Power": 450}})
    first, second = (
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    )
    arrivals = [first + timedelta(seconds=4), second + timedelta(seconds=4), NOW]
    out = BatchBuilder()
    Decoder(berlin, "energyhub", max_payload_bytes=1024).decode(
        Delivery(
            ["tele/plug-2/SENSOR"] * 3,
            [sensor] * 3,
            [int(t.timestamp() * 1_000_000) for t in arrivals],
            b"",
            1,
        ),
        out,
    )
    assert [ts for _, ts, _ in readings(out)] == [first, second, first]


def test_shelly_gen2_watts_and_watt_hours() -> None:
    out = decode(
        ("pro3em/status/em:0", {"id": 0, "total_act_power": 1500.0}),
        (
            "pro1pm/status/switch:0",
            {"id": 0, "apower": 20, "aenergy": {"total": 2500.0, "minute_ts": 1_795_672_800}},
        ),
        ("pro1pm/status/switch:7", {"apower": 1}),
    )
    assert readings(out) == [(12, NOW, 1.5), (13, NOW, 2.5)]
    assert [r.kind for r in out.rejects] == ["unknown_device"]


@pytest.mark.parametrize(
    ("topic", "payload", "kind", "reason"),
    [
        ("energyhub/expo/b01/main", b"not json", "not_json", "payload is not JSON"),
        (
            "energyhub/expo/b01/main",
            b"x" * 2000,
            "too_large",
            "payload of 2000 bytes exceeds the limit of 1024",
        ),
        (
            "energyhub/expo/b01/main",
            [1, 2],
            "malformed",
            "a single reading must be a JSON object, got list",
        ),
        ("energyhub/expo/b01/main", {"value": 1}, "malformed", "a single reading has no 'ts'"),
        (
            "energyhub/expo/b01/main",
            {"ts": "yesterday", "value": 1},
            "bad_ts",
            "ts is not RFC 3339, got 'yesterday'",
        ),
        (
            "energyhub/expo/b01",
            {"ts": 1, "values": {}},
            "malformed",
            "a gateway frame's values are empty",
        ),
        (
            "energyhub/expo/b01",
            {"ts": 1},
            "malformed",
            "a gateway message must be a frame with values or a list",
        ),
        (
            "energyhub/a/b/c/d/e",
            {"ts": 1},
            "bad_topic",
            "topic 'energyhub/a/b/c/d/e' is not part of the MQTT contract",
        ),
    ],
)
def test_malformed_messages_rejected_whole(
    topic: str, payload: object, kind: str, reason: str
) -> None:
    out = decode((topic, payload))
    assert out.rows == 0
    assert len(out.rejects) == 1
    assert out.rejects[0].kind == kind
    assert out.rejects[0].reason.startswith(reason)


def test_status_alert_and_setpoint_topics_are_not_readings() -> None:
    out = decode(
        ("energyhub/expo/b01/status", b"online"),
        ("energyhub/expo/b01/alert", {"rule": "silence"}),
        ("energyhub/expo/b01/b01-bess/setpoint", {"plan": 1, "ts": 1, "p_kw": 5}),
        # a weather forecast for `forecast weather-listen`: was rejected as a reading without ts
        ("energyhub/weather/expo/forecast", {"steps": [{"ts": "2026-11-26T06:00:00Z"}]}),
    )
    assert out.rows == 0 and out.rejects == [] and out.messages == 4


def test_validation_rejects_non_finite_future_and_old_readings() -> None:
    out = decode(
        (
            "energyhub/expo/b01",
            b'{"ts": "2026-11-26T06:00:00Z", "values": {"main": NaN, "heat": 1e400}}',
        ),
        ("energyhub/expo/b01/main", {"ts": "2026-11-26T06:10:00Z", "value": 1}),
        ("energyhub/expo/b01/main", {"ts": "2026-11-26T06:04:00Z", "value": 2}),
        ("energyhub/expo/b01/main", {"ts": "2020-01-01T00:00:00Z", "value": 3}),
    )
    good = validate(out, NOW_US, Limits(max_future_skew_s=300, retention_days=365))
    assert good.value.tolist() == [2.0]
    assert [(r.message, r.kind) for r in out.rejects] == [
        (0, "not_finite"),
        (0, "not_finite"),
        (1, "future"),
        (3, "too_old"),
    ]
    assert (
        out.rejects[2].reason
        == "ts 2026-11-26T06:10:00.000000Z is 600 s in the future (limit 300 s)"
    )
    assert good.ts[0] == np.datetime64("2026-11-26T06:04:00", "us")


@pytest.mark.parametrize(
    ("value", "expected_us"),
    [
        ("2026-11-26T06:00:00Z", NOW_US),
        ("2026-11-26T06:00:00.250+00:00", NOW_US + 250_000),
        (1_795_672_800, 1_795_672_800_000_000),
        (1_795_672_800.5, 1_795_672_800_500_000),
        (1_795_672_800_123, 1_795_672_800_123_000),
    ],
)
def test_timestamps(value: object, expected_us: int) -> None:
    assert parse_ts(value) == expected_us


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
TOPICS = st.sampled_from(
    [
        "energyhub/expo/b01/main",
        "energyhub/expo/b01",
        "energyhub/expo/expo/outdoor",
        "tele/plug-1/SENSOR",
        "pro1pm/status/switch:0",
        "pro3em/status/em:0",
        "energyhub/x",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    topic=TOPICS,
    payload=JSON | st.binary(max_size=64).map(lambda b: {"raw": b.hex()}),
    raw=st.binary(max_size=64),
)
def test_no_input_crashes_the_decoder(topic: str, payload: object, raw: bytes) -> None:
    """Any payload decodes to readings and/or rejects; every message is accounted for."""
    for body in (payload, raw):
        out = decode((topic, body))
        validate(out, NOW_US, Limits(300, 365))
        assert out.messages == 1
        assert out.rows > 0 or out.rejects, body
        assert all(r.reason and r.kind for r in out.rejects)


@settings(max_examples=200, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(["main", "heat", "nope", "x"]), JSON, min_size=1, max_size=4
    ),
    ts=st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.floats(),
        st.text(max_size=30),
        st.just("2026-11-26T06:00:00Z"),
    ),
)
def test_frames_account_for_every_value(values: dict[str, object], ts: object) -> None:
    """Each value ends up stored or rejected, unless the frame as a whole is refused."""
    out = decode(("energyhub/expo/b01", {"ts": ts, "values": values}))
    good = validate(out, NOW_US, Limits(300, 365))
    whole_frame_refused = out.rows == 0 and len(out.rejects) == 1
    assert whole_frame_refused or len(good) + len(out.rejects) == len(values)


def _outcome(out: BatchBuilder, message: int) -> tuple[list[tuple[int, int, float]], list[str]]:
    """The readings and reject reasons of one message of a batch."""
    rows = [
        (m, t, v)
        for m, t, v, s in zip(out.meter_id, out.ts_us, out.value, out.source, strict=True)
        if s == message
    ]
    return rows, [r.reason for r in out.rejects if r.message == message]


@settings(max_examples=300, deadline=None)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "ts": st.sampled_from(["2026-11-26T06:00:00Z", "2026-11-26 14:00", "x", ""])
            | st.integers(0, 2**40)
            | st.none(),
            "value": st.floats() | st.integers(-(2**63), 2**63 - 1) | st.booleans() | st.text(),
        },
    )
    | JSON,
)
def test_the_short_path_agrees_with_the_full_decoder(body: object) -> None:
    """Once a topic's meter is known, single readings skip the router: same readings, same
    rejects as a decoder that has not seen the topic yet."""
    topic = "energyhub/expo/b01/main"
    primed = decode((topic, {"ts": "2026-11-26T05:00:00Z", "value": 1}), (topic, body))
    assert _outcome(primed, 1) == _outcome(decode((topic, body)), 0)


def test_the_short_path_takes_repeated_topics_and_times() -> None:
    topic = "energyhub/expo/b01/main"
    out = decode(*[(topic, {"ts": "2026-11-26T14:00:00+08:00", "value": i}) for i in range(3)])
    assert readings(out) == [(1, NOW, 0.0), (1, NOW, 1.0), (1, NOW, 2.0)]


@pytest.mark.parametrize(
    ("topic", "template"),
    [
        ("energyhub/expo/b01/main", b'{"ts": "2026-11-26T06:00:00Z", "value": %s}'),
        ("energyhub/expo/b01", b'{"ts": "2026-11-26T06:00:00Z", "values": {"main": %s}}'),
        ("tele/plug-2/SENSOR", b'{"Time": "2026-11-26T14:00:00", "ENERGY": {"Power": %s}}'),
        ("pro3em/status/em:0", b'{"apower": %s, "aenergy": {"minute_ts": 1795672800}}'),
    ],
)
def test_an_integer_too_large_for_a_float_is_rejected_not_a_crash(
    topic: str, template: bytes
) -> None:
    """orjson refuses 10**400; the fallback parser reads it as infinity, as orjson reads any
    integer beyond 64 bits as a float, instead of a Python int that `float()` cannot convert."""
    out = decode((topic, template % (b"1" + b"0" * 400)), (topic, template % (b"-" + b"9" * 30)))
    good = validate(out, NOW_US, Limits(300, 365))
    assert [(r.message, r.kind) for r in out.rejects] == [(0, "not_finite")]
    assert len(good) == 1


@pytest.mark.parametrize(
    ("topic", "template"),
    [
        ("energyhub/expo/b01", b'[{"meter": %s, "ts": 1795672800, "value": 1}]'),
        ("energyhub/expo/b01", b'[{"meter": "main", "ts": 1795672800, "other": %s}]'),
        ("energyhub/expo/b01/main", b'{"ts": "2026-11-26T06:00:00Z", "value": %s}'),
        ("energyhub/expo/b01/main", b'{"ts": %s, "value": 1}'),
    ],
)
def test_json_nested_to_the_parser_limit_is_rejected_not_a_crash(
    topic: str, template: bytes
) -> None:
    """orjson parses up to 1024 levels, deeper than Python's repr() of a reject reason goes."""
    decoder = Decoder(MAPPING, "energyhub", max_payload_bytes=65536)
    out = BatchBuilder()
    payload = template % (b"[" * 1020 + b"]" * 1020)
    decoder.decode(Delivery([topic], [payload], [NOW_US], b"", 1), out)
    assert [(r.kind, r.reason) for r in out.rejects] == [
        ("not_json", "payload is nested too deeply")
    ]


def test_a_meter_given_twice_in_a_frame_is_named_and_its_neighbours_kept() -> None:
    """`values` giving a meter twice: the parsers kept the last value unseen; now the meter's
    readings are rejected by name (the same value is stored once) and the other meters kept."""
    frame = b'{"ts": "2026-11-26T06:00:00Z", "values": {"main": 1, "heat": 7, "main": 2}}'
    same = b'{"ts": "2026-11-26T06:00:00Z", "values": {"heat": 7, "main": 3, "main": 3}}'
    out = decode(("energyhub/expo/b01", frame), ("energyhub/expo/b01", same))
    assert readings(out) == [(2, NOW, 7.0), (1, NOW, 3.0), (2, NOW, 7.0)]
    assert [(r.message, r.kind, r.reason) for r in out.rejects] == [
        (
            0,
            "repeated_meter",
            "meter 1: given 2 times at 2026-11-26T06:00:00Z with different values (1, 2): "
            "none stored, which one it read is unknown",
        ),
        (
            1,
            "repeated_meter",
            "meter 1: given 2 times at 2026-11-26T06:00:00Z with the same value (3, 3): "
            "stored once",
        ),
    ]


def test_a_meter_given_twice_at_one_time_in_a_batch_is_named() -> None:
    """A gateway batch with two items for one meter and time: one was dropped unseen by the
    store; now both are rejected by name and the items beside them kept."""
    out = decode(
        (
            "energyhub/expo/b01",
            [
                {"meter": "main", "ts": "2026-11-26T06:00:00Z", "value": 2},
                {"meter": "heat", "ts": "2026-11-26T06:00:00Z", "value": 5},
                {"meter": "main", "ts": "2026-11-26T14:00:00+08:00", "value": 4},
                {"meter": "main", "ts": "2026-11-26T06:01:00Z", "value": 6},
            ],
        )
    )
    assert sorted(readings(out)) == sorted(
        [(2, NOW, 5.0), (1, datetime(2026, 11, 26, 6, 1, tzinfo=UTC), 6.0)]
    )
    assert [(r.kind, r.reason) for r in out.rejects] == [
        (
            "repeated_meter",
            "meter 1: given 2 times at 2026-11-26T06:00:00Z with different values (2, 4): "
            "none stored, which one it read is unknown",
        )
    ]


@pytest.mark.parametrize(
    ("topic", "payload", "key"),
    [
        ("energyhub/expo/b01/main", b'{"ts": "2026-11-26T06:00:00Z", "value": 1, "value": 2}', "value"),
        ("energyhub/expo/b01/main", b'{"ts": "2026-11-26T06:00:00Z", "ts": "2026-11-26T07:00:00Z", "value": 1}', "ts"),
        ("energyhub/expo/b01/main", b'{"ts": "2026-11-26T06\\u003a00:00Z", "value": 1, "value": 2}', "value"),
        ("energyhub/expo/b01", b'{"ts": "2026-11-26T06:00:00Z", "values": {"main": 1}, "values": {"main": 9}}', "values"),
        ("energyhub/expo/b01", b'[{"meter": "main", "meter": "heat", "ts": "2026-11-26T06:00:00Z", "value": 1}]', "meter"),
        ("tele/plug-2/SENSOR", b'{"Time": "2026-11-26T14:00:00", "ENERGY": {"Power": 1, "Power": 2}}', "Power"),
    ],
)  # fmt: skip
def test_a_key_given_twice_is_refused_by_name(topic: str, payload: bytes, key: str) -> None:
    """Any other key given twice in one object refuses the message, as the API does (the last
    value was kept unseen), also on the single readings' short path once the topic is known."""
    primed = decode(
        ("energyhub/expo/b01/main", {"ts": "2026-11-26T05:00:00Z", "value": 1}), (topic, payload)
    )
    for out, message in ((primed, 1), (decode((topic, payload)), 0)):
        rows, reasons = _outcome(out, message)
        assert rows == []
        assert reasons == [
            f"key {key!r} is given twice in one JSON object (a parser keeps the last unseen); "
            "give it once"
        ]
        assert [r.kind for r in out.rejects if r.message == message] == ["duplicate_key"]
