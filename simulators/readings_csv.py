"""Meter readings from a CSV file (a BMS or utility export), turned into records for a replay:
history backfilled through the same ingest, checks and rejects as live readings.

    site,meter,ts,value
    b01,main,2026-11-01T00:00:00+08:00,512.5

`site` is a building or park of the site file, `meter` one of its meters, `ts` an RFC 3339 time
with a UTC offset (1970–2199) and `value` a finite number in the meter's own quantity (kW for a
`power_kw` meter, the counter's kWh for `energy_kwh`, % for `soc_pct`). The readings go out as
gateway batches, per site in time order, BATCH_READINGS to a message, each message at the time of
its last reading; the ingest then checks each as it checks any (plausibility, counters, the
future) and keeps what it refuses apart with the reason. A refused row is named (`row 7.value:
expected a finite number, got 'n/a'`) and loses no good row beside it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from energyhub.csv_columns import (
    Lines,
    Unreadable,
    aware_time,
    fieldnames,
    header_problem,
    numbered_rows,
    surplus_problem,
)
from energyhub.errors import not_utf8
from energyhub.sites import SiteFile
from energyhub.userfiles import read_text
from simulators.errors import RecordFileError
from simulators.record import Record

CSV_COLUMNS = ("site", "meter", "ts", "value")
BATCH_READINGS = 1000
"""Readings per published batch: about 60 kB, well inside the ingest's 256 kB message limit
(`ENERGYHUB_INGEST_MAX_PAYLOAD_BYTES`)."""


@dataclass
class ParsedReadings:
    """The records to replay, and every refused row named."""

    records: list[Record] = field(default_factory=list)
    readings: int = 0
    errors: list[str] = field(default_factory=list)


def _value(text: str, where: str, errors: list[str]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        errors.append(f"{where}.value: expected a finite number, got {text!r}")
        return None
    return value


def parse_csv(site: SiteFile, text: str, prefix: str) -> ParsedReadings:
    """Records of the readings in CSV `text` (see the module docstring) for topics under
    `prefix`; rows are named `row N` (1 = the header)."""
    lines = Lines(text.removeprefix("\ufeff"))  # Excel's BOM
    reader = csv.DictReader(lines)
    header = fieldnames(reader, lines)
    if isinstance(header, Unreadable):
        return ParsedReadings(errors=[f"header: {header.problem}"])
    missing = [name for name in CSV_COLUMNS if name not in header]
    if missing:
        return ParsedReadings(errors=[f"header: missing column(s) {', '.join(missing)}"])
    if problem := header_problem(header, CSV_COLUMNS):
        return ParsedReadings(errors=[f"header: {problem}"])
    owners = {owner.id: (park.id, owner) for park, owner in site.metered_sites()}
    parsed = ParsedReadings()
    seen: dict[tuple[str, str, datetime], str] = {}
    batches: dict[tuple[str, str], list[tuple[datetime, str, float]]] = {}
    for n, row in numbered_rows(reader, lines=lines):
        where = f"row {n}"
        if isinstance(row, Unreadable):
            parsed.errors.append(f"{where}: {row.problem}")
            continue
        if extra := surplus_problem(row, len(header)):
            parsed.errors.append(f"{where}: {extra}")
            continue
        errors: list[str] = []
        site_id, meter_id = (str(row.get(name) or "").strip() for name in ("site", "meter"))
        owner = owners.get(site_id)
        if owner is None:
            errors.append(f"{where}.site: {site.not_park_or_building(site_id)}")
        elif meter_id not in {m.id for m in owner[1].meters}:
            known = ", ".join(sorted(m.id for m in owner[1].meters)) or "none"
            errors.append(
                f"{where}.meter: {site_id} has no meter {meter_id!r} (its meters: {known})"
            )
        ts = aware_time(row.get("ts") or "", f"{where}.ts", errors)
        value = _value(str(row.get("value") or ""), where, errors)
        if errors or owner is None or ts is None or value is None:
            parsed.errors += errors
            continue
        first = seen.setdefault((site_id, meter_id, ts), where)
        if first != where:
            parsed.errors.append(
                f"{where}.ts: {site_id}/{meter_id} at {ts.isoformat()} is given already "
                f"({first}); the first is kept"
            )
            continue
        batches.setdefault((owner[0], site_id), []).append((ts, meter_id, value))
    root = prefix.rstrip("/")
    for (park_id, site_id), readings in batches.items():
        readings.sort(key=lambda r: r[0])
        for i in range(0, len(readings), BATCH_READINGS):
            chunk = readings[i : i + BATCH_READINGS]
            payload = orjson.dumps(
                [{"meter": m, "ts": round(ts.timestamp() * 1000), "value": v} for ts, m, v in chunk]
            )
            topic = f"{root}/{park_id}/{site_id}"
            parsed.records.append(Record(chunk[-1][0].timestamp(), topic, payload))
        parsed.readings += len(readings)
    parsed.records.sort(key=lambda r: r.t)
    return parsed


def read_csv(site: SiteFile, path: Path, prefix: str) -> ParsedReadings:
    """`parse_csv` of a file; one that cannot be read is named with why."""
    try:
        text = read_text(path)
    except UnicodeDecodeError as exc:
        raise RecordFileError(f"{path}: cannot read the readings: {not_utf8(exc)}") from None
    except OSError as exc:
        raise RecordFileError(f"{path}: cannot read the readings: {exc.strerror}") from None
    return parse_csv(site, text, prefix)
