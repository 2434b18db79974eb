"""Sites, their meters and assets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from energyhub.sites import Carrier, Quantity, SiteKind


class SitePublic(BaseModel):
    """One site with its own settings (grid, gas, carbon, floor area...) and its children's ids."""

    id: str = Field(examples=["b01"])
    kind: SiteKind
    parent_id: str | None = Field(examples=["expo"])
    name: str | None
    attributes: dict[str, Any] = Field(
        description="The site file's keys for this site, without children, meters and assets.",
        examples=[{"class": "office-A", "floor_area_m2": 60000, "plan_approval": None}],
    )
    children: list[str]


class SiteNodePublic(BaseModel):
    """A node of the site tree, with its children."""

    id: str
    kind: SiteKind
    name: str | None
    children: list[SiteNodePublic]


class MeterPublic(BaseModel):
    """A meter or sensor; `quantity` is the unit of its readings."""

    id: int = Field(examples=[17])
    site_id: str = Field(examples=["b01"])
    name: str = Field(examples=["main"])
    carrier: Carrier
    quantity: Quantity
    parent_meter_id: int | None = Field(description="The meter this sub-meter is part of.")
    asset_id: str | None
    rollover_kwh: float | None


class AssetPublic(BaseModel):
    """An asset as the site file declares it (units in every key)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(examples=["b01-bess"])
    type: str = Field(examples=["battery"])
