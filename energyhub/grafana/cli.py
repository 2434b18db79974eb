"""`energyhub grafana write` (the dashboards/ files) and `energyhub grafana push` (to a Grafana)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from energyhub.cli_support import console, fail, handles_errors, settings_or_exit
from energyhub.grafana import files
from energyhub.grafana.provisioning import DatabaseTarget, datasource
from energyhub.grafana.push import grafana_api, push
from energyhub.userfiles import cannot_write

EXIT_STALE = 1
"""`grafana write --check`: the files on disk differ from what the code generates."""

grafana_app: typer.Typer = typer.Typer(
    help="Grafana: write the dashboards/ files, or push them to a running Grafana.",
    no_args_is_help=True,
)


@grafana_app.command("write")
@handles_errors
def write_command(
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write (the repository's dashboards/).")
    ] = Path("dashboards"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a file is out of date.")
    ] = False,
) -> None:
    """Generate every dashboard's JSON and the provisioning files from energyhub/grafana/."""
    if check:
        stale = files.stale(out)
        for name in stale:
            console.print(f"out of date: {out / name}", highlight=False, soft_wrap=True)
        if stale:
            raise typer.Exit(EXIT_STALE)
        console.print(f"{out}: up to date", highlight=False, soft_wrap=True)
        return
    try:
        written = files.write(out)
    except OSError as exc:  # a file where a directory should be, no permission, a full disk
        raise fail(cannot_write("--out", out, exc)) from None
    for path in written:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)


@grafana_app.command("push")
@handles_errors
def push_command(
    url: Annotated[
        str, typer.Option("--url", envvar="GRAFANA_URL", help="Grafana, e.g. http://host:3000.")
    ],
    token: Annotated[
        str,
        typer.Option(
            "--token", envvar="GRAFANA_TOKEN", help="Service account token (Editor or Admin)."
        ),
    ],
    db_url: Annotated[
        str | None,
        typer.Option(
            "--db-url",
            help="PostgreSQL URL as Grafana reaches it (a read-only user is best); "
            "default ENERGYHUB_DB_URL.",
        ),
    ] = None,
    timescaledb: Annotated[
        bool,
        typer.Option(
            "--timescaledb/--no-timescaledb",
            help="The datasource's TimescaleDB option (time_bucket in $__timeGroup).",
        ),
    ] = True,
) -> None:
    """Create or update the datasource, the folder and every dashboard; print their URLs."""
    target_url = db_url or settings_or_exit().db_url
    if not target_url:
        raise fail("give --db-url (the database as Grafana reaches it) or set ENERGYHUB_DB_URL")
    target = DatabaseTarget.from_url(target_url, timescaledb)
    for item in push(grafana_api(url, token), url, datasource(target), files.dashboards()):
        console.print(
            f"{item.kind} {item.title!r} {item.action}: {item.url}", highlight=False, soft_wrap=True
        )
