"""Request limits: longest range, most rows per response; each a 422 saying how to page."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from energyhub.api.errors import bad_input
from energyhub.config import Settings


def _span(delta: timedelta) -> str:
    hours = delta / timedelta(hours=1)
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} h"


def window(
    start: datetime | None, end: datetime | None, step: timedelta | None, settings: Settings
) -> tuple[datetime, datetime]:
    """[start, end) with defaults (24 h: up to now, or from start), checked against the limits."""
    if end is None:
        end = datetime.now(UTC) if start is None else start + timedelta(days=1)
    if start is None:
        start = end - timedelta(days=1)
    if end <= start:
        raise bad_input(
            "query", "end", f"must be after start ({start.isoformat()}), got {end.isoformat()}"
        )
    longest = timedelta(days=settings.api_max_range_days)
    if end - start > longest:
        raise bad_input(
            "query",
            "end",
            f"start..end spans {_span(end - start)}, more than the limit of {_span(longest)} "
            "(ENERGYHUB_API_MAX_RANGE_DAYS): ask for consecutive windows of at most that length",
        )
    if step is None:
        return start, end
    rows = math.ceil((end - start) / step)
    if rows > settings.api_max_points:
        page = step * settings.api_max_points
        raise bad_input(
            "query",
            "step",
            f"start..end at this step makes {rows} rows, more than the limit of "
            f"{settings.api_max_points} per response (ENERGYHUB_API_MAX_POINTS): use a larger "
            f"step, or ask for consecutive windows of at most {_span(page)} each",
        )
    return start, end
