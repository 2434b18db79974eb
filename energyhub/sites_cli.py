"""`energyhub sites`: validate, print, export the schema of and load site files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from energyhub.cli_support import (
    console,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.render import site_summary, site_tree, sync_summary
from energyhub.sites import load_site, site_json_schema

sites_app = typer.Typer(
    help="Site files: validate, print, export the schema, load.", no_args_is_help=True
)

SiteFileArg = Annotated[
    Path, typer.Argument(help="Site file (YAML).", exists=False, dir_okay=False, show_default=False)
]


@sites_app.command("check")
@handles_errors
def sites_check(
    site_file: SiteFileArg,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print each meter's plausibility bounds.")
    ] = False,
) -> None:
    """Validate a site file and print its tree."""
    site = load_site(site_file)
    console.print(site_tree(site))
    if verbose:
        from energyhub.ingest.bounds import UNITS, site_bounds

        console.print("plausibility bounds (readings outside are rejected at ingest):")
        for (site_id, meter_id), bounds in site_bounds(site).items():
            quantity = next(
                m.quantity for _, o in site.metered_sites() if o.id == site_id
                for m in o.meters if m.id == meter_id
            )  # fmt: skip
            console.print(
                f"  {site_id}/{meter_id} {bounds.describe(UNITS[quantity])}", markup=False
            )
    console.print(f"[green]{site_file}: valid[/] — {site_summary(site)}")


@sites_app.command("schema")
def sites_schema() -> None:
    """Print the JSON Schema of site files."""
    typer.echo(site_json_schema())


@sites_app.command("load")
@handles_errors
def sites_load(site_file: SiteFileArg) -> None:
    """Load a site file into the database (idempotent; meters are retired, never deleted)."""
    # Here, not at the top: the store reaches pandas, which `sites check` and `schema` do not need.
    from energyhub.store.db import connect
    from energyhub.store.migrations import require_schema
    from energyhub.store.sync import SyncReport, sync_site

    site = load_site(site_file)
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def load() -> SyncReport:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            await require_schema(conn)
            return await sync_site(conn, site)

    console.print(sync_summary(run_async(load())))
