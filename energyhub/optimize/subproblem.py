"""Building subproblems on the executor's workers: build once, answer prices warm, polish.

A task carries pickled recipes (built once by the coordinator) and what to answer. Each worker
process keeps the models it has built for the current run, so after the first iteration a task
only moves prices and targets; HiGHS starts every solve from the previous basis. Every answer is
a plain value: a building that cannot be planned comes back as a Failure naming it (and its
broken balance or asset), never as an exception lost in a worker.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from energyhub.optimize.diagnose import explain_infeasible
from energyhub.optimize.errors import PlanError
from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.levels import Built, build_building
from energyhub.optimize.model import Array, evaluate, extract, scalars
from energyhub.optimize.network import CARRIERS, Carrier
from energyhub.optimize.prox import ProxModel, Response
from energyhub.optimize.scope import Node, Scope

SCALE_FLOOR_KW = 1.0
"""Smallest proximal scale of a channel (a building with no demand of a carrier still gets one)."""


@dataclass(frozen=True, slots=True)
class Recipe:
    """All a worker needs to build one building's subproblem."""

    key: str
    park: str
    scope: Scope
    head: Node
    inputs: PlanInputs
    co2: bool
    """Whether the building's CO₂ is a coupling channel (a carbon cap is set and it burns gas)."""


@dataclass(frozen=True, slots=True)
class Ask:
    """One question to one subproblem: prices (and a proximal target), or a solution of it to
    report (`combined`: the master's combination of its answers)."""

    recipe: bytes
    mode: Literal["prox", "price", "combined"]
    price: Array
    rho: Array | None = None
    target: Array | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """Channel values, own cost and own cost + price·q of one response, and the solution."""

    key: str
    q: Array
    cost: float
    value: float
    exact: bool
    """Whether the response honours the subproblem's binaries (always, since every answer
    solves the subproblem itself; the master takes only these)."""
    integer: bool
    """Whether the subproblem has binaries (then proposals are picked, not mixed)."""
    x: Array
    """The subproblem's solution: the master's combination of these is the building's plan."""


@dataclass(frozen=True, slots=True)
class Final:
    """A polished building schedule with its cost terms and emissions, by name."""

    key: str
    schedule: dict[str, Array]
    costs: dict[str, float]
    accounts: dict[str, float]
    scalars: dict[str, float]
    size: tuple[int, int, int]
    """Variables, binaries and rows of the subproblem."""


@dataclass(frozen=True, slots=True)
class Failure:
    """A subproblem with no answer: the building, what broke and where."""

    key: str
    message: str
    constraint: str = ""
    step: int = 0
    ts: str = ""
    assets: list[str] = field(default_factory=list)
    solver_status: str = "infeasible"
    """Anything but "infeasible": the solver stopped (e.g. its time limit) without an answer."""


@dataclass
class _Model:
    """A built subproblem held by a worker: channel layout and its warm HiGHS model."""

    recipe: Recipe
    built: Built
    prox: ProxModel


_cache: dict[tuple[str, str], _Model] = {}
_lock = threading.Lock()


def channels(
    recipe: Recipe, built: Built, feeds: dict[Carrier, range]
) -> tuple[sp.csr_array, Array]:
    """Rows q = C·x + q0: minus each feed (what the building draws from its park), then CO₂."""
    problem = built.problem
    rows, offsets = [], []
    for carrier in CARRIERS:
        if carrier in feeds:
            cols = np.asarray(feeds[carrier])
            size = cols.size
            rows.append(
                sp.csr_array((-np.ones(size), (np.arange(size), cols)), (size, problem.n_variables))
            )
            offsets.append(np.zeros(size))
    if recipe.co2:
        matrix, const = _co2_row(built)
        rows.append(matrix)
        offsets.append(np.array([const]))
    return sp.csr_array(sp.vstack(rows)), np.concatenate(offsets)


def _co2_row(built: Built) -> tuple[sp.csr_array, float]:
    """The building's total CO₂ as one row over its variables."""
    accounts = [v for k, v in built.problem.accounts.items() if k.startswith("co2_kg:")]
    n = built.problem.n_variables
    matrix = sum((m for m, _ in accounts), sp.csr_array((1, n)))
    return sp.csr_array(matrix), float(sum(c for _, c in accounts))


def scales(recipe: Recipe, feeds: dict[Carrier, range], co2_kg: float) -> Array:
    """The proximal scale of each channel entry: twice the building's largest demand (kW)."""
    demands = [v for k, v in recipe.inputs.columns.items() if k.startswith(f"{recipe.key}:")]
    peak = max([SCALE_FLOOR_KW, *(float(np.max(np.abs(v))) for v in demands)])
    parts = [np.full(len(feeds[c]), 2.0 * peak) for c in CARRIERS if c in feeds]
    if recipe.co2:
        parts.append(np.array([max(2.0 * co2_kg, SCALE_FLOOR_KW)]))
    return np.concatenate(parts)


def _build(recipe: Recipe) -> _Model:
    built, feeds = build_building(recipe.scope, recipe.head, recipe.inputs)
    spans = {c: range(v.start, v.start + v.size) for c, v in feeds.items()}
    matrix, offset = channels(recipe, built, spans)
    co2_cap = _co2_capacity(built, recipe)
    scale = scales(recipe, spans, co2_cap)
    return _Model(recipe, built, ProxModel(built.problem, matrix, offset, scale))


def _co2_capacity(built: Built, recipe: Recipe) -> float:
    """CO₂ of burning gas at every gas column's bound over the horizon (0 without gas)."""
    if not recipe.co2:
        return 0.0
    matrix, _ = _co2_row(built)
    upper = np.where(np.isfinite(built.problem.col_upper), built.problem.col_upper, 0.0)
    return float(np.abs(matrix @ upper)[0])


def _model(token: str, raw: bytes) -> tuple[_Model, bool]:
    """The worker's model of a recipe; True if it was built just now."""
    recipe: Recipe = pickle.loads(raw)  # noqa: S301 - our own recipe, pickled by the coordinator
    key = (token, recipe.key)
    with _lock:
        found = _cache.get(key)
        if found is None:
            for stale in [k for k in _cache if k[0] != token]:
                del _cache[stale]
    if found is not None:
        return found, False
    found = _build(recipe)
    with _lock:
        _cache[key] = found
    return found, True


def answer_batch(
    token: str, asks: Sequence[Ask], time_limit_s: float | None
) -> list[Answer | Final | Failure]:
    """Answer every ask of a batch (one park's buildings) in the worker that runs it.

    A model built in this batch starts from the basis of the last one of the same shape the
    batch answered (a building like it: 9 ms instead of 18 ms for the first solve of a building
    day at 15 minutes); only the batch's own order decides which, so plans stay reproducible."""
    out: list[Answer | Final | Failure] = []
    donors: dict[tuple[int, ...], ProxModel] = {}
    for ask in asks:
        model, new = _model(token, ask.recipe)
        shape = model.prox.shape
        if new and shape in donors:
            model.prox.start_from(donors[shape])
        donors[shape] = model.prox
        try:
            out.append(_answer(model, ask, time_limit_s))
        except PlanError as exc:
            out.append(Failure(model.recipe.key, str(exc)))
    return out


def _answer(model: _Model, ask: Ask, time_limit_s: float | None) -> Answer | Final | Failure:
    key = model.recipe.key
    if ask.mode == "combined":
        if ask.target is None:
            raise PlanError(f"{key}: a combined answer needs the solution")
        return _final(model, ask.target)
    reply = model.prox.respond(ask.price, ask.rho, ask.target, time_limit_s)
    if reply.x is None or reply.q is None:
        return _failure(model, reply)
    integer = model.built.problem.n_binaries > 0
    value = reply.cost + float(ask.price @ reply.q)
    return Answer(key, reply.q, reply.cost, value, True, integer, reply.x)


def _failure(model: _Model, reply: Response) -> Failure:
    """Name the building and, when its own model is infeasible, the balance or asset that breaks."""
    recipe = model.recipe
    if reply.status != "infeasible":
        return Failure(
            recipe.key,
            f"building {recipe.key}: no answer (solver status {reply.status})",
            solver_status=reply.status,
        )
    error = explain_infeasible(model.built, (recipe.scope,), recipe.inputs, None)
    return Failure(
        recipe.key,
        f"building {recipe.key} (subproblem of park {recipe.park}): "
        f"{str(error).removeprefix('infeasible: ')}",
        error.constraint,
        error.step,
        error.ts,
        error.assets,
    )


def _final(model: _Model, x: Array) -> Final:
    problem = model.built.problem
    frame: pd.DataFrame = extract(problem, x, model.recipe.inputs.index)
    return Final(
        model.recipe.key,
        {str(c): frame[c].to_numpy() for c in frame.columns},
        evaluate(problem, x, "costs"),
        evaluate(problem, x, "accounts"),
        scalars(problem, x, model.recipe.inputs.n),
        (problem.n_variables, problem.n_binaries, int(problem.a.shape[0])),
    )
