"""MQTT 5 packets for the ingest: the few it sends, and a bulk splitter for what it reads.

Only what a QoS 1 subscriber needs: CONNECT (persistent session, Receive Maximum), SUBSCRIBE,
UNSUBSCRIBE, PUBACK, PINGREQ, DISCONNECT and QoS 0 PUBLISH (Sparkplug rebirth commands) out;
CONNACK, SUBACK, UNSUBACK, PUBLISH, PINGRESP and DISCONNECT in. `split` walks a whole read of the
socket at once and appends topics, payloads and ready-made PUBACKs to lists, so a message costs a
few slices rather than an object per step.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from energyhub.ingest.errors import IngestError

CONNECT, CONNACK, PUBLISH, PUBACK = 0x10, 0x20, 0x30, 0x40
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 0x82, 0x90, 0xA2, 0xB0
PINGREQ, PINGRESP, DISCONNECT = 0xC0, 0xD0, 0xE0
PING = bytes((PINGREQ, 0))
PUBACK_HEAD = bytes((PUBACK, 2))
"""A PUBACK's fixed header; the packet id follows (reason code success implied)."""
GOODBYE = bytes((DISCONNECT, 0))
"""DISCONNECT, normal disconnection: the session (and its expiry) stays."""

SESSION_EXPIRY_INTERVAL, RECEIVE_MAXIMUM = 0x11, 0x21
SERVER_KEEP_ALIVE, REASON_STRING = 0x13, 0x1F
RETAIN_IF_NEW = 1 << 4
"""Subscription option: retained messages only when the subscription is new (not on resubscribe)."""

_PROPERTY_SIZES = {
    0x01: 1, 0x02: 4, 0x03: -2, 0x08: -2, 0x09: -2, 0x0B: -1, 0x11: 4, 0x12: -2,
    0x13: 2, 0x15: -2, 0x16: -2, 0x17: 1, 0x19: 1, 0x1A: -2, 0x1C: -2, 0x1F: -2,
    0x21: 2, 0x22: 2, 0x23: 2, 0x24: 1, 0x25: 1, 0x26: -3, 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1,
}  # fmt: skip
"""Property id → size: bytes, or -1 a variable integer, -2 a length-prefixed string or binary,
-3 a string pair."""

REASONS = {
    0x04: "disconnect with will message",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x93: "receive maximum exceeded",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x9C: "use another server",
    0x9E: "shared subscriptions not supported",
}


class ProtocolError(IngestError):
    """The broker sent something this receiver cannot read; the connection is dropped."""


def reason_text(code: int) -> str:
    return f"0x{code:02x} {REASONS.get(code, 'reason')}"


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, position after it); None when the bytes end inside it; ProtocolError past 4 bytes."""
    value = 0
    for shift in (0, 7, 14, 21):
        if pos >= len(data):
            return None
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
    raise ProtocolError("a variable byte integer longer than 4 bytes")


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + varint(len(body)) + body


def connect_packet(
    client_id: str,
    keepalive_s: int,
    session_expiry_s: int,
    receive_maximum: int,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT resuming the client's session (clean start off)."""
    flags = (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    properties = struct.pack(
        "!BIBH", SESSION_EXPIRY_INTERVAL, session_expiry_s, RECEIVE_MAXIMUM, receive_maximum
    )
    body = _string("MQTT") + struct.pack("!BBH", 5, flags, keepalive_s)
    body += varint(len(properties)) + properties + _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _string(password)  # binary data: the same two-byte length prefix
    return _packet(CONNECT, body)


def subscribe_packet(packet_id: int, filters: list[str], qos: int = 1) -> bytes:
    options = bytes((qos | RETAIN_IF_NEW,))
    body = struct.pack("!HB", packet_id, 0) + b"".join(_string(f) + options for f in filters)
    return _packet(SUBSCRIBE, body)


def publish_packet(topic: str, payload: bytes) -> bytes:
    """PUBLISH at QoS 0, not retained, no properties."""
    return _packet(PUBLISH, _string(topic) + b"\x00" + payload)


def unsubscribe_packet(packet_id: int, filters: list[str]) -> bytes:
    body = struct.pack("!HB", packet_id, 0) + b"".join(_string(f) for f in filters)
    return _packet(UNSUBSCRIBE, body)


def properties(data: bytes, pos: int) -> tuple[dict[int, int | bytes], int]:
    """The properties at `pos` (integers, or raw bytes for strings) and the position after them."""
    header = read_varint(data, pos)
    if header is None:
        raise ProtocolError("properties cut short")
    length, pos = header
    end, found = pos + length, dict[int, int | bytes]()
    while pos < end:
        ident, size = data[pos], _PROPERTY_SIZES.get(data[pos])
        pos += 1
        if size is None:
            raise ProtocolError(f"unknown property 0x{ident:02x}")
        if size > 0:
            found[ident] = int.from_bytes(data[pos : pos + size], "big")
            pos += size
        elif size == -1:
            number = read_varint(data, pos)
            if number is None:
                raise ProtocolError("a property cut short")
            found[ident], pos = number
        else:
            for _ in range(-size - 1):  # a string pair is two strings
                strlen = int.from_bytes(data[pos : pos + 2], "big")
                found[ident] = data[pos + 2 : pos + 2 + strlen]
                pos += 2 + strlen
    if pos != end:
        raise ProtocolError("properties overrun their length")
    return found, end


@dataclass(frozen=True, slots=True)
class Connack:
    session_present: bool
    reason: int
    keepalive_s: int | None
    """The broker's Server Keep Alive, which overrides ours when present."""
    reason_string: str

    @classmethod
    def parse(cls, body: bytes) -> Connack:
        if len(body) < 2:
            raise ProtocolError("CONNACK too short (is the broker speaking MQTT 5?)")
        found = properties(body, 2)[0] if len(body) > 2 else {}
        keepalive = found.get(SERVER_KEEP_ALIVE)
        text = found.get(REASON_STRING, b"")
        return cls(
            bool(body[0] & 1),
            body[1],
            keepalive if isinstance(keepalive, int) else None,
            text.decode(errors="replace") if isinstance(text, bytes) else "",
        )


def ack_reasons(body: bytes) -> tuple[int, list[int]]:
    """A SUBACK's or UNSUBACK's packet id and reason codes, one per filter."""
    packet_id = int.from_bytes(body[:2], "big")
    return packet_id, list(body[properties(body, 2)[1] :])


def disconnect_reason(body: bytes) -> int:
    return body[0] if body else 0


def split(
    data: bytes,
    topics: list[str],
    payloads: list[bytes],
    acks: bytearray,
    control: list[tuple[int, bytes]],
    names: dict[bytes, str],
) -> int:
    """Take every whole packet in `data`; return how many bytes that used.

    PUBLISH packets append their topic and payload, and (QoS 1) their PUBACK to `acks`; other
    packets go to `control` as (first byte, body). `names` caches topic bytes → str.
    """
    size, pos, append_topic, append_payload = len(data), 0, topics.append, payloads.append
    while pos + 1 < size:
        first = data[pos]
        length = data[pos + 1]
        start = pos + 2
        if length & 0x80:  # a remaining length of more than one byte: the general path
            header = read_varint(data, pos + 1)
            if header is None:
                break
            length, start = header
        end = start + length
        if end > size:
            break
        if first & 0xF0 == PUBLISH:
            cut = start + 2 + (data[start] << 8 | data[start + 1])
            raw = data[start + 2 : cut]
            name = names.get(raw)
            if name is None:
                name = names[raw] = raw.decode(errors="replace")
            if first & 0x06:
                acks += PUBACK_HEAD
                acks += data[cut : cut + 2]
                cut += 2
            extra = data[cut]
            if extra:  # properties (user properties, message expiry, ...): not used
                cut = properties(data, cut)[1]
            else:
                cut += 1
            if cut > end:
                raise ProtocolError(f"a PUBLISH packet shorter than its topic ({length} bytes)")
            append_topic(name)
            append_payload(data[cut:end])
        else:
            control.append((first, data[start:end]))
        pos = end
    return pos
