"""Bad inputs name their column and row; infeasible plans name balance, node, asset and step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from energyhub.optimize import InfeasiblePlanError, PlanInputError, plan
from energyhub.optimize.tariffs import TARIFFS, import_prices
from energyhub.sites import GridConnection
from tests.optimize.cases import building_site, inputs, to_csv

PV_SITE = [{"id": "pv", "type": "pv", "peak_kw": 100}]


def _plan_csv(tmp_path: Path, text: str) -> None:
    path = tmp_path / "in.csv"
    path.write_text(text)
    plan(building_site(PV_SITE), path, level="building", site_id="b1")


def test_missing_column_is_named() -> None:
    with pytest.raises(PlanInputError, match="pv:available_kw") as info:
        plan(
            building_site(PV_SITE), inputs(3, b1__electricity_kw=5), level="building", site_id="b1"
        )
    assert info.value.column == "pv:available_kw"


def test_a_building_without_an_electricity_meter_still_needs_its_heat_column() -> None:
    """Its electricity is taken as 0 (and said so), not its heat: a gas-only building (a boiler,
    no electricity main) planned without b1:heat_kw took its heat as 0 unsaid, a plan of 0 CNY
    for a building that burns gas all day."""
    boiler = [{"id": "boiler", "type": "gas_boiler", "heat_max_kw": 300, "eta": 0.9}]
    site = building_site(boiler, gas={"price_cny_per_nm3": 3.0, "lhv_kwh_per_nm3": 10.0})
    assert site.unmetered_electricity("b1") == ["b1"]
    with pytest.raises(PlanInputError) as info:
        plan(site, inputs(3, outdoor_c=10), level="building", site_id="b1")
    assert str(info.value) == "the inputs lack column(s) b1:heat_kw needed for the building 'b1'"
    assert info.value.column == "b1:heat_kw"
    result = plan(site, inputs(3, b1__heat_kw=90), level="building", site_id="b1")
    assert result.cost_cny["gas"] == pytest.approx(3 * 100 / 10 * 3.0)  # 100 kWh of gas an hour


def test_irregular_steps_name_the_row(tmp_path: Path) -> None:
    text = (
        "ts,b1:electricity_kw,pv:available_kw\n"
        "2025-03-03T00:00:00+08:00,1,0\n"
        "2025-03-03T00:15:00+08:00,1,0\n"
        "2025-03-03T00:45:00+08:00,1,0\n"
    )
    with pytest.raises(PlanInputError, match="irregular steps: row 3") as info:
        _plan_csv(tmp_path, text)
    assert (info.value.column, info.value.row) == ("ts", 3)


def test_nan_names_column_and_row(tmp_path: Path) -> None:
    text = (
        "ts,b1:electricity_kw,pv:available_kw\n"
        "2025-03-03T00:00:00+08:00,1,0\n"
        "2025-03-03T01:00:00+08:00,,0\n"
    )
    with pytest.raises(PlanInputError, match=r"b1:electricity_kw: row 2 .*missing") as info:
        _plan_csv(tmp_path, text)
    assert info.value.row == 2


def test_a_column_given_twice_is_named_as_written(tmp_path: Path) -> None:
    """pandas reads the second as `b1:electricity_kw.1`, which the error used to name."""
    text = (
        "ts,b1:electricity_kw,pv:available_kw,b1:electricity_kw\n"
        "2025-03-03T00:00:00+08:00,1,0,2\n"
        "2025-03-03T01:00:00+08:00,1,0,2\n"
    )
    with pytest.raises(PlanInputError) as info:
        _plan_csv(tmp_path, text)
    assert str(info.value) == (
        "b1:electricity_kw: the column is given twice in the header (columns 2 and 4)"
    )
    assert info.value.column == "b1:electricity_kw"


def test_empty_header_cells_are_not_a_column_given_twice(tmp_path: Path) -> None:
    text = "ts,b1:electricity_kw,,,pv:available_kw\n2025-03-03T00:00:00+08:00,1,0,0,0\n"
    with pytest.raises(PlanInputError) as info:
        _plan_csv(tmp_path, text)
    assert "given twice" not in str(info.value) and "nan" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (  # every row a cell longer: pandas took ts as the index and read '1' as the ts
            "ts,b1:electricity_kw,pv:available_kw\n2025-03-03T00:00:00+08:00,1,5,0\n"
            "2025-03-03T01:00:00+08:00,2,5,0\n",
            "--inputs: row 1: 4 cells under a header of 3 columns (beyond it: '0'); a decimal "
            "comma? write 1.5, not 1,5",
        ),
        (  # a trailing comma on the first row shifted every column the same way
            "ts,b1:electricity_kw,pv:available_kw\n2025-03-03T00:00:00+08:00,1,0,\n"
            "2025-03-03T01:00:00+08:00,2,0\n",
            "--inputs: row 1: 4 cells under a header of 3 columns (beyond it: '')",
        ),
    ],
)
def test_a_row_longer_than_the_header_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PlanInputError) as info:
        _plan_csv(tmp_path, text)
    assert str(info.value) == message


def test_bad_timestamp_is_named(tmp_path: Path) -> None:
    text = "ts,b1:electricity_kw,pv:available_kw\n2025-03-03T00:00:00+08:00,1,0\nsoon,1,0\n"
    with pytest.raises(PlanInputError, match="ts: row 2"):
        _plan_csv(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a blank ts cell was "ts: row 2 (nan) has no UTC offset while others do"
        (
            "ts,b1:electricity_kw,pv:available_kw\n2025-03-03T00:00:00+08:00,1,0\n,1,0\n",
            "ts: row 2 is empty",
        ),
        # pandas' own words came out: "No columns to parse from file"
        ("", "is empty: give a header with ts and rows"),
        ("\r\n\r\n", "is empty: give a header with ts and rows"),
    ],
)
def test_an_empty_file_or_ts_cell_is_named_as_empty(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(PlanInputError) as info:
        _plan_csv(tmp_path, text)
    assert str(info.value).endswith(message)


def test_a_directory_as_inputs_says_so(tmp_path: Path) -> None:
    """It was "[Errno 22] a directory, not a regular file: '<path>'"."""
    with pytest.raises(PlanInputError) as info:
        plan(building_site(PV_SITE), tmp_path, level="building", site_id="b1")
    assert str(info.value) == f"--inputs: cannot read {tmp_path}: a directory, not a regular file"


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("b1__electricity_w", 5.0, "wrong quantity or unit for 'b1'"),
        ("pv__available_kw", [0.0, 90_000.0, 0.0], r"pv:available_kw: row 2 .*W instead of kW"),
        ("b1__heat_kw", [0.0, 0.0, -3.0], r"b1:heat_kw: row 3 .*must be ≥ 0"),
        ("outdoor_c", [300.0, 300.0, 300.0], r"outdoor_c: row 1 .*wrong units"),
        ("b9__electricity_kw", 1.0, "unknown column"),
        ("b1__peak_margin_kw", [0.0, -5.0, 0.0], r"b1:peak_margin_kw: row 2 .*margin .*≥ 0"),
        ("b1__peak_margin_kw", [0.0, 0.0, 1e9], r"b1:peak_margin_kw: row 3 .*import limit"),
        ("b1__peak_reserve_kw", [0.0, -5.0, 0.0], r"b1:peak_reserve_kw: row 2 .*≥ 0"),
        ("b1__peak_reserve_kw", [0.0, 0.0, 1e9], r"b1:peak_reserve_kw: row 3 .*import limit"),
    ],
)
def test_wrong_units_and_unknown_columns(column: str, values: object, message: str) -> None:
    columns: dict[str, object] = {"b1__electricity_kw": 1.0, "pv__available_kw": 0.0}
    frame = inputs(3, **(columns | {column: values}))
    with pytest.raises(PlanInputError, match=message):
        plan(building_site(PV_SITE), frame, level="building", site_id="b1")


def test_unknown_ids_and_methods_are_bad_input() -> None:
    site, frame = building_site([]), inputs(2, b1__electricity_kw=1.0)
    with pytest.raises(PlanInputError, match="city is 'c'"):
        plan(site, frame, level="city", site_id="shanghai")
    with pytest.raises(PlanInputError, match="--method"):
        plan(site, frame, level="park", site_id="p", method="magic")
    with pytest.raises(PlanInputError, match="a building is one subproblem"):
        plan(site, frame, level="building", site_id="b1", method="decomposed")
    with pytest.raises(PlanInputError, match="no building 'b7'"):
        plan(site, frame, level="building", site_id="b7")


def test_heat_shortage_names_balance_node_assets_and_first_step() -> None:
    site = building_site(
        [{"id": "hp", "type": "heat_pump", "heat_max_kw": 50, "cop": 3.0}],
    )
    frame = inputs(4, b1__electricity_kw=10, b1__heat_kw=[40, 40, 70, 90])
    with pytest.raises(InfeasiblePlanError) as info:
        plan(site, frame, level="building", site_id="b1")
    error = info.value
    assert (error.constraint, error.node, error.carrier, error.step) == (
        "b1:balance_heat",
        "b1",
        "heat",
        3,
    )
    assert error.assets == ["hp"]
    assert "short by 20 kW" in str(error) and error.ts.startswith("2025-03-03T02:00")


def test_unreachable_terminal_soc_names_the_store() -> None:
    battery = {
        "id": "bess",
        "type": "battery",
        "energy_kwh": 500,
        "power_kw": 50,
        "soc_initial": 0.1,
        "soc_final": 0.9,
    }
    with pytest.raises(InfeasiblePlanError, match="bess:soc_final") as info:
        plan(
            building_site([battery]),
            inputs(3, b1__electricity_kw=10),
            level="building",
            site_id="b1",
        )
    assert info.value.assets == ["bess"] and info.value.step == 3


def test_shanghai_periods_by_month_and_hour() -> None:
    index = pd.DatetimeIndex(
        [
            "2025-03-03 03:00",  # valley
            "2025-03-03 09:00",  # peak
            "2025-03-03 12:00",  # flat outside summer
            "2025-07-15 12:30",  # critical peak in July
            "2025-09-15 13:00",  # summer peak, no critical peak in September
            "2025-12-01 19:00",  # critical peak in December evening
            "2025-12-01 21:00",  # flat
        ]
    ).tz_localize("Asia/Shanghai")
    periods = TARIFFS["shanghai-two-part"].periods(index)
    assert [("valley", "flat", "peak", "critical")[p] for p in periods] == [
        "valley",
        "peak",
        "flat",
        "critical",
        "peak",
        "critical",
        "flat",
    ]
    grid = GridConnection(import_max_kw=1, tariff_prices_cny_per_kwh={"valley": 0.2})
    np.testing.assert_allclose(import_prices(grid, index[:2]), [0.2, 1.10])


def test_unknown_tariff_and_period_are_bad_input() -> None:
    index = pd.date_range("2025-01-01", periods=2, freq="h", tz="Asia/Shanghai")
    # the site file refuses both (tests/test_sites.py); a connection built past its checks
    # still gets a named error from the planner, not a KeyError
    with pytest.raises(ValidationError, match="tariff"):
        GridConnection(import_max_kw=1, tariff="nowhere")  # type: ignore[arg-type]
    with pytest.raises(PlanInputError, match="unknown tariff 'nowhere'"):
        import_prices(GridConnection.model_construct(import_max_kw=1, tariff="nowhere"), index)
    with pytest.raises(PlanInputError, match="unknown period 'night'"):
        unchecked = GridConnection.model_construct(
            import_max_kw=1, tariff="shanghai-two-part", tariff_prices_cny_per_kwh={"night": 1}
        )
        import_prices(unchecked, index)


def test_csv_round_trip_matches_frame(tmp_path: Path) -> None:
    frame = inputs(3, b1__electricity_kw=[1.0, 2.0, 3.0], pv__available_kw=[0.0, 50.0, 0.0])
    path = tmp_path / "in.csv"
    to_csv(frame, path)
    site = building_site(PV_SITE)
    from_csv = plan(site, path, level="building", site_id="b1")
    from_frame = plan(site, frame, level="building", site_id="b1")
    assert from_csv.objective_cny == pytest.approx(from_frame.objective_cny)
    assert list(from_csv.schedule.index) == list(from_frame.schedule.index)


def test_heat_demand_is_judged_by_what_the_site_can_make_of_heat() -> None:
    """1,500 kW of heat from a 3 MW gas boiler behind a 120 kW connection is a plan, not a unit
    mistake (it was refused for being over 10 × the electric import limit)."""
    boiler = {"id": "boiler", "type": "gas_boiler", "heat_max_kw": 3000, "eta": 0.9}
    site = building_site([boiler], grid={"import_max_kw": 120}, gas={"price_cny_per_nm3": 3.5})
    result = plan(
        site, inputs(3, b1__electricity_kw=50, b1__heat_kw=1500), level="building", site_id="b1"
    )
    assert result.status == "optimal"


def test_a_load_the_connection_cannot_carry_is_infeasible_with_the_shortfall() -> None:
    """163 kW of load, a 1 kW connection, no generation: infeasible (exit 3), not bad input."""
    site = building_site([], grid={"import_max_kw": 1})
    with pytest.raises(InfeasiblePlanError) as info:
        plan(site, inputs(3, b1__electricity_kw=163), level="building", site_id="b1")
    error = info.value
    assert (error.constraint, error.node, error.carrier, error.step) == (
        "b1:balance_electricity",
        "b1",
        "electricity",
        1,
    )
    assert "short by 162 kW from step 1" in str(error)
    assert "in W?" not in str(error)


def test_a_shortfall_near_1000_times_the_supply_asks_about_watts() -> None:
    site = building_site([], grid={"import_max_kw": 2})
    with pytest.raises(InfeasiblePlanError, match=r"short by 1998 kW from step 2") as info:
        plan(site, inputs(3, b1__electricity_kw=[1, 2000, 1]), level="building", site_id="b1")
    assert str(info.value).endswith(
        "; is the column b1:electricity_kw in W? (2000 kW asked, 2 kW can be supplied)"
    )
