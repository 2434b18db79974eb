"""CSV files read by column name: `csv.DictReader` keeps the later of two columns of one name, sets
a row's cells beyond the header aside (under the key None) and reads no column it is not asked
for, so a column given twice, a row of more cells than the header (`2026-12-01,1,5`: a decimal
comma) or a misspelt column would store a value its writer did not mean, or drop one unseen.

The carbon price and grid intensity series and the weather forecast files refuse all three by
this rule: `header_problem` for the header, `surplus_problem` for each row; `energyhub plan
--inputs` (read by pandas) refuses the rows `first_long_row` finds.

The csv module raises `csv.Error` for a cell over its `field_size_limit` (131,072 characters),
mid-file, and a quote never closed reads every line after it into one cell: every reader feeds
the csv module `Lines` and takes the header and rows through `fieldnames` and `numbered_rows`,
which name such a row and read on from the line after it. A refused row loses no good one beside
it: the readers store the rest and name the refused rows in one message (`rows_refused`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from energyhub.bounds import within_years

Row = TypeVar("Row")
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
"""A physical line as the csv module ends one (\r\n, \r or \n; not str.splitlines' others)."""
OPEN_QUOTE = (
    "a quote opened in this row is never closed (no cell of this file holds a line break): "
    "the row is not read, the rows after it are"
)


class Lines:
    """A CSV text's lines for the csv module, one row each: no cell of the files read here
    holds a line break, so a second line asked for within one row (a quote never closed) is
    refused - that row ends at its own line - and the next row starts at the line after it.
    Blank lines (no row) are skipped."""

    def __init__(self, text: str) -> None:
        self._lines: Iterator[str] = iter(LINE.findall(text))
        self._in_row = False
        self.spanned = False
        """Whether the row just read asked for a line past its own."""

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        if self._in_row:
            self.spanned = True
            raise StopIteration  # the csv module ends the row here; next row, next line
        line = next(self._lines)
        while not line.strip("\r\n"):
            line = next(self._lines)
        self._in_row = True
        return line

    def next_row(self) -> None:
        """Called before each row is read."""
        self._in_row = False
        self.spanned = False


@dataclass(frozen=True)
class Unreadable:
    """A header or row the csv module refused (`csv.Error`), and why, in the reader's words."""

    problem: str


def _unreadable(exc: csv.Error) -> Unreadable:
    if "field limit" in str(exc):
        return Unreadable(
            f"not readable as CSV: a cell of more than {csv.field_size_limit():,} characters "
            "(or a quote that is never closed)"
        )
    return Unreadable(f"not readable as CSV: {exc}")


def fieldnames(reader: csv.DictReader[str], lines: Lines) -> list[str] | Unreadable:
    """The header's names (none for an empty file), or why the csv module could not read it;
    `lines` is what `reader` reads."""
    lines.next_row()
    try:
        names = list(reader.fieldnames or [])
    except csv.Error as exc:
        return _unreadable(exc)
    return Unreadable(OPEN_QUOTE) if lines.spanned else names


def numbered_rows(
    reader: Iterator[Row], start: int = 2, lines: Lines | None = None
) -> Iterator[tuple[int, Row | Unreadable]]:
    """Each row with its number (`start` for the first), or why it could not be read (the csv
    module's error; with `lines`, what `reader` reads, a quote never closed); the rows after an
    unreadable one are still read."""
    number = start
    while True:
        if lines is not None:
            lines.next_row()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, _unreadable(exc)
        else:
            yield number, Unreadable(OPEN_QUOTE) if lines and lines.spanned else row
        number += 1


def header_problem(names: Sequence[str], known: Collection[str]) -> str | None:
    """What is wrong with a header beyond a missing column (each reader names those its own way):
    a column given twice, or one the file's format does not have."""
    for i, name in enumerate(names):
        if name in names[:i]:
            return (
                f"the column {name!r} is given twice (columns {names.index(name) + 1} and "
                f"{i + 1}); a reader would keep only the later"
            )
    unknown = [name for name in names if name not in known]
    if unknown:
        return (
            f"unknown column {unknown[0]!r} (the columns are {', '.join(known)}): a misspelt "
            "column's values would be dropped unseen"
        )
    return None


def surplus_problem(row: Mapping[str | None, object], columns: int) -> str | None:
    """A row with more cells than the header's `columns` (csv.DictReader puts them under None);
    empty cells past the end (`60,,` from a spreadsheet) hold nothing and are no problem."""
    extra = row.get(None)
    if not isinstance(extra, list) or not any(str(cell).strip() for cell in extra):
        return None
    return _surplus(extra, columns)


def _surplus(extra: Sequence[object], columns: int) -> str:
    hint = "; a decimal comma? write 1.5, not 1,5" if str(extra[0]).strip()[:1].isdigit() else ""
    return (
        f"{columns + len(extra)} cells under a header of {columns} columns (beyond it: "
        f"{', '.join(repr(cell) for cell in extra)}){hint}"
    )


def first_long_row(text: str) -> tuple[int, str] | None:
    """The first row (1 = the first after the header, 0 the header) of CSV `text` with more
    cells than its header, even empty ones, or that the csv module cannot read, and what is wrong
    with it: pandas takes a file whose first row has one cell more as indexed by its first
    column, and reads every column one to the right."""
    rows = numbered_rows(csv.reader(io.StringIO(text)), start=0)
    _, header = next(rows, (0, []))
    if isinstance(header, Unreadable):
        return 0, header.problem
    for number, cells in rows:
        if isinstance(cells, Unreadable):
            return number, cells.problem
        if len(cells) > len(header):
            return number, _surplus(cells[len(header) :], len(header))
    return None


def aware_time(text: object, field: str, errors: list[str]) -> datetime | None:
    """A cell's RFC 3339 time with its UTC offset, within the years stored times take; else None
    and the problem named under `field` (`row 7.ts`) in `errors`."""
    try:
        value = datetime.fromisoformat(str(text).strip())
    except ValueError:
        errors.append(f"{field}: expected an RFC 3339 time with a UTC offset, got {text!r}")
        return None
    if value.tzinfo is None:
        errors.append(f"{field}: give a UTC offset, got {text!r}")
        return None
    try:
        return within_years(value)
    except (ValueError, OverflowError) as exc:
        errors.append(f"{field}: {exc}")
        return None


SHOWN_PROBLEMS = 20
"""Refused rows named in full; the rest are counted."""


def rows_refused(problems: list[str], outcome: str) -> str:
    """One message for a file's refused rows: the count and what came of the rest, the first
    SHOWN_PROBLEMS named."""
    shown = problems[:SHOWN_PROBLEMS]
    more = len(problems) - len(shown)
    return (
        f"{len(problems)} row problem(s), those rows not stored ({outcome}):\n"
        + "\n".join(shown)
        + (f"\n... and {more} more" if more else "")
    )
