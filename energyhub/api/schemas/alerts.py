"""Alerts and a site's alert rules as the API returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from energyhub.alerts.rules import AlertRules, Severity


class AlertPublic(BaseModel):
    """One alert: open while `closed_at` is null; values are what opened and closed it."""

    id: int
    site_id: str
    park_id: str
    rule: str = Field(examples=["limit"])
    subject: str = Field(description="The meter or battery, empty for a site-wide rule.")
    severity: Severity
    message: str
    opened_at: datetime
    closed_at: datetime | None
    opening_values: dict[str, Any]
    closing_values: dict[str, Any] | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None


class RulesPublic(BaseModel):
    """A site's rules: as declared (API-edited, else the site file) and as they apply."""

    site_id: str
    source: Literal["api", "site-file"]
    declared: AlertRules
    effective: dict[str, dict[str, Any] | None]
