"""Grafana's interpolation of PostgreSQL panel SQL, so that the SQL can run here without Grafana.

Two passes, as in Grafana: the frontend replaces template variables and `$__interval` /
`$__interval_ms` (public/app/features/templating/template_srv.ts with the SQL datasources'
`interpolateVariable`: a multi-value or include-all variable becomes `'a','b'`, any other value is
inserted raw with `'` doubled); the backend then expands `$__macro(args)` as
pkg/tsdb/grafana-postgresql-datasource/macros.go does, with or without the TimescaleDB option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
"""Grafana's variableRegex (public/app/features/variables/utils.ts)."""
MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
"""macros.go's sExpr."""
INTERVAL = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Chosen:
    """A template variable's selected values and whether Grafana quotes them."""

    values: tuple[str, ...]
    quoted: bool


def interval_seconds(text: str) -> float:
    """gtime.ParseInterval for the units Grafana's auto interval produces."""
    match = INTERVAL.match(text.strip("'"))
    if not match:
        raise ValueError(f"error parsing interval {text}")
    return int(match[1]) * UNITS[match[2]]


def rfc3339_nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano of a UTC time: fraction without trailing zeros, `Z`."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def _go_float(value: float) -> str:
    """Go's %v of a float64 for the values used here (whole numbers below 1e21)."""
    if value != int(value) or abs(value) >= 1e21:
        raise ValueError(f"cannot format {value} as Go's %v would")
    return str(int(value))


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def interpolate_variables(sql: str, chosen: dict[str, Chosen], interval: str) -> str:
    """The frontend pass: template variables and the interval; unknown names stay as they are."""
    builtins = {
        "__interval": interval,
        "__interval_ms": str(round(interval_seconds(interval) * 1000)),
    }

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[4]
        if name in builtins:
            return builtins[name]
        if name not in chosen:
            return match[0]
        variable = chosen[name]
        if variable.quoted:
            return ",".join(_quote(v) for v in variable.values)
        (value,) = variable.values
        return value.replace("'", "''")

    return VARIABLE.sub(replace, sql)


def _macro(name: str, args: list[str], time_range: TimeRange, timescaledb: bool) -> str:
    start, end = rfc3339_nano(time_range.start), rfc3339_nano(time_range.end)
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{start}' AND '{end}'"
    if name == "__timeFrom":
        return f"'{start}'"
    if name == "__timeTo":
        return f"'{end}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) < 2:
            raise ValueError(f"macro {name} needs time column and interval and optional fill value")
        seconds = interval_seconds(args[1])
        if timescaledb:
            group = f"time_bucket('{seconds:.3f}s',{args[0]})"
        else:
            group = (
                f"floor(extract(epoch from {args[0]})/{_go_float(seconds)})*{_go_float(seconds)}"
            )
        return group + (' AS "time"' if name == "__timeGroupAlias" else "")
    raise ValueError(f"unknown macro {name!r}")


def expand_macros(sql: str, time_range: TimeRange, timescaledb: bool) -> str:
    """The backend pass (macros.go's Interpolate), including its pre-5.3 `$__timeGroup,` rule."""

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        end = sql.find(match[0]) + len(match[0])
        if name == "__timeGroup" and end < len(sql) and sql[end] == ",":
            name = "__timeGroupAlias"
        args = [arg.strip() for arg in match[2].split(",")]
        return _macro(name, args, time_range, timescaledb)

    return MACRO.sub(replace, sql)


def expand(
    sql: str,
    chosen: dict[str, Chosen],
    time_range: TimeRange,
    interval: str,
    timescaledb: bool,
) -> str:
    """Panel SQL as Grafana would send it to PostgreSQL."""
    return expand_macros(interpolate_variables(sql, chosen, interval), time_range, timescaledb)
