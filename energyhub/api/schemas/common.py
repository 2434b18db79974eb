"""Types shared by the schemas: ids, timestamps (RFC 3339 with offset) and their checks."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_SPACE_OFFSET = re.compile(r"^(.*\d) (\d\d(?::?\d\d)?)$")


def _plus_from_query(value: Any) -> Any:
    """An unescaped `+` in a query string arrives as a space: `...00 08:00` means `...00+08:00`."""
    if isinstance(value, str):
        return _SPACE_OFFSET.sub(r"\1+\2", value.strip())
    return value


def _within_years(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must lie between {EARLIEST:%Y} and {LATEST:%Y}")
    return value


SiteId = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
Time = Annotated[
    AwareDatetime,
    BeforeValidator(_plus_from_query),
    AfterValidator(_within_years),
    Field(description="RFC 3339 with a UTC offset, e.g. 2026-11-20T00:00:00+08:00"),
]

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON or CSV"}
}
"""OpenAPI: a route that also answers `format=csv`."""
