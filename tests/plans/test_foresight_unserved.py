"""Perfect foresight where the meters show demand the plant did not serve: a cold store charged
at its setpoint while its chiller, at its limit, made less than the demand and that charge
together (the simulator's chillers make at most their limit; the cooling meter reads the
demand). Pinned to the store's metered SOC at the end, the re-solve had no schedule; it may now
leave unserved what the meters left unserved, at the counterfactual's price, and no more."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from energyhub.optimize.baseline import UNSERVED_CNY_PER_KWH
from energyhub.optimize.scope import resolve_scope
from energyhub.plans.bill import priced
from energyhub.plans.figures import Realized
from energyhub.plans.realized import realize
from energyhub.sites import parse_site
from energyhub.store.db import Backend, connect
from tests.scheduler.conftest import TZ, prepare_db, write_readings

STEP = pd.Timedelta(minutes=15)
FIRST = pd.Timestamp("2025-07-08T01:00", tz=TZ).tz_convert("UTC")  # valley, not a month's first
STEPS = 8
CHILLER_KW = 1000.0
COP = 5.0
STORE_KWH = 2000.0
OTHER_KW = 300.0
"""The building's load beside its chiller."""
CHARGE_KW = 300.0
"""What the ice store took in each step (its SOC meter): 8 × 300 × 0.25 = 600 kWh, 30 %."""


def _site_doc() -> dict[str, Any]:
    data_centre = {
        "id": "dc",
        "class": "data-center",
        "floor_area_m2": 10000,
        "meters": [
            {"id": "main", "carrier": "electricity", "quantity": "power_kw"},
            {"id": "cooling", "carrier": "cooling", "quantity": "power_kw"},
            {"id": "ice-soc", "carrier": "none", "quantity": "soc_pct", "asset": "dc-ice"},
        ],
        "assets": [
            {"id": "dc-chiller", "type": "electric_chiller", "cooling_max_kw": CHILLER_KW,
             "cop": COP},
            {"id": "dc-ice", "type": "thermal_storage", "carrier": "cooling",
             "energy_kwh": STORE_KWH, "power_kw": 500, "soc_initial": 0.3, "soc_final": 0.3},
        ],
    }  # fmt: skip
    return {
        "version": 1,
        "timezone": TZ,
        "city": {
            "id": "tcity",
            "parks": [
                {
                    "id": "sp",
                    "grid": {"import_max_kw": 5000, "demand_charge_cny_per_kw": 40},
                    "meters": [{"id": "outdoor", "carrier": "none", "quantity": "temperature_c"}],
                    "buildings": [data_centre],
                }
            ],
        },
    }


async def _realized(pg_url: str, cooling_kw: tuple[float, float], month_peak_kw: float) -> Realized:
    """Eight valley steps of cooling demand alternating `cooling_kw`; the store charged CHARGE_KW
    in each from 20 %, the chiller making what it could of demand and charge (at most
    CHILLER_KW); the month-to-date peak `month_peak_kw`."""
    site = parse_site(_site_doc(), "test-site")
    await prepare_db(pg_url, site)
    index = pd.date_range(FIRST - 4 * STEP, FIRST + (STEPS + 4) * STEP, freq=STEP, inclusive="left")
    position = np.asarray((index - FIRST) / STEP)
    inside = np.clip(position + 1, 0, STEPS)
    soc_pct = 20.0 + inside * CHARGE_KW * 0.25 / STORE_KWH * 100.0
    demand_kw = np.where(position % 2 == 0, *cooling_kw)
    charged = (position >= 0) & (position < STEPS)
    made_kw = np.minimum(demand_kw + np.where(charged, CHARGE_KW, 0.0), CHILLER_KW)
    main_kw = OTHER_KW + made_kw / COP
    await write_readings(
        pg_url,
        {
            "main": pd.Series(main_kw, index),
            "cooling": pd.Series(demand_kw, index),
            "ice-soc": pd.Series(soc_pct, index),
            "outdoor": pd.Series(27.0, index),
        },
    )
    scope = resolve_scope(site, "building", "dc")
    steps = pd.date_range(FIRST, periods=STEPS, freq=STEP, name="ts")
    frame = pd.DataFrame(
        {"actual_import_kw": main_kw[charged], "actual_gas_kw": 0.0},
        index=steps,
    )  # fmt: skip
    priced(frame, scope, pd.DataFrame(), site)
    async with connect(pg_url) as conn:
        found = await realize(
            conn, Backend.POSTGRES, site, scope, frame, pd.DataFrame(), month_peak_kw
        )
    assert found is not None and found.steps == STEPS, found
    return found


async def test_foresight_leaves_unserved_what_the_meters_did_at_the_counterfactuals_price(
    pg_url: str,
) -> None:
    """900 and 600 kW of cooling by turns, 300 kW into the store: 200 kW beyond the chiller's
    1,000 in every other step, which the plant left unserved (4 × 200 kW × 0.25 h = 200 kWh).
    The re-solve must put the same 600 kWh into the store and has 100 kW to spare over the
    demand in the other steps: it leaves 100 kWh unserved, priced as the counterfactual prices
    unserved cooling. Without that it had no schedule at all, nor a demand target."""
    found = await _realized(pg_url, (900.0, 600.0), 10_000.0)
    assert not any("no perfect-foresight plan" in n for n in found.notes), found.notes
    assert not any("no demand target" in n for n in found.notes), found.notes
    perfect = found.breakdown["perfect_foresight"]
    assert perfect.stored_kwh == pytest.approx(0.3 * STORE_KWH, abs=1e-3)
    assert perfect.stored_kwh == pytest.approx(found.breakdown["metered"].stored_kwh, abs=1e-3)
    short_kwh = STEPS / 2 * 0.25 * (900.0 + CHARGE_KW - CHILLER_KW) - STEPS / 2 * 0.25 * (
        CHILLER_KW - 600.0 - CHARGE_KW
    )
    assert short_kwh == pytest.approx(100.0)
    assert perfect.unserved_cny == pytest.approx(
        UNSERVED_CNY_PER_KWH["cooling"] * short_kwh, abs=1e-3
    )
    assert any(
        "perfect foresight leaves 100 kWh of cooling unserved" in n and "show 200 kWh" in n
        for n in found.notes
    ), found.notes
    # the meters' side pays for the 200 kWh it left unserved as the others pay for theirs: free,
    # it put realized savings above perfect foresight's, the bound
    metered = found.breakdown["metered"]
    assert metered.unserved_cny == pytest.approx(UNSERVED_CNY_PER_KWH["cooling"] * 200.0, abs=1e-3)
    assert any("the meters show 200 kWh of cooling demand" in n for n in found.notes)
    assert found.perfect_savings_cny is not None and found.savings_cny is not None
    assert found.perfect_savings_cny >= found.savings_cny - 1e-6


async def test_foresight_sheds_no_demand_the_meters_show_served(pg_url: str) -> None:
    """600 kW of cooling: demand and charge (900 kW) within the chiller's limit, nothing was
    left unserved, so the re-solve may leave nothing unserved either, though with the whole
    peak billed (month-to-date 0) shedding a kW of cooling at 1.2 CNY/kWh would cost less than
    the 40 CNY/kW ÷ COP 5 its chiller's draw adds to the peak."""
    found = await _realized(pg_url, (600.0, 600.0), 0.0)
    perfect = found.breakdown["perfect_foresight"]
    assert perfect.unserved_cny == 0.0
    assert found.breakdown["metered"].unserved_cny == 0.0
    assert not any("unserved" in n for n in found.notes), found.notes
