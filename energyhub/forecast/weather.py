"""Weather forecast input per park: a CSV file or an MQTT message, checked once, then stored.

CSV (header required, one row per park and step; `issued_at` and `source` optional):

    park_id,ts,issued_at,outdoor_c,ghi_w_m2,cloud_cover_pct,source
    sp,2025-07-08T00:00:00+08:00,2025-07-07T18:00:00+08:00,27.5,0,40,cma

MQTT: topic `<prefix>/weather/<park_id>/forecast`, a JSON object
`{"issued_at": "...", "source": "...", "steps": [{"ts": "...", "outdoor_c": 27.5,
"ghi_w_m2": 0, "cloud_cover_pct": 40}, ...]}`.

Each step needs a time with a UTC offset (years 1970–2199) and at least one of the three
values; a value outside its range (irradiance below 0 or above 1500 W/m², cloud cover outside
0–100 %, temperature outside −60…60 °C) is refused with the row, the field and the value named.
Good rows are kept.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from energyhub.bounds import no_control
from energyhub.csv_columns import (
    Lines,
    Unreadable,
    aware_time,
    fieldnames,
    header_problem,
    numbered_rows,
    surplus_problem,
)
from energyhub.forecast.store import WEATHER_COLUMNS

RANGES = {"outdoor_c": (-60.0, 60.0), "ghi_w_m2": (0.0, 1500.0), "cloud_cover_pct": (0.0, 100.0)}
"""Plausible bounds of each value; outside them a row is refused, not clipped."""
CSV_COLUMNS = ("park_id", "ts", "issued_at", *WEATHER_COLUMNS, "source")
TOPIC_LEVEL = "weather"
SOURCE_MAX_CHARS = 200
MAX_STEPS = 10_000
"""Steps per message or file and park: two weeks at 5 min is 4,032."""


@dataclass
class WeatherIssue:
    """Forecast steps of one park as issued: a frame (UTC ts × WEATHER_COLUMNS), the source."""

    park_id: str
    issued_at: datetime
    source: str
    frame: pd.DataFrame


@dataclass
class ParsedWeather:
    issues: list[WeatherIssue] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    file_problem: str | None = None
    """Why a file holds no row to read (its header, or nothing after it): nothing is stored."""

    @property
    def steps(self) -> int:
        return sum(len(issue.frame) for issue in self.issues)


def _source(raw: object, where: str, errors: list[str]) -> str | None:
    """Who made the forecast: stored as text, so no control character (PostgreSQL refuses NUL,
    which lost the whole file or message) and at most SOURCE_MAX_CHARS. A JSON step's own
    `source` that is not a string was stored as Python's repr of it (`{'a': 1}`)."""
    if not isinstance(raw, str):
        errors.append(f"{where}.source: expected a string, got {raw!r:.80}")
        return None
    text = raw
    if len(text) > SOURCE_MAX_CHARS:
        errors.append(f"{where}.source: at most {SOURCE_MAX_CHARS} characters, got {len(text)}")
        return None
    try:
        return no_control(text)
    except ValueError as exc:
        errors.append(f"{where}.source: {exc}, got {text!r}")
        return None


def _value(raw: object, where: str, name: str, errors: list[str]) -> float | None:
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if isinstance(raw, bool):
        errors.append(f"{where}.{name}: expected a number, got {raw!r}")
        return None
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        errors.append(f"{where}.{name}: expected a number, got {raw!r}")
        return None
    low, high = RANGES[name]
    if not math.isfinite(value) or not low <= value <= high:
        errors.append(f"{where}.{name}: must be within {low:g}…{high:g}, got {raw!r}")
        return None
    return value


def parse_records(
    records: Iterable[tuple[str, Mapping[str, object]]],
    *,
    parks: set[str],
    issued_at: datetime,
    source: str,
) -> ParsedWeather:
    """(where, record) pairs → issues by (park, issued_at, source); every bad record named."""
    parsed = ParsedWeather()
    rows: dict[tuple[str, datetime, str], list[dict[str, object]]] = {}
    seen: dict[tuple[str, datetime, str, datetime], str] = {}
    """Where each step of an issue was given: a second one is refused, not silently kept."""
    for where, record in records:
        errors: list[str] = []
        park = str(record.get("park_id", "")).strip()
        if park not in parks:
            known = ", ".join(sorted(parks))
            errors.append(f"{where}.park_id: no park {park!r} in the site file (parks: {known})")
        ts = aware_time(record.get("ts"), f"{where}.ts", errors)
        issued = record.get("issued_at")
        issue_time = (
            issued_at if issued in (None, "") else aware_time(issued, f"{where}.issued_at", errors)
        )
        values = {name: _value(record.get(name), where, name, errors) for name in WEATHER_COLUMNS}
        origin = _source(record.get("source") or source, where, errors)
        if not errors and all(v is None for v in values.values()):
            errors.append(f"{where}: give at least one of {', '.join(WEATHER_COLUMNS)}")
        if errors or ts is None or issue_time is None or origin is None:
            parsed.errors += errors
            continue
        first = seen.setdefault((park, issue_time, origin, ts), where)
        if first != where:
            parsed.errors.append(
                f"{where}.ts: {ts.isoformat()} of park {park!r} is given already ({first}); the "
                "first is kept"
            )
            continue
        rows.setdefault((park, issue_time, origin), []).append({"ts": ts, **values})
    for (park, issue_time, origin), steps in rows.items():
        if len(steps) > MAX_STEPS:
            parsed.errors.append(f"{park}: {len(steps)} steps in one issue (at most {MAX_STEPS})")
            continue
        frame = pd.DataFrame(steps)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame = frame.groupby("ts").last().reindex(columns=list(WEATHER_COLUMNS)).astype(float)
        parsed.issues.append(WeatherIssue(park, issue_time, origin, frame))
    return parsed


def parse_csv(text: str, *, parks: set[str], issued_at: datetime, source: str) -> ParsedWeather:
    """A weather forecast CSV (see the module docstring); rows are named `row N` (1 = header)."""
    lines = Lines(text.removeprefix("\ufeff"))  # Excel's BOM
    reader = csv.DictReader(lines)
    header = fieldnames(reader, lines)
    if isinstance(header, Unreadable):
        return ParsedWeather(file_problem=f"header: {header.problem}")
    missing = {"park_id", "ts"} - set(header)
    if missing:
        return ParsedWeather(
            file_problem=f"header: missing column(s) {', '.join(sorted(missing))}, got "
            f"{','.join(header)[:120]!r}"
        )
    problem = header_problem(header, CSV_COLUMNS)
    if problem:
        return ParsedWeather(file_problem=f"header: {problem}")
    surplus: list[str] = []
    records = []
    for n, row in numbered_rows(reader, lines=lines):
        if isinstance(row, Unreadable):
            surplus.append(f"row {n}: {row.problem}")
        elif extra := surplus_problem(row, len(header)):
            surplus.append(f"row {n}: {extra}")
        else:
            records.append((f"row {n}", row))
    if not records and not surplus:
        return ParsedWeather(file_problem="no rows after the header")
    parsed = parse_records(records, parks=parks, issued_at=issued_at, source=source)
    parsed.errors = surplus + parsed.errors
    return parsed


def parse_message(
    topic: str, payload: object, *, prefix: str, parks: set[str], received_at: datetime
) -> ParsedWeather:
    """An MQTT weather forecast message (see the module docstring)."""
    levels = topic.split("/")
    if (
        len(levels) != 4
        or levels[0] != prefix
        or levels[1] != TOPIC_LEVEL
        or levels[3] != ("forecast")
    ):
        return ParsedWeather(errors=[f"topic: expected {prefix}/weather/<park>/forecast, got "
                                     f"{topic!r}"])  # fmt: skip
    if not isinstance(payload, dict) or not isinstance(payload.get("steps"), list):
        return ParsedWeather(errors=[f"{topic}: expected a JSON object with a `steps` list"])
    park = levels[2]
    raw_source = payload.get("source")
    if raw_source is not None and not isinstance(raw_source, str):
        return ParsedWeather(errors=[f"{topic}.source: expected a string, got {raw_source!r}"])
    if not payload["steps"]:
        return ParsedWeather(errors=[f"{topic}.steps: empty, no forecast step to store"])
    source = raw_source or "mqtt"
    issued = payload.get("issued_at")
    issued_at = received_at
    if issued not in (None, ""):
        errors: list[str] = []
        parsed_time = aware_time(issued, f"{topic}.issued_at", errors)
        if parsed_time is None:
            return ParsedWeather(errors=errors)
        issued_at = parsed_time
    steps = payload["steps"]
    bad = [
        f"{topic}.steps[{i}]: expected an object"
        for i, s in enumerate(steps)
        if not isinstance(s, dict)
    ]
    quoted = {  # JSON carries numbers as numbers: "5" is a string (a CSV cell is always text)
        i: [f"{topic}.steps[{i}].{name}: expected a JSON number, got {step[name]!r}"
            for name in WEATHER_COLUMNS if isinstance(step.get(name), str)]
        for i, step in enumerate(steps)
        if isinstance(step, dict)
    }  # fmt: skip
    bad += [error for errors in quoted.values() for error in errors]
    records = (
        (f"{topic}.steps[{i}]", {**step, "park_id": park})
        for i, step in enumerate(steps)
        if isinstance(step, dict) and not quoted[i]
    )
    parsed = parse_records(records, parks=parks, issued_at=issued_at, source=source)
    parsed.errors = bad + parsed.errors
    return parsed
