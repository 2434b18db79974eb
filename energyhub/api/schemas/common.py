"""Types shared by the schemas: the constrained types of energyhub.bounds, and the CSV answer."""

from __future__ import annotations

from typing import Any

from energyhub.bounds import (
    ID_PATTERN,
    Finite,
    Int4Id,
    Int8Id,
    Measure,
    Name,
    Period,
    SiteId,
    Text,
    Time,
    Year,
)

__all__ = [
    "CSV_RESPONSE",
    "ID_PATTERN",
    "Finite",
    "Int4Id",
    "Int8Id",
    "Measure",
    "Name",
    "Period",
    "SiteId",
    "Text",
    "Time",
    "Year",
]

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON or CSV"}
}
"""OpenAPI: a route that also answers `format=csv`."""
