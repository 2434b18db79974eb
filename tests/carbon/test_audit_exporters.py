"""An auditor's recomputation of exporters: a building that exports behind a park connection that
imports, a tenant in it, and a window longer than two months against the sum of its months.

Park xp (Asia/Shanghai) buys through its connection; behind it:

- xa, a building whose rooftop PV exports behind its meter from 10:00 to 14:00 in three quarter
  hours of four (-60 kW) and imports 100 kW in the fourth; 50 kW otherwise. Within an hour it both
  imports and exports, so netting by the hour would see less of both;
- xa-t, a tenant of xa (500 of its 2000 m²) with its own sub-meter, 20 kW all the time, also while
  xa exports;
- xb, a building drawing 80 kW: the park imports while xa exports, except when
- xp/pv, the park's PV, makes 150 kW in the first and third quarter hour of 12:00: then the park
  exports.

Readings every 15 minutes from local 31 July to 1 November 2026 through the project's COPY writer
into a real PostgreSQL; the test recomputes each figure from the readings with plain arithmetic (a
power reading stands for the 15 minutes before it and lands in the bucket of its timestamp) and
compares it with what each surface says.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from psycopg import sql

from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.export import to_csv
from energyhub.carbon.instrument_models import CertificateIn, RetirementIn
from energyhub.carbon.instruments import add_certificates, retire
from energyhub.carbon.models import CarbonReport
from energyhub.grafana import carbon as grafana_carbon
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
GRID = 0.55
RESIDUAL = 0.6
EXPORT_PRICE = 0.35
FIRST = datetime(2026, 7, 31, tzinfo=ZONE)
LAST = datetime(2026, 11, 1, 6, tzinfo=ZONE)
MONTHS = [
    (datetime(2026, 8, 1, tzinfo=ZONE), datetime(2026, 9, 1, tzinfo=ZONE)),
    (datetime(2026, 9, 1, tzinfo=ZONE), datetime(2026, 10, 1, tzinfo=ZONE)),
    (datetime(2026, 10, 1, tzinfo=ZONE), datetime(2026, 11, 1, tzinfo=ZONE)),
]
QUARTER = (MONTHS[0][0], MONTHS[-1][1])
"""92 days: longer than the 62 days the report once read at 15 minutes."""
TENANT_SHARE = 500 / 2000

SITE: dict[str, Any] = {
    "version": 1,
    "timezone": "Asia/Shanghai",
    "city": {
        "id": "xcity",
        "carbon": {
            "grid_kg_per_kwh": GRID,
            "price_cny_per_t": 0,
            "residual_mix_kg_per_kwh": RESIDUAL,
            "residual_mix_source": "exporters audit",
        },
        "parks": [
            {
                "id": "xp",
                "grid": {
                    "import_max_kw": 5000,
                    "export_max_kw": 500,
                    "tariff": "flat",
                    "export_price_cny_per_kwh": EXPORT_PRICE,
                },
                "meters": [
                    {
                        "id": "pv",
                        "carrier": "pv",
                        "quantity": "power_kw",
                        "asset": "xp-pv",
                        "interval_s": 900,
                    }
                ],
                "assets": [{"id": "xp-pv", "type": "pv", "peak_kw": 200}],
                "buildings": [
                    {
                        "id": "xa",
                        "class": "office-A",
                        "floor_area_m2": 2000,
                        "meters": [
                            {
                                "id": "main",
                                "carrier": "electricity",
                                "quantity": "power_kw",
                                "interval_s": 900,
                            },
                            {
                                "id": "t",
                                "carrier": "electricity",
                                "quantity": "power_kw",
                                "interval_s": 900,
                                "submeter_of": "main",
                            },
                        ],
                        "enterprises": [{"id": "xa-t", "floor_area_m2": 500, "meters": ["t"]}],
                    },
                    {
                        "id": "xb",
                        "class": "lab",
                        "floor_area_m2": 3000,
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
            }
        ],
    },
}


def _quarter(t: datetime) -> int:
    return t.minute // 15


def _xa_kw(t: datetime) -> float:
    if 10 <= t.hour < 14:
        return 100.0 if _quarter(t) == 3 else -60.0
    return 50.0


def _pv_kw(t: datetime) -> float:
    return 150.0 if t.hour == 12 and _quarter(t) in (0, 2) else 0.0


KW = {
    "xa/main": _xa_kw,
    "xa/t": lambda t: 20.0,
    "xb/main": lambda t: 80.0,
    "xp/pv": _pv_kw,
}


def _times() -> list[datetime]:
    count = int((LAST - FIRST) / STEP)
    return [(FIRST + i * STEP).astimezone(ZONE) for i in range(count + 1)]


class Audit:
    """The window recomputed from the readings: each power reading's 15 minutes, in kWh."""

    def __init__(self, window: tuple[datetime, datetime]) -> None:
        inside = [t for t in _times()[1:] if window[0] <= t < window[1]]
        self.kwh = {name: {t: kw(t) * H for t in inside} for name, kw in KW.items()}
        self.park = {
            t: self.kwh["xa/main"][t] + self.kwh["xb/main"][t] - self.kwh["xp/pv"][t]
            for t in inside
        }

    @staticmethod
    def bought(steps: dict[datetime, float]) -> float:
        return sum(max(v, 0.0) for v in steps.values())

    @staticmethod
    def exported(steps: dict[datetime, float]) -> float:
        return sum(max(-v, 0.0) for v in steps.values())

    def hourly(self, steps: dict[datetime, float]) -> dict[datetime, float]:
        """The same steps netted by the hour of their bucket (the rule this audit rules out)."""
        hours: dict[datetime, float] = {}
        for t, v in steps.items():
            hour = t.replace(minute=0)
            hours[hour] = hours.get(hour, 0.0) + v
        return hours

    def tenant(self) -> tuple[float, float]:
        """xa-t's electricity bought and export by the allocation rule: its sub-meter plus its
        floor-area share of xa's remainder (what xa bought less the sub-meter; xa's export)."""
        metered = self.bought(self.kwh["xa/t"])
        remainder = self.bought(self.kwh["xa/main"]) - metered
        return metered + TENANT_SHARE * remainder, TENANT_SHARE * self.exported(self.kwh["xa/main"])


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
    times = _times()
    utc = np.array([t.astimezone(UTC).replace(tzinfo=None) for t in times], "datetime64[us]")
    parts = [
        ReadingBatch.from_columns(utc, [ids[name]] * len(times), [kw(t) for t in times])
        for name, kw in KW.items()
    ]
    async with open_pool(url, max_size=1) as pool:
        await ReadingWriter(pool, backend).write(ReadingBatch.concat(parts))
    async with connect(url) as conn:
        await refresh_rollups(conn, backend)


@pytest.fixture(scope="module")
def url(site: SiteFile) -> Iterator[str]:
    name = f"hexport_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db_url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        asyncio.run(_load(db_url, site))
        yield db_url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _report(url: str, site_id: str, window: tuple[datetime, datetime]) -> CarbonReport:
    async def run() -> CarbonReport:
        async with connect(url) as conn:
            return await carbon_report(conn, await installed_backend(conn), site_id, *window)

    return asyncio.run(run())


def _market_kg(report: CarbonReport) -> float:
    assert report.scope2_market is not None
    return report.scope2_market.market_kg


FIGURES: dict[str, Callable[[Any], float]] = {
    "electricity_kwh": lambda r: r.energy_kwh.electricity,
    "exported_kwh": lambda r: r.exported_kwh,
    "scope2_kg": lambda r: r.scope2_kg,
    "market_kg": _market_kg,
    "electricity_cny": lambda r: r.cost_cny.electricity,
    "export_credit_cny": lambda r: r.cost_cny.export_credit,
}


def test_the_data_bites() -> None:
    """Netting by the hour sees less import and export than netting by the 15 minutes, for the
    park and for xa; xa exports in steps where the park imports; the tenant draws then too."""
    audit = Audit(QUARTER)
    for steps in (audit.park, audit.kwh["xa/main"]):
        assert audit.bought(audit.hourly(steps)) < audit.bought(steps) - 1000
        assert audit.exported(audit.hourly(steps)) < audit.exported(steps) - 1000
    both = [t for t, v in audit.kwh["xa/main"].items() if v < 0 and audit.park[t] > 0]
    assert len(both) > 500
    assert audit.exported(audit.park) > 0
    assert all(audit.kwh["xa/t"][t] > 0 for t in both)


@pytest.mark.parametrize("site_id", ["xp", "xa", "xa-t", "xcity"])
def test_a_long_window_is_the_sum_of_its_months(url: str, site_id: str) -> None:
    """Additivity: the 92 days report what their three months report, figure by figure, and
    what the auditor recomputes at the billing meter's 15 minutes."""
    whole = _report(url, site_id, QUARTER)
    months = [_report(url, site_id, month) for month in MONTHS]
    for name, figure in FIGURES.items():
        assert figure(whole) == pytest.approx(sum(figure(m) for m in months), rel=1e-9), name
    audit = Audit(QUARTER)
    if site_id in ("xp", "xcity"):
        bought, exported = audit.bought(audit.park), audit.exported(audit.park)
    elif site_id == "xa":
        bought, exported = audit.bought(audit.kwh["xa/main"]), audit.exported(audit.kwh["xa/main"])
    else:
        bought, exported = audit.tenant()
    assert whole.energy_kwh.electricity == pytest.approx(bought)
    assert whole.exported_kwh == pytest.approx(exported)
    assert whole.scope2_kg == pytest.approx(bought * GRID)
    assert _market_kg(whole) == pytest.approx(bought * RESIDUAL)
    assert whole.cost_cny.export_credit == pytest.approx(-exported * EXPORT_PRICE)


OCTOBER = MONTHS[-1]


def _line(report: CarbonReport, site_id: str) -> Any:
    return next(line for line in report.lines if line.site_id == site_id)


def _line_market_kg(report: CarbonReport, site_id: str, kind: str) -> float:
    assert report.scope2_market is not None
    mine = [m for m in report.scope2_market.lines if (m.site_id, m.kind) == (site_id, kind)]
    assert len(mine) == 1
    return mine[0].market_kg


def test_a_building_exporting_behind_an_importing_park_reads_the_same_in_both_reports(
    url: str,
) -> None:
    """xa's Scope 2 is what its own meter bought, step by step, in its report and on its line of
    the park's; its export at its own meter is its exported_kwh in both. The park bought less
    than its buildings (xb used xa's export): the park's own line is the connection less them."""
    audit = Audit(OCTOBER)
    building, park = _report(url, "xa", OCTOBER), _report(url, "xp", OCTOBER)
    xa, xb = audit.kwh["xa/main"], audit.kwh["xb/main"]
    line = _line(park, "xa")
    for item in (building, line):
        assert item.energy_kwh.electricity == pytest.approx(audit.bought(xa))
        assert item.exported_kwh == pytest.approx(audit.exported(xa))
        assert item.scope2_kg == pytest.approx(audit.bought(xa) * GRID)
        assert item.cost_cny.export_credit == pytest.approx(-audit.exported(xa) * EXPORT_PRICE)
    assert _market_kg(building) == pytest.approx(audit.bought(xa) * RESIDUAL)
    assert _line_market_kg(park, "xa", "building") == pytest.approx(audit.bought(xa) * RESIDUAL)
    assert _line(park, "xb").scope2_kg == pytest.approx(audit.bought(xb) * GRID)
    assert park.scope2_kg == pytest.approx(audit.bought(audit.park) * GRID)
    assert park.exported_kwh == pytest.approx(audit.exported(audit.park))
    own = _line(park, "xp")
    assert own.kind == "park-own"
    buildings = audit.bought(xa) + audit.bought(xb)
    assert own.energy_kwh.electricity == pytest.approx(audit.bought(audit.park) - buildings)
    assert own.exported_kwh == pytest.approx(audit.exported(audit.park) - audit.exported(xa))
    for name, figure in FIGURES.items():
        if name != "market_kg":
            assert sum(figure(line) for line in park.lines) == pytest.approx(figure(park)), name
    city = _report(url, "xcity", OCTOBER)
    assert city.scope2_kg == pytest.approx(park.scope2_kg)
    assert city.exported_kwh == pytest.approx(park.exported_kwh)
    assert _line(city, "xp").scope2_kg == pytest.approx(park.scope2_kg)


def test_the_csvs_follow_the_rule(url: str) -> None:
    audit = Audit(OCTOBER)
    xa = audit.kwh["xa/main"]
    for site_id in ("xp", "xa"):
        rows = list(csv.DictReader(io.StringIO(to_csv(_report(url, site_id, OCTOBER)))))
        row = next(r for r in rows if r["site_id"] == "xa" and r["kind"] == "building")
        assert float(row["electricity_kwh"]) == pytest.approx(audit.bought(xa)), site_id
        assert float(row["exported_kwh"]) == pytest.approx(audit.exported(xa)), site_id
        assert float(row["scope2_kg"]) == pytest.approx(audit.bought(xa) * GRID), site_id
        assert float(row["scope2_market_kg"]) == pytest.approx(audit.bought(xa) * RESIDUAL)


def test_a_tenant_of_an_exporting_building(url: str) -> None:
    """xa-t: its sub-meter plus its floor-area share of xa's remainder, in its own report and on
    its line of xa's; its share of xa's export is its exported_kwh; market-based at the residual
    mix; the tenant and common lines add up to xa."""
    audit = Audit(OCTOBER)
    bought, exported = audit.tenant()
    tenant, building = _report(url, "xa-t", OCTOBER), _report(url, "xa", OCTOBER)
    line = _line(building, "xa-t")
    for item in (tenant, line):
        assert item.energy_kwh.electricity == pytest.approx(bought)
        assert item.exported_kwh == pytest.approx(exported)
        assert item.scope2_kg == pytest.approx(bought * GRID)
        assert item.cost_cny.export_credit == pytest.approx(-exported * EXPORT_PRICE)
    assert _market_kg(tenant) == pytest.approx(bought * RESIDUAL)
    assert _line_market_kg(building, "xa-t", "tenant") == pytest.approx(bought * RESIDUAL)
    for name, figure in FIGURES.items():
        if name != "market_kg":
            assert sum(figure(x) for x in building.lines) == pytest.approx(figure(building)), name
    assert not any("exceed" in note for note in building.notes), building.notes


def _panel_rows(url: str, text: str, interval: str = "15m") -> list[dict[str, Any]]:
    """A carbon dashboard panel's SQL over October, the park and both buildings chosen."""
    chosen = {"park": Chosen(("xp",), False), "building": Chosen(("xa", "xb"), True)}
    month = TimeRange(OCTOBER[0], OCTOBER[1] - timedelta(milliseconds=1))
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(expand(text, chosen, month, interval, timescaledb=False).encode())
        assert cur.description is not None
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.mark.parametrize("interval", ["15m", "1h"])
def test_the_grafana_panels_follow_the_rule(url: str, interval: str) -> None:
    """Each building's bar is what its own meter bought; the park network's bar the connection
    less them; the total the connection's; the tenant its allocation; netted on 15 minutes
    whatever Grafana's interval (an hour's interval once read the hourly rollup)."""
    audit = Audit(OCTOBER)
    xa, xb = audit.kwh["xa/main"], audit.kwh["xb/main"]
    total = _panel_rows(url, grafana_carbon.TOTAL, interval)[0]
    assert float(total["scope2_t"]) * 1000 == pytest.approx(audit.bought(audit.park) * GRID)
    rows = _panel_rows(url, grafana_carbon.BY_BUILDING, interval)
    by_site = {r["site"]: float(r["co2_kg"]) for r in rows}
    assert by_site["xa"] == pytest.approx(audit.bought(xa) * GRID)
    assert by_site["xb"] == pytest.approx(audit.bought(xb) * GRID)
    assert sum(by_site.values()) == pytest.approx(audit.bought(audit.park) * GRID)
    intensity = {
        r["building"]: float(r["kg_per_m2"])
        for r in _panel_rows(url, grafana_carbon.INTENSITY, interval)
    }
    assert intensity["xa"] == pytest.approx(audit.bought(xa) * GRID / 2000)
    tenants = {r["enterprise"]: r for r in _panel_rows(url, grafana_carbon.BY_ENTERPRISE, interval)}
    bought, _ = audit.tenant()
    assert float(tenants["xa-t"]["electricity_kg"]) == pytest.approx(bought * GRID)


def test_a_tenant_while_its_building_only_exports(url: str) -> None:
    """10:00-10:45 on 5 October xa only exports and bought nothing, while xa-t's sub-meter
    draws: the rule still holds (its sub-meter plus its share of a remainder now below 0, its
    share of the export), the lines add up to xa's 0 kWh bought, and the notes say why the
    remainder is below 0 instead of blaming the meters."""
    window = (datetime(2026, 10, 5, 10, tzinfo=ZONE), datetime(2026, 10, 5, 10, 45, tzinfo=ZONE))
    audit = Audit(window)
    assert audit.bought(audit.kwh["xa/main"]) == 0.0
    bought, exported = audit.tenant()
    tenant, building = _report(url, "xa-t", window), _report(url, "xa", window)
    assert building.scope2_kg == 0.0
    for item in (tenant, _line(building, "xa-t")):
        assert item.energy_kwh.electricity == pytest.approx(bought)
        assert item.exported_kwh == pytest.approx(exported)
        assert item.scope2_kg == pytest.approx(bought * GRID)
    assert _market_kg(tenant) == pytest.approx(bought * RESIDUAL)
    assert sum(line.scope2_kg for line in building.lines) == pytest.approx(0.0, abs=1e-9)
    assert _market_kg(building) == pytest.approx(0.0, abs=1e-9)
    notes = " ".join(building.notes)
    assert "check the meters" not in notes, notes
    assert "exported" in notes, notes


def test_certificates_for_the_exporting_building_in_both_reports(url: str) -> None:
    """10 MWh of certificates retired for xa in October cover 10 MWh of what xa's own meter
    bought, in its report and on its line of the park's; the park's market-based Scope 2 is
    what the park bought less them at the residual mix (rolled back: the ledger is append-only)."""
    audit = Audit(OCTOBER)
    xa = audit.bought(audit.kwh["xa/main"])
    park_bought = audit.bought(audit.park)
    assert 10_000 < xa and 10_000 < park_bought

    async def run() -> tuple[CarbonReport, CarbonReport]:
        async with connect(url) as conn, conn.transaction(force_rollback=True):
            backend = await installed_backend(conn)
            block = CertificateIn(
                project="audit wind", technology="wind", location="Gansu", vintage=2026,
                serial_first=1, serial_last=10, reason="audit",
            )  # fmt: skip
            held = await add_certificates(conn, "xa", block, "audit")
            body = RetirementIn(instrument_id=held, site_id="xa", period="2026-10", reason="audit")
            await retire(conn, backend, body, "audit")
            return (
                await carbon_report(conn, backend, "xa", *OCTOBER),
                await carbon_report(conn, backend, "xp", *OCTOBER),
            )

    building, park = asyncio.run(run())
    assert _market_kg(building) == pytest.approx((xa - 10_000) * RESIDUAL)
    assert _line_market_kg(park, "xa", "building") == pytest.approx((xa - 10_000) * RESIDUAL)
    assert _market_kg(park) == pytest.approx((park_bought - 10_000) * RESIDUAL)
    assert building.scope2_kg == pytest.approx(xa * GRID)
