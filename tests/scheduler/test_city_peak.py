"""The demo's city plan starts each park from its month-to-date billed peak, as a park plan
does: without it the city bills every park's whole peak as a rise above 0 kW."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from energyhub.demo.planning import city_plan
from energyhub.optimize.scope import resolve_scope
from energyhub.plans.operations import plan_inputs
from energyhub.plans.peak import connection_month_peak_kw
from energyhub.plans.store import PlanRecord
from energyhub.scheduler.replan import PlanningConfig
from energyhub.sites import SiteFile
from energyhub.store.db import Backend, connect

from .conftest import HistorySpec, make_site, prepare_db, scheduler_settings, write_history

START = datetime.fromisoformat("2025-07-08T00:00:00+08:00")


async def _city_plan(
    pg_url: str, site: SiteFile, level: str, site_id: str
) -> tuple[PlanRecord, pd.DataFrame, float]:
    """A week of history, then the city's re-plan at START: the plan, its inputs and the
    month-to-date peak of the connection of `site_id` at `level`, read as its own plan reads it."""
    await prepare_db(pg_url, site)
    await write_history(pg_url, HistorySpec(START - timedelta(days=7), START))
    config = PlanningConfig.of(scheduler_settings(pg_url, "mqtt://unused:1883", "t"))
    async with connect(pg_url) as conn:
        record = await city_plan(conn, Backend.POSTGRES, site, START, config)
        inputs = await plan_inputs(conn, record.id)
        peak = await connection_month_peak_kw(
            conn, Backend.POSTGRES, resolve_scope(site, level, site_id), START, site.tz
        )
    return record, inputs, peak


async def test_the_city_plan_bills_a_rise_above_each_park_s_month_peak(pg_url: str) -> None:
    site = make_site()
    record, inputs, peak = await _city_plan(pg_url, site, "park", "sp")
    assert record.status != "failed", record.error
    assert peak > 500.0  # the office's working hours this month
    assert inputs["sp:month_peak_kw"].iloc[0] == pytest.approx(peak)
    assert record.baseline["month_peak_kw"] == pytest.approx({"sp": peak})


async def test_a_building_s_own_connection_starts_from_its_own_month_peak(pg_url: str) -> None:
    """The office has its own `grid:` with a demand charge: the park's plan bills it on the
    office's own peak, so the re-plan's inputs carry the office's month-to-date peak
    (`office:month_peak_kw`, read as the office's own plan reads it) beside the park's; without
    it the plan billed the office's whole peak as a rise above 0 kW."""
    own = {"import_max_kw": 3000, "demand_charge_cny_per_kw": 40}
    site = make_site(grid=own)
    record, inputs, office = await _city_plan(pg_url, site, "building", "office")
    assert record.status != "failed", record.error
    assert office > 500.0  # the office's working hours this month
    assert inputs["office:month_peak_kw"].iloc[0] == pytest.approx(office)
    assert record.baseline["month_peak_kw"]["office"] == pytest.approx(office)
