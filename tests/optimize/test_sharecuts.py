"""The city's caps shared out by cutting planes: a park's cut is below its cost at every share,
the master's optimum is a bound, and the shares it picks reach the optimum."""

from __future__ import annotations

import pickle
import uuid

import numpy as np
import pandas as pd
import pytest

from energyhub.optimize.coupling import resolve_caps
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.parkwork import (
    ParkAnswer,
    ParkRecipe,
    inputs_for,
    relaxed_answer,
    share_answer,
)
from energyhub.optimize.plan import with_month_peaks
from energyhub.optimize.scope import resolve_scopes
from energyhub.optimize.sharecuts import ShareCuts, proportional
from energyhub.sites import parse_site

TZ = "Asia/Shanghai"
EVENT_STEP = 3
GRID = {"import_max_kw": 1000, "tariff": "flat", "tariff_prices_cny_per_kwh": {"flat": 1.5}}


def _park() -> bytes:
    """Park `pd`: one building with a battery, 50 kW all day and 100 kW in the event's step."""
    battery = {"id": "d1-bess", "type": "battery", "energy_kwh": 200, "power_kw": 100}
    index = pd.date_range("2025-03-03", periods=6, freq="1h", tz=TZ, name="ts")
    event = {"start": index[EVENT_STEP].isoformat(), "end": index[EVENT_STEP + 1].isoformat(),
             "import_max_kw": 1000}  # fmt: skip
    park = {"id": "pd", "grid": GRID, "buildings": [
        {"id": "d1", "class": "office-A", "floor_area_m2": 1000, "assets": [battery]}]}  # fmt: skip
    site = parse_site({"version": 1, "timezone": TZ, "city": {
        "id": "c", "carbon": {"price_cny_per_t": 0}, "parks": [park],
        "demand_response": [event]}})  # fmt: skip
    load = np.full(len(index), 50.0)
    load[EVENT_STEP] = 100.0
    frame = pd.DataFrame({"d1:electricity_kw": load}, index=index)
    scopes = resolve_scopes(site, "city", "c")
    table = with_month_peaks(read_inputs(frame, site.tz), scopes, None)
    caps = resolve_caps(site, "city", "c", table.index, None)
    return pickle.dumps(ParkRecipe("pd", scopes[0], inputs_for(table, scopes[0]), caps))


def _within(token: str, raw: bytes, share: float) -> ParkAnswer:
    answer = share_answer(token, raw, np.array([share]), None)
    assert isinstance(answer, ParkAnswer)
    return answer


def _fresh(raw: bytes, share: float) -> float:
    """The park's least cost within `share`, from a model built for this one answer."""
    return _within(uuid.uuid4().hex, raw, share).value


def test_a_park_s_cut_is_below_its_cost_at_every_share() -> None:
    raw, token = _park(), uuid.uuid4().hex
    own = relaxed_answer(token, raw, np.zeros(1), None)  # at no price: 100 kW in the event
    assert isinstance(own, ParkAnswer)
    assert own.q[0] == pytest.approx(100.0, abs=1e-6)
    at = _within(token, raw, 20.0)  # warm, after the price answer
    assert at.q[0] <= 20.0 + 1e-6
    assert at.slope is not None
    slope = at.slope[0]
    assert slope < 0.0  # below what the stored energy covers, less share costs more
    assert at.value == pytest.approx(_fresh(raw, 20.0), rel=1e-9)
    for other in (-20.0, 0.0, 19.0, 21.0, 40.0, 100.0, 150.0):
        assert _fresh(raw, other) >= at.value + slope * (other - 20.0) - 1e-6
    # beyond what the battery can carry the share is exceeded at the shortfall price
    assert _fresh(raw, -20.0) > _fresh(raw, 0.0) + 1e4


def test_proportional_shares_take_the_excess_from_each_park_in_proportion() -> None:
    caps = np.array([100.0, 300.0])
    q = {"a": np.array([90.0, 100.0]), "b": np.array([30.0, 100.0])}
    shares = proportional(q, caps)
    assert shares["a"] + shares["b"] == pytest.approx([100.0, 200.0])
    assert shares["a"][0] == pytest.approx(90.0 - 20.0 * 90.0 / 120.0)
    assert shares["a"][1] == 100.0  # the second cap does not bind: untouched


def test_the_master_bounds_the_optimum_and_its_shares_reach_it() -> None:
    """Two parks whose cost below 10 kW rises by 2 and 1 CNY/kW, a cap of 12 kW: the optimum
    gives `a` its 10 kW and `b` 2 kW, at 8 CNY."""
    slopes = {"a": 2.0, "b": 1.0}

    def cost(key: str, s: float) -> tuple[float, float]:
        return slopes[key] * max(10.0 - s, 0.0), -slopes[key] if s < 10.0 else 0.0

    caps = np.array([12.0])
    own = {"a": np.array([10.0]), "b": np.array([10.0])}
    cuts = ShareCuts.of(["a", "b"], caps, own)
    cuts.add_price({"a": 0.0, "b": 0.0}, np.zeros(1))
    shares = proportional(own, caps)
    bounds = []
    for _ in range(30):
        answers = {k: cost(k, float(shares[k][0])) for k in shares}
        cuts.add_shares(shares, {k: v for k, (v, _) in answers.items()},
                        {k: np.array([d]) for k, (_, d) in answers.items()})  # fmt: skip
        bound, price = cuts.bound()
        bounds.append(bound)
        assert bound <= 8.0 + 1e-9
        if cuts.best_value - bound <= 1e-9:
            break
        shares = cuts.next_shares()
    assert cuts.best_value == pytest.approx(8.0, abs=1e-6)
    assert bounds[-1] == pytest.approx(8.0, abs=1e-6)
    assert price[0] == pytest.approx(1.0, abs=1e-6)  # the cheaper park's marginal cost
    assert cuts.best is not None and cuts.best["a"][0] == pytest.approx(10.0, abs=1e-6)


def test_an_answer_stopped_short_bounds_nothing_and_is_never_the_best() -> None:
    """A park's answer at its time limit has value −∞: as a cut it made the master's right-hand
    side infinite (linprog refuses that), and as a plan it froze the box on shares worth −∞."""
    caps = np.array([12.0])
    own = {"a": np.array([10.0]), "b": np.array([10.0])}
    cuts = ShareCuts.of(["a", "b"], caps, own)
    cuts.add_price({"a": 0.0, "b": -np.inf}, np.zeros(1))
    assert [cut[0] for cut in cuts.cuts] == [0]  # park b's answer added no cut
    cuts.add_price({"a": 0.0, "b": 0.0}, np.zeros(1))
    shares = proportional(own, caps)
    cuts.add_shares(shares, {"a": 1.0, "b": -np.inf}, {"a": np.array([-2.0]), "b": None})
    assert cuts.best is None and cuts.best_value == np.inf
    bound, _ = cuts.bound()  # the master still solves
    assert np.isfinite(bound)
