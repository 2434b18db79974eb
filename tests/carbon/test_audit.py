"""An auditor's recomputation: every reported carbon and bill figure of one month, from raw readings.

A park (no main meter of its own) with two buildings, central PV, a battery and a gas boiler, a
tenant with a sub-meter, in Asia/Shanghai; a month of 15-minute readings written through the
project's COPY writer into a real PostgreSQL. The test recomputes each figure from the readings
it wrote with plain arithmetic (the energy rule of docs/meter-data.md: a power reading stands for
the 15 minutes before it, a counter's reading for its rise, a drop is a new meter counting from
zero; each step lands in the bucket of its reading) and compares it with what the report says.

Edges: the local month starts 8 hours before the UTC month; ba/main misses an hour (its energy is
missing), bb/main misses an hour (the counter carries it); the tenant's counter is replaced by a
new one mid-month; the park exports at midday on two days of three, when its PV exceeds its
load.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from psycopg import sql

from energyhub.api.ui.render import page
from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.disclose import activity, gather
from energyhub.carbon.disclose_files import emissions_csv
from energyhub.carbon.export import to_csv
from energyhub.carbon.instrument_models import CertificateIn, RetirementIn
from energyhub.carbon.instruments import add_certificates, retire
from energyhub.carbon.models import CarbonReport
from energyhub.carbon.report_html import render_html
from energyhub.grafana import carbon as grafana_carbon
from energyhub.grafana import carbon_market
from energyhub.numbers import number
from energyhub.optimize.scope import resolve_scope
from energyhub.plans.peak import connection_month_peak_kw
from energyhub.sites import SiteFile, parse_site
from energyhub.store.batch import ReadingBatch
from energyhub.store.db import connect, installed_backend, open_pool
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from energyhub.store.writer import ReadingWriter
from tests.carbon.conftest import ADMIN_URL
from tests.grafana.macros import Chosen, TimeRange, expand

ZONE = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")
STEP = timedelta(minutes=15)
H = 0.25  # hours per step
MONTH = (datetime(2026, 10, 1, tzinfo=ZONE), datetime(2026, 11, 1, tzinfo=ZONE))
FIRST = datetime(2026, 9, 30, tzinfo=ZONE)
LAST = datetime(2026, 11, 1, 6, tzinfo=ZONE)
GRID = 0.55
RESIDUAL = 0.6
GAS = 0.2
CARBON_PRICE = 80.0
EXPORT_PRICE = 0.35
BC_EXPORT_PRICE = 0.4
PRICES = {"valley": 0.3, "flat": 0.7, "peak": 1.2, "critical": 1.5}
BA_GAP = (datetime(2026, 10, 10, 14, tzinfo=ZONE), datetime(2026, 10, 10, 15, tzinfo=ZONE))
BA_LOST = datetime(2026, 10, 15, 9, 15, tzinfo=ZONE)
"""One more reading ba/main never sent: its 15 minutes are missing energy, in a covered hour."""
BB_GAP = (datetime(2026, 10, 12, 3, tzinfo=ZONE), datetime(2026, 10, 12, 4, tzinfo=ZONE))
SWAP = datetime(2026, 10, 20, 12, tzinfo=ZONE)
LAST_INSTANT = timedelta(microseconds=1)
"""The month-to-date peak is of the month `before` falls in: its last instant reads all of it."""

SITE: dict[str, Any] = {
    "version": 1,
    "timezone": "Asia/Shanghai",
    "city": {
        "id": "auditcity",
        "carbon": {
            "grid_kg_per_kwh": GRID,
            "gas_kg_per_kwh": GAS,
            "price_cny_per_t": CARBON_PRICE,
            "residual_mix_kg_per_kwh": RESIDUAL,
            "residual_mix_source": "audit test",
        },
        "parks": [
            {
                "id": "ap",
                "grid": {
                    "import_max_kw": 5000,
                    "export_max_kw": 500,
                    "tariff": "shanghai-two-part",
                    "tariff_prices_cny_per_kwh": PRICES,
                    "export_price_cny_per_kwh": EXPORT_PRICE,
                    "demand_charge_cny_per_kw": 40,
                },
                "gas": {"price_cny_per_nm3": 3.0, "lhv_kwh_per_nm3": 10.0},
                "meters": [
                    {
                        "id": "pv",
                        "carrier": "pv",
                        "quantity": "power_kw",
                        "asset": "ap-pv",
                        "interval_s": 900,
                    },
                    {
                        "id": "bat",
                        "carrier": "electricity",
                        "quantity": "power_kw",
                        "asset": "ap-bat",
                        "interval_s": 900,
                    },
                    {"id": "gas", "carrier": "gas", "quantity": "energy_kwh", "asset": "ap-boiler"},
                ],
                "assets": [
                    {"id": "ap-pv", "type": "pv", "peak_kw": 400},
                    {
                        "id": "ap-bat",
                        "type": "battery",
                        "energy_kwh": 400,
                        "power_kw": 200,
                        "eta_charge": 0.95,
                        "eta_discharge": 0.95,
                        "soc_min": 0.1,
                        "soc_max": 0.9,
                        "soc_initial": 0.5,
                        "soc_final": 0.5,
                    },
                    {"id": "ap-boiler", "type": "gas_boiler", "heat_max_kw": 300, "eta": 0.9},
                ],
                "buildings": [
                    {
                        "id": "ba",
                        "class": "office-A",
                        "floor_area_m2": 4000,
                        "meters": [
                            {
                                "id": "main",
                                "carrier": "electricity",
                                "quantity": "power_kw",
                                "interval_s": 900,
                            },
                            {
                                "id": "ta",
                                "carrier": "electricity",
                                "quantity": "energy_kwh",
                                "submeter_of": "main",
                            },
                        ],
                        "enterprises": [{"id": "ta-co", "floor_area_m2": 1000, "meters": ["ta"]}],
                    },
                    {
                        "id": "bb",
                        "class": "lab",
                        "floor_area_m2": 2000,
                        "meters": [
                            {"id": "main", "carrier": "electricity", "quantity": "energy_kwh"}
                        ],
                    },
                    {
                        "id": "bc",
                        "class": "retail",
                        "floor_area_m2": 1000,
                        "grid": {
                            "import_max_kw": 500,
                            "export_max_kw": 100,
                            "tariff": "shanghai-two-part",
                            "tariff_prices_cny_per_kwh": PRICES,
                            "export_price_cny_per_kwh": BC_EXPORT_PRICE,
                        },
                        "meters": [
                            {
                                "id": "main",
                                "carrier": "electricity",
                                "quantity": "power_kw",
                                "interval_s": 900,
                            }
                        ],
                    },
                ],
            },
            {
                "id": "aq",
                "grid": {"import_max_kw": 500, "tariff": "flat"},
                "buildings": [
                    {
                        "id": "bq",
                        "class": "hotel",
                        "floor_area_m2": 3000,
                        "meters": [
                            {
                                "id": "main",
                                "carrier": "electricity",
                                "quantity": "power_kw",
                                "interval_s": 900,
                            }
                        ],
                    }
                ],
            },
        ],
    },
}


def _times() -> list[datetime]:
    count = int((LAST - FIRST) / STEP)
    return [(FIRST + i * STEP).astimezone(ZONE) for i in range(count + 1)]


def _ba_kw(t: datetime) -> float:
    return 80.0 + (40.0 if 8 <= t.hour < 20 else 0.0) + 10.0 * (t.toordinal() % 5)


def _bc_kw(t: datetime) -> float:
    """bc's main meter: its rooftop PV, behind the meter, exports from 11:00 to 13:00."""
    return -40.0 if 11 <= t.hour < 13 else 30.0


def _pv_kw(t: datetime) -> float:
    if not 10 <= t.hour < 14:
        return 0.0
    return 300.0 if t.day % 3 else 120.0  # two days of three the park exports at midday


SPIKES = (datetime(2026, 10, 1, 3, tzinfo=ZONE), datetime(2026, 11, 1, 3, tzinfo=ZONE))
"""The battery charges at 150 and 200 kW for one reading: local October's first night, and
local November's first night (still October in UTC)."""


def _bat_kw(t: datetime) -> float:
    if t in SPIKES:
        return 150.0 if t == SPIKES[0] else 200.0
    return 50.0 if t.hour < 6 else -50.0 if 18 <= t.hour < 21 else 0.0


def _gas_step(t: datetime) -> float:
    return 20.0 if 6 <= t.hour < 22 else 0.0


def raw_readings() -> dict[str, list[tuple[datetime, float]]]:
    """Every meter's readings (local timestamps), as the module docstring describes."""
    times = _times()
    bb, ta, gas = 1000.0, 0.0, 50.0
    out: dict[str, list[tuple[datetime, float]]] = {
        k: []
        for k in ("ba/main", "bb/main", "bc/main", "ba/ta", "ap/pv", "ap/bat", "ap/gas", "bq/main")
    }
    for t in times:
        if not BA_GAP[0] <= t < BA_GAP[1] and t != BA_LOST:
            out["ba/main"].append((t, _ba_kw(t)))
        bb += 15.0
        if not BB_GAP[0] <= t < BB_GAP[1]:
            out["bb/main"].append((t, bb))
        ta = 5.0 if t == SWAP else ta + 5.0  # a new counter: 5 kWh since it was put in
        out["ba/ta"].append((t, ta + (0.0 if t >= SWAP else 7000.0)))
        out["bc/main"].append((t, _bc_kw(t)))
        out["bq/main"].append((t, 100.0))
        out["ap/pv"].append((t, _pv_kw(t)))
        out["ap/bat"].append((t, _bat_kw(t)))
        gas += _gas_step(t)
        out["ap/gas"].append((t, gas))
    return out


def step_kwh(name: str, rows: list[tuple[datetime, float]]) -> dict[datetime, float]:
    """Each reading's energy from the one before (the auditor's own reading of the rule)."""
    counter = name in ("bb/main", "ba/ta", "ap/gas")
    steps: dict[datetime, float] = {}
    for (t0, v0), (t1, v1) in itertools.pairwise(rows):
        if counter:
            steps[t1] = v1 - v0 if v1 >= v0 else v1
        else:
            steps[t1] = v1 * min(900.0, (t1 - t0).total_seconds()) / 3600.0
    return steps


def _in(t: datetime, window: tuple[datetime, datetime]) -> bool:
    return window[0] <= t < window[1]


@pytest.fixture(scope="module")
def site() -> SiteFile:
    return parse_site(SITE)


async def _load(url: str, site: SiteFile) -> None:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, site)
        cur = await conn.execute("SELECT site_id || '/' || name, id FROM meters")
        ids = {str(k): int(v) for k, v in await cur.fetchall()}
        backend = await installed_backend(conn)
    parts = []
    for name, rows in raw_readings().items():
        utc = np.array([t.astimezone(UTC).replace(tzinfo=None) for t, _ in rows])
        parts.append(
            ReadingBatch.from_columns(
                utc.astype("datetime64[us]"), [ids[name]] * len(rows), [v for _, v in rows]
            )
        )
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(ReadingBatch.concat(parts))
    async with connect(url) as conn:
        await refresh_rollups(conn, backend)


@pytest.fixture(scope="module")
def audit_url(site: SiteFile) -> Iterator[str]:
    name = f"haudit_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        asyncio.run(_load(url, site))
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _report(url: str, site_id: str, window: tuple[datetime, datetime] = MONTH) -> CarbonReport:
    async def run() -> CarbonReport:
        async with connect(url) as conn:
            return await carbon_report(conn, await installed_backend(conn), site_id, *window)

    return asyncio.run(run())


class Audit:
    """The month recomputed from the readings: per-step kWh of each meter in the local month."""

    def __init__(self, window: tuple[datetime, datetime] = MONTH) -> None:
        steps = {name: step_kwh(name, rows) for name, rows in raw_readings().items()}
        self.kwh = {
            name: {t: e for t, e in by_t.items() if _in(t, window)} for name, by_t in steps.items()
        }
        buckets = sorted(set().union(*(set(v) for v in self.kwh.values())))
        self.net = {
            t: self.kwh["ba/main"].get(t, 0.0)
            + self.kwh["bb/main"].get(t, 0.0)
            + self.kwh["bc/main"].get(t, 0.0)
            + self.kwh["ap/bat"].get(t, 0.0)
            - self.kwh["ap/pv"].get(t, 0.0)
            for t in buckets
        }

    def total(self, name: str) -> float:
        return sum(self.kwh[name].values())

    @property
    def import_kwh(self) -> float:
        return sum(max(v, 0.0) for v in self.net.values())

    @property
    def export_kwh(self) -> float:
        return sum(max(-v, 0.0) for v in self.net.values())


def _period(t: datetime) -> str:
    """Shanghai's October periods by local hour (the tariff's table, restated)."""
    if t.hour >= 22 or t.hour < 6:
        return "valley"
    if 8 <= t.hour < 11 or 18 <= t.hour < 21:
        return "peak"
    return "flat"


def test_the_edges_bite() -> None:
    """The constructed month has what the audit claims: export steps, a local-vs-UTC month
    boundary that changes the energy, a lost hour on ba and a carried hour on bb."""
    audit = Audit()
    utc_month = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    assert audit.export_kwh > 1000
    assert Audit(utc_month).total("ba/main") != pytest.approx(audit.total("ba/main"))
    lost = sum(_ba_kw(t) * H for t in _month() if _in(t, BA_GAP) or t == BA_LOST)
    assert lost > 0
    assert audit.total("ba/main") == pytest.approx(sum(_ba_kw(t) * H for t in _month()) - lost)
    assert audit.total("bb/main") == pytest.approx(15.0 * len(_month()))
    assert audit.total("ba/ta") == pytest.approx(5.0 * len(_month()))


def _month() -> list[datetime]:
    return [t for t in _times() if _in(t, MONTH)]


def test_scope1_and_activity_kwh(audit_url: str) -> None:
    audit, report = Audit(), _report(audit_url, "ap")
    assert report.energy_kwh.gas == pytest.approx(audit.total("ap/gas"))
    assert report.scope1_kg == pytest.approx(audit.total("ap/gas") * GAS)
    assert report.pv_kwh == pytest.approx(audit.total("ap/pv"))


def test_scope2_counts_import_only(audit_url: str) -> None:
    """GHG Protocol Scope 2: purchased electricity; a step of net export buys nothing, and the
    export is its own line, never subtracted from Scope 2."""
    audit, report = Audit(), _report(audit_url, "ap")
    assert report.energy_kwh.electricity == pytest.approx(audit.import_kwh)
    assert report.exported_kwh == pytest.approx(audit.export_kwh)
    assert report.scope2_electricity_kg == pytest.approx(audit.import_kwh * GRID)
    assert report.scope2_kg == pytest.approx(audit.import_kwh * GRID)
    assert report.scope2_market is not None
    assert report.scope2_market.market_kg == pytest.approx(audit.import_kwh * RESIDUAL)
    assert report.total_kg == pytest.approx(audit.import_kwh * GRID + audit.total("ap/gas") * GAS)
    assert report.intensity_kg_per_m2 == pytest.approx(report.total_kg / 7000)
    assert "data coverage 99.9%: 2 of 6 meters miss intervals" in " ".join(report.notes)
    assert "<b>99.9%</b><span>data coverage" in render_html(report)
    said = f"{audit.export_kwh:,.0f} kWh exported in steps of net export"
    assert any(note.startswith(said) for note in report.notes), report.notes


def test_a_day_of_export_has_no_negative_scope2(audit_url: str) -> None:
    day = (datetime(2026, 10, 5, tzinfo=ZONE), datetime(2026, 10, 5, 14, tzinfo=ZONE))
    audit, report = Audit(day), _report(audit_url, "ap", day)
    assert audit.import_kwh > 0
    assert report.scope2_kg == pytest.approx(audit.import_kwh * GRID)
    midday = (datetime(2026, 10, 5, 10, 15, tzinfo=ZONE), datetime(2026, 10, 5, 14, tzinfo=ZONE))
    only_export = _report(audit_url, "ap", midday)
    assert only_export.scope2_kg == 0.0
    assert only_export.energy_kwh.electricity == 0.0
    assert only_export.exported_kwh == pytest.approx(Audit(midday).export_kwh)
    assert only_export.scope2_market is not None
    assert only_export.scope2_market.market_kg == 0.0


def test_park_lines_add_up_to_the_park(audit_url: str) -> None:
    audit, report = Audit(), _report(audit_url, "ap")
    lines = {line.site_id: line for line in report.lines}
    assert lines["ba"].scope2_kg == pytest.approx(audit.total("ba/main") * GRID)
    assert lines["bb"].scope2_kg == pytest.approx(audit.total("bb/main") * GRID)
    assert sum(line.scope2_kg for line in report.lines) == pytest.approx(report.scope2_kg)
    assert sum(line.scope1_kg for line in report.lines) == pytest.approx(report.scope1_kg)
    assert sum(line.scope2_market_kg or 0.0 for line in report.lines) == pytest.approx(
        report.scope2_market.market_kg if report.scope2_market else 0.0
    )
    assert sum(line.energy_kwh.electricity for line in report.lines) == pytest.approx(
        report.energy_kwh.electricity
    )


def test_a_building_exporting_behind_its_own_meter(audit_url: str) -> None:
    """bc's report: what its main meter imported, step by step; its export on its own line,
    credited at bc's own export price; its line in the park report says the same."""
    steps = Audit().kwh["bc/main"]
    bought = sum(max(v, 0.0) for v in steps.values())
    exported = sum(max(-v, 0.0) for v in steps.values())
    assert exported > 0
    report = _report(audit_url, "bc")
    assert report.energy_kwh.electricity == pytest.approx(bought)
    assert report.scope2_kg == pytest.approx(bought * GRID)
    assert report.exported_kwh == pytest.approx(exported)
    energy = sum(max(v, 0.0) * PRICES[_period(t)] for t, v in steps.items())
    assert report.cost_cny.electricity == pytest.approx(energy)
    assert report.cost_cny.export_credit == pytest.approx(-exported * BC_EXPORT_PRICE)
    assert min(d.scope2_electricity_kg for d in report.daily) > 0
    line = next(line for line in _report(audit_url, "ap").lines if line.site_id == "bc")
    assert line.energy_kwh.electricity == pytest.approx(bought)
    assert line.exported_kwh == pytest.approx(exported)
    assert line.scope2_kg == pytest.approx(bought * GRID)


def test_the_city_nets_each_park_on_its_own(audit_url: str) -> None:
    """aq imports 100 kW all month on its own connection: its import is not netted against
    ap's export, so the city's Scope 2 is the sum of its parks' and its export is ap's."""
    audit = Audit()
    park, other, city = (_report(audit_url, s) for s in ("ap", "aq", "auditcity"))
    assert other.scope2_kg == pytest.approx(audit.total("bq/main") * GRID)
    for field in ("scope1_kg", "scope2_kg", "exported_kwh", "total_kg"):
        both = getattr(park, field) + getattr(other, field)
        assert getattr(city, field) == pytest.approx(both), field
    assert city.exported_kwh == pytest.approx(audit.export_kwh)
    assert city.cost_cny.total == pytest.approx(park.cost_cny.total + other.cost_cny.total)
    assert [line.site_id for line in city.lines] == ["ap", "aq"]


def test_tenant_allocation(audit_url: str) -> None:
    """ta-co: its counter (across the meter swap) plus a quarter of ba's unmetered remainder."""
    audit = Audit()
    building, tenant = _report(audit_url, "ba"), _report(audit_url, "ta-co")
    ba, ta = audit.total("ba/main"), audit.total("ba/ta")
    expected = (ta + 0.25 * (ba - ta)) * GRID
    assert building.scope2_kg == pytest.approx(ba * GRID)
    lines = {line.kind: line for line in building.lines}
    assert lines["tenant"].scope2_kg == pytest.approx(expected)
    assert lines["common"].scope2_kg == pytest.approx(0.75 * (ba - ta) * GRID)
    assert sum(line.scope2_kg for line in building.lines) == pytest.approx(building.scope2_kg)
    assert tenant.scope2_kg == pytest.approx(expected)
    assert tenant.energy_kwh.electricity == pytest.approx(ta + 0.25 * (ba - ta))


def test_bill_energy_by_local_tariff_period(audit_url: str) -> None:
    """Import at the period's price by local hour; export credited at the feed-in price."""
    audit, report = Audit(), _report(audit_url, "ap")
    energy = sum(max(v, 0.0) * PRICES[_period(t)] for t, v in audit.net.items())
    assert report.cost_cny.electricity == pytest.approx(energy)
    assert report.cost_cny.export_credit == pytest.approx(-audit.export_kwh * EXPORT_PRICE)
    gas = audit.total("ap/gas") * 3.0 / 10.0
    assert report.cost_cny.gas == pytest.approx(gas)
    carbon = report.total_kg * CARBON_PRICE / 1000
    assert report.cost_cny.carbon == pytest.approx(carbon)
    assert report.cost_cny.total == pytest.approx(
        energy - audit.export_kwh * EXPORT_PRICE + gas + carbon
    )


def _month_peak_kw(url: str, site: SiteFile, before: datetime) -> float:
    async def run() -> float:
        async with connect(url) as conn:
            scope = resolve_scope(site, "park", "ap")
            return await connection_month_peak_kw(
                conn, await installed_backend(conn), scope, before, ZONE
            )

    return asyncio.run(run())


def _mean_kw(before: datetime) -> dict[datetime, float]:
    """Each 15 minutes' net import, kW, from each meter's mean power over its own step (a
    counter's carried hour is its mean over that hour), for the local month up to `before`."""
    kw: dict[datetime, float] = {}
    sign = {"ba/main": 1.0, "bb/main": 1.0, "bc/main": 1.0, "ap/bat": 1.0, "ap/pv": -1.0}
    for name, rows in raw_readings().items():
        if name not in sign:
            continue
        for (t0, v0), (t1, v1) in itertools.pairwise(rows):
            if MONTH[0] <= t1 < before:
                mean = (v1 - v0) / ((t1 - t0).total_seconds() / 3600.0) if name == "bb/main" else v1
                kw[t1] = kw.get(t1, 0.0) + sign[name] * mean
    return kw


def test_demand_peak_is_the_local_months_15min_net_import(audit_url: str, site: SiteFile) -> None:
    """Month to date on 12 October, 00:00 local: the highest 15-minute net import since local
    1 October (the battery's spike at 03:00 local on 1 October, 19:00 UTC on 30 September), net
    of PV and the battery, and not the spike at 03:00 local on 1 November (October in UTC)."""
    before = datetime(2026, 10, 12, tzinfo=ZONE)
    expected = max(_mean_kw(before).values())
    assert expected == pytest.approx(_ba_kw(SPIKES[0]) + 60.0 + 30.0 + _bat_kw(SPIKES[0]))
    assert _month_peak_kw(audit_url, site, before) == pytest.approx(expected)


def test_demand_peak_of_the_month_with_a_counter_gap(audit_url: str, site: SiteFile) -> None:
    """The whole month: bb/main's missing hour is no 15 minutes of 4 × its mean power."""
    expected = max(_mean_kw(MONTH[1]).values())
    assert _month_peak_kw(audit_url, site, MONTH[1] - LAST_INSTANT) == pytest.approx(expected)


def test_certificates_cover_no_more_than_the_park_bought(audit_url: str) -> None:
    """Certificates retired for ba cover its whole draw from 08:00 to 14:00 on 5 October, but
    park PV supplied most of it and the park bought less: they cover what was bought, no more,
    and market-based Scope 2 is 0, not below (rolled back: the ledger is append-only)."""
    window = (datetime(2026, 10, 5, 8, tzinfo=ZONE), datetime(2026, 10, 5, 14, tzinfo=ZONE))
    audit = Audit(window)
    offered = 10_000.0 * 6 / 24  # 10 MWh retired for the day, 6 of its 24 hours in the window
    assert audit.import_kwh < audit.total("ba/main") < offered

    async def run() -> CarbonReport:
        async with connect(audit_url) as conn, conn.transaction(force_rollback=True):
            block = CertificateIn(
                project="audit wind", technology="wind", location="Gansu", vintage=2026,
                serial_first=1, serial_last=10, reason="audit",
            )  # fmt: skip
            held = await add_certificates(conn, "ap", block, "audit")
            body = RetirementIn(
                instrument_id=held, site_id="ba", period="2026-10-05", reason="audit"
            )
            await retire(conn, await installed_backend(conn), body, "audit")
            return await carbon_report(conn, await installed_backend(conn), "ap", *window)

    report = asyncio.run(run())
    market = report.scope2_market
    assert market is not None
    assert market.certificate_kwh == pytest.approx(audit.import_kwh)
    assert market.market_kg == pytest.approx(0.0, abs=1e-6)
    assert market.unapplied_kwh == pytest.approx(offered - audit.import_kwh)
    assert sum(line.scope2_market_kg or 0.0 for line in report.lines) == pytest.approx(
        market.market_kg, abs=1e-6
    )


def test_every_surface_reports_import_and_export_apart(audit_url: str) -> None:
    """CSV, HTML report, disclosure's emissions.csv and the /ui carbon page carry the same
    import-only Scope 2 and the export on its own line."""
    audit, report = Audit(), _report(audit_url, "ap")
    bought, exported = audit.import_kwh, audit.export_kwh

    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    site_row = rows[0]
    assert float(site_row["electricity_kwh"]) == pytest.approx(bought)
    assert float(site_row["scope2_kg"]) == pytest.approx(bought * GRID)
    assert float(site_row["exported_kwh"]) == pytest.approx(exported)
    assert float(site_row["export_credit_cny"]) == pytest.approx(-exported * EXPORT_PRICE)
    assert sum(float(r["exported_kwh"]) for r in rows[1:]) == pytest.approx(exported)
    assert sum(float(r["scope2_kg"]) for r in rows[1:]) == pytest.approx(bought * GRID)

    emissions = {
        (r["scope"], r["method"], r["source"]): r
        for r in csv.DictReader(io.StringIO(emissions_csv(report).decode()))
    }
    location = emissions[("2", "location", "electricity bought")]
    assert float(location["activity_kwh"]) == pytest.approx(bought, abs=1e-5)
    assert float(location["kg_co2"]) == pytest.approx(bought * GRID, abs=1e-5)
    memo = emissions[("memo", "both", "electricity exported (not netted against Scope 2)")]
    assert float(memo["activity_kwh"]) == pytest.approx(exported, abs=1e-5)
    assert memo["kg_co2"] == ""

    html = render_html(report)
    assert f"{exported:,.0f}</b><span>electricity exported (not netted), kWh" in html

    body = page(
        "carbon.html", site_id="ap", period="2026-10", report=report,
        market=report.scope2_market, missing=None, held=[], account=None, entries=[], zone=ZONE,
    ).body  # fmt: skip
    ui = bytes(body).decode()
    shown = re.search(r'id="exported">([^ ]*) kWh exported', ui)
    assert shown is not None and shown.group(1) == number(exported, 0)
    assert f"credited {number(exported * EXPORT_PRICE, 2)} CNY" in ui
    location_kg = re.search(r'data-method="location">([^<]*)<', ui)
    assert location_kg is not None and location_kg.group(1) == number(bought * GRID, 0)


def _panel(url: str, text: str) -> dict[str, float]:
    """A carbon dashboard panel's SQL over the month, expanded as Grafana sends it (its "this
    month" ends a millisecond before the next)."""
    chosen = {"park": Chosen(("ap",), False), "building": Chosen(("ba", "bb", "bc"), True)}
    month = TimeRange(MONTH[0], MONTH[1] - timedelta(milliseconds=1))
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(expand(text, chosen, month, "15m", timescaledb=False).encode())
        row = cur.fetchone()
        assert row is not None and cur.description is not None
        return {c.name: float(v) for c, v in zip(cur.description, row, strict=True)}


def test_grafana_carbon_panels_count_import_only(audit_url: str) -> None:
    audit = Audit()
    total = _panel(audit_url, grafana_carbon.TOTAL)
    assert total["scope2_t"] * 1000 == pytest.approx(audit.import_kwh * GRID)
    assert total["scope1_t"] * 1000 == pytest.approx(audit.total("ap/gas") * GAS)
    dual = _panel(audit_url, carbon_market.SCOPE2_DUAL)
    assert dual["location_kg"] == pytest.approx(audit.import_kwh * GRID)
    assert dual["market_kg"] == pytest.approx(audit.import_kwh * RESIDUAL)
    assert dual["residual_mwh"] * 1000 == pytest.approx(audit.import_kwh)


def test_disclosure_activity_is_the_energy_of_the_local_month(audit_url: str) -> None:
    """activity.csv's October row of each meter is its energy in local October by the energy
    rule (ba/main's lost 15 minutes missing, bb/main's carried hour counted), its coverage the
    hours with data."""
    audit = Audit()

    async def run() -> bytes:
        async with connect(audit_url) as conn:
            inputs, start, end = await gather(conn, await installed_backend(conn), "ap", 2026)
            return activity(inputs, start, end)[0]

    rows = list(csv.DictReader(io.StringIO(asyncio.run(run()).decode())))
    october = {r["meter"]: r for r in rows if r["month"] == "2026-10"}
    for name in ("ba/main", "bb/main", "bc/main", "ap/pv", "ap/bat", "ap/gas"):
        assert float(october[name]["kwh"]) == pytest.approx(audit.total(name), abs=1e-5), name
    assert int(october["ba/main"]["present_hours"]) == 31 * 24 - 1


def test_an_hourly_grid_series_prices_all_the_electricity_bought(audit_url: str) -> None:
    """With the city on an hourly series (at GRID every hour, so the figures stay), the share
    of electricity it prices is 1: the export rows do not dilute it (rolled back)."""

    async def run() -> CarbonReport:
        async with connect(audit_url) as conn, conn.transaction(force_rollback=True):
            await conn.execute(
                "UPDATE sites SET attributes = jsonb_set(attributes, '{carbon,grid_series}', "
                "'\"audit\"') WHERE id = 'auditcity'"
            )
            await conn.execute(
                "INSERT INTO grid_intensity (series, ts, kg_per_kwh) SELECT 'audit', ts, %s "
                "FROM generate_series(%s::timestamptz, %s::timestamptz, '1 hour') AS ts",
                (GRID, FIRST, LAST),
            )
            return await carbon_report(conn, await installed_backend(conn), "ap", *MONTH)

    report = asyncio.run(run())
    assert report.factors.grid_series == "audit"
    assert report.factors.grid_series_share == pytest.approx(1.0)
    assert report.scope2_kg == pytest.approx(Audit().import_kwh * GRID)
