"""Park and city plans by decomposition: buildings solved apart, coordinated by prices.

Method (ADMM for the sharing problem, Boyd et al. 2011 §7.3, then a restricted master):

1. Each building is a subproblem built by the same asset functions as a centralized plan, fed
   from its park's bus (`levels.build_building`). Its *channels* are what coupling constraints
   sum: its draw from the park per carrier and step, and its CO₂ when a carbon cap is set.
2. ADMM iterates: every building answers the current prices with a proximal term around its
   share (in parallel on the executor); the coordinator solves the parks' heads (grid connection
   with its import limit and demand charge, shared assets, city caps) against the buildings'
   aggregate with the same proximal term; prices move by the residual. It stops when the primal
   residual (buildings' sum vs the heads' aggregate) and the dual residual (change of the
   aggregate) are both within tolerance, at the iteration bound, or at the time limit. Residual
   balancing adapts ρ. The proximal term is piecewise linear (see `prox`): SciPy's HiGHS solves
   warm LPs in about a millisecond but no warm QPs.
3. A Lagrangian lower bound: every building's plain priced LP (its MILP, if it has binaries) and
   the heads' relaxed LP at the final prices; those answers are proposals too.
4. The restricted master (`master`) combines each building's proposals under the real park
   balances and caps, with the heads' binaries: the plan satisfies every coupling constraint
   exactly. A constraint it cannot meet gets one more round of proposals with every building
   pushed to its extreme on the rows short; if it still cannot, the plan is infeasible and the
   error names the row and step.
5. Each building re-solves with its channels fixed to the master's combination (never worse
   than the combination): that is the schedule reported. Gap = (objective − bound) / objective.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress, TextColumn

from energyhub.optimize.coupling import Caps
from energyhub.optimize.errors import (
    NoSolutionError,
    PlanError,
    UncombinedError,
)
from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.levels import Built
from energyhub.optimize.master import (
    NOT_SCHEDULED,
    SHORTFALL_CNY_PER_KW,
    Layout,
    aggregate_model,
    restricted_master,
)
from energyhub.optimize.model import (
    Array,
    Problem,
    Status,
    evaluate,
    extract,
    relaxed_duals,
    scalars,
    solve,
)
from energyhub.optimize.network import Prices
from energyhub.optimize.prox import ProxModel
from energyhub.optimize.runner import Runner, answers, open_executor, recipes
from energyhub.optimize.scope import Scope
from energyhub.optimize.subproblem import Answer, Final

RESIDUAL_RATIO = 10.0
"""Residual balancing: ρ doubles when the primal residual exceeds this many dual residuals, and
halves the other way round (Boyd et al. 2011 §3.4.1)."""

MASTER_PROPOSALS = 2000
"""ADMM iterates the master keeps in all, shared among the buildings (the latest of each, at
least MIN_PROPOSALS): a small park keeps its whole history, a city a bounded master."""

MASTER_TIME_LIMIT_S = 30.0
"""Time limit of the restricted master's MILP when the plan sets none: its best combination
found by then is still exactly feasible."""

FIRST = 2
"""Proposals every building keeps however many iterates follow: its answers at the first prices
and self-supplied (its extremes in district heat, which the master needs to take up or do without
a CHP's heat at min load)."""

MIN_PROPOSALS = 5
"""ADMM iterates every building keeps however many buildings share the master."""

ROUND_UP_ABOVE = 1e-6
"""A head binary above this in the master's LP relaxation is rounded up in the second try."""

REFINE_ROUNDS = 3
"""Column-generation rounds after ADMM (each: the master's relaxation, one pricing round)."""

REPAIR_ROUNDS = 12
"""Pricing rounds a master that falls short of a coupling row gets before the row is declared
impossible."""


@dataclass(frozen=True, slots=True)
class DecomposeOptions:
    """How to decompose: stopping rule, parallelism, progress display."""

    time_limit_s: float | None = None
    max_iterations: int = 150
    tolerance: float = 1e-3
    workers: int | None = None
    executor: Executor | None = None
    progress: bool = False


@dataclass(frozen=True, slots=True)
class Decomposed:
    """A decomposed plan's numbers, ready for `Plan`."""

    status: Status
    cost_cny: dict[str, float]
    co2_kg_by_carrier: dict[str, float]
    schedule: pd.DataFrame
    scalars: dict[str, float]
    lower_bound_cny: float
    gap: float
    iterations: int
    workers: int
    build_seconds: float
    solve_seconds: float
    variables: int
    binaries: int
    constraints: int
    carbon_cap_kg: float | None


@dataclass
class _State:
    """ADMM iterates: each building's channel values, the heads' aggregate, scaled prices."""

    q: dict[str, Array]
    aggregate: Array
    u: Array
    rho: Array
    primal: float = np.inf
    dual: float = np.inf
    iterations: int = 0
    converged: bool = False

    @property
    def price(self) -> Array:
        return self.rho * self.u


def _initial_price(scopes: Sequence[Scope], table: PlanInputs, layout: Layout) -> Array:
    """Each park's import price (with its carbon price) on its electricity draw; 0 elsewhere."""
    price = np.zeros(layout.size)
    for scope in scopes:
        if (scope.id, "electricity") in layout.blocks:
            prices = Prices.of(scope, table)
            block = layout.blocks[(scope.id, "electricity")]
            price[block] = -prices.import_effective_cny_per_kwh * table.dt_h
    return price


def _self_supplied(price: Array, layout: Layout) -> Array:
    """Prices at which every building makes its own heat and cooling where it can: a proposal
    the master can always fall back on when a park's heat is short."""
    alone = price.copy()
    for (_, carrier), block in layout.blocks.items():
        if carrier in ("heat", "cooling"):
            alone[block] = -SHORTFALL_CNY_PER_KW
    return alone


def _weights(layout: Layout, first: dict[str, Answer]) -> tuple[Array, float]:
    """Per-entry ρ weights (CO₂ scaled to the flows) and the typical building flow (kW)."""
    flows = [np.max(np.abs(a.q[: a.q.size - int(r.co2)]), initial=0.0) for r, a in
             ((r, first[r.key]) for r in layout.recipes)]  # fmt: skip
    flow = max(float(np.median(flows)) if flows else 1.0, 1.0)
    weights = np.ones(layout.size)
    if ("", "co2") in layout.blocks:
        co2 = max(float(np.mean([first[r.key].q[-1] for r in layout.recipes if r.co2])), 1.0)
        weights[layout.blocks[("", "co2")]] = (flow / co2) ** 2
    return weights, flow


class _Admm:
    """The coordinator's side of ADMM for the sharing problem."""

    def __init__(self, runner: Runner, coordinator: ProxModel, layout: Layout) -> None:
        self.runner, self.coordinator, self.layout = runner, coordinator, layout
        self.keep = max(MIN_PROPOSALS, MASTER_PROPOSALS // len(layout.recipes))

    def step(self, state: _State, pool: dict[str, list[Answer]], limit: float | None) -> None:
        """One iteration: buildings' proximal answers, the heads' aggregate, price update."""
        layout, counts = self.layout, self.layout.counts
        mean = layout.gather(state.q) / counts
        zbar = state.aggregate / counts
        targets = {
            k: q - mean[layout.entries[k]] + zbar[layout.entries[k]] - state.u[layout.entries[k]]
            for k, q in state.q.items()
        }
        replies = self.runner.ask("prox", np.zeros(layout.size), state.rho, targets, limit)
        state.q = {k: a.q for k, a in replies.items() if isinstance(a, Answer)}
        for k, a in replies.items():
            if isinstance(a, Answer):
                pool[k] = [*pool[k][:FIRST], *pool[k][FIRST:][-self.keep :], a]
        total = layout.gather(state.q)
        reply = self.coordinator.respond(
            np.zeros(layout.size), state.rho / counts, counts * state.u + total, limit
        )
        if reply.q is None:
            raise PlanError(f"the coordinator's step failed (solver status {reply.status})")
        previous, state.aggregate = state.aggregate, reply.q
        state.u = state.u + (total - state.aggregate) / counts
        state.primal = float(np.linalg.norm(total - state.aggregate))
        state.dual = float(np.linalg.norm(state.rho * (state.aggregate - previous)))
        state.iterations += 1
        self._rebalance(state)

    def _rebalance(self, state: _State) -> None:
        if state.primal > RESIDUAL_RATIO * state.dual:
            state.rho, state.u = state.rho * 2.0, state.u / 2.0
        elif state.dual > RESIDUAL_RATIO * state.primal:
            state.rho, state.u = state.rho / 2.0, state.u * 2.0

    def converged(self, state: _State, tolerance: float, flow_kw: float) -> bool:
        """Boyd et al.'s stopping rule with absolute tolerance scaled to a building's flow."""
        root = float(np.sqrt(self.layout.size))
        total = float(np.linalg.norm(self.layout.gather(state.q)))
        scale = max(total, float(np.linalg.norm(state.aggregate)))
        primal_ok = root * tolerance * flow_kw * 1e-2 + tolerance * scale
        dual_ok = root * tolerance * 1e-3 + tolerance * float(np.linalg.norm(state.price))
        return bool(state.primal <= primal_ok and state.dual <= dual_ok)


def _progress(enabled: bool) -> Progress:
    console = Console(stderr=True, quiet=not enabled)
    return Progress(TextColumn("{task.description}"), console=console, transient=True)


def decompose(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, options: DecomposeOptions
) -> Decomposed:
    """A park or city plan by ADMM across buildings, made exactly feasible by the master."""
    started = time.perf_counter()
    items = recipes(scopes, table, caps)
    if not items:
        raise PlanError("--method decomposed: the plan has no buildings to decompose")
    layout = Layout.of(scopes, items, table.n, any(r.co2 for r in items))
    aggregate, rows = aggregate_model(scopes, table, caps, layout)
    build_seconds = time.perf_counter() - started
    deadline = None if options.time_limit_s is None else started + options.time_limit_s
    with (
        open_executor(options.executor, options.workers) as (executors, workers),
        _progress(options.progress) as bar,
    ):
        runner = Runner(executors, workers, items, layout)
        task = bar.add_task("decomposing: first prices")
        price = _initial_price(scopes, table, layout)
        first = answers(runner.ask("price", price, None, None, options.time_limit_s))
        alone = answers(runner.ask("price", _self_supplied(price, layout), None, None, None))
        pool = {k: [a, alone[k]] for k, a in first.items()}
        weights, flow = _weights(layout, first)
        rho = weights * float(np.mean(np.abs(price)) or 1.0) / flow
        q = {k: a.q for k, a in first.items()}
        total = layout.gather(q)
        scale = np.maximum(2.0 * np.abs(total), layout.counts * flow) + 1.0
        coordinator = ProxModel(aggregate.problem, rows, np.zeros(layout.size), scale, relax=True)
        state = _State(q, total, price / rho, rho)
        admm = _Admm(runner, coordinator, layout)
        while state.iterations < options.max_iterations:
            if deadline is not None and time.perf_counter() > deadline:
                break
            admm.step(state, pool, options.time_limit_s)
            state.converged = admm.converged(state, options.tolerance, flow)
            bar.update(task, description=_line(state))
            if state.converged:
                break
        bar.update(task, description="decomposing: lower bound and master")
        bound = _lower_bound(runner, coordinator, state.price, pool, options.time_limit_s)
        bound = _refine(scopes, table, caps, layout, runner, coordinator, pool, bound, options)
        found = _recover(scopes, table, caps, layout, runner, pool, state, options)
    return _assemble(found, bound, state, workers, build_seconds, time.perf_counter() - started,
                     deadline, caps)  # fmt: skip


def _line(state: _State) -> str:
    return (
        f"decomposing: iteration {state.iterations}, primal residual {state.primal:.3g}, "
        f"dual residual {state.dual:.3g}, ρ {float(np.median(state.rho)):.3g}"
    )


def _lower_bound(
    runner: Runner,
    coordinator: ProxModel,
    price: Array,
    pool: dict[str, list[Answer]],
    limit: float | None,
) -> float:
    """Lagrangian bound at `price`: buildings' priced optima + the heads' relaxed LP; the
    buildings' answers join their proposals."""
    replies = answers(runner.ask("price", price, None, None, limit))
    for key, answer in replies.items():
        pool[key].append(answer)
    head = coordinator.respond(-price, None, None, limit)
    if head.q is None:
        return -np.inf
    return sum(a.value for a in replies.values()) + head.cost - float(price @ head.q)


def _master_prices(problem: Problem, duals: Array, layout: Layout, caps: Caps) -> Array:
    """The restricted master's duals on the park balances (and the carbon cap) as prices."""
    price = np.zeros(layout.size)
    for (park, carrier), block in layout.blocks.items():
        row = f"{park}:balance_{carrier}" if park else caps.carbon_name
        if row in problem.constraints:
            price[block] = -duals[problem.constraints[row].slice]
    return price


def _refine(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, layout: Layout, runner: Runner,
    coordinator: ProxModel, pool: dict[str, list[Answer]], bound: float, options: DecomposeOptions,
) -> float:  # fmt: skip
    """Column generation from the ADMM proposals: the master's duals price new proposals and
    give another bound, until the master's relaxation is within tolerance of the bound."""
    for _ in range(REFINE_ROUNDS):
        built = restricted_master(scopes, table, caps, layout, pool)
        found = relaxed_duals(built.problem)
        if found is None:
            break
        x, duals = found
        value = float(built.problem.c @ x)
        price = _master_prices(built.problem, duals, layout, caps)
        bound = max(bound, _lower_bound(runner, coordinator, price, pool, options.time_limit_s))
        if value - bound <= options.tolerance * max(abs(value), 1e-9):
            break
    return bound


@dataclass(frozen=True, slots=True)
class _Recovered:
    """The master's solution and every building's polished schedule."""

    problem_costs: dict[str, float]
    accounts: dict[str, float]
    schedule: pd.DataFrame
    scalars: dict[str, float]
    finals: dict[str, Final]
    size: tuple[int, int, int]


TOLERANCE_KW = 1e-6
"""A shortfall below this is solver noise, not a constraint that cannot hold."""


def _shortfalls(problem: Problem, x: Array) -> dict[str, float]:
    """The master's shortfall and excess columns in use, by `<column>@<step>`."""
    short = {}
    for name, var in problem.variables.items():
        if ":shortfall_" in name or name.endswith(":excess"):
            values = x[var.slice]
            for step in np.flatnonzero(values > TOLERANCE_KW):
                short[f"{name}@{step}"] = float(values[step])
    return short


Pattern = dict[str, Array]
"""Values of the heads' binary variables (a CHP's on/off), by variable name."""


def _solve_master(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, layout: Layout,
    pool: dict[str, list[Answer]], options: DecomposeOptions, first: Pattern | None = None,
) -> tuple[Built, Array, dict[str, float], Pattern | None]:  # fmt: skip
    """Solve the restricted master; returns (built, x, shortfalls, the pattern to repair for).

    With binaries in the heads, first with them fixed: at `first`, then at their values in the
    master's LP relaxation rounded, then rounded up (a unit on wherever the LP runs it at all);
    only if all fall short, the MILP: a master of thousands of dense proposal columns branches
    slowly (30 s without a solution for a 100-building park). The pattern to repair for is the
    rounded-up one: the buildings' extreme answers can take up a CHP's heat at min load (a
    100-building park: feasible after 8 rounds), while doing without it where rounding turned
    it off did not converge."""
    built = restricted_master(scopes, table, caps, layout, pool)
    limit = options.time_limit_s if options.time_limit_s is not None else MASTER_TIME_LIMIT_S
    problem = built.problem
    relaxed = relaxed_duals(problem) if _has_head_binaries(problem) else None
    repair_for = None
    if relaxed is not None:
        repair_for = _pattern(problem, relaxed[0], up=True)
        tries = [_pattern(problem, relaxed[0], up=False), repair_for]
        for pattern in [first, *tries] if first is not None else tries:
            fixed = _fixed(problem, pattern)
            solution = solve(fixed, time_limit_s=limit, mip_gap=options.tolerance)
            if solution.x is not None and not _shortfalls(problem, solution.x):
                return built, solution.x, {}, pattern
    solution = solve(problem, time_limit_s=limit, mip_gap=options.tolerance)
    if solution.x is None:
        raise NoSolutionError(f"no schedule: the master stopped ({solution.status})")
    return built, solution.x, _shortfalls(problem, solution.x), repair_for


def _head_variables(problem: Problem) -> list[str]:
    """The master's binary variable blocks that belong to the heads, not to the proposals."""
    return [
        name
        for name, v in problem.variables.items()
        if not name.endswith(":proposals") and problem.integrality[v.start]
    ]


def _has_head_binaries(problem: Problem) -> bool:
    return bool(_head_variables(problem))


def _pattern(problem: Problem, x: Array, *, up: bool) -> Pattern:
    """The heads' binaries in `x` rounded (or rounded up)."""
    out = {}
    for name in _head_variables(problem):
        values = x[problem.variables[name].slice]
        out[name] = np.ceil(values - ROUND_UP_ABOVE) if up else np.round(values)
    return out


def _fixed(problem: Problem, pattern: Pattern | None) -> Problem:
    """The problem with the heads' binaries fixed at `pattern` (unchanged without one)."""
    if not pattern:
        return problem
    lower, upper = problem.col_lower.copy(), problem.col_upper.copy()
    for name, values in pattern.items():
        block = problem.variables[name].slice
        lower[block] = upper[block] = values
    return replace(problem, col_lower=lower, col_upper=upper)


def _repair(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, layout: Layout, runner: Runner,
    pool: dict[str, list[Answer]], state: _State, short: dict[str, float],
    pattern: Pattern | None,
) -> bool:  # fmt: skip
    """Phase I on the master's relaxation with the heads' binaries fixed at `pattern`: price
    proposals first with every building pushed to its extreme on the rows short, then by the
    relaxation's duals; True once none is short."""
    push = _extreme_price(state.price, short, layout, caps)
    for _ in range(REPAIR_ROUNDS):
        for key, answer in answers(runner.ask("price", push, None, None, None)).items():
            pool[key].append(answer)
        problem = _fixed(restricted_master(scopes, table, caps, layout, pool).problem, pattern)
        found = relaxed_duals(problem)
        if found is None:
            return False
        if not _shortfalls(problem, found[0]):
            return True
        push = _master_prices(problem, found[1], layout, caps)
    return False


def _extreme_price(price: Array, short: dict[str, float], layout: Layout, caps: Caps) -> Array:
    """Prices that push every building to its extreme on the rows the master could not meet."""
    push = price.copy()
    for where in short:
        name, _, step_text = where.partition("@")
        step = int(step_text)
        owner, _, what = name.partition(":")
        if what.startswith("shortfall_"):
            carrier = what.removeprefix("shortfall_").partition("_kw")[0]
            sign = -1.0 if name.endswith(":in") else 1.0
            push[layout.blocks[(owner, carrier)].start + step] = sign * SHORTFALL_CNY_PER_KW
        elif name.startswith(caps.carbon_name):
            push[layout.blocks[("", "co2")]] = SHORTFALL_CNY_PER_KW
        else:
            cap = next(c for c in caps.imports if name.startswith(c.name))
            t = int(np.flatnonzero(cap.steps)[step])
            for (_park, carrier), block in layout.blocks.items():
                if carrier == "electricity":
                    push[block.start + t] = -SHORTFALL_CNY_PER_KW
    return push


def _recover(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, layout: Layout, runner: Runner,
    pool: dict[str, list[Answer]], state: _State, options: DecomposeOptions,
) -> _Recovered:  # fmt: skip
    """The master over every proposal, repaired if it falls short of a row, polished; a row it
    still cannot meet raises UncombinedError (the plan then asks the centralized solve)."""
    limit = options.time_limit_s
    built, x, short, pattern = _solve_master(scopes, table, caps, layout, pool, options)
    if short and _repair(scopes, table, caps, layout, runner, pool, state, short, pattern):
        built, x, short, _ = _solve_master(scopes, table, caps, layout, pool, options, pattern)
    if short:
        raise _short_error(short, table, caps)
    problem = built.problem
    targets = {}
    for recipe in layout.recipes:
        weights = x[problem.variables[f"{recipe.key}:proposals"].slice]
        chosen = [a for a in pool[recipe.key] if a.exact]
        targets[recipe.key] = np.sum(
            [w * a.q for w, a in zip(weights, chosen, strict=True)], axis=0
        )
    finals = {
        k: f
        for k, f in runner.ask("fixed", np.zeros(layout.size), None, targets, limit).items()
        if isinstance(f, Final)
    }
    frame = extract(problem, x, table.index)
    keep = [c for c in frame.columns if not any(p in c for p in NOT_SCHEDULED)]
    size = (problem.n_variables, problem.n_binaries, int(problem.a.shape[0]))
    heads = {k: v for k, v in scalars(problem, x, table.n).items() if ":proposals" not in k}
    return _Recovered(
        evaluate(problem, x, "costs"), evaluate(problem, x, "accounts"), frame[keep], heads,
        finals, size,
    )  # fmt: skip


def _short_error(short: dict[str, float], table: PlanInputs, caps: Caps) -> UncombinedError:
    """Name the first row and step the master could not meet with every building at its extreme."""
    where = min(short, key=lambda w: int(w.partition("@")[2]))
    name, _, step_text = where.partition("@")
    step = int(step_text)
    for cap in caps.imports:
        if name.startswith(cap.name):
            step = int(np.flatnonzero(cap.steps)[step])
    row = name.removesuffix(":excess").removesuffix(":in").removesuffix(":out")
    owner, _, what_row = row.partition(":")
    carrier = (
        what_row.removeprefix("shortfall_").removesuffix("_kw") if ":shortfall_" in row else ""
    )
    row = f"{owner}:balance_{carrier}" if carrier else row
    ts = table.index[step].isoformat()
    what = "a shortage" if name.endswith(":in") else "an excess"
    return UncombinedError(
        f"infeasible: {row} cannot hold at step {step + 1} (ts {ts}) even with every building at "
        f"its extreme: {what} of {short[where]:.4g} remains",
        constraint=row,
        node=owner,
        carrier=carrier or None,
        assets=[],
        step=step + 1,
        ts=ts,
    )


def _assemble(
    found: _Recovered, bound: float, state: _State, workers: int, build_seconds: float,
    seconds: float, deadline: float | None, caps: Caps,
) -> Decomposed:  # fmt: skip
    """Add the buildings' polished terms to the heads' and report against the bound."""
    costs = {k: v for k, v in found.problem_costs.items() if k not in ("buildings", "shortfall")}
    accounts = {k: v for k, v in found.accounts.items() if k != "co2_kg:buildings"}
    columns = [found.schedule]
    extra: dict[str, float] = dict(found.scalars)
    size = np.array(found.size)
    for final in found.finals.values():
        for term, value in final.costs.items():
            costs[term] = costs.get(term, 0.0) + value
        for name, value in final.accounts.items():
            accounts[name] = accounts.get(name, 0.0) + value
        columns.append(pd.DataFrame(final.schedule, index=found.schedule.index))
        extra.update(final.scalars)
        size += np.array(final.size)
    objective = sum(costs.values())
    gap = max(0.0, (objective - bound) / max(abs(objective), 1e-9))
    if state.converged:
        status: Status = "optimal"
    elif deadline is not None and time.perf_counter() > deadline:
        status = "time_limit"
    else:
        status = "iteration_limit"
    return Decomposed(
        status=status,
        cost_cny=costs,
        co2_kg_by_carrier={k.removeprefix("co2_kg:"): v for k, v in accounts.items()},
        schedule=pd.concat(columns, axis=1),
        scalars=extra,
        lower_bound_cny=bound,
        gap=gap,
        iterations=state.iterations,
        workers=workers,
        build_seconds=build_seconds,
        solve_seconds=seconds - build_seconds,
        variables=int(size[0]),
        binaries=int(size[1]),
        constraints=int(size[2]),
        carbon_cap_kg=caps.carbon_cap_kg,
    )
