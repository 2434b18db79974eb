"""Perfect foresight carries the month's demand target, made from the metered coming days: it
credits no shave below the peak a harder day of the month forces, and is what it was where
nothing later is metered or each day's peak is billed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energyhub.optimize.scope import resolve_scope
from energyhub.plans.bill import priced
from energyhub.plans.figures import Realized
from energyhub.plans.realized import realize
from energyhub.scheduler.target import DemandTargetConfig
from energyhub.sites import parse_site
from energyhub.store.db import Backend, connect
from tests.scheduler.conftest import TZ, prepare_db, site_doc, write_readings

DEMAND_CNY_PER_KW = 40.0
STEP = pd.Timedelta(minutes=15)
FIRST = pd.Timestamp("2025-07-01T00:00", tz=TZ).tz_convert("UTC")  # a month's first day, valley
EASY_KW = [600.0, 600.0, 600.0, 1600.0, 1600.0, 600.0, 600.0, 600.0]
"""The eight compared steps (00:00–02:00, all valley at 0.30 CNY/kWh): a two-step spike the
500 kW battery can take down to 1,100 kW, recharging at 785 kW in the other steps."""
HARD_KW = 2500.0
"""The next day, all day: 24 h at 2.5 MW, which 1,600 kWh of battery cannot take down far."""
SHAVE_CNY = DEMAND_CNY_PER_KW * (1600.0 - 1100.0)


async def _realized(pg_url: str, billing: str, metered_until: pd.Timestamp) -> Realized:
    """The eight steps of the month's first day, the battery idle at 50 %, realized against
    readings up to `metered_until` (the rest of the first day at 600 kW, the next at HARD_KW),
    the month-to-date peak 0."""
    doc = site_doc()
    doc["city"]["parks"][0]["grid"].update(
        demand_charge_cny_per_kw=DEMAND_CNY_PER_KW, demand_billing=billing
    )
    site = parse_site(doc, "test-site")
    await prepare_db(pg_url, site)
    index = pd.date_range(FIRST - STEP, metered_until, freq=STEP, inclusive="left")
    easy = (index >= FIRST) & (index < FIRST + len(EASY_KW) * STEP)
    values = np.where(index >= FIRST + pd.Timedelta(days=1), HARD_KW, 600.0)
    values[easy] = EASY_KW[: int(easy.sum())]
    main = pd.Series(values, index)
    await write_readings(
        pg_url,
        {
            "main": main,
            "pv": pd.Series(0.0, index),
            "bess-p": pd.Series(0.0, index),
            "bess-soc": pd.Series(50.0, index),
            "outdoor": pd.Series(27.0, index),
        },
    )
    scope = resolve_scope(site, "building", "office")
    steps = pd.date_range(FIRST, periods=len(EASY_KW), freq=STEP, name="ts")
    frame = pd.DataFrame({"actual_import_kw": EASY_KW, "actual_gas_kw": 0.0}, index=steps)
    priced(frame, scope, pd.DataFrame(), site)
    async with connect(pg_url) as conn:
        found = await realize(
            conn, Backend.POSTGRES, site, scope, frame, pd.DataFrame(), 0.0,
            target=DemandTargetConfig(days=7),
        )  # fmt: skip
    assert found is not None and found.steps == len(EASY_KW), found
    return found


async def test_foresight_credits_no_shave_below_what_a_harder_day_forces(pg_url: str) -> None:
    """The plans left the spike (1.6 MW) on the month's first day; the next day meters 2.5 MW
    all day, so the month's peak of any schedule is well above 1.6 MW and a shave of the spike
    is on no month's bill. Without the target, perfect foresight credited it: 500 kW × 40 CNY
    (20,000 CNY) against the plans' 0, a capture of 0."""
    found = await _realized(pg_url, "monthly", FIRST + pd.Timedelta(days=2))
    perfect = found.breakdown["perfect_foresight"]
    assert perfect.demand_cny == pytest.approx(DEMAND_CNY_PER_KW * 1600.0, rel=1e-3)
    assert found.perfect_savings_cny is not None
    assert abs(found.perfect_savings_cny) < 0.01 * SHAVE_CNY
    assert found.perfect_savings_cny >= found.savings_cny - 1.0  # still a bound on the plans


@pytest.mark.parametrize(
    ("billing", "days_metered"),
    [("monthly", 0), ("daily", 2)],
    ids=["monthly-nothing-later-metered", "daily-billing"],
)
async def test_foresight_shaves_as_before_without_a_harder_day_to_hold(
    pg_url: str, billing: str, days_metered: int
) -> None:
    """Nothing metered after the eight steps (the target is of those steps alone, which the
    re-solve reaches anyway), or each day's peak billed (no target): the spike is shaved to
    1,100 kW and credited, as before."""
    until = FIRST + len(EASY_KW) * STEP + pd.Timedelta(days=days_metered)
    found = await _realized(pg_url, billing, until)
    perfect = found.breakdown["perfect_foresight"]
    assert perfect.demand_cny == pytest.approx(DEMAND_CNY_PER_KW * 1100.0, rel=1e-3)
    assert found.perfect_savings_cny is not None
    assert found.perfect_savings_cny == pytest.approx(SHAVE_CNY, rel=0.01)
    assert found.perfect_savings_cny >= found.savings_cny - 1.0
