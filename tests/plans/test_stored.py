"""Energy left in or taken from storage is valued the same on every side of a comparison."""

from __future__ import annotations

import pandas as pd
import pytest

from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.network import Context
from energyhub.optimize.scope import resolve_scope
from energyhub.plans.realized import Side, finish
from energyhub.plans.stored import day_context, store_values, stored_value, whole_days
from tests.optimize.cases import building_site, inputs

BATTERY = {"id": "bess", "type": "battery", "energy_kwh": 1000, "power_kw": 500,
           "eta_charge": 0.9, "eta_discharge": 0.95}  # fmt: skip
HEAT_STORE = {"id": "tes", "type": "thermal_storage", "carrier": "heat", "energy_kwh": 500,
              "power_kw": 100, "eta_charge": 0.98, "eta_discharge": 0.97}  # fmt: skip
BOILER = {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 200, "eta": 0.8}
GAS = {"price_cny_per_nm3": 1.0, "lhv_kwh_per_nm3": 10.0}  # 0.1 CNY/kWh


def _context(prices: list[float]) -> Context:
    site = building_site(
        [BATTERY, HEAT_STORE, BOILER],
        gas=GAS,
        carbon={"price_cny_per_t": 100, "grid_kg_per_kwh": 0.5, "gas_kg_per_kwh": 0.2},
    )
    frame = inputs(
        len(prices), b1__electricity_kw=100, b1__heat_kw=50, import_price_cny_per_kwh=prices
    )
    return Context.bare(resolve_scope(site, "building", "b1"), read_inputs(frame, site.tz))


def test_a_battery_kwh_is_worth_the_mean_import_price_through_its_efficiencies() -> None:
    """Prices 0.3 and 0.9 (mean 0.6) plus carbon 0.1 CNY/kg × 0.5 kg/kWh: 0.65 CNY/kWh.
    Left in: × η_discharge 0.95; taken: ÷ η_charge 0.9."""
    values = store_values(_context([0.3, 0.9]))
    assert values["bess"].of(100.0) == pytest.approx((100 * 0.65 * 0.95, 100 * 0.5 * 0.95))
    assert values["bess"].of(-100.0) == pytest.approx((-100 * 0.65 / 0.9, -100 * 0.5 / 0.9))


def test_a_heat_store_kwh_is_worth_the_cheapest_heater() -> None:
    """The boiler (η 0.8): (0.1 + 0.1 × 0.2) / 0.8 = 0.15 CNY and 0.25 kg per kWh of heat."""
    values = store_values(_context([0.5, 0.5]))
    assert values["tes"].of(10.0) == pytest.approx((10 * 0.15 * 0.97, 10 * 0.25 * 0.97))


def test_draining_a_battery_is_no_saving() -> None:
    """At one price (0.65 effective), the meters take 100 kWh from the battery: 95 kWh less
    import. Refilling it costs 100 / 0.9: the saving is negative, and perfect foresight that
    leaves the same change is credited exactly as the meters are."""
    values = store_values(_context([0.6, 0.6]))
    credit, credit_kg = stored_value({"bess": -100.0}, values)
    counterfactual = Side(energy_cny=1000.0, co2_kg=500.0)
    metered = Side(
        energy_cny=1000.0 - 95 * 0.6,
        carbon_cny=-95 * 0.05,
        co2_kg=500.0 - 95 * 0.5,
        stored_kwh=-100.0,
        stored_cny=credit,
        stored_kg=credit_kg,
    )
    found = finish(
        steps=4,
        sides={"counterfactual": counterfactual, "metered": metered, "perfect_foresight": metered},
        notes=[],
    )
    assert found.savings_cny == pytest.approx(95 * 0.65 - 100 * 0.65 / 0.9)
    assert found.savings_cny < 0
    assert found.savings_co2_kg == pytest.approx(95 * 0.5 - 100 * 0.5 / 0.9)
    assert found.perfect_savings_cny == pytest.approx(found.savings_cny)
    assert found.capture_ratio is None  # perfect foresight saves nothing either


def test_a_store_is_valued_at_its_whole_days_mean_wherever_the_window_cuts_it() -> None:
    """Shanghai's tariff in December (valley 0.30 × 8 h, flat 0.65 × 10 h, peak 1.10 × 4 h,
    critical 1.375 × 2 h: mean 0.7083 CNY/kWh): the evening peak alone (18:30–21:00), the night
    after midnight, and the two local days a window across midnight touches all value a kWh in
    the battery at that mean. Valued over its own steps, the evening window's kWh was worth
    1.10–1.375, the night's 0.30: where a query cut the day decided what the store was worth."""
    site = building_site(
        [BATTERY, HEAT_STORE, BOILER],
        grid={"tariff": "shanghai-two-part", "tariff_prices_cny_per_kwh": {}},
        gas=GAS,
        carbon={"price_cny_per_t": 0},
    )
    scope = resolve_scope(site, "building", "b1")
    step = pd.Timedelta(minutes=15)
    mean = (8 * 0.30 + 10 * 0.65 + 4 * 1.10 + 2 * 1.375) / 24
    windows = [
        pd.date_range("2026-12-01 18:30", "2026-12-01 21:00", freq=step, tz="Asia/Shanghai"),
        pd.date_range("2026-12-02 00:00", "2026-12-02 05:00", freq=step, tz="Asia/Shanghai"),
        pd.date_range("2026-12-02 20:00", "2026-12-03 02:00", freq=step, tz="Asia/Shanghai"),
    ]
    for window in windows:
        days = whole_days(window.tz_convert("UTC"), site.tz, step)
        assert days[0].tz_convert(site.tz).hour == 0 and len(days) % 96 == 0
        values = store_values(day_context(scope, days, site.tz, pd.DataFrame(), None))
        assert values["bess"].of(100.0)[0] == pytest.approx(100 * 0.95 * mean), window[0]


def test_whole_days_across_a_skipped_midnight() -> None:
    """Santiago skips 2026-09-06 00:00 (clocks go to 01:00): that day starts at 01:00 local and
    lasts 23 h; a window on the 5th or the 6th reads its whole days without an error."""
    from zoneinfo import ZoneInfo

    tz, step = ZoneInfo("America/Santiago"), pd.Timedelta(minutes=15)
    sixth = pd.date_range("2026-09-06T12:00Z", periods=4, freq=step)
    days = whole_days(sixth, tz, step)
    assert days[0] == pd.Timestamp("2026-09-06T04:00Z")  # 01:00 -03:00, where the clocks resume
    assert len(days) == 23 * 4
    fifth = pd.date_range("2026-09-05T12:00Z", periods=4, freq=step)
    assert len(whole_days(fifth, tz, step)) == 24 * 4


def test_an_idle_store_with_a_standing_loss_loses_on_the_counterfactual_side_too() -> None:
    """A heat store of 500 kWh at 60 % losing 1 % an hour, idle for 6 h on the meters and in
    the counterfactual: both lose 300 × (1 − 0.99⁶) kWh, valued alike, so storage saves nothing.
    Before, the counterfactual's idle store kept all it held and the meters paid for the loss."""
    from energyhub.plans.realized import _Run, _valued
    from energyhub.plans.stored import idle_losses_kwh
    from energyhub.sites import ThermalStorage

    store = ThermalStorage.model_validate({**HEAT_STORE, "loss_per_h": 0.01})
    lost = idle_losses_kwh([store], {"tes": 0.6}, 6.0)
    assert lost == {"tes": pytest.approx(-300 * (1 - 0.99**6))}
    assert idle_losses_kwh([store.model_copy(update={"loss_per_h": 0.0})], {"tes": 0.6}, 6) == {}
    assert idle_losses_kwh([store], {}, 6.0) == {}  # no starting SOC: nothing to lose from
    values = store_values(_context([0.5, 0.5]))
    bill = Side(energy_cny=100.0, gas_cny=20.0, co2_kg=80.0)
    sides = {"counterfactual": bill, "metered": bill}
    run = _Run(finish(steps=24, sides=sides, notes=[]), {"counterfactual": lost, "metered": lost})
    found = _valued([run], [], values)
    assert found.breakdown["counterfactual"].stored_cny == pytest.approx(
        values["tes"].of(lost["tes"])[0]
    )
    assert found.breakdown["metered"].stored_cny < 0
    assert found.savings_cny == pytest.approx(0.0)
    assert found.savings_co2_kg == pytest.approx(0.0)
