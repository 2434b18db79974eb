"""Register values: data types, word and byte order, and reading several points in one request.

A point is a value at a register address (0-based, as on the wire) of a unit behind a gateway.
Points of one unit and function close together are read with one request per contiguous block
(at most MAX_BLOCK_REGISTERS, the Modbus limit for a read, and gaps of at most MAX_GAP_REGISTERS
read and discarded rather than paying for another round trip).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

DataTypeName = Literal[
    "int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64"
]
Function = Literal["holding", "input"]
Order = Literal["big", "little"]

FORMATS: dict[str, tuple[str, int]] = {
    "int16": ("h", 1),
    "uint16": ("H", 1),
    "int32": ("i", 2),
    "uint32": ("I", 2),
    "float32": ("f", 2),
    "int64": ("q", 4),
    "uint64": ("Q", 4),
    "float64": ("d", 4),
}
"""struct format and register count of each data type."""
MAX_BLOCK_REGISTERS = 125
"""The most registers one read-holding/read-input request may ask for (Modbus application spec)."""
MAX_GAP_REGISTERS = 16
"""Unused registers between two points read in the same request rather than in two."""


@dataclass(frozen=True, slots=True)
class Point:
    """Where one meter's value lives and how to turn its registers into the meter's unit."""

    address: int
    function: Function = "input"
    type: DataTypeName = "float32"
    word_order: Order = "big"
    byte_order: Order = "big"
    scale: float = 1.0

    @property
    def count(self) -> int:
        return FORMATS[self.type][1]


def decode(registers: Sequence[int], point: Point) -> float:
    """The point's value from its registers (NaN stays NaN: the ingest rejects it)."""
    words = list(registers[: point.count])
    if point.word_order == "little":
        words.reverse()
    raw = b"".join(
        w.to_bytes(2, "little" if point.byte_order == "little" else "big") for w in words
    )
    (value,) = struct.unpack(">" + FORMATS[point.type][0], raw)
    return float(value) * point.scale


def encode(value: float, point: Point) -> list[int]:
    """Registers holding `value` (in the meter's unit) as the point stores it: for simulators."""
    code = FORMATS[point.type][0]
    raw_value = value / point.scale if point.scale else value
    if code in "fd":
        raw = struct.pack(">" + code, raw_value)
    else:
        bits = 16 * point.count
        signed = code.islower()
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        number = 0 if math.isnan(raw_value) else round(raw_value)
        raw = struct.pack(">" + code, min(max(number, low), high))
    words = [
        int.from_bytes(raw[i : i + 2], "little" if point.byte_order == "little" else "big")
        for i in range(0, len(raw), 2)
    ]
    if point.word_order == "little":
        words.reverse()
    return words


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: `count` registers from `address` of a unit, and the points inside."""

    unit: int
    function: Function
    address: int
    count: int
    points: tuple[tuple[str, Point], ...]
    """(key, point): the key is the caller's (e.g. site and meter)."""

    def values(self, registers: Sequence[int]) -> list[tuple[str, float]]:
        return [(key, decode(registers[p.address - self.address :], p)) for key, p in self.points]

    def __str__(self) -> str:
        last = self.address + self.count - 1
        return f"unit {self.unit} {self.function} registers {self.address}–{last}"


def plan_blocks(points: Iterable[tuple[int, str, Point]]) -> list[Block]:
    """Group (unit, key, point) into as few read requests as the limits allow."""
    by_source: dict[tuple[int, Function], list[tuple[str, Point]]] = {}
    for unit, key, point in points:
        by_source.setdefault((unit, point.function), []).append((key, point))
    blocks = []
    for (unit, function), members in sorted(by_source.items()):
        members.sort(key=lambda kp: kp[1].address)
        current: list[tuple[str, Point]] = []
        start = end = 0
        for key, point in members:
            p_end = point.address + point.count
            fits = (
                current
                and point.address - end <= MAX_GAP_REGISTERS
                and max(end, p_end) - start <= MAX_BLOCK_REGISTERS
            )
            if fits:
                current.append((key, point))
                end = max(end, p_end)
                continue
            if current:
                blocks.append(Block(unit, function, start, end - start, tuple(current)))
            current, start, end = [(key, point)], point.address, p_end
        if current:
            blocks.append(Block(unit, function, start, end - start, tuple(current)))
    return blocks
