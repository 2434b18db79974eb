"""Tenant allocation: a building's energy, emissions and cost split between its tenants.

The rule. Each tenant gets what its own sub-meters in the building measured. What the building
measured beyond that (common areas, shared plant, unleased space, tenants' unmetered loads) is the
remainder, split by floor area: a tenant declared in the building with `floor_area_m2` gets
area ÷ building floor area of it, and the rest stays with the building as its common and unleased
share. If the tenants' areas add up to more than the building's, the remainder is split over
their areas alone. A tenant without a floor area, or one that only has a sub-meter here, gets no
share of the remainder. Tenant lines plus the building's share add up to the building's totals,
column by column, day by day.

The building's figures are those of its own meter (netted in each step), so its export is in the
remainder and split by floor area like the rest; where its own generation supplied the tenants'
sub-meters beyond what it bought, the remainder's electricity is below 0 (docs/carbon.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from energyhub.carbon.ledger import ENERGY, empty_daily
from energyhub.carbon.tree import SiteInfo

NEGATIVE_REMAINDER_KWH = 0.5
"""Below this (kWh over the period) a negative remainder is meter noise, not worth a note."""


@dataclass(frozen=True)
class Share:
    """One line of a building's allocation: a tenant, or the building's common share."""

    site_id: str
    kind: Literal["tenant", "common"]
    floor_area_m2: float | None
    area_share: float
    metered: pd.DataFrame
    allocated: pd.DataFrame

    @property
    def total(self) -> pd.DataFrame:
        return add([self.metered, self.allocated])


def add(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Daily ledgers summed on the union of their days."""
    total = empty_daily()
    for frame in frames:
        total = total.add(frame, fill_value=0.0)
    return total.sort_index()


def _area_shares(
    building: SiteInfo, declared: list[SiteInfo], notes: list[str]
) -> dict[str, float]:
    areas = {e.id: e.floor_area_m2 for e in declared if e.floor_area_m2}
    for tenant in declared:
        if not tenant.floor_area_m2:
            notes.append(
                f"{building.id}: tenant {tenant.id} has no floor_area_m2, so no share of the "
                "building's unmetered remainder"
            )
    leased = sum(areas.values())
    floor = building.floor_area_m2 or 0.0
    if leased > floor:
        notes.append(
            f"{building.id}: tenants' floor areas ({leased:,.0f} m²) exceed the building's "
            f"({floor:,.0f} m²): the remainder is split over the tenants' areas alone"
        )
        floor = leased
    return {tenant_id: area / floor for tenant_id, area in areas.items()}


def allocate(
    building: SiteInfo,
    building_daily: pd.DataFrame,
    tenant_daily: dict[str, pd.DataFrame],
    declared: list[SiteInfo],
) -> tuple[list[Share], list[str]]:
    """Tenant lines and the building's common line; they add up to `building_daily`."""
    notes: list[str] = []
    remainder = add([building_daily, *(-frame for frame in tenant_daily.values())])
    for column in ENERGY:
        if column in ("pv_kwh", "generation_kwh"):
            continue
        short = remainder[column].sum() if len(remainder) else 0.0
        exported = building_daily["exported_kwh"].sum() if len(building_daily) else 0.0
        if short < -NEGATIVE_REMAINDER_KWH and column == "electricity_kwh" and exported > 0:
            notes.append(
                f"{building.id}: tenant sub-meters drew {-short:,.1f} kWh more electricity than "
                f"the building bought: in its steps of net export ({exported:,.1f} kWh exported) "
                "its own generation supplied them, so the remainder split by floor area is "
                "below 0"
            )
        elif short < -NEGATIVE_REMAINDER_KWH:
            notes.append(
                f"{building.id}: tenant sub-meters exceed the building's {column} by "
                f"{-short:,.1f}: the allocated remainder is negative (check the meters)"
            )
    shares = _area_shares(building, declared, notes)
    areas = {e.id: e.floor_area_m2 for e in declared}
    lines = [
        Share(
            tenant_id,
            "tenant",
            areas.get(tenant_id),
            shares.get(tenant_id, 0.0),
            tenant_daily.get(tenant_id, empty_daily()),
            remainder * shares.get(tenant_id, 0.0),
        )
        for tenant_id in sorted(set(tenant_daily) | set(areas))
    ]
    common = 1.0 - sum(shares.values())
    common_area = (building.floor_area_m2 or 0.0) - sum(a or 0.0 for a in areas.values())
    lines.append(
        Share(
            building.id, "common", max(common_area, 0.0), common, empty_daily(), remainder * common
        )
    )
    return lines, notes
