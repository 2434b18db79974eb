"""The peak margin floored at the connection's measured import error, against the real
PostgreSQL: a history whose plans planned a known amount below what the meters read."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from energyhub.optimize.scope import resolve_scope
from energyhub.plans import store
from energyhub.plans.operations import plan_inputs
from energyhub.scheduler.margin import ImportErrorCache, import_errors
from energyhub.scheduler.replan import PlanningConfig, Target, replan
from energyhub.store.db import Backend, connect

from .conftest import HistorySpec, make_site, prepare_db, scheduler_settings, write_history

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")  # a Tuesday
STEP = timedelta(minutes=15)
NIGHT_KW = 300.0
"""What the office's main meter reads before dawn (office_load_kw, no PV)."""
ERROR_STEP_KW = 10.0
P90_OF_100_KW = 891.0
"""np.quantile of 0, 10, ..., 990 kW at 0.9: rank 0.9 × 99 = 89.1 → 890 + 0.1 × 10."""
P99_OF_100_KW = 980.1
"""np.quantile of 0, 10, ..., 990 kW at 0.99: rank 0.99 × 99 = 98.01 → 980 + 0.01 × 10."""


def night_steps(count: int) -> list[pd.Timestamp]:
    """`count` steps from 00:00 local, 20 a night (to 05:00), over the nights before START."""
    out: list[pd.Timestamp] = []
    for night in range(1, 8):
        first = pd.Timestamp(START - timedelta(days=night))
        out += [first + i * STEP for i in range(20)]
    return sorted(t.tz_convert("UTC") for t in out[:count])


async def controlled_plan(url: str, planned_kw: dict[pd.Timestamp, float], uncontrolled: int) -> None:
    """A scheduler plan of `office` whose import at these steps was `planned_kw` and whose
    setpoints were sent for them; `uncontrolled` more of its steps (planned 0 kW, metered
    300) sent none."""
    steps = sorted(planned_kw)
    extra = [steps[-1] + (i + 1) * STEP for i in range(uncontrolled)]
    async with connect(url) as conn:
        record = await store.create_pending(
            conn, level="building", site_id="office", horizon_start=steps[0],
            horizon_end=(extra or steps)[-1] + STEP, step_s=900, created_by="scheduler",
        )  # fmt: skip
        for ts in steps + extra:
            await conn.execute(
                "INSERT INTO plan_steps (plan_id, ts, name, value) VALUES (%s, %s, %s, %s)",
                (record.id, ts, "office:import_kw", planned_kw.get(ts, 0.0)),
            )
        for ts in steps:
            await conn.execute(
                "INSERT INTO setpoints (plan_id, site_id, asset_id, ts, p_kw, topic, status) "
                "VALUES (%s, 'office', 'office-bess', %s, 0, 't', 'acked')",
                (record.id, ts),
            )


async def replan_office(url: str, **settings: Any) -> tuple[store.PlanRecord, pd.DataFrame]:
    site = make_site()
    config = PlanningConfig.of(scheduler_settings(url, "mqtt://unused:1883", "t", **settings))
    async with connect(url) as conn:
        record = await replan(conn, Backend.POSTGRES, site, Target("building", "office"), START,
                              config)  # fmt: skip
        inputs = await plan_inputs(conn, record.id)
    return record, inputs


async def history_with_errors(url: str, steps: int, uncontrolled: int = 0) -> None:
    """A week of history; a plan that planned 0, 10, ..., 10 (steps − 1) kW below the meters."""
    await prepare_db(url, make_site())
    await write_history(url, HistorySpec(START - timedelta(days=7), START))
    planned = {ts: NIGHT_KW - ERROR_STEP_KW * k for k, ts in enumerate(night_steps(steps))}
    await controlled_plan(url, planned, uncontrolled)


async def test_the_margin_is_floored_at_the_p90_of_metered_minus_planned(pg_url: str) -> None:
    await history_with_errors(pg_url, 100, uncontrolled=8)  # 8 steps 300 kW above plan
    record, inputs = await replan_office(pg_url)
    summary = record.solver["peak_margin"]
    assert summary["steps"] == 100  # the uncontrolled steps are not counted
    assert summary["measured_p90_kw"] == pytest.approx(P90_OF_100_KW)
    assert summary["source"] == "measured"
    assert summary["bands_median_kw"] < P90_OF_100_KW
    margin = inputs["office:peak_margin_kw"].to_numpy()
    assert margin.min() == pytest.approx(P90_OF_100_KW)
    at_p90 = int(np.sum(np.isclose(margin, P90_OF_100_KW)))
    # the night steps' own errors (within an hour of their time of day) have a higher P90
    assert summary["time_of_day_steps"] > 0
    assert summary["floored_steps"] == at_p90 + summary["time_of_day_steps"]
    assert margin.max() == pytest.approx(summary["time_of_day_p90_max_kw"])
    assert not any(w.startswith("peak margin") for w in record.warnings)


async def test_the_reserve_is_the_p99_of_metered_minus_planned(pg_url: str) -> None:
    """The plan keeps the tail error covered (energyhub.optimize.reserve): the P99, at least
    the margin, as its own inputs column; off, no column and no reserve."""
    await history_with_errors(pg_url, 100)
    record, inputs = await replan_office(pg_url)
    assert record.solver["peak_margin"]["reserve_p99_kw"] == pytest.approx(P99_OF_100_KW)
    reserve = inputs["office:peak_reserve_kw"].to_numpy()
    margin = inputs["office:peak_margin_kw"].to_numpy()
    assert np.all(reserve >= margin - 1e-9)
    hours = pd.DatetimeIndex(inputs.index).tz_convert("Asia/Shanghai").hour
    day = (hours >= 7) & (hours <= 22)  # no errors within an hour: the P99 of them all
    assert reserve[day] == pytest.approx(np.maximum(margin[day], P99_OF_100_KW))
    record, inputs = await replan_office(pg_url, scheduler_peak_reserve=False)
    assert "office:peak_reserve_kw" not in inputs.columns
    assert "reserve_p99_kw" not in record.solver["peak_margin"]


async def test_too_few_controlled_steps_keep_the_bands_margin_with_a_warning(
    pg_url: str,
) -> None:
    await history_with_errors(pg_url, 40)  # fewer than the default 48
    record, inputs = await replan_office(pg_url)
    summary = record.solver["peak_margin"]
    assert (summary["source"], summary["steps"], summary["measured_p90_kw"]) == ("bands", 40, None)
    assert "office:peak_reserve_kw" not in inputs.columns  # nothing measured to reserve for
    assert inputs["office:peak_margin_kw"].median() == pytest.approx(summary["bands_median_kw"])
    assert inputs["office:peak_margin_kw"].min() == 0.0  # no floor at the errors' P90 (351)
    assert (
        "peak margin: 40 controlled step(s) of metered − planned import at office in the last "
        "14 d, fewer than 48: the margin is the forecast bands' alone"
    ) in record.warnings


async def test_the_off_switch_keeps_the_bands_margin(pg_url: str) -> None:
    await history_with_errors(pg_url, 100)
    record, inputs = await replan_office(pg_url, scheduler_measured_margin=False)
    summary = record.solver["peak_margin"]
    assert summary["source"] == "bands" and summary["measured_p90_kw"] is None
    assert summary["reason"].startswith("off")
    assert inputs["office:peak_margin_kw"].min() == 0.0  # the bands' at night: no floor
    assert not any(w.startswith("peak margin") for w in record.warnings)


async def test_the_window_leaves_out_older_steps(pg_url: str) -> None:
    await history_with_errors(pg_url, 100)  # over the 5 nights before START
    record, _ = await replan_office(pg_url, scheduler_measured_margin_days=2.5)
    assert record.solver["peak_margin"]["steps"] == 40  # the last 2 nights


async def test_the_cache_reads_forward_and_gives_what_a_fresh_read_gives(pg_url: str) -> None:
    """Read at START − 2 d (the three older nights), then at START: the same errors as one read
    at START; the older nights come from the cache, not the store (their setpoints, deleted in
    between, are still counted), and a window before what is kept reads afresh."""
    await history_with_errors(pg_url, 100)
    scope = resolve_scope(make_site(), "building", "office")
    cache, days = ImportErrorCache(), timedelta(days=14)
    earlier = START - timedelta(days=2)
    async with connect(pg_url) as conn:
        before = START - timedelta(days=8)  # before any controlled step: nothing kept yet
        none = await cache.errors(conn, Backend.POSTGRES, scope, (before - days, before), STEP)
        first = await cache.errors(conn, Backend.POSTGRES, scope, (earlier - days, earlier), STEP)
        whole = await import_errors(conn, Backend.POSTGRES, scope, (START - days, START), STEP)
        await conn.execute("DELETE FROM setpoints WHERE ts < %s", (earlier,))
        later = await cache.errors(conn, Backend.POSTGRES, scope, (START - days, START), STEP)
        fresh = await import_errors(conn, Backend.POSTGRES, scope, (START - days, START), STEP)
        again = await cache.errors(conn, Backend.POSTGRES, scope, (earlier - days, earlier), STEP)
    assert len(none) == 0 and len(first) == 60 and len(whole) == 100 and len(fresh) == 40
    pd.testing.assert_series_equal(later, whole, check_names=False)
    assert len(again) == 0  # before what was kept: read again, and nothing is left to read
