"""A building's demand history from its meters: what is added back, taken out or estimated."""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from energyhub.forecast.profile import ForecastError, ForecastOptions
from energyhub.scheduler.demand import (
    electricity_history,
    outdoor_meter,
    park_electricity_history,
    thermal_history,
)
from energyhub.scheduler.telemetry import StoredMeter, Telemetry, read_telemetry, stored_meters
from energyhub.sites import Building, Park, parse_site
from energyhub.store.db import connect, installed_backend
from tests.scheduler.conftest import BATTERY_KWH, prepare_db, site_doc, write_readings

TZ = ZoneInfo("Asia/Shanghai")
INDEX = pd.date_range("2025-07-01", periods=96 * 3, freq="15min", tz="UTC", name="ts")
NOW = INDEX[-1] + pd.Timedelta(minutes=15)
OPTIONS = ForecastOptions()


def meter(
    i: int, name: str, carrier: str, quantity: str = "power_kw", asset: str | None = None
) -> StoredMeter:
    return StoredMeter(i, "b1", name, carrier, quantity, asset, False)


def building(*assets: dict[str, object]) -> Building:
    return Building.model_validate(
        {"id": "b1", "class": "office-A", "floor_area_m2": 1000, "assets": list(assets)}
    )


def telemetry(values: dict[int, float | np.ndarray]) -> Telemetry:
    frame = pd.DataFrame({k: np.broadcast_to(v, len(INDEX)) for k, v in values.items()}, INDEX)
    return Telemetry(INDEX, frame, TZ)


PV = {"id": "b1-pv", "type": "pv", "peak_kw": 100}
BESS = {"id": "b1-bess", "type": "battery", "energy_kwh": 400, "power_kw": 100}
HP = {"id": "b1-hp", "type": "heat_pump", "heat_max_kw": 200, "cop": 4.0}
EV = {"id": "b1-ev", "type": "flexible_load", "power_max_kw": 50, "energy_kwh": 80,
      "window_start_h": 22, "window_end_h": 24}  # fmt: skip


def test_metered_assets_are_added_back_or_taken_out() -> None:
    meters = [
        meter(1, "main", "electricity"),
        meter(2, "pv", "pv", asset="b1-pv"),
        meter(3, "bess-p", "electricity", asset="b1-bess"),
    ]
    data = telemetry({1: 500.0, 2: 80.0, 3: 50.0})
    result, unseparated = electricity_history(
        building(PV, BESS), meters, data, NOW, OPTIONS, {}, None, set()
    )
    assert result.history.values.to_numpy() == pytest.approx(np.full(len(INDEX), 500 + 80 - 50))
    assert result.history.meter == "b1/main + b1/pv − b1/bess-p"
    assert unseparated == set() and result.notes == []


def test_unmetered_assets_are_estimated_or_noted() -> None:
    meters = [
        meter(1, "main", "electricity"),
        meter(4, "soc", "none", "soc_pct", asset="b1-bess"),
        meter(5, "heat", "heat", "energy_kwh"),
    ]
    soc = 50.0 + np.arange(len(INDEX)) % 2 * 5.0  # 20 kWh in, 20 kWh out, alternately
    data = telemetry({1: 600.0, 4: soc, 5: 300.0})
    heat = thermal_history("heat", building(HP), meters, data, NOW, OPTIONS)
    assert heat is not None
    result, unseparated = electricity_history(
        building(PV, BESS, HP, EV), meters, data, NOW, OPTIONS,
        {"heat": heat.history.values}, None, set(),
    )  # fmt: skip
    values = result.history.values
    local_hours = np.asarray(INDEX.tz_convert(TZ).hour)
    ev = np.where(local_hours >= 22, 40.0, 0.0)
    charge = np.where(np.arange(len(INDEX)) % 2 == 1, 20 / 0.25 / 0.95, -20 / 0.25 * 0.95)
    expected = 600.0 - charge - 200 / 4.0 - ev
    assert values.iloc[1:].to_numpy() == pytest.approx(expected[1:])
    assert np.isnan(values.iloc[0])  # no SOC change before the first reading
    assert unseparated == {"b1-pv"}
    assert result.notes == [
        "b1-pv: no meter; its output stays inside b1:electricity_kw and b1-pv:available_kw is 0",
        "b1-bess: no power meter; its charging is taken from SOC changes of b1/soc",
        "b1-hp: no electricity meter; its draw is estimated as the heat demand it can serve over "
        "its COP (or efficiency) and taken out of the load",
        "b1-ev: no electricity meter; it is taken to have drawn the setpoints sent to it, and "
        "energy_kwh evenly over its daily window where none was sent, taken out of the load (the "
        "plan schedules it anew)",
    ]


def test_a_flexible_load_drew_what_was_sent_to_it_and_its_rule_elsewhere() -> None:
    """Setpoints sent for the first day's window (the simulated device follows them, clipped to
    its limit); the second day's window ran on the device's own rule."""
    local_hours = np.asarray(INDEX.tz_convert(TZ).hour)
    first_day = np.arange(len(INDEX)) < 96
    sent = pd.Series(np.nan, index=INDEX)
    sent[first_day & (local_hours == 22)] = 80.0  # above power_max_kw 50: the device keeps 50
    sent[first_day & (local_hours == 23)] = 0.0
    data = Telemetry(INDEX, pd.DataFrame({1: np.full(len(INDEX), 600.0)}, INDEX), TZ,
                     pd.DataFrame({"b1-ev": sent}))  # fmt: skip
    result, _ = electricity_history(
        building(EV), [meter(1, "main", "electricity")], data, NOW, OPTIONS, {}, None, set()
    )
    rule = np.where(local_hours >= 22, 40.0, 0.0)
    drawn = np.where(first_day & (local_hours == 22), 50.0, np.where(first_day, 0.0, rule))
    assert result.history.values.to_numpy() == pytest.approx(600.0 - drawn)


def test_unplanned_assets_stay_inside_the_load() -> None:
    meters = [meter(1, "main", "electricity"), meter(6, "hp-el", "electricity", asset="b1-hp")]
    data = telemetry({1: 600.0, 6: 70.0})
    result, _ = electricity_history(building(HP), meters, data, NOW, OPTIONS, {}, None, {"b1-hp"})
    assert result.history.values.to_numpy() == pytest.approx(np.full(len(INDEX), 600.0))


def test_no_electricity_meter_is_refused() -> None:
    with pytest.raises(ForecastError, match=r"^b1: no electricity meter"):
        electricity_history(building(), [], telemetry({}), NOW, OPTIONS, {}, None, set())


def test_the_outdoor_sensor_is_the_parks_first() -> None:
    sensors = [
        StoredMeter(1, "b1", "outdoor-roof", "none", "temperature_c", None, False),
        StoredMeter(2, "b1", "indoor", "none", "temperature_c", None, False),
        StoredMeter(3, "p", "air", "none", "temperature_c", None, False),
    ]
    assert outdoor_meter(sensors, "p") == sensors[2]
    assert outdoor_meter(sensors[:2], "p") == sensors[0]
    assert outdoor_meter(sensors[1:2], "p") is None


def test_an_unmetered_overnight_flexible_load_is_taken_out_on_both_sides_of_midnight() -> None:
    ev = EV | {"window_start_h": 22, "window_end_h": 2}  # 80 kWh over 4 h: 20 kW
    data = telemetry({1: 600.0})
    result, _ = electricity_history(
        building(ev), [meter(1, "main", "electricity")], data, NOW, OPTIONS, {}, None, set()
    )
    local_hours = np.asarray(INDEX.tz_convert(TZ).hour)
    drawn = np.where((local_hours >= 22) | (local_hours < 2), 20.0, 0.0)
    assert result.history.values.to_numpy() == pytest.approx(600.0 - drawn)


def park_meter(i: int, site: str, name: str, asset: str | None = None) -> StoredMeter:
    return StoredMeter(i, site, name, "electricity", "power_kw", asset, False)


def park(main_meter: str = "connection", *assets: dict[str, object]) -> Park:
    return Park.model_validate(
        {
            "id": "p1",
            "grid": {"import_max_kw": 5000},
            "main_meter": main_meter,
            "meters": [{"id": "incomer", "carrier": "electricity", "quantity": "power_kw"}],
            "assets": list(assets),
            "buildings": [
                {"id": "b1", "class": "office-A", "floor_area_m2": 1000},
                {"id": "b2", "class": "office-A", "floor_area_m2": 1000},
            ],
        }
    )


def test_a_connected_parks_demand_is_its_connection_less_its_buildings_mains() -> None:
    """Connection 1000 kW, b1's main 900 kW, the park PV 50 kW: 150 kW, and 0 (noted) where
    b1 reads more than the connection; b2 without a main stays inside, noted."""
    meters = [
        park_meter(1, "p1", "incomer"),
        park_meter(2, "b1", "main"),
        park_meter(3, "p1", "pv", asset="p1-pv"),
    ]
    b1 = np.where(np.arange(len(INDEX)) < 10, 1100.0, 900.0)
    found = park_electricity_history(
        park("connection", {"id": "p1-pv", "type": "pv", "peak_kw": 100}),
        meters, telemetry({1: 1000.0, 2: b1, 3: 50.0}), NOW, OPTIONS,
    )  # fmt: skip
    assert found is not None
    result, unseparated = found
    values = result.history.values.to_numpy()
    assert values[:10] == pytest.approx(0.0) and values[10:] == pytest.approx(150.0)
    assert result.history.meter == "p1/incomer − b1/main + p1/pv" and unseparated == set()
    assert any("below 0 in 10 step(s)" in note for note in result.notes)
    assert any(note.startswith("b2: no main electricity meter") for note in result.notes)


def test_an_own_loads_park_meter_is_its_demand_and_none_without_one() -> None:
    meters = [park_meter(1, "p1", "incomer"), park_meter(2, "b1", "main")]
    found = park_electricity_history(
        park("own-loads"), meters, telemetry({1: 120.0, 2: 900.0}), NOW, OPTIONS
    )
    assert found is not None
    assert found[0].history.values.to_numpy() == pytest.approx(120.0)
    none = park_electricity_history(park(), meters[1:], telemetry({2: 900.0}), NOW, OPTIONS)
    assert none is None


CHILLER = {"id": "b1-chiller", "type": "electric_chiller", "cooling_max_kw": 1000, "cop": 5.0}
ICE = {"id": "b1-ice", "type": "thermal_storage", "carrier": "cooling", "energy_kwh": 1000,
       "power_kw": 500}  # fmt: skip


def test_a_chiller_made_the_cooling_less_what_its_ice_store_gave() -> None:
    """The forecast's history of a building whose ice store (no SOC meter) was sent −400 kW
    (discharge) and then +400 kW (charge) on a 600 kW cooling demand: the chiller made 200 kW,
    then 1,000 kW, and the load is the main less that ÷ COP (300 kW throughout); where nothing
    was sent, the chiller made the demand. Taken as the demand ÷ COP every step, the history
    read 80 kW low at the hours the store discharged and the plans' forecasts with it."""
    sent = pd.Series(np.nan, index=INDEX)
    sent.iloc[:4] = [-400.0, -400.0, 400.0, 400.0]
    store_kw = sent.fillna(0.0).to_numpy()
    main = 300.0 + (600.0 + store_kw) / 5.0
    meters = [meter(1, "main", "electricity"), meter(2, "cooling", "cooling")]
    frame = pd.DataFrame({1: main, 2: np.full(len(INDEX), 600.0)}, INDEX)
    data = Telemetry(INDEX, frame, TZ, pd.DataFrame({"b1-ice": sent}))
    cooling = thermal_history("cooling", building(CHILLER, ICE), meters, data, NOW, OPTIONS)
    assert cooling is not None
    result, _ = electricity_history(
        building(CHILLER, ICE), meters, data, NOW, OPTIONS,
        {"cooling": cooling.history.values}, None, set(),
    )  # fmt: skip
    assert result.history.values.to_numpy() == pytest.approx(np.full(len(INDEX), 300.0))
    assert (
        "b1-ice: no SOC readings to use; it is taken to have charged and discharged the "
        "setpoints sent to it (none where none was sent)"
    ) in result.notes


def test_an_ice_store_whose_soc_meter_never_read_falls_back_to_its_setpoints() -> None:
    """The same building with an SOC meter on the ice store that has no readings: the history is
    built from the setpoints sent, as without the meter, and says why (a silent SOC gateway
    made the building's whole electricity history fail)."""
    sent = pd.Series(np.nan, index=INDEX)
    sent.iloc[:4] = [-400.0, -400.0, 400.0, 400.0]
    main = 300.0 + (600.0 + sent.fillna(0.0).to_numpy()) / 5.0
    meters = [meter(1, "main", "electricity"), meter(2, "cooling", "cooling"),
              meter(3, "ice-soc", "none", "soc_pct", "b1-ice")]  # fmt: skip
    frame = pd.DataFrame({1: main, 2: np.full(len(INDEX), 600.0), 3: np.nan}, INDEX)
    data = Telemetry(INDEX, frame, TZ, pd.DataFrame({"b1-ice": sent}))
    cooling = thermal_history("cooling", building(CHILLER, ICE), meters, data, NOW, OPTIONS)
    assert cooling is not None
    result, _ = electricity_history(
        building(CHILLER, ICE), meters, data, NOW, OPTIONS,
        {"cooling": cooling.history.values}, None, set(),
    )  # fmt: skip
    assert result.history.values.to_numpy() == pytest.approx(np.full(len(INDEX), 300.0))
    assert any(n.startswith("b1-ice: its SOC meter b1/ice-soc is not used: ") for n in result.notes)


async def test_a_batterys_charge_from_its_soc_meter_stays_in_the_step_it_charged(
    store_url: str,
) -> None:
    """A battery without a power meter charges 200 kW for one 15-min step, its SOC read every
    minute: the demand is the load in every step. Its SOC per step read as the step's mean (the
    old rule) moved half the charge into the next step (506 and 293 kW for a 400 kW load); as the
    step's last reading only the step's last minute of charging is left for the next one."""
    doc = site_doc()
    office = doc["city"]["parks"][0]["buildings"][0]
    office["meters"] = [m for m in office["meters"] if m["id"] != "bess-p"]
    site = parse_site(doc, "test-site")
    await prepare_db(store_url, site)
    start = pd.Timestamp("2026-11-20", tz="UTC")
    minutes = pd.date_range(start, periods=8 * 15, freq="1min")
    charging = (minutes >= start + pd.Timedelta(minutes=45)) & (
        minutes < start + pd.Timedelta(minutes=60)
    )
    charge_kw, eta = 200.0, 0.95
    stored_kwh = np.cumsum(np.where(charging, charge_kw * eta / 60, 0.0))
    stored_kwh = np.concatenate([[0.0], stored_kwh[:-1]])  # the SOC at each minute's start
    await write_readings(
        store_url,
        {
            "main": pd.Series(400.0 + np.where(charging, charge_kw, 0.0), minutes),
            "pv": pd.Series(0.0, minutes),
            "bess-soc": pd.Series(50.0 + stored_kwh / BATTERY_KWH * 100, minutes),
        },
    )
    async with connect(store_url) as conn:
        backend = await installed_backend(conn)
        meters = await stored_meters(conn, ["office"])
        end = minutes[-1] + pd.Timedelta(minutes=1)
        data = await read_telemetry(
            conn, backend, meters, start.to_pydatetime(), end.to_pydatetime(),
            pd.Timedelta(minutes=15), TZ,
        )  # fmt: skip
    office_building = site.city.parks[0].buildings[0]
    options = replace(OPTIONS, min_history=pd.Timedelta(hours=1))  # two hours of readings
    result, _ = electricity_history(office_building, meters, data, end, options, {}, None, set())
    demand = result.history.values
    assert "office/bess-soc (as power)" in result.history.meter
    one_minute_kw = charge_kw / 15  # the step's last minute of charging, read in the next step
    assert demand.iloc[3] == pytest.approx(400.0 + one_minute_kw)
    assert demand.iloc[4] == pytest.approx(400.0 - one_minute_kw)
    others = demand.drop(demand.index[[0, 3, 4]])
    assert others.to_numpy() == pytest.approx(np.full(len(others), 400.0))


def test_an_unmetered_hydrogen_chain_is_taken_from_its_stores_soc() -> None:
    """A building's electrolyzer and fuel cell without meters, its hydrogen store with an SOC
    meter: hydrogen in was made by the electrolyzer (÷ eta 0.65), hydrogen out ran the fuel cell
    (× eta_el 0.5). Before, both stayed inside the load: the counterfactual was served by the
    fuel cell's output for free and a day that drew the store down counted as a loss."""
    chain = (
        {"id": "b1-el", "type": "electrolyzer", "power_max_kw": 300, "eta": 0.65},
        {"id": "b1-h2", "type": "hydrogen_store", "energy_kwh": 2000, "power_kw": 300},
        {"id": "b1-fc", "type": "fuel_cell", "power_max_kw": 150, "eta_el": 0.5, "eta_th": 0.3},
    )
    meters = [meter(1, "main", "electricity"), meter(2, "soc", "none", "soc_pct", asset="b1-h2")]
    soc = 50.0 + np.arange(len(INDEX)) % 2 * 2.0  # 40 kWh of hydrogen in, 40 out, alternately
    data = telemetry({1: 400.0, 2: soc})
    result, _ = electricity_history(building(*chain), meters, data, NOW, OPTIONS, {}, None, set())
    hydrogen_kw = np.where(np.arange(len(INDEX)) % 2 == 1, 40 / 0.25, -40 / 0.25)
    drawn = np.where(hydrogen_kw > 0, hydrogen_kw / 0.65, hydrogen_kw * 0.5)
    values = result.history.values
    assert values.iloc[1:].to_numpy() == pytest.approx(400.0 - drawn[1:])
    assert result.history.meter == "b1/main − b1/soc (as power)"
    assert result.notes == [
        "b1-el and b1-fc: no electricity meter; what they drew and made is taken from SOC "
        "changes of b1/soc"
    ]
    metered = [*meters, meter(3, "fc", "electricity", asset="b1-fc")]
    result, _ = electricity_history(
        building(*chain), metered, telemetry({1: 400.0, 2: soc, 3: 10.0}), NOW, OPTIONS, {},
        None, set(),
    )  # fmt: skip
    assert result.history.meter == "b1/main + b1/fc"  # one metered: no guess from the SOC


def test_a_battery_without_meters_drew_the_setpoints_sent_to_it() -> None:
    """A battery with neither a power nor an SOC meter, sent +150 kW (above its 100 kW: it keeps
    100) and −60 kW the first day and nothing the second: the setpoints are taken out of the
    load where sent, nothing where its own rule ran. Before, its charging stayed inside the load:
    the counterfactual was served by the plans' own dispatch (a park of 30 small shops lost 147
    CNY a day on storage the meters could not see)."""
    local_hours = np.asarray(INDEX.tz_convert(TZ).hour)
    first_day = np.arange(len(INDEX)) < 96
    sent = pd.Series(np.nan, index=INDEX)
    sent[first_day] = np.where(local_hours[first_day] < 6, 150.0, -60.0)
    data = Telemetry(INDEX, pd.DataFrame({1: np.full(len(INDEX), 600.0)}, INDEX), TZ,
                     pd.DataFrame({"b1-bess": sent}))  # fmt: skip
    result, _ = electricity_history(
        building(BESS), [meter(1, "main", "electricity")], data, NOW, OPTIONS, {}, None, set()
    )
    drawn = np.where(first_day, np.where(local_hours < 6, 100.0, -60.0), 0.0)
    assert result.history.values.to_numpy() == pytest.approx(600.0 - drawn)
    assert result.notes == [
        "b1-bess: no power or SOC meter; it is taken to have charged and discharged the "
        "setpoints sent to it (none where none was sent), taken out of the load"
    ]
