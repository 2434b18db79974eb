"""`energyhub demo`: the whole system on embedded defaults, from a bare machine."""

from __future__ import annotations

from contextlib import AsyncExitStack

from rich.console import Console

from energyhub.config import Settings
from energyhub.render import site_summary, site_tree, sync_summary
from energyhub.sites import SiteFile
from energyhub.store.db import connect, mask_url
from energyhub.store.embedded import embedded_postgres
from energyhub.store.migrations import migrate_with
from energyhub.store.sync import sync_site


async def run_demo(settings: Settings, site: SiteFile, console: Console) -> None:
    """Start what is not configured, migrate, load the site and show what is stored."""
    async with AsyncExitStack() as stack:
        if settings.db_url:
            url = settings.db_url
        else:
            with console.status("starting a private PostgreSQL (no ENERGYHUB_DB_URL set)"):
                server = await stack.enter_async_context(embedded_postgres())
            url = server.url
            console.print(f"private PostgreSQL at {url} (removed when the demo ends)")
        async with connect(url, settings.db_connect_timeout_s) as conn:
            migration = await migrate_with(conn, settings)
            console.print(
                f"schema version {migration.current_version} on {migration.backend.value} "
                f"at {mask_url(url)}"
            )
            sync = await sync_site(conn, site)
            console.print(sync_summary(sync))
            cur = await conn.execute(
                "SELECT kind, count(*) FROM sites WHERE active GROUP BY kind ORDER BY kind"
            )
            stored = ", ".join(f"{n} {kind}" for kind, n in await cur.fetchall())
        console.print(site_tree(site))
        console.print(f"site file: {site_summary(site)}")
        console.print(f"stored sites: {stored}")
