"""A plan's forecast band kept with it, and how often metered values fell outside earlier bands.

The scheduler plans on the P50; the P10/P90 go to `plan_forecast_bands` and, at each re-plan,
the metered values of the last days are checked against the bands that were issued for them
(the newest plan's before each step): the share inside is stored with the new plan and logged.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pandas as pd
from psycopg import AsyncConnection

from energyhub.forecast.bands import COVERAGE_WINDOW, band_coverage
from energyhub.forecast.store import issued_bands, save_bands, save_coverage
from energyhub.scheduler.inputs import ScopeForecast

log = logging.getLogger(__name__)


async def keep_band(
    conn: AsyncConnection, plan_id: int, site_id: str, forecast: ScopeForecast, issued_at: datetime
) -> dict[str, Any]:
    """Store the plan's band and the coverage of earlier bands; return the coverage."""
    if not forecast.low.empty and len(forecast.low.columns):
        await save_bands(conn, plan_id, forecast.low, forecast.high)
    coverage = await earlier_coverage(conn, site_id, forecast, issued_at)
    await save_coverage(conn, plan_id, coverage)
    total = coverage["total"]
    if isinstance(total, dict) and total.get("count"):
        log.info(
            "%s: %d of %d metered values of the last %d d inside the P10–P90 band",
            site_id, total["inside"], total["count"], COVERAGE_WINDOW.days,
        )  # fmt: skip
    return coverage


async def earlier_coverage(
    conn: AsyncConnection, site_id: str, forecast: ScopeForecast, issued_at: datetime
) -> dict[str, Any]:
    """How many of the metered values `forecast` learnt from (the last COVERAGE_WINDOW before
    `issued_at`) fell inside the P10–P90 band the site's plans had issued for them."""
    start = pd.Timestamp(issued_at) - COVERAGE_WINDOW
    earlier = await issued_bands(conn, site_id, start.to_pydatetime(), issued_at)
    return band_coverage(earlier, forecast.metered)


def peak_margin(forecast: ScopeForecast) -> pd.Series:
    """Per step, how far the connection's import may come in above the plan: the root-sum-square
    of each banded column's error in that direction (electricity demand's P90 − P50, renewable
    output's P50 − P10), as for independent errors; a sum of per-column P90s would overstate
    the park's. Heat and cooling bands are left out (their electricity depends on the dispatch)."""
    squares = pd.Series(0.0, index=forecast.frame.index)
    for column in forecast.high.columns:
        name = str(column)
        if name.endswith(":electricity_kw"):
            error = forecast.high[column] - forecast.frame[column]
        elif name.endswith(":available_kw"):
            error = forecast.frame[column] - forecast.low[column]
        else:
            continue
        squares += error.clip(lower=0.0).fillna(0.0) ** 2
    return squares.pow(0.5)
