"""A city plan decomposed by park: each park solved whole, the city's caps priced across them.

A park's connection limit, demand charge and balances tie all its buildings in every step; a
city's caps (a demand-response event's import cap, a carbon cap) tie the parks in a few rows
only. So a city whose parks each fit a centralized solve is decomposed at the parks: every park
is one subproblem, its whole model held warm in a worker (`parkwork`), and holds its own limit
and balances exactly in every answer. Dantzig–Wolfe rounds price the city's rows, on the
*channels* of each park (its import in each capped step, its CO₂):

1. Relaxed rounds: each park answers first with its LP relaxation at no price (its own
   optimum; Σ of them is a lower bound), then with its LP relaxation within a *share* of the
   caps (`sharecuts`: the shares come from a cutting-plane master whose optimum is the bound
   and whose duals are the prices). A share changes only bounds, so a park's warm LP re-solves
   without re-timing every building behind its connection, as a new price would. A master LP
   mixes each park's answers (convex weights) under the caps, with priced slack, until it is
   within the tolerance of the bound.
2. Binaries: a park whose answers in the mix are schedules with the same binaries (a park
   without on/off units, or whose relaxation came out whole) keeps them; any other solves a
   MILP once at the last prices, at its home, over its buildings with binaries and its head,
   the other buildings held at its relaxed mix (`fix_near`: the size of those buildings, not
   of the park), and keeps its binaries; its answer, a schedule, joins the pool. Where that has
   no schedule, the park's whole MILP decides, on whichever worker is free.
3. Fixed rounds: with those binaries held, each park is an LP again whose every answer is a
   schedule of it; rounds go on (warm) until the master is within the tolerance of the bound,
   or within it of what these binaries can reach (none if, with the MILPs' answers, it is).
4. Final: each park is solved once more with its channels within its share of the master's mix.
   The shares sum to within the caps, so every city row holds exactly; the mix of a park's
   answers is a schedule of it (its binaries held, the rest an LP), so the plan costs at most
   the master's. Only when no mix of the fixed answers meets the caps do the parks get their
   shares of the relaxed mix with their binaries free: a park whose binaries make it exceed its
   share keeps what it needs and the others give it up in proportion to their use (`_repair`);
   what no park can give up raises UncombinedError (the plan then falls back to the
   centralized solve).

Without city caps the parks are independent: one whole-park solve each is the plan.
"""

from __future__ import annotations

import pickle
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linprog

from energyhub.optimize.coupling import Caps
from energyhub.optimize.decompose import Decomposed, DecomposeOptions
from energyhub.optimize.errors import NoSolutionError, PlanError, UncombinedError
from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.master import SHORTFALL_CNY_PER_KW
from energyhub.optimize.model import Array, Status
from energyhub.optimize.parkwork import (
    SLACK_TOLERANCE,
    Fixing,
    ParkAnswer,
    ParkFinal,
    ParkRecipe,
    final_park,
    fix_near,
    fix_park,
    fixed_answer,
    inputs_for,
    mixed_park,
    relaxed_answer,
    share_answer,
)
from energyhub.optimize.runner import failure_error, open_executor
from energyhub.optimize.scope import Scope
from energyhub.optimize.sharecuts import ShareCuts, proportional
from energyhub.optimize.subproblem import Failure, Final

WEIGHT_TOLERANCE = 1e-9
"""A master weight below this is no part of the mix."""

Limits = tuple[float | None, float | None]
"""A solve's time limit (s) and relative MIP gap."""


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


def _kept(answers: Sequence[ParkAnswer], weights: Array) -> list[tuple[int, float]]:
    """A park's mix as `(serial, weight)` of the answers its home keeps, the weights summing to
    one; empty if the mix uses an answer that is not kept (a MILP's)."""
    used = [(a.serial, float(v)) for a, v in zip(answers, weights, strict=True)
            if v > WEIGHT_TOLERANCE]  # fmt: skip
    if not used or any(serial < 0 for serial, _ in used):
        return []
    total = sum(v for _, v in used)
    return [(serial, v / total) for serial, v in used]


def _homes(size: dict[str, int], executors: int) -> dict[str, int]:
    """Each park's executor for the whole run: the largest parks (nodes + assets) first, each
    to the least loaded executor, so the workers' rounds take about as long."""
    load = [0] * executors
    home = {}
    for key in sorted(size, key=lambda k: -size[k]):
        i = load.index(min(load))
        home[key], load[i] = i, load[i] + size[key]
    return {key: home[key] for key in size}


class _Runner:
    """One task per park and round, each park always on its own executor (warm there)."""

    def __init__(self, executors: Sequence[Executor], recipes: Sequence[ParkRecipe]) -> None:
        self.executors, self.token = executors, uuid.uuid4().hex
        self.caps_name = recipes[0].caps.carbon_name if recipes else ""
        self.raw = {r.key: pickle.dumps(r) for r in recipes}
        self.size = {r.key: len(r.scope.nodes) + sum(1 for _ in r.scope.assets()) for r in recipes}
        self.home = _homes(self.size, len(executors))

    def _submit(self, key: str, task: Callable[..., object], *args: object) -> Future[Any]:
        return self.executors[self.home[key]].submit(task, self.token, self.raw[key], *args)

    def relaxed(self, price: Array, time_limit_s: float | None) -> dict[str, ParkAnswer]:
        """Every park's LP relaxation at `price`."""
        return self._answers({k: self._submit(k, relaxed_answer, price, time_limit_s)
                              for k in self.raw})  # fmt: skip

    def shared(self, shares: dict[str, Array], time_limit_s: float | None) -> dict[str, ParkAnswer]:
        """Every park's LP with its channels within its share."""
        return self._answers({k: self._submit(k, share_answer, shares[k], time_limit_s)
                              for k in self.raw})  # fmt: skip

    def fixed(
        self, price: Array, fixings: dict[str, Fixing], time_limit_s: float | None
    ) -> dict[str, ParkAnswer]:
        """Every park's LP with its binaries held at `price`."""
        return self._answers({k: self._submit(k, fixed_answer, price, fixings[k], time_limit_s)
                              for k in self.raw})  # fmt: skip

    def milps(
        self, keys: Sequence[str], price: Array, limits: Limits,
        near: dict[str, list[tuple[int, float]]],
    ) -> dict[str, ParkAnswer]:  # fmt: skip
        """The binaries of `keys` at `price`: first each park's MILP with its buildings without
        binaries held at `near` (its mix of its kept answers), at its home; the whole MILP of
        each park that leaves no schedule, on whichever executor is free (the largest first):
        it starts from scratch, so where it runs does not change it."""
        futures = {k: self._submit(k, fix_near, price, limits, near[k]) for k in keys if near[k]}
        out = {key: reply for key, future in futures.items()
               if (reply := future.result()) is not None}  # fmt: skip
        queue = sorted((k for k in keys if k not in out), key=lambda k: -self.size[k])
        idle = list(range(len(self.executors)))
        running: dict[Future[Any], tuple[str, int]] = {}
        while queue or running:
            while queue and idle:
                key, i = queue.pop(0), idle.pop(0)
                future = self.executors[i].submit(fix_park, self.token, self.raw[key], price,
                                                  limits)  # fmt: skip
                running[future] = (key, i)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                key, i = running.pop(future)
                idle.append(i)
                out |= self._answers({key: future})
        return {k: out[k] for k in keys}

    def _answers(self, futures: dict[str, Future[Any]]) -> dict[str, ParkAnswer]:
        out = {}
        for key, future in futures.items():
            reply = future.result()
            if isinstance(reply, Failure):
                raise failure_error(reply)
            out[key] = reply
        return out

    def mixed(
        self, weights: dict[str, Array], pool: dict[str, list[ParkAnswer]]
    ) -> dict[str, ParkFinal]:
        """Each park's mix of its answers, where its home kept them and they make a schedule."""
        futures = {}
        for key, w in weights.items():
            normal = _kept(pool[key], w)
            if normal:
                futures[key] = self._submit(key, mixed_park, normal)
        found = {key: future.result() for key, future in futures.items()}
        return {key: final for key, final in found.items() if final is not None}

    def finals(
        self, shares: dict[str, Array] | None, limits: Limits, only: set[str] | None = None,
        free: bool = False,
    ) -> dict[str, ParkFinal]:  # fmt: skip
        futures = {k: self._submit(k, final_park, None if shares is None else shares[k], limits,
                                   free)
                   for k in self.raw if only is None or k in only}  # fmt: skip
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


class _Rounds:
    """The price rounds: the pool of every park's answers, the bound, the master's mix."""

    def __init__(
        self, runner: _Runner, rhs: Array, options: DecomposeOptions, deadline: float | None
    ) -> None:
        self.runner, self.rhs, self.options, self.deadline = runner, rhs, options, deadline
        self.limits: Limits = (options.time_limit_s, options.tolerance)
        self.pool: dict[str, list[ParkAnswer]] = {k: [] for k in runner.raw}
        self.bound, self.iterations = -np.inf, 0

    def gap(self, mix: _Mix) -> float:
        return np.inf if mix.short else (mix.value - self.bound) / max(abs(mix.value), 1e-9)

    def over(self) -> bool:
        late = self.deadline is not None and time.perf_counter() > self.deadline
        return late or self.iterations >= self.options.max_iterations

    def _add(self, replies: dict[str, ParkAnswer], price: Array) -> float:
        """Pool a round's answers; Σ values − price·caps (a bound if the values are optima)."""
        self.iterations += 1
        for key, answer in replies.items():
            self.pool[key].append(answer)
        return sum(a.value for a in replies.values()) - float(price @ self.rhs)

    def relaxed(self) -> _Mix:
        """The parks' LP relaxations: first each at no price (its own optimum; their sum is a
        bound), then within shares of the caps (`sharecuts`) until the master's mix of every
        answer is within the tolerance of the cuts' bound. The mix's prices are the cuts'."""
        price = np.zeros(self.rhs.size)
        limit = self.options.time_limit_s
        replies = self.runner.relaxed(price, limit)
        self.bound = max(self.bound, self._add(replies, price))
        mix = _master(self.pool, self.rhs)
        own = {k: a.q for k, a in replies.items()}
        cuts = ShareCuts.of(list(self.pool), self.rhs, own)
        cuts.add_price({k: a.value for k, a in replies.items()}, price)
        shares = proportional(own, self.rhs)
        while self.gap(mix) > self.options.tolerance and not self.over():
            replies = self.runner.shared(shares, limit)
            self.iterations += 1
            for key, answer in replies.items():
                self.pool[key].append(answer)
            cuts.add_shares(shares, {k: a.value for k, a in replies.items()},
                            {k: a.slope for k, a in replies.items()})  # fmt: skip
            bound, price = cuts.bound()
            self.bound = max(self.bound, bound)
            mix = _master(self.pool, self.rhs)
            mix = _Mix(mix.value, mix.weights, price, mix.short)
            shares = cuts.next_shares()
        return mix

    def fix(self, mix: _Mix) -> dict[str, Fixing]:
        """Each park's binaries: those its mix shares, else its MILP's at the mix's prices;
        the pool keeps the answers that have them, the MILP's a schedule among them."""
        fixings: dict[str, Fixing] = {}
        for key, weights in mix.weights.items():
            used = {a.fixing for a, w in zip(self.pool[key], weights, strict=True)
                    if w > WEIGHT_TOLERANCE}  # fmt: skip
            if len(used) == 1 and None not in used:
                fixings[key] = next(f for f in used if f is not None)
        rest = [k for k in self.pool if k not in fixings]
        near = {k: _kept(self.pool[k], mix.weights[k]) for k in rest}
        milps = self.runner.milps(rest, mix.price, self.limits, near)
        for key, answer in milps.items():
            if answer.fixing is None:  # a MILP's answer always has its binaries
                raise PlanError(f"park {key}: its MILP answered without its binaries")
            fixings[key] = answer.fixing
        self.pool = {k: [a for a in v if a.fixing == fixings[k]] for k, v in self.pool.items()}
        for key, answer in milps.items():
            self.pool[key].append(answer)
        return fixings

    def fixed(self, fixings: dict[str, Fixing], price: Array) -> _Mix:
        """Rounds with the binaries held (the first at `price`, the MILPs' prices, if a park
        has no answer with its binaries yet) until the master is within the tolerance of the
        bound, or of what these binaries can reach (the fixed LPs' own Lagrangian bound)."""
        reach = -np.inf
        mix = _master(self.pool, self.rhs) if all(self.pool.values()) else None
        while mix is None or not self._done(mix, reach):
            price = price if mix is None else mix.price
            replies = self.runner.fixed(price, fixings, self.options.time_limit_s)
            reach = max(reach, self._add(replies, price))
            mix = _master(self.pool, self.rhs)
        return mix

    def _done(self, mix: _Mix, reach: float) -> bool:
        near = (mix.value - reach) / max(abs(mix.value), 1e-9) <= self.options.tolerance
        return self.gap(mix) <= self.options.tolerance or self.over() or (near and not mix.short)

    def shares(self, mix: _Mix) -> dict[str, Array]:
        return {k: w @ np.array([a.q for a in self.pool[k]]) for k, w in mix.weights.items()}


def decompose_by_park(
    scopes: Sequence[Scope], table: PlanInputs, caps: Caps, options: DecomposeOptions
) -> Decomposed:
    """A city plan from whole-park subproblems priced on the city's caps."""
    started = time.perf_counter()
    recipes = [ParkRecipe(s.id, s, inputs_for(table, s), caps) for s in scopes]
    rhs = cap_vector(caps)
    deadline = None if options.time_limit_s is None else started + options.time_limit_s
    limits: Limits = (options.time_limit_s, options.tolerance)  # each park within the gap
    with open_executor(options.executor, options.workers) as (executors, workers):
        runner = _Runner(executors, recipes)
        if not rhs.size:
            finals = runner.finals(None, limits)
            return _assemble([f.final for f in finals.values()], table, caps, -np.inf, 1, True,
                             workers, time.perf_counter() - started, deadline)  # fmt: skip
        rounds = _Rounds(runner, rhs, options, deadline)
        mix = rounds.relaxed()
        if mix.short:
            raise UncombinedError(
                "infeasible: no mix of the parks' answers meets the city's caps",
                constraint=caps.carbon_name, node=None, carrier=None, assets=[], step=0, ts="",
            )  # fmt: skip
        relaxed_shares = rounds.shares(mix)
        mix = rounds.fixed(rounds.fix(mix), mix.price)
        if mix.short:  # no mix of the fixed answers meets the caps: the binaries go free
            finals = runner.finals(relaxed_shares, limits, free=True)
            finals |= _repair(runner, finals, relaxed_shares, rhs, limits, free=True)
        else:
            finals = runner.mixed(mix.weights, rounds.pool)
            shares = rounds.shares(mix)
            finals |= runner.finals(shares, limits, {k for k in shares if k not in finals})
            finals |= _repair(runner, finals, shares, rhs, limits)
    return _assemble([finals[r.key].final for r in recipes], table, caps, rounds.bound,
                     rounds.iterations, rounds.gap(mix) <= options.tolerance, workers,
                     time.perf_counter() - started, deadline)  # fmt: skip


def _repair(
    runner: _Runner, finals: dict[str, ParkFinal], shares: dict[str, Array], rhs: Array,
    limits: Limits, free: bool = False,
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
    again = runner.finals(tighter, limits, set(kept), free) if kept else {}
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
