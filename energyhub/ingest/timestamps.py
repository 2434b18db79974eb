"""Reading timestamps: RFC 3339 with an offset, or epoch seconds / milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from energyhub.ingest.errors import PayloadError

EPOCH_MS_FROM = 100_000_000_000
"""A number at or above this is epoch milliseconds (1973 in ms; year 5138 in seconds)."""
EPOCH_MS_UNTIL = 100_000_000_000_000
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def latest_ts_us(received_us: int, max_future_skew_s: float) -> int:
    """The latest reading time the ingest takes from a message received at `received_us`: a
    clock further ahead is wrong (validate's `future` reject); the simulator's `--start` is held
    to it too."""
    return received_us + int(max_future_skew_s * 1_000_000)


def _micros(moment: datetime) -> int:
    delta = moment - UNIX_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _local(naive: datetime, zone: ZoneInfo, received_us: int | None) -> datetime:
    """A device-local time in `zone`. A time the clocks repeat (02:30 on the night they go back)
    is the pass its message arrived within half the shift of: read always as the first, the
    second pass's readings landed on the first's instants and were dropped as their duplicates.
    Without a receipt near either pass (a replay long after) it is the first."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    shift_us = abs(_micros(second) - _micros(first))
    if received_us is None or shift_us == 0:
        return first
    for moment in (first, second):
        if abs(received_us - _micros(moment)) < shift_us / 2:
            return moment
    return first


def parse_ts(
    value: object, naive_zone: ZoneInfo | None = None, received_us: int | None = None
) -> int:
    """Microseconds since the Unix epoch; PayloadError naming the value when it is not a time.

    `naive_zone` admits timestamps without an offset as local time of that zone (Tasmota sends
    its device-local time so); without it they are refused. `received_us` places a local time
    the clocks repeat (`_local`).
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
        moment = _local(moment, naive_zone, received_us)
    return _micros(moment)
