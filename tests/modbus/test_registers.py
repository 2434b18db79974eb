"""Register decoding, encoding and block planning against known vectors and random values."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from energyhub.modbus.registers import (
    FORMATS,
    MAX_BLOCK_REGISTERS,
    MAX_GAP_REGISTERS,
    Point,
    decode,
    encode,
    plan_blocks,
)


def test_float32_orders_match_the_vendors_layouts() -> None:
    big = Point(0, type="float32")
    assert decode([0x4348, 0x0000], big) == 200.0  # high word first, big-endian bytes (Eastron)
    assert decode([0x0000, 0x4348], Point(0, type="float32", word_order="little")) == 200.0
    swapped = Point(0, type="float32", byte_order="little")
    assert decode([0x4843, 0x0000], swapped) == 200.0
    assert decode([0xFFFF], Point(0, type="int16")) == -1.0
    assert decode([0xFFFF], Point(0, type="uint16")) == 65535.0
    assert decode([0x0001, 0x0000], Point(0, type="uint32", word_order="little")) == 1.0
    assert decode([0, 0, 0, 7], Point(0, type="int64", scale=0.5)) == 3.5


@given(
    st.sampled_from(sorted(FORMATS)),
    st.sampled_from(["big", "little"]),
    st.sampled_from(["big", "little"]),
    st.integers(-30000, 30000),
)
def test_encode_then_decode_is_the_value(kind: str, words: str, order: str, raw: int) -> None:
    point = Point(0, "holding", kind, words, order, 0.25)  # type: ignore[arg-type]
    value = abs(raw) if kind.startswith("u") else raw
    if kind == "int16" or kind == "uint16":
        value = max(
            min(value, 32767 if kind == "int16" else 65535), 0 if kind == "uint16" else -32768
        )
    registers = encode(value * 0.25, point)
    assert len(registers) == point.count and all(0 <= r <= 0xFFFF for r in registers)
    expected = struct.unpack(">f", struct.pack(">f", value))[0] if kind == "float32" else value
    assert math.isclose(decode(registers, point), expected * 0.25, rel_tol=1e-7)


def test_blocks_merge_near_points_and_respect_the_request_limit() -> None:
    points = [
        (1, "a", Point(0)),
        (1, "b", Point(6)),
        (1, "c", Point(6 + 2 + MAX_GAP_REGISTERS + 1)),  # too far: a request of its own
        (1, "h", Point(0, function="holding")),  # another function: another request
        (2, "d", Point(0)),  # another unit: another request
    ]
    blocks = plan_blocks(points)
    summary = [(b.unit, b.function, b.address, b.count, [k for k, _ in b.points]) for b in blocks]
    assert summary == [
        (1, "holding", 0, 2, ["h"]),
        (1, "input", 0, 8, ["a", "b"]),
        (1, "input", 25, 2, ["c"]),
        (2, "input", 0, 2, ["d"]),
    ]
    dense = [(1, f"p{i}", Point(2 * i)) for i in range(200)]
    planned = plan_blocks(dense)
    assert all(b.count <= MAX_BLOCK_REGISTERS for b in planned)
    assert sum(len(b.points) for b in planned) == 200
    assert [b.count for b in planned] == [124, 124, 124, 28]


def test_a_block_decodes_each_point_from_its_offset() -> None:
    (block,) = plan_blocks([(1, "p", Point(10)), (1, "e", Point(14, type="int32", scale=0.01))])
    registers = [0x4348, 0, 0, 0, *encode(1234.56, Point(0, type="int32", scale=0.01))]
    assert block.values(registers) == [("p", 200.0), ("e", pytest.approx(1234.56))]
