"""A key given twice in one JSON object: every parser keeps the last value unseen, so the API
(`api/size_limit.py`) and the MQTT ingest (`ingest/decoders`) refuse it by name, by this rule.

`duplicate_key` finds the first such key anywhere; `parse_with_repeats` keeps every value given
(a gateway frame rejects a meter given twice and keeps the others); `may_repeat_a_key` is the
screen that spares the ingest the second parse for payloads that cannot hold one.
"""

from __future__ import annotations

import json
from typing import Any


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_pairs(pairs: list[tuple[str, object]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)


def duplicate_key(body: bytes) -> str | None:
    """The first key given twice in one JSON object of `body`, or None (also for a body that is
    not JSON: its own parse names that). Parses the body once more: about as long as the route's
    own parse (0.1 s for a 2 MB plan's inputs of 20,000 steps × 20 columns)."""
    if b":" not in body:
        return None  # no object with a key: nothing to compare, and no parse
    try:
        json.loads(body, object_pairs_hook=_unique_pairs)
    except _DuplicateKey as found:
        return found.key
    except (ValueError, RecursionError):  # not JSON, not UTF-8 or nested deeper than this
        return None  # parser goes (orjson goes deeper): the caller's own parse answers it
    return None


class Repeated(dict[str, Any]):
    """A JSON object that gave keys more than once: the last value of each, as any parser keeps
    it, and in `repeats` every value given of each repeated key, in order."""

    repeats: dict[str, list[Any]]


def _keep_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    values: dict[str, list[Any]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    if len(values) == len(pairs):
        return dict(pairs)
    out = Repeated(pairs)
    out.repeats = {key: given for key, given in values.items() if len(given) > 1}
    return out


def parse_with_repeats(payload: bytes, parse_int: Any = int) -> Any:
    """`payload` parsed as the standard library does, each object that repeats a key a
    `Repeated` (ValueError if it is not JSON)."""
    return json.loads(payload, object_pairs_hook=_keep_repeats, parse_int=parse_int)


def first_repeat(data: Any, skip: object = None) -> str | None:
    """The first repeated key of a `parse_with_repeats` result, outside the object `skip`."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item, Repeated) and item is not skip:
                return next(iter(item.repeats))
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return None


def _keys_and_colons(data: Any) -> int:
    """Keys in every object plus the colons inside every string: the colons the text has when
    no key is repeated and no colon is escaped. Numbers, the bulk of a frame, are skipped first."""
    count, stack = 0, [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            for key, value in item.items():
                count += key.count(":")
                kind = type(value)
                if kind is float or kind is int:
                    continue
                if kind is str:
                    count += value.count(":")
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            count += item.count(":")
    return count


def may_repeat_a_key(payload: bytes, parsed: Any) -> bool:
    """Whether `payload` may give a key twice in one object, from what a parser made of it: a
    colon outside strings ends each key, so a text with more colons than `parsed` has keys and
    colons in strings lost a repeated key (an escaped `\\u003a` hides one: those are parsed
    once more)."""
    if b":" not in payload:
        return False
    if b"\\u" in payload:
        return True
    return payload.count(b":") != _keys_and_colons(parsed)


def repeated_key(payload: bytes, parsed: Any) -> str | None:
    """The first key `payload` gives twice in one object, given what a parser made of it (None
    at the cost of a count for a payload that cannot hold one)."""
    return duplicate_key(payload) if may_repeat_a_key(payload, parsed) else None


def repeated_key_reason(key: str) -> str:
    """What an MQTT role says of a payload that repeats `key` (the API names it as a field)."""
    return (
        f"key {key[:64]!r} is given twice in one JSON object (a parser keeps the last unseen); "
        "give it once"
    )
