"""The demo's city plan against the real PostgreSQL: billed as the scheduler bills its park."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from energyhub.demo.planning import city_plan
from energyhub.scheduler.replan import PlanningConfig, Target, replan
from energyhub.store.db import Backend, connect
from tests.scheduler.conftest import (
    HistorySpec,
    make_site,
    prepare_db,
    scheduler_settings,
    write_history,
)

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")  # a Tuesday; July 1-7 metered


async def test_the_city_plan_is_charged_only_the_rise_above_the_month_peak(pg_url: str) -> None:
    """A one-park city: its plan knows the park's metered month-to-date peak, as the park's own
    plan does, so both are charged the same demand (it was the whole month's demand charge on
    the city's plan, ten times the park's cost on the demo's Berlin park)."""
    site = make_site()
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    config = PlanningConfig.of(scheduler_settings(pg_url, "mqtt://unused:1883", "t"))
    async with connect(pg_url) as conn:
        park = await replan(conn, Backend.POSTGRES, site, Target("park", "sp"), START, config)
        city = await city_plan(conn, Backend.POSTGRES, site, START, config)
    assert park.status != "failed" and city.status != "failed", (park.error, city.error)
    peak_kw = park.baseline["month_peak_kw"]["sp"]
    assert peak_kw > 500.0  # the office's working hours
    assert city.baseline["month_peak_kw"]["sp"] == pytest.approx(peak_kw)
    assert city.cost_terms_cny["demand"] == pytest.approx(park.cost_terms_cny["demand"], abs=1.0)
