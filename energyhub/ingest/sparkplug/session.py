"""What a Sparkplug B host application remembers per edge node, and the frames it sends back.

Sparkplug 3.0 host rules followed here: a birth certificate (NBIRTH, DBIRTH) names every metric
and binds its alias; data messages may carry aliases only; `seq` runs 0…255 across a node's
NBIRTH, DBIRTH, NDATA, DDATA and DDEATH; a gap, an unknown alias or data from a node not born in
this session makes the host ask for a rebirth (NCMD `Node Control/Rebirth`); an NDEATH whose
`bdSeq` matches the NBIRTH's marks the node and its devices offline at once (a stale NDEATH, the
will of an earlier session, is ignored).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from energyhub.ingest.sparkplug.payload import DataType, encode_frame
from energyhub.store.devices import PresenceChange as PresenceChange

NAMESPACE = "spBv1.0"
REBIRTH_METRIC = "Node Control/Rebirth"
REBIRTH_MIN_INTERVAL_S = 5.0
"""A node asked to rebirth is not asked again sooner: its NBIRTH is on the way."""
SEQ_MODULO = 256


@dataclass(frozen=True, slots=True)
class NodeKey:
    group: str
    node: str

    def __str__(self) -> str:
        return f"{self.group}/{self.node}"


@dataclass
class NodeState:
    born: bool = False
    seq: int | None = None
    bd_seq: int | None = None
    aliases: dict[int, tuple[str | None, str]] = field(default_factory=dict)
    """alias → (device or None for the node itself, metric name), from the birth certificates."""
    devices: set[str] = field(default_factory=set)
    rebirth_asked_at: float = -1e9
    resolved: dict[str | None, tuple[object, dict[int, object]]] = field(default_factory=dict)
    """Per device: (the meter map it was resolved against, alias → its meter or None): the data
    path's one lookup per metric. Cleared by every birth, rebuilt after a site reload."""


@dataclass
class SparkplugSessions:
    """Per-node state across messages and site reloads, and what the host must send or record."""

    nodes: dict[NodeKey, NodeState] = field(default_factory=dict)
    commands: list[tuple[str, bytes]] = field(default_factory=list)
    """(topic, payload) of NCMD rebirth requests to publish."""
    rebirths_requested: int = 0

    def node(self, key: NodeKey) -> NodeState:
        state = self.nodes.get(key)
        if state is None:
            state = self.nodes[key] = NodeState()
        return state

    def check_seq(self, key: NodeKey, state: NodeState, seq: int | None) -> str | None:
        """Advance the node's sequence; the reason if this message does not follow the last."""
        if seq is None:
            return f"Sparkplug node {key}: message has no seq"
        expected = None if state.seq is None else (state.seq + 1) % SEQ_MODULO
        state.seq = seq
        if expected is not None and seq != expected:
            return (
                f"Sparkplug node {key}: sequence gap, expected seq {expected}, got {seq} "
                "(messages lost or reordered); rebirth requested"
            )
        return None

    def request_rebirth(self, key: NodeKey, now_s: float | None = None) -> None:
        """Queue an NCMD rebirth for the node, at most once per REBIRTH_MIN_INTERVAL_S."""
        state = self.node(key)
        now_s = time.monotonic() if now_s is None else now_s
        if now_s - state.rebirth_asked_at < REBIRTH_MIN_INTERVAL_S:
            return
        state.rebirth_asked_at = now_s
        payload = encode_frame(
            [{"name": REBIRTH_METRIC, "datatype": DataType.BOOLEAN, "value": True}],
            seq=None,
            timestamp_ms=int(datetime.now(UTC).timestamp() * 1000),
        )
        self.commands.append((f"{NAMESPACE}/{key.group}/NCMD/{key.node}", payload))
        self.rebirths_requested += 1

    def take_commands(self) -> list[tuple[str, bytes]]:
        commands, self.commands = self.commands, []
        return commands
