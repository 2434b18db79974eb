"""Forecast operations on a stored site: backtest its meters, read its current forecast.

A site's forecastable meters are its own load meters (power or energy, top level, no single
asset) and its PV meters. Histories come from the store as the scheduler reads them (kW per
step from the rollups, energy counters differenced with their resets handled there, NaN where
nothing was stored) and are cleaned the same way (short gaps interpolated, long ones left out).
The outdoor temperature is the park's sensor, with stored weather forecasts where there are.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from psycopg import AsyncConnection

from energyhub.errors import EnergyhubError
from energyhub.forecast.backtest import SeriesBacktest, backtest_series
from energyhub.forecast.gbm import PvSite
from energyhub.forecast.profile import ForecastError, ForecastOptions, History, clean_history
from energyhub.forecast.pv import metered_pv_kw
from energyhub.forecast.select import demand_candidates, pv_candidates
from energyhub.forecast.solar import far_sun_note
from energyhub.forecast.store import read_weather
from energyhub.localdays import day_start
from energyhub.scheduler.demand import outdoor_meter
from energyhub.scheduler.telemetry import StoredMeter, read_telemetry, stored_meters
from energyhub.sites import PV, SiteFile
from energyhub.store.db import Backend

MAX_BACKTEST_DAYS = 90
BACKTEST_STEPS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1)}


class UnknownSiteError(EnergyhubError):
    """A site or meter id that the site file or the store does not know; `field` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """What to backtest: a site (and one of its meters), how many days, at what step."""

    site_id: str
    meter: str | None
    days: int
    step: timedelta
    history: timedelta
    end: datetime
    """Backtest days end at the last local midnight at or before this."""


@dataclass
class SiteBacktest:
    site_id: str
    step: timedelta
    series: list[SeriesBacktest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _park_of(site: SiteFile, site_id: str) -> str:
    if site.find_park(site_id) is not None:
        return site_id
    found = site.find_building(site_id)
    if found is not None:
        return found[0].id
    kind = next((n.kind for n in site.nodes() if n.id == site_id), None)
    advice = {"city": ": backtest one of its parks or buildings",
              "enterprise": ": backtest the building or its park"}.get(kind or "", "")  # fmt: skip
    raise UnknownSiteError("site", site.not_park_or_building(site_id) + advice)


def _peak_kw(site: SiteFile, meter: StoredMeter) -> float | None:
    for park in site.city.parks:
        assets = [*park.assets, *(a for b in park.buildings for a in b.assets)]
        for asset in assets:
            if asset.id == meter.asset_id and isinstance(asset, PV):
                return asset.peak_kw
    return None


def forecastable(meters: list[StoredMeter], name: str | None, site_id: str) -> list[StoredMeter]:
    """The site's load and PV meters, or the one named (UnknownSiteError if it is neither)."""
    usable = [m for m in meters if m.measures_load or m.carrier == "pv"]
    if name is None:
        return usable
    chosen = [m for m in usable if m.name == name or str(m.id) == name]
    if not chosen:
        known = ", ".join(m.name for m in usable) or "none"
        raise UnknownSiteError(
            "meter", f"no load or PV meter {name!r} at site {site_id!r} (its meters: {known})"
        )
    return chosen


async def backtest_site(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    request: BacktestRequest,
    options: ForecastOptions,
) -> SiteBacktest:
    """Backtest each forecastable meter of the site day-ahead over `request.days` days."""
    park_id = _park_of(site, request.site_id)
    meters = await stored_meters(conn, sorted({request.site_id, park_id}))
    own = [m for m in meters if m.site_id == request.site_id]
    chosen = forecastable(own, request.meter, request.site_id)
    result = SiteBacktest(request.site_id, request.step)
    if not chosen:
        result.notes.append(
            f"{request.site_id}: no load or PV meter to backtest (a power or energy meter "
            "without asset: or submeter_of:, or a PV asset's meter)"
        )
    outdoor = outdoor_meter(meters, park_id)
    tz = site.tz
    end = day_start(pd.Timestamp(request.end), tz)
    start = end - pd.Timedelta(days=request.days) - pd.Timedelta(request.history)
    step = pd.Timedelta(request.step)
    reading = [*chosen, *([outdoor] if outdoor is not None else [])]
    telemetry = await read_telemetry(
        conn, backend, reading, start.to_pydatetime(), end.to_pydatetime(), step, tz
    )
    weather = await read_weather(
        conn, park_id, start.to_pydatetime(), end.to_pydatetime(), end.to_pydatetime()
    )
    weather = weather.reindex(telemetry.index)
    if outdoor is not None:
        weather["outdoor_c"] = weather["outdoor_c"].combine_first(telemetry.series(outdoor))
    else:
        result.notes.append(f"{park_id}: no outdoor temperature sensor; models go without it")
    frame = None if weather.isna().all().all() else weather
    histories = [(meter, telemetry.history(meter)) for meter in chosen]
    # the fits take seconds: off the event loop, so an API process keeps answering
    await asyncio.to_thread(_score, result, histories, site, request, frame, end, options)
    return result


def _score(
    result: SiteBacktest,
    histories: list[tuple[StoredMeter, History]],
    site: SiteFile,
    request: BacktestRequest,
    weather: pd.DataFrame | None,
    end: pd.Timestamp,
    options: ForecastOptions,
) -> None:
    tz = site.tz
    for meter, history in histories:
        try:
            values, notes = clean_history(history, meter.name, end, _lenient(options))
        except ForecastError as exc:
            result.notes.append(str(exc))
            continue
        result.notes += notes
        if meter.carrier == "pv":
            values = metered_pv_kw(values)
            far = far_sun_note(
                meter.label, options.latitude_deg, options.longitude_deg, tz, end.to_pydatetime()
            )
            result.notes += [far] if far else []
            peak = _peak_kw(site, meter) or float(values.max())
            pv = PvSite(peak, options.latitude_deg, options.longitude_deg)
            candidates = pv_candidates(meter.label, tz, pv, weather, options)
            upper: float | None = peak
        else:
            candidates = demand_candidates(meter.label, tz, weather, options)
            upper = None
        scored = backtest_series(
            values, tz, candidates, label=meter.label, days=request.days,
            history=pd.Timedelta(request.history), upper_kw=upper,
        )  # fmt: skip
        result.series.append(scored)


def _lenient(options: ForecastOptions) -> ForecastOptions:
    """A backtest of the past does not stop at a meter that is silent now."""
    return replace(options, max_silence=timedelta(days=MAX_BACKTEST_DAYS * 2))


def backtest_document(result: SiteBacktest) -> dict[str, Any]:
    """The backtest as JSON-ready data (the API answers the same)."""
    return {
        "site_id": result.site_id,
        "step_s": int(result.step.total_seconds()),
        "meters": [
            {
                "meter": s.label,
                "origins": s.origins,
                "better_naive": s.better_naive,
                "models": {
                    name: {
                        **_finite_fields(asdict(score)),
                        "ratio_to_better_naive": _finite(s.ratio(name)),
                    }
                    for name, score in s.scores.items()
                },
                "band": None if s.band is None else _finite_fields(asdict(s.band)),
                "chosen": s.chosen,
                "notes": s.notes,
            }
            for s in result.series
        ],
        "notes": result.notes,
    }


def _finite(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None


def _finite_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A score's fields with a value of no compared step (NaN) as None: JSON has no NaN."""
    return {k: _finite(v) if isinstance(v, float) else v for k, v in fields.items()}
