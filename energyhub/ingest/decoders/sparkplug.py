"""Sparkplug B `spBv1.0/{group}/{type}/{edge node}[/{device}]`: births, data and deaths.

Metric values of mapped metrics become readings (times from the metric, else the payload);
unmapped metrics are the node's own business and are skipped. A bad frame is rejected with its
reason, and the good metrics beside a bad one are kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from energyhub.ingest.decoders.common import DecodeContext
from energyhub.ingest.errors import PayloadError
from energyhub.ingest.mapping import SparkplugRef
from energyhub.ingest.sparkplug.payload import (
    DataType,
    Frame,
    FrameError,
    frame_of,
    metric_value,
    parse_payload,
)
from energyhub.ingest.sparkplug.session import (
    NAMESPACE,
    NodeKey,
    NodeState,
    PresenceChange,
    SparkplugSessions,
)

NODE_TYPES = frozenset({"NBIRTH", "NDATA", "NDEATH"})
DEVICE_TYPES = frozenset({"DBIRTH", "DDATA", "DDEATH"})
IGNORED_TYPES = frozenset({"NCMD", "DCMD", "STATE"})
BIRTHS = frozenset({"NBIRTH", "DBIRTH"})
NO_TARGETS: dict[str, SparkplugRef] = {}
UNBOUND = object()
"""An alias no birth of this session bound (None means bound to a metric no meter reads)."""
DOUBLE, FLOAT = int(DataType.DOUBLE), int(DataType.FLOAT)
"""Commands (ours and other hosts') and host state carry no readings."""


def is_sparkplug(topic: str) -> bool:
    return topic.startswith(NAMESPACE + "/")


def decode_sparkplug(
    context: DecodeContext, sessions: SparkplugSessions, topic: str, payload: bytes
) -> None:
    parts = topic.split("/")
    if len(parts) == 3 and parts[1] == "STATE":
        return  # a host application's own STATE (Sparkplug 3.0)
    if len(parts) not in (4, 5):
        raise PayloadError(f"Sparkplug topic {topic!r} is not {NAMESPACE}/group/type/node[/device]")
    _, group, kind, node, *rest = parts
    device = rest[0] if rest else None
    if kind in IGNORED_TYPES:
        return
    if (kind in NODE_TYPES and device is not None) or (kind in DEVICE_TYPES and device is None):
        raise PayloadError(f"Sparkplug topic {topic!r}: {kind} with the wrong number of levels")
    if kind not in NODE_TYPES | DEVICE_TYPES:
        raise PayloadError(f"Sparkplug topic {topic!r}: unknown message type {kind!r}")
    try:
        message = parse_payload(payload)
    except FrameError as exc:
        raise PayloadError(f"Sparkplug {kind} from {group}/{node}: {exc}", "not_protobuf") from None
    key = NodeKey(group, node)
    state = sessions.node(key)
    if kind == "NDEATH":
        _node_death(context, key, state, frame_of(message))
        return
    if kind == "NBIRTH":
        _node_birth(context, key, state, frame_of(message))
    else:
        seq = message.seq if message.HasField("seq") else None
        gap = sessions.check_seq(key, state, seq)
        if gap is not None:
            context.out.reject(context.index, gap, "sequence_gap")
            sessions.request_rebirth(key)
        if not state.born:
            context.out.reject(
                context.index,
                f"Sparkplug node {key}: {kind} before its NBIRTH in this session; "
                "rebirth requested",
                "not_born",
            )
            sessions.request_rebirth(key)
        if kind == "DBIRTH" and device is not None:
            _device_birth(context, key, state, device, frame_of(message))
        if kind == "DDEATH" and device is not None:
            state.devices.discard(device)
            _presence(context, f"{key}/{device}", False, frame_of(message), "DDEATH")
            return
    _readings(context, sessions, key, state, device, kind, message)


def _node_birth(context: DecodeContext, key: NodeKey, state: NodeState, frame: Frame) -> None:
    state.born, state.seq, state.devices = True, frame.seq, set()
    state.aliases = {}
    state.resolved.clear()
    state.rebirth_asked_at = -1e9
    state.bd_seq = None
    for metric in frame.metrics:
        if metric.name == "bdSeq" and isinstance(metric.value, int | float):
            state.bd_seq = int(metric.value)
    _bind_aliases(state, None, frame)
    _presence(context, str(key), True, frame, "NBIRTH")


def _device_birth(
    context: DecodeContext, key: NodeKey, state: NodeState, device: str, frame: Frame
) -> None:
    state.devices.add(device)
    _bind_aliases(state, device, frame)
    _presence(context, f"{key}/{device}", True, frame, "DBIRTH")


def _bind_aliases(state: NodeState, device: str | None, frame: Frame) -> None:
    state.resolved.clear()
    for metric in frame.metrics:
        if metric.name is not None and metric.alias is not None:
            state.aliases[metric.alias] = (device, metric.name)


def _node_death(context: DecodeContext, key: NodeKey, state: NodeState, frame: Frame) -> None:
    bd_seq = next(
        (int(m.value) for m in frame.metrics if m.name == "bdSeq" and isinstance(m.value, int)),
        None,
    )
    if state.bd_seq is not None and bd_seq is not None and bd_seq != state.bd_seq:
        return  # the will of an earlier session of this node, delivered late: not this one's death
    state.born, state.seq = False, None
    _presence(context, str(key), False, frame, "NDEATH")
    for device in sorted(state.devices):
        _presence(context, f"{key}/{device}", False, frame, "NDEATH of its node")
    state.devices = set()


def _presence(context: DecodeContext, key: str, online: bool, frame: Frame, why: str) -> None:
    at_us = frame.timestamp_ms * 1000 if frame.timestamp_ms else context.received_us
    at = datetime.fromtimestamp(at_us / 1_000_000, UTC)
    context.out.presence.append(PresenceChange("sparkplug", key, online, at, why))


def _resolved(
    state: NodeState, device: str | None, targets: dict[str, SparkplugRef]
) -> dict[int, SparkplugRef | None]:
    """alias → meter (None: a metric no meter reads) for the device's aliases of this session."""
    cached = state.resolved.get(device)
    if cached is not None and cached[0] is targets:
        return cached[1]  # type: ignore[return-value]
    resolved: dict[int, SparkplugRef | None] = {
        alias: targets.get(name)
        for alias, (owner, name) in state.aliases.items()
        if owner == device
    }
    state.resolved[device] = (targets, resolved)  # type: ignore[assignment]
    return resolved


def _readings(
    context: DecodeContext,
    sessions: SparkplugSessions,
    key: NodeKey,
    state: NodeState,
    device: str | None,
    kind: str,
    message: Any,
) -> None:
    """The mapped metrics' values as readings: the hot path, on the parsed message itself."""
    targets = context.mapping.by_sparkplug.get((key.group, key.node, device or ""), NO_TARGETS)
    by_alias = _resolved(state, device, targets)
    out, index = context.out, context.index
    frame_ms = message.timestamp
    unknown: list[int] = []
    for metric in message.metrics:
        name = metric.name
        if name:
            target = targets.get(name)
        else:
            alias = metric.alias
            target = by_alias.get(alias, UNBOUND)  # type: ignore[arg-type]
            if target is UNBOUND:
                unknown.append(alias)
                continue
        if target is None:
            continue  # the node's own business: no meter reads it
        datatype = metric.datatype
        if datatype == DOUBLE:
            value: object = metric.double_value
        elif datatype == FLOAT:
            value = metric.float_value
        else:
            value = metric_value(metric)
        stamp_ms = metric.timestamp or frame_ms
        if stamp_ms and type(value) is float and not metric.is_null:
            out.meter_id.append(target.ref.id)
            out.ts_us.append(stamp_ms * 1000)
            out.value.append(value * target.scale)
            out.source.append(index)
            continue
        if metric.is_null and kind in BIRTHS:
            continue  # a birth names a metric that has no value yet: nothing to store
        label = name or state.aliases[metric.alias][1]
        _refuse_or_add(context, f"{kind} {key}", device, label, metric, target, value, stamp_ms)
    if unknown:
        out.reject(
            index,
            f"Sparkplug {kind} {key}: unknown alias {', '.join(map(str, unknown[:5]))} "
            "(not in a birth certificate of this session); rebirth requested",
            "unknown_alias",
        )
        sessions.request_rebirth(key)


def _refuse_or_add(
    context: DecodeContext,
    message: str,
    device: str | None,
    name: str,
    metric: Any,
    target: SparkplugRef,
    value: object,
    stamp_ms: int,
) -> None:
    """The rare cases: integers (stored), no timestamp, null or non-numeric values (rejected)."""
    where = f"Sparkplug {message}{'/' + device if device else ''} metric {name!r}"
    if metric.is_null or isinstance(value, bool) or not isinstance(value, int | float):
        shown = "null" if metric.is_null or value is None else repr(value)[:64]
        context.out.reject(
            context.index,
            f"{where}: value must be a number, got {shown} (datatype {metric.datatype})",
            "bad_value",
        )
    elif not stamp_ms:
        context.out.reject(context.index, f"{where}: no timestamp", "bad_timestamp")
    else:
        context.out.add(context.index, target.ref.id, stamp_ms * 1000, float(value) * target.scale)
