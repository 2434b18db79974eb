"""`energyhub plans list|show|approve|reject`: the plan lifecycle from the command line."""

from __future__ import annotations

import getpass
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import typer
from psycopg import AsyncConnection
from rich.markup import escape
from rich.table import Table

from energyhub.cli_support import (
    console,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.plans import store
from energyhub.plans.store import PLAN_STATUSES, PlanRecord, PlanStatus
from energyhub.store.db import connect
from energyhub.store.migrations import require_schema

T = TypeVar("T")

plans_app: typer.Typer = typer.Typer(
    help="Stored plans: list, show, approve, reject.", no_args_is_help=True
)

PlanId = Annotated[int, typer.Argument(help="Plan id.", min=1, show_default=False)]
By = Annotated[
    str | None, typer.Option("--by", help="Who acts (recorded on the plan; default: your login).")
]


def with_db(action: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run one database action on a migrated database."""
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def run() -> T:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            await require_schema(conn)
            return await action(conn)

    return run_async(run())


def _who(by: str | None) -> str:
    return by or f"cli:{getpass.getuser()}"


@plans_app.command("list")
@handles_errors
def plans_list(
    site: Annotated[str | None, typer.Option("--site", help="Only this site's plans.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help=f"One of {', '.join(PLAN_STATUSES)}.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
) -> None:
    """The newest plans, newest first."""
    statuses: dict[str | None, PlanStatus | None] = {s: s for s in PLAN_STATUSES}
    if status not in statuses and status is not None:
        raise typer.BadParameter(
            f"must be one of {', '.join(PLAN_STATUSES)}", param_hint="--status"
        )
    records = with_db(
        lambda conn: store.list_plans(
            conn, site_ids=[site] if site else None, status=statuses.get(status), limit=limit
        )
    )
    table = Table(title=f"{len(records)} plan(s)")
    for column in ("id", "level", "site", "status", "horizon start", "steps", "objective CNY"):
        table.add_column(column)
    for r in records:
        steps = int((r.horizon_end - r.horizon_start).total_seconds() // r.step_s)
        objective = f"{r.objective_cny:,.2f}" if r.objective_cny is not None else "—"
        start = r.horizon_start.isoformat()
        table.add_row(str(r.id), r.level, r.site_id, r.status, start, str(steps), objective)
    console.print(table)


def _as_json(record: PlanRecord) -> dict[str, Any]:
    data = asdict(record)
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in data.items()}


@plans_app.command("show")
@handles_errors
def plans_show(
    plan_id: PlanId,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """One plan: status, horizon, cost terms, baseline, who approved or rejected it."""
    record = with_db(lambda conn: store.get_plan(conn, plan_id))
    data = _as_json(record)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    for key, value in data.items():
        if value not in (None, {}, []):
            console.print(f"[bold]{key}[/]: {escape(str(value))}", highlight=False)


@plans_app.command("approve")
@handles_errors
def plans_approve(plan_id: PlanId, by: By = None) -> None:
    """Approve a draft plan (an operator's decision)."""
    record = with_db(lambda conn: store.approve(conn, plan_id, _who(by)))
    console.print(f"plan {record.id} approved by {escape(record.approved_by or '')}")


@plans_app.command("reject")
@handles_errors
def plans_reject(
    plan_id: PlanId,
    reason: Annotated[str, typer.Option("--reason", help="Why (stored on the plan).")],
    by: By = None,
) -> None:
    """Reject a draft or approved plan, saying why."""
    record = with_db(lambda conn: store.reject(conn, plan_id, _who(by), reason))
    console.print(f"plan {record.id} rejected by {escape(record.rejected_by or '')}")
