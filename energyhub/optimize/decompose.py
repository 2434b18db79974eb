"""Park and city plans by decomposition: buildings solved apart, coordinated through the parks.

Method (a virtual plan, then proximal rounds of the buildings and a restricted master):

1. The *virtual plan* (`aggregate`): every park's like buildings merged into a virtual one
   (summed sizes and demands, same asset functions), with the real heads and caps, solved as one
   small MILP. It is a relaxation, so its bound is a lower bound of the plan. It fixes the heads'
   binaries (a CHP's on/off) for what follows, so the rest is a linear program; its duals price
   the park balances and caps; and each building's share of its virtual building's draw is its
   first target (`_shares`).
2. Each building is a subproblem built by the same asset functions as a centralized plan, fed
   from its park's bus (`levels.build_building`); its *channels* are what coupling constraints
   sum: its draw from the park per carrier and step, and its CO₂ when a carbon cap is set. In
   every round the buildings (in parallel on the executor) answer with a proximal term around
   their target (piecewise linear, see `prox`). Projection rounds weigh it above every price, so
   a building leaves its target only where the target is infeasible for it; the next targets
   spread what the answers together miss of the virtual plan's draws over the buildings
   (alternating projections). When that stalls, or while the master is short of a row, a
   stabilized column-generation round prices the buildings by the master's duals around the
   master's last combination, with a proximal weight that halves each time.
3. The restricted master (`master`) combines each building's answers under the real park
   balances, connection limits, demand charges, shared assets and caps with the heads' binaries
   fixed: whatever it picks holds every coupling constraint exactly. Rounds stop once it is
   within the tolerance of the bound, at the iteration or time limit, or after PATIENCE rounds
   that hardly improve it. A master still short of a row raises UncombinedError: the plan then
   falls back to the centralized solve, which tells whether and where the row cannot hold.
4. Each building's schedule is the master's combination of its answers' solutions (a convex
   combination of an LP's solutions is one, with the combined channels and cost), so the plan
   is the master's. Gap = (objective − bound) / objective.
5. The polish (`_polish`), after rounds 1, 2, 4, 8, … and at the end: the coupled problem
   solved once, whole, with every binary at the plan's value (the master's pick, the
   buildings' latest answers, or after the first round the virtual plan's own binaries for the
   buildings that stayed alone; a store whose flows clash gets a free binary, as centrally).
   The plan so far is a point of it, so it costs no more, and it holds every coupling row
   exactly; within the tolerance of the bound it ends the rounds. It is also tried before a
   master short of a row falls back to the centralized solve.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress, TextColumn

from energyhub.optimize.aggregate import (
    Virtual,
    build_virtual,
    head_binaries,
    single_binaries,
    virtual_plan,
)
from energyhub.optimize.coupling import Caps
from energyhub.optimize.errors import NoSolutionError, PlanError, UncombinedError
from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.levels import Built, binary_policy, build_scopes
from energyhub.optimize.master import (
    NOT_SCHEDULED,
    Layout,
    park_carriers_of,
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
from energyhub.optimize.network import Binaries, Exclusivity, Prices
from energyhub.optimize.prox import BREAKPOINTS
from energyhub.optimize.runner import Runner, answers, open_executor, recipes
from energyhub.optimize.scope import Scope
from energyhub.optimize.subproblem import Answer, Final

MASTER_TIME_LIMIT_S = 30.0
"""Time limit of the virtual plan's and the final master's MILPs when the plan sets none."""

PROJECTION_RHO = 20.0
"""The first round's proximal weight as a multiple of the largest price per breakpoint step:
above every price, so a building leaves its share only where the share is infeasible for it."""

STABILIZE_RHO = 0.2
"""The proximal weight of a column-generation round, the same way: the master's prices move a
building a few breakpoints from the master's combination (its shortfall prices move it all
the way on the rows short)."""

KEEP_ANSWERS = 30
"""Answers the master keeps of each building: the first (its share, projected) and the latest,
so a long run of a large city does not grow the master without bound."""

RHO_DECAY = 0.5
"""Each column-generation round's proximal weight as a share of the one before: answers reach
further from the master's combination while it makes little progress."""

STALLED = 0.8
"""Projection rounds go on while each takes the master's excess over the bound (shortfalls
priced in) below this share of the last; otherwise a column-generation round follows."""

PROGRESS = 0.01
"""A round that takes less than this share off the master's excess over the bound is idle."""

PATIENCE = 8
"""Idle rounds in a row after which the rounds stop: a master still short of a row then falls
back to the centralized solve."""

TOLERANCE_KW = 1e-6
"""A shortfall below this is solver noise, not a constraint that cannot hold."""

BREAKPOINT_SHARE = 2.0 ** (1 - BREAKPOINTS)
"""The proximal term's first breakpoint as a share of its scale."""


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


Pattern = dict[str, Array]
"""Values of the heads' binary variables (a CHP's on/off), by variable name."""


@dataclass(frozen=True, slots=True)
class _Seed:
    """What the virtual plan gives: the heads' binaries, prices, each building's target, a bound."""

    pattern: Pattern
    price: Array
    targets: dict[str, Array]
    bound: float
    singles: Pattern
    """The binaries the virtual plan gave the buildings that stayed alone (their own CHP)."""


@dataclass(frozen=True, slots=True)
class _Master:
    """The restricted master with the heads' binaries fixed, solved as an LP."""

    built: Built
    problem: Problem
    x: Array
    duals: Array
    value: float
    short: dict[str, float]


def _peaks(layout: Layout, table: PlanInputs) -> dict[str, float]:
    """Each building's largest demand (kW): its proximal scale is twice that (`subproblem`)."""
    out = {}
    for r in layout.recipes:
        demands = [np.max(np.abs(v)) for k, v in r.inputs.columns.items()
                   if k.startswith(f"{r.key}:")]  # fmt: skip
        out[r.key] = max([1.0, *(float(d) for d in demands)])
    return out


def _rho(layout: Layout, price: Array, peaks: dict[str, float], factor: float) -> Array:
    """Proximal weights: `factor` × the largest price ÷ each building's first breakpoint (kW);
    none on the CO₂ entry (its price alone steers it)."""
    top = float(np.max(np.abs(price), initial=0.0)) or 1.0
    rho = np.zeros(layout.size)
    for r in layout.recipes:
        idx = layout.entries[r.key]
        flows = idx[: idx.size - int(r.co2)]
        rho[flows] = np.maximum(rho[flows], factor * top / (2.0 * peaks[r.key] * BREAKPOINT_SHARE))
    return rho


def _seed(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, layout: Layout, virtual: Virtual,
    options: DecomposeOptions,
) -> _Seed | None:  # fmt: skip
    """Solve the virtual plan; None if it has no solution (then neither has the plan)."""
    built = build_virtual(virtual, caps)
    limit = options.time_limit_s if options.time_limit_s is not None else MASTER_TIME_LIMIT_S
    solution = solve(built.problem, time_limit_s=limit, mip_gap=options.tolerance / 10.0)
    if solution.x is None or solution.objective is None:
        return None
    pattern = head_binaries(built, solution.x)
    found = relaxed_duals(_fixed(built.problem, pattern))
    if found is None:
        return None
    x, duals = found
    price = _master_prices(built.problem, duals, layout, caps)
    gap = solution.gap or 0.0
    bound = solution.objective - gap * abs(solution.objective)
    singles = single_binaries(virtual, scopes, built, solution.x)
    targets = _shares(scopes, table, layout, virtual, built, x)
    return _Seed(pattern, price, targets, bound, singles)


def _shares(
    scopes: Sequence[Scope], table: PlanInputs, layout: Layout, virtual: Virtual, built: Built,
    x: Array,
) -> dict[str, Array]:  # fmt: skip
    """Each building's part of its virtual building's draw q (= − feed), per park carrier and
    step. Electricity, which a feeder carries both ways: the building makes its share (by
    size) of the group's own production and draws the rest of its demand. Heat and cooling,
    which only flow into buildings: it draws by its share of the group's demand in that step
    (none without demand). 0 on the CO₂ entry (which has no proximal weight)."""
    problem, n = built.problem, table.n
    by_key = {r.key: r for r in layout.recipes}
    targets = {}
    for group in virtual.groups:
        carriers = park_carriers_of(scopes, group.park)
        drawn, totals = [], []
        for carrier in carriers:
            feed = f"{group.node}:feed_kw" if carrier == "electricity" else \
                f"{group.node}:district_{carrier}_kw"  # fmt: skip
            drawn.append(-x[problem.variables[feed].slice] if feed in problem.variables
                         else np.zeros(n))  # fmt: skip
            demand = virtual.inputs.get(f"{group.node}:{carrier}_kw")
            totals.append(np.zeros(n) if demand is None else demand)
        for key, share in zip(group.members, group.shares, strict=True):
            parts = []
            for carrier, q, total in zip(carriers, drawn, totals, strict=True):
                demand = table.get(f"{key}:{carrier}_kw")
                own = np.zeros(n) if demand is None else demand
                if carrier == "electricity":
                    parts.append(share * (q + total) - own)
                else:
                    safe = np.where(total > 0, total, 1.0)
                    parts.append(np.where(total > 0, own / safe, share) * q)
            if by_key[key].co2:
                parts.append(np.zeros(1))
            targets[key] = np.concatenate(parts) if parts else np.zeros(0)
    return targets


def _progress(enabled: bool) -> Progress:
    console = Console(stderr=True, quiet=not enabled)
    return Progress(TextColumn("{task.description}"), console=console, transient=True)


def decompose(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, options: DecomposeOptions
) -> Decomposed:
    """A park or city plan from the virtual plan and priced building rounds, made exactly
    feasible by the master."""
    started = time.perf_counter()
    items = recipes(scopes, table, caps)
    if not items:
        raise PlanError("--method decomposed: the plan has no buildings to decompose")
    layout = Layout.of(scopes, items, table.n, any(r.co2 for r in items))
    virtual = virtual_plan(scopes, table)
    build_seconds = time.perf_counter() - started
    deadline = None if options.time_limit_s is None else started + options.time_limit_s
    limit = options.time_limit_s
    with (
        open_executor(options.executor, options.workers) as (executors, workers),
        _progress(options.progress) as bar,
    ):
        runner = Runner(executors, workers, items, layout)
        task = bar.add_task("decomposing: the virtual plan")
        seed = _seed(scopes, table, caps, layout, virtual, options)
        if seed is None:
            runner.ask("price", np.zeros(layout.size), None, None, limit)  # names a building
            raise _virtual_error()
        pool: dict[str, list[Answer]] = {r.key: [] for r in layout.recipes}
        goal, peaks = layout.gather(seed.targets), _peaks(layout, table)
        project = _rho(layout, seed.price, peaks, PROJECTION_RHO)
        price, rho, targets = seed.price, project, seed.targets
        iterations, gap, excess, idle, weight = 0, np.inf, np.inf, 0, STABILIZE_RHO
        while True:
            replies = answers(runner.ask("prox", price, rho, targets, limit))
            for key, answer in replies.items():
                pool[key] = [*pool[key][:1], *pool[key][1:][2 - KEEP_ANSWERS :], answer]
            iterations += 1
            master = _master(scopes, table, caps, layout, pool, seed.pattern)
            gap, before = _gap(master, seed.bound), excess
            if iterations & (iterations - 1) == 0:  # rounds 1, 2, 4, 8, …: the binaries
                # found so far may be all the plan needs (the polish then ends the rounds)
                base = _Base(seed.bound, iterations, workers, build_seconds, "optimal")
                early = _best_polish(scopes, table, caps, layout, runner, pool, master, seed,
                                     base, options)  # fmt: skip
                if early is not None and early.gap <= options.tolerance:
                    spent = time.perf_counter() - started - build_seconds
                    return replace(early, solve_seconds=spent)
            excess = master.value - seed.bound
            idle = idle + 1 if excess > (1.0 - PROGRESS) * before else 0
            bar.update(task, description=f"decomposing: round {iterations}, gap {gap:.3%}")
            if gap <= options.tolerance or iterations >= options.max_iterations:
                break
            if (deadline is not None and time.perf_counter() > deadline) or idle >= PATIENCE:
                break
            if not master.short and excess < STALLED * before:
                price, rho = seed.price, project
                targets = _rebalanced(replies, goal, layout)
            else:
                price = _master_prices(master.problem, master.duals, layout, caps)
                rho, weight = _rho(layout, seed.price, peaks, weight), weight * RHO_DECAY
                targets = _combination(master, layout, pool, lambda a: a.q)
        bar.update(task, description="decomposing: master and polish")
        try:
            found = _recover(scopes, table, caps, layout, runner, pool, master, seed, options)
        except UncombinedError:
            # no mix of the answers meets a row: the buildings' latest answers still fix the
            # binaries, and the coupled LP over them may hold where no mix did
            values = _latest_values(runner, layout, pool, seed, limit)
            base = _Base(seed.bound, iterations, workers, build_seconds, "iteration_limit")
            rescued = _polish(scopes, table, caps, values, base, options)
            if rescued is None:
                raise
            return replace(rescued, solve_seconds=time.perf_counter() - started - build_seconds)
    converged = gap <= options.tolerance
    plan = _assemble(found, seed.bound, iterations, converged, workers, build_seconds,
                     time.perf_counter() - started, deadline, caps)  # fmt: skip
    if plan.status == "optimal" and plan.gap > options.tolerance:
        # the master's mix was within the tolerance, the plan its binaries give is not
        plan = replace(plan, status="iteration_limit")
    values = {str(c): plan.schedule[c].to_numpy() for c in plan.schedule.columns}
    base = _Base(seed.bound, iterations, workers, build_seconds, plan.status)
    polished = _polish(scopes, table, caps, values, base, options)
    if polished is None or polished.gap >= plan.gap:
        return plan
    return replace(polished, solve_seconds=time.perf_counter() - started - build_seconds)


def _best_polish(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, layout: Layout, runner: Runner,
    pool: dict[str, list[Answer]], master: _Master, seed: _Seed, base: _Base,
    options: DecomposeOptions,
) -> Decomposed | None:  # fmt: skip
    """The better polish of the binaries as the rounds have them and (after the first round)
    as the virtual plan had them; the first within the tolerance ends the search."""
    plans = []
    for which in ("rounds", "virtual") if base.iterations == 1 else ("rounds",):
        values = (
            _binaries_now(scopes, table, caps, layout, runner, pool, master, seed, options)
            if which == "rounds"
            else seed.pattern | seed.singles
        )
        found = _polish(scopes, table, caps, values, base, options)
        if found is not None and found.gap <= options.tolerance:
            return found  # within the tolerance already: the other polish would not pay
        plans += [] if found is None else [found]
    return min(plans, key=lambda p: p.gap) if plans else None


def _binaries_now(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, layout: Layout, runner: Runner,
    pool: dict[str, list[Answer]], master: _Master, seed: _Seed, options: DecomposeOptions,
) -> Pattern:  # fmt: skip
    """The plan's binaries as they stand, by column name: the master's pick of each building's
    answers where the master meets every row, else each building's latest answer."""
    if master.short:
        return _latest_values(runner, layout, pool, seed, options.time_limit_s)
    found = _recover(scopes, table, caps, layout, runner, pool, master, seed, options)
    values = dict(seed.pattern)
    for final in found.finals.values():
        values |= final.schedule
    return values


def _latest_values(
    runner: Runner, layout: Layout, pool: dict[str, list[Answer]], seed: _Seed,
    limit: float | None,
) -> Pattern:  # fmt: skip
    """The heads' binaries and each building's latest answer, by column name (only the
    binaries matter to `_polish`; buildings without any are not asked)."""
    values = dict(seed.pattern)
    if not any(answers[-1].integer for answers in pool.values()):
        return values
    latest = {k: answers[-1].x for k, answers in pool.items()}
    finals = runner.ask("combined", np.zeros(layout.size), None, latest, limit)
    for final in finals.values():
        if isinstance(final, Final):
            values |= final.schedule
    return values


@dataclass(frozen=True, slots=True)
class _Base:
    """What a polished plan keeps of the rounds."""

    bound: float
    iterations: int
    workers: int
    build_seconds: float
    status: Status


def _polish(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, values: Pattern, base: _Base,
    options: DecomposeOptions,
) -> Decomposed | None:  # fmt: skip
    """The coupled problem solved once more, whole, as an LP: every binary (a CHP's on/off, a
    store's direction where its building needs one) at the decomposed plan's value. The plan is
    a point of that LP, so the result costs at most as much, and the LP holds every coupling
    row exactly. None where the plan's binaries do not cover the whole model (a store whose
    relaxed flows clash without one): the decomposed plan stands."""
    columns = set(values)
    stores = frozenset(c.removesuffix(":charging") for c in columns if c.endswith(":charging"))
    grid: Exclusivity = "on" if any(c.endswith(":importing") for c in columns) else "off"
    prone = frozenset().union(*(binary_policy(s, Prices.of(s, table)).stores for s in scopes))
    binaries: Binaries | None = Binaries("lazy", grid, stores | prone)
    while binaries is not None:  # a store whose flows clash gets a free binary, as centrally
        built = build_scopes(scopes, table, binaries, caps)
        problem = built.problem
        lower, upper = problem.col_lower.copy(), problem.col_upper.copy()
        integrality = problem.integrality.copy()
        for name, var in problem.variables.items():
            if (
                not problem.integrality[var.start]
                or name.removesuffix(":charging") in binaries.stores - stores
            ):
                continue
            if name not in columns:
                return None
            lower[var.slice] = upper[var.slice] = np.round(values[name])
            integrality[var.slice] = 0  # fixed: an LP unless a store's binary stays free
        fixed = replace(problem, col_lower=lower, col_upper=upper, integrality=integrality)
        solution = solve(fixed, time_limit_s=options.time_limit_s or MASTER_TIME_LIMIT_S,
                         mip_gap=options.tolerance / 10.0)  # fmt: skip
        x = solution.x
        if x is None:
            return None
        binaries = built.rebinarize(x)
    if x is None:
        return None
    costs = {k: v for k, v in evaluate(fixed, x, "costs").items() if k != "tie_break"}
    objective = sum(costs.values())
    gap = max(0.0, (objective - base.bound) / max(abs(objective), 1e-9))
    status: Status = "optimal" if gap <= options.tolerance else base.status
    accounts = evaluate(fixed, x, "accounts")
    return Decomposed(
        status=status,
        cost_cny=costs,
        co2_kg_by_carrier={k.removeprefix("co2_kg:"): v for k, v in accounts.items()},
        schedule=extract(fixed, x, table.index),
        scalars=scalars(fixed, x, table.n),
        lower_bound_cny=base.bound,
        gap=gap,
        iterations=base.iterations,
        workers=base.workers,
        build_seconds=base.build_seconds,
        solve_seconds=0.0,
        variables=fixed.n_variables,
        binaries=problem.n_binaries,
        constraints=int(fixed.a.shape[0]),
        carbon_cap_kg=caps.carbon_cap_kg,
    )


def _rebalanced(replies: dict[str, Answer], goal: Array, layout: Layout) -> dict[str, Array]:
    """Next targets: each building's answer, moved by an equal part of what the answers
    together miss of the virtual plan's draws (alternating projections onto the answers'
    feasible sets and onto the draws that sum to the goal)."""
    miss = (layout.gather({k: a.q for k, a in replies.items()}) - goal) / layout.counts
    return {k: a.q - miss[layout.entries[k]] for k, a in replies.items()}


def _virtual_error() -> UncombinedError:
    return UncombinedError(
        "infeasible: even the virtual plan (every park's buildings merged) has no schedule",
        constraint="virtual plan",
        node=None,
        carrier=None,
        assets=[],
        step=0,
        ts="",
    )


def _gap(master: _Master, bound: float) -> float:
    if master.short:
        return np.inf
    return max(0.0, (master.value - bound) / max(abs(master.value), 1e-9))


def _master(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, layout: Layout,
    pool: dict[str, list[Answer]], pattern: Pattern,
) -> _Master:  # fmt: skip
    """The restricted master's LP relaxation with the heads' binaries at `pattern`."""
    built = restricted_master(scopes, table, caps, layout, pool)
    problem = _fixed(built.problem, pattern)
    found = relaxed_duals(problem)
    if found is None:
        raise NoSolutionError("no schedule: the decomposition's master LP failed")
    x, duals = found
    value = float(problem.c @ x) + problem.offset
    return _Master(built, problem, x, duals, value, _shortfalls(problem, x))


def _combination(
    master: _Master, layout: Layout, pool: dict[str, list[Answer]],
    part: Callable[[Answer], Array],
) -> dict[str, Array]:  # fmt: skip
    """Each building's `part` of its answers (channels, solution) in the master's combination:
    a convex combination of solutions of a building's LP is a solution, and its channels and
    cost are the combination's."""
    out = {}
    for recipe in layout.recipes:
        weights = master.x[master.problem.variables[f"{recipe.key}:proposals"].slice]
        chosen = np.array([part(a) for a in pool[recipe.key] if a.exact])
        out[recipe.key] = weights @ chosen
    return out


def _master_prices(problem: Problem, duals: Array, layout: Layout, caps: Caps) -> Array:
    """A problem's duals on the park balances (and the carbon cap) as prices on the channels."""
    price = np.zeros(layout.size)
    for (park, carrier), block in layout.blocks.items():
        row = f"{park}:balance_{carrier}" if park else caps.carbon_name
        if row in problem.constraints:
            price[block] = -duals[problem.constraints[row].slice]
    return price


@dataclass(frozen=True, slots=True)
class _Recovered:
    """The master's solution and every building's polished schedule."""

    problem_costs: dict[str, float]
    accounts: dict[str, float]
    schedule: pd.DataFrame
    scalars: dict[str, float]
    finals: dict[str, Final]
    size: tuple[int, int, int]


def _shortfalls(problem: Problem, x: Array) -> dict[str, float]:
    """The master's shortfall and excess columns in use, by `<column>@<step>`."""
    short = {}
    for name, var in problem.variables.items():
        if ":shortfall_" in name or name.endswith(":excess"):
            values = x[var.slice]
            for step in np.flatnonzero(values > TOLERANCE_KW):
                short[f"{name}@{step}"] = float(values[step])
    return short


def _fixed(problem: Problem, pattern: Pattern | None) -> Problem:
    """The problem with the heads' binaries fixed at `pattern` (unchanged without one)."""
    if not pattern:
        return problem
    lower, upper = problem.col_lower.copy(), problem.col_upper.copy()
    for name, values in pattern.items():
        if name in problem.variables:
            block = problem.variables[name].slice
            lower[block] = upper[block] = values
    return replace(problem, col_lower=lower, col_upper=upper)


def _recover(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, layout: Layout, runner: Runner,
    pool: dict[str, list[Answer]], master: _Master, seed: _Seed, options: DecomposeOptions,
) -> _Recovered:  # fmt: skip
    """The master with buildings that have binaries picked one answer each, and every
    building's combined schedule; a row it cannot meet raises UncombinedError (the plan then
    asks the centralized solve)."""
    limit = options.time_limit_s
    if master.short:
        raise _short_error(master.short, table, caps)
    problem, x = master.problem, master.x
    if problem.n_binaries > sum(v.size for v in seed.pattern.values()):
        solution = solve(problem, time_limit_s=limit or MASTER_TIME_LIMIT_S,
                         mip_gap=options.tolerance)  # fmt: skip
        if solution.x is None:
            raise NoSolutionError(f"no schedule: the master stopped ({solution.status})")
        x = solution.x
        if _shortfalls(problem, x):
            raise _short_error(_shortfalls(problem, x), table, caps)
    solutions = _combination(replace(master, x=x), layout, pool, lambda a: a.x)
    finals = {
        k: f
        for k, f in runner.ask("combined", np.zeros(layout.size), None, solutions, limit).items()
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
    found: _Recovered, bound: float, iterations: int, converged: bool, workers: int,
    build_seconds: float, seconds: float, deadline: float | None, caps: Caps,
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
    if converged:
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
        iterations=iterations,
        workers=workers,
        build_seconds=build_seconds,
        solve_seconds=seconds - build_seconds,
        variables=int(size[0]),
        binaries=int(size[1]),
        constraints=int(size[2]),
        carbon_cap_kg=caps.carbon_cap_kg,
    )
