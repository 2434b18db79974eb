"""`energyhub plan`: exit 0 with a plan, 2 for bad input, 3 when infeasible, 4 with no schedule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from energyhub.cli_support import console, fail, settings_or_exit
from energyhub.errors import EnergyhubError
from energyhub.optimize.decompose import DecomposeOptions
from energyhub.optimize.errors import InfeasiblePlanError, NoSolutionError, PlanInputError
from energyhub.optimize.frontier import FrontierPoint, frontier
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.method import size_problem
from energyhub.optimize.plan import Plan, plan
from energyhub.optimize.scope import resolve_scopes
from energyhub.sites import SiteFile, load_site
from energyhub.userfiles import cannot_write

EXIT_INFEASIBLE = 3
EXIT_NO_SOLUTION = 4


def _print_json(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, allow_nan=False))


def _summary(result: Plan) -> Table:
    title = f"plan {result.level} {result.site_id} ({result.method}): {result.status}"
    if result.iterations is not None:
        title += (
            f", {result.iterations} iterations on {result.workers} workers, gap {result.gap:.2%}"
        )
    table = Table(title=title)
    table.add_column("term")
    table.add_column("plan", justify="right")
    table.add_column("baseline", justify="right")
    for term, value in result.cost_cny.items():
        table.add_row(
            f"{term} CNY", f"{value:,.2f}", f"{result.baseline.cost_cny.get(term, 0):,.2f}"
        )
    table.add_row("total CNY", f"{result.objective_cny:,.2f}", f"{result.baseline.total_cny:,.2f}")
    for node, kw in result.month_peak_kw.items():
        peak = result.scalars.get(f"{node}:peak_import_kw")
        shown = "—" if peak is None else f"{peak:,.1f}"
        table.add_row(f"{node} peak kW (month so far {kw:,.1f})", shown, "")
    table.add_row("CO₂ kg", f"{result.co2_kg:,.1f}", f"{result.baseline.co2_kg:,.1f}")
    return table


def plan_command(
    site: Annotated[Path, typer.Option("--site", help="Site file (YAML).", dir_okay=False)],
    inputs: Annotated[
        Path, typer.Option("--inputs", help="CSV indexed by ts with <id>:<quantity> columns.")
    ],
    level: Annotated[str, typer.Option("--level", help="building, park or city.")],
    site_id: Annotated[str, typer.Option("--id", help="Id of the building, park or city.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the schedule CSV here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    time_limit_s: Annotated[
        float | None, typer.Option("--time-limit-s", help="Solver time limit (s, ≥ 0).")
    ] = None,
    mip_gap: Annotated[
        float | None,
        typer.Option("--mip-gap", help="Relative MIP gap to stop at (0–1; 0.001 = 0.1 %)."),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="auto (central while the model is small, decomposed beyond), central (one "
            "MILP) or decomposed (park, city).",
        ),
    ] = "auto",
    carbon_cap_kg: Annotated[
        float | None, typer.Option("--carbon-cap-kg", help="Cap on the plan's CO₂ (kg).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=64, help="Decomposed: worker processes."),
    ] = None,
    max_iterations: Annotated[
        int, typer.Option("--max-iterations", min=1, help="Decomposed: iteration bound.")
    ] = 150,
    month_peak_kw: Annotated[
        float,
        typer.Option(
            "--month-peak-kw",
            min=0.0,
            help="Month-to-date peak import (kW) of the plan's connection(s): under monthly "
            "demand billing only the rise above it is charged. Inputs column "
            "<grid node>:month_peak_kw wins.",
        ),
    ] = 0.0,
    frontier_points: Annotated[
        int | None,
        typer.Option(
            "--frontier",
            help="Also solve N points (2–11) from the cost-optimal to the CO₂-optimal plan "
            "(ε-constraint on CO₂) and report each one's cost, CO₂ and marginal abatement cost.",
        ),
    ] = None,
    compare_central: Annotated[
        bool,
        typer.Option("--compare-central", help="Decomposed: also solve centrally, report the gap."),
    ] = False,
) -> None:
    """Schedule a building, park or city's electricity, heat, cooling and gas at least cost."""
    options = DecomposeOptions(time_limit_s, max_iterations, workers=workers, progress=True)
    asked: dict[str, Any] = {
        "level": level, "site_id": site_id, "carbon_cap_kg": carbon_cap_kg,
        "time_limit_s": time_limit_s, "mip_gap": mip_gap, "month_peak_kw": month_peak_kw,
    }  # fmt: skip
    points: list[FrontierPoint] = []
    with _reported(as_json):
        site_file = _within_size(site, inputs, level, site_id)
        if frontier_points is not None:
            found = frontier(site_file, inputs, points=frontier_points, method=method,
                             options=options, **asked)  # fmt: skip
            points, result = [p for p, _ in found], found[0][1]
        else:
            result = plan(site_file, inputs, method=method, options=options, **asked)
        compare = compare_central and result.method == "decomposed"
        central = plan(site_file, inputs, **asked) if compare else None
    if out is not None:
        try:
            result.write_schedule(out)
        except OSError as exc:
            raise fail(cannot_write("--out", out, exc)) from None
    _emit(result, central, as_json, points)


def _within_size(site: Path, inputs: Path, level: str, site_id: str) -> SiteFile:
    """The site file, once the plan's size (steps × nodes and assets) is within the setting."""
    site_file = load_site(site)
    steps = len(read_inputs(inputs, site_file.tz).index)
    limit = settings_or_exit().plan_max_asset_steps
    problem = size_problem(resolve_scopes(site_file, level, site_id), steps, limit)
    if problem is not None:
        raise PlanInputError(f"--inputs {inputs} with --level {level} --id {site_id}: {problem}")
    return site_file


@contextmanager
def _reported(as_json: bool) -> Iterator[None]:
    """Turn the optimizer's errors into exit codes (and a JSON object with --json)."""
    try:
        yield
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
        raise fail(str(exc), EXIT_INFEASIBLE) from None
    except NoSolutionError as exc:
        if as_json:
            _print_json({"status": "time_limit", "message": str(exc), "objective_cny": None})
        raise fail(str(exc), EXIT_NO_SOLUTION) from None
    except EnergyhubError as exc:
        raise fail(str(exc)) from None


def _frontier_table(points: list[FrontierPoint]) -> Table:
    table = Table(title="cost–CO₂ frontier (cost: the bill, without the carbon price)")
    for column in ("point", "CO₂ cap kg", "CO₂ kg", "cost CNY", "abatement CNY/t"):
        table.add_column(column, justify="right")
    for p in points:
        cap = "—" if p.cap_kg is None else f"{p.cap_kg:,.1f}"
        mac = "—" if p.abatement_cny_per_t is None else f"{p.abatement_cny_per_t:,.0f}"
        table.add_row(str(p.index), cap, f"{p.co2_kg:,.1f}", f"{p.cost_cny:,.2f}", mac)
    return table


def _emit(result: Plan, central: Plan | None, as_json: bool, points: list[FrontierPoint]) -> None:
    """Print the plan (and the centralized one it was compared with) as JSON or a table."""
    payload = result.to_json()
    if points:
        payload["frontier"] = [p.to_json() for p in points]
    if central is not None:
        payload["central"] = {
            "status": central.status,
            "objective_cny": central.objective_cny,
            "gap": central.gap,
            "solve_seconds": central.solve_seconds,
        }
        payload["gap_to_central"] = (result.objective_cny - central.objective_cny) / max(
            abs(central.objective_cny), 1e-9
        )
    if as_json:
        _print_json(payload)
        return
    console.print(_summary(result))
    for note in result.notes:
        console.print(f"note: {escape(note)}")
    if points:
        console.print(_frontier_table(points))
    if central is not None:
        console.print(
            f"centralized: {central.objective_cny:,.2f} CNY ({central.status}); decomposed is "
            f"{payload['gap_to_central']:+.3%} from it"
        )
