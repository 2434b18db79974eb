"""A panel whose range starts more than a day after a counter's last reading (inside a long gap)
shows the gap's mean power in the bucket after it, as the store's series do."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from energyhub.grafana import building
from energyhub.sites import load_site
from energyhub.store.db import connect
from energyhub.store.queries import STEPS, meter_series
from tests.grafana.macros import Chosen, TimeRange, expand
from tests.grafana.test_values import _moment
from tests.store.test_counter_gap import (
    AFTER,
    BEFORE,
    KW,
    START,
    ZONE,
    _hours,
    _ingest_and_refresh,
    _setup,
)


def test_a_range_starting_in_a_long_gap_shows_the_gaps_mean_power(
    pg_url: str, example_site_path: Path
) -> None:
    async def store() -> tuple[int, pd.DataFrame]:
        meter_id, backend = await _setup(pg_url, load_site(example_site_path))
        await _ingest_and_refresh(pg_url, backend, meter_id, list(BEFORE) + list(AFTER))
        async with connect(pg_url) as conn:
            series = await meter_series(conn, backend, [meter_id], *late, STEPS["15m"], ZONE)
        return meter_id, series

    late = (START + timedelta(days=2), START + timedelta(days=4))  # 25 h into the gap
    meter_id, series = asyncio.run(store())
    chosen = {"park": Chosen(("expo",), False), "building": Chosen(("b01",), True)}
    text = building.SELECTED_METERS.replace("$meter", str(meter_id))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            expand(text, chosen, TimeRange(*late), "15m", False).encode()
        ).fetchall()
    panel = {_moment(row[0]): float(row[2]) for row in rows}
    gap_end = pd.Timestamp(_hours([AFTER[0]])[0])
    assert panel[gap_end] == pytest.approx(KW, rel=1e-12)
    stored = series.dropna(subset=["value"]).set_index("bucket")["value"]
    assert panel == pytest.approx(stored.to_dict(), rel=1e-12)
