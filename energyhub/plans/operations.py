"""Plan operations the scheduler needs beyond the lifecycle store: activation when due, outdated
plans superseded, failures recorded, and the forecast (inputs table) a plan was solved with.

Times are passed in, never read from the database's clock, so a scheduler on simulated time
drives the same lifecycle as one on the wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from psycopg import AsyncConnection, sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from energyhub.plans import store
from energyhub.plans.store import COLUMNS, PlanRecord, PlanStatus


async def active_plan(conn: AsyncConnection, site_id: str) -> PlanRecord | None:
    """The site's active plan, if any."""
    cur = conn.cursor(row_factory=class_row(PlanRecord))
    await cur.execute(
        sql.SQL("SELECT {} FROM plans WHERE site_id = %s AND status = 'active'").format(COLUMNS),
        (site_id,),
    )
    return await cur.fetchone()


async def activate_due(conn: AsyncConnection, site_id: str, now: datetime) -> PlanRecord | None:
    """Make the newest approved plan whose horizon covers `now` active, if newer than the active
    one (which it supersedes, with older approved plans already under way); return the active."""
    active = await active_plan(conn, site_id)
    cur = await conn.execute(
        "SELECT id FROM plans WHERE site_id = %s AND status = 'approved' "
        "AND horizon_start <= %s AND horizon_end > %s AND id > %s ORDER BY id DESC LIMIT 1",
        (site_id, now, now, active.id if active else 0),
    )
    row = await cur.fetchone()
    if row is None:
        return active
    newest = int(row[0])
    async with conn.transaction():
        record = await store.activate(conn, newest)
        await store.change_status(
            conn,
            "superseded",
            ("approved",),
            sql.SQL("site_id = %(site_id)s AND id < %(newest)s AND horizon_start <= %(now)s"),
            {"site_id": site_id, "newest": newest, "now": now},
            {"superseded_by": newest},
        )
    return record


async def supersede_outdated(
    conn: AsyncConnection, newer: PlanRecord, created_by: str
) -> list[int]:
    """Older plans of the same author and site that `newer` replaces: drafts always, approved
    ones only if `newer` is approved itself (an operator's approval is not undone by a draft)."""
    statuses: tuple[PlanStatus, ...] = (
        ("draft", "approved") if newer.status == "approved" else ("draft",)
    )
    superseded = await store.change_status(
        conn,
        "superseded",
        statuses,
        sql.SQL("site_id = %(site_id)s AND id < %(newer)s AND created_by = %(created_by)s"),
        {"site_id": newer.site_id, "newer": newer.id, "created_by": created_by},
        {"superseded_by": newer.id},
    )
    return sorted(record.id for record in superseded)


async def last_horizon_start(
    conn: AsyncConnection, site_id: str, created_by: str
) -> datetime | None:
    """Where the author's newest plan of the site (whatever became of it) starts."""
    cur = await conn.execute(
        "SELECT max(horizon_start) FROM plans WHERE site_id = %s AND created_by = %s",
        (site_id, created_by),
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def record_failure(
    conn: AsyncConnection,
    *,
    level: str,
    site_id: str,
    horizon: tuple[datetime, datetime],
    step_s: int,
    created_by: str,
    error: str,
) -> PlanRecord:
    """A plan that could not be made (no forecast, no solution), stored failed with the reason."""
    async with conn.transaction():
        pending = await store.create_pending(
            conn,
            level=level,
            site_id=site_id,
            horizon_start=horizon[0],
            horizon_end=horizon[1],
            step_s=step_s,
            created_by=created_by,
        )
        return await store.mark_failed(conn, pending.id, error)


async def save_forecast(
    conn: AsyncConnection,
    plan_id: int,
    inputs: pd.DataFrame,
    *,
    issued_at: datetime,
    methods: dict[str, str],
    notes: list[str],
    initial_soc: dict[str, Any],
    unplanned: list[str],
) -> None:
    """The inputs table a plan was solved with, how each column was forecast, what was filled,
    and the assets it must not steer."""
    long = inputs.rename_axis("ts").reset_index().melt(id_vars="ts", var_name="name")
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO plan_forecasts (plan_id, issued_at, methods, notes, initial_soc, "
            "unplanned) VALUES (%s, %s, %s, %s, %s, %s)",
            (
                plan_id,
                issued_at,
                Jsonb(methods),
                Jsonb(notes),
                Jsonb(initial_soc),
                Jsonb(sorted(unplanned)),
            ),
        )
        async with conn.cursor().copy(
            "COPY plan_inputs (plan_id, ts, name, value) FROM STDIN"
        ) as copy:
            for ts, name, value in long.itertuples(index=False):
                await copy.write_row((plan_id, pd.Timestamp(ts).to_pydatetime(), name, value))


async def plan_inputs(conn: AsyncConnection, plan_id: int) -> pd.DataFrame:
    """The stored inputs table of a plan (empty if it was not made by the scheduler)."""
    cur = await conn.execute(
        "SELECT ts, name, value FROM plan_inputs WHERE plan_id = %s ORDER BY ts, name", (plan_id,)
    )
    long = pd.DataFrame(await cur.fetchall(), columns=["ts", "name", "value"])
    if long.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="ts"))
    long["ts"] = pd.to_datetime(long["ts"], utc=True)
    wide = long.pivot(index="ts", columns="name", values="value")
    wide.columns.name = None
    return wide


async def plan_input_columns(
    conn: AsyncConnection, plan_ids: Sequence[int], names: Sequence[str]
) -> dict[int, pd.DataFrame]:
    """The stored inputs of each plan of `plan_ids` (as plan_inputs: every step it has, a column
    it lacks absent) with only the columns `names`; one query for all."""
    cur = await conn.execute(
        "SELECT DISTINCT plan_id, ts, NULL::text, NULL::float8 FROM plan_inputs "
        "WHERE plan_id = ANY(%(ids)s) UNION ALL "
        "SELECT plan_id, ts, name, value FROM plan_inputs "
        "WHERE plan_id = ANY(%(ids)s) AND name = ANY(%(names)s)",
        {"ids": list(plan_ids), "names": list(names)},
    )
    long = pd.DataFrame(await cur.fetchall(), columns=["plan_id", "ts", "name", "value"])
    long["ts"] = pd.to_datetime(long["ts"], utc=True)
    out = {}
    for plan_id in plan_ids:
        rows = long[long["plan_id"] == plan_id]
        index = pd.DatetimeIndex(sorted(set(rows["ts"])), tz="UTC", name="ts")
        named = rows[rows["name"].notna()]
        wide = named.pivot(index="ts", columns="name", values="value").reindex(index)
        wide.columns.name = None
        out[plan_id] = wide.astype("float64")
    return out


async def unplanned_assets(conn: AsyncConnection, plan_id: int) -> set[str]:
    """Assets a scheduler plan must not steer (none for plans made elsewhere)."""
    cur = await conn.execute("SELECT unplanned FROM plan_forecasts WHERE plan_id = %s", (plan_id,))
    row = await cur.fetchone()
    return set(row[0]) if row else set()


async def save_inputs(conn: AsyncConnection, plan_id: int, inputs: pd.DataFrame) -> None:
    """The inputs table a plan was solved with (to re-solve it, e.g. at another frontier point)."""
    long = inputs.rename_axis("ts").reset_index().melt(id_vars="ts", var_name="name")
    async with conn.transaction():
        async with conn.cursor().copy(
            "COPY plan_inputs (plan_id, ts, name, value) FROM STDIN"
        ) as copy:
            for ts, name, value in long.itertuples(index=False):
                await copy.write_row((plan_id, pd.Timestamp(ts).to_pydatetime(), name, value))
