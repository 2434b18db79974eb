"""`energyhub carbon report|intensity`: reports from stored readings; grid intensity series."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.disclose_cli import disclose_command
from energyhub.carbon.errors import CarbonError, IntensityFileError
from energyhub.carbon.export import to_csv, to_json
from energyhub.carbon.green_cli import green_app
from energyhub.carbon.intensity import StoredHours, read_intensity_csv, store_intensity
from energyhub.carbon.ledger_cli import ledger_app, price_command
from energyhub.carbon.models import CarbonReport
from energyhub.carbon.periods import parse_period
from energyhub.carbon.report_html import render_html
from energyhub.carbon.tree import load_tree
from energyhub.cli_support import (
    console,
    fail,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.csv_columns import rows_refused
from energyhub.store.db import connect, installed_backend
from energyhub.store.migrations import require_schema
from energyhub.userfiles import cannot_write

SERIES_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

carbon_app: typer.Typer = typer.Typer(
    help="Carbon accounting: reports per site, hourly grid intensity series.",
    no_args_is_help=True,
)


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"


carbon_app.add_typer(green_app, name="green")
carbon_app.add_typer(ledger_app, name="ledger")
carbon_app.command("price")(handles_errors(price_command))
carbon_app.command("disclose")(handles_errors(disclose_command))

RENDER = {ReportFormat.JSON: to_json, ReportFormat.CSV: to_csv, ReportFormat.HTML: render_html}


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(cannot_write("--out", out, exc)) from None
    console.print(f"wrote {out}")


@carbon_app.command("report")
@handles_errors
def report_command(
    site_id: Annotated[str, typer.Option("--site", help="Site id (city, park, building, tenant).")],
    period: Annotated[
        str, typer.Option("--period", help="YYYY, YYYY-MM or YYYY-MM-DD, in the site's time zone.")
    ],
    fmt: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = (
        ReportFormat.JSON
    ),
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of stdout.", dir_okay=False)
    ] = None,
    factor_year: Annotated[
        int | None,
        typer.Option("--factor-year", help="Use this year of carbon.factors_by_year."),
    ] = None,
) -> None:
    """Energy, Scope 1 and 2, PV, intensity, trend, coverage, tenants and target of one site."""
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def run() -> CarbonReport:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            await require_schema(conn)
            tree = await load_tree(conn)
            start, end = parse_period(period, tree.timezone(site_id))
            backend = await installed_backend(conn)
            return await carbon_report(conn, backend, site_id, start, end, factor_year=factor_year)

    _write(RENDER[fmt](run_async(run())), out)


@carbon_app.command("intensity")
@handles_errors
def intensity_command(
    csv_file: Annotated[
        Path, typer.Argument(help="CSV with columns ts,kg_per_kwh; one row per hour.")
    ],
    series: Annotated[
        str, typer.Option("--series", help="Series name, as sites give it in carbon.grid_series.")
    ],
) -> None:
    """Store (or replace) an hourly grid carbon intensity series."""
    if not SERIES_NAME.match(series):
        raise CarbonError(
            f"--series must be an id of letters, digits, '-', '_' or '.', got {series!r}"
        )
    found = read_intensity_csv(csv_file)
    frame = found.frame
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def run() -> StoredHours:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            await require_schema(conn)
            return await store_intensity(conn, series, frame)

    stored = run_async(run())
    first, last = frame["ts"].min(), frame["ts"].max()
    replaced = (
        f"; removed {stored.replaced} stored before on another grid of hours, which they overlap"
        if stored.replaced
        else ""
    )
    console.print(
        f"series {series}: {stored.written} hours stored, {first.isoformat()} to "
        f"{last.isoformat()}{replaced}",
        highlight=False,
        soft_wrap=True,
    )
    if found.problems:
        raise IntensityFileError(rows_refused(found.problems, f"the other {stored.written} stored"))
