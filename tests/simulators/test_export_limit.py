"""A park's connection exports no more than its `export_max_kw`: its PV is curtailed first, then
its fuel cells and CHPs are turned down, and what was taken off is reported."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from energyhub.sites import SiteFile, parse_site
from simulators.engine import Engine, SetpointBook
from simulators.plant import EXPORT_TOLERANCE_KW, build_plant
from simulators.simulate import SimulationOptions, simulate
from simulators.weather import TimeGrid
from tests.simulators.conftest import BROKER, clear_status

TZ = ZoneInfo("Asia/Shanghai")
DAY = TimeGrid(datetime(2026, 6, 15, tzinfo=TZ), 900, 96)
"""A clear-ish June day (a Monday) in quarter hours."""


def park_site(export_max_kw: float, *, pv_kw: float = 4000.0) -> SiteFile:
    """A small office under 4 MW of PV and a 1.5 MW fuel cell (it runs 08–11 and 18–21 by
    default), all behind one connection."""
    doc: dict[str, Any] = {
        "version": 1,
        "timezone": "Asia/Shanghai",
        "city": {
            "id": "c",
            "parks": [
                {
                    "id": "p",
                    "grid": {"import_max_kw": 10000, "export_max_kw": export_max_kw},
                    "meters": [{"id": "incomer", "carrier": "electricity", "quantity": "power_kw"}],
                    "assets": [
                        {"id": "fc", "type": "fuel_cell", "power_max_kw": 1500},
                    ],
                    "buildings": [
                        {
                            "id": "office",
                            "class": "office-A",
                            "floor_area_m2": 5000,
                            "meters": [
                                {"id": "main", "carrier": "electricity", "quantity": "power_kw"},
                                {
                                    "id": "pv",
                                    "carrier": "pv",
                                    "quantity": "power_kw",
                                    "asset": "office-pv",
                                },
                            ],
                            "assets": [{"id": "office-pv", "type": "pv", "peak_kw": pv_kw}],
                        }
                    ],
                }
            ],
        },
    }
    return parse_site(doc, "export-test")


def channel(plant: Any, node_id: str, meter_id: str) -> np.ndarray:
    found = [
        i for i, c in enumerate(plant.channels) if c.node.id == node_id and c.meter.id == meter_id
    ]
    return np.asarray(plant.values[found[0]])


@pytest.mark.parametrize("limit_kw", [0.0, 300.0])
def test_the_connection_exports_no_more_than_its_limit(limit_kw: float) -> None:
    plant = build_plant(park_site(limit_kw), DAY, seed=7)
    park = plant.parks[0]
    assert (-park.grid_kw).max() <= limit_kw + 1e-6
    # what the sun gave, less what was curtailed, is what the PV made (and its meter reads)
    office = park.children[0]
    available = office.available_kw["office-pv"]
    made = office.flows["office-pv"].readings["pv"]
    np.testing.assert_allclose(made, available - park.curtailed_kw, atol=1e-9)
    assert park.curtailed_kw.max() > 500.0  # at noon most of the 4 MW is not wanted
    pv_meter = channel(plant, "office", "pv")
    np.testing.assert_allclose(pv_meter, made, rtol=0.05, atol=1e-6)  # meter noise only
    # the evening's fuel cell is turned down to what the office takes (plus the limit)
    evening = np.asarray(plant.hours >= 19.0) & np.asarray(plant.hours < 21.0)
    cell = park.flows["fc"].readings["electricity"]
    assert park.throttled_kw[evening].min() > 0.0
    np.testing.assert_allclose(cell[evening] + park.throttled_kw[evening], 1500.0, rtol=1e-9)
    np.testing.assert_allclose(park.grid_kw[evening], -limit_kw, atol=1e-6)


def test_without_any_excess_nothing_is_curtailed() -> None:
    plant = build_plant(park_site(100000.0), DAY, seed=7)
    park = plant.parks[0]
    assert park.curtailed_kw.max() == 0.0 and park.throttled_kw.max() == 0.0
    assert (-park.grid_kw).max() > 1000.0  # the same day exports freely


def test_a_step_redispatched_under_setpoints_stays_within_the_limit() -> None:
    """The fuel cell asked for full power at noon, under the noon sun: the step is redispatched
    and held again, all the PV curtailed before the fuel cell is turned down."""
    plant = build_plant(park_site(0.0), DAY, seed=7)
    park = plant.parks[0]
    noon = int(np.flatnonzero(np.asarray(plant.hours) >= 12.0)[0])
    before = float(park.curtailed_kw[noon])
    book = SetpointBook(3600.0)
    book.add("p", "fc", plant.grid.start.timestamp() + noon * plant.grid.step_s, 1500.0)
    Engine(plant, book, reset_per_step=0.0).step(noon)
    assert -park.grid_kw[noon] <= EXPORT_TOLERANCE_KW
    cell = park.flows["fc"].readings["electricity"][noon]
    taken = park.curtailed_kw[noon] + park.throttled_kw[noon]
    assert taken == pytest.approx(before + 1500.0)  # all the setpoint would have added
    assert park.throttled_kw[noon] == pytest.approx(1500.0 - cell)
    assert park.throttled_kw[noon] > 0  # more than the sun's 4 MW PV gives the office
    office = park.children[0]
    assert office.flows["office-pv"].readings["pv"][noon] == pytest.approx(0.0, abs=1e-6)  # first


async def test_a_run_reports_what_holding_the_limit_took_off(namespace: str) -> None:
    """An hour at noon over MQTT: the summary carries the PV energy curtailed, the same the
    plant kept step by step."""
    site = park_site(0.0)
    start = datetime(2026, 6, 15, 12, tzinfo=TZ)
    options = SimulationOptions(
        site=site, start=start, duration_s=3600.0, step_s=900.0, speed=None, seed=7,
        url=BROKER, prefix=f"{namespace}energyhub",
    )  # fmt: skip
    summary = await simulate(options)
    await clear_status(site, f"{namespace}energyhub")
    plant = build_plant(site, TimeGrid(start, 900, 4), seed=7)
    expected = float(plant.parks[0].curtailed_kw.sum()) * 0.25
    assert expected > 250.0  # over 1 MW curtailed for the hour
    assert summary.curtailed_kwh == pytest.approx(expected)
    assert summary.throttled_kwh == 0.0  # the fuel cell does not run at noon
