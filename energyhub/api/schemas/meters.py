"""Meter readings: the latest value and raw readings paged with a cursor."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from energyhub.sites import Quantity


class LatestPublic(BaseModel):
    meter_id: int
    quantity: Quantity = Field(description="The unit of `value`.")
    ts: datetime
    value: float
    age_s: float = Field(description="Seconds between `ts` and the answer.")


class ReadingPublic(BaseModel):
    ts: datetime
    value: float


class ReadingsPublic(BaseModel):
    meter_id: int
    quantity: Quantity = Field(description="The unit of every `value`.")
    readings: list[ReadingPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (same start, end) for the next page; null on the last page."
    )
