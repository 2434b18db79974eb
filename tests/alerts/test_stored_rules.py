"""Stored rules that no longer hold are logged by name and skipped; the other rules keep running."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from psycopg.types.json import Jsonb

from energyhub.alerts.evaluator import Evaluator
from energyhub.clock import ManualClock
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import Backend, connect, open_pool
from energyhub.store.writer import ReadingWriter

from .conftest import meter_id, small_site

T0 = datetime(2026, 11, 20, 2, tzinfo=UTC)


async def test_bad_stored_rules_fall_back_and_the_others_keep_running(
    site_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with connect(site_db) as conn:
        # As if the API stored them and the site file then lost the meter, or a hand edit.
        await conn.execute(
            "INSERT INTO alert_rules (site_id, rules) VALUES ('b1', %s), ('p1', %s)",
            (Jsonb({"silence": {"meters": ["gone"]}}), Jsonb({"limit": {"share": 7}})),
        )
    main = await meter_id(site_db, "main")
    clock = ManualClock(T0)
    caplog.set_level(logging.ERROR, "energyhub.alerts")
    async with open_pool(site_db, max_size=2) as pool:
        evaluator = Evaluator(pool, small_site(), clock)
        await evaluator.load()
        messages = [r.getMessage() for r in caplog.records]
        assert any(
            "stored alert rules of p1 ignored" in m and "limit.share" in m for m in messages
        ), messages
        assert any(
            "alert rules of b1 ignored, using the site file's" in m and "no meter 'gone' in b1" in m
            for m in messages
        ), messages
        # b1 keeps its site-file rules (silence on main after 4 × 0.25 s, limit at 90 % of 500).
        watched = {(w.target.site_id, w.rule, w.subject) for w in evaluator.watches}
        assert {("b1", "silence", "main"), ("b1", "limit", ""), ("p1", "limit", "")} <= watched
        ts = np.array([T0.replace(tzinfo=None)], dtype="datetime64[us]")
        await ReadingWriter(pool, Backend.POSTGRES).write(
            ReadingBatch.from_columns(ts, [main], [480.0])
        )
        first = await evaluator.tick()
        await clock.set(T0 + timedelta(seconds=2))
        later = await evaluator.tick()
    opened = {(e.alert.site_id, e.alert.rule) for e in first + later if e.event == "opened"}
    assert opened == {("b1", "silence"), ("b1", "limit")}
