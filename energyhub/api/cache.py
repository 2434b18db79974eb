"""A short-lived cache of response bodies, per process: the same load asked again within `ttl_s`
is answered without its query.

Correctness rests on three rules:
- an entry is stamped when its query *started* and served only while younger than `ttl_s`, so data
  committed at time t is in every answer sent after t + `ttl_s`;
- it holds what every key allowed to read the resource would get (the site's load, in the site's
  zone): the route checks the caller's key and scope on every request, before looking here, so a
  revoked key or one outside the site's subtree is refused as without the cache;
- its size is bounded in bytes: the oldest entries go first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable


class ResponseCache:
    """Bodies by request key, kept `ttl_s` from the start of their query; `ttl_s` 0: off."""

    def __init__(self, ttl_s: float, max_bytes: int) -> None:
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    @staticmethod
    def now() -> float:
        """The clock of the stamps: take it before the query whose answer is stored."""
        return time.monotonic()

    def get(self, key: Hashable) -> bytes | None:
        """The body stored under `key` if it is younger than `ttl_s`."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        started, body = entry
        if self.now() - started >= self.ttl_s:
            return None
        return body

    def put(self, key: Hashable, started: float, body: bytes) -> None:
        """Store `body`, whose query started at `started` (`now()`); drop what is stale or over
        the byte budget, oldest first (entries are kept in the order they were stored)."""
        if not self.enabled or len(body) > self.max_bytes:
            return
        self._drop(key)
        self._entries[key] = (started, body)
        self._bytes += len(body)
        stale = self.now() - self.ttl_s
        while self._entries:
            oldest, (stamp, _) = next(iter(self._entries.items()))
            if stamp > stale and self._bytes <= self.max_bytes:
                break
            self._drop(oldest)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1])

    def __len__(self) -> int:
        return len(self._entries)
