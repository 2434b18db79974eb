"""Debouncing: an alert opens once its condition has held `for_s`, closes once gone `clear_s`.

Hysteresis lives in the checks (an open alert is judged against a lower bar); this state machine
adds the minimum hold, so a value flapping around the threshold opens one alert, not many.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Change(Enum):
    OPEN = "open"
    CLOSE = "close"


@dataclass(slots=True)
class Debounce:
    """The state of one watched condition."""

    for_s: float
    clear_s: float
    is_open: bool = False
    pending_since: datetime | None = None
    clearing_since: datetime | None = None

    def step(self, now: datetime, active: bool | None) -> Change | None:
        """Feed one observation (None: unknown, nothing changes); return a change, if any."""
        if active is None:
            return None
        if not self.is_open:
            if not active:
                self.pending_since = None
                return None
            self.pending_since = self.pending_since or now
            if (now - self.pending_since).total_seconds() >= self.for_s:
                self.is_open, self.pending_since, self.clearing_since = True, None, None
                return Change.OPEN
            return None
        if active:
            self.clearing_since = None
            return None
        self.clearing_since = self.clearing_since or now
        if (now - self.clearing_since).total_seconds() >= self.clear_s:
            self.is_open, self.clearing_since = False, None
            return Change.CLOSE
        return None
