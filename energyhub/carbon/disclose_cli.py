"""`energyhub carbon disclose`: write a verifier's package for one site and year."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from energyhub.carbon.disclose import disclose
from energyhub.cli_support import console, fail, require_db_url, run_async, settings_or_exit
from energyhub.store.db import connect, installed_backend
from energyhub.store.migrations import require_schema
from energyhub.userfiles import cannot_write


def disclose_command(
    site_id: Annotated[str, typer.Option("--site", help="Site id (city, park, building, tenant).")],
    year: Annotated[int, typer.Option("--year", min=2000, max=2100, help="Calendar year.")],
    out: Annotated[
        Path,
        typer.Option("--out", help="Directory to write (created if missing).", file_okay=False),
    ],
) -> None:
    """Write a verifier's package for one site and year, with a SHA-256 manifest.

    Emissions by scope and source (both Scope 2 methods), activity data per meter and month with
    coverage and every gap, factors and sources, certificates retired, site-file changes.
    """
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def run() -> dict[str, bytes]:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            await require_schema(conn)
            return await disclose(conn, await installed_backend(conn), site_id, year)

    files = run_async(run())
    target = out
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            target = out / name
            target.write_bytes(data)
    except OSError as exc:
        raise fail(cannot_write("--out", out, exc, target)) from None
    console.print(f"wrote {len(files)} files to {out} (manifest.json has their SHA-256)")
