"""Plans solved in the background: the API answers 202 at once and the plan row tracks the job.

A solve runs in a worker thread (HiGHS and numpy release the GIL for most of it); at most
`api_plan_workers` run at once and the rest wait. Plans still pending when the API stops are
marked failed then; those of a process that died are marked failed by the next start once
older than STALE_PENDING, so none stays pending forever.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
from psycopg_pool import AsyncConnectionPool

from energyhub.api.metrics import ApiMetrics
from energyhub.errors import EnergyhubError
from energyhub.optimize import Plan, plan
from energyhub.optimize.frontier import as_plan, frontier
from energyhub.plans.operations import save_inputs
from energyhub.plans.policy import plan_by_policy
from energyhub.plans.store import mark_failed, save_result
from energyhub.sites import SiteFile

log = logging.getLogger(__name__)

STALE_PENDING = timedelta(hours=6)
"""A pending plan this old belongs to no live process (solves are limited to minutes)."""


@dataclass(frozen=True, slots=True)
class PlanJob:
    plan_id: int
    level: str
    site_id: str
    inputs: pd.DataFrame
    time_limit_s: float
    frontier: int | None = None
    site: SiteFile | None = None
    """The site file to solve with when it differs from the API's (a building's carbon priced
    from its allowance position, energyhub/carbon/plan_price.py)."""
    warnings: tuple[str, ...] = ()
    """Lines stored with the plan's result (what the pricing decided)."""


def solve(job: PlanJob, default_site: SiteFile) -> Plan:
    """The plan; with the site's carbon.plan_policy the plan the policy asks for, as the
    scheduler plans it (with a frontier, its point picked by the policy). Without a policy the
    cost-optimal one (with a frontier, its point 0)."""
    site, inputs, limit = job.site or default_site, job.inputs, job.time_limit_s
    level, site_id, policy = job.level, job.site_id, site.city.carbon.plan_policy
    if policy is not None:
        return plan_by_policy(
            site, inputs, level=level, site_id=site_id, policy=policy,
            frontier_points=job.frontier, time_limit_s=limit,
        )  # fmt: skip
    if job.frontier is None:
        return plan(site, inputs, level=level, site_id=site_id, time_limit_s=limit)
    found = frontier(
        site, inputs, level=level, site_id=site_id, points=job.frontier, time_limit_s=limit
    )
    return as_plan(found, 0)


class PlanRunner:
    """Runs plan jobs with bounded concurrency; `close` cancels what still runs."""

    def __init__(
        self, pool: AsyncConnectionPool, site: SiteFile, workers: int, metrics: ApiMetrics
    ) -> None:
        self._pool = pool
        self._site = site
        self._slots = asyncio.Semaphore(workers)
        self._metrics = metrics
        self._tasks: dict[asyncio.Task[None], int] = {}

    def submit(self, job: PlanJob) -> None:
        task = asyncio.create_task(self._run(job), name=f"plan-{job.plan_id}")
        self._tasks[task] = job.plan_id
        self._metrics.plans_running.inc()
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._metrics.plans_running.dec()

    async def _run(self, job: PlanJob) -> None:
        """Solve and store; every failure ends as a failed plan with its reason, never a crash."""
        async with self._slots:
            try:
                result = await asyncio.to_thread(solve, job, self._site)
                async with self._pool.connection() as conn:
                    await save_result(conn, job.plan_id, result, list(job.warnings))
                    if job.frontier is not None:  # kept to re-solve a point an operator picks
                        await save_inputs(conn, job.plan_id, job.inputs)
                self._metrics.plans_finished.labels("solved").inc()
            except EnergyhubError as exc:
                await self._fail(job.plan_id, str(exc))
            except Exception:
                log.exception("plan %d: unexpected error while solving", job.plan_id)
                await self._fail(job.plan_id, "internal error while solving; see the server log")

    async def _fail(self, plan_id: int, reason: str) -> None:
        self._metrics.plans_finished.labels("failed").inc()
        try:
            async with self._pool.connection() as conn:
                await mark_failed(conn, plan_id, reason)
        except Exception:
            log.exception("plan %d: could not record its failure (%s)", plan_id, reason)

    async def wait_idle(self) -> None:
        """Until every submitted plan has finished (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel unfinished solves and mark their plans failed."""
        unfinished = dict(self._tasks)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        for plan_id in unfinished.values():
            await self._fail(plan_id, "interrupted: the API stopped before the plan was solved")
