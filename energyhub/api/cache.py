"""Load answers kept per process: until their data changes where PostgreSQL reports every change,
else for `ttl_s`.

A site's load at a 15-min or hourly step on plain PostgreSQL is read from the per-site rollups
alone, and every change to them NOTIFYs the range of buckets it touched (migration 10). Such an
answer is stored with its window (`span`) and kept, while the process's listener listens
(energyhub/api/changes.py), until a change touches that window: as fresh as a query, whatever its
age. Every other answer (TimescaleDB adds real-time aggregates; other steps sum the meters) is
kept `ttl_s` from the start of its query, so data committed at time t is in every answer sent
after t + `ttl_s`.

Correctness rests on these rules:
- a windowed answer is stored only if no change was heard between the start of its query and its
  storing (`generation`), never while the listener is away, and all are dropped when it goes;
- the cache holds what every key allowed to read the resource would get (the site's load, in the
  site's zone): the route checks the caller's key and scope on every request, before looking
  here, so a revoked key or one outside the site's subtree is refused as without the cache;
- its size is bounded in bytes: the oldest entries go first. `ttl_s` 0 turns it off.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    started: float
    body: bytes
    span: tuple[float, float] | None
    """The answer's window as epoch seconds [start, end), if it is kept until a change in it."""


class ResponseCache:
    """Bodies by request key: windowed ones until a change, the others `ttl_s`; `ttl_s` 0: off."""

    def __init__(self, ttl_s: float, max_bytes: int) -> None:
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self.generation = 0
        self.live = False
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._bytes = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    @staticmethod
    def now() -> float:
        """The clock of the stamps: take it before the query whose answer is stored."""
        return time.monotonic()

    def get(self, key: Hashable) -> bytes | None:
        """The body stored under `key` if it still holds."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.span is not None:
            return entry.body if self.live else None
        if self.now() - entry.started >= self.ttl_s:
            return None
        return entry.body

    def put(
        self,
        key: Hashable,
        started: float,
        body: bytes,
        span: tuple[float, float] | None = None,
        generation: int | None = None,
    ) -> None:
        """Store `body`, whose query started at `started` (`now()`) — with `span`, at
        `generation` (read before the query) — and drop what is stale or over the byte budget,
        oldest first (entries are kept in the order they were stored)."""
        if not self.enabled or len(body) > self.max_bytes:
            return
        if span is not None and not (self.live and generation == self.generation):
            return
        self._drop(key)
        self._entries[key] = Entry(started, body, span)
        self._bytes += len(body)
        stale = self.now() - self.ttl_s
        while self._entries:
            oldest, entry = next(iter(self._entries.items()))
            if (entry.span is not None or entry.started > stale) and self._bytes <= self.max_bytes:
                break
            self._drop(oldest)

    def heard(self, payload: str) -> None:
        """Rollup buckets changed: `"<first> <last>"` bucket starts as epoch seconds, or `"all"`
        (as is any payload it cannot read: a hand-sent NOTIFY must not keep stale answers)."""
        self.generation += 1
        try:
            first, last = (float(x) for x in payload.split())
        except ValueError:
            first, last = -math.inf, math.inf
        self._drop_windowed(lambda span: span[0] <= last and first < span[1])

    def reset(self, *, live: bool) -> None:
        """The listener (re)connected or went away: forget every windowed answer."""
        self.generation += 1
        self.live = live
        self._drop_windowed(lambda _: True)

    def _drop_windowed(self, touched: Callable[[tuple[float, float]], bool]) -> None:
        for key in [k for k, e in self._entries.items() if e.span is not None and touched(e.span)]:
            self._drop(key)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.body)

    def __len__(self) -> int:
        return len(self._entries)
