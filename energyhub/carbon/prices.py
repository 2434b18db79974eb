"""Carbon price series (CNY per tonne, one value a day), loaded from CSV like the grid intensity
series: a table every account's position reads through the connection it already has."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from energyhub.bounds import YEAR_MAX, YEAR_MIN
from energyhub.carbon.allowances import check_price
from energyhub.carbon.asset_errors import AssetInputError
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

COLUMNS = ("day", "cny_per_t")


def _row(
    path: Path, line: int, row: dict[str | None, str | None] | Unreadable
) -> tuple[date, float]:
    """One row; a short row's missing cells are None (csv.DictReader), named like bad ones."""
    where = f"{path}:{line}"
    if isinstance(row, Unreadable):
        raise AssetInputError("file", f"{where}: {row.problem}")
    surplus = surplus_problem(row, len(COLUMNS))
    if surplus:
        raise AssetInputError("cny_per_t", f"{where}: {surplus}")
    text, value = row.get("day"), row.get("cny_per_t")
    try:
        day = date.fromisoformat((text or "").strip())
    except ValueError:
        raise AssetInputError("day", f"{where}: expected YYYY-MM-DD, got {text!r}") from None
    if not YEAR_MIN <= day.year <= YEAR_MAX:
        raise AssetInputError(
            "day", f"{where}: the year must lie between {YEAR_MIN} and {YEAR_MAX}, got {text!r}"
        )
    try:
        price = float(value or "")
    except ValueError:
        raise AssetInputError("cny_per_t", f"{where}: expected a number, got {value!r}") from None
    try:
        return day, check_price("cny_per_t", price)
    except AssetInputError as exc:
        raise AssetInputError("cny_per_t", f"{where}: {exc.reason}") from None


@dataclass(frozen=True, slots=True)
class PriceRows:
    """A price file's good days and prices, and each row refused, named."""

    days: list[date]
    prices: list[float]
    problems: list[str]


def read_price_csv(path: Path) -> PriceRows:
    """A `day,cny_per_t` CSV's good rows, each bad one named (`prices.csv:7: …`) beside them: one
    bad row loses no good day. AssetInputError names the column (and row) at fault when the file
    or its header cannot be read, or no row is good."""
    good: list[tuple[int, date, float]] = []
    problems: list[str] = []
    try:
        text = read_text(path, encoding="utf-8-sig", newline="")  # a BOM is no column
        lines = Lines(text)
        reader = csv.DictReader(lines)
        names = fieldnames(reader, lines)
        if isinstance(names, Unreadable):
            raise AssetInputError("header", f"{path}: the header is {names.problem}")
        header = [name.strip() for name in names]
        reader.fieldnames = header
        if set(COLUMNS) - set(header):
            unit = next((h for h in header if h.startswith(("cny_per", "usd", "eur"))), None)
            hint = f": {unit!r} is not CNY per tonne" if unit else ""
            raise AssetInputError(
                "header",
                f"{path}: the columns must be day,cny_per_t, got {','.join(header)!r}{hint}",
            )
        problem = header_problem(header, COLUMNS)
        if problem:
            raise AssetInputError("header", f"{path}: {problem}")
        for i, row in numbered_rows(reader, lines=lines):
            try:
                good.append((i, *_row(path, i, row)))
            except AssetInputError as exc:
                problems.append(str(exc))
    except OSError as exc:
        raise AssetInputError("file", f"{path}: cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise AssetInputError(
            "file",
            f"{path}: cannot read the file: {not_utf8(exc)}",
        ) from None
    first: dict[date, int] = {}
    days, prices = [], []
    for line, day, price in good:
        if day in first:
            problems.append(
                f"{path}:{line}: {day.isoformat()} appears twice (first on line {first[day]}, "
                "which is kept)"
            )
            continue
        first[day] = line
        days.append(day)
        prices.append(price)
    if not days:
        if problems:
            raise AssetInputError("file", rows_refused(problems, "no row is good"))
        raise AssetInputError("file", f"{path}: no rows after the header")
    return PriceRows(days, prices, problems)
