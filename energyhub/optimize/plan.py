"""`plan(...)`: read and check inputs, build and solve (or decompose), compare with the baseline."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from energyhub.optimize import tariffs
from energyhub.optimize.baseline import Baseline, compute_baseline
from energyhub.optimize.coupling import Caps, resolve_caps
from energyhub.optimize.decompose import Decomposed, DecomposeOptions
from energyhub.optimize.diagnose import explain_infeasible
from energyhub.optimize.errors import NoSolutionError, PlanError, PlanInputError, UncombinedError
from energyhub.optimize.inputs import (
    MONTH_PEAK_LIMIT_FACTOR,
    PlanInputs,
    check_inputs,
    month_peak_limit_kw,
    read_inputs,
    unmetered_loads,
)
from energyhub.optimize.levels import Built, build_scopes
from energyhub.optimize.method import asset_steps, central_limit, choose, run_decomposed
from energyhub.optimize.model import Solution, Status, evaluate, extract, scalars, solve
from energyhub.optimize.network import Binaries, Context
from energyhub.optimize.scope import Scope, resolve_scopes
from energyhub.sites import SiteFile, load_site

COST_TERMS = ("energy", "demand", "gas", "start", "carbon", "degradation")
"""Objective terms, each reported (zero when the scope has nothing that incurs it)."""

UNSERVED_TERM = "unserved"
"""The objective term of heat and cooling left unserved (energyhub.optimize.unserved), reported
only by a plan whose inputs allow it: no other plan has it."""


def cost_terms(costs: dict[str, float]) -> dict[str, float]:
    """The reported cost terms of an objective's `costs`: COST_TERMS, and `unserved` if any."""
    found = {term: costs.get(term, 0.0) for term in COST_TERMS}
    if UNSERVED_TERM in costs:
        found[UNSERVED_TERM] = costs[UNSERVED_TERM]
    return found


DECOMPOSED_MAX_GAP = 5e-3
"""A decomposed plan proved no closer than this to its own bound is solved centrally where that
is affordable (`auto`'s threshold, method.central_limit): the centralized solve is exact, and a
plan worse than one it could have afforded is a defect. Beyond that size the decomposed plan
stands with its gap."""


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
    method: str = "central"
    iterations: int | None = None
    workers: int | None = None
    lower_bound_cny: float | None = None
    carbon_cap_kg: float | None = None
    month_peak_kw: dict[str, float] = field(default_factory=dict)
    """Month-to-date peak import each connection (grid node, and each building's own `grid:` in a
    park or city plan) started from (monthly billing)."""
    peak_margin: dict[str, Any] = field(default_factory=dict)
    """How a scheduler re-plan set the forecast-error margin kept under the billed peak
    (energyhub.scheduler.margin.PeakMargin.summary); empty otherwise."""
    frontier: tuple[dict[str, Any], ...] = ()
    """The cost–CO₂ frontier this plan is a point of (energyhub.optimize.frontier), if any."""
    frontier_point: int | None = None
    method_reason: str | None = None
    carbon_policy: dict[str, Any] = field(default_factory=dict)
    """How the site's carbon.plan_policy was applied (energyhub.plans.policy); empty without one."""
    notes: tuple[str, ...] = ()
    """What the plan assumed for lack of inputs (a building without an electricity meter)."""

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
            "month_peak_kw": self.month_peak_kw,
            "baseline": {
                "month_peak_kw": self.month_peak_kw,
                "cost_cny": self.baseline.total_cny,
                "co2_kg": self.baseline.co2_kg,
                "co2_kg_by_carrier": self.baseline.co2_kg_by_carrier,
                "cost_terms_cny": self.baseline.cost_cny,
                "unserved_kwh": self.baseline.unserved_kwh,
            },
            "savings": {
                "cost_cny": self.baseline.total_cny - self.objective_cny,
                "co2_kg": self.baseline.co2_kg - self.co2_kg,
            },
            "gap": self.gap,
            "method": self.method,
            "method_reason": self.method_reason,
            "iterations": self.iterations,
            "workers": self.workers,
            "lower_bound_cny": self.lower_bound_cny,
            "carbon_cap_kg": self.carbon_cap_kg,
            "build_seconds": self.build_seconds,
            "solve_seconds": self.solve_seconds,
            "variables": self.variables,
            "binaries": self.binaries,
            "constraints": self.constraints,
            "steps": len(self.schedule),
            "scalars": self.scalars,
            "frontier": list(self.frontier),
            "frontier_point": self.frontier_point,
            "peak_margin": self.peak_margin,
            "carbon_policy": self.carbon_policy,
            "notes": list(self.notes),
        }

    def write_schedule(self, path: Path | str) -> None:
        """One row per step (RFC 3339 ts), one column per `<asset>:<variable>`."""
        frame = self.schedule.copy()
        frame.index = pd.Index([ts.isoformat() for ts in frame.index], name="ts")
        frame.to_csv(path, float_format="%.9g")


def _build_and_solve(
    scopes: Sequence[Scope],
    table: PlanInputs,
    caps: Caps,
    binaries: Binaries | None,
    limits: tuple[float | None, float | None],
) -> tuple[Built, Solution, float]:
    """Build and solve; again, with binaries for the stores (or grid) whose relaxed flows clash."""
    time_limit_s, mip_gap = limits
    started = time.perf_counter()
    built = build_scopes(scopes, table, binaries, caps)
    build_seconds = time.perf_counter() - started
    solution = solve(built.problem, time_limit_s=time_limit_s, mip_gap=mip_gap)
    again_with = None if solution.x is None else built.rebinarize(solution.x)
    while again_with is not None:  # each round gives binaries to more stores: it ends
        started = time.perf_counter()
        built = build_scopes(scopes, table, again_with, caps)
        build_seconds += time.perf_counter() - started
        again = solve(built.problem, time_limit_s=time_limit_s, mip_gap=mip_gap)
        solution = replace(again, seconds=solution.seconds + again.seconds)
        again_with = None if solution.x is None else built.rebinarize(solution.x)
    return built, solution, build_seconds


def _central(
    scopes: Sequence[Scope],
    table: PlanInputs,
    caps: Caps,
    binaries: Binaries | None,
    limits: tuple[float | None, float | None],
) -> tuple[Built, Solution, float]:
    """The centralized solve; raises when there is no schedule."""
    built, solution, build_seconds = _build_and_solve(scopes, table, caps, binaries, limits)
    if solution.status == "infeasible":
        raise explain_infeasible(built, scopes, table, limits[0], caps)
    if solution.x is None:
        raise NoSolutionError(
            f"no schedule: the solver stopped ({solution.status}: {solution.message}) "
            f"after {solution.seconds:.1f} s before it found a feasible one"
        )
    if solution.status not in ("optimal", "time_limit"):
        raise PlanError(f"the solver ended with status {solution.status}: {solution.message}")
    return built, solution, build_seconds


def _check_solver_options(time_limit_s: float | None, mip_gap: float | None) -> None:
    """A time limit is a number of seconds ≥ 0 (inf: none), a MIP gap a fraction in [0, 1]."""
    if time_limit_s is not None and not time_limit_s >= 0:  # NaN fails too
        raise PlanInputError(
            f"--time-limit-s: must be a number of seconds ≥ 0, got {time_limit_s:g}",
            column="time_limit_s",
        )
    if mip_gap is not None and not 0 <= mip_gap <= 1:
        raise PlanInputError(
            f"--mip-gap: must be a fraction from 0 to 1 (0.001 = 0.1 %), got {mip_gap:g}",
            column="mip_gap",
        )


def plan(
    site: SiteFile | Path | str,
    inputs: pd.DataFrame | Path | str,
    *,
    level: str,
    site_id: str,
    method: str = "auto",
    carbon_cap_kg: float | None = None,
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    force_binaries: bool = False,
    options: DecomposeOptions | None = None,
    month_peak_kw: float | None = None,
) -> Plan:
    """Plan one building, park or city over the steps of `inputs`.

    `method` is `central` (one MILP), `decomposed` (park and city level: parks or buildings
    solved apart and coordinated by prices, see energyhub.optimize.method) or `auto` (central
    while the model is small enough, decomposed beyond; `method_reason` says). If the decomposition
    finds no combination of proposals meeting a coupling row, or ends further than
    DECOMPOSED_MAX_GAP from its bound on a model the centralized solve can afford, the plan is
    solved centrally and says so (`method` `central-fallback`). `month_peak_kw` is the
    month-to-date peak import of every connection of the plan (a building's own `grid:` too)
    where the inputs have no `<grid node>:month_peak_kw` column (default 0: the whole peak is
    billed). Raises PlanInputError (bad inputs), InfeasiblePlanError (no feasible schedule) or
    NoSolutionError (the solver stopped before it found a schedule).
    """
    _check_solver_options(time_limit_s, mip_gap)
    site = site if isinstance(site, SiteFile) else load_site(site)
    scopes = resolve_scopes(site, level, site_id)
    table = with_month_peaks(read_inputs(inputs, site.tz), scopes, month_peak_kw)
    for scope in scopes:
        check_inputs(table, site, scope)
    notes = tuple(note for scope in scopes for note in unmetered_loads(table, site, scope))
    peaks = {
        node: tariffs.month_peak_kw(table, node, grid)
        for s in scopes
        for node, grid in s.connections()
    }
    caps = resolve_caps(site, level, site_id, table.index, carbon_cap_kg)
    baseline = Baseline.combined([compute_baseline(Context.bare(s, table)) for s in scopes])
    choice = choose(method, level, scopes, table.n)
    method, reason = choice.method, choice.reason
    if method == "decomposed":
        options = options or DecomposeOptions(time_limit_s)
        try:
            found = run_decomposed(choice, scopes, table, caps, options)
        except UncombinedError as exc:
            method = "central-fallback"  # the centralized solve tells whether the row can hold
            reason = f"{reason}; fell back to the centralized solve: {exc}"
        else:
            size = asset_steps(scopes, table.n)
            if found.gap <= DECOMPOSED_MAX_GAP or size > central_limit(level):
                return replace(
                    _decomposed_plan(found, level, site_id, baseline, carbon_cap_kg),
                    month_peak_kw=peaks,
                    method_reason=reason,
                    notes=notes,
                )
            method = "central-fallback"  # exact, and affordable at this size
            reason = (
                f"{reason}; the decomposition ended {found.gap:.2%} from its bound (more than "
                f"{DECOMPOSED_MAX_GAP:.1%}) and {size:,} asset-steps are within the centralized "
                "solve's reach: solved centrally"
            )
    binaries = Binaries.everywhere() if force_binaries else None
    gap = choice.mip_gap if mip_gap is None else mip_gap
    built, solution, build_seconds = _central(scopes, table, caps, binaries, (time_limit_s, gap))
    problem = built.problem
    x = solution.x if solution.x is not None else np.zeros(problem.n_variables)
    costs = evaluate(problem, x, "costs")
    accounts = evaluate(problem, x, "accounts")
    return Plan(
        status=solution.status,
        level=level,
        site_id=site_id,
        cost_cny=cost_terms(costs),
        co2_kg_by_carrier={k.removeprefix("co2_kg:"): v for k, v in accounts.items()},
        baseline=baseline,
        schedule=extract(problem, x, table.index),
        scalars=scalars(problem, x, table.n),
        build_seconds=build_seconds,
        solve_seconds=solution.seconds,
        variables=problem.n_variables,
        binaries=problem.n_binaries,
        constraints=int(problem.a.shape[0]),
        gap=solution.gap,
        method=method,
        workers=1,
        carbon_cap_kg=caps.carbon_cap_kg,
        month_peak_kw=peaks,
        method_reason=reason,
        notes=notes,
    )


def with_month_peaks(
    table: PlanInputs, scopes: Sequence[Scope], month_peak_kw: float | None
) -> PlanInputs:
    """`table` with a `<grid node>:month_peak_kw` column for each connection that lacks one."""
    if month_peak_kw is None:
        return table
    if not np.isfinite(month_peak_kw) or month_peak_kw < 0:
        raise PlanInputError(
            f"--month-peak-kw: must be a number ≥ 0 (kW), got {month_peak_kw!r}",
            column="month_peak_kw",
        )
    columns = dict(table.columns)
    for scope in scopes:
        for node, connection in scope.connections():
            name = tariffs.month_peak_column(node)
            if name in columns:
                continue
            high = month_peak_limit_kw(connection)
            if month_peak_kw > high:
                raise PlanInputError(
                    f"--month-peak-kw: {month_peak_kw:g} kW is above {high:g}, {node}'s "
                    f"connection import limit × {MONTH_PEAK_LIMIT_FACTOR:g} (W instead of kW?)",
                    column="month_peak_kw",
                )
            columns[name] = np.full(table.n, month_peak_kw)
    return replace(table, columns=columns)


def _decomposed_plan(
    found: Decomposed, level: str, site_id: str, baseline: Baseline, cap: float | None
) -> Plan:
    return Plan(
        status=found.status,
        level=level,
        site_id=site_id,
        cost_cny=cost_terms(found.cost_cny),
        co2_kg_by_carrier=found.co2_kg_by_carrier,
        baseline=baseline,
        schedule=found.schedule,
        scalars=found.scalars,
        build_seconds=found.build_seconds,
        solve_seconds=found.solve_seconds,
        variables=found.variables,
        binaries=found.binaries,
        constraints=found.constraints,
        gap=found.gap,
        method="decomposed",
        iterations=found.iterations,
        workers=found.workers,
        lower_bound_cny=found.lower_bound_cny,
        carbon_cap_kg=found.carbon_cap_kg if found.carbon_cap_kg is not None else cap,
    )
