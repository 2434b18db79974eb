"""Every panel's and variable's SQL runs on both storage paths, as Grafana would send it.

Variables are resolved in order from their own queries (park `expo`, every building and meter of
it, the newest plan); each panel query runs at a 5-minute interval (the 15-minute rollups, raw
readings for the rate) and at an hourly one (the hourly rollups), and must return rows with the
expected columns.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from energyhub.grafana import files
from energyhub.grafana.model import Dashboard, Panel, Query, Variable
from tests.grafana.conftest import PanelDb, run
from tests.grafana.macros import Chosen, interval_seconds

INTERVALS = ("5m", "1h")
DASHBOARDS = files.dashboards()
QUERIES = [(d, p, q) for d in DASHBOARDS for p in d.panels for q in p.queries]
VARIABLES = list({v.name: v for d in DASHBOARDS for v in d.variables}.values())

EXPECTED: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("building-load", "Power by carrier", "A"): ("time", "metric", "kw"),
    ("building-load", "Chosen meters", "A"): ("time", "metric", "value"),
    ("building-load", "Latest values", "A"): ("meter", "quantity", "value", "measured_at", "age_s"),
    ("building-load", "Meters", "A"): (
        "building", "meter", "carrier", "quantity", "submeter_of", "asset", "device",
        "readings_in_range", "latest_at",
    ),
    ("building-load", "Alerts", "A"): (
        "opened_at", "closed_at", "site", "rule", "subject", "severity", "message",
        "acknowledged_by",
    ),
    ("park-overview", "Electric load per building", "A"): ("time", "metric", "kw"),
    ("park-overview", "Park grid import vs connection limit", "A"): (
        "time", "import_kw", "limit_kw",
    ),
    ("park-overview", "Peak import and limit", "A"): ("peak_kw", "limit_kw"),
    ("park-overview", "Peak of limit", "A"): ("peak_pct_of_limit",),
    ("park-overview", "PV share of electricity", "A"): ("building", "pv_share_pct"),
    ("park-overview", "Energy by building and carrier", "A"): (
        "building", "class", "floor_area_m2", "grid_kwh", "pv_kwh", "heat_kwh", "cooling_kwh",
        "gas_kwh",
    ),
    ("plan-review", "Planned vs metered grid import", "A"): ("time", "planned_import_kw"),
    ("plan-review", "Planned vs metered grid import", "B"): ("time", "metered_import_kw"),
    ("plan-review", "Plan status", "A"): ("status",),
    ("plan-review", "Cost and CO₂ vs baseline", "A"): (
        "measure", "planned", "baseline", "saving", "saving_pct",
    ),
    ("plan-review", "Dispatch by asset", "A"): ("time", "metric", "kw"),
    ("plan-review", "Cost terms vs baseline", "A"): ("term", "planned_cny", "baseline_cny"),
    ("plan-review", "State of charge: plan and measured", "A"): ("time", "metric", "soc_pct"),
    ("plan-review", "Plans of the park", "A"): (
        "id", "site", "level", "status", "horizon_start", "horizon_end", "objective_cny",
        "saving_cny", "co2_kg", "created_at", "approved_by", "error",
    ),
    ("carbon", "Emissions by carrier", "A"): ("time", "electricity", "heat", "gas", "cooling"),
    ("carbon", "Emissions in range", "A"): ("co2_t", "scope1_t", "scope2_t"),
    ("carbon", "Data coverage", "A"): ("coverage_pct",),
    ("carbon", "Emissions by building", "A"): ("site", "co2_kg"),
    ("carbon", "Carbon intensity per m²", "A"): ("building", "kg_per_m2"),
    ("carbon", "Emissions by enterprise", "A"): (
        "enterprise", "building", "electricity_kg", "heat_kg", "gas_kg", "cooling_kg",
        "co2_kg", "floor_area_m2", "kg_per_m2",
    ),
    ("carbon", "Scope 2: location-based and market-based", "A"): (
        "location_kg", "market_kg", "certificates_mwh", "contracts_mwh", "residual_mwh",
        "residual_kg_per_kwh", "heat_kg",
    ),
    ("ingest-health", "Readings stored per second", "A"): ("time", "metric", "readings_per_s"),
    ("ingest-health", "Newest reading age", "A"): ("newest_reading_age_s",),
    ("ingest-health", "Rejected in range", "A"): ("rejected",),
    ("ingest-health", "Rejects by reason", "A"): ("time", "metric", "rejected"),
    ("ingest-health", "Newest reading age by site", "A"): ("site", "newest_age_s"),
    ("ingest-health", "Stalest meters", "A"): ("meter", "quantity", "latest_at", "age_s"),
    ("ingest-health", "Recent rejects", "A"): ("received_at", "topic", "reason", "payload"),
}  # fmt: skip


def _key(dashboard: Dashboard, panel: Panel, query: Query) -> tuple[str, str, str]:
    return dashboard.uid.removeprefix("energyhub-"), panel.title, query.ref_id


def _choose(variable: Variable, rows: list[tuple]) -> Chosen:
    values = [str(row[0]) for row in rows]
    if variable.name == "park":
        assert "expo" in values
        values = ["expo"]
    elif not variable.include_all:
        values = values[:1]
    return Chosen(tuple(values), quoted=variable.multi or variable.include_all)


@pytest.fixture(scope="module")
def chosen(conn: psycopg.Connection, panel_db: PanelDb) -> dict[str, Chosen]:
    """Each variable's selection, from its own query run with the ones before it."""
    selection: dict[str, Chosen] = {}
    for variable in VARIABLES:
        _, rows = run(conn, panel_db, variable.sql, selection, "5m")
        selection[variable.name] = _choose(variable, rows)
    return selection


@pytest.mark.parametrize("variable", VARIABLES, ids=[v.name for v in VARIABLES])
def test_variable_query_returns_values_and_texts(
    conn: psycopg.Connection, panel_db: PanelDb, chosen: dict[str, Chosen], variable: Variable
) -> None:
    before = {name: c for name, c in chosen.items() if name != variable.name}
    columns, rows = run(conn, panel_db, variable.sql, before, "5m")
    assert columns == ["__value", "__text"]
    assert rows and all(value is not None and text for value, text in rows)


def test_every_panel_query_has_expected_columns() -> None:
    assert sorted(EXPECTED) == sorted(_key(*q) for q in QUERIES)


def _check_time_series(columns: list[str], rows: list[tuple], panel_db: PanelDb, interval: str):
    assert columns[0] == "time"
    slack = timedelta(seconds=interval_seconds(interval))
    start, end = panel_db.time_range.start - slack, panel_db.time_range.end
    for row in rows:
        moment = row[0]
        if isinstance(moment, Decimal | float | int):  # plain PostgreSQL: epoch seconds
            moment = datetime.fromtimestamp(float(moment), start.tzinfo)
        assert start <= moment <= end, f"time {moment} outside {start}..{end}"
    numeric = [i for i, c in enumerate(columns) if c not in ("time", "metric")]
    assert any(row[i] is not None for row in rows for i in numeric), "every value is NULL"


@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize(
    ("dashboard", "panel", "query"), QUERIES, ids=["/".join(_key(*q)) for q in QUERIES]
)
def test_panel_query_returns_rows_of_expected_columns(
    conn: psycopg.Connection,
    panel_db: PanelDb,
    chosen: dict[str, Chosen],
    dashboard: Dashboard,
    panel: Panel,
    query: Query,
    interval: str,
) -> None:
    columns, rows = run(conn, panel_db, query.sql, chosen, interval)
    assert tuple(columns) == EXPECTED[_key(dashboard, panel, query)]
    assert rows, "no rows"
    if query.format == "time_series":
        _check_time_series(columns, rows, panel_db, interval)
