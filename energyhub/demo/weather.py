"""The demo's weather forecast: the simulator's own weather, stored per park as if issued
before the history began (a perfect forecast: the demo has no weather service to ask)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from psycopg import AsyncConnection

from energyhub.forecast.store import save_weather
from energyhub.sites import SiteFile
from simulators.plant import make_weather
from simulators.weather import TimeGrid

FORECAST_STEP = "15min"
SOURCE = "simulator (demo)"


async def feed_weather_forecast(
    conn: AsyncConnection, site: SiteFile, start: datetime, step_s: float, steps: int, seed: int
) -> int:
    """Store the simulated temperature and irradiance of [start, start + steps·step) for every
    park at 15-min means; returns the steps stored."""
    grid = TimeGrid(start, step_s, steps).for_site(site)  # the plant's clock and sun (build_plant)
    weather = make_weather(grid, seed)
    first = pd.Timestamp(start).tz_convert("UTC")
    index = pd.date_range(first, periods=steps, freq=pd.Timedelta(seconds=step_s))
    frame = (
        pd.DataFrame({"outdoor_c": weather.outdoor_c, "ghi_w_m2": weather.ghi_w_m2}, index=index)
        .resample(FORECAST_STEP)
        .mean()
    )
    stored = 0
    for park in site.city.parks:
        stored += await save_weather(conn, park.id, start, frame, SOURCE)
    return stored
