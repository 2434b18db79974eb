"""Reading timestamps: RFC 3339 with an offset, or epoch seconds / milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from energyhub.ingest.errors import PayloadError

EPOCH_MS_FROM = 100_000_000_000
"""A number at or above this is epoch milliseconds (1973 in ms; year 5138 in seconds)."""
EPOCH_MS_UNTIL = 100_000_000_000_000
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    delta = moment - UNIX_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_ts(value: object, naive_zone: ZoneInfo | None = None) -> int:
    """Microseconds since the Unix epoch; PayloadError naming the value when it is not a time.

    `naive_zone` admits timestamps without an offset as local time of that zone (Tasmota sends
    its device-local time so); without it they are refused.
    """
    if isinstance(value, bool) or value is None:
        raise PayloadError(
            f"ts must be RFC 3339 or epoch seconds/milliseconds, got {value!r}", "bad_ts"
        )
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")) or value < 0:
            raise PayloadError(f"ts is not a valid epoch time, got {value!r}", "bad_ts")
        if value >= EPOCH_MS_UNTIL:
            raise PayloadError(
                f"ts is too large for epoch seconds or milliseconds, got {value!r}", "bad_ts"
            )
        return round(value * 1000) if value >= EPOCH_MS_FROM else round(value * 1_000_000)
    if not isinstance(value, str):
        raise PayloadError(
            f"ts must be RFC 3339 or epoch seconds/milliseconds, got {value!r}", "bad_ts"
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(f"ts is not RFC 3339, got {value[:64]!r}", "bad_ts") from None
    if moment.tzinfo is None:
        if naive_zone is None:
            raise PayloadError(f"ts has no UTC offset, got {value[:64]!r}", "bad_ts")
        moment = moment.replace(tzinfo=naive_zone)
    return _micros(moment)
