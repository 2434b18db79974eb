"""`energyhub plans list|show|approve|reject`: the plan lifecycle from the command line."""

from __future__ import annotations

import getpass
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from psycopg import AsyncConnection
from rich.markup import escape
from rich.table import Table

from energyhub.cli_support import (
    console,
    free_text,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.numbers import figure
from energyhub.plans import store
from energyhub.plans.store import PLAN_STATUSES, PlanRecord, PlanStatus
from energyhub.plans.verdict import verdict
from energyhub.sites import load_site
from energyhub.store.db import connect, installed_backend
from energyhub.store.migrations import require_schema

if TYPE_CHECKING:
    from energyhub.plans.actual import PlanVsActual
    from energyhub.plans.bill import Account
    from energyhub.plans.realized import Side

T = TypeVar("T")

plans_app: typer.Typer = typer.Typer(
    help="Stored plans: list, show, approve, reject.", no_args_is_help=True
)

PlanId = Annotated[int, typer.Argument(help="Plan id.", min=1, show_default=False)]
By = Annotated[
    str | None,
    typer.Option(
        "--by", callback=free_text, help="Who acts (recorded on the plan; default: your login)."
    ),
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

    async def listed(conn: AsyncConnection) -> tuple[bool | None, list[PlanRecord]]:
        if site is not None and not (active := await store.site_active(conn, site)):
            return active, []  # a mistyped id listed "0 plan(s)", as if the site had none
        found = await store.list_plans(
            conn, site_ids=[site] if site else None, status=statuses.get(status), limit=limit
        )
        return True, found

    active, records = with_db(listed)
    if active is None:
        raise typer.BadParameter(
            f"no site {site!r} in the database (load its site file with `energyhub sites load`)",
            param_hint="--site",
        )
    if not active:
        raise typer.BadParameter(
            f"site {site!r} is retired (not in the site file last loaded), so its plans are not "
            "listed, as GET /plans?site_id= answers 404 for it; a plan is still shown by id "
            "(`energyhub plans show <id>`)",
            param_hint="--site",
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


def _shown(value: object) -> str:
    """A plan field as a person reads it: figures rounded to 2 decimals with the true minus,
    a mapping as `key value` pairs, a list of texts one per line (`--json` keeps it all)."""
    if isinstance(value, float):
        return figure(value, 2)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "".join(f"\n  - {v}" for v in value)
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def _verdict_lines(record: PlanRecord) -> list[str]:
    found = verdict(record)
    if found is None:
        return []
    lines = []
    for name, delta, unit in (("Δcost", found.cost, "CNY"), ("ΔCO₂", found.co2, "kg")):
        why = f" — worse than the baseline: {delta.worse}" if delta.worse else ""
        lines.append(f"[bold]{name} vs baseline[/]: {escape(delta.shown(unit) + why)}")
    return lines


def _coverage_text(result: PlanVsActual) -> str:
    """The metered data's coverage of the compared time: its note when below 100 %."""
    from energyhub.plans.coverage import percent

    found = result.coverage
    if found.share is None:
        return "— (no compared step)"
    if found.note is not None:
        return found.note
    return f"metered data covers {percent(found.share)} of the compared time"


def _terms(side: Side) -> str:
    """One side's bill by term, CNY."""
    unserved = f", unserved {figure(side.unserved_cny)}" if side.unserved_cny else ""
    return (
        f"energy {figure(side.energy_cny)}, demand {figure(side.demand_cny)}, gas "
        f"{figure(side.gas_cny)}, carbon {figure(side.carbon_cny)}{unserved} CNY, less the "
        f"stored value {figure(side.stored_cny)} CNY"
    )


def _demand_text(account: Account) -> str:
    """The demand charge and the peak it is on: the rise above the month's peak so far, or (no
    peak yet this month, or daily billing: 0) the compared steps' own peak."""
    if account.month_peak_kw > 0:
        above = f"the rise above the month's {figure(account.month_peak_kw)} kW"
    else:
        above = f"their peak of {figure(account.peak_import_kw)} kW"
    return f"demand charge {figure(account.demand_cny)} CNY on {above}"


def _actual_lines(result: PlanVsActual) -> list[str]:
    """Plan vs actual over the compared steps, one figure a line, each saying what it is."""
    what = "steps it controlled" if result.basis == "controlled" else "metered steps"
    lines = [f"[bold]plan vs actual[/]: {result.steps} {what}"]
    if result.unmetered:
        lines.append(f"  no step compared: {escape(result.unmetered)}")
    if (gas := result.gas) is not None:
        lines.append(
            f"  gas over {gas.steps} metered steps: planned {figure(gas.planned_kwh)} kWh "
            f"({figure(gas.planned_cny)} CNY), metered {figure(gas.actual_kwh)} kWh "
            f"({figure(gas.actual_cny)} CNY)"
        )
    for name, account in (("planned", result.planned), ("metered", result.actual)):
        lines.append(
            f"  {name}: {figure(account.total_cny)} CNY ({_demand_text(account)}), "
            f"{figure(account.co2_kg)} kg CO₂"
        )
    lines.append(f"  coverage: {escape(_coverage_text(result))}")
    if result.overrides:
        lines.append(f"  peak guard: {len(result.overrides)} setpoint(s) sent other than planned")
        lines += [
            f"    {o.ts.isoformat()} {o.asset_id}: {o.planned_p_kw:,.0f} → {o.p_kw:,.0f} kW "
            f"({escape(o.reason)})"
            for o in result.overrides
        ]
    found = result.realized
    if found is None:
        lines.append("  realized: — (fewer than two metered steps)")
        return lines
    lines += [
        f"  counterfactual (rules on the metered demand): {figure(found.counterfactual_cny)} "
        f"CNY, {figure(found.counterfactual_co2_kg)} kg CO₂",
        f"  stored: {figure(found.breakdown['metered'].stored_kwh)} kWh left (< 0: taken), "
        f"worth {figure(found.stored_value_cny)} CNY",
        f"  realized savings (counterfactual − metered + stored; < 0: a loss): "
        f"{figure(found.savings_cny)} CNY, {figure(found.savings_co2_kg)} kg CO₂",
        *(f"    {name}: {_terms(side)}" for name, side in found.breakdown.items()),
    ]
    if found.perfect_savings_cny is not None:
        lines.append(
            f"  perfect foresight (plan re-solved on the metered demand) saves "
            f"{figure(found.perfect_savings_cny)} CNY"
        )
    lines.append(f"  capture ratio (realized ÷ perfect foresight): {found.capture_text}")
    lines += [f"  note: {note}" for note in found.notes]
    return lines


@plans_app.command("show")
@handles_errors
def plans_show(
    plan_id: PlanId,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    actual: Annotated[
        bool,
        typer.Option(
            "--actual",
            help="Also compare it with the meters: metered bill, counterfactual, realized "
            "savings, perfect foresight, capture ratio (reads the settings' site_file).",
        ),
    ] = False,
) -> None:
    """One plan: status, horizon, cost terms, baseline and Δ against it, who approved it."""
    settings = settings_or_exit()
    site = load_site(settings.site_file) if actual else None

    async def read(conn: AsyncConnection) -> tuple[PlanRecord, PlanVsActual | None]:
        record = await store.get_plan(conn, plan_id)
        if site is None:
            return record, None
        from energyhub.plans.actual import plan_vs_actual  # the optimizer only when asked

        backend = await installed_backend(conn)
        return record, await plan_vs_actual(conn, backend, plan_id, site=site)

    record, compared = with_db(read)
    data = _as_json(record)
    if as_json:
        if compared is not None:
            data["actual"] = compared.model_dump(mode="json", exclude={"step_details"})
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    for key, value in data.items():
        if value not in (None, {}, []):
            console.print(f"[bold]{key}[/]: {escape(_shown(value))}", highlight=False)
    for line in _verdict_lines(record):
        console.print(line, highlight=False)
    if compared is not None:
        for line in _actual_lines(compared):
            console.print(line, highlight=False)


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
    reason: Annotated[
        str, typer.Option("--reason", callback=free_text, help="Why (stored on the plan).")
    ],
    by: By = None,
) -> None:
    """Reject a draft or approved plan, saying why."""
    record = with_db(lambda conn: store.reject(conn, plan_id, _who(by), reason))
    console.print(f"plan {record.id} rejected by {escape(record.rejected_by or '')}")
