"""`plan(...)`: read and check inputs, build, solve, extract, compare with the baseline."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from energyhub.optimize.baseline import Baseline, compute_baseline
from energyhub.optimize.diagnose import explain_infeasible
from energyhub.optimize.errors import NoSolutionError, PlanError
from energyhub.optimize.inputs import PlanInputs, check_inputs, read_inputs
from energyhub.optimize.levels import Built, build_model
from energyhub.optimize.model import Solution, Status, evaluate, extract, scalars, solve
from energyhub.optimize.network import Binaries
from energyhub.optimize.scope import Scope, resolve_scope
from energyhub.sites import SiteFile, load_site

COST_TERMS = ("energy", "demand", "gas", "start", "carbon", "degradation")
"""Objective terms, each reported (zero when the scope has nothing that incurs it)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A solved schedule with its cost terms, emissions and the baseline it is compared with."""

    status: Status
    level: str
    site_id: str
    cost_cny: dict[str, float]
    co2_kg_by_carrier: dict[str, float]
    baseline: Baseline
    schedule: pd.DataFrame
    scalars: dict[str, float]
    build_seconds: float
    solve_seconds: float
    variables: int
    binaries: int
    constraints: int
    gap: float | None

    @property
    def objective_cny(self) -> float:
        return sum(self.cost_cny.values())

    @property
    def co2_kg(self) -> float:
        return sum(self.co2_kg_by_carrier.values())

    def to_json(self) -> dict[str, Any]:
        """The `energyhub plan --json` object."""
        return {
            "status": self.status,
            "level": self.level,
            "id": self.site_id,
            "objective_cny": self.objective_cny,
            "cost_cny": self.cost_cny,
            "co2_kg": self.co2_kg,
            "co2_kg_by_carrier": self.co2_kg_by_carrier,
            "baseline": {
                "cost_cny": self.baseline.total_cny,
                "co2_kg": self.baseline.co2_kg,
                "cost_terms_cny": self.baseline.cost_cny,
                "unserved_kwh": self.baseline.unserved_kwh,
            },
            "savings": {
                "cost_cny": self.baseline.total_cny - self.objective_cny,
                "co2_kg": self.baseline.co2_kg - self.co2_kg,
            },
            "gap": self.gap,
            "build_seconds": self.build_seconds,
            "solve_seconds": self.solve_seconds,
            "variables": self.variables,
            "binaries": self.binaries,
            "constraints": self.constraints,
            "steps": len(self.schedule),
            "scalars": self.scalars,
        }

    def write_schedule(self, path: Path | str) -> None:
        """One row per step (RFC 3339 ts), one column per `<asset>:<variable>`."""
        frame = self.schedule.copy()
        frame.index = pd.Index([ts.isoformat() for ts in frame.index], name="ts")
        frame.to_csv(path, float_format="%.9g")


def _build_and_solve(
    scope: Scope,
    table: PlanInputs,
    binaries: Binaries | None,
    time_limit_s: float | None,
    mip_gap: float | None,
) -> tuple[Built, Solution, float]:
    """Build and solve; once more with binaries if a lazy family's relaxed optimum needs them."""
    started = time.perf_counter()
    built = build_model(scope, table, binaries)
    build_seconds = time.perf_counter() - started
    solution = solve(built.problem, time_limit_s=time_limit_s, mip_gap=mip_gap)
    if solution.x is None or built.ctx.simultaneous(solution.x) == built.ctx.binaries:
        return built, solution, build_seconds
    started = time.perf_counter()
    built = build_model(scope, table, built.ctx.simultaneous(solution.x))
    build_seconds += time.perf_counter() - started
    again = solve(built.problem, time_limit_s=time_limit_s, mip_gap=mip_gap)
    return built, replace(again, seconds=solution.seconds + again.seconds), build_seconds


def plan(
    site: SiteFile | Path | str,
    inputs: pd.DataFrame | Path | str,
    *,
    level: str,
    site_id: str,
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    force_binaries: bool = False,
) -> Plan:
    """Plan one building or park over the steps of `inputs`.

    Raises PlanInputError (bad inputs), InfeasiblePlanError (no feasible schedule) or
    NoSolutionError (the solver stopped before it found a schedule).
    """
    site = site if isinstance(site, SiteFile) else load_site(site)
    scope = resolve_scope(site, level, site_id)
    table = read_inputs(inputs, site.tz)
    check_inputs(table, site, scope)
    binaries = Binaries("on", "on") if force_binaries else None
    built, solution, build_seconds = _build_and_solve(scope, table, binaries, time_limit_s, mip_gap)
    problem = built.problem
    if solution.status == "infeasible":
        raise explain_infeasible(built, scope, table, time_limit_s)
    if solution.x is None:
        raise NoSolutionError(
            f"no schedule: the solver stopped ({solution.status}: {solution.message}) "
            f"after {solution.seconds:.1f} s before it found a feasible one"
        )
    if solution.status not in ("optimal", "time_limit"):
        raise PlanError(f"the solver ended with status {solution.status}: {solution.message}")
    x = solution.x
    costs = evaluate(problem, x, "costs")
    accounts = evaluate(problem, x, "accounts")
    return Plan(
        status=solution.status,
        level=level,
        site_id=site_id,
        cost_cny={term: costs.get(term, 0.0) for term in COST_TERMS},
        co2_kg_by_carrier={k.removeprefix("co2_kg:"): v for k, v in accounts.items()},
        baseline=compute_baseline(built.ctx),
        schedule=extract(problem, x, table.index),
        scalars=scalars(problem, x, table.n),
        build_seconds=build_seconds,
        solve_seconds=solution.seconds,
        variables=problem.n_variables,
        binaries=problem.n_binaries,
        constraints=int(problem.a.shape[0]),
        gap=solution.gap,
    )
