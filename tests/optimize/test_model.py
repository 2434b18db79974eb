"""The model builder: expressions, named blocks, build/solve/extract, and a park by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energyhub.optimize.inputs import check_inputs, read_inputs
from energyhub.optimize.levels import build_model
from energyhub.optimize.model import ModelBuilder, extract, solve
from energyhub.optimize.scope import resolve_scope
from energyhub.sites import load_site
from tests.optimize.cases import inputs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "expo-park.yaml"


def test_blocks_map_names_to_slices_and_extract_by_name() -> None:
    m = ModelBuilder()
    x = m.add_variables("a:x_kw", 3, 0.0, 10.0)
    y = m.add_variables("a:y_kw", 3, 0.0, 10.0)
    m.add_constraints("a:sum", x.expr() + y.expr(), "==", [4.0, 5.0, 6.0])
    m.add_constraints("a:lag", y.expr() - y.lag(1.0), ">=", 0.0)
    m.add_cost("energy", 2.0 * x.expr() + np.array([1.0, 1.0, 3.0]) * y.expr())
    problem = m.build()
    assert problem.variables["a:y_kw"].slice == slice(3, 6)
    assert problem.constraints["a:lag"].slice == slice(3, 6)
    assert problem.row_block(4) == (problem.constraints["a:lag"], 1)
    solution = solve(problem)
    assert solution.status == "optimal" and solution.x is not None
    index = pd.date_range("2025-01-01", periods=3, freq="h", tz="Asia/Shanghai")
    frame = extract(problem, solution.x, index)
    # y is cheaper than x in the first two rows; y must not fall, so y stays 5 in the third
    np.testing.assert_allclose(frame["a:y_kw"], [4.0, 5.0, 5.0])
    np.testing.assert_allclose(frame["a:x_kw"], [0.0, 0.0, 1.0])
    assert solution.objective == pytest.approx(4 + 5 + 2 * 1 + 3 * 5)


def test_duplicate_block_names_are_refused() -> None:
    m = ModelBuilder()
    m.add_variables("a:x_kw", 2)
    with pytest.raises(ValueError, match="exists already"):
        m.add_variables("a:x_kw", 2)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=4, max_size=4),
    st.lists(st.floats(-5, 5), min_size=4, max_size=4),
    st.integers(0, 3),
)
def test_expressions_match_dense_algebra(a: list[float], b: list[float], shift: int) -> None:
    """Sums, scaling, lag, group and repeat give the same rows as numpy on the dense vector."""
    m = ModelBuilder()
    x = m.add_variables("x", 4, -10, 10)
    y = m.add_variables("y", 1, -10, 10)
    values = np.array(a + b[:1])
    groups = np.array([0, 1, -1, 1])
    expr = (np.array(a) * x.expr() - 2.0 * x.lag(float(shift)) + y.expr().repeat(4)).group(
        groups, 2
    )
    m.add_constraints("e", expr, "==", 0.0)
    matrix = m.build().a.toarray()
    dense_x, dense_y = values[:4], values[4]
    rows = np.array(a) * dense_x - 2.0 * np.concatenate([[shift], dense_x[:-1]]) + dense_y
    expected = np.array([rows[0], rows[1] + rows[3]])
    constant = -2.0 * np.array([shift, 0.0])
    np.testing.assert_allclose(matrix @ values + constant, expected, atol=1e-9)


def _example_inputs(n: int = 24) -> pd.DataFrame:
    site = load_site(EXAMPLE)
    hours = np.arange(n) % 24
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    columns: dict[str, object] = {"outdoor_c": 30 - 4 * np.cos(hours / 24 * 2 * np.pi)}
    for park in site.city.parks:
        for asset in park.assets:
            if asset.type == "wind":
                columns[f"{asset.id}__available_kw"] = 600.0
        for building in park.buildings:
            columns[f"{building.id}__electricity_kw"] = 300 + 200 * sun
            columns[f"{building.id}__heat_kw"] = 60.0
            columns[f"{building.id}__cooling_kw"] = 150 + 200 * sun
            for asset in building.assets:
                if asset.type == "pv":
                    columns[f"{asset.id}__available_kw"] = asset.peak_kw * sun
    return inputs(n, "1h", "2025-07-15 00:00", **columns)


@pytest.mark.parametrize("park", ["expo", "lingang"])
def test_example_park_rows_hold_and_blocks_are_named(park: str) -> None:
    """Every row and column bound of a solved example park holds within 1e-6."""
    site = load_site(EXAMPLE)
    scope = resolve_scope(site, "park", park)
    table = read_inputs(_example_inputs(), site.tz)
    check_inputs(table, site, scope)
    built = build_model(scope, table)
    problem = built.problem
    solution = solve(problem, mip_gap=1e-6)
    assert solution.status == "optimal" and solution.x is not None
    x = solution.x
    ax = problem.a @ x
    assert np.all(ax >= problem.row_lower - 1e-6) and np.all(ax <= problem.row_upper + 1e-6)
    assert np.all(x >= problem.col_lower - 1e-6) and np.all(x <= problem.col_upper + 1e-6)
    for name in (f"{park}:balance_electricity", f"{park}:import_kw", f"{park}:peak_import_kw"):
        assert name in problem.constraints or name in problem.variables
    imports = x[problem.variables[f"{park}:import_kw"].slice]
    assert imports.max() <= scope.grid.import_max_kw + 1e-6
