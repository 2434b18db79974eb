"""Hourly grid carbon intensity series: loaded from CSV into the `grid_intensity` table, read back.

A table, not a CSV path in the site file: the API, the CLI and Grafana read the same numbers
through the connection they already have, and a series (a grid operator's hourly marginal or
average intensity) is shared by every site that names it in `carbon.grid_series`. One value per
hour; a value prices the steps of the hour from its `ts` (carbon/ledger.py), so a series may
follow UTC's hours (as grid operators publish) or a zone's that are off them (India's start at
:30 UTC), written in any offset: `ts` must start an hour on some zone's clock (a quarter hour past
a UTC hour) and a file's hours one grid. Loading a file replaces the stored values whose hours
overlap its own. Hours without a value use the site's yearly grid factor, and reports say which
share of the electricity the series priced.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from psycopg import AsyncConnection

from energyhub.bounds import KG_CO2_PER_KWH_MAX, within_years
from energyhub.carbon.errors import IntensityFileError
from energyhub.csv_columns import (
    Lines,
    Unreadable,
    fieldnames,
    header_problem,
    numbered_rows,
    rows_refused,
    surplus_problem,
)
from energyhub.errors import not_utf8
from energyhub.userfiles import read_text

COLUMNS = ("ts", "kg_per_kwh")
GRID_MIN = 15
"""Hours start on some zone's clock at a quarter hour past a UTC hour: UTC's and whole-hour
zones' at :00, India's (+05:30) at :30, Nepal's (+05:45) at :15."""
UPSERT = """
INSERT INTO grid_intensity (series, ts, kg_per_kwh)
SELECT %(series)s, ts, kg FROM unnest(%(ts)s::timestamptz[], %(kg)s::float8[]) AS u (ts, kg)
ON CONFLICT (series, ts) DO UPDATE SET kg_per_kwh = excluded.kg_per_kwh"""
OVERLAPPED = """
DELETE FROM grid_intensity AS g
USING unnest(%(ts)s::timestamptz[]) AS u (ts)
WHERE g.series = %(series)s AND g.ts <> u.ts
  AND g.ts > u.ts - interval '1 hour' AND g.ts < u.ts + interval '1 hour'"""
"""A series' stored values whose hours overlap a new value's without starting with it: values on
another grid of hours (a series loaded in India's local hours, now in UTC's). Left in place, each
step would take the latest value begun before it, half an hour of each."""
SELECT = """
SELECT series, ts, kg_per_kwh FROM grid_intensity
WHERE series = ANY(%(series)s) AND ts > %(start)s - interval '1 hour' AND ts < %(end)s"""


def _row(
    path: Path, line: int, row: dict[str | None, str | None] | Unreadable
) -> tuple[datetime, float]:
    """One row; a short row's missing cells are None (csv.DictReader), named like bad ones."""
    where = f"{path}:{line}"
    if isinstance(row, Unreadable):
        raise IntensityFileError(f"{where}: {row.problem}")
    surplus = surplus_problem(row, len(COLUMNS))
    if surplus:
        raise IntensityFileError(f"{where}: {surplus}")
    text = row.get("ts")
    try:
        ts = datetime.fromisoformat(text or "")
    except ValueError:
        raise IntensityFileError(f"{where}: ts must be RFC 3339, got {text!r}") from None
    if ts.tzinfo is None:
        raise IntensityFileError(f"{where}: ts must carry a UTC offset, got {text!r}")
    try:
        within_years(ts)
    except ValueError as exc:
        raise IntensityFileError(f"{where}: ts {exc}") from None
    utc = ts.astimezone(UTC)  # an offset may carry seconds: the instant counts, not the text
    if utc.minute % GRID_MIN or (utc.second, utc.microsecond) != (0, 0):
        raise IntensityFileError(
            f"{where}: ts must be the start of an hour: :00, :15, :30 or :45 past a UTC hour "
            f"(UTC's hours, or a zone's such as India's at :30), got {text!r}"
        )
    value = row.get("kg_per_kwh")
    try:
        kg = float(value or "")
    except ValueError:
        kg = -1.0
    if not 0 <= kg < math.inf:
        raise IntensityFileError(f"{where}: kg_per_kwh must be a finite number ≥ 0, got {value!r}")
    if kg > KG_CO2_PER_KWH_MAX:
        raise IntensityFileError(
            f"{where}: kg_per_kwh must be at most {KG_CO2_PER_KWH_MAX:g} (kg of CO₂ per kWh), "
            f"got {value!r}: a series in g/kWh? divide by 1000"
        )
    return ts, kg


def _minute(ts: datetime) -> int:
    return ts.astimezone(UTC).minute


def _one_value_an_hour(
    path: Path, good: list[tuple[int, datetime, float]], problems: list[tuple[int, str]]
) -> list[tuple[datetime, float]]:
    """The rows on the file's grid of hours (the minute past the UTC hour most of its rows
    start at, the earliest row's on a tie), each hour's first; the others named in `problems`
    by line. Hours on two grids would overlap: a step would take the later value, half an hour
    of each."""
    count = Counter(_minute(ts) for _, ts, _ in good)
    earliest = {_minute(ts): line for line, ts, _ in reversed(good)}
    grid = max(count, key=lambda minute: (count[minute], -earliest[minute]), default=0)
    first: dict[datetime, int] = {}
    kept = []
    for line, ts, kg in good:
        hour = ts.astimezone(UTC)
        if hour.minute != grid:
            problems.append(
                (
                    line,
                    f"{path}:{line}: ts must be the start of an hour on the file's grid, "
                    f":{grid:02d} past each UTC hour as {count[grid]} of its {len(good)} good "
                    f"rows start (from line {earliest[grid]}), got {ts.isoformat()!r} "
                    f"(:{hour.minute:02d} past)",
                )
            )
        elif hour in first:
            problems.append(
                (
                    line,
                    f"{path}:{line}: hour {hour.isoformat()} appears twice (first on line "
                    f"{first[hour]}, which is kept)",
                )
            )
        else:
            first[hour] = line
            kept.append((ts, kg))
    return kept


@dataclass(frozen=True, slots=True)
class IntensityRows:
    """A series file's good hours (ts UTC, kg_per_kwh) and each row refused, named."""

    frame: pd.DataFrame
    problems: list[str]


def read_intensity_csv(path: Path) -> IntensityRows:
    """A `ts,kg_per_kwh` CSV's good rows, each bad one named (`series.csv:7: …`) beside them: one
    bad row loses no good hour. IntensityFileError if the file or its header cannot be read, or
    no row is good."""
    good: list[tuple[int, datetime, float]] = []
    refused: list[tuple[int, str]] = []
    try:
        text = read_text(path, encoding="utf-8-sig", newline="")  # a BOM is no column
        lines = Lines(text)
        reader = csv.DictReader(lines)
        header = fieldnames(reader, lines)
        if isinstance(header, Unreadable):
            raise IntensityFileError(f"{path}: the header is {header.problem}")
        if set(COLUMNS) - set(header):
            raise IntensityFileError(
                f"{path}: the header must name the columns ts,kg_per_kwh, got {','.join(header)!r}"
            )
        problem = header_problem(header, COLUMNS)
        if problem:
            raise IntensityFileError(f"{path}: {problem}")
        for i, row in numbered_rows(reader, lines=lines):
            try:
                good.append((i, *_row(path, i, row)))
            except IntensityFileError as exc:
                refused.append((i, str(exc)))
    except OSError as exc:
        raise IntensityFileError(f"{path}: cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise IntensityFileError(f"{path}: cannot read the file: {not_utf8(exc)}") from None
    kept = _one_value_an_hour(path, good, refused)
    problems = [text for _, text in sorted(refused)]
    if not kept:
        if problems:
            raise IntensityFileError(rows_refused(problems, "no row is good"))
        raise IntensityFileError(f"{path}: no rows after the header")
    frame = pd.DataFrame(kept, columns=list(COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return IntensityRows(frame, problems)


@dataclass(frozen=True, slots=True)
class StoredHours:
    """What loading a series did: values written, and stored values of another grid of hours
    removed because the new hours overlapped theirs."""

    written: int
    replaced: int


async def store_intensity(conn: AsyncConnection, series: str, frame: pd.DataFrame) -> StoredHours:
    """Insert or replace a series' hourly values (on one grid of hours, as `read_intensity_csv`
    keeps them); stored values whose hours overlap theirs are removed."""
    params = {
        "series": series,
        "ts": [ts.to_pydatetime() for ts in frame["ts"]],
        "kg": frame["kg_per_kwh"].astype(float).tolist(),
    }
    async with conn.transaction():
        removed = await conn.execute(OVERLAPPED, params)
        cur = await conn.execute(UPSERT, params)
    return StoredHours(cur.rowcount, removed.rowcount)


async def hourly_intensity(
    conn: AsyncConnection, series: list[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """The stored values of these series whose hour overlaps [start, end) (one begun before
    `start` holds its first steps): series, hour (UTC), kg_per_kwh."""
    rows: list[tuple[str, datetime, float]] = []
    if series:
        cur = await conn.execute(SELECT, {"series": series, "start": start, "end": end})
        rows = await cur.fetchall()
    frame = pd.DataFrame(rows, columns=["series", "hour", "kg_per_kwh"])
    frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    return frame.astype({"series": str, "kg_per_kwh": "float64"})
