"""Market-based Scope 2 per line of a report: each line's own retirements, the reported site's
split by floor area (a building) or by electricity (a park), the rest at the residual mix; the
lines add up to the report. Expected figures from the test city's readings by hand.

b1 on 2026-10-05: tenant-a's sub-meter 480 kWh, tenant-b's 240 kWh, the building 2200 kWh; the
1480 kWh remainder goes 20 % to tenant-a (2000 of 10000 m²), 30 % to tenant-b, 50 % common.
"""

from __future__ import annotations

import csv
import io

import pytest

from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.export import to_csv
from energyhub.carbon.instruments import ContractIn, add_certificates, add_contract, retire
from energyhub.carbon.models import CarbonReport
from energyhub.carbon.report_html import render_html
from energyhub.store.db import connect, installed_backend
from tests.carbon.assets.conftest import RESIDUAL_MIX
from tests.carbon.assets.test_instruments import DAY, NEXT, SOURCE, block, claim

ELECTRICITY_KWH = {"tenant-a": 480 + 0.2 * 1480, "tenant-b": 240 + 0.3 * 1480, "b1": 0.5 * 1480}


def contract(mwh: float, kg_per_kwh: float) -> ContractIn:
    return ContractIn(
        **SOURCE,
        vintage=2026,
        mwh=mwh,
        supplier_kg_per_kwh=kg_per_kwh,
        delivery_start=DAY.date(),
        delivery_end=DAY.date(),
        reason="green power trade 2026-10",
    )


def _check_lines_add_up(report: CarbonReport) -> None:
    market = report.scope2_market
    assert market is not None
    assert len(market.lines) == len(report.lines) > 1
    assert sum(m.market_kg for m in market.lines) == pytest.approx(market.market_kg)
    assert sum(m.location_kg for m in market.lines) == pytest.approx(market.location_kg)
    assert sum(m.certificate_kwh for m in market.lines) == pytest.approx(market.certificate_kwh)
    assert sum(line.scope2_market_kg or 0.0 for line in report.lines) == pytest.approx(
        market.market_kg
    )
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    for row, line in zip(rows[1:], report.lines, strict=True):
        assert float(row["scope2_market_kg"]) == pytest.approx(line.scope2_market_kg)
    html = render_html(report)
    assert "<th>Scope 2 market kg</th>" in html
    for line in report.lines:
        location, market = f"{line.scope2_kg:,.0f}", f"{line.scope2_market_kg:,.0f}"
        assert f"<td>{location}</td><td>{market}</td>" in html


async def test_building_lines_take_their_own_and_a_floor_area_share(assets_url: str) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        building = await add_certificates(conn, "b1", block(1, 1), "alice")
        await retire(conn, backend, claim(building, "b1"), "alice")
        tenant = await add_contract(conn, "tenant-b", contract(1.0, 0.1), "alice")
        await retire(conn, backend, claim(tenant, "tenant-b"), "alice")
        report = await carbon_report(conn, backend, "b1", DAY, NEXT)
    _check_lines_add_up(report)
    assert report.scope2_market is not None
    lines = {m.site_id: m for m in report.scope2_market.lines}
    assert {k: m.electricity_kwh for k, m in lines.items()} == pytest.approx(ELECTRICITY_KWH)
    # b1's 1000 kWh of certificates by floor area: 200, 300 and 500 kWh.
    assert lines["tenant-a"].certificate_kwh == pytest.approx(200)
    assert lines["tenant-b"].certificate_kwh == pytest.approx(300)
    assert lines["b1"].certificate_kwh == pytest.approx(500)
    # tenant-b's contract covers what is left of tenant-b only; the rest of it is not applied.
    tenant_b_left = ELECTRICITY_KWH["tenant-b"] - 300
    assert lines["tenant-b"].contract_kwh == pytest.approx(tenant_b_left)
    assert lines["tenant-b"].market_electricity_kg == pytest.approx(tenant_b_left * 0.1)
    assert lines["tenant-b"].unapplied_kwh == pytest.approx(1000 - tenant_b_left)
    assert lines["tenant-a"].market_electricity_kg == pytest.approx(
        (ELECTRICITY_KWH["tenant-a"] - 200) * RESIDUAL_MIX
    )
    assert lines["b1"].market_electricity_kg == pytest.approx(
        (ELECTRICITY_KWH["b1"] - 500) * RESIDUAL_MIX
    )
    assert report.scope2_market.unapplied_kwh == pytest.approx(1000 - tenant_b_left)


async def test_park_lines_take_their_sites_and_the_park_by_electricity(assets_url: str) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        park = await add_certificates(conn, "p1", block(1, 1), "alice")
        await retire(conn, backend, claim(park, "p1"), "alice")
        tenant = await add_contract(conn, "tenant-a", contract(0.5, 0.2), "alice")
        await retire(conn, backend, claim(tenant, "tenant-a"), "alice")
        report = await carbon_report(conn, backend, "p1", DAY, NEXT)
    _check_lines_add_up(report)
    market = report.scope2_market
    assert market is not None
    bought = {line.site_id: max(line.energy_kwh.electricity, 0.0) for line in report.lines}
    total = sum(bought.values())
    assert bought["b1"] == pytest.approx(2200)
    for line in market.lines:
        certificate = 1000 * bought[line.site_id] / total
        assert line.certificate_kwh == pytest.approx(certificate)
        contract_kwh = min(500, 2200 - certificate) if line.site_id == "b1" else 0.0
        assert line.contract_kwh == pytest.approx(contract_kwh)
        expected = (
            contract_kwh * 0.2 + (bought[line.site_id] - certificate - contract_kwh) * RESIDUAL_MIX
        )
        assert line.market_electricity_kg == pytest.approx(expected)
