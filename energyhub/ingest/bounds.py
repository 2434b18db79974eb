"""What each meter can physically read: plausibility bounds, declared or derived from the site.

A meter's `min`/`max` in the site file replace the derived bounds; otherwise they follow from
what the site declares:
PV and wind meters −1 % to 1.3 × `peak_kw`; an asset's power meter its power limits; an
electricity meter no more than twice what its connection is declared for, either way; a counter
never below zero and never rising faster than that. A side nothing bounds takes the
physical limit of the meter's quantity (`PHYSICAL_LIMITS`). The ingest rejects a reading outside
them (energyhub/ingest/validate.py); `sites check --verbose` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from energyhub.sites import (
    CHP,
    PV,
    Asset,
    Battery,
    Building,
    FuelCell,
    Meter,
    Park,
    SiteFile,
    Wind,
)

PEAK_HEADROOM = 1.3
"""PV and wind read up to 1.3 × peak: cold cells under bright cloud edges beat the rating."""
NIGHT_DRAW = 0.01
"""PV and wind meters may read slightly negative (−1 % of peak): inverters draw at night."""
METER_TOLERANCE = 1.05
"""An asset's meter may read 5 % past the asset's rating: meter class and short overloads."""
CONNECTION_OVERLOAD = 2.0
"""A main meter may read up to twice what its connection is declared for: a site's `import_max_kw`
is what it contracts and plans under, not what the wires can carry, and a transformer carries
twice its rating for minutes (IEC 60076-7 short-time emergency loading). Those overloads are
the readings a demand charge bills and an operator most needs: refusing them would hide them."""

POWER_LIMIT_KW = 1e6
"""No meter of a building or park carries a gigawatt: the largest power stations are a few GW
and a park's connection is tens of MW. Also the fastest a counter with no known connection rises."""

PHYSICAL_LIMITS: dict[str, tuple[float, float]] = {
    "power_kw": (-POWER_LIMIT_KW, POWER_LIMIT_KW),
    "energy_kwh": (0.0, 1e12),  # a counter wraps long before a TWh: a GW for a century is 0.9 TWh
    "temperature_c": (-100.0, 500.0),  # coldest air −89 °C; flue gas and CHP loops under 500 °C
    "humidity_pct": (0.0, 100.0),
    "soc_pct": (0.0, 100.0),
    "occupancy": (0.0, 1e6),  # people (or a fraction of them): never negative, never a million
}
"""What a reading of each quantity can be at all, whatever the site: the bounds of last resort."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """A meter's plausible readings: value in [min_value, max_value], a counter's rise per hour
    at most `max_rise_kw`; `source` says where each came from."""

    min_value: float | None = None
    max_value: float | None = None
    max_rise_kw: float | None = None
    source: str = "none"

    def describe(self, unit: str) -> str:
        parts = []
        if self.min_value is not None or self.max_value is not None:
            lo = "−∞" if self.min_value is None else f"{self.min_value:g}"
            hi = "∞" if self.max_value is None else f"{self.max_value:g}"
            parts.append(f"[{lo}, {hi}] {unit}")
        if self.max_rise_kw is not None:
            parts.append(f"rise ≤ {self.max_rise_kw:g} kWh/h")
        return f"{', '.join(parts) or 'unbounded'} ({self.source})"


def _asset_power_kw(asset: Asset, carrier: str) -> tuple[float, float] | None:
    """The (lowest, highest) kW an asset's meter of this carrier can read, from its ratings."""
    if isinstance(asset, PV | Wind):
        return -NIGHT_DRAW * asset.peak_kw, PEAK_HEADROOM * asset.peak_kw
    if isinstance(asset, Battery):
        return -asset.power_kw * METER_TOLERANCE, asset.power_kw * METER_TOLERANCE
    if isinstance(asset, CHP):
        eta = {"gas": 1.0, "electricity": asset.eta_el, "heat": asset.eta_th}.get(carrier)
        return None if eta is None else (0.0, asset.fuel_max_kw * eta * METER_TOLERANCE)
    if isinstance(asset, FuelCell):
        return 0.0, asset.power_max_kw * METER_TOLERANCE
    for name in ("power_max_kw", "heat_max_kw", "cooling_max_kw", "power_kw"):
        rating = getattr(asset, name, None)
        if isinstance(rating, float | int):
            low = -rating if name == "power_kw" else 0.0  # storage charges and discharges
            return low * METER_TOLERANCE, rating * METER_TOLERANCE
    return None


def _electric_supply(park: Park, owner: Park | Building) -> tuple[float, str]:
    """The power a site's electricity meters are declared for, and how it was found: what its
    connection imports plus what the site generates, all at once; its meters may read up to
    `CONNECTION_OVERLOAD` times that."""
    grid = owner.grid if isinstance(owner, Building) and owner.grid else park.grid
    supply = grid.import_max_kw + sum(a.peak_kw for a in owner.assets if isinstance(a, PV | Wind))
    why = f"{CONNECTION_OVERLOAD:g} × (grid import_max_kw {grid.import_max_kw:g} + on-site PV/wind)"
    return supply, why


def _derived(park: Park, owner: Park | Building, meter: Meter) -> Bounds:
    assets = {asset.id: asset for asset in owner.assets}
    if meter.quantity == "power_kw":
        asset = assets.get(meter.asset) if meter.asset else None
        if asset is not None:
            limits = _asset_power_kw(asset, meter.carrier)
            if limits is not None:
                return Bounds(*limits, source=f"asset {asset.id} ({asset.type})")
        if meter.carrier == "pv":
            peak = sum(a.peak_kw for a in owner.assets if isinstance(a, PV))
            if peak:
                return Bounds(
                    -NIGHT_DRAW * peak, PEAK_HEADROOM * peak, source=f"PV peak_kw {peak:g}"
                )
        if meter.carrier == "electricity" and meter.asset is None:
            supply, why = _electric_supply(park, owner)
            limit = supply * CONNECTION_OVERLOAD
            return Bounds(-limit, limit, source=why)
        return Bounds()
    if meter.quantity == "energy_kwh":
        if meter.carrier == "electricity" and meter.asset is None:
            supply, why = _electric_supply(park, owner)
            return Bounds(0.0, None, supply * CONNECTION_OVERLOAD, source=f"counter; {why}")
        asset = assets.get(meter.asset) if meter.asset else None
        limits = _asset_power_kw(asset, meter.carrier) if asset is not None else None
        if limits is not None and asset is not None:
            return Bounds(0.0, None, limits[1], source=f"counter; asset {asset.id}")
        return Bounds(0.0, None, source="counter")
    if meter.quantity == "soc_pct":
        return Bounds(0.0, 100.0, source="percent")
    if meter.quantity == "humidity_pct":
        return Bounds(0.0, 100.0, source="percent")
    return Bounds()


def with_physical_limits(quantity: str, bounds: Bounds) -> Bounds:
    """`bounds` with each side nothing else bounds (and a counter's rise, unless declared away)
    at the physical limit of `quantity`; the source names the sides it filled."""
    low, high = PHYSICAL_LIMITS.get(quantity, (-POWER_LIMIT_KW, POWER_LIMIT_KW))
    rise = bounds.max_rise_kw
    filled = []
    if bounds.min_value is None:
        filled.append("min")
    if bounds.max_value is None:
        filled.append("max")
    if rise is None and quantity == "energy_kwh" and bounds.source != "site file":
        rise = POWER_LIMIT_KW
        filled.append("rise")
    if not filled:
        return bounds
    if bounds.max_value is not None:
        low = min(low, bounds.max_value)  # a declared max below the physical min still stands
    if bounds.min_value is not None:
        high = max(high, bounds.min_value)
    note = f"physical limit of {quantity}"
    if bounds.source in ("none", ""):
        source = note
    else:
        source = f"{bounds.source}; {'/'.join(filled)}: {note}"
    return Bounds(
        low if bounds.min_value is None else bounds.min_value,
        high if bounds.max_value is None else bounds.max_value,
        rise,
        source,
    )


def meter_bounds(park: Park, owner: Park | Building, meter: Meter) -> Bounds:
    """The effective bounds of one meter: its declared `min`/`max` if it has either (they replace
    the derived bounds, a counter's rise limit too: the site file knows the meter best), else
    the bounds derived from the site; a side still open at the quantity's physical limit."""
    if meter.min_value is None and meter.max_value is None:
        derived = _derived(park, owner, meter)
        if meter.rollover_kwh is not None and derived.max_value is None:
            derived = replace(derived, max_value=meter.rollover_kwh)  # it wraps to zero there
        return with_physical_limits(meter.quantity, derived)
    declared = Bounds(meter.min_value, meter.max_value, None, source="site file")
    return with_physical_limits(meter.quantity, declared)


def site_bounds(site: SiteFile) -> dict[tuple[str, str], Bounds]:
    """(site id, meter id) → effective bounds, for every meter of the site file."""
    return {
        (owner.id, meter.id): meter_bounds(park, owner, meter)
        for park, owner in site.metered_sites()
        for meter in owner.meters
    }


UNITS = {
    "power_kw": "kW",
    "energy_kwh": "kWh",
    "temperature_c": "°C",
    "humidity_pct": "%",
    "soc_pct": "%",
    "occupancy": "",
}
