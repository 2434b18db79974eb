"""Request limits: longest range, most rows per response, one value per single-valued query
parameter; each a 422 saying what to change."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from energyhub.api.errors import bad_input
from energyhub.config import Settings


def _span(delta: timedelta) -> str:
    hours = delta / timedelta(hours=1)
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} h"


def window(
    start: datetime | None, end: datetime | None, step: timedelta | None, settings: Settings
) -> tuple[datetime, datetime]:
    """[start, end) with defaults (24 h: up to now, or from start), checked against the limits."""
    if end is None:
        end = datetime.now(UTC) if start is None else start + timedelta(days=1)
    if start is None:
        start = end - timedelta(days=1)
    if end <= start:
        raise bad_input(
            "query", "end", f"must be after start ({start.isoformat()}), got {end.isoformat()}"
        )
    longest = timedelta(days=settings.api_max_range_days)
    if end - start > longest:
        raise bad_input(
            "query",
            "end",
            f"start..end spans {_span(end - start)}, more than the limit of {_span(longest)} "
            "(ENERGYHUB_API_MAX_RANGE_DAYS): ask for consecutive windows of at most that length",
        )
    if step is None:
        return start, end
    rows = math.ceil((end - start) / step)
    if rows > settings.api_max_points:
        page = step * settings.api_max_points
        raise bad_input(
            "query",
            "step",
            f"start..end at this step makes {rows} rows, more than the limit of "
            f"{settings.api_max_points} per response (ENERGYHUB_API_MAX_POINTS): use a larger "
            f"step, or ask for consecutive windows of at most {_span(page)} each",
        )
    return start, end


async def one_value_each(request: Request) -> None:
    """A query parameter an operation takes one value of, given more than once, is a 422 naming
    it (the framework would silently keep one of the values)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or len(request.query_params.multi_items()) < 2:
        return
    for name in _single_valued(request.app, route.path, request.method):
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise bad_input(
                "query", name, f"given {len(values)} times ({', '.join(values)}); give it once"
            )


def _single_valued(app: FastAPI, path: str, method: str) -> list[str]:
    """The operation's query parameters that take one value, from its OpenAPI description."""
    cache: dict[tuple[str, str], list[str]] = app.state.__dict__.setdefault("single_valued", {})
    key = (path, method.lower())
    if key not in cache:
        operation = app.openapi().get("paths", {}).get(path, {}).get(key[1], {})
        cache[key] = [
            p["name"]
            for p in operation.get("parameters", [])
            if p.get("in") == "query" and not _takes_many(p.get("schema", {}))
        ]
    return cache[key]


def _takes_many(schema: dict[str, Any]) -> bool:
    alternatives = [*schema.get("anyOf", []), *schema.get("oneOf", [])]
    return schema.get("type") == "array" or any(_takes_many(s) for s in alternatives)
