"""City caps in the site file: validated at the edge, held by the centralized city plan."""

from __future__ import annotations

import re

import pytest

from energyhub.errors import SiteFileError
from energyhub.optimize import InfeasiblePlanError, plan
from tests.optimize.cases import city_site, day_inputs, small_park


def _parks() -> tuple[list[dict[str, object]], dict[str, object]]:
    north, north_columns = small_park("n", 1, import_max_kw=2000.0, chp=False, seed=1)
    south, south_columns = small_park("s", 1, import_max_kw=2000.0, chp=False, seed=2)
    return [north, south], north_columns | south_columns


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"start": "2025-03-03T15:00:00+08:00", "end": "2025-03-03T13:00:00+08:00",
          "import_max_kw": 10}, "demand_response[0]: end (2025-03-03T13:00:00+08:00) must be after"),
        ({"start": "2025-03-03T13:00:00", "end": "2025-03-03T15:00:00+08:00",
          "import_max_kw": 10}, "demand_response[0].start: Input should have timezone info"),
        ({"start": "2025-03-03T13:00:00+08:00", "end": "2025-03-03T15:00:00+08:00",
          "import_max_kw": -1}, "demand_response[0].import_max_kw: must be ≥ 0"),
    ],
)  # fmt: skip
def test_bad_events_name_the_key(event: dict[str, object], message: str) -> None:
    parks, _ = _parks()
    with pytest.raises(SiteFileError, match=re.escape(message)):
        city_site(parks, demand_response=[event])


def test_a_demand_response_event_caps_the_city_import_in_its_steps_only() -> None:
    parks, columns = _parks()
    frame = day_inputs(columns)
    free = plan(city_site(parks), frame, level="city", site_id="c")
    summed = free.schedule["n:import_kw"] + free.schedule["s:import_kw"]
    cap = 0.9 * float(summed.iloc[13:15].max())
    event = {"start": "2025-03-03T13:00:00+08:00", "end": "2025-03-03T15:00:00+08:00",
             "import_max_kw": cap}  # fmt: skip
    capped = plan(city_site(parks, demand_response=[event]), frame, level="city", site_id="c")
    summed = capped.schedule["n:import_kw"] + capped.schedule["s:import_kw"]
    assert summed.iloc[13:15].max() <= cap + 1e-6
    assert capped.objective_cny >= free.objective_cny - 1e-6
    assert capped.baseline.total_cny == pytest.approx(free.baseline.total_cny)


def test_a_city_carbon_cap_in_the_site_file_holds_and_an_unreachable_one_is_named() -> None:
    parks, columns = _parks()
    frame = day_inputs(columns)
    free = plan(city_site(parks), frame, level="city", site_id="c")
    capped = plan(city_site(parks, carbon_cap_kg=free.co2_kg), frame, level="city", site_id="c")
    assert capped.co2_kg <= free.co2_kg + 1e-6
    assert capped.carbon_cap_kg == pytest.approx(free.co2_kg)
    with pytest.raises(InfeasiblePlanError, match="c:carbon_cap cannot hold"):
        plan(city_site(parks, carbon_cap_kg=1.0), frame, level="city", site_id="c")
