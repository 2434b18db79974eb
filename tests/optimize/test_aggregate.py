"""The virtual plan: like buildings merged into one, a relaxation that bounds the park's plan."""

from __future__ import annotations

import numpy as np
import pytest

from energyhub.optimize import plan
from energyhub.optimize.aggregate import build_virtual, virtual_plan
from energyhub.optimize.coupling import resolve_caps
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.model import solve
from energyhub.optimize.scope import resolve_scopes
from tests.optimize.cases import city_site, day_inputs, small_park


def test_like_buildings_merge_and_the_virtual_plan_bounds_the_park_from_below() -> None:
    spec, columns = small_park("p", 3, import_max_kw=2000.0)
    site, frame = city_site([spec]), day_inputs(columns)
    scopes = resolve_scopes(site, "park", "p")
    table = read_inputs(frame, site.tz)
    virtual = virtual_plan(scopes, table)
    (group,) = virtual.groups
    assert group.members == ("pb1", "pb2", "pb3")
    assert group.shares.sum() == pytest.approx(1.0)
    summed = sum(columns[f"pb{i}:heat_kw"] for i in (1, 2, 3))
    np.testing.assert_allclose(virtual.inputs.columns[f"{group.node}:heat_kw"], summed)
    caps = resolve_caps(site, "park", "p", table.index, None)
    solution = solve(build_virtual(virtual, caps).problem)
    central = plan(site, frame, level="park", site_id="p")
    assert solution.objective is not None
    assert solution.objective <= central.objective_cny + 1e-6


def test_a_building_with_other_assets_is_not_merged() -> None:
    spec, columns = small_park("p", 3, import_max_kw=2000.0)
    spec["buildings"][1]["assets"] = [a for a in spec["buildings"][1]["assets"]
                                      if a["type"] != "heat_pump"]  # fmt: skip
    site, frame = city_site([spec]), day_inputs(columns)
    virtual = virtual_plan(resolve_scopes(site, "park", "p"), read_inputs(frame, site.tz))
    assert sorted(g.members for g in virtual.groups) == [("pb1", "pb3"), ("pb2",)]
