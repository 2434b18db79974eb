"""Moved to `energyhub.forecast.profile`; this name stays for code written against it."""

from energyhub.forecast.profile import (
    ForecastError,
    ForecastOptions,
    History,
    SeriesForecast,
    clean_history,
    forecast_demand,
    forecast_outdoor,
    forecast_pv,
    nmae,
    seasonal_naive,
)

__all__ = [
    "ForecastError",
    "ForecastOptions",
    "History",
    "SeriesForecast",
    "clean_history",
    "forecast_demand",
    "forecast_outdoor",
    "forecast_pv",
    "nmae",
    "seasonal_naive",
]
