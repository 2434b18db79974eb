"""`energyhub plan`: exit 0 with a plan, 2 for bad input, 3 when infeasible, 4 with no schedule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from energyhub.cli import console, fail
from energyhub.errors import EnergyhubError
from energyhub.optimize.errors import InfeasiblePlanError, NoSolutionError
from energyhub.optimize.plan import Plan, plan

EXIT_INFEASIBLE = 3
EXIT_NO_SOLUTION = 4


def _print_json(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, allow_nan=False))


def _summary(result: Plan) -> Table:
    table = Table(title=f"plan {result.level} {result.site_id}: {result.status}")
    table.add_column("term")
    table.add_column("plan", justify="right")
    table.add_column("baseline", justify="right")
    for term, value in result.cost_cny.items():
        table.add_row(
            f"{term} CNY", f"{value:,.2f}", f"{result.baseline.cost_cny.get(term, 0):,.2f}"
        )
    table.add_row("total CNY", f"{result.objective_cny:,.2f}", f"{result.baseline.total_cny:,.2f}")
    table.add_row("CO₂ kg", f"{result.co2_kg:,.1f}", f"{result.baseline.co2_kg:,.1f}")
    return table


def plan_command(
    site: Annotated[Path, typer.Option("--site", help="Site file (YAML).", dir_okay=False)],
    inputs: Annotated[
        Path, typer.Option("--inputs", help="CSV indexed by ts with <id>:<quantity> columns.")
    ],
    level: Annotated[str, typer.Option("--level", help="building, park (city: not yet).")],
    site_id: Annotated[str, typer.Option("--id", help="Id of the building or park.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the schedule CSV here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    time_limit_s: Annotated[
        float | None, typer.Option("--time-limit-s", min=0.0, help="Solver time limit.")
    ] = None,
    mip_gap: Annotated[
        float | None, typer.Option("--mip-gap", min=0.0, help="Relative MIP gap to stop at.")
    ] = None,
) -> None:
    """Schedule a building or park's electricity, heat, cooling and gas at least cost."""
    try:
        result = plan(
            site, inputs, level=level, site_id=site_id, time_limit_s=time_limit_s, mip_gap=mip_gap
        )
    except InfeasiblePlanError as exc:
        if as_json:
            _print_json(
                {
                    "status": "infeasible",
                    "message": str(exc),
                    "constraint": exc.constraint,
                    "node": exc.node,
                    "carrier": exc.carrier,
                    "assets": exc.assets,
                    "step": exc.step,
                    "ts": exc.ts,
                }
            )
        raise fail(escape(str(exc)), EXIT_INFEASIBLE) from None
    except NoSolutionError as exc:
        if as_json:
            _print_json({"status": "time_limit", "message": str(exc), "objective_cny": None})
        raise fail(escape(str(exc)), EXIT_NO_SOLUTION) from None
    except EnergyhubError as exc:
        raise fail(escape(str(exc))) from None
    if out is not None:
        try:
            result.write_schedule(out)
        except OSError as exc:
            raise fail(escape(f"--out: cannot write {out}: {exc.strerror}")) from None
    if as_json:
        _print_json(result.to_json())
    else:
        console.print(_summary(result))
