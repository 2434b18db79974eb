"""The constrained types every edge uses (API requests, alert rules, settings): what reaches
PostgreSQL is what it can hold, refused at the edge with a message naming the bound.

- text: no control characters (PostgreSQL refuses NUL in `text` and `jsonb`; the others only
  garble logs and terminals);
- numbers: finite (JSON's `Infinity`, `NaN` and `1e400`, which parses as infinity, are not
  numbers PostgreSQL's `jsonb` or the solver take) and within the column's range;
- times, periods and steps: within the years the storage holds and the calendar can count.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

from energyhub.errors import CONTROL, CONTROL_CHARACTERS

NO_CONTROL_PATTERN = f"^[^{CONTROL_CHARACTERS}]*$"
"""JSON-schema form of the rule, so that clients and schema-driven tests know it too."""
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""Site, meter and asset ids: what the site file accepts."""

INT4_MAX = 2**31 - 1
"""PostgreSQL `integer` (meter ids, step seconds)."""
INT8_MAX = 2**63 - 1
"""PostgreSQL `bigint` (plan and alert ids)."""
KG_CO2_PER_KWH_MAX = 2.0
"""The most CO₂ a kWh of bought electricity, heat or cooling is taken to carry: lignite alone, the
dirtiest source, emits about 1.2 kg. A factor above it is another unit (grid operators often
publish g/kWh, 1000× the kg) or a typo, and would price every hour it covers that many times
over."""
MAGNITUDE_MAX = 1e9
"""Largest |value| of a power, energy or temperature taken from a client: a gigawatt or a
gigawatt-hour is beyond any site energyhub plans, and far from where double arithmetic over a
horizon of such values loses its meaning."""

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Times are taken within [EARLIEST, LATEST): storage partitions and rollups start at the Unix
epoch, and every date arithmetic (a period's end, the previous period, a time zone's offset) stays
inside the calendar's years 1..9999."""
YEAR_MIN, YEAR_MAX = EARLIEST.year, LATEST.year - 1

STEP_MIN_S = 1
STEP_MAX_S = 7 * 24 * 3600
"""Plan steps: whole seconds (stored as `integer` seconds, > 0), at most a week."""

_SPACE_OFFSET = re.compile(r"^(.*\d) (\d\d(?::?\d\d)?)$")
_DATE_START = re.compile(r"^\d{4}-\d{2}-\d{2}")
TIME_FORM = "must be an RFC 3339 datetime with a UTC offset, e.g. 2026-11-20T00:00:00+08:00"


def no_control(value: str) -> str:
    """The text, or ValueError naming the first control character and where it is."""
    found = CONTROL.search(value)
    if found:
        code = ord(found.group())
        raise ValueError(
            f"must not contain control characters: U+{code:04X} at position {found.start()}"
        )
    return value


def within_years(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must lie between {EARLIEST:%Y} and {LATEST:%Y}, got {value:%Y}")
    return value


def local_instant(naive: datetime, zone: ZoneInfo) -> datetime:
    """A time without an offset, read in `zone`; ValueError when the clocks skip it or repeat it
    (Python reads either silently: a skipped 02:30 in Berlin as 02:30+01:00, which its clocks
    show as 03:30; a repeated one as its first pass)."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise ValueError(
            f"{naive.isoformat()} does not exist in {zone.key} (the clocks skip it): give its "
            "UTC offset"
        )
    raise ValueError(
        f"{naive.isoformat()} occurs twice in {zone.key} (the clocks go back): give its UTC offset"
    )


def plus_from_query(value: Any) -> Any:
    """RFC 3339 text only (not a number of seconds, which pydantic would take); an unescaped `+`
    in a query string arrives as a space: `...00 08:00` means `...00+08:00`."""
    if isinstance(value, bool | int | float):
        raise ValueError(TIME_FORM)
    if isinstance(value, str):
        value = _SPACE_OFFSET.sub(r"\1+\2", value.strip())
        if not _DATE_START.match(value):
            raise ValueError(TIME_FORM)
    return value


def step_seconds(seconds: float) -> int:
    """A plan step as the integer seconds stored; ValueError outside [STEP_MIN_S, STEP_MAX_S] or
    for a fraction of a second."""
    if not STEP_MIN_S <= seconds <= STEP_MAX_S:
        raise ValueError(
            f"the step is {seconds:g} s: it must be {STEP_MIN_S} s to {STEP_MAX_S} s (a week)"
        )
    if seconds != int(seconds):
        raise ValueError(f"the step is {seconds:g} s: it must be whole seconds")
    return int(seconds)


Text = Annotated[
    str,
    AfterValidator(no_control),
    Field(max_length=1000, json_schema_extra={"pattern": NO_CONTROL_PATTERN}),
]
"""Free text stored or compared in SQL (a reason, a name)."""
Name = Annotated[
    str,
    AfterValidator(no_control),
    Field(min_length=1, max_length=200, json_schema_extra={"pattern": NO_CONTROL_PATTERN}),
]
"""A short name: a meter, an asset, an input column."""
SiteId = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
"""A site id (the pattern admits no control character)."""

Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]
"""A finite double (a `double precision` or `jsonb` number); strict: `true` or `"5"` is no
number."""
Measure = Annotated[
    float, Field(allow_inf_nan=False, strict=True, ge=-MAGNITUDE_MAX, le=MAGNITUDE_MAX)
]
"""A finite power, energy, temperature or other quantity within ±MAGNITUDE_MAX."""
PositiveMeasure = Annotated[float, Field(allow_inf_nan=False, strict=True, gt=0, le=MAGNITUDE_MAX)]
NonNegativeMeasure = Annotated[
    float, Field(allow_inf_nan=False, strict=True, ge=0, le=MAGNITUDE_MAX)
]


def _whole_float(value: Any) -> Any:
    """20.0 as 20 (JSON Schema's integers include it); anything else as given."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = Annotated[int, BeforeValidator(_whole_float), Field(strict=True)]
"""An integer in a JSON body: `20` or `20.0`, not `true` or `"20"`."""
Int4Id = Annotated[int, Field(ge=1, le=INT4_MAX)]
Int8Id = Annotated[int, Field(ge=1, le=INT8_MAX)]
Year = Annotated[int, Field(ge=YEAR_MIN, le=YEAR_MAX)]

Time = Annotated[
    AwareDatetime,
    BeforeValidator(plus_from_query),
    AfterValidator(within_years),
    Field(description="RFC 3339 with a UTC offset, e.g. 2026-11-20T00:00:00+08:00"),
]
"""A moment with its UTC offset, within [EARLIEST, LATEST)."""

PERIOD_PATTERN = r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?$"
"""ASCII digits: `\\d` took any script's (`２０２６` was read as 2026 and recorded as its label)."""


def _period_years(value: str) -> str:
    year = int(value[:4])
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise ValueError(f"the year must lie between {YEAR_MIN} and {YEAR_MAX}, got {year}")
    return value


Period = Annotated[
    str,
    Field(pattern=PERIOD_PATTERN, max_length=10),
    AfterValidator(_period_years),
]
"""A reporting period `YYYY`, `YYYY-MM` or `YYYY-MM-DD` of a year in [YEAR_MIN, YEAR_MAX]."""
