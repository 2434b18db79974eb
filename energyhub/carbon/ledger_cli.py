"""`energyhub carbon ledger …` and `energyhub carbon price`: allowances and CCERs per enterprise or
building, their audit trail, the compliance position, and the price series it is valued at."""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from psycopg import AsyncConnection

from energyhub.carbon.allowances import (
    EntryIn,
    Instrument,
    Kind,
    add_entry,
    ledger_entries,
    parse_price,
    reverse_entry,
)
from energyhub.carbon.asset_errors import AssetInputError, parse_input
from energyhub.carbon.position import position
from energyhub.carbon.prices import read_price_csv
from energyhub.cli_support import (
    console,
    free_text,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.csv_columns import rows_refused
from energyhub.store.allowances import store_prices
from energyhub.store.db import connect, installed_backend
from energyhub.store.migrations import require_schema

ledger_app: typer.Typer = typer.Typer(
    help="Allowances and CCERs per enterprise or building: entries, reversals, position.",
    no_args_is_help=True,
)
SERIES_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
T = TypeVar("T")

Account = Annotated[str, typer.Option("--account", help="Enterprise or building id.")]
Year = Annotated[int, typer.Option("--year", min=2000, max=2100, help="Compliance year.")]
By = Annotated[
    str | None,
    typer.Option("--by", callback=free_text, help="Who records the entry (default: the OS user)."),
]


def _run(work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def run() -> T:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            await require_schema(conn)
            return await work(conn)

    return run_async(run())


@ledger_app.command("add")
@handles_errors
def add_command(
    account: Account,
    year: Year,
    kind: Annotated[Kind, typer.Option("--kind", help="What happened.")],
    volume: Annotated[float, typer.Option("--volume-t", help="Tonnes of CO₂(e).")],
    reason: Annotated[str, typer.Option("--reason", help="Why: contract, notice, approval.")],
    instrument: Annotated[
        Instrument | None, typer.Option("--instrument", help="allowance or ccer.")
    ] = None,
    day: Annotated[
        str | None, typer.Option("--date", help="Trade or notice date, YYYY-MM-DD (today).")
    ] = None,
    price: Annotated[
        str | None, typer.Option("--price", help="Purchases and sales: e.g. '85 CNY/t'.")
    ] = None,
    counterparty: Annotated[
        str | None, typer.Option("--counterparty", help="Purchases and sales: who.")
    ] = None,
    by: By = None,
) -> None:
    """Record an allocation, purchase, sale, surrender or the verified emissions of a year."""
    values: dict[str, Any] = {
        "compliance_year": year,
        "kind": kind,
        "instrument": instrument,
        "entry_date": day or date.today().isoformat(),
        "volume_t": volume,
        "price_cny_per_t": parse_price("price", price) if price is not None else None,
        "counterparty": counterparty,
        "reason": reason,
    }
    entry = parse_input(EntryIn, values)
    done = _run(lambda conn: add_entry(conn, account, entry, by or getpass.getuser()))
    console.print(f"entry {done}: {kind} {volume:g} t for {account}, {year}")


@ledger_app.command("reverse")
@handles_errors
def reverse_command(
    entry: Annotated[int, typer.Argument(help="The entry to cancel.")],
    account: Account,
    reason: Annotated[
        str, typer.Option("--reason", callback=free_text, help="Why it is reversed.")
    ],
    by: By = None,
) -> None:
    """Cancel an entry with a reversing one (entries are never edited)."""
    done = _run(lambda conn: reverse_entry(conn, account, entry, reason, by or getpass.getuser()))
    console.print(f"entry {done} reverses entry {entry}")


@ledger_app.command("list")
@handles_errors
def list_command(
    account: Account,
    year: Annotated[
        int | None, typer.Option("--year", min=2000, max=2100, help="Only this year.")
    ] = None,
) -> None:
    """Every entry of the account with its audit trail (JSON)."""
    rows = _run(lambda conn: ledger_entries(conn, account, year))
    typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2, ensure_ascii=False))


@ledger_app.command("position")
@handles_errors
def position_command(
    account: Account,
    year: Year,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Day of the position, YYYY-MM-DD (today).")
    ] = None,
) -> None:
    """Holdings against emissions, valued at the price series; warnings before surrender."""
    try:
        day = date.fromisoformat(as_of) if as_of else date.today()
    except ValueError:
        raise AssetInputError("as_of", f"expected YYYY-MM-DD, got {as_of!r}") from None

    async def work(conn: AsyncConnection) -> str:
        found = await position(conn, await installed_backend(conn), account, year, day)
        return found.model_dump_json(indent=2)

    typer.echo(_run(work))


def price_command(
    csv_file: Annotated[Path, typer.Argument(help="CSV with columns day,cny_per_t.")],
    series: Annotated[
        str, typer.Option("--series", help="Series name, as carbon_scheme.price_series gives it.")
    ],
) -> None:
    """Store (or replace) a daily carbon price series in CNY per tonne."""
    if not SERIES_NAME.match(series):
        raise AssetInputError(
            "series", f"must be an id of letters, digits, '-', '_' or '.', got {series!r}"
        )
    found = read_price_csv(csv_file)
    days, prices = found.days, found.prices
    stored = _run(lambda conn: store_prices(conn, series, days, prices))
    console.print(f"series {series}: {stored} days stored, {min(days)} to {max(days)}")
    if found.problems:
        raise AssetInputError("file", rows_refused(found.problems, f"the other {stored} stored"))
