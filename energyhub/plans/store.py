"""The plan lifecycle in `plans` and `plan_steps`; every transition checks the current status.

pending (being solved) → draft (awaits an operator) or approved (site policy `auto`) or failed;
draft → approved or rejected; approved → active or rejected; activating a plan supersedes the
site's active one; draft, approved and active plans expire once their horizon has passed.
Each transition is one conditional UPDATE, so two operators racing cannot both win; every status
change, of one plan or of many, goes through `change_status`, which checks it against `LIFECYCLE`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from psycopg import AsyncConnection, sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from energyhub.optimize import Plan
from energyhub.plans.errors import PlanNotFoundError, PlanStateError
from energyhub.sites import PlanApproval

PlanStatus = Literal[
    "pending", "draft", "approved", "active", "superseded", "expired", "rejected", "failed"
]
PLAN_STATUSES: tuple[PlanStatus, ...] = (
    "pending", "draft", "approved", "active", "superseded", "expired", "rejected", "failed",
)  # fmt: skip
WITH_SCHEDULE: tuple[PlanStatus, ...] = (
    "draft", "approved", "active", "superseded", "expired", "rejected",
)  # fmt: skip
"""The statuses of a plan that was solved: it has a schedule to read and to compare."""
LIFECYCLE: dict[PlanStatus, tuple[PlanStatus, ...]] = {
    "pending": (),
    "draft": ("pending",),
    "approved": ("pending", "draft"),
    "failed": ("pending",),
    "rejected": ("draft", "approved"),
    "active": ("approved",),
    "superseded": ("draft", "approved", "active"),
    "expired": ("draft", "approved", "active"),
}
"""The statuses each status may be entered from (pending only by `create_pending`'s INSERT)."""
AUTO_APPROVER = "policy:auto"
"""`approved_by` of a plan approved by its site's `plan_approval: auto` policy."""

COLUMNS = sql.SQL(
    "id, level, site_id, status, horizon_start, horizon_end, step_s, objective_cny, "
    "cost_terms_cny, co2_kg, baseline, solver, inputs_ref, inputs_hash, warnings, error, "
    "created_by, created_at, updated_at, approved_by, approved_at, activated_at, rejected_by, "
    "rejected_at, rejected_reason, superseded_by"
)

POLICY = """
WITH RECURSIVE up (id, parent_id, policy, depth) AS (
    SELECT id, parent_id, attributes->>'plan_approval', 0 FROM sites WHERE id = %s
    UNION ALL
    SELECT s.id, s.parent_id, s.attributes->>'plan_approval', up.depth + 1
    FROM sites AS s JOIN up ON s.id = up.parent_id
)
SELECT policy FROM up WHERE policy IS NOT NULL ORDER BY depth LIMIT 1"""


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """One row of `plans`."""

    id: int
    level: str
    site_id: str
    status: PlanStatus
    horizon_start: datetime
    horizon_end: datetime
    step_s: int
    objective_cny: float | None
    cost_terms_cny: dict[str, float]
    co2_kg: float | None
    baseline: dict[str, Any]
    solver: dict[str, Any]
    inputs_ref: str | None
    inputs_hash: str | None
    warnings: list[str]
    error: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    activated_at: datetime | None
    rejected_by: str | None
    rejected_at: datetime | None
    rejected_reason: str | None
    superseded_by: int | None


def inputs_hash(inputs: pd.DataFrame) -> str:
    """SHA-256 of the inputs as canonical CSV (sorted columns, full float precision)."""
    frame = inputs.reindex(sorted(inputs.columns), axis=1)
    text = frame.to_csv(float_format="%.17g", date_format="%Y-%m-%dT%H:%M:%S%z")
    return hashlib.sha256(text.encode()).hexdigest()


async def approval_policy(conn: AsyncConnection, site_id: str) -> PlanApproval:
    """The site's `plan_approval`, inherited from the nearest ancestor that sets it."""
    cur = await conn.execute(POLICY, (site_id,))
    row = await cur.fetchone()
    return "auto" if row and row[0] == "auto" else "operator"


async def create_pending(
    conn: AsyncConnection,
    *,
    level: str,
    site_id: str,
    horizon_start: datetime,
    horizon_end: datetime,
    step_s: int,
    inputs_ref: str | None = None,
    inputs_hash: str | None = None,
    created_by: str | None = None,
) -> PlanRecord:
    """A plan row for a solve about to start (status pending)."""
    cur = conn.cursor(row_factory=class_row(PlanRecord))
    await cur.execute(
        sql.SQL(
            "INSERT INTO plans (level, site_id, status, horizon_start, horizon_end, step_s, "
            "inputs_ref, inputs_hash, created_by) "
            "VALUES (%s, %s, 'pending', %s, %s, %s, %s, %s, %s) RETURNING {}"
        ).format(COLUMNS),
        (level, site_id, horizon_start, horizon_end, step_s, inputs_ref, inputs_hash, created_by),
    )
    return _one(await cur.fetchone(), 0)


async def _write_steps(conn: AsyncConnection, plan_id: int, schedule: pd.DataFrame) -> None:
    long = schedule.rename_axis("ts").reset_index().melt(id_vars="ts", var_name="name")
    async with conn.cursor().copy("COPY plan_steps (plan_id, ts, name, value) FROM STDIN") as copy:
        for ts, name, value in long.itertuples(index=False):
            await copy.write_row((plan_id, ts.to_pydatetime(), name, float(value)))


def _solver_stats(result: Plan) -> dict[str, Any]:
    data = result.to_json()
    keys = ("status", "gap", "build_seconds", "solve_seconds", "variables", "binaries")
    stats = {key: data[key] for key in (*keys, "constraints", "scalars", "co2_kg_by_carrier")}
    stats["savings"] = data["savings"]
    if result.peak_margin:
        stats["peak_margin"] = data["peak_margin"]
    if result.carbon_policy:
        stats["carbon_policy"] = data["carbon_policy"]
    if result.frontier:
        stats["frontier"] = data["frontier"]
        stats["frontier_point"] = data["frontier_point"]
    return stats


async def save_result(
    conn: AsyncConnection, plan_id: int, result: Plan, warnings: list[str] | None = None
) -> PlanRecord:
    """Store a solved plan's schedule and figures; pending → draft, or approved by policy."""
    async with conn.transaction():
        record = await get_plan(conn, plan_id)
        policy = await approval_policy(conn, record.site_id)
        status: PlanStatus = "approved" if policy == "auto" else "draft"
        await _write_steps(conn, plan_id, result.schedule)
        values = {
            "objective_cny": result.objective_cny,
            "cost_terms_cny": Jsonb(result.cost_cny),
            "co2_kg": result.co2_kg,
            "baseline": Jsonb(result.to_json()["baseline"]),
            "solver": Jsonb(_solver_stats(result)),
            "warnings": Jsonb([*result.notes, *(warnings or [])]),
            "approved_by": AUTO_APPROVER if status == "approved" else None,
        }
        return await _transition(conn, plan_id, "store a result for", status, ("pending",), values)


async def mark_failed(conn: AsyncConnection, plan_id: int, error: str) -> PlanRecord:
    """A pending plan whose solve failed: failed, with the error's message."""
    return await _transition(conn, plan_id, "fail", "failed", ("pending",), {"error": error})


async def fail_interrupted(conn: AsyncConnection, created_before: datetime) -> int:
    """Pending plans created before `created_before` (left by a process that died) become failed."""
    failed = await change_status(
        conn,
        "failed",
        ("pending",),
        sql.SQL("created_at < %(created_before)s"),
        {"created_before": created_before},
        {"error": "interrupted: the process solving it stopped"},
    )
    return len(failed)


async def store_plan(
    conn: AsyncConnection,
    result: Plan,
    *,
    inputs_ref: str | None = None,
    inputs_digest: str | None = None,
    warnings: list[str] | None = None,
    created_by: str | None = None,
) -> PlanRecord:
    """Store an already solved plan (the scheduler's and the CLI's path) as draft or approved."""
    index = pd.DatetimeIndex(result.schedule.index)
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(hours=1)
    async with conn.transaction():
        pending = await create_pending(
            conn,
            level=result.level,
            site_id=result.site_id,
            horizon_start=index[0].to_pydatetime(),
            horizon_end=(index[-1] + step).to_pydatetime(),
            step_s=int(step.total_seconds()),
            inputs_ref=inputs_ref,
            inputs_hash=inputs_digest,
            created_by=created_by,
        )
        return await save_result(conn, pending.id, result, warnings)


async def approve(conn: AsyncConnection, plan_id: int, by: str) -> PlanRecord:
    """An operator approves a draft plan."""
    values = {"approved_by": by, "approved_at": _NOW}
    return await _transition(conn, plan_id, "approve", "approved", ("draft",), values)


async def reject(conn: AsyncConnection, plan_id: int, by: str, reason: str) -> PlanRecord:
    """An operator rejects a draft or approved (not yet active) plan, saying why."""
    values = {"rejected_by": by, "rejected_at": _NOW, "rejected_reason": reason}
    return await _transition(conn, plan_id, "reject", "rejected", ("draft", "approved"), values)


async def activate(conn: AsyncConnection, plan_id: int) -> PlanRecord:
    """Make an approved plan the site's active one; the previously active plan is superseded."""
    async with conn.transaction():
        record = await get_plan(conn, plan_id)
        await change_status(
            conn,
            "superseded",
            ("active",),
            sql.SQL("site_id = %(site_id)s AND id <> %(plan_id)s"),
            {"site_id": record.site_id, "plan_id": plan_id},
            {"superseded_by": plan_id},
        )
        values = {"activated_at": _NOW}
        return await _transition(conn, plan_id, "activate", "active", ("approved",), values)


async def supersede(conn: AsyncConnection, plan_id: int, by_plan_id: int) -> PlanRecord:
    """A newer plan replaces this one before or while it runs."""
    values = {"superseded_by": by_plan_id}
    allowed: tuple[PlanStatus, ...] = ("draft", "approved", "active")
    return await _transition(conn, plan_id, "supersede", "superseded", allowed, values)


async def expire_due(conn: AsyncConnection, now: datetime) -> list[int]:
    """Draft, approved and active plans whose horizon ended by `now` become expired."""
    expired = await change_status(
        conn,
        "expired",
        ("draft", "approved", "active"),
        sql.SQL("horizon_end <= %(now)s"),
        {"now": now},
    )
    return sorted(record.id for record in expired)


class _Now:
    """Marker: set the column to the transaction's now()."""


_NOW = _Now()


async def change_status(
    conn: AsyncConnection,
    to: PlanStatus,
    allowed_from: tuple[PlanStatus, ...],
    where: sql.Composable,
    params: dict[str, Any],
    values: dict[str, Any] | None = None,
) -> list[PlanRecord]:
    """The one status change of plans: those matching `where` (SQL with named placeholders
    from `params`) whose status is in `allowed_from` get status `to` and `values` (a column set
    to `_NOW` takes the transaction's now()); returns the changed plans.

    `allowed_from` must be part of what `LIFECYCLE` lets `to` be entered from (a ValueError,
    a programming error, otherwise)."""
    illegal = [status for status in allowed_from if status not in LIFECYCLE[to]]
    if illegal or not allowed_from:
        raise ValueError(f"plan status {to!r} cannot be entered from {illegal or 'nothing'}")
    values = values or {}
    assignments = sql.SQL(", ").join(
        [
            sql.SQL("status = %(_to)s"),
            *(
                sql.SQL("{} = now()").format(sql.Identifier(column))
                if value is _NOW
                else sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
                for column, value in values.items()
            ),
        ]
    )
    bound = {k: v for k, v in values.items() if v is not _NOW}
    cur = conn.cursor(row_factory=class_row(PlanRecord))
    await cur.execute(
        sql.SQL(
            "UPDATE plans SET {}, updated_at = now() "
            "WHERE status = ANY(%(_allowed)s) AND ({}) RETURNING {}"
        ).format(assignments, where, COLUMNS),
        {**params, **bound, "_to": to, "_allowed": list(allowed_from)},
    )
    return await cur.fetchall()


async def _transition(
    conn: AsyncConnection,
    plan_id: int,
    action: str,
    to: PlanStatus,
    allowed_from: tuple[PlanStatus, ...],
    values: dict[str, Any],
) -> PlanRecord:
    """One plan's status change; PlanStateError naming its current status if not allowed."""
    where = sql.SQL("id = %(_plan_id)s")
    changed = await change_status(conn, to, allowed_from, where, {"_plan_id": plan_id}, values)
    if not changed:
        current = await get_plan(conn, plan_id)
        raise PlanStateError(plan_id, current.status, action, list(allowed_from))
    return changed[0]


def _one(row: PlanRecord | None, plan_id: int) -> PlanRecord:
    if row is None:
        raise PlanNotFoundError(plan_id)
    return row


async def get_plan(conn: AsyncConnection, plan_id: int) -> PlanRecord:
    """One plan; PlanNotFoundError if there is none with this id."""
    cur = conn.cursor(row_factory=class_row(PlanRecord))
    await cur.execute(sql.SQL("SELECT {} FROM plans WHERE id = %s").format(COLUMNS), (plan_id,))
    return _one(await cur.fetchone(), plan_id)


async def site_active(conn: AsyncConnection, site_id: str) -> bool | None:
    """Whether the site is active (in the site file last loaded), False if retired, None if the
    database never had it. Listing plans takes active sites only, as the API does (a retired site
    is a 404 there); a retired site's plans are kept and shown by id."""
    cur = await conn.execute("SELECT active FROM sites WHERE id = %s", (site_id,))
    row = await cur.fetchone()
    return None if row is None else bool(row[0])


async def list_plans(
    conn: AsyncConnection,
    *,
    site_ids: list[str] | None = None,
    status: PlanStatus | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[PlanRecord]:
    """Newest first; `site_ids` None means every active site (a retired one's plans are shown by
    id, as the API does); page with `before_id` (the last id seen)."""
    cur = conn.cursor(row_factory=class_row(PlanRecord))
    await cur.execute(
        sql.SQL(
            "SELECT {} FROM plans WHERE (%(sites)s::text[] IS NULL AND site_id IN "
            "(SELECT id FROM sites WHERE active) OR site_id = ANY(%(sites)s)) "
            "AND (%(status)s::text IS NULL OR status = %(status)s) "
            "AND (%(before)s::bigint IS NULL OR id < %(before)s) ORDER BY id DESC LIMIT %(limit)s"
        ).format(COLUMNS),
        {"sites": site_ids, "status": status, "before": before_id, "limit": limit},
    )
    return await cur.fetchall()


async def plan_steps(conn: AsyncConnection, plan_id: int) -> pd.DataFrame:
    """The schedule: one row per step (ts, UTC), one column per `<asset>:<variable>`."""
    cur = await conn.execute(
        "SELECT ts, name, value FROM plan_steps WHERE plan_id = %s ORDER BY ts, name", (plan_id,)
    )
    long = pd.DataFrame(await cur.fetchall(), columns=["ts", "name", "value"])
    if long.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="ts"))
    long["ts"] = pd.to_datetime(long["ts"], utc=True)
    wide = long.pivot(index="ts", columns="name", values="value")
    wide.columns.name = None
    return wide


def _utc(ts: Sequence[object]) -> pd.DatetimeIndex:
    """Timestamps from the database as a UTC index, each distinct one parsed once (a schedule
    repeats every step's for each of its columns)."""
    codes, distinct = pd.factorize(np.asarray(ts, dtype=object))
    parsed = pd.DatetimeIndex(pd.to_datetime(list(distinct), utc=True))
    return pd.DatetimeIndex(parsed[codes], name="ts")


async def plan_records(conn: AsyncConnection, plan_ids: Sequence[int]) -> dict[int, PlanRecord]:
    """The plans of `plan_ids` by id (one query; an unknown id is absent)."""
    cur = conn.cursor(row_factory=class_row(PlanRecord))
    await cur.execute(
        sql.SQL("SELECT {} FROM plans WHERE id = ANY(%s)").format(COLUMNS), (list(plan_ids),)
    )
    return {r.id: r for r in await cur.fetchall()}


async def controlled_schedules(
    conn: AsyncConnection, plan_ids: Sequence[int], span: tuple[datetime, datetime]
) -> dict[int, tuple[pd.DataFrame, set[pd.Timestamp]]]:
    """Per plan of `plan_ids`: its schedule (as plan_steps) at the steps in `span` it sent a
    setpoint for, and those steps (UTC). One query for all: a month's savings read only the
    steps each plan controlled, not every plan's whole horizon."""
    cur = await conn.execute(
        "WITH c AS (SELECT DISTINCT plan_id, ts FROM setpoints WHERE plan_id = ANY(%s) "
        "AND ts >= %s AND ts < %s) "
        "SELECT s.plan_id, s.ts, s.name, s.value FROM plan_steps AS s JOIN c USING (plan_id, ts) "
        "WHERE s.plan_id = ANY(%s) AND s.ts >= %s AND s.ts < %s ORDER BY s.plan_id, s.ts, s.name",
        (list(plan_ids), *span, list(plan_ids), *span),
    )
    rows = await cur.fetchall()
    out: dict[int, tuple[pd.DataFrame, set[pd.Timestamp]]] = {}
    if not rows:
        return out
    ids, ts, names, values = zip(*rows, strict=True)
    long = pd.DataFrame(
        {"plan_id": np.asarray(ids, dtype=np.int64), "ts": _utc(ts),
         "name": np.asarray(names, dtype=object), "value": np.asarray(values, dtype=float)}
    )  # fmt: skip
    for plan_id in np.unique(long["plan_id"].to_numpy()):
        rows_of = long[long["plan_id"] == plan_id]
        wide = rows_of.pivot(index="ts", columns="name", values="value")
        wide.columns.name = None
        out[int(plan_id)] = (wide, set(wide.index))
    return out


async def import_limits_in(
    conn: AsyncConnection, plan_ids: Sequence[int], span: tuple[datetime, datetime]
) -> dict[int, pd.DataFrame]:
    """import_limits of each plan of `plan_ids` over the steps in `span` (one query)."""
    cur = await conn.execute(
        "SELECT plan_id, ts, site_id, min(import_limit_kw) FROM setpoints "
        "WHERE plan_id = ANY(%s) AND ts >= %s AND ts < %s AND import_limit_kw IS NOT NULL "
        "GROUP BY plan_id, ts, site_id",
        (list(plan_ids), *span),
    )
    found = pd.DataFrame(
        await cur.fetchall(), columns=["plan_id", "ts", "site_id", "import_limit_kw"]
    )
    found["ts"] = pd.to_datetime(found["ts"], utc=True)
    found = found.astype({"site_id": "object", "import_limit_kw": "float64"})
    return {
        plan_id: found.loc[
            found["plan_id"] == plan_id, ["ts", "site_id", "import_limit_kw"]
        ].reset_index(drop=True)
        for plan_id in plan_ids
    }


async def controlled_steps(conn: AsyncConnection, plan_id: int) -> set[pd.Timestamp]:
    """The steps (UTC) a setpoint of the plan was sent for."""
    cur = await conn.execute("SELECT DISTINCT ts FROM setpoints WHERE plan_id = %s", (plan_id,))
    return {pd.Timestamp(row[0]).tz_convert("UTC") for row in await cur.fetchall()}


async def import_limits(conn: AsyncConnection, plan_id: int) -> pd.DataFrame:
    """The import limit the plan's setpoints carried (energyhub.scheduler.guard), per step and
    site the setpoint went to: columns ts (UTC), site_id, import_limit_kw; none sent, no rows."""
    cur = await conn.execute(
        "SELECT ts, site_id, min(import_limit_kw) FROM setpoints "
        "WHERE plan_id = %s AND import_limit_kw IS NOT NULL GROUP BY ts, site_id",
        (plan_id,),
    )
    frame = pd.DataFrame(await cur.fetchall(), columns=["ts", "site_id", "import_limit_kw"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.astype({"site_id": "object", "import_limit_kw": "float64"})


async def controlling_plans(
    conn: AsyncConnection, site_id: str, window: tuple[datetime, datetime]
) -> list[int]:
    """The site's own plans that sent a setpoint for a step in [start, end), oldest first."""
    cur = await conn.execute(
        "SELECT DISTINCT s.plan_id FROM setpoints AS s JOIN plans AS p ON p.id = s.plan_id "
        "WHERE p.site_id = %s AND s.ts >= %s AND s.ts < %s ORDER BY 1",
        (site_id, *window),
    )
    return [int(row[0]) for row in await cur.fetchall()]


CONTROLLED_IMPORTS = """
WITH controlled AS (
    SELECT DISTINCT ON (s.ts) s.ts, s.plan_id
    FROM setpoints AS s JOIN plans AS p ON p.id = s.plan_id
    WHERE p.site_id = %(site)s AND s.ts >= %(start)s AND s.ts < %(end)s
    ORDER BY s.ts, s.plan_id DESC
)
SELECT c.ts, c.plan_id, i.value - COALESCE(e.value, 0)
FROM controlled AS c
JOIN plan_steps AS i ON i.plan_id = c.plan_id AND i.ts = c.ts AND i.name = %(import)s
LEFT JOIN plan_steps AS e ON e.plan_id = c.plan_id AND e.ts = c.ts AND e.name = %(export)s
ORDER BY c.ts"""


async def controlled_imports(
    conn: AsyncConnection, site_id: str, grid_node: str, window: tuple[datetime, datetime]
) -> pd.DataFrame:
    """Per step in [start, end) that one of the site's own plans controlled (a setpoint of it
    was sent; the newest plan if several): plan_id and the net import (import − export) that
    plan scheduled at the connection `grid_node`, indexed by ts (UTC)."""
    names = {"import": f"{grid_node}:import_kw", "export": f"{grid_node}:export_kw"}
    cur = await conn.execute(
        CONTROLLED_IMPORTS, {"site": site_id, "start": window[0], "end": window[1], **names}
    )
    frame = pd.DataFrame(await cur.fetchall(), columns=["ts", "plan_id", "import_kw"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame = frame.astype({"plan_id": "int64", "import_kw": "float64"})
    return frame.set_index("ts")


class SetpointOverride(BaseModel):
    """A setpoint the scheduler's peak guard sent other than the plan asked, and why."""

    ts: datetime
    asset_id: str
    planned_p_kw: float
    p_kw: float
    reason: str


async def setpoint_overrides(conn: AsyncConnection, plan_id: int) -> list[SetpointOverride]:
    """The plan's setpoints the peak guard overrode (energyhub.scheduler.guard), by step."""
    cur = await conn.execute(
        "SELECT ts, asset_id, planned_p_kw, p_kw, override FROM setpoints "
        "WHERE plan_id = %s AND override IS NOT NULL ORDER BY ts, asset_id",
        (plan_id,),
    )
    return [
        SetpointOverride(ts=ts, asset_id=a, planned_p_kw=planned, p_kw=p, reason=why)
        for ts, a, planned, p, why in await cur.fetchall()
    ]


async def storage_setpoints(
    conn: AsyncConnection, asset_ids: list[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """The setpoints sent to these assets for steps in [start, end): asset_id, ts (UTC), p_kw."""
    return await _sent(conn, "asset_id", asset_ids, start, end)


async def site_setpoints(
    conn: AsyncConnection, site_ids: list[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """The setpoints sent to these sites' devices for steps in [start, end), as above."""
    return await _sent(conn, "site_id", site_ids, start, end)


async def _sent(
    conn: AsyncConnection, column: str, ids: list[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """Setpoints not known to have failed: asset_id, ts (UTC), p_kw."""
    query = sql.SQL(
        "SELECT asset_id, ts, p_kw FROM setpoints WHERE {} = ANY(%s) AND ts >= %s "
        "AND ts < %s AND status <> 'failed' ORDER BY asset_id, ts"
    ).format(sql.Identifier(column))
    cur = await conn.execute(query, (ids, start, end))
    frame = pd.DataFrame(await cur.fetchall(), columns=["asset_id", "ts", "p_kw"])
    return frame.astype({"asset_id": "str", "p_kw": "float64"})
