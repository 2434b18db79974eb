"""Panels compute what energyhub computes elsewhere: load as store/queries.py, emissions by hand.

At a 15-minute interval each of Grafana's groups is one 15-minute rollup bucket, so the panels'
series must equal store/queries.py's `meter_series` at 15 minutes, summed, bucket for bucket.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
import pytest

from energyhub.grafana import building, carbon, ingest, park, plans
from tests.grafana.conftest import PanelDb, run
from tests.grafana.macros import Chosen

B01 = "Tower A (headquarters offices)"
ACME = "Acme Biotech (HQ floor)"
ACME_SHARE = 4000 / 60000
"""Acme's floor area over b01's: its share of b01's unmetered remainder (carbon/allocation.py)."""
GRID, HEAT = 0.5306, 0.396
"""The example city's grid factor and the default purchased-heat factor (kg CO₂ per kWh)."""


def _chosen(**values: str | tuple[str, ...]) -> dict[str, Chosen]:
    return {
        name: Chosen(value, True) if isinstance(value, tuple) else Chosen((value,), False)
        for name, value in values.items()
    }


def _moment(value: Any) -> pd.Timestamp:
    if isinstance(value, Decimal | float | int):
        return pd.Timestamp(datetime.fromtimestamp(float(value), UTC))
    return pd.Timestamp(value).tz_convert(UTC)


def _series(rows: list[tuple]) -> dict[tuple[pd.Timestamp, str], float]:
    return {(_moment(t), str(metric)): float(v) for t, metric, v in rows if v is not None}


def _energy_kwh(frame: pd.DataFrame, carrier: str) -> float:
    return float(frame.loc[frame["carrier"] == carrier, "energy_kwh"].sum())


def _meter_kwh(db: PanelDb, name: str) -> float:
    """A meter's energy as the store sums it (a counter's kW × 15 min is not its energy where
    a step reaches back across a gap: its kW is the mean over the gap)."""
    return float(db.meters[name]["energy_kwh"].sum())


def test_power_by_carrier_equals_the_stores_series(
    conn: psycopg.Connection, panel_db: PanelDb
) -> None:
    choice = _chosen(park="expo", building=("b01",))
    _, rows = run(conn, panel_db, building.POWER_BY_CARRIER, choice, "15m")
    reference = panel_db.load["b01"]
    expected = {
        (pd.Timestamp(b).tz_convert(UTC), c): p
        for b, c, p in reference[["bucket", "carrier", "power_kw"]].itertuples(index=False)
    }
    assert set(reference["carrier"]) == {"electricity", "heat", "cooling", "pv"}
    got = _series(rows)
    assert got.keys() == expected.keys()
    assert got == pytest.approx(expected, rel=1e-9)


def test_park_import_is_buildings_minus_park_generation(
    conn: psycopg.Connection, panel_db: PanelDb
) -> None:
    _, rows = run(conn, panel_db, park.PARK_IMPORT, _chosen(park="expo"), "15m")
    load = panel_db.load["expo"]
    buildings = load[load["carrier"] == "electricity"].set_index("bucket")["power_kw"]
    chp = panel_db.meters["expo/chp-el"].set_index("bucket")["value"]
    expected = buildings.sub(chp, fill_value=0.0)
    got = {_moment(t): float(kw) for t, kw, _ in rows}
    assert {limit for _, _, limit in rows} == {20000.0}
    assert got == pytest.approx({pd.Timestamp(b): v for b, v in expected.items()}, rel=1e-9)


def test_pv_share_is_pv_over_grid_plus_pv(conn: psycopg.Connection, panel_db: PanelDb) -> None:
    _, rows = run(conn, panel_db, park.PV_SHARE, _chosen(park="expo"), "15m")
    load = panel_db.load["b01"]
    pv, grid = _energy_kwh(load, "pv"), _energy_kwh(load, "electricity")
    assert dict(rows)[B01] == pytest.approx(100 * pv / (grid + pv), rel=1e-9)


def _emissions(conn: psycopg.Connection, db: PanelDb) -> tuple[dict[str, float], dict[str, float]]:
    """kg CO₂ by building and by enterprise, as the carbon dashboard shows them."""
    choice = _chosen(park="expo", building=("b01", "b04"))
    _, by_site = run(conn, db, carbon.BY_BUILDING, choice, "15m")
    columns, by_tenant = run(conn, db, carbon.BY_ENTERPRISE, choice, "15m")
    co2 = columns.index("co2_kg")
    return {s: float(kg) for s, kg in by_site}, {row[0]: float(row[co2]) for row in by_tenant}


def test_emissions_with_the_city_factors(conn: psycopg.Connection, panel_db: PanelDb) -> None:
    sites, tenants = _emissions(conn, panel_db)
    load = panel_db.load["b01"]
    assert sites[B01] == pytest.approx(_energy_kwh(load, "electricity") * GRID, rel=1e-9)
    acme_kwh = _meter_kwh(panel_db, "b01/f3") + _meter_kwh(panel_db, "b04/lab2")
    # as the carbon report allocates it: metered, plus its floor-area share of b01's remainder
    tenants_b01 = (_meter_kwh(panel_db, "b01/f3") + _meter_kwh(panel_db, "b01/f7")) * GRID
    remainder = sites[B01] - tenants_b01
    assert tenants[ACME] == pytest.approx(acme_kwh * GRID + ACME_SHARE * remainder, rel=1e-9)


def test_emissions_follow_building_overrides_and_factor_years(
    conn: psycopg.Connection, panel_db: PanelDb
) -> None:
    """The period's year entry beats the flat value, a later year's is unused; heat bought."""
    zone = ZoneInfo("Asia/Shanghai")
    years = {panel_db.time_range.start.astimezone(zone).year}
    years.add(panel_db.time_range.end.astimezone(zone).year)
    override = {
        "grid_kg_per_kwh": 0.3,
        "heat_purchased": True,
        "factors_by_year": {
            **{str(y): {"grid_kg_per_kwh": 0.1} for y in years},
            str(max(years) + 1): {"grid_kg_per_kwh": 5.0},
        },
    }
    with conn.transaction(force_rollback=True):
        conn.execute(
            "UPDATE sites SET attributes = jsonb_set(attributes, '{carbon}', %s::jsonb) "
            "WHERE id = 'b01'",
            (json.dumps(override),),
        )
        sites, tenants = _emissions(conn, panel_db)
    load = panel_db.load["b01"]
    expected = _energy_kwh(load, "electricity") * 0.1 + _energy_kwh(load, "heat") * HEAT
    assert sites[B01] == pytest.approx(expected, rel=1e-9)
    acme = _meter_kwh(panel_db, "b01/f3") * 0.1 + _meter_kwh(panel_db, "b04/lab2") * GRID
    tenants_b01 = (_meter_kwh(panel_db, "b01/f3") + _meter_kwh(panel_db, "b01/f7")) * 0.1
    remainder = expected - tenants_b01
    assert tenants[ACME] == pytest.approx(acme + ACME_SHARE * remainder, rel=1e-9)


def test_rejects_group_by_reason_without_particulars(
    conn: psycopg.Connection, panel_db: PanelDb
) -> None:
    _, rows = run(conn, panel_db, ingest.REJECTS, _chosen(park="expo"), "1h")
    counts: dict[str, int] = {}
    for _, reason, rejected in rows:
        counts[reason] = counts.get(reason, 0) + int(rejected)
    assert counts == {
        "payload is not JSON": 1,
        "ts is not RFC …": 2,
        "unknown meter …": 1,
        "value is not finite": 1,
    }


def test_plan_panels_show_the_stored_plan(conn: psycopg.Connection, panel_db: PanelDb) -> None:
    _, listed = run(conn, panel_db, plans.PLAN.sql, _chosen(park="expo"), "15m")
    park_plan = next(value for value, text in listed if " expo active" in text)
    choice = _chosen(park="expo", plan=str(park_plan))
    _, planned = run(conn, panel_db, plans.PLANNED_IMPORT, choice, "15m")
    assert {round(kw) for _, kw in planned} == {900, 1100}
    _, dispatch = run(conn, panel_db, plans.DISPATCH, choice, "15m")
    charge = {kw for _, name, kw in dispatch if name == "expo-bess:charge_kw"}
    assert charge == {-200.0, 0.0}
    _, soc = run(conn, panel_db, plans.SOC, choice, "15m")
    planned_soc = {round(pct, 6) for _, name, pct in soc if name == "expo-bess plan"}
    assert planned_soc == {round(100 * (400 + 10 * k) / 4000, 6) for k in range(8)}
    assert any(name == "expo-bess measured" for _, name, _ in soc)
    _, against = run(conn, panel_db, plans.AGAINST_BASELINE, choice, "15m")
    saving = {measure: pct for measure, _, _, _, pct in against}
    assert saving["cost (CNY)"] == pytest.approx(100 * (1 - 1 / 1.1))
    assert saving["CO₂ (kg)"] == pytest.approx(100 * (1 - 1 / 1.05))


def test_data_coverage_is_the_covered_share_of_the_metered_time(
    conn: psycopg.Connection, panel_db: PanelDb
) -> None:
    choice = _chosen(park="expo", building=("b01", "b04"))
    columns, rows = run(conn, panel_db, carbon.COVERAGE, choice, "15m")
    assert columns == ["coverage_pct"]
    coverage = float(rows[0][0])
    # the example's readings cover most of the range; counters' first steps and gaps do not
    assert 50.0 < coverage <= 100.0
    f3 = panel_db.meters["b01/f3"]
    span_s = (panel_db.time_range.end - panel_db.time_range.start).total_seconds()
    assert f3["covered_s"].sum() / span_s * 100 <= 100.0 + 1e-9


def test_a_park_measured_at_its_connection_imports_what_its_main_meter_reads(
    conn: psycopg.Connection, panel_db: PanelDb
) -> None:
    """With a main meter of its own (its connection), the park's import panel summed it with
    its buildings' mains and took the CHP off again; now it is that meter, as the store's load."""
    with conn.transaction(force_rollback=True):
        cur = conn.execute(
            "INSERT INTO meters (site_id, name, carrier, quantity) "
            "VALUES ('expo', 'connection', 'electricity', 'power_kw') RETURNING id"
        )
        (meter_id,) = cur.fetchone() or (0,)
        columns = [
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'readings_15m' ORDER BY ordinal_position"
            ).fetchall()
        ]
        chosen = ", ".join("%s" if c == "meter_id" else c for c in columns)
        conn.execute(
            f"INSERT INTO readings_15m ({', '.join(columns)}) "
            f"SELECT {chosen} FROM readings_15m WHERE meter_id = "
            "(SELECT id FROM meters WHERE site_id = 'b01' AND name = 'main')",
            (meter_id,),
        )
        connection = {
            _moment(b): float(s) / n
            for b, s, n in conn.execute(
                "SELECT bucket, sum_value, n FROM readings_15m WHERE meter_id = %s", (meter_id,)
            ).fetchall()
        }
        _, rows = run(conn, panel_db, park.PARK_IMPORT, _chosen(park="expo"), "15m")
        got = {_moment(t): float(kw) for t, kw, _ in rows}
        expected = {t: v for t, v in connection.items() if t in got}
        assert len(expected) == len(got) > 0
        assert got == pytest.approx(expected, rel=1e-9)
