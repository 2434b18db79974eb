"""Published factors carry value, unit, year and source; site factors resolve per site and year."""

import pytest

from energyhub.carbon import factors
from energyhub.carbon.errors import UnknownFactorYearError
from energyhub.carbon.factors import choose_year, resolve, source_of
from energyhub.sites import CarbonFactors, CarbonOverride, YearFactors


def test_published_factors_have_value_unit_year_and_source_in_their_docstrings() -> None:
    text = open(factors.__file__, encoding="utf-8").read()
    for name, value in [
        ("GRID_NATIONAL_2023", "0.5306"),
        ("GRID_EAST_CHINA_2023", "0.5500"),
        ("GAS_PER_NM3", "2.16"),
        ("GAS_PER_KWH", "0.202"),
        ("HEAT_PER_GJ", "0.11 t"),
    ]:
        factor = getattr(factors, name)
        assert factor.unit and factor.year and factor.source
        docstring = text.split(f"{name} = ", 1)[1].split('"""', 2)[1]
        assert value in docstring, name
    assert factors.GRID_NATIONAL_2023.value == 0.5306
    assert factors.GRID_EAST_CHINA_2023.value == 0.55
    assert factors.HEAT_PER_KWH.value == pytest.approx(0.396)  # 0.11 t/GJ ÷ 277.8 kWh/GJ


def test_site_file_defaults_are_the_published_factors() -> None:
    defaults = CarbonFactors()
    assert defaults.grid_kg_per_kwh == factors.GRID_NATIONAL_2023.value
    assert defaults.gas_kg_per_kwh == factors.GAS_PER_KWH.value
    assert defaults.heat_kg_per_kwh == pytest.approx(factors.HEAT_PER_KWH.value)
    assert "MEE & NBS" in source_of("grid_kg_per_kwh", 0.55)
    assert source_of("grid_kg_per_kwh", 0.42) == "site file"


CITY = CarbonFactors(
    grid_kg_per_kwh=0.7,
    price_cny_per_t=80,
    factors_by_year={
        2023: YearFactors(grid_kg_per_kwh=0.5306),
        2025: YearFactors(gas_kg_per_kwh=0.3),
    },
)


def test_a_period_uses_its_year_else_the_latest_earlier_year_else_flat_values() -> None:
    assert choose_year([CITY], 2025, explicit=False) == 2025
    assert choose_year([CITY], 2024, explicit=False) == 2023
    assert choose_year([CITY], 2022, explicit=False) is None
    resolved = resolve(CITY, [], 2025)
    assert (resolved.grid_kg_per_kwh, resolved.gas_kg_per_kwh) == (0.7, 0.3)
    assert resolve(CITY, [], 2023).grid_kg_per_kwh == 0.5306
    assert resolve(CITY, [], None).grid_kg_per_kwh == 0.7


def test_the_most_specific_site_wins_and_a_year_entry_beats_a_flat_value() -> None:
    park = CarbonOverride(heat_kg_per_kwh=0.3, price_cny_per_t=120, grid_series="east")
    building = CarbonOverride(
        grid_kg_per_kwh=0.0, factors_by_year={2023: YearFactors(gas_kg_per_kwh=0.19)}
    )
    resolved = resolve(CITY, [park, building], 2023)
    assert resolved.grid_kg_per_kwh == 0.0  # the building's flat value beats the city's 2023 entry
    assert resolved.gas_kg_per_kwh == 0.19
    assert resolved.heat_kg_per_kwh == 0.3
    assert (resolved.price_cny_per_t, resolved.grid_series) == (120, "east")


def test_an_explicit_unknown_year_names_the_known_ones() -> None:
    assert choose_year([CITY], 2023, explicit=True) == 2023
    with pytest.raises(
        UnknownFactorYearError, match=r"unknown factor year 2019: .* lists 2023, 2025"
    ):
        choose_year([CITY], 2019, explicit=True)
    with pytest.raises(UnknownFactorYearError, match="lists none"):
        choose_year([CarbonFactors()], 2023, explicit=True)
