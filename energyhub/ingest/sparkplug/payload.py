"""The Sparkplug B payload, built at import time from a descriptor instead of generated code.

Only the fields a host application needs to read metric values are declared (Sparkplug 3.0,
"Payload" and "Metric"); everything else an edge node sends (properties, metadata, data sets,
templates) is carried as unknown fields and ignored. Field numbers follow the specification, so
any conforming edge node's frames parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

F = descriptor_pb2.FieldDescriptorProto

METRIC_FIELDS: tuple[tuple[str, int, int, int | None], ...] = (
    # name, number, type, index of the oneof it belongs to
    ("name", 1, F.TYPE_STRING, None),
    ("alias", 2, F.TYPE_UINT64, None),
    ("timestamp", 3, F.TYPE_UINT64, None),
    ("datatype", 4, F.TYPE_UINT32, None),
    ("is_historical", 5, F.TYPE_BOOL, None),
    ("is_transient", 6, F.TYPE_BOOL, None),
    ("is_null", 7, F.TYPE_BOOL, None),
    ("int_value", 10, F.TYPE_UINT32, 0),
    ("long_value", 11, F.TYPE_UINT64, 0),
    ("float_value", 12, F.TYPE_FLOAT, 0),
    ("double_value", 13, F.TYPE_DOUBLE, 0),
    ("boolean_value", 14, F.TYPE_BOOL, 0),
    ("string_value", 15, F.TYPE_STRING, 0),
    ("bytes_value", 16, F.TYPE_BYTES, 0),
)
PAYLOAD_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("timestamp", 1, F.TYPE_UINT64),
    ("seq", 3, F.TYPE_UINT64),
    ("uuid", 4, F.TYPE_STRING),
    ("body", 5, F.TYPE_BYTES),
)


class DataType(IntEnum):
    """Sparkplug B metric data types (the ones a meter value can have, and Boolean for NCMD)."""

    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12


SIGNED_BITS = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}
SIGNED_BITS_BY_CODE = {int(k): v for k, v in SIGNED_BITS.items()}
UNSIGNED = {DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64}


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="energyhub_sparkplug_b.proto", package="energyhub.sparkplug", syntax="proto2"
    )
    payload = file.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, kind, oneof in METRIC_FIELDS:
        field = metric.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
        if oneof is not None:
            field.oneof_index = oneof
    for name, number, kind in PAYLOAD_FIELDS:
        payload.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
    payload.field.add(
        name="metrics",
        number=2,
        type=F.TYPE_MESSAGE,
        type_name=".energyhub.sparkplug.Payload.Metric",
        label=F.LABEL_REPEATED,
    )
    return file


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())
PayloadMessage: Any = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("energyhub.sparkplug.Payload")
)


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric of a frame: named (births) or aliased (data), with its value if it is a number."""

    name: str | None
    alias: int | None
    timestamp_ms: int | None
    datatype: int | None
    value: float | bool | str | None
    is_null: bool


@dataclass(frozen=True, slots=True)
class Frame:
    timestamp_ms: int | None
    seq: int | None
    metrics: list[Metric]


class FrameError(ValueError):
    """The bytes are not a Sparkplug B payload."""


def _signed(raw: int, bits: int) -> int:
    """Sparkplug stores signed integers as two's complement in the unsigned field."""
    raw &= (1 << bits) - 1
    return raw - (1 << bits) if raw >> (bits - 1) else raw


def metric_value(metric: Any) -> float | bool | str | None:
    """A parsed metric's value: signed integers at their data type's width, bytes as None."""
    kind = metric.WhichOneof("value")
    if kind is None or kind == "bytes_value":
        return None
    raw = getattr(metric, kind)
    if kind == "double_value" or kind == "float_value":
        return raw  # type: ignore[no-any-return]
    bits = SIGNED_BITS_BY_CODE.get(metric.datatype)
    if bits is not None and (kind == "int_value" or kind == "long_value"):
        return _signed(int(raw), bits)
    return raw  # type: ignore[no-any-return]


def parse_payload(data: bytes) -> Any:
    """The parsed protobuf message; FrameError if the bytes are not one."""
    message = PayloadMessage()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeWarning) as exc:
        raise FrameError(f"payload is not a Sparkplug B protobuf: {exc}") from None
    return message


def decode_frame(data: bytes) -> Frame:
    """Parse a Sparkplug B payload into plain values; FrameError if it is not one."""
    return frame_of(parse_payload(data))


def frame_of(message: Any) -> Frame:
    """A parsed payload as plain values (births and deaths: data takes a faster path)."""
    metrics = []
    for m in message.metrics:
        datatype = m.datatype if m.HasField("datatype") else None
        metrics.append(
            Metric(
                name=m.name if m.HasField("name") else None,
                alias=m.alias if m.HasField("alias") else None,
                timestamp_ms=m.timestamp if m.HasField("timestamp") else None,
                datatype=datatype,
                value=metric_value(m),
                is_null=m.is_null,
            )
        )
    return Frame(
        timestamp_ms=message.timestamp if message.HasField("timestamp") else None,
        seq=message.seq if message.HasField("seq") else None,
        metrics=metrics,
    )


def encode_frame(metrics: list[dict[str, Any]], seq: int | None, timestamp_ms: int | None) -> bytes:
    """A payload from metric dicts (`name`/`alias`, `datatype`, `value`, `timestamp`).

    Used for the rebirth command the host sends and by test and simulator edge nodes.
    """
    message: Message = PayloadMessage()
    if timestamp_ms is not None:
        message.timestamp = timestamp_ms  # type: ignore[attr-defined]
    if seq is not None:
        message.seq = seq  # type: ignore[attr-defined]
    for spec in metrics:
        m = message.metrics.add()  # type: ignore[attr-defined]
        if "name" in spec:
            m.name = spec["name"]
        if "alias" in spec:
            m.alias = spec["alias"]
        if "timestamp" in spec:
            m.timestamp = spec["timestamp"]
        datatype = DataType(spec["datatype"])
        m.datatype = datatype
        value = spec.get("value")
        if value is None:
            m.is_null = True
        elif datatype in SIGNED_BITS:
            bits = SIGNED_BITS[datatype]
            field = "long_value" if bits == 64 else "int_value"
            setattr(m, field, int(value) & ((1 << (64 if bits == 64 else 32)) - 1))
        elif datatype in UNSIGNED:
            setattr(m, "long_value" if datatype == DataType.UINT64 else "int_value", int(value))
        elif datatype == DataType.FLOAT:
            m.float_value = float(value)
        elif datatype == DataType.DOUBLE:
            m.double_value = float(value)
        elif datatype == DataType.BOOLEAN:
            m.boolean_value = bool(value)
        else:
            m.string_value = str(value)
    return message.SerializeToString()
