"""The carbon dashboard's Scope 2 panel: market-based from the retirements, beside location-based.

The example city has one grid factor (GRID) and no hourly series, so the electricity bought over
the range is (location-based electricity kg) / GRID, and the market-based figure can be checked
against it by hand.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from energyhub.grafana import carbon_market
from tests.grafana.conftest import (
    CITY_RESIDUAL_MIX,
    INSTRUMENT,
    MARKET_RESIDUAL_MIX,
    RETIRE,
    PanelDb,
    run,
)
from tests.grafana.macros import Chosen

GRID = 0.5306
BUILDINGS = tuple(f"b0{i}" for i in range(1, 8))
CHOICE = {"park": Chosen(("expo",), False), "building": Chosen(BUILDINGS, True)}


def _panel(conn: psycopg.Connection, db: PanelDb) -> dict[str, float]:
    columns, rows = run(conn, db, carbon_market.SCOPE2_DUAL, CHOICE, "15m")
    return {c: float(v) for c, v in zip(columns, rows[0], strict=True)}


def _retire(
    conn: psycopg.Connection, db: PanelDb, site: str, mwh: int, factor: float | None = None
) -> None:
    """A certificate block (factor None) or a contract retired for exactly the panel's range."""
    start, end = db.time_range.start, db.time_range.end
    serials = psycopg.types.range.Range(10_000 * mwh, 10_000 * mwh + mwh, "[)")
    if factor is None:
        row = conn.execute(INSTRUMENT, ("certificate", serials, mwh, None, None)).fetchone()
    else:
        delivery = psycopg.types.range.Range(start, end, "[)")
        row = conn.execute(INSTRUMENT, ("contract", None, mwh, factor, delivery)).fetchone()
    assert row is not None
    conn.execute(RETIRE, (row[0], site, start, end, serials if factor is None else None, mwh))


def test_without_instruments_both_methods_agree(
    conn: psycopg.Connection, panel_db: PanelDb
) -> None:
    panel = _panel(conn, panel_db)
    assert panel["location_kg"] > 0
    assert panel["market_kg"] == pytest.approx(panel["location_kg"], rel=1e-9)
    assert panel["certificates_mwh"] == panel["contracts_mwh"] == 0


def test_certificates_contracts_and_the_residual_mix(
    conn: psycopg.Connection, panel_db: PanelDb
) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute(
            "UPDATE sites SET attributes = jsonb_set(attributes, '{carbon}', "
            "coalesce(attributes->'carbon', '{}') || %s::jsonb) WHERE kind = 'city'",
            (json.dumps({"residual_mix_kg_per_kwh": 0.6}),),
        )
        _retire(conn, panel_db, "b01", 1)
        _retire(conn, panel_db, "acme-bio", 2, factor=0.1)  # a tenant of b01: counts
        _retire(conn, panel_db, "l01", 5)  # another park: does not count
        panel = _panel(conn, panel_db)
    bought_kwh = (panel["location_kg"] - panel["heat_kg"]) / GRID
    assert bought_kwh > 3000
    assert panel["certificates_mwh"] == pytest.approx(1.0)
    assert panel["contracts_mwh"] == pytest.approx(2.0)
    expected = 2000 * 0.1 + (bought_kwh - 3000) * 0.6 + panel["heat_kg"]
    assert panel["market_kg"] == pytest.approx(expected, rel=1e-9)
    assert panel["residual_mwh"] == pytest.approx(bought_kwh / 1000 - 3, rel=1e-9)


def test_certificates_never_cover_more_than_was_bought(
    conn: psycopg.Connection, panel_db: PanelDb
) -> None:
    with conn.transaction(force_rollback=True):
        _retire(conn, panel_db, "b01", 1_000_000)
        panel = _panel(conn, panel_db)
    bought_kwh = (panel["location_kg"] - panel["heat_kg"]) / GRID
    assert panel["certificates_mwh"] == pytest.approx(bought_kwh / 1000, rel=1e-9)
    assert panel["market_kg"] == pytest.approx(panel["heat_kg"], abs=1e-6)


def test_each_contract_at_its_own_factor_as_the_report_has_it(
    conn: psycopg.Connection, panel_db: PanelDb
) -> None:
    """Two contract claims (b01's at 0.1 kg/kWh, the park's at 0.3) that cover part of the
    electricity: the panel's market-based Scope 2 is the park report's, not an average factor."""
    case = panel_db.market
    assert case is not None
    start, end = panel_db.time_range.start, panel_db.time_range.end
    delivery = psycopg.types.range.Range(start, end, "[)")
    with conn.transaction(force_rollback=True):
        conn.execute(CITY_RESIDUAL_MIX, (MARKET_RESIDUAL_MIX,))
        for site_id, mwh, factor in case.claims:
            row = conn.execute(INSTRUMENT, ("contract", None, mwh, factor, delivery)).fetchone()
            assert row is not None
            conn.execute(RETIRE, (row[0], site_id, start, end, None, mwh))
        panel = _panel(conn, panel_db)
    claimed_kwh = sum(mwh for _, mwh, _ in case.claims) * 1000
    assert 0 < claimed_kwh < case.report_electricity_kwh
    assert case.report_contract_kwh == pytest.approx(claimed_kwh)
    assert panel["contracts_mwh"] * 1000 == pytest.approx(claimed_kwh)
    assert panel["residual_kg_per_kwh"] == MARKET_RESIDUAL_MIX
    assert panel["market_kg"] == pytest.approx(case.report_market_kg, rel=1e-6)
