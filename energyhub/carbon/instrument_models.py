"""The inputs and listings of green certificates and contracts: units and bounds in the fields."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from energyhub.bounds import KG_CO2_PER_KWH_MAX, Name

Text = Name
"""1 to 200 characters, no control character (a NUL, or an escape sequence for a terminal)."""
Day = Annotated[date, Field(ge=date(1990, 1, 1), le=date(2100, 12, 31))]
MAX_SERIAL = 2**62
MAX_CERTIFICATES = 10_000_000
"""A block of more than ten million certificates (10 TWh) is a typo, not a purchase."""


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Input):
    """Where the power was generated: the quality criteria a verifier checks."""

    registry: Text = Field(default="GEC", description="Issuing registry (GEC: 国家绿证).")
    project: Text
    technology: Text = Field(examples=["wind", "solar", "hydro"])
    location: Text = Field(examples=["Inner Mongolia"])
    vintage: int = Field(ge=1990, le=2100, description="Year of generation.")
    reason: Text = Field(description="Why the entry is made (purchase reference, approval).")


class CertificateIn(Source):
    """A block of certificates, one per MWh, serials `serial_first`..`serial_last` inclusive."""

    serial_first: int = Field(ge=0, le=MAX_SERIAL)
    serial_last: int = Field(ge=0, le=MAX_SERIAL)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.serial_last < self.serial_first:
            raise ValueError(
                f"serial_last ({self.serial_last}) is before serial_first ({self.serial_first})"
            )
        if self.serial_last - self.serial_first + 1 > MAX_CERTIFICATES:
            raise ValueError(
                f"serial_last ({self.serial_last}): the block from serial_first "
                f"({self.serial_first}) holds {self.mwh:,} certificates, at most "
                f"{MAX_CERTIFICATES:,}"
            )
        return self

    @property
    def mwh(self) -> int:
        return self.serial_last - self.serial_first + 1


class ContractIn(Source):
    """Green power bought under a contract: MWh delivered in [delivery_start, delivery_end]."""

    mwh: float = Field(gt=0, le=MAX_CERTIFICATES)
    supplier_kg_per_kwh: float = Field(
        ge=0, le=KG_CO2_PER_KWH_MAX, description="The supplier's factor."
    )
    delivery_start: Day
    delivery_end: Day

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.delivery_end < self.delivery_start:
            raise ValueError(
                f"delivery_end ({self.delivery_end}) is before delivery_start "
                f"({self.delivery_start})"
            )
        return self


class RetirementBody(Input):
    """Retire (a certificate range) or claim (contract MWh) for a period; the site comes apart."""

    instrument_id: int = Field(ge=1, le=2**62)
    period: str = Field(max_length=10, description="YYYY, YYYY-MM or YYYY-MM-DD (site time).")
    serial_first: int | None = Field(default=None, ge=0, le=MAX_SERIAL)
    serial_last: int | None = Field(default=None, ge=0, le=MAX_SERIAL)
    mwh: float | None = Field(default=None, gt=0, le=MAX_CERTIFICATES)
    reason: Text


class RetirementIn(RetirementBody):
    """A retirement with the site whose electricity it covers."""

    site_id: str = Field(min_length=1, max_length=64)


Kind = Literal["certificate", "contract"]


class InstrumentPublic(BaseModel):
    """An instrument as listed: its source, size, what is retired of it, and who recorded it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    kind: Kind
    site_id: str
    registry: str
    project: str
    technology: str
    location: str
    vintage: int
    serials: str | None
    mwh: float
    retired_mwh: float
    supplier_kg_per_kwh: float | None
    delivery_start: date | None
    delivery_end: date | None = Field(description="Last delivery day, inclusive.")
    recorded_by: str
    recorded_at: datetime
    reason: str
