"""`energyhub api` (uvicorn) and `energyhub keys create|list|revoke`."""

from __future__ import annotations

import errno
import socket
from typing import Annotated, Any

import typer
import uvicorn
from rich.table import Table

from energyhub.api.app import create_app
from energyhub.api.keys import ROLES, Role, create_key, list_keys, revoke_key
from energyhub.cli_support import (
    configure_logging,
    console,
    fail,
    free_text,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.errors import EnergyhubError
from energyhub.plans.cli import with_db
from energyhub.sites import load_site
from energyhub.store.db import connect
from energyhub.store.migrations import require_schema

keys_app: typer.Typer = typer.Typer(
    help="API keys: create (shown once), list, revoke.", no_args_is_help=True
)


async def _schema_ready(url: str, timeout_s: float) -> None:
    async with connect(url, timeout_s) as conn:
        await require_schema(conn)


def api_command(
    host: Annotated[str | None, typer.Option("--host", help="Default: ENERGYHUB_API_HOST.")] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Default: ENERGYHUB_API_PORT.")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=32, help="Processes, each with its own pool.")
    ] = 1,
) -> None:
    """Serve the HTTP API (sites, load, meters, plans, health, /metrics) with uvicorn."""
    settings = settings_or_exit()
    url = require_db_url(settings)
    try:  # what the lifespan needs, checked first so that a mistake is one line, not a traceback
        load_site(settings.site_file)
        run_async(_schema_ready(url, settings.db_connect_timeout_s))
    except EnergyhubError as exc:
        raise fail(str(exc)) from None
    configure_logging(settings)
    _check_listen(host, port, settings.api_host, settings.api_port)
    options: dict[str, Any] = {
        "host": host or settings.api_host,
        "port": port or settings.api_port,
        "log_level": settings.log_level.lower(),
        "access_log": False,  # a line per request costs time; /metrics counts requests
    }
    if workers == 1:  # uvicorn's own runner: it picks uvloop (asyncio.run would not)
        uvicorn.Server(uvicorn.Config(create_app(settings), **options)).run()
    else:  # each worker process builds its app from the same environment
        uvicorn.run("energyhub.api.app:create_app", factory=True, workers=workers, **options)


def _check_listen(host: str | None, port: int | None, set_host: str, set_port: int) -> None:
    """uvicorn's own words for a host no resolver knows ("Name or service not known") or a port
    in use ("address already in use", exit 3) name neither the option nor its value: bind the
    address once, as uvicorn will (SO_REUSEADDR), and say which setting to change."""
    where, at = host or set_host, port or set_port
    host_option = "--host" if host else "ENERGYHUB_API_HOST"
    try:
        socket.getaddrinfo(where, at, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise fail(f"{host_option}: cannot listen on {where!r}: {reason}") from None
    family = socket.AF_INET6 if ":" in where else socket.AF_INET  # as uvicorn binds
    try:
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((where, at))
    except OSError as exc:
        option = (
            host_option
            if exc.errno == errno.EADDRNOTAVAIL
            else ("--port" if port else "ENERGYHUB_API_PORT")
        )
        raise fail(f"{option}: cannot listen on {where}:{at}: {exc.strerror or exc}") from None


@keys_app.command("create")
@handles_errors
def keys_create(
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")],
    site: Annotated[str, typer.Option("--site", help="The key sees this site's subtree.")],
    name: Annotated[
        str | None, typer.Option("--name", callback=free_text, help="Who or what holds it.")
    ] = None,
) -> None:
    """Create a key and print it once: only its SHA-256 digest is stored."""
    roles: dict[str, Role] = {r: r for r in ROLES}
    if role not in roles:
        raise fail(f"--role: must be one of {', '.join(ROLES)}, got {role!r}")
    key, token = with_db(lambda conn: create_key(conn, roles[role], site, name))
    console.print(f"key {key.id}: {key.role} of {key.site_id} (shown once, store it now):")
    typer.echo(token)


@keys_app.command("list")
@handles_errors
def keys_list() -> None:
    """Every key: id, prefix, role, site, created, revoked (never the key itself)."""
    keys = with_db(list_keys)
    table = Table(title=f"{len(keys)} key(s)")
    for column in ("id", "prefix", "role", "site", "name", "created", "revoked"):
        table.add_column(column)
    for k in keys:
        revoked = k.revoked_at.isoformat() if k.revoked_at else ""
        created = k.created_at.isoformat()
        table.add_row(str(k.id), k.prefix, k.role, k.site_id, k.name or "", created, revoked)
    console.print(table)


@keys_app.command("revoke")
@handles_errors
def keys_revoke(key_id: Annotated[int, typer.Argument(min=1, help="Key id (keys list).")]) -> None:
    """Revoke a key; it stops working at once."""
    key = with_db(lambda conn: revoke_key(conn, key_id))
    console.print(f"key {key.id} ({key.prefix}…) revoked")
