"""Keys and site-scope answers kept in each API process while PostgreSQL reports every change.

A key's row, whether a site lies in its subtree and a meter's row and scope change only with
`api_keys`, `sites`, `meters` or `enterprise_meters`, and every change to them NOTIFYs
`energyhub_access` (migration 9). The process's listener
(energyhub/api/changes.py) empties this cache on each such notice, so a revoked key is refused by
every process as soon as the revoking commit's notice arrives (milliseconds). Two more rules keep
that true: nothing is kept or served while the listener is not listening, and an answer is stored
only if no notice came between the start of its query and its storing (`generation`), so an
answer read before a change cannot outlive the change. Unknown tokens are never stored (a stream
of wrong tokens cannot fill the cache).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

Answer = TypeVar("Answer")


class AccessCache(Generic[Answer]):
    """Access answers (a key and a site's zone, or a key and a meter) by (key digest, site or
    meter id), kept while the listener hears `energyhub_access`."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.generation = 0
        self.live = False
        self._entries: dict[Hashable, Answer] = {}

    def get(self, key: Hashable) -> Answer | None:
        return self._entries.get(key) if self.live else None

    def put(self, generation: int, key: Hashable, access: Answer) -> None:
        """Store what a query begun at `generation` (read before it) answered."""
        if not self.live or generation != self.generation or self.max_entries <= 0:
            return
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest stored
        self._entries[key] = access

    def heard(self, payload: str) -> None:
        """A key, site or meter changed."""
        self.reset(live=True)

    def reset(self, *, live: bool) -> None:
        """Forget every answer; serve from now on only if `live`."""
        self._entries.clear()
        self.generation += 1
        self.live = live

    def __len__(self) -> int:
        return len(self._entries)
