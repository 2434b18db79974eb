"""The metered bill of a park without a main meter of its own: its buildings' mains, plus what
its shared assets supply, draw and burn, read from their own meters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from energyhub.optimize.scope import resolve_scope
from energyhub.plans.counterfactual import metered_inputs
from energyhub.plans.metered import actual_frame
from energyhub.plans.peak import connection_month_peak_kw
from energyhub.sites import parse_site
from energyhub.store.db import Backend, connect
from tests.scheduler.conftest import TZ, prepare_db, write_readings

PARK_BATTERY_KWH = 1000.0
MAIN_KW = 800.0
CHP_EL_KW = 350.0
CHP_GAS_KW = 1000.0


ASSETS = [
    {"id": "chp", "type": "chp", "fuel_max_kw": 1000, "eta_el": 0.35, "eta_th": 0.45},
    {"id": "pbess", "type": "battery", "energy_kwh": PARK_BATTERY_KWH, "power_kw": 500,
     "eta_charge": 0.95, "eta_discharge": 0.95},
]  # fmt: skip


def _site_doc(*, park_main: bool, office_main: bool | None = None) -> dict[str, Any]:
    """`office_main` unset: the office has a main meter only where the park has none."""
    meters: list[dict[str, Any]] = [
        {"id": "chp-el", "carrier": "electricity", "quantity": "power_kw", "asset": "chp"},
        {"id": "chp-gas", "carrier": "gas", "quantity": "power_kw", "asset": "chp"},
        {"id": "pbess-soc", "carrier": "none", "quantity": "soc_pct", "asset": "pbess"},
    ]
    if park_main:
        meters.append({"id": "park-main", "carrier": "electricity", "quantity": "power_kw"})
    return {
        "version": 1,
        "timezone": TZ,
        "city": {
            "id": "tcity",
            "parks": [
                {
                    "id": "sp",
                    "grid": {"import_max_kw": 5000},
                    "gas": {"price_cny_per_nm3": 3.8, "lhv_kwh_per_nm3": 9.97},
                    "meters": meters,
                    "assets": ASSETS,
                    "buildings": [
                        {
                            "id": "office",
                            "class": "office-A",
                            "floor_area_m2": 20000,
                            "meters": [
                                {"id": "main", "carrier": "electricity", "quantity": "power_kw"}
                            ]
                            if (not park_main if office_main is None else office_main)
                            else [],
                        }
                    ],
                }
            ],
        },
    }


INDEX = pd.date_range("2025-07-07 16:00", periods=4, freq="15min", tz="UTC")


async def _frame(pg_url: str, *, park_main: bool, office_main: bool | None = None) -> pd.DataFrame:
    site = parse_site(_site_doc(park_main=park_main, office_main=office_main), "park-site")
    await prepare_db(pg_url, site)
    index = INDEX
    before = index.insert(0, index[0] - pd.Timedelta(minutes=15))
    soc_pct = pd.Series([50.0, 55.0, 60.0, 60.0, 50.0], index=before)  # +50, +50, 0, −100 kWh
    await write_readings(
        pg_url,
        {
            "main": pd.Series(MAIN_KW, index=index),
            "park-main": pd.Series(MAIN_KW - CHP_EL_KW, index=index),
            "chp-el": pd.Series(CHP_EL_KW, index=index),
            "chp-gas": pd.Series(CHP_GAS_KW, index=index),
            "pbess-soc": soc_pct,
        },
    )
    async with connect(pg_url) as conn:
        return await actual_frame(conn, Backend.POSTGRES, resolve_scope(site, "park", "sp"), index)


async def test_a_park_without_a_main_meter_adds_its_shared_assets(pg_url: str) -> None:
    """Import = the office main − the CHP's output + the park battery's charging (from its SOC:
    50 kWh a quarter hour through η 0.95 is 210.5 kW; 100 kWh out is −380 kW); gas = the CHP's."""
    frame = await _frame(pg_url, park_main=False)
    charging = np.array([50 / 0.95, 50 / 0.95, 0.0, -100 * 0.95]) * 4
    np.testing.assert_allclose(frame["import_kw"], MAIN_KW - CHP_EL_KW + charging)
    np.testing.assert_allclose(frame["gas_kw"], CHP_GAS_KW)
    assert frame["battery_kw"].to_numpy() == pytest.approx(charging)


async def test_a_park_main_meter_already_holds_them(pg_url: str) -> None:
    """With a park main meter the shared assets are inside it: nothing is added to the import;
    the CHP's gas meter is still the park's only gas meter, so it is the gas."""
    frame = await _frame(pg_url, park_main=True)
    np.testing.assert_allclose(frame["import_kw"], MAIN_KW - CHP_EL_KW)
    np.testing.assert_allclose(frame["gas_kw"], CHP_GAS_KW)


async def test_a_park_main_meter_is_the_import_beside_its_buildings_mains(pg_url: str) -> None:
    """A park main meter is the park's connection: with the office's main beside it, the
    import is the park main's (450 kW), not the office's 800 kW added to it; the peak too."""
    frame = await _frame(pg_url, park_main=True, office_main=True)
    np.testing.assert_allclose(frame["import_kw"], MAIN_KW - CHP_EL_KW)
    site = parse_site(_site_doc(park_main=True, office_main=True), "park-site")
    before = (INDEX[-1] + pd.Timedelta(minutes=15)).to_pydatetime()
    async with connect(pg_url) as conn:
        found = await connection_month_peak_kw(
            conn, Backend.POSTGRES, resolve_scope(site, "park", "sp"), before, site.tz
        )
    assert found == pytest.approx(MAIN_KW - CHP_EL_KW)


@pytest.mark.parametrize("park_main", [False, True])
async def test_the_month_peak_is_the_connections(pg_url: str, park_main: bool) -> None:
    """Without a park main meter the peak is the mains' less the CHP plus the park battery's
    charging (800 − 350 + 210.5), not the mains' 800; with one, the rollup's (its 450)."""
    await _frame(pg_url, park_main=park_main)
    site = parse_site(_site_doc(park_main=park_main), "park-site")
    before = (INDEX[-1] + pd.Timedelta(minutes=15)).to_pydatetime()
    async with connect(pg_url) as conn:
        found = await connection_month_peak_kw(
            conn, Backend.POSTGRES, resolve_scope(site, "park", "sp"), before, site.tz
        )
    expected = MAIN_KW - CHP_EL_KW + (0.0 if park_main else 50 / 0.95 * 4)
    assert found == pytest.approx(expected)


COMMON_KW = 200.0


@pytest.mark.parametrize("main_meter", ["connection", "own-loads"])
async def test_a_park_main_meter_gives_the_park_its_own_demand(
    pg_url: str, main_meter: str
) -> None:
    """The perfect-foresight inputs carry the park's own demand: its main meter less the office's
    main (at its connection; not with own-loads) with the CHP's output added back and the
    battery's charging (from its SOC) taken out: the 200 kW common load, each step."""
    doc = _site_doc(park_main=True, office_main=True)
    doc["city"]["parks"][0]["main_meter"] = main_meter
    site = parse_site(doc, "park-site")
    await prepare_db(pg_url, site)
    before = INDEX.insert(0, INDEX[0] - pd.Timedelta(minutes=15))
    soc_pct = pd.Series([50.0, 55.0, 60.0, 60.0, 50.0], index=before)  # +50, +50, 0, −100 kWh
    charging = np.array([50 / 0.95, 50 / 0.95, 0.0, -100 * 0.95]) * 4
    inside = MAIN_KW if main_meter == "connection" else 0.0
    await write_readings(
        pg_url,
        {
            "main": pd.Series(MAIN_KW, index=INDEX),
            "park-main": pd.Series(inside + COMMON_KW - CHP_EL_KW + charging, index=INDEX),
            "chp-el": pd.Series(CHP_EL_KW, index=INDEX),
            "pbess-soc": soc_pct,
        },
    )
    async with connect(pg_url) as conn:
        found = await metered_inputs(
            conn, Backend.POSTGRES, site, resolve_scope(site, "park", "sp"), INDEX, pd.DataFrame()
        )
    np.testing.assert_allclose(found.frame["sp:electricity_kw"], COMMON_KW)
    np.testing.assert_allclose(found.frame["office:electricity_kw"], MAIN_KW)


async def test_a_retired_park_main_holds_its_shared_assets_until_it_ends(pg_url: str) -> None:
    """The park main read the connection (450 kW: the office's 800 less the CHP's 350) for the
    first half hour and was then removed from the site file: until then the import is its 450,
    neither the office's 800 added to it nor the CHP and battery taken off again; after it, the
    office's main less the CHP plus the battery's charging. The month peak reads the same."""
    with_main = parse_site(_site_doc(park_main=True, office_main=True), "park-site")
    await prepare_db(pg_url, with_main)
    before = INDEX.insert(0, INDEX[0] - pd.Timedelta(minutes=15))
    await write_readings(
        pg_url,
        {
            "main": pd.Series(MAIN_KW, index=INDEX),
            "park-main": pd.Series(MAIN_KW - CHP_EL_KW, index=INDEX[:2]),
            "chp-el": pd.Series(CHP_EL_KW, index=INDEX),
            "chp-gas": pd.Series(CHP_GAS_KW, index=INDEX),
            "pbess-soc": pd.Series([50.0, 55.0, 60.0, 60.0, 50.0], index=before),
        },
    )
    site = parse_site(_site_doc(park_main=False, office_main=True), "park-site")
    await prepare_db(pg_url, site)  # the park main is retired
    scope = resolve_scope(site, "park", "sp")
    async with connect(pg_url) as conn:
        frame = await actual_frame(conn, Backend.POSTGRES, scope, INDEX)
        peak = await connection_month_peak_kw(
            conn, Backend.POSTGRES, scope, (INDEX[-1] + pd.Timedelta(minutes=15)).to_pydatetime(),
            site.tz,
        )  # fmt: skip
    charging = np.array([0.0, -100 * 0.95]) * 4
    expected = [MAIN_KW - CHP_EL_KW] * 2 + list(MAIN_KW - CHP_EL_KW + charging)
    np.testing.assert_allclose(frame["import_kw"], expected)
    assert peak == pytest.approx(MAIN_KW - CHP_EL_KW)
    # one main expected at each step, the park's and then the office's: counting the retired
    # meter for ever after halved the coverage, below what the peak guard needs to act
    np.testing.assert_allclose(frame["meters:electricity"], 1.0)


CHILLER_COP = 5.0
DC_LOAD_KW = 300.0
DC_COOLING_KW = 600.0


async def test_a_chiller_beside_an_ice_store_made_the_cooling_less_what_the_store_gave(
    pg_url: str,
) -> None:
    """A data centre's chiller (no electricity meter) beside an ice store with a SOC meter: in
    the step the store gave 400 kW of cold the chiller made 200 kW of the 600 kW demand, in the
    one it took 400 kW in it made 1,000 kW; the demand the counterfactual and perfect foresight
    are solved on is the main less what the chiller drew, its 300 kW load in every step (taken
    as the whole 600 kW ÷ COP, it read 80 kW low while the store discharged and 80 kW high while
    it charged: the store's arbitrage credited to the counterfactual)."""
    doc = _site_doc(park_main=False, office_main=True)
    doc["city"]["parks"][0]["buildings"].append(
        {
            "id": "dc",
            "class": "data-center",
            "floor_area_m2": 5000,
            "meters": [
                {"id": "dc-main", "carrier": "electricity", "quantity": "power_kw"},
                {"id": "dc-cooling", "carrier": "cooling", "quantity": "power_kw"},
                {"id": "ice-soc", "carrier": "none", "quantity": "soc_pct", "asset": "ice"},
            ],
            "assets": [
                {"id": "dc-chiller", "type": "electric_chiller", "cooling_max_kw": 1000,
                 "cop": CHILLER_COP},
                {"id": "ice", "type": "thermal_storage", "carrier": "cooling",
                 "energy_kwh": 1000, "power_kw": 500},
            ],
        }
    )  # fmt: skip
    site = parse_site(doc, "park-site")
    await prepare_db(pg_url, site)
    before = INDEX.insert(0, INDEX[0] - pd.Timedelta(minutes=15))
    store_kw = np.array([0.0, -400.0, 0.0, 400.0])  # 100 kWh out, then 100 kWh in
    soc_pct = np.r_[50.0, 50.0 + np.cumsum(store_kw) * 0.25 / 1000 * 100]
    chiller_kw = (DC_COOLING_KW + store_kw) / CHILLER_COP
    await write_readings(
        pg_url,
        {
            "main": pd.Series(MAIN_KW, index=INDEX),
            "chp-el": pd.Series(0.0, index=INDEX),
            "dc-main": pd.Series(DC_LOAD_KW + chiller_kw, index=INDEX),
            "dc-cooling": pd.Series(DC_COOLING_KW, index=INDEX),
            "ice-soc": pd.Series(soc_pct, index=before),
        },
    )
    async with connect(pg_url) as conn:
        found = await metered_inputs(
            conn, Backend.POSTGRES, site, resolve_scope(site, "park", "sp"), INDEX, pd.DataFrame()
        )
    np.testing.assert_allclose(found.frame["dc:electricity_kw"], DC_LOAD_KW)
    np.testing.assert_allclose(found.frame["dc:cooling_kw"], DC_COOLING_KW)


async def test_an_hourly_plan_from_half_past_reads_the_soc_at_its_steps_ends(pg_url: str) -> None:
    """An hourly plan of a +05:30 site steps from :30 UTC (its local hours): each step's SOC is
    the last reading inside it, not inside the UTC hour (whose buckets matched no step at all,
    so the battery's charging and the stores' energy were unknown)."""
    site = parse_site(_site_doc(park_main=False), "park-site")
    await prepare_db(pg_url, site)
    index = pd.date_range("2025-07-07 16:30", periods=3, freq="1h", tz="UTC")
    quarters = pd.date_range("2025-07-07 15:30", "2025-07-07 19:30", freq="15min", tz="UTC",
                             inclusive="left")  # fmt: skip
    hour = (quarters - quarters[0]) // pd.Timedelta(hours=1)
    soc_pct = pd.Series(np.array([50.0, 55.0, 60.0, 50.0])[hour], index=quarters)
    await write_readings(pg_url, {"main": pd.Series(MAIN_KW, index=quarters), "pbess-soc": soc_pct})
    async with connect(pg_url) as conn:
        frame = await actual_frame(conn, Backend.POSTGRES, resolve_scope(site, "park", "sp"), index)
    charging = np.array([50 / 0.95, 50 / 0.95, -100 * 0.95])  # kWh in an hour: kW
    assert frame["battery_kw"].to_numpy() == pytest.approx(charging)
    assert frame["soc_kwh:pbess"].to_numpy() == pytest.approx([550.0, 600.0, 500.0])
