"""What the scheduler reads besides the meters: the setpoints sent to the devices, on its grid."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from energyhub.scheduler.telemetry import read_telemetry, stored_meters
from energyhub.store.db import Backend, connect
from tests.scheduler.test_actual import START, STEP, run_steps

TZ = ZoneInfo("Asia/Shanghai")


async def test_sent_setpoints_on_the_grid_where_every_step_was_sent(pg_url: str) -> None:
    """Three steps sent: each on a 15-min grid; on a 30-min grid the first bucket is their mean
    and the second (one of two steps sent) is unknown, as is every asset without setpoints."""
    await run_steps(pg_url, "auto", 3)
    async with connect(pg_url) as conn:
        cur = await conn.execute(
            "SELECT asset_id, p_kw FROM setpoints WHERE asset_id = 'office-bess' ORDER BY ts"
        )
        sent = [float(p) for _, p in await cur.fetchall()]
        meters = await stored_meters(conn, ["office"])
        end = START + timedelta(hours=1)
        fine = await read_telemetry(
            conn, Backend.POSTGRES, meters, START, end, pd.Timedelta(STEP), TZ
        )
        coarse = await read_telemetry(
            conn, Backend.POSTGRES, meters, START, end, pd.Timedelta(minutes=30), TZ
        )
    assert len(sent) == 3
    assert fine.sent_kw("office-bess").to_numpy()[:3] == pytest.approx(sent)
    assert np.isnan(fine.sent_kw("office-bess").iloc[3])
    assert coarse.sent_kw("office-bess").iloc[0] == pytest.approx((sent[0] + sent[1]) / 2)
    assert np.isnan(coarse.sent_kw("office-bess").iloc[1])
    assert fine.sent_kw("no-such-asset").isna().all()
