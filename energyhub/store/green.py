"""Green certificates and contracts and their retirements (tables of migration v013), in SQL.

Rows only go in: the tables refuse UPDATE and DELETE. Serial ranges are `int8range` [first,
last + 1); the database's exclusion constraints refuse a range that overlaps one already held or
retired in the same registry, whichever site holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.range import Range

INSTRUMENT_COLUMNS = """
i.id, i.kind, i.site_id, i.registry, i.project, i.technology, i.location, i.vintage,
lower(i.serials) AS serial_first, upper(i.serials) - 1 AS serial_last, i.mwh::float8 AS mwh,
i.supplier_kg_per_kwh, lower(i.delivery) AS delivery_start, upper(i.delivery) AS delivery_end,
i.recorded_by, i.recorded_at, i.reason,
coalesce((SELECT sum(r.mwh) FROM green_retirements AS r WHERE r.instrument_id = i.id), 0)::float8
    AS retired_mwh"""

INSERT_INSTRUMENT = """
INSERT INTO green_instruments (kind, site_id, registry, project, technology, location, vintage,
    serials, mwh, supplier_kg_per_kwh, delivery, recorded_by, reason)
VALUES (%(kind)s, %(site_id)s, %(registry)s, %(project)s, %(technology)s, %(location)s,
    %(vintage)s, %(serials)s, %(mwh)s, %(supplier_kg_per_kwh)s, %(delivery)s, %(recorded_by)s,
    %(reason)s)
RETURNING id"""

INSERT_RETIREMENT = """
INSERT INTO green_retirements (instrument_id, registry, site_id, period, period_label, serials,
    mwh, recorded_by, reason)
VALUES (%(instrument_id)s, %(registry)s, %(site_id)s, %(period)s, %(period_label)s, %(serials)s,
    %(mwh)s, %(recorded_by)s, %(reason)s)
RETURNING id"""

REGISTERED = f"""
SELECT {INSTRUMENT_COLUMNS} FROM green_instruments AS i
WHERE i.registry = %(registry)s AND i.serials && %(serials)s ORDER BY i.id LIMIT 1"""  # noqa: S608

RETIRED = """
SELECT r.id, r.site_id, r.period_label, lower(r.serials), upper(r.serials) - 1
FROM green_retirements AS r
WHERE r.registry = %(registry)s AND r.serials && %(serials)s ORDER BY r.id LIMIT 1"""

INSTRUMENT = f"SELECT {INSTRUMENT_COLUMNS} FROM green_instruments AS i WHERE i.id = %(id)s"  # noqa: S608
INSTRUMENTS = f"""
SELECT {INSTRUMENT_COLUMNS} FROM green_instruments AS i
WHERE i.site_id = ANY(%(sites)s) ORDER BY i.id"""  # noqa: S608

RETIREMENTS = """
SELECT r.id, r.instrument_id, i.kind, r.site_id, r.registry, i.project, i.technology,
       i.location, i.vintage, lower(r.serials) AS serial_first,
       upper(r.serials) - 1 AS serial_last, r.mwh::float8 AS mwh, i.supplier_kg_per_kwh,
       lower(r.period) AS period_start, upper(r.period) AS period_end, r.period_label,
       r.recorded_by, r.recorded_at, r.reason
FROM green_retirements AS r JOIN green_instruments AS i ON i.id = r.instrument_id
WHERE r.site_id = ANY(%(sites)s) AND r.period && tstzrange(%(start)s, %(end)s)
ORDER BY r.id"""


@dataclass(frozen=True, slots=True)
class InstrumentRow:
    id: int
    kind: str
    site_id: str
    registry: str
    project: str
    technology: str
    location: str
    vintage: int
    serial_first: int | None
    serial_last: int | None
    mwh: float
    supplier_kg_per_kwh: float | None
    delivery_start: datetime | None
    delivery_end: datetime | None
    recorded_by: str
    recorded_at: datetime
    reason: str
    retired_mwh: float


@dataclass(frozen=True, slots=True)
class RetirementRow:
    id: int
    instrument_id: int
    kind: str
    site_id: str
    registry: str
    project: str
    technology: str
    location: str
    vintage: int
    serial_first: int | None
    serial_last: int | None
    mwh: float
    supplier_kg_per_kwh: float | None
    period_start: datetime
    period_end: datetime
    period_label: str
    recorded_by: str
    recorded_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """A retirement whose serials overlap the ones asked for."""

    retirement_id: int
    site_id: str
    period_label: str
    serial_first: int
    serial_last: int


def serial_range(first: int, last: int) -> Range[int]:
    """Serials `first`..`last` (inclusive) as the stored range."""
    return Range(first, last + 1, "[)")


async def _returning_id(conn: AsyncConnection, query: str, values: dict[str, object]) -> int:
    cur = await conn.execute(query, values)
    row = await cur.fetchone()
    if row is None:
        raise RuntimeError("INSERT ... RETURNING id returned no row")
    return int(row[0])


async def insert_instrument(conn: AsyncConnection, values: dict[str, object]) -> int:
    return await _returning_id(conn, INSERT_INSTRUMENT, values)


async def insert_retirement(conn: AsyncConnection, values: dict[str, object]) -> int:
    return await _returning_id(conn, INSERT_RETIREMENT, values)


async def registered(
    conn: AsyncConnection, registry: str, first: int, last: int
) -> InstrumentRow | None:
    """The first instrument already holding any of these serials."""
    cur = conn.cursor(row_factory=class_row(InstrumentRow))
    await cur.execute(REGISTERED, {"registry": registry, "serials": serial_range(first, last)})
    return await cur.fetchone()


async def retired(conn: AsyncConnection, registry: str, first: int, last: int) -> Conflict | None:
    """The first retirement of any of these serials."""
    cur = await conn.execute(RETIRED, {"registry": registry, "serials": serial_range(first, last)})
    row = await cur.fetchone()
    return Conflict(*row) if row else None


async def instrument(conn: AsyncConnection, instrument_id: int) -> InstrumentRow | None:
    cur = conn.cursor(row_factory=class_row(InstrumentRow))
    await cur.execute(INSTRUMENT, {"id": instrument_id})
    return await cur.fetchone()


async def instruments(conn: AsyncConnection, site_ids: list[str]) -> list[InstrumentRow]:
    """The instruments these sites hold, oldest first, with what is retired of each."""
    cur = conn.cursor(row_factory=class_row(InstrumentRow))
    await cur.execute(INSTRUMENTS, {"sites": site_ids})
    return await cur.fetchall()


async def retirements(
    conn: AsyncConnection, site_ids: list[str], start: datetime, end: datetime
) -> list[RetirementRow]:
    """Retirements for these sites whose period overlaps [start, end), oldest first."""
    cur = conn.cursor(row_factory=class_row(RetirementRow))
    await cur.execute(RETIREMENTS, {"sites": site_ids, "start": start, "end": end})
    return await cur.fetchall()
