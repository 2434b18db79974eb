"""A worker's side of a city decomposed by park: each park's model held warm, its answers.

A park's model (`levels.build_scopes`) is built once per worker and kept for the whole run
(keyed by the run's token), its LP held in HiGHS so that each new price re-solves from the
previous basis. The park answers prices in three ways:

- `relaxed_answer`: its LP relaxation at the prices. Cheap (a warm LP) and the optimum of a
  relaxation, so the answers' values give the plan's lower bound; an answer whose binaries come
  out whole (and whose stores do not flow both ways) is a schedule of the park as well.
- `fix_near`: for a park whose relaxed answers are no schedule, what fixes its binaries
  (`Fixing`): its MILP at the prices with every building without binaries held at the mix of
  its relaxed answers, so the MILP is the size of the buildings with binaries, not of the park.
  Runs where the answers are kept. `fix_park`, the whole MILP from scratch (any worker may run
  it), where the held buildings leave it no schedule.
- `fixed_answer`: its LP with the binaries of a `Fixing` held, warm: a schedule of the park.
- `share_answer`: its LP relaxation at no price with its channels within a share of the caps,
  warm (only row bounds change), and the slope of its cost in the share: a cut.

`final_park` solves it once more with its channels bounded by its share of the city's caps.
"""

from __future__ import annotations

import pickle
import threading
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from energyhub.optimize.coupling import Caps
from energyhub.optimize.diagnose import explain_infeasible
from energyhub.optimize.highs import WarmModel
from energyhub.optimize.inputs import SITE_COLUMNS, PlanInputs
from energyhub.optimize.levels import Built, build_scopes
from energyhub.optimize.master import SHORTFALL_CNY_PER_KW
from energyhub.optimize.model import Array, Problem, evaluate, extract, scalars, solve
from energyhub.optimize.network import Binaries
from energyhub.optimize.scope import Scope
from energyhub.optimize.subproblem import Failure, Final

SLACK_TOLERANCE = 1e-6
"""An excess over a share below this is solver noise, not a share the park cannot meet."""

INTEGRAL_TOLERANCE = 1e-6
"""A relaxed binary this close to 0 or 1 is taken as whole."""


@dataclass(frozen=True, slots=True)
class ParkRecipe:
    """What a worker needs to build one park's whole model and its channel rows."""

    key: str
    scope: Scope
    inputs: PlanInputs
    caps: Caps


@dataclass(frozen=True, slots=True)
class Fixing:
    """A park's binaries: the policy its model is built with and every binary's value."""

    binaries: Binaries
    values: bytes


@dataclass(frozen=True, slots=True)
class ParkAnswer:
    """A park's channels, own cost and cost + price·channels at the prices it was asked."""

    key: str
    q: Array
    cost: float
    value: float
    """cost + price·channels: the optimum of what was solved (−inf if it stopped early)."""
    fixing: Fixing | None
    """The answer's binaries if it is a schedule of the park, else None."""
    serial: int = -1
    """Where its home worker keeps the answer's schedule (−1: not kept, a MILP's)."""
    slope: Array | None = None
    """For an answer within a share (`share_answer`): d value / d share, each entry ≤ 0."""


@dataclass
class _ParkModel:
    built: Built
    warm: WarmModel
    """The LP: the relaxation, or with the binaries of `fixed` held once that is set."""
    channels: sp.csr_array
    offset: Array
    rows: Array
    """The rows that bound the channels by a share (unbounded while the park answers prices)."""
    fixed: Fixing | None = None
    bounds: tuple[Array, Array] | None = None
    xs: list[Array] = field(default_factory=list)
    """Every answer's schedule, by serial: a final mix of them needs no solve."""
    shared: bool = False
    """Whether `rows` hold a share now."""


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


def inputs_for(table: PlanInputs, scope: Scope) -> PlanInputs:
    """Only the columns one park's model reads."""
    owners = {node.id for node in scope.nodes} | {a.id for _, a in scope.assets()}
    keep = {k: v for k, v in table.columns.items()
            if k in SITE_COLUMNS or k.rpartition(":")[0] in owners}  # fmt: skip
    return replace(table, columns=keep)


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
    k = channels.shape[0]
    b = _bounded(p, channels, np.full(k, np.inf))  # the share rows, open until asked
    warm = WarmModel(b.c, b.a, (b.col_lower, b.col_upper), (b.row_lower, b.row_upper))
    return _ParkModel(built, warm, channels, offset, np.arange(p.a.shape[0], b.a.shape[0]))


def _fixing(built: Built, x: Array) -> Fixing | None:
    """The binaries of `x` if it is a schedule of the park: whole, no store flowing both ways."""
    binary = built.problem.integrality.astype(bool)
    values = np.round(x[binary])
    if np.abs(x[binary] - values).max(initial=0.0) > INTEGRAL_TOLERANCE:
        return None
    if built.rebinarize(x) is not None:
        return None
    return Fixing(built.ctx.binaries, values.astype(np.uint8).tobytes())


def _answer(
    recipe: ParkRecipe, model: _ParkModel, price: Array, time_limit_s: float | None
) -> ParkAnswer | Failure:
    """The warm LP of `model` at `price`."""
    problem = model.built.problem
    if model.shared:
        model.warm.set_row_upper(model.rows, np.full(model.rows.size, np.inf))
        model.shared = False
    costs = problem.c + model.channels.T @ price
    model.warm.set_costs(np.arange(problem.n_variables), costs)
    result = model.warm.solve(time_limit_s)
    if result.x is None:
        return _no_answer(recipe, model, result.status, time_limit_s)
    x = result.x[: problem.n_variables]
    value = float(costs @ x) + problem.offset if result.status == "optimal" else -np.inf
    fixing = model.fixed if model.fixed is not None else _fixing(model.built, x)
    q = model.channels @ x + model.offset
    model.xs.append(x)
    cost = float(problem.c @ x) + problem.offset
    return ParkAnswer(recipe.key, q, cost, value, fixing, len(model.xs) - 1)


def _no_answer(
    recipe: ParkRecipe, model: _ParkModel, status: str, time_limit_s: float | None
) -> Failure:
    """A warm LP that came back without a schedule: an infeasible park named by what it
    breaks, else the solver's status."""
    if status == "infeasible":
        return _failure(recipe, model.built, time_limit_s)
    return Failure(recipe.key, f"park {recipe.key}: no answer ({status})", solver_status=status)


def share_answer(
    token: str, raw: bytes, share: Array, time_limit_s: float | None
) -> ParkAnswer | Failure:
    """The park's LP at no price with its channels within `share` (exceeded only at the
    shortfall price), warm: only bounds change between shares, so the basis stays dual feasible
    and the re-solve pivots out what the new share cuts off, not the whole park. Its `value`
    (cost + shortfall) and `slope` are a cut of the park's cost as a function of its share."""
    recipe, model = _model(token, raw)
    problem = model.built.problem
    n = problem.n_variables
    model.warm.set_costs(np.arange(n), problem.c)
    model.warm.set_row_upper(model.rows, share - model.offset)
    model.shared = True
    result = model.warm.solve(time_limit_s)
    if result.x is None:
        return _no_answer(recipe, model, result.status, time_limit_s)
    x, excess = result.x[:n], result.x[n:]
    cost = float(problem.c @ x) + problem.offset
    optimal = result.status == "optimal"
    value = cost + SHORTFALL_CNY_PER_KW * float(excess.sum()) if optimal else -np.inf
    slope = model.warm.row_duals(model.rows) if optimal else None
    fixing = model.fixed if model.fixed is not None else _fixing(model.built, x)
    q = model.channels @ x + model.offset
    model.xs.append(x)
    return ParkAnswer(recipe.key, q, cost, value, fixing, len(model.xs) - 1, slope)


def relaxed_answer(
    token: str, raw: bytes, price: Array, time_limit_s: float | None
) -> ParkAnswer | Failure:
    """The park's LP relaxation at `price`, warm from its previous answer."""
    recipe, model = _model(token, raw)
    return _answer(recipe, model, price, time_limit_s)


def fix_park(
    token: str, raw: bytes, price: Array, limits: tuple[float | None, float | None]
) -> ParkAnswer | Failure:
    """The park's MILP at `price` (stores whose flows clash get binaries, as centrally): an
    answer whose `fixing` holds its binaries."""
    recipe, model = _model(token, raw)
    time_limit_s, mip_gap = limits
    built = model.built
    while True:
        p = built.problem
        channels = park_channels(recipe, p)[0]
        costs = p.c + channels.T @ price
        solution = solve(replace(p, c=costs), time_limit_s=time_limit_s, mip_gap=mip_gap)
        if solution.x is None:
            if solution.status != "infeasible":
                return Failure(
                    recipe.key, f"park {recipe.key}: no answer ({solution.status})",
                    solver_status=solution.status,
                )  # fmt: skip
            return _failure(recipe, built, time_limit_s)
        again = built.rebinarize(solution.x)
        if again is None:
            break
        built = build_scopes((recipe.scope,), recipe.inputs, again)
    x = solution.x
    q = channels @ x + model.offset
    cost, value = float(p.c @ x) + p.offset, float(costs @ x) + p.offset
    return ParkAnswer(recipe.key, q, cost, value, _milp_fixing(built, x))


def _milp_fixing(built: Built, x: Array) -> Fixing:
    """The binaries of a MILP's answer `x` (rounded: whole within the solver's tolerance)."""
    binary = built.problem.integrality.astype(bool)
    return Fixing(built.ctx.binaries, np.round(x[binary]).astype(np.uint8).tobytes())


def fix_near(
    token: str, raw: bytes, price: Array, limits: tuple[float | None, float | None],
    weights: list[tuple[int, float]],
) -> ParkAnswer | None:  # fmt: skip
    """The park's binaries from a MILP the size of its buildings with binaries: every building
    without them (and every column of theirs) held at the mix of the park's relaxed answers
    (`(serial, weight)`, kept here), the park head and the buildings with binaries free. A
    fixing for the fixed rounds, which then re-optimize the whole park around it, and a
    schedule of the park (kept here) but not a bound (its value is −inf). None where the held
    buildings leave it no schedule (the whole MILP, `fix_park`, then decides)."""
    recipe, model = _model(token, raw)
    time_limit_s, mip_gap = limits
    n = model.built.problem.n_variables
    if not weights or any(model.xs[serial].size != n for serial, _ in weights):
        return None
    mixed = np.sum([w * model.xs[serial] for serial, w in weights], axis=0)
    near = {name: mixed[var.slice] for name, var in model.built.problem.variables.items()}
    built = model.built
    while True:
        p = built.problem
        held, values = _held(recipe.scope, p, near)
        lower, upper = p.col_lower.copy(), p.col_upper.copy()
        lower[held] = upper[held] = np.clip(values, p.col_lower[held], p.col_upper[held])
        channels = park_channels(recipe, p)[0]
        costs = p.c + channels.T @ price
        solution = solve(replace(p, c=costs, col_lower=lower, col_upper=upper),
                         time_limit_s=time_limit_s, mip_gap=mip_gap)  # fmt: skip
        if solution.x is None:
            return None
        again = built.rebinarize(solution.x)
        if again is None:
            break
        built = build_scopes((recipe.scope,), recipe.inputs, again)
    x = solution.x
    fixing = _milp_fixing(built, x)
    q = channels @ x + model.offset
    serial = -1
    if built is model.built:  # a schedule of the model kept here: a mix may use it
        model.xs.append(x)
        serial = len(model.xs) - 1
    return ParkAnswer(recipe.key, q, float(p.c @ x) + p.offset, -np.inf, fixing, serial)


def _held(scope: Scope, problem: Problem, near: dict[str, Array]) -> tuple[Array, Array]:
    """The columns `fix_near` holds and their values: every block of a building without
    binaries (a block's owner is the asset or node its name starts with) that `near` has."""
    owner = {a.id: node.id for node, a in scope.assets()}
    owner |= {node.id: node.id for node in scope.nodes}
    blocks = problem.variables.items()
    free = {owner.get(name.rpartition(":")[0]) for name, var in blocks
            if problem.integrality[var.slice].any()}  # fmt: skip
    free |= {scope.grid_node, None}
    held = [(var, near[name]) for name, var in blocks
            if owner.get(name.rpartition(":")[0]) not in free
            and name in near and near[name].size == var.size]  # fmt: skip
    if not held:
        return np.zeros(0, np.int64), np.zeros(0)
    cols = np.concatenate([np.arange(var.start, var.start + var.size) for var, _ in held])
    return cols, np.concatenate([values for _, values in held])


def fixed_answer(
    token: str, raw: bytes, price: Array, fixing: Fixing, time_limit_s: float | None
) -> ParkAnswer | Failure:
    """The park's LP with the binaries of `fixing` held, at `price`, warm."""
    recipe, model = _model(token, raw)
    if model.fixed != fixing:
        model = _fix(recipe, model, fixing)
        with _lock:
            _cache[(token, recipe.key)] = model
    return _answer(recipe, model, price, time_limit_s)


def _fix(recipe: ParkRecipe, model: _ParkModel, fixing: Fixing) -> _ParkModel:
    """`model` with the binaries of `fixing` held (rebuilt if its policy has more of them)."""
    if fixing.binaries != model.built.ctx.binaries:
        built = build_scopes((recipe.scope,), recipe.inputs, fixing.binaries)
        model = replace(_park_model(recipe, built), xs=model.xs)
    p = model.built.problem
    binary = np.flatnonzero(p.integrality)
    values = np.frombuffer(fixing.values, np.uint8).astype(np.float64)
    lower, upper = p.col_lower.copy(), p.col_upper.copy()
    lower[binary] = upper[binary] = values
    model.warm.set_bounds(binary, values, values)
    return replace(model, fixed=fixing, bounds=(lower, upper))


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
    token: str, raw: bytes, share: Array | None, limits: tuple[float | None, float | None],
    free: bool = False,
) -> ParkFinal | Failure | str:  # fmt: skip
    """The park solved whole with its channels within `share` — exceeded only where its
    binaries leave no other way, at the shortfall price — with its fixed binaries held (unless
    `free`, or they cannot meet the share), else binaries where the lazy policy finds
    simultaneous flows, as the centralized solve does; or what breaks it."""
    recipe, model = _model(token, raw)
    time_limit_s, mip_gap = limits
    built, upper = model.built, None if share is None else share - model.offset
    bounds = None if free else model.bounds
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
    return _final(recipe, built, x[:n], model.offset, x[n:])


def mixed_park(token: str, raw: bytes, weights: list[tuple[int, float]]) -> ParkFinal | None:
    """The park's schedule as the mix of its kept answers (`(serial, weight)`): a schedule of
    it where they share its binaries (the rest is an LP); None where the mix has a store flow
    both ways in a step (then the park is solved within its share instead)."""
    recipe, model = _model(token, raw)
    n = model.built.problem.n_variables
    if not weights or any(model.xs[serial].size != n for serial, _ in weights):
        return None
    x = np.sum([w * model.xs[serial] for serial, w in weights], axis=0)
    if model.built.rebinarize(x) is not None:
        return None
    return _final(recipe, model.built, x, model.offset, np.zeros(model.channels.shape[0]))


def _final(recipe: ParkRecipe, built: Built, x: Array, offset: Array, excess: Array) -> ParkFinal:
    problem = built.problem
    q = park_channels(recipe, problem)[0] @ x + offset
    frame: pd.DataFrame = extract(problem, x, recipe.inputs.index)
    return ParkFinal(Final(
        recipe.key,
        {str(c): frame[c].to_numpy() for c in frame.columns},
        evaluate(problem, x, "costs"),
        evaluate(problem, x, "accounts"),
        scalars(problem, x, recipe.inputs.n),
        (problem.n_variables, problem.n_binaries, int(problem.a.shape[0])),
    ), q, excess)  # fmt: skip
