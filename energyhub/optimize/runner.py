"""Where the decomposition's subproblems run: recipes, batches, and the executor they go to.

Subproblems are submitted to `concurrent.futures.Executor`s: by default one single-process pool
per worker, each batch of buildings always to the same one, so a worker keeps its buildings'
models loaded and warm (from the previous solve's basis) for the whole run and builds no other;
or, when ENERGYHUB_DASK_SCHEDULER names a dask.distributed scheduler, one executor per dask
worker, pinned to it, so a batch stays where its models are warm and plans stay reproducible
(or the caller's own executor). A batch holds buildings of one park (or one whole park:
`byparks`); a worker that cannot plan a building answers with a Failure naming it, and a worker
that dies is reported with the buildings it held.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import replace

from energyhub.config import load_settings
from energyhub.optimize.coupling import Caps
from energyhub.optimize.errors import InfeasiblePlanError, NoSolutionError, PlanError
from energyhub.optimize.inputs import SITE_COLUMNS, PlanInputs
from energyhub.optimize.master import Layout
from energyhub.optimize.model import Array
from energyhub.optimize.scope import Scope
from energyhub.optimize.subproblem import Answer, Ask, Failure, Final, Recipe, answer_batch
from energyhub.sites import CHP, GasBoiler

BATCHES_PER_WORKER = 3
"""Tasks per worker and round: a few, so a slow batch does not idle the other workers."""


def _burns_gas(scope: Scope) -> bool:
    return any(isinstance(a, CHP | GasBoiler) for a in scope.nodes[0].assets)


def _inputs_for(table: PlanInputs, scope: Scope) -> PlanInputs:
    """Only the columns one building's subproblem reads."""
    node = scope.nodes[0]
    owners = {node.id, *(a.id for a in node.assets)}
    keep = {
        k: v
        for k, v in table.columns.items()
        if k in SITE_COLUMNS or k.rpartition(":")[0] in owners
    }
    return replace(table, columns=keep)


def recipes(scopes: Sequence[Scope], table: PlanInputs, caps: Caps) -> list[Recipe]:
    """One recipe per building of every park in the plan."""
    out = []
    for park in scopes:
        slim = park.park.model_copy(update={"buildings": [], "assets": []})
        for node in park.nodes[1:]:
            scope = Scope("building", node.id, slim, (node,), park.grid, park.carbon, park.gas)
            co2 = caps.carbon_cap_kg is not None and _burns_gas(scope)
            out.append(
                Recipe(node.id, park.id, scope, park.nodes[0], _inputs_for(table, scope), co2)
            )
    return out


@contextmanager
def open_executor(
    executor: Executor | None, workers: int | None
) -> Iterator[tuple[list[Executor], int]]:
    """The caller's executor, a dask.distributed client's (ENERGYHUB_DASK_SCHEDULER), or one
    single-process pool per worker."""
    if executor is not None:
        yield [executor], workers or 1
        return
    address = load_settings().dask_scheduler
    if address:
        from distributed import Client

        with Client(address) as client:  # type: ignore[no-untyped-call]
            threads = sum(client.nthreads().values())
            pinned: list[Executor] = [
                client.get_executor(workers=[worker], allow_other_workers=False)
                for worker in sorted(client.scheduler_info()["workers"])
            ]
            yield pinned or [client.get_executor()], workers or max(threads, 1)
        return
    workers = workers or os.cpu_count() or 1
    context = multiprocessing.get_context("fork" if os.name == "posix" else None)
    with ExitStack() as stack:
        pools: list[Executor] = [
            stack.enter_context(ProcessPoolExecutor(max_workers=1, mp_context=context))
            for _ in range(workers)
        ]
        yield pools, workers


class Runner:
    """Sends rounds of asks in batches of one park's buildings, batch i always to executor
    i mod their number."""

    def __init__(
        self, executors: Sequence[Executor], workers: int, items: Sequence[Recipe], layout: Layout
    ) -> None:
        self.executors, self.layout, self.token = executors, layout, uuid.uuid4().hex
        self.raw = {r.key: pickle.dumps(r) for r in items}
        per_batch = max(1, -(-len(items) // (workers * BATCHES_PER_WORKER)))
        self.batches: list[list[Recipe]] = []
        for park in dict.fromkeys(r.park for r in items):
            mine = [r for r in items if r.park == park]
            self.batches += [mine[i : i + per_batch] for i in range(0, len(mine), per_batch)]

    def ask(
        self, mode: str, price: Array, rho: Array | None, target: dict[str, Array] | None,
        time_limit_s: float | None,
    ) -> dict[str, Answer | Final]:  # fmt: skip
        """Every building's answer; a Failure raises, naming the building."""
        futures = []
        for i, batch in enumerate(self.batches):
            asks = [self._ask(r.key, mode, price, rho, target) for r in batch]
            executor = self.executors[i % len(self.executors)]
            futures.append(executor.submit(answer_batch, self.token, asks, time_limit_s))
        out: dict[str, Answer | Final] = {}
        for future, batch in zip(futures, self.batches, strict=True):
            try:
                replies = future.result()
            except BrokenProcessPool:
                names = ", ".join(r.key for r in batch)
                raise PlanError(f"a worker died while solving buildings {names}") from None
            for reply in replies:
                if isinstance(reply, Failure):
                    raise failure_error(reply)
                out[reply.key] = reply
        return out

    def _ask(
        self, key: str, mode: str, price: Array, rho: Array | None, target: dict[str, Array] | None
    ) -> Ask:
        idx = self.layout.entries[key]
        return Ask(
            self.raw[key],
            mode,  # type: ignore[arg-type]
            price[idx],
            None if rho is None else rho[idx],
            None if target is None else target[key],
        )


def failure_error(failure: Failure) -> PlanError:
    """Infeasible where a subproblem's own model is; no schedule where its solver stopped first
    (e.g. at the time limit), as the centralized solve tells the two apart."""
    if failure.solver_status != "infeasible":
        return NoSolutionError(
            f"no schedule: {failure.message} before it found a feasible one (a longer "
            "--time-limit-s may find one)"
        )
    return InfeasiblePlanError(
        f"infeasible: {failure.message}",
        constraint=failure.constraint or failure.key,
        node=failure.key,
        carrier=None,
        assets=failure.assets,
        step=failure.step,
        ts=failure.ts,
    )


def answers(replies: dict[str, Answer | Final]) -> dict[str, Answer]:
    """The priced answers of a round (a round of fixed asks returns Finals)."""
    return {k: a for k, a in replies.items() if isinstance(a, Answer)}
