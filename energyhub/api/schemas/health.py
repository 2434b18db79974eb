"""Health: database, broker and ingest lag."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded", "down"] = Field(
        description="down: no database; degraded: broker unreachable, no readings yet, or a "
        "field device (Modbus gateway, Sparkplug node) not answering."
    )
    database_reachable: bool
    database_latency_ms: float | None
    broker_configured: bool
    broker_reachable: bool | None = Field(description="TCP connect to the broker; null if unset.")
    newest_reading_at: datetime | None
    ingest_lag_s: float | None = Field(description="Now minus the newest stored reading's time.")
    field_devices_offline: list[str] = Field(
        default_factory=list,
        description="Field devices that do not answer now, as `<kind> <id>` (`energyhub devices`).",
    )
