"""Shapes, weather and counters of the virtual park, without a broker."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from energyhub.sites import Location, SiteFile
from simulators.devices import StorageState
from simulators.engine import Engine, SetpointBook
from simulators.plant import Node, Plant, build_plant
from simulators.weather import TimeGrid, cos_zenith


def _plant(site: SiteFile, start: str, days: int = 2, seed: int = 7) -> Plant:
    grid = TimeGrid(datetime.fromisoformat(start), 600.0, days * 144)
    return build_plant(site, grid, seed)


def _row(plant: Plant, node: str, meter: str) -> np.ndarray:
    index = next(
        i for i, c in enumerate(plant.channels) if c.node.id == node and c.meter.id == meter
    )
    return plant.values[index]


def test_same_seed_same_plant_and_other_seed_differs(site: SiteFile) -> None:
    first = _plant(site, "2025-07-01T00:00:00+08:00", seed=3)
    again = _plant(site, "2025-07-01T00:00:00+08:00", seed=3)
    other = _plant(site, "2025-07-01T00:00:00+08:00", seed=4)
    assert np.array_equal(first.values, again.values)
    assert not np.array_equal(first.values, other.values)


@pytest.mark.parametrize("start", ["2025-01-15T00:00:00+08:00", "2025-07-15T00:00:00+08:00"])
def test_lab_night_load_above_office_and_office_day_above_night(site: SiteFile, start: str) -> None:
    plant = _plant(site, start)  # a Wednesday and a Tuesday: working days
    hours = plant.grid.local_hours()
    night, day = (hours >= 1) & (hours < 4), (hours >= 10) & (hours < 16)
    office_main, lab_main = _row(plant, "office", "main"), _row(plant, "lab", "main")
    office_pv = _row(plant, "office", "pv")
    assert lab_main[night].mean() > 1.5 * (office_main[night] + office_pv[night]).mean()
    assert office_main[day].mean() > 2 * office_main[night].mean()


def test_pv_is_zero_at_night_and_positive_around_noon(site: SiteFile) -> None:
    plant = _plant(site, "2025-06-01T00:00:00+08:00", days=3)
    pv = _row(plant, "office", "pv")
    sun = cos_zenith(plant.grid)
    assert np.all(pv[sun <= 0] == 0)
    hours = plant.grid.local_hours()
    assert pv[(hours > 11) & (hours < 13)].min() > 0
    assert pv.max() <= 300


def test_a_site_s_pv_follows_the_sun_of_its_location(site: SiteFile) -> None:
    """Without coordinates in the site file the sun stood over Shanghai wherever the site was: a
    site in Colorado made its PV at night, local time. With `location` it is the site's sun."""
    golden = {"latitude_deg": 39.742, "longitude_deg": -105.173}
    denver = site.model_copy(update={"timezone": "America/Denver"})
    placed = denver.model_copy(update={"location": Location(**golden)})
    for where, noon_h in ((denver, (21.0, 23.0)), (placed, (12.0, 14.0))):  # MDT, June
        plant = _plant(where, "2025-06-01T00:00:00-06:00", days=1)
        sun = cos_zenith(plant.grid)
        peak_h = float(plant.grid.local_hours()[np.argmax(sun)])
        assert noon_h[0] < peak_h < noon_h[1], (where.location, peak_h)
        pv = _row(plant, "office", "pv")
        assert np.all(pv[sun <= 0] == 0) and pv[np.argmax(sun)] > 0


def test_weekend_office_load_below_weekday(site: SiteFile) -> None:
    plant = _plant(site, "2025-07-07T00:00:00+08:00", days=7)  # Monday to Sunday
    main = _row(plant, "office", "main") + _row(plant, "office", "pv")
    weekday = plant.grid.local_weekday()
    hours = plant.grid.local_hours()
    office_hours = (hours >= 10) & (hours < 16)
    assert (
        main[office_hours & (weekday >= 5)].mean() < 0.5 * main[office_hours & (weekday < 5)].mean()
    )


def test_summer_cooling_winter_heating(site: SiteFile) -> None:
    summer = _plant(site, "2025-07-20T00:00:00+08:00")
    winter = _plant(site, "2025-01-20T00:00:00+08:00")
    assert _row(summer, "lab", "cooling").mean() > _row(winter, "lab", "cooling").mean()
    assert _row(winter, "lab", "heat").mean() > 10 * _row(summer, "lab", "heat").mean() + 1


def test_counters_climb_and_wrap_at_their_rollover(site: SiteFile) -> None:
    plant = _plant(site, "2025-07-01T00:00:00+08:00", days=3)
    engine = Engine(plant, SetpointBook(3600.0), reset_per_step=0.0)
    index = next(i for i, c in enumerate(plant.channels) if c.meter.id == "main-kwh")
    readings = [engine.step(t).value[index] for t in range(plant.grid.steps)]
    steps = np.diff(readings)
    assert all(0 <= r < 1000 for r in readings)
    wraps = steps < 0
    assert wraps.sum() >= 5  # ~1 MWh/day over three days on a 1,000 kWh register
    assert np.all(steps[~wraps] >= 0)
    assert engine.events["counter rollovers"] == wraps.sum()


def test_counter_resets_happen_at_the_given_rate(site: SiteFile) -> None:
    plant = _plant(site, "2025-07-01T00:00:00+08:00")
    engine = Engine(plant, SetpointBook(3600.0), reset_per_step=0.05)
    for t in range(plant.grid.steps):
        engine.step(t)
    counters = sum(1 for c in plant.channels if c.counter or c.meter.device)
    expected = 0.05 * counters * plant.grid.steps
    assert 0.6 * expected < engine.events["counter resets"] < 1.4 * expected


def test_storage_step_respects_power_and_soc_limits(site: SiteFile) -> None:
    battery = site.city.parks[0].buildings[0].assets[1]
    state = StorageState(battery, 0.5)  # type: ignore[arg-type]
    powers = [state.step(1000.0, 1 / 60) for _ in range(40)]
    assert max(powers) == pytest.approx(100.0)
    assert state.soc == pytest.approx(0.9)
    assert powers[-1] == pytest.approx(0.0)
    down = [state.step(-1000.0, 1 / 60) for _ in range(60)]
    assert min(down) == pytest.approx(-100.0)
    assert state.soc == pytest.approx(0.1)


def test_converters_follow_setpoints_within_limits_and_meters_show_it(site: SiteFile) -> None:
    plant = _plant(site, "2025-01-15T12:00:00+08:00", days=1)  # the lab's heat takes the CHP's
    start, step = plant.grid.start.timestamp(), plant.grid.step_s
    book = SetpointBook(3600.0)
    book.add("office", "office-hp", start, 1000.0)  # above heat_max_kw 300
    book.add("office", "office-chiller", start, 123.0)
    book.add("tp", "tp-chp", start, 100.0)  # below min load: 0.4 · 1000 · 0.35 = 140 kW
    book.add("tp", "tp-chp", start + step, 0.0)  # stop
    engine = Engine(plant, book, reset_per_step=0.0)
    office, park = plant.parks[0].children[0], plant.parks[0]
    engine.step(0)
    hp, chiller = office.flows["office-hp"].readings, office.flows["office-chiller"].readings
    chp = park.flows["tp-chp"].readings
    heat_kw = min(300.0, float(office.loads.heat_kw[0]))  # type: ignore[union-attr]
    assert heat_kw > 0  # clipped to heat_max_kw and to the heat the office takes
    assert (hp["heat"][0], hp["electricity"][0]) == pytest.approx((heat_kw, heat_kw / 3.5))
    assert (chiller["cooling"][0], chiller["electricity"][0]) == pytest.approx((123.0, 123 / 5))
    assert (chp["electricity"][0], chp["gas"][0], chp["heat"][0]) == pytest.approx((140, 400, 180))
    main = next(
        i for i, c in enumerate(plant.channels) if c.node is office and c.meter.id == "main"
    )
    noise = plant.channels[main].noise
    assert noise is not None
    assert plant.values[main, 0] == pytest.approx(office.grid_kw[0] * noise[0])
    assert office.grid_kw[0] == pytest.approx(
        office.loads.electric_kw[0]  # type: ignore[union-attr]
        + sum(flows.grid_kw[0] for flows in office.flows.values())
    )
    engine.step(1)
    assert chp["electricity"][1] == 0.0 and chp["gas"][1] == 0.0


def _held_park(site: SiteFile, limit_below_kw: float | None) -> tuple[Plant, float]:
    """The park one step in, the office battery asked to charge at 100 kW and the heat pump at
    150 kW (under the office's 191 kW of heat); with `limit_below_kw`, both setpoints carry an import limit that much below the
    park's import without it. The plant and the park's import without the limit."""
    free = _plant(site, "2025-01-15T10:00:00+08:00", days=1)
    start = free.grid.start.timestamp()
    book = SetpointBook(3600.0)
    book.add("office", "office-bess", start, 100.0)
    book.add("office", "office-hp", start, 150.0)
    Engine(free, book, reset_per_step=0.0).step(0)
    unheld = float(free.parks[0].grid_kw[0])
    if limit_below_kw is None:
        return free, unheld
    plant = _plant(site, "2025-01-15T10:00:00+08:00", days=1)
    held = SetpointBook(3600.0)
    held.add("office", "office-bess", start, 100.0, unheld - limit_below_kw)
    held.add("office", "office-hp", start, 150.0, unheld - limit_below_kw)
    Engine(plant, held, reset_per_step=0.0).step(0)
    return plant, unheld


@pytest.mark.parametrize(
    ("below_kw", "bess_kw", "park_below_kw"),
    [
        (0.0, 100.0, 0.0),  # at the limit: nothing to do
        (60.0, 40.0, 60.0),  # charging cut by the excess
        (150.0, -50.0, 150.0),  # charging cut to 0, then discharge
        (500.0, -100.0, 200.0),  # all the battery has: the heat pump serves the building
    ],
)
def test_a_setpoint_s_import_limit_holds_the_park_s_import_within_the_step(
    site: SiteFile, below_kw: float, bess_kw: float, park_below_kw: float
) -> None:
    plant, unheld = _held_park(site, below_kw)
    office, park = plant.parks[0].children[0], plant.parks[0]
    assert office.flows["office-bess"].readings["electricity"][0] == pytest.approx(bess_kw)
    assert float(park.grid_kw[0]) == pytest.approx(unheld - park_below_kw)
    assert office.flows["office-hp"].readings["heat"][0] == pytest.approx(150.0)  # comfort
    incomer = next(
        i for i, c in enumerate(plant.channels) if c.node is park and c.meter.id == "incomer"
    )
    noise = plant.channels[incomer].noise
    assert noise is not None
    assert plant.values[incomer, 0] == pytest.approx(park.grid_kw[0] * noise[0])  # as metered


def test_electrolysis_is_cut_before_an_ice_store_s_charging_by_its_chiller() -> None:
    """Lingang of the example: the electrolyzer at 500 kW, the l03 chiller (at most 4,500 kW)
    making the data centre's cooling and the 450 kW the ice store takes, each setpoint with a
    limit `below` kW under the park's import without it."""
    from pathlib import Path

    from energyhub.sites import load_site

    example = load_site(Path(__file__).resolve().parents[2] / "examples" / "expo-park.yaml")

    def run(below: float | None, unheld: float = 0.0) -> Plant:
        plant = _plant(example, "2025-01-15T23:00:00+08:00", days=1)
        start = plant.grid.start.timestamp()
        book = SetpointBook(3600.0)
        limit = math.inf if below is None else unheld - below
        book.add("lingang", "lg-electrolyzer", start, 500.0, limit)
        book.add("l03", "l03-chiller", start, 4500.0, limit)
        book.add("l03", "l03-ice", start, 450.0, limit)
        Engine(plant, book, reset_per_step=0.0).step(0)
        return plant

    free = run(None)
    unheld = float(free.parks[1].grid_kw[0])
    l03 = free.parks[1].children[2]
    assert l03.loads is not None
    demand_kw = float(l03.loads.cooling_kw[0])
    assert demand_kw + 450.0 < 4500.0  # the chiller has the store's 450 kW to spare
    assert l03.flows["l03-ice"].readings["cooling"][0] == pytest.approx(450.0)
    chiller_kw = float(l03.flows["l03-chiller"].readings["electricity"][0])
    assert chiller_kw == pytest.approx((demand_kw + 450.0) / 5.5)

    cut = run(300.0, unheld)  # electrolysis alone
    park, l03 = cut.parks[1], cut.parks[1].children[2]
    assert park.flows["lg-electrolyzer"].readings["electricity"][0] == pytest.approx(200.0)
    assert l03.flows["l03-ice"].readings["cooling"][0] == pytest.approx(450.0)
    assert float(park.grid_kw[0]) == pytest.approx(unheld - 300.0)

    cut = run(560.0, unheld)  # then 60 kW of the chiller's: 330 kW of cold the store does not take
    park, l03 = cut.parks[1], cut.parks[1].children[2]
    assert park.flows["lg-electrolyzer"].readings["electricity"][0] == pytest.approx(0.0)
    assert l03.flows["l03-ice"].readings["cooling"][0] == pytest.approx(120.0)
    assert l03.flows["l03-chiller"].readings["cooling"][0] == pytest.approx(demand_kw + 120.0)
    assert float(park.grid_kw[0]) == pytest.approx(unheld - 560.0)


def test_a_stopped_chp_carrying_the_limit_starts_once_the_battery_has_given_all(
    site: SiteFile,
) -> None:
    def run(limit: float) -> Plant:
        plant = _plant(site, "2025-01-15T10:00:00+08:00", days=1)
        start = plant.grid.start.timestamp()
        book = SetpointBook(3600.0)
        book.add("office", "office-bess", start, 100.0, limit)
        book.add("office", "office-hp", start, 200.0, limit)
        book.add("tp", "tp-chp", start, 0.0, limit)
        Engine(plant, book, reset_per_step=0.0).step(0)
        return plant

    unheld = float(run(math.inf).parks[0].grid_kw[0])  # the CHP stopped as asked
    for below, chp_kw in ((300.0, 140.0), (400.0, 200.0), (900.0, 350.0)):
        plant = run(unheld - below)  # the battery gives 200; the CHP the rest, 140 to 350 kW
        office, park = plant.parks[0].children[0], plant.parks[0]
        assert office.flows["office-bess"].readings["electricity"][0] == pytest.approx(-100.0)
        assert park.flows["tp-chp"].readings["electricity"][0] == pytest.approx(chp_kw)
        assert float(park.grid_kw[0]) == pytest.approx(unheld - 200.0 - chp_kw)


@pytest.mark.parametrize(("below_kw", "cell_kw"), [(150.0, 150.0), (500.0, 200.0)])
def test_a_fuel_cell_runs_higher_on_its_hydrogen_store_for_the_limit(
    below_kw: float, cell_kw: float
) -> None:
    """Lingang of the example at night, electrolyzer, fuel cell and hydrogen store idle, each
    setpoint with a limit `below_kw` under the park's import without it: the fuel cell (200 kW,
    eta_el 0.5) runs up to its power, the store (30 % full) discharging twice that for it."""
    from pathlib import Path

    from energyhub.sites import load_site

    example = load_site(Path(__file__).resolve().parents[2] / "examples" / "expo-park.yaml")

    def run(limit: float) -> Plant:
        plant = _plant(example, "2025-01-15T23:00:00+08:00", days=1)
        start = plant.grid.start.timestamp()
        book = SetpointBook(3600.0)
        for asset in ("lg-electrolyzer", "lg-fuelcell", "lg-h2"):
            book.add("lingang", asset, start, 0.0, limit)
        Engine(plant, book, reset_per_step=0.0).step(0)
        return plant

    unheld = float(run(math.inf).parks[1].grid_kw[0])
    park = run(unheld - below_kw).parks[1]
    assert park.flows["lg-fuelcell"].readings["electricity"][0] == pytest.approx(cell_kw)
    assert park.flows["lg-h2"].readings["hydrogen"][0] == pytest.approx(-cell_kw / 0.5)
    assert park.flows["lg-h2"].readings["soc"][0] < 0.3
    assert float(park.grid_kw[0]) <= unheld - cell_kw + 1e-6


@pytest.mark.parametrize(
    ("ice_soc", "below_kw", "ice_kw"),
    [
        (0.3, 250.0, -1375.0),  # 1,375 kW of cold from the ice: 250 kW at the chiller's COP 5.5
        (0.3, 400.0, -1500.0),  # the store's power, no more
        (0.0, 250.0, 0.0),  # an empty store gives nothing
    ],
)
def test_an_ice_store_discharges_in_place_of_its_chiller_for_the_limit(
    ice_soc: float, below_kw: float, ice_kw: float
) -> None:
    """Lingang of the example at night, the l03 chiller asked for its full 4,500 kW of cold (more
    than its building needs, so it makes what the building needs) and the 6 MWh ice store idle, each with
    a limit `below_kw` under the park's import without it: the store discharges and the chiller
    makes that much less, the building's cold still served in full."""
    from pathlib import Path

    import yaml

    from energyhub.sites import parse_site

    path = Path(__file__).resolve().parents[2] / "examples" / "expo-park.yaml"
    doc = yaml.safe_load(path.read_text())
    l03 = doc["city"]["parks"][1]["buildings"][2]
    ice = next(a for a in l03["assets"] if a["id"] == "l03-ice")
    ice["soc_initial"] = ice["soc_final"] = ice_soc
    example = parse_site(doc, "expo-park.yaml")

    def run(limit: float) -> Plant:
        plant = _plant(example, "2025-01-15T23:00:00+08:00", days=1)
        start = plant.grid.start.timestamp()
        book = SetpointBook(3600.0)
        book.add("l03", "l03-chiller", start, 4500.0, limit)
        book.add("l03", "l03-ice", start, 0.0, limit)
        Engine(plant, book, reset_per_step=0.0).step(0)
        return plant

    free = run(math.inf)
    unheld = float(free.parks[1].grid_kw[0])
    made = float(free.parks[1].children[2].flows["l03-chiller"].readings["cooling"][0])
    assert 1500.0 < made < 4500.0  # the building's cold, all from the chiller
    plant = run(unheld - below_kw)
    l03 = plant.parks[1].children[2]
    assert l03.flows["l03-ice"].readings["cooling"][0] == pytest.approx(ice_kw)
    assert l03.flows["l03-chiller"].readings["cooling"][0] == pytest.approx(made + ice_kw)
    assert float(plant.parks[1].grid_kw[0]) == pytest.approx(unheld + ice_kw / 5.5)


def test_the_plant_keeps_the_site_s_clock_whatever_zone_its_start_is_given_in(
    site: SiteFile,
) -> None:
    """The same instant as a UTC and as a local start: the same readings (the demo and the
    closed loop start from UTC; office hours, weekends and the default rules are the site's)."""
    from datetime import UTC

    local = datetime.fromisoformat("2025-01-15T00:00:00+08:00")  # a Wednesday
    plants = [
        build_plant(site, TimeGrid(start, 600.0, 144), 7)
        for start in (local, local.astimezone(UTC))
    ]
    assert np.array_equal(plants[0].values, plants[1].values)
    office = plants[1].parks[0].children[0].loads
    assert office is not None
    hours = plants[1].grid.local_hours()
    assert office.occupancy[hours == 10.0].sum() > office.occupancy[hours == 3.0].sum()


@pytest.mark.parametrize(
    ("zone", "first_utc"),
    [
        ("Europe/Berlin", "2026-03-28T12:00:00+00:00"),  # clocks forward 03-29 01:00 UTC
        ("Europe/Berlin", "2026-10-24T12:00:00+00:00"),  # back 10-25 01:00 UTC
        ("America/New_York", "2026-03-07T12:00:00+00:00"),  # forward 03-08 07:00 UTC
        ("Asia/Shanghai", "2026-12-01T00:00:00+00:00"),  # no change
    ],
)
def test_local_hours_follow_daylight_saving_changes(zone: str, first_utc: str) -> None:
    """The offset was read once from the start: after a change, office hours, weekends and
    the default rules ran an hour off their clock time for the rest of the run."""
    from zoneinfo import ZoneInfo

    import pandas as pd

    start = datetime.fromisoformat(first_utc).astimezone(ZoneInfo(zone))
    grid = TimeGrid(start, 900.0, 96 * 3)
    clock = pd.date_range(first_utc, periods=grid.steps, freq="15min").tz_convert(zone)
    expected = clock.hour.to_numpy() + clock.minute.to_numpy() / 60.0
    assert np.array_equal(grid.local_hours(), expected)
    assert np.array_equal(grid.local_weekday(), clock.day_of_week.to_numpy())


def test_a_grid_of_no_steps_has_no_local_hours() -> None:
    from zoneinfo import ZoneInfo

    grid = TimeGrid(datetime(2026, 3, 29, tzinfo=ZoneInfo("Europe/Berlin")), 900.0, 0)
    assert grid.local_hours().size == 0 and grid.local_weekday().size == 0


@pytest.mark.parametrize("chiller_kw", [4500.0, 4300.0, 3500.0])
def test_an_ice_store_charges_only_from_what_its_chiller_spares_after_the_building(
    chiller_kw: float,
) -> None:
    """Lingang's l03 of the example (a data centre, about 4,070 kW of cooling at that hour): the
    ice store asked to charge at its full 1,500 kW while the chiller runs at its 4,500 kW limit
    or is held to 4,300 or 3,500 kW. The building is served first; the store takes what the
    chiller makes beyond it, down to nothing."""
    from pathlib import Path

    from energyhub.sites import load_site

    example = load_site(Path(__file__).resolve().parents[2] / "examples" / "expo-park.yaml")

    def run(charge_kw: float) -> Node:
        plant = _plant(example, "2025-07-15T14:00:00+08:00", days=1)
        start = plant.grid.start.timestamp()
        book = SetpointBook(3600.0)
        book.add("l03", "l03-chiller", start, chiller_kw)
        book.add("l03", "l03-ice", start, charge_kw)
        Engine(plant, book, reset_per_step=0.0).step(0)
        return plant.parks[1].children[2]

    idle = run(0.0)
    assert idle.loads is not None
    demand_kw = float(idle.loads.cooling_kw[0])
    spare_kw = max(chiller_kw - demand_kw, 0.0)
    l03 = run(1500.0)
    ice = l03.flows["l03-ice"].readings
    assert ice["cooling"][0] == pytest.approx(spare_kw)
    assert (ice["soc"][0] > idle.flows["l03-ice"].readings["soc"][0]) == (spare_kw > 0)
    assert l03.flows["l03-chiller"].readings["cooling"][0] == pytest.approx(chiller_kw)
    assert l03.unserved_kw["cooling"][0] == pytest.approx(max(demand_kw - chiller_kw, 0.0))
