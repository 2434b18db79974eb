"""The allowance and CCER ledger: balances, reversals, the audit trail, append-only storage, the
position against verified or projected emissions, prices, and refusals that write nothing.

tenant-a has a scheme: CCERs up to 5 % of emissions, surrender by 06-30 of the next year, price
series SHEA, warnings from 60 days before.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from typer.testing import CliRunner, Result

from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.allowances import EntryIn, add_entry, reverse_entry
from energyhub.carbon.asset_errors import AssetInputError
from energyhub.carbon.position import position
from energyhub.cli import app
from energyhub.store.allowances import store_prices
from energyhub.store.db import connect, installed_backend

ACCOUNT = "tenant-a"
runner = CliRunner()


def entry(
    kind: str, volume: float, instrument: str | None = "allowance", **extra: object
) -> EntryIn:
    values: dict[str, object] = {
        "compliance_year": 2026,
        "kind": kind,
        "instrument": instrument,
        "entry_date": "2026-09-01",
        "volume_t": volume,
        "reason": "test",
    }
    if kind in ("purchase", "sale"):
        values |= {"price_cny_per_t": 85.0, "counterparty": "SEEE"}
    return EntryIn.model_validate(values | extra)


async def count(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute("SELECT count(*) FROM carbon_ledger")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_position_against_verified_emissions_with_a_shortfall_warning(
    assets_url: str,
) -> None:
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        for item in (
            entry("allocation", 100),
            entry("purchase", 20),
            entry("sale", 30),
            entry("purchase", 12, "ccer"),
            entry("verified", 200, None),
        ):
            await add_entry(conn, ACCOUNT, item, "alice")
        await store_prices(conn, "SHEA", [date(2027, 5, 1), date(2027, 5, 10)], [80.0, 90.0])
        found = await position(conn, backend, ACCOUNT, 2026, date(2027, 5, 15))
    assert found.allowances_held_t == pytest.approx(90)
    assert found.ccer_held_t == pytest.approx(12)
    assert found.ccer_usable_t == pytest.approx(10)  # 5 % of 200 t
    assert found.emissions_basis == "verified"
    assert found.position_t == pytest.approx(90 + 10 - 200)
    assert (found.price_cny_per_t, found.price_day) == (90.0, date(2027, 5, 10))
    assert found.shortfall_cost_cny == pytest.approx(100 * 90)
    assert found.holdings_cny == pytest.approx((90 + 12) * 90)
    assert found.surrender_due == date(2027, 6, 30) and found.days_to_surrender == 46
    assert found.warnings == [
        "shortfall of 100.0 t with 46 days to the surrender date 2027-06-30: buy 100.0 t, "
        "about 9,000 CNY at 90 CNY/t"
    ]


async def test_projected_emissions_scale_the_year_so_far(assets_url: str) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    async with connect(assets_url) as conn:
        backend = await installed_backend(conn)
        await add_entry(conn, ACCOUNT, entry("allocation", 5), "alice")
        found = await position(conn, backend, ACCOUNT, 2026, date(2026, 10, 5))
        start, end = datetime(2026, 1, 1, tzinfo=zone), datetime(2026, 10, 6, tzinfo=zone)
        so_far = await carbon_report(conn, backend, ACCOUNT, start, end)
    year_days, elapsed_days = 365, (end - start).days
    assert found.emissions_basis == "projected"
    assert found.emissions_t == pytest.approx(so_far.total_kg / 1000 * year_days / elapsed_days)
    assert found.position_t == pytest.approx(5 - found.emissions_t)
    assert "no price: load the series SHEA with `energyhub carbon price`" in found.warnings
    assert found.days_to_surrender > 60  # no shortfall warning yet


async def test_reversals_correct_and_are_audited(assets_url: str) -> None:
    async with connect(assets_url) as conn:
        await add_entry(conn, ACCOUNT, entry("allocation", 100), "alice")
        typo = await add_entry(conn, ACCOUNT, entry("purchase", 1000), "alice")
        fix = await reverse_entry(conn, ACCOUNT, typo, "typed 1000 for 10", "bob")
        await add_entry(conn, ACCOUNT, entry("purchase", 10), "alice")
        with pytest.raises(AssetInputError, match=f"already reversed by {fix}"):
            await reverse_entry(conn, ACCOUNT, typo, "again", "bob")
        with pytest.raises(AssetInputError, match="is itself a reversal"):
            await reverse_entry(conn, ACCOUNT, fix, "undo", "bob")
        await add_entry(conn, ACCOUNT, entry("sale", 105), "alice")
        with pytest.raises(AssetInputError, match=r"^entry: reversing entry 1 would leave -95 t"):
            await reverse_entry(conn, ACCOUNT, 1, "allocation was wrong", "bob")
        cur = await conn.execute(
            "SELECT id, volume_t::float8, reverses, recorded_by, reason FROM carbon_ledger "
            "WHERE id IN (%s, %s) ORDER BY id",
            (typo, fix),
        )
        assert await cur.fetchall() == [
            (typo, 1000.0, None, "alice", "test"),
            (fix, -1000.0, typo, "bob", "typed 1000 for 10"),
        ]
        for statement in ("UPDATE carbon_ledger SET volume_t = 1", "DELETE FROM carbon_ledger"):
            with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
                await conn.execute(statement)
        assert await count(conn) == 5


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (entry("sale", 101), "volume_t: sale of 101 t, 100 t allowance held for 2026"),
        (entry("surrender", 1, "ccer"), "volume_t: surrender of 1 t, 0 t ccer held for 2026"),
        (entry("purchase", 1, price_cny_per_t=0.085), "price_cny_per_t: 0.085 CNY/t is below 1"),
        (entry("purchase", 1, price_cny_per_t=8500), "price_cny_per_t: 8500 CNY/t is above 2000"),
        (entry("verified", 150, None), "kind: 2026 already has verified emissions"),
    ],
)
async def test_refusals_name_the_field_and_write_nothing(
    assets_url: str, item: EntryIn, message: str
) -> None:
    async with connect(assets_url) as conn:
        await add_entry(conn, ACCOUNT, entry("allocation", 100), "alice")
        if item.kind == "verified":
            await add_entry(conn, ACCOUNT, entry("verified", 120, None), "alice")
        before = await count(conn)
        with pytest.raises(AssetInputError) as refused:
            await add_entry(conn, ACCOUNT, item, "eve")
        assert str(refused.value).startswith(message)
        assert await count(conn) == before


async def test_ccer_surrender_stays_within_the_offset_share(assets_url: str) -> None:
    async with connect(assets_url) as conn:
        await add_entry(conn, ACCOUNT, entry("purchase", 50, "ccer"), "alice")
        await add_entry(conn, ACCOUNT, entry("verified", 400, None), "alice")
        await add_entry(conn, ACCOUNT, entry("surrender", 15, "ccer"), "alice")
        with pytest.raises(AssetInputError, match=r"offset share 5% of 400 t verified leaves 5 t"):
            await add_entry(conn, ACCOUNT, entry("surrender", 6, "ccer"), "alice")
        assert await count(conn) == 3


async def test_only_enterprises_and_buildings_hold_allowances(assets_url: str) -> None:
    async with connect(assets_url) as conn:
        with pytest.raises(AssetInputError, match=r"^account: 'p1' is a park"):
            await add_entry(conn, "p1", entry("allocation", 1), "alice")


def cli(url: str, *args: str) -> Result:
    return runner.invoke(app, ["carbon", *args], env={"ENERGYHUB_DB_URL": url, "COLUMNS": "200"})


def flat(result: Result) -> str:
    return " ".join(result.output.split())


def test_cli_ledger_price_and_position(assets_url: str, tmp_path: Path) -> None:
    prices = tmp_path / "shea.csv"
    prices.write_text("day,cny_per_t\n2027-05-01,80\n2027-05-10,90\n", encoding="utf-8")
    assert cli(assets_url, "price", str(prices), "--series", "SHEA").exit_code == 0
    base = ("ledger", "add", "--account", ACCOUNT, "--year", "2026", "--reason", "notice 12")
    done = cli(assets_url, *base, "--kind", "allocation", "--instrument", "allowance",
               "--volume-t", "100", "--by", "alice")  # fmt: skip
    assert done.exit_code == 0, done.output
    bought = cli(assets_url, *base, "--kind", "purchase", "--instrument", "allowance",
                 "--volume-t", "20", "--price", "85 CNY/t", "--counterparty", "SEEE",
                 "--date", "2027-05-02")  # fmt: skip
    assert bought.exit_code == 0, bought.output
    verified = cli(assets_url, *base, "--kind", "verified", "--volume-t", "150")
    assert verified.exit_code == 0, verified.output
    shown = cli(assets_url, "ledger", "position", "--account", ACCOUNT, "--year", "2026",
                "--as-of", "2027-05-15")  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert '"position_t": -30.0' in shown.stdout and '"shortfall_cost_cny": 2700.0' in shown.stdout
    listed = cli(assets_url, "ledger", "list", "--account", ACCOUNT)
    assert '"counterparty": "SEEE"' in listed.stdout and '"recorded_by": "alice"' in listed.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--price", "0.085 CNY/kg"), "price: '0.085 CNY/kg' is not in CNY per tonne"),
        (("--price", "12 USD/t"), "price: '12 USD/t' is not in CNY per tonne"),
        (("--price", "0.09"), "price: 0.09 CNY/t is below 1: a price per kg?"),
        (("--price", "85"), "counterparty is needed for a purchase"),
        (("--price", "85", "--counterparty", "X", "--volume-t", "-3"), "volume_t: Input should be"),
        # an escape sequence was stored, and rewrote the terminal of whoever listed the ledger
        (("--price", "85", "--counterparty", "A\x1b[2J"), "counterparty: must not contain control"),
        (
            ("--price", "85", "--counterparty", "X", "--reason", "a\x1bb"),
            "reason: must not contain",
        ),
    ],
)
def test_cli_refusals_exit_2(assets_url: str, args: tuple[str, ...], message: str) -> None:
    done = cli(assets_url, "ledger", "add", "--account", ACCOUNT, "--year", "2026", "--kind",
               "purchase", "--instrument", "allowance", "--volume-t", "5", "--reason", "x",
               *args)  # fmt: skip
    assert done.exit_code == 2, done.output
    assert message in flat(done)
    assert "Traceback" not in done.output


@pytest.mark.parametrize("year", ["99999999999", "1999", "2101"])
def test_a_list_year_beyond_the_ledger_is_refused_by_name(assets_url: str, year: str) -> None:
    # 99999999999 was a traceback: psycopg's NumericValueOutOfRange from the query
    done = cli(assets_url, "ledger", "list", "--account", ACCOUNT, "--year", year)
    assert done.exit_code == 2, done.output
    assert isinstance(done.exception, SystemExit)
    assert "Invalid value for '--year'" in flat(done)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("day,cny_per_kg\n2027-01-01,0.08\n", "'cny_per_kg' is not CNY per tonne"),
        ("day,cny_per_t\n2027-01-01,0.08\n", "cny_per_t: "),
        ("day,cny_per_t\n2027-13-01,80\n", "day: "),
        # NaN passed both bounds and was stored; a short row and non-UTF-8 bytes were tracebacks
        ("day,cny_per_t\n2027-01-01,nan\n", "must be a finite number of CNY per tonne, got nan"),
        ("day,cny_per_t\n2027-01-01\n", "p.csv:2: expected a number, got None"),
        ("day,cny_per_t\n2027-01-01,80\xa0\n", "cannot read the file: not UTF-8 text (byte 0xa0"),
        ("\ufeffday,cny_per_t\n2027-01-01,0.08\n", "cny_per_t: "),  # BOM: the header is read
        # a decimal comma was stored as 61 (the cell after it set aside), a column given twice
        # as its later value
        ("day,cny_per_t\n2027-01-01,61,5\n", "p.csv:2: 3 cells under a header of 2 columns"),
        ("day,cny_per_t,cny_per_t\n2027-01-01,60,61\n", "'cny_per_t' is given twice"),
        # year 1 was stored, outside the years every other time of energyhub lies in
        ("day,cny_per_t\n0001-01-01,60\n", "p.csv:2: the year must lie between 1970 and 2199"),
        # a cell over the csv module's limit was a traceback (`_csv.Error: field larger than
        # field limit (131072)`), in a row (test_bad_price_rows_lose_no_good_day_beside_them) or
        # in the header
        (f"day,{'c' * 200_000}\n", "p.csv: the header is not readable as CSV: a cell of more"),
    ],
)
def test_price_files_in_the_wrong_unit_are_refused(
    assets_url: str, tmp_path: Path, text: str, message: str
) -> None:
    prices = tmp_path / "p.csv"
    prices.write_text(text, encoding="latin-1" if "\xa0" in text else "utf-8")
    done = cli(assets_url, "price", str(prices), "--series", "SHEA")
    assert done.exit_code == 2, done.output
    assert message in flat(done)
    with psycopg.connect(assets_url) as conn:
        row = conn.execute("SELECT count(*) FROM carbon_prices").fetchone()
    assert row == (0,)


def test_bad_price_rows_lose_no_good_day_beside_them(assets_url: str, tmp_path: Path) -> None:
    """One refused row stored nothing of the file: the refused rows are named, the rest stored."""
    prices = tmp_path / "p.csv"
    prices.write_text(
        f"day,cny_per_t\n2027-01-01,60\n2027-01-02,{'9' * 200_000}\n2027-01-03,nan\n"
        "2027-01-04,62\n2027-01-04,70\n"
    )
    done = cli(assets_url, "price", str(prices), "--series", "SHEA")
    assert done.exit_code == 2, done.output
    said = flat(done)
    assert "series SHEA: 2 days stored" in said
    assert "3 row problem(s), those rows not stored (the other 2 stored)" in said
    assert "p.csv:3: not readable as CSV: a cell of more than 131,072 characters" in said
    assert "p.csv:4: must be a finite number of CNY per tonne, got nan" in said
    assert "p.csv:6: 2027-01-04 appears twice (first on line 5, which is kept)" in said
    with psycopg.connect(assets_url) as conn:
        rows = conn.execute("SELECT day, cny_per_t FROM carbon_prices ORDER BY day").fetchall()
    assert [(d.isoformat(), p) for d, p in rows] == [("2027-01-01", 60.0), ("2027-01-04", 62.0)]


@pytest.mark.parametrize(
    ("kind", "extra", "says"),
    [
        ("allocation", {}, "is needed for an allocation"),
        ("allocation", {"instrument": "allowance", "price_cny_per_t": 80.0}, "not an allocation"),
        ("surrender", {}, "is needed for a surrender"),
    ],
)
def test_an_entry_s_kind_is_named_with_its_article(
    kind: str, extra: dict[str, object], says: str
) -> None:
    """It read "needed for a allocation"."""
    with pytest.raises(ValueError, match=says):
        base = {"compliance_year": 2026, "kind": kind, "entry_date": "2026-03-01"}
        EntryIn.model_validate(base | {"volume_t": 10.0, "reason": "test"} | extra)
