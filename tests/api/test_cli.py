"""`energyhub keys create|list|revoke` and `energyhub api` serving over a real port."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
from typer.testing import CliRunner

from energyhub.cli import app
from energyhub.sites import load_site
from energyhub.store.db import connect
from energyhub.store.embedded import free_port
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from tests.api.conftest import SITE_FILE


async def _prepared(url: str) -> None:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, load_site(SITE_FILE))


def test_keys_create_once_list_revoke_and_serve(pg_url: str) -> None:
    asyncio.run(_prepared(pg_url))
    runner = CliRunner()
    env = {"ENERGYHUB_DB_URL": pg_url, "COLUMNS": "200"}
    created = runner.invoke(app, ["keys", "create", "--role", "manager", "--site", "b01"], env=env)
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("ehk_") and len(token) > 40
    listed = runner.invoke(app, ["keys", "list"], env=env)
    assert token[:12] in listed.output and token not in listed.output
    assert (
        runner.invoke(app, ["keys", "create", "--role", "boss", "--site", "b01"], env=env).exit_code
        == 2
    )
    unknown = runner.invoke(app, ["keys", "create", "--role", "viewer", "--site", "b99"], env=env)
    assert unknown.exit_code == 2 and "no active site 'b99'" in unknown.output
    for blank in ("", "   ", "\u3000"):
        named = runner.invoke(
            app, ["keys", "create", "--role", "viewer", "--site", "b01", "--name", blank], env=env
        )
        assert named.exit_code == 2, named.output
        assert "--name: must name who or what holds the key" in named.output
        assert repr(blank) in named.output
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
    environment.update(ENERGYHUB_DB_URL=pg_url, ENERGYHUB_SITE_FILE=str(SITE_FILE))
    server = subprocess.Popen(
        [sys.executable, "-m", "energyhub", "api", "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/sites/b01", headers=headers).status_code == 200
        assert httpx.get(f"{url}/sites/b02", headers=headers).status_code == 404
        revoked = runner.invoke(app, ["keys", "revoke", "1"], env=env)
        assert revoked.exit_code == 0
        # refused once the server has heard of it, milliseconds after the commit (its access
        # cache may hold the key until then: test_access_cache.py); within a second
        heard_by = time.monotonic() + 1.0
        status = httpx.get(f"{url}/sites/b01", headers=headers).status_code
        while status == 200 and time.monotonic() < heard_by:
            time.sleep(0.01)
            status = httpx.get(f"{url}/sites/b01", headers=headers).status_code
        assert status == 401
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert token not in output


def test_api_refuses_a_database_without_the_schema(pg_url: str) -> None:
    done = CliRunner().invoke(app, ["api"], env={"ENERGYHUB_DB_URL": pg_url, "COLUMNS": "200"})
    assert done.exit_code == 2
    assert "run `energyhub db migrate`" in done.output
    assert "Traceback" not in done.output


def test_a_host_no_resolver_knows_is_named(pg_url: str) -> None:
    """uvicorn logged "[Errno -2] Name or service not known", naming neither option nor value,
    and exited 3 after the app had started."""
    asyncio.run(_prepared(pg_url))
    env = {"ENERGYHUB_DB_URL": pg_url, "COLUMNS": "200", "ENERGYHUB_SITE_FILE": str(SITE_FILE)}
    done = CliRunner().invoke(app, ["api", "--host", "no host", "--port", "1"], env=env)
    assert done.exit_code == 2, done.output
    assert "--host: cannot listen on 'no host': " in done.output
    env["ENERGYHUB_API_HOST"] = "nowhere.invalid"
    done = CliRunner().invoke(app, ["api", "--port", "1"], env=env)
    assert done.exit_code == 2, done.output
    assert "ENERGYHUB_API_HOST: cannot listen on 'nowhere.invalid': " in done.output


def test_a_port_in_use_is_named(pg_url: str) -> None:
    """uvicorn logged "address already in use" and exited 3, naming no setting."""
    import socket

    asyncio.run(_prepared(pg_url))
    env = {"ENERGYHUB_DB_URL": pg_url, "COLUMNS": "200", "ENERGYHUB_SITE_FILE": str(SITE_FILE)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = CliRunner().invoke(app, ["api", "--host", "127.0.0.1", "--port", str(port)], env=env)
        assert done.exit_code == 2, done.output
        assert f"--port: cannot listen on 127.0.0.1:{port}: " in done.output
        env |= {"ENERGYHUB_API_HOST": "127.0.0.1", "ENERGYHUB_API_PORT": str(port)}
        done = CliRunner().invoke(app, ["api"], env=env)
        assert done.exit_code == 2, done.output
        assert f"ENERGYHUB_API_PORT: cannot listen on 127.0.0.1:{port}: " in done.output
    done = CliRunner().invoke(app, ["api", "--host", "192.0.2.1", "--port", str(port)], env=env)
    assert done.exit_code == 2, done.output  # an address this machine does not have
    assert f"--host: cannot listen on 192.0.2.1:{port}: " in done.output
