"""`energyhub scheduler`: the receding-horizon loop, on the wall clock or on simulated time."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from energyhub.bounds import local_instant, within_years
from energyhub.cli_support import (
    configure_logging,
    fail,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.clock import SPEED_MAX, SPEED_MIN, Clock, ScaledClock, SystemClock
from energyhub.config import Settings
from energyhub.errors import EnergyhubError
from energyhub.ingest.supervisor import stop_on_signals
from energyhub.mqtt import parse_mqtt_url
from energyhub.scheduler.replan import targets
from energyhub.scheduler.service import run_scheduler
from energyhub.sites import SiteFile, load_site


def _clock(sim_start: str | None, speed: float | None, tz_name: str) -> Clock:
    if sim_start is None:
        if speed is not None:
            raise fail("--speed needs --sim-start (the simulated time to start from)")
        return SystemClock()
    try:
        start = datetime.fromisoformat(sim_start.strip())
    except ValueError:
        raise fail(
            f"--sim-start: expected an RFC 3339 time such as 2025-07-01T00:00:00+08:00, got "
            f"{sim_start!r}"
        ) from None
    try:
        start = local_instant(start, ZoneInfo(tz_name)) if start.tzinfo is None else start
        within_years(start)
    except ValueError as exc:  # 1900 ran on a calendar storage refuses, silently
        raise fail(f"--sim-start: {exc}") from None
    return ScaledClock(start, speed or 1.0)


def scheduler_command(
    site: Annotated[
        Path | None, typer.Option("--site", help="Site file (default: the settings' site_file).")
    ] = None,
    sim_start: Annotated[
        str | None,
        typer.Option(
            "--sim-start",
            help="Run on simulated time starting at this RFC 3339 instant (as `energyhub "
            "simulate --start` does).",
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            "--speed",
            min=SPEED_MIN,
            max=SPEED_MAX,
            help="Simulated seconds per second (--sim-start).",
        ),
    ] = None,
) -> None:
    """Re-plan every period, activate approved plans, send setpoints; Ctrl-C or SIGTERM stops."""
    settings = settings_or_exit()
    require_db_url(settings)
    if not settings.mqtt_url:
        raise fail("ENERGYHUB_MQTT_URL is not set: give the broker URL, e.g. mqtt://127.0.0.1:1883")
    try:
        parse_mqtt_url(settings.mqtt_url)
        site_file = load_site(site or settings.site_file)
        targets(site_file, settings.scheduler_sites)
        clock = _clock(sim_start, speed, site_file.timezone)
        configure_logging(settings)
        run_async(_run(settings, site_file, clock))
    except EnergyhubError as exc:
        raise fail(str(exc)) from None


async def _run(settings: Settings, site: SiteFile, clock: Clock) -> None:
    stop = asyncio.Event()
    stop_on_signals(stop)
    await run_scheduler(settings, site, clock, stop)
