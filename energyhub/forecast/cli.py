"""`energyhub forecast backtest|weather`: how good the forecasts are, and weather forecast input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from energyhub.bounds import within_years
from energyhub.cli_support import (
    console,
    fail,
    free_text,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.csv_columns import rows_refused
from energyhub.errors import not_utf8
from energyhub.forecast.backtest import CHOSEN, NAIVE_DAY, NAIVE_WEEK, SeriesBacktest
from energyhub.forecast.sites import (
    BACKTEST_STEPS,
    MAX_BACKTEST_DAYS,
    BacktestRequest,
    SiteBacktest,
    backtest_document,
)
from energyhub.sites import load_site
from energyhub.userfiles import read_text

forecast_app: typer.Typer = typer.Typer(
    help="Forecasts: backtest them on stored meters; import weather forecasts.",
    no_args_is_help=True,
)


def _table(series: SeriesBacktest) -> Table:
    title = f"{series.label}: {series.origins} day-ahead forecasts from local midnights"
    table = Table(title=escape(title), title_justify="left")
    for column in ("model", "NMAE", "MAE kW", "÷ better naive", "chosen on"):
        table.add_column(column, justify="left" if column == "model" else "right")
    order = [CHOSEN, *sorted(set(series.scores) - {CHOSEN, NAIVE_DAY, NAIVE_WEEK})]
    for name in [*order, NAIVE_DAY, NAIVE_WEEK]:
        if name not in series.scores:
            continue
        score = series.scores[name]
        ratio = series.ratio(name)
        table.add_row(
            name,
            _figure(score.nmae, ".3f"),
            _figure(score.mae_kw, ".3g"),
            "" if ratio != ratio else f"{ratio:.2f}",
            str(series.chosen.get(name, "")) if name != CHOSEN else "",
        )
    return table


def _figure(value: float, spec: str) -> str:
    """A score, or — where no step of the model could be compared (NaN)."""
    return "—" if value != value else format(value, spec)


@forecast_app.command("backtest")
@handles_errors
def backtest(
    site: Annotated[str, typer.Option("--site", help="Park or building id.", show_default=False)],
    meter: Annotated[
        str | None, typer.Option("--meter", help="One meter (name or id; default: all).")
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, max=MAX_BACKTEST_DAYS, help="Forecast days (latest).")
    ] = 28,
    step: Annotated[str, typer.Option("--step", help="15m or 1h.")] = "15m",
    end: Annotated[
        str | None,
        typer.Option("--end", help="RFC 3339; the days end at the local midnight before it."),
    ] = None,
    site_file: Annotated[
        Path | None, typer.Option("--site-file", help="Default: the settings' site_file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rolling-origin day-ahead backtest of a site's meters: NMAE and MAE per model against the
    same time yesterday and last week, pinball loss and coverage of the P10–P90 band."""
    if step not in BACKTEST_STEPS:
        raise fail(f"--step: expected 15m or 1h, got {step!r}")
    until = datetime.now(UTC)
    if end is not None:
        try:
            until = datetime.fromisoformat(end.strip())
        except ValueError:
            raise fail(f"--end: expected an RFC 3339 time, got {end!r}") from None
        if until.tzinfo is None:
            raise fail(f"--end: give a UTC offset, e.g. {end}+08:00")
        try:
            within_years(until)  # the days before it are counted in the calendar's years
        except ValueError as exc:
            raise fail(f"--end: {exc}") from None
    settings = settings_or_exit()
    url = require_db_url(settings)
    loaded = load_site(site_file or settings.site_file)
    request = BacktestRequest(
        site,
        meter,
        days,
        BACKTEST_STEPS[step],
        timedelta(days=settings.scheduler_history_days),
        until,
    )
    result = run_async(_backtest(url, settings, loaded, request))
    if as_json:
        console.print_json(json.dumps(backtest_document(result)))
        return
    for series in result.series:
        console.print(_table(series))
        band = series.band
        if band is not None and band.coverage == band.coverage:  # NaN: no step had a band
            console.print(
                f"P10–P90 band: {band.coverage:.0%} of actual values inside; pinball loss "
                f"P10 {band.pinball_p10_kw:.3g} kW, P90 {band.pinball_p90_kw:.3g} kW",
                highlight=False,
            )
        for note in series.notes:
            console.print(f"note: {escape(note)}", highlight=False)
    for note in result.notes:
        console.print(f"note: {escape(note)}", highlight=False)
    if not result.series:
        raise fail(f"site {site!r}: no load or PV meter with enough history to backtest")


async def _backtest(url: str, settings: Any, site: Any, request: BacktestRequest) -> SiteBacktest:
    from energyhub.forecast.sites import backtest_site
    from energyhub.scheduler.replan import PlanningConfig
    from energyhub.store.db import connect, installed_backend
    from energyhub.store.migrations import require_schema

    async with connect(url, settings.db_connect_timeout_s) as conn:
        await require_schema(conn)
        backend = await installed_backend(conn)
        options = PlanningConfig.of(settings, site=site).forecast
        return await backtest_site(conn, backend, site, request, options)


@forecast_app.command("weather-import")
@handles_errors
def weather_import(
    file: Annotated[Path, typer.Argument(help="CSV: park_id,ts[,issued_at],outdoor_c,...")],
    source: Annotated[
        str, typer.Option("--source", callback=free_text, help="Who made the forecast.")
    ] = "csv",
    site_file: Annotated[
        Path | None, typer.Option("--site-file", help="Default: the settings' site_file.")
    ] = None,
) -> None:
    """Store a weather forecast CSV (outdoor temperature, irradiance, cloud cover per park and
    step); good rows are stored even when others are refused (each named, exit status 2)."""
    from energyhub.forecast.weather import parse_csv

    settings = settings_or_exit()
    url = require_db_url(settings)
    try:
        text = read_text(file)
    except UnicodeDecodeError as exc:
        raise fail(f"{file}: cannot read it: {not_utf8(exc)}") from None
    except OSError as exc:
        raise fail(f"{file}: cannot read it: {exc.strerror}") from None
    loaded = load_site(site_file or settings.site_file)
    parks = {park.id for park in loaded.city.parks}
    parsed = parse_csv(text, parks=parks, issued_at=datetime.now(UTC), source=source)
    if parsed.file_problem is not None:
        raise fail(f"{file}: {parsed.file_problem}")
    stored = run_async(_store_weather(url, settings, parsed)) if parsed.issues else 0
    console.print(f"{stored} weather forecast step(s) stored from {escape(str(file))}")
    if parsed.errors:
        raise fail(rows_refused(parsed.errors, f"the other {stored} stored"))


async def _store_weather(url: str, settings: Any, parsed: Any) -> int:
    from energyhub.forecast.listen import store_parsed
    from energyhub.store.db import connect
    from energyhub.store.migrations import require_schema

    async with connect(url, settings.db_connect_timeout_s) as conn:
        await require_schema(conn)
        stored: int = await store_parsed(conn, parsed)
        return stored


@forecast_app.command("weather-listen")
@handles_errors
def weather_listen(
    site_file: Annotated[
        Path | None, typer.Option("--site-file", help="Default: the settings' site_file.")
    ] = None,
) -> None:
    """Store weather forecasts published on <prefix>/weather/<park>/forecast until stopped."""
    settings = settings_or_exit()
    url = require_db_url(settings)
    if not settings.mqtt_url:
        raise fail("ENERGYHUB_MQTT_URL is not set: give the broker URL, e.g. mqtt://127.0.0.1:1883")
    loaded = load_site(site_file or settings.site_file)
    run_async(_listen(url, settings, {park.id for park in loaded.city.parks}))


async def _listen(url: str, settings: Any, parks: set[str]) -> None:
    import asyncio

    from energyhub.cli_support import configure_logging
    from energyhub.forecast.listen import listen
    from energyhub.ingest.supervisor import stop_on_signals
    from energyhub.store.db import connect
    from energyhub.store.migrations import require_schema

    configure_logging(settings)
    stop = asyncio.Event()
    stop_on_signals(stop)
    async with connect(url, settings.db_connect_timeout_s) as conn:
        await require_schema(conn)
        client_id = f"{settings.mqtt_client_id_prefix}-weather"
        await listen(conn, settings.mqtt_url, settings.mqtt_topic_prefix, parks, stop, client_id)
