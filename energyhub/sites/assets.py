"""The assets a park or building declares (a discriminated union on `type`)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import (
    Field,
    Strict,
    field_validator,
    model_validator,
)

from energyhub.sites.models import (
    Count,
    Efficiency,
    Fraction,
    Identifier,
    Model,
    NonNegative,
    Number,
    PositiveKw,
)


class CopFromOutdoor(Model):
    """COP as a linear function of outdoor temperature: cop = a + b · outdoor_c."""

    a: Number
    b: Number


class AssetBase(Model):
    id: Identifier
    name: str | None = None


class StorageMixin(Model):
    """SOC fractions are of energy_kwh; soc_final is the SOC at the end of the last step."""

    energy_kwh: PositiveKw
    power_kw: PositiveKw
    eta_charge: Efficiency = 1.0
    eta_discharge: Efficiency = 1.0
    soc_min: Fraction = 0.0
    soc_max: Fraction = 1.0
    soc_initial: Fraction = 0.5
    soc_final: Fraction | None = None

    @model_validator(mode="after")
    def _soc_window(self) -> Self:
        if self.soc_min > self.soc_max:
            raise ValueError(f"soc_min ({self.soc_min}) must be ≤ soc_max ({self.soc_max})")
        for name in ("soc_initial", "soc_final"):
            value = getattr(self, name)
            if value is not None and not self.soc_min <= value <= self.soc_max:
                raise ValueError(
                    f"{name} must lie in [soc_min, soc_max] = [{self.soc_min}, {self.soc_max}], "
                    f"got {value}"
                )
        return self


class PV(AssetBase):
    type: Literal["pv"]
    peak_kw: PositiveKw


class Wind(AssetBase):
    type: Literal["wind"]
    peak_kw: PositiveKw


class Battery(AssetBase, StorageMixin):
    type: Literal["battery"]
    eta_charge: Efficiency = 0.95
    eta_discharge: Efficiency = 0.95
    soc_min: Fraction = 0.1
    soc_max: Fraction = 0.9
    throughput_cost_cny_per_kwh: NonNegative = 0.0


class ThermalStorage(AssetBase, StorageMixin):
    type: Literal["thermal_storage"]
    carrier: Literal["heat", "cooling"]
    loss_per_h: Fraction = 0.0


class _OneCop(AssetBase):
    """A machine whose COP is given once: fixed (`cop`) or from the outdoor temperature."""

    cop: Number | None = None
    cop_from_outdoor: CopFromOutdoor | None = None

    @model_validator(mode="after")
    def _one_cop(self) -> Self:
        if (self.cop is None) == (self.cop_from_outdoor is None):
            raise ValueError("give exactly one of cop or cop_from_outdoor")
        return self


class HeatPump(_OneCop):
    type: Literal["heat_pump"]
    heat_max_kw: PositiveKw
    cop: Annotated[float, Strict(), Field(gt=0, le=10)] | None = None


class ElectricChiller(_OneCop):
    type: Literal["electric_chiller"]
    cooling_max_kw: PositiveKw
    cop: Annotated[float, Strict(), Field(gt=0, le=15)] | None = None


class AbsorptionChiller(AssetBase):
    type: Literal["absorption_chiller"]
    cooling_max_kw: PositiveKw
    cop: Annotated[float, Strict(), Field(gt=0, le=2)] = 0.7


class CHP(AssetBase):
    type: Literal["chp"]
    fuel_max_kw: PositiveKw
    eta_el: Efficiency
    eta_th: Efficiency
    min_load: Fraction = 0.0
    start_cost_cny: NonNegative = 0.0

    @model_validator(mode="after")
    def _energy_conserved(self) -> Self:
        if self.eta_el + self.eta_th > 1:
            raise ValueError(f"eta_el + eta_th must be ≤ 1, got {self.eta_el + self.eta_th:g}")
        return self


class GasBoiler(AssetBase):
    type: Literal["gas_boiler"]
    heat_max_kw: PositiveKw
    eta: Efficiency


class ElectricBoiler(AssetBase):
    type: Literal["electric_boiler"]
    heat_max_kw: PositiveKw
    eta: Efficiency = 0.99


class FlexibleLoad(AssetBase):
    """Electric energy that must be served within a daily window, at any power up to the limit.

    The window is [window_start_h, window_end_h) in local hours; an end before the start crosses
    midnight (22 to 6: from 22:00 to 06:00 the next morning), and that window belongs to the day
    it starts on."""

    type: Literal["flexible_load"]
    power_max_kw: PositiveKw
    energy_kwh: PositiveKw
    window_start_h: Annotated[Count, Field(ge=0, le=23)] = 0
    window_end_h: Annotated[Count, Field(ge=0, le=24)] = 24
    """0 and 24 both mean midnight: the window ends at the end of its day (stored as 24)."""

    @field_validator("window_end_h")
    @classmethod
    def _midnight(cls, hour: int) -> int:
        return 24 if hour == 0 else hour

    @property
    def overnight(self) -> bool:
        """The window crosses midnight: it ends on the local day after it starts."""
        return self.window_end_h < self.window_start_h

    @property
    def window_h(self) -> int:
        """The window's length on a day of 24 hours."""
        return self.window_end_h - self.window_start_h + (24 if self.overnight else 0)

    def inside(self, hours: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """Which local hours of the day (fractional: 22.25 is 22:15) lie in the window."""
        after, before = hours >= self.window_start_h, hours < self.window_end_h
        return np.asarray((after | before) if self.overnight else (after & before))

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.window_end_h == self.window_start_h:
            raise ValueError(
                f"window_end_h ({self.window_end_h}) equals window_start_h "
                f"({self.window_start_h}): a window lasts 1 to 24 hours (a whole day: 0 to 24; "
                "an end before the start crosses midnight)"
            )
        if self.energy_kwh > self.power_max_kw * self.window_h:
            raise ValueError(
                f"energy_kwh {self.energy_kwh:g} cannot be served at {self.power_max_kw:g} kW "
                f"within {self.window_h} h"
            )
        return self


class Electrolyzer(AssetBase):
    type: Literal["electrolyzer"]
    power_max_kw: PositiveKw
    eta: Efficiency = 0.65


class HydrogenStore(AssetBase, StorageMixin):
    type: Literal["hydrogen_store"]


class FuelCell(AssetBase):
    type: Literal["fuel_cell"]
    power_max_kw: PositiveKw
    eta_el: Efficiency = 0.5
    eta_th: Efficiency = 0.3

    @model_validator(mode="after")
    def _energy_conserved(self) -> Self:
        if self.eta_el + self.eta_th > 1:
            raise ValueError(f"eta_el + eta_th must be ≤ 1, got {self.eta_el + self.eta_th:g}")
        return self


Asset = Annotated[
    PV
    | Wind
    | Battery
    | ThermalStorage
    | HeatPump
    | ElectricChiller
    | AbsorptionChiller
    | CHP
    | GasBoiler
    | ElectricBoiler
    | FlexibleLoad
    | Electrolyzer
    | HydrogenStore
    | FuelCell,
    Field(discriminator="type"),
]
ASSET_TYPES = frozenset(
    (
        "pv wind battery thermal_storage heat_pump electric_chiller absorption_chiller chp "
        "gas_boiler electric_boiler flexible_load electrolyzer hydrogen_store fuel_cell"
    ).split()
)
