"""Carbon figures an auditor can trace: the factor entry used is cited, a comparison across
periods of unequal coverage is withheld, and a heat declaration without a plant is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from energyhub.carbon.accounting import COMPARABLE_COVERAGE_GAP, Window, _trend
from energyhub.carbon.factors import resolve
from energyhub.carbon.ledger import COLUMNS
from energyhub.carbon.models import Coverage
from energyhub.errors import SiteFileError
from energyhub.sites import CarbonFactors, CarbonOverride, YearFactors, parse_site


def test_a_year_entry_is_cited_as_itself_not_by_a_matching_published_value() -> None:
    city = CarbonFactors(factors_by_year={2024: YearFactors(grid_kg_per_kwh=0.55)})
    green = CarbonOverride(grid_kg_per_kwh=0.0)
    used = resolve(city, [], 2024, ["shanghai"])
    assert used.grid_kg_per_kwh == 0.55 and used.factor_year == 2024
    assert used.sources["grid_kg_per_kwh"] == (
        "site file: shanghai carbon.factors_by_year.2024.grid_kg_per_kwh"
    )
    assert "IPCC 2006" in used.sources["gas_kg_per_kwh"]  # the default is the published one
    lab = resolve(city, [green], 2024, ["shanghai", "lab"])
    assert lab.sources["grid_kg_per_kwh"] == "site file: lab carbon.grid_kg_per_kwh"


def _window(kg: float, share: float) -> Window:
    daily = pd.DataFrame([dict.fromkeys(COLUMNS, 0.0) | {"scope1_kg": kg}])
    coverage = Coverage(
        share=share,
        expected_intervals=100,
        present_intervals=int(share * 100),
        interval_minutes=15,
        meters=1,
        incomplete=[],
    )
    return Window(daily, [], coverage, 0.0, [])


def test_a_change_across_unequal_coverage_is_withheld() -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    february, january = _window(1540.0, 0.071), _window(100.0, 1.0)
    withheld = _trend(february, january, start, end)
    assert (withheld.comparable, withheld.change_kg, withheld.change_pct) == (False, None, None)
    assert withheld.previous_total_kg == 100.0 and withheld.previous_coverage == 1.0
    close = _trend(_window(110.0, 1.0 - COMPARABLE_COVERAGE_GAP / 2), january, start, end)
    assert close.comparable and close.change_pct == pytest.approx(10.0)


def _site(building_assets: list[dict[str, Any]]) -> dict[str, Any]:
    building = {
        "id": "b1",
        "class": "office-A",
        "floor_area_m2": 1000,
        "carbon": {"heat_purchased": False},
        "assets": building_assets,
    }
    park = {"id": "p", "grid": {"import_max_kw": 100}, "buildings": [building]}
    return {"version": 1, "timezone": "Asia/Shanghai", "city": {"id": "c", "parks": [park]}}


def test_heat_declared_unpurchased_needs_a_plant() -> None:
    with pytest.raises(SiteFileError) as info:
        parse_site(_site([]))
    assert "1 problem(s)" in str(info.value)
    assert (
        "city.parks[0].buildings[0].carbon.heat_purchased: false, but b1 or its park has no "
        "heat plant" in str(info.value)
    )
    boiler = {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 500, "eta": 0.9}
    assert parse_site(_site([boiler])).city.parks[0].buildings[0].carbon is not None
