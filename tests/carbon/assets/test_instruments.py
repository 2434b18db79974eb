"""Green certificates and contracts: registration, retirement once across the city, and the
market-based Scope 2 they give, against an independent calculation from the test city's readings.

b1 on 2026-10-05 bought 2200 kWh; its location-based grid factor is 0.5 kg/kWh (2025's, the
latest listed year before 2026), the residual mix 0.6 kg/kWh.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.types.range import Range

from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.asset_errors import AssetInputError
from energyhub.carbon.instruments import (
    CertificateIn,
    ContractIn,
    RetirementIn,
    add_certificates,
    add_contract,
    retire,
)
from energyhub.store.db import connect, installed_backend
from tests.carbon.assets.conftest import RESIDUAL_MIX

ZONE = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 10, 5, tzinfo=ZONE)
NEXT = datetime(2026, 10, 6, tzinfo=ZONE)
B1_KWH = 2200.0
GRID = 0.5
SOURCE = {"project": "Ulanqab wind 3", "technology": "wind", "location": "Inner Mongolia"}


def block(first: int, last: int, **extra: object) -> CertificateIn:
    return CertificateIn(
        **SOURCE, vintage=2026, serial_first=first, serial_last=last, reason="PO 17", **extra
    )


def claim(
    instrument: int, site: str = "b1", period: str = "2026-10-05", **extra: object
) -> RetirementIn:
    return RetirementIn(instrument_id=instrument, site_id=site, period=period, reason="Q4", **extra)


async def counts(conn: psycopg.AsyncConnection) -> tuple[int, int]:
    cur = await conn.execute(
        "SELECT (SELECT count(*) FROM green_instruments), (SELECT count(*) FROM green_retirements)"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_certificates_and_a_contract_make_market_based_scope2(assets_url: str) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        certificates = await add_certificates(conn, "b1", block(5001, 5001), "alice")
        contract = await add_contract(
            conn,
            "b1",
            ContractIn(
                **SOURCE,
                vintage=2026,
                mwh=0.5,
                supplier_kg_per_kwh=0.1,
                delivery_start=DAY.date(),
                delivery_end=DAY.date(),
                reason="green power trade 2026-10",
            ),
            "alice",
        )
        await retire(conn, backend, claim(certificates), "alice")
        await retire(conn, backend, claim(contract), "alice")
        report = await carbon_report(conn, backend, "b1", DAY, NEXT)
    market = report.scope2_market
    assert market is not None
    assert report.energy_kwh.electricity == pytest.approx(B1_KWH)
    assert market.location_electricity_kg == pytest.approx(B1_KWH * GRID)
    assert market.certificate_kwh == pytest.approx(1000)
    assert market.contract_kwh == pytest.approx(500)
    assert market.residual_kwh == pytest.approx(B1_KWH - 1500)
    expected = 500 * 0.1 + (B1_KWH - 1500) * RESIDUAL_MIX
    assert market.market_electricity_kg == pytest.approx(expected)
    assert market.market_kg == pytest.approx(expected + report.scope2_heat_kg)
    assert market.location_kg == pytest.approx(report.scope2_kg)
    assert market.residual_mix_source == "test residual mix 2025, AIB-style"
    assert [(u.kind, u.serials) for u in market.instruments] == [
        ("certificate", "5001-5001"),
        ("contract", None),
    ]


async def test_a_yearly_retirement_counts_by_time_and_never_beyond_consumption(
    assets_url: str,
) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        held = await add_certificates(conn, "tenant-a", block(1, 3650), "bob")
        await retire(conn, backend, claim(held, "tenant-a", "2026"), "bob")
        day = await carbon_report(conn, backend, "b1", DAY, NEXT)
        tenant = await carbon_report(conn, backend, "tenant-a", DAY, NEXT)
    assert day.scope2_market is not None and tenant.scope2_market is not None
    # 3650 MWh over 365 days: 10 MWh in the day, more than b1 bought. They were retired for
    # tenant-a, so in b1's report they cover tenant-a's line only: its 480 kWh sub-meter and its
    # 20 % floor-area share of what the sub-meters leave of b1's draw; the rest of b1 is at the
    # residual mix, and what tenant-a did not use is not applied.
    tenant_kwh = 480 + 0.2 * (B1_KWH - 480 - 240)
    assert day.scope2_market.instruments[0].in_period_kwh == pytest.approx(10_000)
    assert day.scope2_market.certificate_kwh == pytest.approx(tenant_kwh)
    assert day.scope2_market.market_electricity_kg == pytest.approx(
        (B1_KWH - tenant_kwh) * RESIDUAL_MIX
    )
    assert day.scope2_market.unapplied_kwh == pytest.approx(10_000 - tenant_kwh)
    assert any("not applied" in note for note in day.notes)
    lines = {line.site_id: line for line in day.lines}
    assert lines["tenant-a"].scope2_market_kg == pytest.approx(
        lines["tenant-a"].scope2_kg - lines["tenant-a"].scope2_electricity_kg
    )
    assert sum(line.scope2_market_kg or 0.0 for line in day.lines) == pytest.approx(
        day.scope2_market.market_kg
    )
    # The tenant's own report: all of its electricity is covered.
    assert tenant.energy_kwh.electricity == pytest.approx(tenant_kwh)
    assert tenant.scope2_market.certificate_kwh == pytest.approx(tenant_kwh)
    assert tenant.scope2_market.market_electricity_kg == pytest.approx(0.0)


async def test_a_certificate_is_retired_once_across_the_city(assets_url: str) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        held = await add_certificates(conn, "p1", block(100, 199), "alice")
        await retire(conn, backend, claim(held, serial_first=100, serial_last=149), "alice")
        before = await counts(conn)
        with pytest.raises(AssetInputError) as refused:
            await retire(conn, backend, claim(held, "b2", serial_first=140, serial_last=160), "eve")
        assert refused.value.field == "serial_first"
        assert "already retired (retirement 1, site 'b1', 2026-10-05)" in str(refused.value)
        assert await counts(conn) == before
        # The database itself refuses, whoever writes.
        with pytest.raises(psycopg.errors.ExclusionViolation):
            await conn.execute(
                "INSERT INTO green_retirements (instrument_id, registry, site_id, period, "
                "period_label, serials, mwh, recorded_by, reason) VALUES (%s, 'GEC', 'b2', "
                "tstzrange(now(), now() + interval '1 day'), 'x', %s, 1, 'eve', 'x')",
                (held, Range(149, 150, "[)")),
            )
        # The rest of the block is still free.
        await retire(conn, backend, claim(held, "b2", serial_first=150, serial_last=199), "bob")
        assert await counts(conn) == (1, 2)


async def test_a_held_block_cannot_be_registered_twice(assets_url: str) -> None:
    async with connect(assets_url) as conn:
        await add_certificates(conn, "b1", block(10, 20), "alice")
        with pytest.raises(AssetInputError, match=r"^serial_first: GEC 15-30 overlaps 10-20"):
            await add_certificates(conn, "b2", block(15, 30), "eve")
        other = block(15, 30, registry="I-REC")
        await add_certificates(conn, "b2", other, "alice")
        assert await counts(conn) == (2, 0)


@pytest.mark.parametrize(
    ("retirement", "field", "message"),
    [
        ({"period": "2026-11"}, "period", "bought no electricity in 2026-11"),
        ({"period": "2026-13"}, "period", "is not a date"),
        ({"period": "２０２６-10"}, "period", "must be YYYY, YYYY-MM or YYYY-MM-DD"),
        ({"site_id": "b3"}, "site_id", "is not 'b1' or below it"),
        ({"serial_first": 5, "serial_last": 25}, "serial_first", "not within instrument"),
        ({"mwh": 3}, "mwh", "does not match serials 10-20"),
    ],
)
async def test_bad_retirements_are_refused_and_nothing_is_written(
    assets_url: str, retirement: dict[str, object], field: str, message: str
) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        held = await add_certificates(conn, "b1", block(10, 20), "alice")
        values = {"instrument_id": held, "site_id": "b1", "period": "2026-10-05", "reason": "x"}
        with pytest.raises(AssetInputError) as refused:
            await retire(conn, backend, RetirementIn(**(values | retirement)), "alice")
        assert refused.value.field == field
        assert message in str(refused.value)
        assert await counts(conn) == (1, 0)


async def test_contract_claims_never_exceed_the_contract(assets_url: str) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        contract = ContractIn(
            **SOURCE,
            vintage=2026,
            mwh=2,
            supplier_kg_per_kwh=0.05,
            delivery_start=DAY.date(),
            delivery_end=DAY.date(),
            reason="x",
        )
        held = await add_contract(conn, "b1", contract, "alice")
        await retire(conn, backend, claim(held, mwh=1.5), "alice")
        with pytest.raises(AssetInputError, match=r"^mwh: 1 MWh claimed, contract 1 has 0.5 MWh"):
            await retire(conn, backend, claim(held, mwh=1), "alice")
        with pytest.raises(AssetInputError, match=r"^period: 2026-10-04 lies outside contract"):
            await retire(conn, backend, claim(held, period="2026-10-04", mwh=0.1), "alice")
        with pytest.raises(psycopg.errors.CheckViolation, match=r"has 0\.5 MWh left"):
            await conn.execute(
                "INSERT INTO green_retirements (instrument_id, registry, site_id, period, "
                "period_label, mwh, recorded_by, reason) VALUES (%s, 'GEC', 'b1', "
                "tstzrange(now(), now() + interval '1 day'), 'x', 1, 'eve', 'x')",
                (held,),
            )
        assert await counts(conn) == (1, 1)


async def test_instruments_and_retirements_are_append_only(assets_url: str) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        held = await add_certificates(conn, "b1", block(1, 2), "alice")
        await retire(conn, backend, claim(held), "alice")
        for statement in (
            "UPDATE green_instruments SET mwh = 5",
            "DELETE FROM green_retirements",
            "TRUNCATE green_retirements",
        ):
            with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
                await conn.execute(statement)
        assert await counts(conn) == (1, 1)


async def test_two_writers_at_once_retire_a_serial_once(assets_url: str) -> None:
    async with connect(assets_url) as setup:
        backend = await installed_backend(setup)
        held = await add_certificates(setup, "p1", block(300, 399), "alice")

    async def one(site: str, first: int, last: int) -> str:
        async with connect(assets_url) as conn:
            try:
                await retire(
                    conn, backend, claim(held, site, serial_first=first, serial_last=last), site
                )
            except AssetInputError as exc:
                return exc.field
            return "done"

    results = await asyncio.gather(
        *(one(s, 300 + i, 350 + i) for i, s in enumerate(("b1", "b2") * 3))
    )
    assert sorted(results) == ["done"] + ["serial_first"] * 5
    async with connect(assets_url) as conn:
        assert await counts(conn) == (1, 1)
