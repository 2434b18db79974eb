"""`energyhub plans list|show|approve|reject` against a real database."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from energyhub.cli import app
from energyhub.plans.store import store_plan
from energyhub.sites import load_site
from energyhub.store.db import connect
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from tests.api.conftest import SITE_FILE, solved


async def _stored(url: str) -> list[int]:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, load_site(SITE_FILE))
        return [(await store_plan(conn, solved("building", s))).id for s in ("b01", "b02")]


def test_plans_commands(pg_url: str) -> None:
    b01, b02 = asyncio.run(_stored(pg_url))
    runner = CliRunner()
    env = {"ENERGYHUB_DB_URL": pg_url, "COLUMNS": "200"}
    listed = runner.invoke(app, ["plans", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "2 plan(s)" in listed.output and "b02" in listed.output
    approved = runner.invoke(app, ["plans", "approve", str(b01), "--by", "ops-anna"], env=env)
    assert approved.exit_code == 0 and f"plan {b01} approved by ops-anna" in approved.output
    again = runner.invoke(app, ["plans", "approve", str(b01)], env=env)
    assert again.exit_code == 2
    assert f"plan {b01} is approved: cannot approve it" in again.output
    rejected = runner.invoke(
        app, ["plans", "reject", str(b02), "--reason", "stale forecast"], env=env
    )
    assert rejected.exit_code == 0 and "rejected by cli:" in rejected.output
    shown = runner.invoke(app, ["plans", "show", str(b02), "--json"], env=env)
    data = json.loads(shown.output)
    assert (data["status"], data["rejected_reason"]) == ("rejected", "stale forecast")
    only = runner.invoke(app, ["plans", "list", "--status", "approved"], env=env)
    assert "1 plan(s)" in only.output
    bad = runner.invoke(app, ["plans", "list", "--status", "done"], env=env)
    assert bad.exit_code == 2 and "must be one of pending, draft" in bad.output
    missing = runner.invoke(app, ["plans", "show", "999"], env=env)
    assert missing.exit_code == 2 and "no plan 999" in missing.output
