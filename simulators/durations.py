"""Durations and timestamps as the command line spells them: `24h`, `1min`, `+300s`, RFC 3339."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from energyhub.bounds import local_instant, within_years
from energyhub.ingest.timestamps import latest_ts_us
from simulators.errors import SimulatorInputError

_UNITS_S = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
MAX_DURATION_S = 100 * 365 * 86400.0
"""Longest duration taken: a century of simulated time; a longer one (`99999999999d`) overflowed
the calendar or the event loop's timers."""
_DURATION = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*([a-z]+)\s*$")


def parse_duration_s(text: str, what: str = "duration", signed: bool = False) -> float:
    """Seconds in a duration like `24h`, `1min`, `2s`, `+300s`; raise naming `what` otherwise."""
    match = _DURATION.match(text.lower())
    if match is None or match.group(2) not in _UNITS_S:
        units = ", ".join(_UNITS_S)
        raise SimulatorInputError(
            f"{what}: expected a number and a unit ({units}), e.g. 24h or 1min, got {text!r}"
        )
    seconds = float(match.group(1)) * _UNITS_S[match.group(2)]
    if not signed and seconds <= 0:
        raise SimulatorInputError(f"{what}: must be > 0, got {text!r}")
    if abs(seconds) > MAX_DURATION_S:
        raise SimulatorInputError(
            f"{what}: at most {MAX_DURATION_S / 86400:,.0f} days, got {text!r}"
        )
    return seconds


def parse_timestamp(text: str, tz: ZoneInfo, what: str = "--start") -> datetime:
    """An RFC 3339 / ISO 8601 time; one without an offset is read in the site's time zone."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SimulatorInputError(
            f"{what}: expected an RFC 3339 time such as 2025-07-01T00:00:00+08:00, got {text!r}"
        ) from None
    try:
        value = local_instant(value, tz) if value.tzinfo is None else value
        return within_years(value)  # readings are stored from 1970 to 2199
    except ValueError as exc:
        raise SimulatorInputError(f"{what}: {exc}") from None


def floor_time(value: datetime, step_s: float) -> datetime:
    """`value` rounded down to a whole multiple of the step (counted from the Unix epoch)."""
    epoch = value.timestamp()
    return datetime.fromtimestamp(epoch - epoch % step_s, tz=value.tzinfo or UTC)


def latest_first_us(
    now_us: int, span_s: float, speed: float | None, max_future_skew_s: float, lag_s: float = 0.0
) -> int:
    """The latest stamp (µs since the epoch) of the first reading of a run begun at `now_us`
    whose every reading the ingest takes (`latest_ts_us` of when it arrives), when a reading
    stamped d after the first is published (lag + d)/speed after the run begins (at once at
    speed max). How far its stamp is ahead of then is linear in d, so the first reading and
    the last, `span_s` after it, bound it."""
    return min(
        latest_ts_us(now_us + (round((lag_s + d_s) / speed * 1e6) if speed else 0),
                     max_future_skew_s) - round(d_s * 1e6)
        for d_s in (0.0, span_s)
    )  # fmt: skip


def latest_start_us(
    now_us: int, steps: int, step_s: float, speed: float | None, max_future_skew_s: float
) -> int:
    """The latest start of a simulation begun at `now_us` whose every reading the ingest takes:
    step t, stamped start + t·step, is published (t + 1)·step/speed after the run begins."""
    return latest_first_us(now_us, (steps - 1) * step_s, speed, max_future_skew_s, lag_s=step_s)


def default_start(now: datetime, duration_s: float, step_s: float, speed: float | None) -> datetime:
    """The start that keeps every simulated reading at or before wall-clock time.

    At `speed` simulated seconds per wall second (None: as fast as possible) the run ends
    `duration/speed` after `now`, so starting `duration − duration/speed` ago ends it about now.
    """
    lead_s = duration_s - (duration_s / speed if speed else 0.0)
    return floor_time(now - timedelta(seconds=lead_s), step_s)
