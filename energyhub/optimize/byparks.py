"""A city plan decomposed by park: each park solved whole, the city's caps priced across them.

A park's connection limit, demand charge and balances tie all its buildings in every step; a
city's caps (a demand-response event's import cap, a carbon cap) tie the parks in a few rows
only. So a city whose parks each fit a centralized solve is decomposed at the parks: every park
is one subproblem, its whole model (`levels.build_scopes`) held warm in a worker, and holds its
own limit and balances exactly in every answer. Dantzig–Wolfe rounds price the city's rows:

1. Each park answers the prices on its *channels* (its import in each capped step, its CO₂)
   with its optimum of cost + price·channels: a schedule of the park itself, binaries and all
   (stores whose flows clash get theirs, as centrally). Σ answers − price·caps is a lower
   bound of the plan (Lagrangian); the best one is kept.
2. The master LP mixes each park's answers (convex weights) under the caps, with priced slack;
   its duals are the next prices. Rounds stop once the master is within the tolerance of the
   bound, or at the iteration or time limit.
3. Final: each park is solved once more, whole, with its channels bounded by its share of the
   master's mix. The shares sum to within the caps, so every city row holds exactly; for a
   park without binaries its mix is feasible for that solve, so the plan costs at most the
   master's. A park whose binaries make it exceed its share (a mix of its answers need not be
   one) keeps what it needs and the others give it up in proportion to their use (`_repair`);
   what no park can give up raises UncombinedError (the plan then falls back to the
   centralized solve).

Without city caps the parks are independent: one round of whole-park solves is the plan.
"""

from __future__ import annotations

import pickle
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linprog

from energyhub.optimize.coupling import Caps
from energyhub.optimize.decompose import Decomposed, DecomposeOptions
from energyhub.optimize.diagnose import explain_infeasible
from energyhub.optimize.errors import NoSolutionError, PlanError, UncombinedError
from energyhub.optimize.highs import WarmModel
from energyhub.optimize.inputs import SITE_COLUMNS, PlanInputs
from energyhub.optimize.levels import Built, build_scopes
from energyhub.optimize.master import SHORTFALL_CNY_PER_KW
from energyhub.optimize.model import Array, Problem, Status, evaluate, extract, scalars, solve
from energyhub.optimize.runner import failure_error, open_executor
from energyhub.optimize.scope import Scope
from energyhub.optimize.subproblem import Failure, Final

SLACK_TOLERANCE = 1e-6
"""Master slack below this is solver noise, not a cap the answers cannot meet."""


@dataclass(frozen=True, slots=True)
class ParkRecipe:
    """What a worker needs to build one park's whole model and its channel rows."""

    key: str
    scope: Scope
    inputs: PlanInputs
    caps: Caps


@dataclass(frozen=True, slots=True)
class ParkAnswer:
    """A park's channels, own cost and cost + price·channels at the prices it was asked."""

    key: str
    q: Array
    cost: float
    floor: float
    """The park's LP relaxation's optimum of cost + price·channels: a bound on any answer's."""


@dataclass
class _ParkModel:
    built: Built
    warm: WarmModel
    channels: sp.csr_array
    offset: Array
    relaxed: WarmModel | None = None
    """The park's LP relaxation, warm: its answers give the plan's lower bound."""
    bounds: tuple[Array, Array] | None = None
    """Column bounds with the binaries fixed at the park's first answer (then `warm` is that
    LP): later answers re-solve warm as LPs and are schedules of the park all the same."""


_cache: dict[tuple[str, str], _ParkModel] = {}
_lock = threading.Lock()


def park_channels(recipe: ParkRecipe, problem: Problem) -> tuple[sp.csr_array, Array]:
    """Rows q = C·x + q0: the park's import in each step of each import cap, then its CO₂."""
    n = problem.n_variables
    rows: list[sp.csr_array] = []
    offsets: list[Array] = []
    imports = problem.variables[f"{recipe.scope.grid_node}:import_kw"]
    for cap in recipe.caps.imports:
        cols = imports.start + np.flatnonzero(cap.steps)
        rows.append(
            sp.csr_array((np.ones(cols.size), (np.arange(cols.size), cols)), (cols.size, n))
        )
        offsets.append(np.zeros(cols.size))
    if recipe.caps.carbon_cap_kg is not None:
        accounts = [v for k, v in problem.accounts.items() if k.startswith("co2_kg:")]
        rows.append(sp.csr_array(sum((m for m, _ in accounts), sp.csr_array((1, n)))))
        offsets.append(np.array([float(sum(c for _, c in accounts))]))
    if not rows:
        return sp.csr_array((0, n)), np.zeros(0)
    return sp.csr_array(sp.vstack(rows)), np.concatenate(offsets)


def _model(token: str, raw: bytes) -> tuple[ParkRecipe, _ParkModel]:
    recipe: ParkRecipe = pickle.loads(raw)  # noqa: S301 - our own recipe, pickled by the coordinator
    with _lock:
        for stale in [k for k in _cache if k[0] != token]:
            del _cache[stale]
        found = _cache.get((token, recipe.key))
    if found is None:
        found = _park_model(recipe, build_scopes((recipe.scope,), recipe.inputs))
        with _lock:
            _cache[(token, recipe.key)] = found
    return recipe, found


def _park_model(recipe: ParkRecipe, built: Built) -> _ParkModel:
    p = built.problem
    channels, offset = park_channels(recipe, p)
    warm = WarmModel(p.c, p.a, (p.col_lower, p.col_upper), (p.row_lower, p.row_upper))
    return _ParkModel(built, warm, channels, offset)


def _fix_binaries(
    recipe: ParkRecipe, model: _ParkModel, price: Array, time_limit_s: float | None
) -> _ParkModel | Failure:
    """The park's MILP at `price` (stores whose flows clash get binaries, as centrally), and
    from it the model with those binaries fixed (`bounds`) and the LP relaxation beside it."""
    built = model.built
    while True:
        p = built.problem
        channels = park_channels(recipe, p)[0]
        solution = solve(replace(p, c=p.c + channels.T @ price), time_limit_s=time_limit_s)
        if solution.x is None:
            if solution.status != "infeasible":
                return Failure(recipe.key, f"park {recipe.key}: no answer ({solution.status})")
            return _failure(recipe, built, time_limit_s)
        again = built.rebinarize(solution.x)
        if again is None:
            break
        built = build_scopes((recipe.scope,), recipe.inputs, again)
    binary = p.integrality.astype(bool)
    lower, upper = p.col_lower.copy(), p.col_upper.copy()
    lower[binary] = upper[binary] = np.round(solution.x[binary])
    relaxed = WarmModel(p.c, p.a, (p.col_lower, p.col_upper), (p.row_lower, p.row_upper))
    fixed = WarmModel(p.c, p.a, (lower, upper), (p.row_lower, p.row_upper))
    return _ParkModel(built, fixed, channels, model.offset, relaxed, (lower, upper))


def answer_park(
    token: str, raw: bytes, price: Array, time_limit_s: float | None, refix: bool
) -> ParkAnswer | Failure:
    """A park's priced answer, a schedule of the park itself: its first with its binaries (a
    MILP), the later ones as warm LPs with those binaries fixed (again a MILP if a store's flows
    clash, or when `refix` asks to fix them anew at these prices); with the LP relaxation's
    value at the same prices for the plan's bound."""
    recipe, model = _model(token, raw)
    if refix:
        model = replace(model, bounds=None)
    while True:
        if model.bounds is None or model.relaxed is None:
            found = _fix_binaries(recipe, model, price, time_limit_s)
            if isinstance(found, Failure):
                return found
            model = found
            with _lock:
                _cache[(token, recipe.key)] = model
        problem = model.built.problem
        costs = problem.c + model.channels.T @ price
        model.warm.set_costs(np.arange(problem.n_variables), costs)
        result = model.warm.solve(time_limit_s)
        if result.x is None:
            return Failure(recipe.key, f"park {recipe.key}: no answer ({result.status})")
        again = model.built.rebinarize(result.x)
        if again is None:
            break
        model = _park_model(recipe, build_scopes((recipe.scope,), recipe.inputs, again))
    if model.relaxed is None:  # set with the bounds by `_fix_binaries`
        return Failure(recipe.key, f"park {recipe.key}: no relaxation to bound it")
    model.relaxed.set_costs(np.arange(problem.n_variables), costs)
    relaxed = model.relaxed.solve(time_limit_s)
    floor = float(costs @ relaxed.x) if relaxed.x is not None else -np.inf
    x = result.x
    q = model.channels @ x + model.offset
    cost = float(problem.c @ x)
    return ParkAnswer(recipe.key, q, cost, floor)


def _failure(recipe: ParkRecipe, built: Built, time_limit_s: float | None) -> Failure:
    """The park's own infeasibility, named as the centralized solve names it."""
    error = explain_infeasible(built, (recipe.scope,), recipe.inputs, time_limit_s)
    message = str(error).removeprefix("infeasible: ")
    return Failure(recipe.key, f"park {recipe.key}: {message}", error.constraint, error.step,
                   error.ts, error.assets)  # fmt: skip


def _bounded(problem: Problem, channels: sp.csr_array, upper: Array) -> Problem:
    """The problem with its channel rows bounded above by `upper` (rows appended), each
    exceedable by an excess column (appended) at the master's shortfall price."""
    k = upper.size
    return replace(
        problem,
        c=np.concatenate([problem.c, np.full(k, SHORTFALL_CNY_PER_KW)]),
        a=sp.csr_array(
            sp.block_array([[problem.a, None], [channels, -sp.identity(k, format="csr")]])
        ),
        row_lower=np.concatenate([problem.row_lower, np.full(k, -np.inf)]),
        row_upper=np.concatenate([problem.row_upper, upper]),
        col_lower=np.concatenate([problem.col_lower, np.zeros(k)]),
        col_upper=np.concatenate([problem.col_upper, np.full(k, np.inf)]),
        integrality=np.concatenate([problem.integrality, np.zeros(k, np.uint8)]),
    )


@dataclass(frozen=True, slots=True)
class ParkFinal:
    """A park's final schedule, its channels and how far they exceed its share."""

    final: Final
    q: Array
    excess: Array


def final_park(
    token: str, raw: bytes, share: Array | None, limits: tuple[float | None, float | None]
) -> ParkFinal | Failure | str:
    """The park solved whole with its channels within `share` — exceeded only where its
    binaries leave no other way, at the shortfall price — with binaries where the lazy policy
    finds simultaneous flows, as the centralized solve does; or what breaks it."""
    recipe, model = _model(token, raw)
    time_limit_s, mip_gap = limits
    built, upper = model.built, None if share is None else share - model.offset
    bounds = model.bounds  # the binaries of its answers, where it answered prices
    while True:
        channels = park_channels(recipe, built.problem)[0]
        whole = built.problem
        if bounds is not None:
            whole = replace(whole, col_lower=bounds[0], col_upper=bounds[1])
        problem = whole if upper is None else _bounded(whole, channels, upper)
        solution = solve(problem, time_limit_s=time_limit_s, mip_gap=mip_gap)
        x = solution.x
        if x is None and solution.status == "infeasible":  # its shares are elastic
            return _failure(recipe, built, time_limit_s)
        if x is None:
            return f"park {recipe.key}: no schedule within its share of the city's caps " \
                f"({solution.status})"  # fmt: skip
        again = built.rebinarize(x[: built.problem.n_variables])
        short = x[built.problem.n_variables :].max(initial=0.0) > SLACK_TOLERANCE
        if again is None and not (short and bounds is not None):
            break
        if again is not None:
            built = build_scopes((recipe.scope,), recipe.inputs, again)
        bounds = None  # its binaries free again: the share may need others
    n = built.problem.n_variables
    excess, x = x[n:], x[:n]
    problem = built.problem
    q = park_channels(recipe, problem)[0] @ x + model.offset
    frame: pd.DataFrame = extract(problem, x, recipe.inputs.index)
    return ParkFinal(Final(
        recipe.key,
        {str(c): frame[c].to_numpy() for c in frame.columns},
        evaluate(problem, x, "costs"),
        evaluate(problem, x, "accounts"),
        scalars(problem, x, recipe.inputs.n),
        (problem.n_variables, problem.n_binaries, int(problem.a.shape[0])),
    ), q, excess)  # fmt: skip


def _inputs_for(table: PlanInputs, scope: Scope) -> PlanInputs:
    """Only the columns one park's model reads."""
    owners = {node.id for node in scope.nodes} | {a.id for _, a in scope.assets()}
    keep = {k: v for k, v in table.columns.items()
            if k in SITE_COLUMNS or k.rpartition(":")[0] in owners}  # fmt: skip
    return replace(table, columns=keep)


def cap_vector(caps: Caps) -> Array:
    """The right-hand sides of the city's rows, in channel order."""
    parts = [np.full(int(cap.steps.sum()), cap.import_max_kw) for cap in caps.imports]
    if caps.carbon_cap_kg is not None:
        parts.append(np.array([caps.carbon_cap_kg]))
    return np.concatenate(parts) if parts else np.zeros(0)


@dataclass(frozen=True, slots=True)
class _Mix:
    value: float
    weights: dict[str, Array]
    price: Array
    short: bool


def _master(pool: dict[str, list[ParkAnswer]], caps: Array) -> _Mix:
    """The parks' answers mixed under the caps (priced slack keeps it solvable)."""
    keys = list(pool)
    cost = np.concatenate([[a.cost for a in pool[k]] for k in keys])
    q = np.vstack([a.q for k in keys for a in pool[k]]).T  # rows × columns
    rows, k_total = caps.size, cost.size
    a_ub = sp.hstack([sp.csr_array(q), -sp.identity(rows, format="csr")])
    sizes = [len(pool[k]) for k in keys]
    owner = np.repeat(np.arange(len(keys)), sizes)
    convexity = sp.csr_array((np.ones(k_total), (owner, np.arange(k_total))), (len(keys), k_total))
    a_eq = sp.hstack([convexity, sp.csr_array((len(keys), rows))])
    result = linprog(
        np.concatenate([cost, np.full(rows, SHORTFALL_CNY_PER_KW)]),
        A_ub=sp.csr_array(a_ub), b_ub=caps, A_eq=sp.csr_array(a_eq), b_eq=np.ones(len(keys)),
        bounds=(0, None), method="highs",
    )  # fmt: skip
    if result.status != 0:
        raise NoSolutionError(f"no schedule: the city master LP failed ({result.message})")
    x = np.asarray(result.x)
    splits = np.cumsum(sizes)[:-1]
    weights = dict(zip(keys, np.split(x[:k_total], splits), strict=True))
    price = -np.asarray(result.ineqlin.marginals, dtype=np.float64)
    short = bool(np.any(x[k_total:] > SLACK_TOLERANCE))
    return _Mix(float(cost @ x[:k_total]), weights, np.maximum(price, 0.0), short)


class _Runner:
    """One task per park and round, park i always on executor i mod their number (warm)."""

    def __init__(self, executors: Sequence[Executor], recipes: Sequence[ParkRecipe]) -> None:
        self.executors, self.token = executors, uuid.uuid4().hex
        self.caps_name = recipes[0].caps.carbon_name if recipes else ""
        self.raw = {r.key: pickle.dumps(r) for r in recipes}

    def _executor(self, i: int) -> Executor:
        return self.executors[i % len(self.executors)]

    def prices(
        self, price: Array, time_limit_s: float | None, refix: bool
    ) -> dict[str, ParkAnswer]:
        futures = {k: self._executor(i).submit(answer_park, self.token, raw, price, time_limit_s,
                                               refix)
                   for i, (k, raw) in enumerate(self.raw.items())}  # fmt: skip
        out = {}
        for key, future in futures.items():
            reply = future.result()
            if isinstance(reply, Failure):
                raise failure_error(reply)
            out[key] = reply
        return out

    def finals(
        self, shares: dict[str, Array] | None, limits: tuple[float | None, float | None],
        only: set[str] | None = None,
    ) -> dict[str, ParkFinal]:  # fmt: skip
        futures = {
            k: self._executor(i).submit(final_park, self.token, raw,
                                        None if shares is None else shares[k], limits)
            for i, (k, raw) in enumerate(self.raw.items()) if only is None or k in only
        }  # fmt: skip
        out = {}
        for key, future in futures.items():
            reply = future.result()
            if isinstance(reply, Failure):
                raise failure_error(reply)
            if isinstance(reply, str):
                raise UncombinedError(
                    f"infeasible: {reply}", constraint=key, node=key, carrier=None, assets=[],
                    step=0, ts="",
                )  # fmt: skip
            out[key] = reply
        return out


def decompose_by_park(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, options: DecomposeOptions
) -> Decomposed:
    """A city plan from whole-park subproblems priced on the city's caps."""
    started = time.perf_counter()
    recipes = [ParkRecipe(s.id, s, _inputs_for(table, s), caps) for s in scopes]
    rhs = cap_vector(caps)
    deadline = None if options.time_limit_s is None else started + options.time_limit_s
    limits = (options.time_limit_s, options.tolerance)  # each park within the plan's own gap
    iterations, bound, converged = 0, -np.inf, True
    with open_executor(options.executor, options.workers) as (executors, workers):
        runner = _Runner(executors, recipes)
        shares: dict[str, Array] | None = None
        if rhs.size:
            price = np.zeros(rhs.size)
            pool: dict[str, list[ParkAnswer]] = {r.key: [] for r in recipes}
            while True:
                # the parks' binaries are fixed anew in rounds 1, 2, 4, 8, …: as prices move
                refix = iterations & (iterations + 1) == 0  # (counted before this round)
                replies = runner.prices(price, options.time_limit_s, refix)
                iterations += 1
                bound = max(bound, sum(a.floor for a in replies.values()) - float(price @ rhs))
                for key, answer in replies.items():
                    pool[key].append(answer)
                mix = _master(pool, rhs)
                gap = np.inf if mix.short else (mix.value - bound) / max(abs(mix.value), 1e-9)
                converged = gap <= options.tolerance
                late = deadline is not None and time.perf_counter() > deadline
                if converged or iterations >= options.max_iterations or late:
                    break
                price = mix.price
            if mix.short:
                raise UncombinedError(
                    "infeasible: no mix of the parks' answers meets the city's caps",
                    constraint=caps.carbon_name, node=None, carrier=None, assets=[], step=0,
                    ts="",
                )  # fmt: skip
            shares = {k: w @ np.array([a.q for a in pool[k]]) for k, w in mix.weights.items()}
        finals = runner.finals(shares, limits)
        if shares is not None:
            finals |= _repair(runner, finals, shares, rhs, limits)
    if not rhs.size:
        iterations = 1
    return _assemble([f.final for f in finals.values()], table, caps, bound, iterations,
                     converged, workers, time.perf_counter() - started, deadline)  # fmt: skip


def _repair(
    runner: _Runner, finals: dict[str, ParkFinal], shares: dict[str, Array], rhs: Array,
    limits: tuple[float | None, float | None],
) -> dict[str, ParkFinal]:  # fmt: skip
    """Where a park's binaries made it exceed its share (its share came from a relaxation),
    the parks that kept theirs give up the excess, in proportion to what they use, and are
    solved again; what the caps still cannot hold raises UncombinedError."""
    over = [k for k, f in finals.items() if f.excess.max(initial=0.0) > SLACK_TOLERANCE]
    if not over:
        return {}
    kept = [k for k in finals if k not in over]
    excess = np.clip(sum(finals[k].q for k in finals) - rhs, 0.0, None)
    used = sum((np.clip(finals[k].q, 0.0, None) for k in kept), np.zeros(rhs.size))
    scale = np.where(used > 0, excess / np.where(used > 0, used, 1.0), 0.0)
    tighter = {k: shares[k] - scale * np.clip(finals[k].q, 0.0, None) for k in kept}
    again = runner.finals(tighter, limits, set(kept)) if kept else {}
    total = sum(f.q for f in ({**finals, **again}).values())
    if np.any(total > rhs + 1e-6 * np.maximum(1.0, np.abs(rhs))) or any(
        f.excess.max(initial=0.0) > SLACK_TOLERANCE for f in again.values()
    ):
        raise UncombinedError(
            f"infeasible: parks {', '.join(over)} exceed their shares of the city's caps with "
            "their binaries, and the other parks cannot make up for it",
            constraint=runner.caps_name, node=None, carrier=None, assets=[], step=0, ts="",
        )  # fmt: skip
    return again


def _assemble(
    finals: list[Final], table: PlanInputs, caps: Caps, bound: float, iterations: int,
    converged: bool, workers: int, seconds: float, deadline: float | None,
) -> Decomposed:  # fmt: skip
    costs: dict[str, float] = {}
    accounts: dict[str, float] = {}
    extra: dict[str, float] = {}
    size = np.zeros(3, np.int64)
    for final in finals:
        for term, value in final.costs.items():
            costs[term] = costs.get(term, 0.0) + value
        for name, value in final.accounts.items():
            accounts[name] = accounts.get(name, 0.0) + value
        extra.update(final.scalars)
        size += np.array(final.size)
    schedule = pd.concat([pd.DataFrame(f.schedule, index=table.index) for f in finals], axis=1)
    objective = sum(v for k, v in costs.items() if k != "tie_break")
    if not np.isfinite(bound):
        bound = objective  # every park solved whole and alone: the plan is their optima
    gap = max(0.0, (objective - bound) / max(abs(objective), 1e-9))
    status: Status = "optimal"
    if not converged:
        late = deadline is not None and time.perf_counter() > deadline
        status = "time_limit" if late else "iteration_limit"
    if not finals:
        raise PlanError("--method decomposed: the plan has no parks")
    return Decomposed(
        status=status,
        cost_cny=costs,
        co2_kg_by_carrier={k.removeprefix("co2_kg:"): v for k, v in accounts.items()},
        schedule=schedule,
        scalars=extra,
        lower_bound_cny=bound,
        gap=gap,
        iterations=iterations,
        workers=workers,
        build_seconds=0.0,
        solve_seconds=seconds,
        variables=int(size[0]),
        binaries=int(size[1]),
        constraints=int(size[2]),
        carbon_cap_kg=caps.carbon_cap_kg,
    )
