"""`energyhub alerts`: evaluate the site's alert rules continuously; Ctrl-C or SIGTERM stops."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from energyhub.alerts.service import run_alerts
from energyhub.cli_support import (
    configure_logging,
    fail,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.clock import SystemClock
from energyhub.config import Settings
from energyhub.errors import EnergyhubError
from energyhub.ingest.supervisor import stop_on_signals
from energyhub.mqtt import parse_mqtt_url
from energyhub.sites import SiteFile, load_site


def alerts_command(
    site: Annotated[
        Path | None, typer.Option("--site", help="Site file (default: the settings' site_file).")
    ] = None,
) -> None:
    """Watch meters, loads, forecasts, batteries and the ingest; open, close and notify alerts."""
    settings = settings_or_exit()
    require_db_url(settings)
    try:
        if settings.mqtt_url:
            parse_mqtt_url(settings.mqtt_url)
        site_file = load_site(site or settings.site_file)
        configure_logging(settings)
        run_async(_run(settings, site_file))
    except EnergyhubError as exc:
        raise fail(str(exc)) from None


async def _run(settings: Settings, site: SiteFile) -> None:
    stop = asyncio.Event()
    stop_on_signals(stop)
    await run_alerts(settings, site, SystemClock(), stop)
