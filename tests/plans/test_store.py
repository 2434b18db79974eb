"""The plan lifecycle in the database: transitions, policy, steps, expiry, interrupted solves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from psycopg import AsyncConnection, sql

from energyhub.plans import store
from energyhub.plans.errors import PlanNotFoundError, PlanStateError
from energyhub.sites import SiteFile, load_site, parse_site
from energyhub.store.db import connect
from energyhub.store.sync import sync_site
from tests.api.conftest import SITE_FILE, solved


@pytest.fixture
async def conn(
    site_database: Callable[[SiteFile | None], Awaitable[str]],
) -> AsyncIterator[AsyncConnection]:
    """A migrated database with the example site (a copy of a template)."""
    async with connect(await site_database(load_site(SITE_FILE))) as connection:
        yield connection


async def test_draft_approve_activate_supersede_expire(conn: AsyncConnection) -> None:
    first = await store.store_plan(
        conn, solved("building", "b01"), inputs_ref="test", created_by="me"
    )
    assert first.status == "draft" and first.approved_by is None
    assert first.step_s == 3600 and first.horizon_end - first.horizon_start == timedelta(hours=4)
    assert first.cost_terms_cny == pytest.approx(solved("building", "b01").cost_cny)
    assert first.baseline["cost_cny"] > 0 and first.solver["status"] == "optimal"
    approved = await store.approve(conn, first.id, "operator-1")
    assert (approved.status, approved.approved_by) == ("approved", "operator-1")
    assert approved.approved_at is not None
    active = await store.activate(conn, first.id)
    assert active.status == "active" and active.activated_at is not None
    second = await store.store_plan(conn, solved("building", "b01"))
    await store.approve(conn, second.id, "operator-1")
    await store.activate(conn, second.id)
    replaced = await store.get_plan(conn, first.id)
    assert (replaced.status, replaced.superseded_by) == ("superseded", second.id)
    expired = await store.expire_due(conn, second.horizon_end)
    assert expired == [second.id]
    assert (await store.get_plan(conn, second.id)).status == "expired"


@pytest.mark.parametrize(
    ("steps", "action", "message"),
    [
        (
            [],
            "activate",
            "plan {id} is draft: cannot activate it (only a plan that is approved can be)",
        ),
        (
            ["approve"],
            "approve",
            "plan {id} is approved: cannot approve it (only a plan that is draft can be)",
        ),
        (
            ["approve", "activate"],
            "reject",
            "plan {id} is active: cannot reject it (only a plan that is draft or approved can be)",
        ),
        (["reject"], "supersede", "plan {id} is rejected: cannot supersede it"),
    ],
)
async def test_transitions_name_the_current_state(
    conn: AsyncConnection, steps: list[str], action: str, message: str
) -> None:
    plan_id = (await store.store_plan(conn, solved("building", "b01"))).id
    actions = {
        "approve": lambda: store.approve(conn, plan_id, "op"),
        "reject": lambda: store.reject(conn, plan_id, "op", "no"),
        "activate": lambda: store.activate(conn, plan_id),
        "supersede": lambda: store.supersede(conn, plan_id, plan_id),
    }
    for step in steps:
        await actions[step]()
    with pytest.raises(
        PlanStateError, match=message.format(id=plan_id).replace("(", r"\(").replace(")", r"\)")
    ):
        await actions[action]()


async def test_unknown_plan(conn: AsyncConnection) -> None:
    with pytest.raises(PlanNotFoundError, match="no plan 999"):
        await store.approve(conn, 999, "op")


async def test_policy_is_inherited_and_overridden(conn: AsyncConnection) -> None:
    data = load_site(SITE_FILE).model_dump(mode="json", by_alias=True, exclude_none=True)
    data["city"]["parks"][0]["plan_approval"] = "auto"
    data["city"]["parks"][0]["buildings"][1]["plan_approval"] = "operator"
    await sync_site(conn, parse_site(data))
    assert await store.approval_policy(conn, "b01") == "auto"
    assert await store.approval_policy(conn, "b02") == "operator"
    assert await store.approval_policy(conn, "l01") == "operator"
    b01 = await store.store_plan(conn, solved("building", "b01"))
    assert (b01.status, b01.approved_by) == ("approved", store.AUTO_APPROVER)
    b02 = await store.store_plan(conn, solved("building", "b02"))
    assert b02.status == "draft"


async def test_steps_round_trip(conn: AsyncConnection) -> None:
    result = solved("park", "expo")
    record = await store.store_plan(conn, result)
    steps = await store.plan_steps(conn, record.id)
    want = result.schedule.copy()
    want.index = pd.DatetimeIndex(want.index).tz_convert("UTC")
    pd.testing.assert_frame_equal(
        steps, want.reindex(sorted(want.columns), axis=1), check_names=False, check_freq=False
    )


async def test_failed_and_interrupted_solves(conn: AsyncConnection) -> None:
    start = datetime(2026, 11, 20, tzinfo=UTC)
    pending = {
        "level": "building",
        "site_id": "b01",
        "horizon_start": start,
        "horizon_end": start + timedelta(hours=2),
        "step_s": 3600,
    }
    failed = await store.mark_failed(
        conn, (await store.create_pending(conn, **pending)).id, "infeasible: b01 electricity"
    )
    assert (failed.status, failed.error) == ("failed", "infeasible: b01 electricity")
    old = await store.create_pending(conn, **pending)
    await conn.execute(
        "UPDATE plans SET created_at = now() - interval '1 day' WHERE id = %s", (old.id,)
    )
    fresh = await store.create_pending(conn, **pending)
    assert await store.fail_interrupted(conn, datetime.now(UTC) - timedelta(hours=6)) == 1
    assert (await store.get_plan(conn, old.id)).status == "failed"
    assert (await store.get_plan(conn, fresh.id)).status == "pending"
    with pytest.raises(PlanStateError, match="is failed: cannot approve"):
        await store.approve(conn, failed.id, "op")


async def test_list_newest_first_with_filters(conn: AsyncConnection) -> None:
    ids = [(await store.store_plan(conn, solved("building", s))).id for s in ("b01", "b02", "b01")]
    await store.approve(conn, ids[0], "op")
    assert [r.id for r in await store.list_plans(conn)] == ids[::-1]
    assert [r.id for r in await store.list_plans(conn, site_ids=["b01"])] == [ids[2], ids[0]]
    assert [r.id for r in await store.list_plans(conn, status="approved")] == [ids[0]]
    assert [r.id for r in await store.list_plans(conn, before_id=ids[2], limit=1)] == [ids[1]]


def test_inputs_hash_ignores_column_order() -> None:
    index = pd.date_range("2026-11-20", periods=3, freq="1h", tz="Asia/Shanghai")
    a = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.1, 0.2, 0.3]}, index=index)
    assert store.inputs_hash(a) == store.inputs_hash(a[["y", "x"]])
    assert store.inputs_hash(a) != store.inputs_hash(a.assign(x=[1.0, 2.0, 3.0000001]))


async def test_change_status_refuses_a_transition_the_lifecycle_has_not(
    conn: AsyncConnection,
) -> None:
    plan = await store.store_plan(conn, solved("building", "b01"), created_by="me")
    where = sql.SQL("id = %(id)s")
    with pytest.raises(ValueError, match=r"'active' cannot be entered from \['draft'\]"):
        await store.change_status(conn, "active", ("draft",), where, {"id": plan.id})
    with pytest.raises(ValueError, match="'pending' cannot be entered from nothing"):
        await store.change_status(conn, "pending", (), where, {"id": plan.id})
    assert (await store.get_plan(conn, plan.id)).status == "draft"
    approved = await store.change_status(
        conn, "approved", ("draft",), where, {"id": plan.id}, {"approved_by": "bulk"}
    )
    assert [(p.id, p.status, p.approved_by) for p in approved] == [(plan.id, "approved", "bulk")]
    assert await store.change_status(conn, "approved", ("draft",), where, {"id": plan.id}) == []
