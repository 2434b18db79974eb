"""The allowance and CCER ledger and carbon price series (tables of migration v013), in SQL.

Ledger rows only go in (the table refuses UPDATE and DELETE); a reversal is a row with the
negated volume that names the entry it cancels, at most one per entry (UNIQUE `reverses`).
Writers of one account take a transaction-scoped advisory lock first, so that the balance a
sale is checked against cannot change before the sale is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row

ENTRY_COLUMNS = """
e.id, e.account_id, e.compliance_year, e.kind, e.instrument, e.entry_date,
e.volume_t::float8 AS volume_t, e.price_cny_per_t::float8 AS price_cny_per_t, e.counterparty,
e.reverses, (SELECT r.id FROM carbon_ledger AS r WHERE r.reverses = e.id) AS reversed_by,
e.recorded_by, e.recorded_at, e.reason"""

INSERT = """
INSERT INTO carbon_ledger (account_id, compliance_year, kind, instrument, entry_date, volume_t,
    price_cny_per_t, counterparty, reverses, recorded_by, reason)
VALUES (%(account_id)s, %(compliance_year)s, %(kind)s, %(instrument)s, %(entry_date)s,
    %(volume_t)s, %(price_cny_per_t)s, %(counterparty)s, %(reverses)s, %(recorded_by)s,
    %(reason)s)
RETURNING id"""

ENTRIES = f"""
SELECT {ENTRY_COLUMNS} FROM carbon_ledger AS e
WHERE e.account_id = %(account)s AND (%(year)s::integer IS NULL OR e.compliance_year = %(year)s)
ORDER BY e.id"""  # noqa: S608 (composed from constants)

ENTRY = f"SELECT {ENTRY_COLUMNS} FROM carbon_ledger AS e WHERE e.id = %(id)s"  # noqa: S608

LOCK = "SELECT pg_advisory_xact_lock(14014, hashtext(%s))"
"""One lock per account; the first key (any fixed int4) keeps it apart from other locks."""

UPSERT_PRICES = """
INSERT INTO carbon_prices (series, day, cny_per_t)
SELECT %(series)s, day, price FROM unnest(%(day)s::date[], %(price)s::float8[]) AS u (day, price)
ON CONFLICT (series, day) DO UPDATE SET cny_per_t = excluded.cny_per_t"""

PRICE_ON = """
SELECT day, cny_per_t FROM carbon_prices WHERE series = %(series)s AND day <= %(day)s
ORDER BY day DESC LIMIT 1"""


@dataclass(frozen=True, slots=True)
class EntryRow:
    id: int
    account_id: str
    compliance_year: int
    kind: str
    instrument: str
    entry_date: date
    volume_t: float
    price_cny_per_t: float | None
    counterparty: str | None
    reverses: int | None
    reversed_by: int | None
    recorded_by: str
    recorded_at: datetime
    reason: str


async def lock_account(conn: AsyncConnection, account_id: str) -> None:
    """Serialize the account's writers until the transaction ends."""
    await conn.execute(LOCK, (account_id,))


async def insert_entry(conn: AsyncConnection, values: dict[str, object]) -> int:
    cur = await conn.execute(INSERT, values)
    row = await cur.fetchone()
    if row is None:
        raise RuntimeError("INSERT ... RETURNING id returned no row")
    return int(row[0])


async def entries(conn: AsyncConnection, account_id: str, year: int | None) -> list[EntryRow]:
    """The account's entries (of one compliance year, or all), oldest first."""
    cur = conn.cursor(row_factory=class_row(EntryRow))
    await cur.execute(ENTRIES, {"account": account_id, "year": year})
    return await cur.fetchall()


async def entry(conn: AsyncConnection, entry_id: int) -> EntryRow | None:
    cur = conn.cursor(row_factory=class_row(EntryRow))
    await cur.execute(ENTRY, {"id": entry_id})
    return await cur.fetchone()


async def store_prices(
    conn: AsyncConnection, series: str, days: list[date], prices: list[float]
) -> int:
    """Insert or replace a price series' daily values; returns the rows written."""
    async with conn.transaction():
        cur = await conn.execute(UPSERT_PRICES, {"series": series, "day": days, "price": prices})
    return cur.rowcount


async def price_on(conn: AsyncConnection, series: str, day: date) -> tuple[date, float] | None:
    """The series' latest price on or before `day`, with its date."""
    cur = await conn.execute(PRICE_ON, {"series": series, "day": day})
    row = await cur.fetchone()
    return (row[0], float(row[1])) if row else None


ACCOUNT = "SELECT kind, attributes->'carbon_scheme' FROM sites WHERE id = %s AND active"


async def account(conn: AsyncConnection, account_id: str) -> tuple[str, object] | None:
    """An active site's kind and its `carbon_scheme` from the site file (None if it has none)."""
    cur = await conn.execute(ACCOUNT, (account_id,))
    row = await cur.fetchone()
    return (str(row[0]), row[1]) if row else None
