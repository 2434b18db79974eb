"""The bill of metered or planned steps (`energyhub.plans.bill`): the demand charge per billing
month in the site's time zone, as the plan's own model bills it."""

from __future__ import annotations

import pandas as pd
import pytest

from energyhub.optimize.scope import resolve_scope
from energyhub.plans.bill import account, priced
from tests.optimize.cases import building_site

RATE = 40.0


def _steps(start_local: str, import_kw: list[float], billing: str = "monthly") -> tuple[float, ...]:
    site = building_site([], grid={"demand_charge_cny_per_kw": RATE, "demand_billing": billing})
    scope = resolve_scope(site, "park", "p")
    index = pd.date_range(start_local, periods=len(import_kw), freq="1h", tz=site.tz)
    frame = pd.DataFrame(index=index.tz_convert("UTC"))
    priced(frame, scope, pd.DataFrame(index=frame.index), site)
    net = pd.Series(import_kw, index=frame.index)
    bill = account(net, pd.Series(0.0, index=frame.index), frame, scope, 1.0, 600.0)
    return bill.demand_cny, bill.energy_cny, bill.peak_import_kw


def test_a_month_end_inside_the_steps_bills_the_new_month_from_zero() -> None:
    """31 March 23:00 and 1 April 00:00, 01:00 local (15:00–17:00 UTC on 31 March): March's 300 kW
    stays under its 600 kW month-to-date peak; April's 500 kW is its first peak, all billed."""
    demand, energy, peak = _steps("2025-03-31 23:00", [300.0, 500.0, 400.0])
    assert demand == pytest.approx(RATE * 500)
    assert energy == pytest.approx(0.5 * 1200)
    assert peak == 500.0


def test_inside_one_month_only_the_rise_is_billed() -> None:
    demand, _, _ = _steps("2025-03-31 20:00", [300.0, 700.0, 400.0])
    assert demand == pytest.approx(RATE * 100)


def test_daily_billing_bills_the_whole_peak_once() -> None:
    demand, _, _ = _steps("2025-03-31 23:00", [300.0, 500.0, 700.0], billing="daily")
    assert demand == pytest.approx(RATE * 700)
