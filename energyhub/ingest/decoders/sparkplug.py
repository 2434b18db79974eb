"""Sparkplug B `spBv1.0/{group}/{type}/{edge node}[/{device}]`: births, data and deaths.

Metric values of mapped metrics become readings (times from the metric, else the payload);
unmapped metrics are the node's own business and are skipped. A bad frame is rejected with its
reason, and the good metrics beside a bad one are kept.
"""

from __future__ import annotations

from datetime import UTC, datetime

from energyhub.ingest.decoders.common import DecodeContext
from energyhub.ingest.errors import PayloadError
from energyhub.ingest.sparkplug.payload import Frame, FrameError, Metric, decode_frame
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
        frame = decode_frame(payload)
    except FrameError as exc:
        raise PayloadError(f"Sparkplug {kind} from {group}/{node}: {exc}", "not_protobuf") from None
    key = NodeKey(group, node)
    state = sessions.node(key)
    if kind == "NDEATH":
        _node_death(context, key, state, frame)
        return
    if kind == "NBIRTH":
        _node_birth(context, key, state, frame)
    else:
        gap = sessions.check_seq(key, state, frame.seq)
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
            _device_birth(context, key, state, device, frame)
        if kind == "DDEATH" and device is not None:
            state.devices.discard(device)
            _presence(context, f"{key}/{device}", False, frame, "DDEATH")
            return
    _readings(context, sessions, key, state, device, kind, frame)


def _node_birth(context: DecodeContext, key: NodeKey, state: NodeState, frame: Frame) -> None:
    state.born, state.seq, state.devices = True, frame.seq, set()
    state.aliases = {}
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


def _readings(
    context: DecodeContext,
    sessions: SparkplugSessions,
    key: NodeKey,
    state: NodeState,
    device: str | None,
    kind: str,
    frame: Frame,
) -> None:
    unknown: list[int] = []
    for metric in frame.metrics:
        name = _name(state, device, metric, unknown)
        if name is None:
            continue
        target = context.mapping.by_sparkplug.get((key.group, key.node, device or "", name))
        if target is None:
            continue
        where = f"Sparkplug {kind} {key}{'/' + device if device else ''} metric {name!r}"
        stamp_ms = metric.timestamp_ms or frame.timestamp_ms
        if not stamp_ms:
            context.out.reject(context.index, f"{where}: no timestamp", "bad_timestamp")
            continue
        value = metric.value
        if metric.is_null or isinstance(value, bool) or not isinstance(value, int | float):
            shown = "null" if metric.is_null or value is None else repr(value)[:64]
            context.out.reject(
                context.index,
                f"{where}: value must be a number, got {shown} (datatype {metric.datatype})",
                "bad_value",
            )
            continue
        context.out.add(context.index, target.ref.id, stamp_ms * 1000, float(value) * target.scale)
    if unknown:
        context.out.reject(
            context.index,
            f"Sparkplug {kind} {key}: unknown alias {', '.join(map(str, unknown[:5]))} "
            "(not in a birth certificate of this session); rebirth requested",
            "unknown_alias",
        )
        sessions.request_rebirth(key)


def _name(state: NodeState, device: str | None, metric: Metric, unknown: list[int]) -> str | None:
    if metric.name is not None:
        return metric.name
    if metric.alias is None:
        return None
    bound = state.aliases.get(metric.alias)
    if bound is None or bound[0] != device:
        unknown.append(metric.alias)
        return None
    return bound[1]
