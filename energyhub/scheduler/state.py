"""Where storage starts a re-plan: the latest SOC reading; without any, where the setpoints sent
to it drove it; else the site file's default. And what a flexible load was already served in the
window open at the re-plan's start."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.optimize.assets import window_bounds
from energyhub.optimize.scope import Scope
from energyhub.plans.tracked import SetpointTrack, Storage
from energyhub.scheduler.demand import asset_meter, flexible_draw, soc_meter
from energyhub.scheduler.telemetry import latest_by_meter, read_telemetry, stored_meters
from energyhub.sites import (
    Asset,
    Battery,
    FlexibleLoad,
    HydrogenStore,
    Park,
    SiteFile,
    ThermalStorage,
)
from energyhub.store.db import Backend

SOC_CLIP_NOTE = 0.005
"""A reading outside [soc_min, soc_max] by more than this fraction is mentioned when clipped."""


@dataclass
class InitialSoc:
    """The SOC fraction each storage asset starts from, where it came from, and warnings."""

    fractions: dict[str, float] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f} min"


async def initial_soc(
    conn: AsyncConnection, scope: Scope, now: datetime, max_age: timedelta, step: timedelta
) -> InitialSoc:
    """Each storage asset's latest `soc_pct` reading if fresh; without any reading, the SOC its
    setpoints (`step` long each) drove it to (energyhub.plans.tracked), as plan vs actual values
    it; else its soc_initial (warned)."""
    meters = await stored_meters(conn, sorted({n.id for n in scope.nodes}))
    latest = await latest_by_meter(conn, meters)
    result = InitialSoc()
    unread: list[Storage] = []
    for _, asset in scope.assets():
        if not isinstance(asset, Battery | ThermalStorage | HydrogenStore):
            continue
        meter = soc_meter(meters, asset.id)
        reading = latest.get(meter.id) if meter is not None else None
        default = asset.soc_initial
        if reading is None:
            unread.append(asset)
            why = "no soc_pct meter" if meter is None else f"no reading of {meter.label}"
            result.warnings.append(f"{asset.id}: {why}; planned from soc_initial {default:g}")
            result.sources[asset.id] = {"soc": default, "source": "soc_initial"}
            result.fractions[asset.id] = default
            continue
        age = max(now - reading.ts, timedelta(0))
        if age > max_age:
            result.warnings.append(
                f"{asset.id}: the SOC reading of {meter.label if meter else '?'} is "
                f"{_minutes(age)} old (limit {_minutes(max_age)}); planned from soc_initial "
                f"{default:g}"
            )
            result.sources[asset.id] = {"soc": default, "source": "soc_initial", "stale": True}
            result.fractions[asset.id] = default
            continue
        result.fractions[asset.id] = _clipped(asset, reading.value / 100.0, result.warnings)
        result.sources[asset.id] = {
            "soc": result.fractions[asset.id],
            "source": meter.label if meter else "",
            "ts": reading.ts.isoformat(),
        }
    if unread:
        await _from_setpoints(conn, unread, now, step, result)
    return result


async def _from_setpoints(
    conn: AsyncConnection,
    stores: list[Storage],
    now: datetime,
    step: timedelta,
    result: InitialSoc,
) -> None:
    """Stores without SOC readings that were sent setpoints start where those drove them."""
    track = SetpointTrack()
    sent = await track.advance(conn, stores, pd.Timestamp(now), step.total_seconds() / 3600)
    for store in stores:
        if not sent[store.id]:
            continue
        soc = track.level_kwh[store.id] / store.energy_kwh
        result.warnings = [w for w in result.warnings if not w.startswith(f"{store.id}: ")]
        result.warnings.append(
            f"{store.id}: no SOC reading; planned from {soc:.3f}, where its {sent[store.id]} "
            f"setpoint(s) since the first drove it from soc_initial {store.soc_initial:g}"
        )
        result.sources[store.id] = {"soc": soc, "source": "setpoints", "setpoints": sent[store.id]}
        result.fractions[store.id] = soc


def _clipped(asset: Storage, soc: float, warnings: list[str]) -> float:
    inside = min(max(soc, asset.soc_min), asset.soc_max)
    if abs(inside - soc) > SOC_CLIP_NOTE:
        warnings.append(
            f"{asset.id}: measured SOC {soc:.3f} is outside [{asset.soc_min:g}, "
            f"{asset.soc_max:g}]; planned from {inside:g}"
        )
    return inside


def _with_soc(assets: list[Asset], fractions: dict[str, float]) -> list[Asset]:
    return [
        a.model_copy(update={"soc_initial": fractions[a.id]}) if a.id in fractions else a
        for a in assets
    ]


def with_initial_soc(site: SiteFile, fractions: dict[str, float]) -> SiteFile:
    """A copy of the site file whose storage assets start from the given SOC fractions."""
    parks: list[Park] = []
    for park in site.city.parks:
        buildings = [
            b.model_copy(update={"assets": _with_soc(list(b.assets), fractions)})
            for b in park.buildings
        ]
        assets = _with_soc(list(park.assets), fractions)
        parks.append(park.model_copy(update={"assets": assets, "buildings": buildings}))
    city = site.city.model_copy(update={"parks": parks})
    return site.model_copy(update={"city": city})


def window_opened(asset: FlexibleLoad, now: pd.Timestamp) -> pd.Timestamp | None:
    """When the flexible load's window open at `now` (local) opened; None outside its window."""
    hour = now.hour + now.minute / 60.0
    if not asset.inside(np.array([hour]))[0]:
        return None
    day = now.tz_localize(None).normalize()
    if asset.overnight and hour < asset.window_end_h:
        day -= pd.Timedelta(days=1)
    end_h = asset.window_start_h + asset.window_h
    return window_bounds(pd.DatetimeIndex([day]), now.tz, asset.window_start_h, end_h)[0][0]


async def flexible_delivered(
    conn: AsyncConnection,
    backend: Backend,
    scope: Scope,
    start: datetime,
    step: timedelta,
    tz: ZoneInfo,
) -> dict[str, float]:
    """The energy (kWh) each flexible load of the scope was served in its window open at `start`,
    before `start`: its electricity meter's where it has one, else what the load's history takes
    it to have drawn (energyhub.scheduler.demand.flexible_draw: the setpoints sent, its own rule
    where none was). A load whose window is not open, or opened at `start`, is left out."""
    now = pd.Timestamp(start).tz_convert(tz)
    opened = {
        a.id: (a, at, node.id)
        for node, a in scope.assets()
        if isinstance(a, FlexibleLoad) and (at := window_opened(a, now)) is not None and at < now
    }
    if not opened:
        return {}
    first = min(at for _, at, _ in opened.values()).tz_convert("UTC").floor(step)  # step grid
    meters = await stored_meters(conn, sorted({node for _, _, node in opened.values()}))
    telemetry = await read_telemetry(
        conn, backend, meters, first.to_pydatetime(), start, pd.Timedelta(step), tz
    )
    step_h = step.total_seconds() / 3600
    out = {}
    for asset, at, _ in opened.values():
        meter = asset_meter(meters, asset.id, ("electricity",))
        drawn = telemetry.series(meter) if meter is not None else flexible_draw(asset, telemetry)
        out[asset.id] = float(drawn[drawn.index >= at].fillna(0.0).clip(lower=0.0).sum() * step_h)
    return out
