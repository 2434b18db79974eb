"""A building's demand histories from its meters: what the plan must serve, not what the grid saw.

A building's electricity meter measures its net draw: the load, plus what its battery charged and
its heat pumps and chillers drew, minus what its PV and CHP produced. The optimizer dispatches
those assets itself, so their share is taken back out: metered assets by their meter; a battery
without a power meter by its SOC changes; a heat pump, chiller or electric boiler without a meter
by the thermal demand it serves over its COP. Whatever cannot be separated stays in the load and
the notes say so. Heat and cooling demand are the building's heat and cooling meters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from energyhub.forecast.profile import ForecastError, ForecastOptions, History, clean_history
from energyhub.optimize.assets import keep_per_step
from energyhub.scheduler.telemetry import StoredMeter, Telemetry
from energyhub.sites import (
    CHP,
    PV,
    AbsorptionChiller,
    Asset,
    Battery,
    Building,
    ElectricBoiler,
    ElectricChiller,
    Electrolyzer,
    FlexibleLoad,
    FuelCell,
    GasBoiler,
    HeatPump,
    HydrogenStore,
    Park,
    ThermalStorage,
    Wind,
)

GENERATORS = (PV, Wind, CHP, FuelCell)
DRAWS = (Battery, HeatPump, ElectricChiller, ElectricBoiler, FlexibleLoad, Electrolyzer)
COP_OUTDOOR_DEFAULT_C = 15.0
"""Outdoor temperature assumed for a `cop_from_outdoor` estimate where none was measured."""


@dataclass
class DemandHistory:
    """A demand series ready to forecast (NaN = left out), the meters it came from, notes."""

    history: History
    notes: list[str] = field(default_factory=list)


@dataclass
class _Parts:
    """Signed cleaned series that add up to a demand, and what was done to get them."""

    column: str
    now: pd.Timestamp
    options: ForecastOptions
    terms: list[tuple[float, pd.Series, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add_meter(self, sign: float, history: History) -> pd.Series:
        series, notes = clean_history(history, self.column, self.now, self.options)
        self.terms.append((sign, series, history.meter))
        self.notes += notes
        return series

    def result(self) -> DemandHistory:
        frame = pd.concat([sign * series for sign, series, _ in self.terms], axis=1)
        total = frame.sum(axis=1, skipna=False)
        label = " ".join(
            f"{'+' if sign > 0 else '−'} {name}" for sign, _, name in self.terms
        ).removeprefix("+ ")
        return DemandHistory(History(total.rename(self.column), label), self.notes)


def asset_meter(
    meters: list[StoredMeter], asset_id: str, carriers: tuple[str, ...]
) -> StoredMeter | None:
    """The power or energy meter of an asset for one of the carriers, if the site file has one."""
    return next(
        (
            m
            for m in meters
            if m.asset_id == asset_id
            and m.carrier in carriers
            and m.quantity != "soc_pct"
            and m.quantity in ("power_kw", "energy_kwh")
        ),
        None,
    )


def soc_meter(meters: list[StoredMeter], asset_id: str) -> StoredMeter | None:
    return next((m for m in meters if m.asset_id == asset_id and m.quantity == "soc_pct"), None)


def pv_meter(meters: list[StoredMeter], building: Building, asset: PV | Wind) -> StoredMeter | None:
    """The asset's own meter; or the building's one `pv` meter when it has one PV asset."""
    carriers = ("pv",) if isinstance(asset, PV) else ("electricity",)
    own = asset_meter(meters, asset.id, carriers)
    if own is not None or not isinstance(asset, PV):
        return own
    loose = [m for m in meters if m.carrier == "pv" and m.asset_id is None]
    single = sum(isinstance(a, PV) for a in building.assets) == 1
    return loose[0] if single and len(loose) == 1 else None


def thermal_history(
    carrier: str,
    building: Building,
    meters: list[StoredMeter],
    telemetry: Telemetry,
    now: pd.Timestamp,
    options: ForecastOptions,
) -> DemandHistory | None:
    """Heat or cooling demand: the building's top-level meters of that carrier; None without."""
    found = [m for m in meters if m.carrier == carrier and m.measures_load]
    if not found:
        return None
    parts = _Parts(f"{building.id}:{carrier}_kw", now, options)
    for meter in found:
        parts.add_meter(1.0, telemetry.history(meter))
    return parts.result()


def thermal_capacity_kw(assets: Iterable[Asset], carrier: Literal["heat", "cooling"]) -> float:
    """Most heat or cooling these assets can make at once (storage left out)."""
    total = 0.0
    for a in assets:
        if carrier == "heat" and isinstance(a, HeatPump | GasBoiler | ElectricBoiler):
            total += a.heat_max_kw
        elif carrier == "heat" and isinstance(a, CHP):
            total += a.fuel_max_kw * a.eta_th
        elif carrier == "heat" and isinstance(a, FuelCell):
            total += a.power_max_kw / a.eta_el * a.eta_th
        elif carrier == "cooling" and isinstance(a, ElectricChiller | AbsorptionChiller):
            total += a.cooling_max_kw
    return total


def _storage_power_from_soc(
    soc_pct: pd.Series, store: Battery | ThermalStorage | HydrogenStore
) -> pd.Series:
    """Charge (+) or discharge (−) power on the store's carrier side from SOC changes between
    steps, a heat or cold store's standing loss taken out."""
    step_h = pd.Timedelta(soc_pct.index[1] - soc_pct.index[0]).total_seconds() / 3600
    kwh = soc_pct / 100.0 * store.energy_kwh
    loss_per_h = store.loss_per_h if isinstance(store, ThermalStorage) else 0.0
    delta_kw = (kwh - keep_per_step(loss_per_h, step_h) * kwh.shift(1)) / step_h
    return delta_kw.where(delta_kw <= 0, delta_kw / store.eta_charge).where(
        delta_kw > 0, delta_kw * store.eta_discharge
    )


def _estimated_draw(
    asset: HeatPump | ElectricChiller | ElectricBoiler,
    demand: pd.Series,
    outdoor_c: pd.Series | None,
) -> tuple[pd.Series, pd.Series]:
    """A converter without a meter: (electricity, thermal output) serving what it can of demand."""
    limit = asset.cooling_max_kw if isinstance(asset, ElectricChiller) else asset.heat_max_kw
    served = demand.clip(lower=0.0, upper=limit)
    if isinstance(asset, ElectricBoiler):
        return served / asset.eta, served
    if asset.cop is not None:
        return served / asset.cop, served
    assert asset.cop_from_outdoor is not None  # noqa: S101 - the site model requires one of them
    temps = pd.Series(COP_OUTDOOR_DEFAULT_C, index=demand.index)
    if outdoor_c is not None:
        temps = outdoor_c.reindex(demand.index).fillna(COP_OUTDOOR_DEFAULT_C)
    cop = (asset.cop_from_outdoor.a + asset.cop_from_outdoor.b * temps).clip(lower=1.0)
    return served / cop, served


def _converter(
    parts: _Parts,
    asset: Asset,
    thermal: dict[str, pd.Series],
    outdoor_c: pd.Series | None,
    telemetry: Telemetry,
) -> None:
    """Take an unmetered converter's estimated draw out; its output leaves less for the next."""
    carrier = "cooling" if isinstance(asset, ElectricChiller) else "heat"
    if isinstance(asset, HeatPump | ElectricChiller | ElectricBoiler) and carrier in thermal:
        draw, served = _estimated_draw(asset, thermal[carrier], outdoor_c)
        thermal[carrier] = thermal[carrier] - served
        parts.terms.append((-1.0, draw, f"{asset.id} (estimated)"))
        parts.notes.append(
            f"{asset.id}: no electricity meter; its draw is estimated as the {carrier} demand it "
            "can serve over its COP (or efficiency) and taken out of the load"
        )
    elif isinstance(asset, FlexibleLoad):
        parts.terms.append((-1.0, flexible_draw(asset, telemetry), f"{asset.id} (assumed)"))
        parts.notes.append(
            f"{asset.id}: no electricity meter; it is taken to have drawn the setpoints sent to "
            "it, and energy_kwh evenly over its daily window where none was sent, taken out of "
            "the load (the plan schedules it anew)"
        )
    else:
        parts.notes.append(
            f"{asset.id}: no electricity meter; what it drew stays inside {parts.column}"
        )


def flexible_draw(asset: FlexibleLoad, telemetry: Telemetry) -> pd.Series:
    """The setpoint sent for a step (the device follows it), else its own rule: energy_kwh evenly
    over the window."""
    index = telemetry.index
    local = index.tz_convert(telemetry.tz)
    hours = np.asarray(local.hour + local.minute / 60.0)
    inside = asset.inside(hours)
    power = asset.energy_kwh / asset.window_h
    sent = telemetry.sent_kw(asset.id).clip(lower=0.0, upper=asset.power_max_kw)
    return sent.fillna(pd.Series(np.where(inside, power, 0.0), index=index))


def electricity_mains(meters: list[StoredMeter]) -> list[StoredMeter]:
    """The building's electricity meters that measure its whole draw (no asset, no sub-meter)."""
    return [m for m in meters if m.carrier == "electricity" and m.measures_load]


def electricity_history(
    building: Building,
    meters: list[StoredMeter],
    telemetry: Telemetry,
    now: pd.Timestamp,
    options: ForecastOptions,
    thermal: dict[str, pd.Series],
    outdoor_c: pd.Series | None,
    unplanned: set[str],
) -> tuple[DemandHistory, set[str]]:
    """The building's electricity demand; and the renewables whose output could not be separated.

    `unplanned` assets (whose thermal demand is not metered) stay inside the load, metered or not.
    """
    column = f"{building.id}:electricity_kw"
    mains = electricity_mains(meters)
    if not mains:
        raise ForecastError(
            f"{building.id}: no electricity meter (carrier electricity, without asset: or "
            f"submeter_of:): cannot forecast {column}"
        )
    parts = _Parts(column, now, options)
    for main in mains:
        parts.add_meter(1.0, telemetry.history(main))
    unseparated = set()
    thermal = _made_by_machines(parts, building, meters, telemetry, thermal)
    from_soc = _hydrogen_from_soc(parts, building.assets, meters, telemetry, unplanned)
    for asset in building.assets:
        if isinstance(asset, PV | Wind):
            if not _add_renewable(parts, asset, pv_meter(meters, building, asset), telemetry):
                unseparated.add(asset.id)
        elif isinstance(asset, GENERATORS + DRAWS) and asset.id not in unplanned | from_soc:
            _take_out(parts, asset, meters, telemetry, thermal, outdoor_c)
    return parts.result(), unseparated


def _made_by_machines(
    parts: _Parts,
    building: Building,
    meters: list[StoredMeter],
    telemetry: Telemetry,
    thermal: dict[str, pd.Series],
) -> dict[str, pd.Series]:
    """The heat or cooling the building's machines made, by carrier: its metered demand plus
    what its stores of that carrier took in less what they gave out (`_store_flow_kw`). An
    unmetered heat pump or chiller is estimated from this, not from the demand: a store
    discharging in its place makes it draw less, one charging more."""
    estimated = {
        "cooling" if isinstance(a, ElectricChiller) else "heat"
        for a in building.assets
        if isinstance(a, HeatPump | ElectricChiller | ElectricBoiler)
        and asset_meter(meters, a.id, ("electricity",)) is None
    }
    made = dict(thermal)
    for store in building.assets:
        if isinstance(store, ThermalStorage) and store.carrier in estimated.intersection(made):
            flow = _store_flow_kw(parts, store, meters, telemetry)
            if flow is not None:
                made[store.carrier] = made[store.carrier] + flow.reindex(made[store.carrier].index)
    return made


def unserved_thermal(
    carrier: Literal["heat", "cooling"],
    building: Building,
    meters: list[StoredMeter],
    telemetry: Telemetry,
    demand: tuple[pd.Series, float],
    now: pd.Timestamp,
    options: ForecastOptions,
) -> pd.Series | None:
    """What of the building's metered heat or cooling demand its plant did not serve (kW, ≥ 0):
    the demand plus what its stores of that carrier took in less what they gave out
    (`_store_flow_kw`), beyond what its devices can make (`demand`: the metered demand and that
    capacity, kW). The meters read the demand, not what was delivered, and a store charges its
    setpoint before its machines serve the building: a chiller at its limit while the ice store
    charges leaves the difference unserved. None without a store of that carrier or its flow."""
    values, capacity_kw = demand
    parts = _Parts(f"{building.id}:unserved_{carrier}_kw", now, options)
    flows = [
        _store_flow_kw(parts, store, meters, telemetry)
        for store in building.assets
        if isinstance(store, ThermalStorage) and store.carrier == carrier
    ]
    known = [f.reindex(values.index).fillna(0.0) for f in flows if f is not None]
    if not known:
        return None
    return (values.fillna(0.0) + sum(known) - capacity_kw).clip(lower=0.0)


def _store_flow_kw(
    parts: _Parts, store: ThermalStorage, meters: list[StoredMeter], telemetry: Telemetry
) -> pd.Series | None:
    """A heat or cold store's charging (> 0) or discharging (< 0) kW per step on its carrier's
    side: from its SOC meter's changes (standing loss and efficiencies taken out); without one,
    or with too little or too old a history, the setpoints sent to it where sent (0 where none);
    None (noted) with neither."""
    meter = soc_meter(meters, store.id)
    soc: pd.Series | None = None
    if meter is not None:
        try:
            soc, notes = clean_history(
                telemetry.history(meter), parts.column, parts.now, parts.options
            )
        except ForecastError as exc:  # too little or too old: the setpoints tell instead
            parts.notes.append(f"{store.id}: its SOC meter {meter.label} is not used: {exc}")
        else:
            parts.notes += [
                *notes,
                f"{store.id}: what it charged and discharged is taken from SOC changes of "
                f"{meter.label}, and what its building's machines made is the demand plus that",
            ]
    if soc is not None:
        return _storage_power_from_soc(soc, store)
    sent = telemetry.sent_kw(store.id)
    if sent.notna().any():
        parts.notes.append(
            f"{store.id}: no SOC readings to use; it is taken to have charged and discharged the "
            "setpoints sent to it (none where none was sent)"
        )
        return sent.clip(lower=-store.power_kw, upper=store.power_kw).fillna(0.0)
    parts.notes.append(
        f"{store.id}: no SOC readings to use and no setpoints; its building's machines are taken "
        "to have made the demand"
    )
    return None


def _add_renewable(
    parts: _Parts, asset: PV | Wind, meter: StoredMeter | None, telemetry: Telemetry
) -> bool:
    """Add a PV or wind meter's output back to the demand (the net meter read it taken off);
    without a meter its output stays inside the demand, noted. Whether it was separated."""
    if meter is None:
        parts.notes.append(
            f"{asset.id}: no meter; its output stays inside {parts.column} and "
            f"{asset.id}:available_kw is 0"
        )
        return False
    clipped = telemetry.history(meter).values.clip(lower=0.0)
    parts.add_meter(1.0, History(clipped, meter.label))
    return True


def _take_out(
    parts: _Parts,
    asset: Asset,
    meters: list[StoredMeter],
    telemetry: Telemetry,
    thermal: dict[str, pd.Series],
    outdoor_c: pd.Series | None,
) -> None:
    """Add back a generator's output or take out a consumer's or battery's draw."""
    meter = asset_meter(meters, asset.id, ("electricity",))
    if meter is not None:
        sign = 1.0 if isinstance(asset, GENERATORS) else -1.0
        parts.add_meter(sign, telemetry.history(meter))
    elif isinstance(asset, Battery):
        _battery_from_soc(parts, asset, meters, telemetry)
    elif isinstance(asset, DRAWS):
        _converter(parts, asset, thermal, outdoor_c, telemetry)
    else:
        parts.notes.append(
            f"{asset.id}: no electricity meter; its output stays inside {parts.column}"
        )


def _hydrogen_from_soc(
    parts: _Parts,
    assets: Iterable[Asset],
    meters: list[StoredMeter],
    telemetry: Telemetry,
    unplanned: set[str],
) -> set[str]:
    """A node's hydrogen chain without electricity meters, from its store's SOC meter: hydrogen
    in was made by the electrolyzer (its draw: hydrogen ÷ its eta), hydrogen out ran the fuel
    cell (its output: hydrogen × its eta_el), taken out of the load as a battery's charging is.
    Only one store, at most one electrolyzer and one fuel cell, none metered; the ids handled."""
    chain = [a for a in assets if isinstance(a, Electrolyzer | FuelCell) and a.id not in unplanned]
    stores = [a for a in assets if isinstance(a, HydrogenStore)]
    makers = [a for a in chain if isinstance(a, Electrolyzer)]
    cells = [a for a in chain if isinstance(a, FuelCell)]
    meter = soc_meter(meters, stores[0].id) if len(stores) == 1 else None
    if (
        meter is None
        or not chain
        or len(makers) > 1
        or len(cells) > 1
        or any(asset_meter(meters, a.id, ("electricity",)) is not None for a in chain)
    ):
        return set()
    soc, notes = clean_history(telemetry.history(meter), parts.column, parts.now, parts.options)
    flow = _storage_power_from_soc(soc, stores[0])
    made = flow.clip(lower=0.0) / makers[0].eta if makers else flow * 0.0
    burnt = flow.clip(upper=0.0) * cells[0].eta_el if cells else flow * 0.0
    parts.terms.append((-1.0, made + burnt, f"{meter.label} (as power)"))
    names = " and ".join(a.id for a in chain)
    parts.notes += [
        *notes,
        f"{names}: no electricity meter; what they drew and made is taken from SOC changes of "
        f"{meter.label}",
    ]
    return {a.id for a in chain}


def _battery_from_soc(
    parts: _Parts, battery: Battery, meters: list[StoredMeter], telemetry: Telemetry
) -> None:
    meter = soc_meter(meters, battery.id)
    sent = telemetry.sent_kw(battery.id)
    if meter is None and sent.notna().any():
        drawn = sent.clip(lower=-battery.power_kw, upper=battery.power_kw).fillna(0.0)
        parts.terms.append((-1.0, drawn, f"{battery.id} (setpoints)"))
        parts.notes.append(
            f"{battery.id}: no power or SOC meter; it is taken to have charged and discharged "
            "the setpoints sent to it (none where none was sent), taken out of the load"
        )
        return
    if meter is None:
        parts.notes.append(
            f"{battery.id}: no power or SOC meter; its charging stays inside {parts.column}"
        )
        return
    soc, notes = clean_history(telemetry.history(meter), parts.column, parts.now, parts.options)
    parts.terms.append((-1.0, _storage_power_from_soc(soc, battery), f"{meter.label} (as power)"))
    parts.notes += [
        *notes,
        f"{battery.id}: no power meter; its charging is taken from SOC changes of {meter.label}",
    ]


def district_thermal(
    park: Park,
    meters: list[StoredMeter],
    telemetry: Telemetry,
    now: pd.Timestamp,
    options: ForecastOptions,
) -> dict[str, pd.Series]:
    """What the park's shared devices served, by carrier, as the counterfactual's rules dispatch
    (energyhub.optimize.baseline: a building's own devices first, the park's what they cannot):
    each building's metered heat or cooling demand beyond what its own devices can make, summed.
    A carrier no building meters is absent."""
    out: dict[str, pd.Series] = {}
    carriers: tuple[Literal["heat", "cooling"], ...] = ("heat", "cooling")
    for carrier in carriers:
        for building in park.buildings:
            mine = [m for m in meters if m.site_id == building.id]
            found = thermal_history(carrier, building, mine, telemetry, now, options)
            if found is None:
                continue
            own_kw = thermal_capacity_kw(building.assets, carrier)
            beyond = (found.history.values - own_kw).clip(lower=0.0)
            out[carrier] = beyond if carrier not in out else out[carrier] + beyond
    return out


def _shared_served(
    parts: _Parts,
    own: list[StoredMeter],
    asset: Asset,
    telemetry: Telemetry,
    district: dict[str, pd.Series],
) -> dict[str, pd.Series]:
    """What a shared heat pump, chiller or electric boiler without an electricity meter served,
    to take its draw out by (÷ COP): its own heat or cooling meter if it has one (`asset:`),
    else `district` (what is left of it for the next one is `district` less this one's)."""
    carrier = "cooling" if isinstance(asset, ElectricChiller) else "heat"
    if not isinstance(asset, HeatPump | ElectricChiller | ElectricBoiler) or asset_meter(
        own, asset.id, ("electricity",)
    ):
        return district
    meter = asset_meter(own, asset.id, (carrier,))
    if meter is not None:
        made, notes = clean_history(
            telemetry.history(meter), parts.column, parts.now, parts.options
        )
        parts.notes += [*notes, f"{asset.id}: the {carrier} it made is read from {meter.label}"]
        made = made.clip(lower=0.0)
        if carrier in district:  # what it made is not left for an unmetered one to serve
            left = district[carrier] - made.reindex(district[carrier].index).fillna(0.0)
            district[carrier] = left.clip(lower=0.0)
        return {carrier: made}
    if carrier in district:
        parts.notes.append(
            f"{asset.id}: the {carrier} it served is taken as what the buildings used beyond "
            f"their own devices (a {carrier} meter with asset: {asset.id} makes it exact)"
        )
    return district


def park_electricity_history(
    park: Park,
    meters: list[StoredMeter],
    telemetry: Telemetry,
    now: pd.Timestamp,
    options: ForecastOptions,
    outdoor_c: pd.Series | None = None,
) -> tuple[DemandHistory, set[str]] | None:
    """The park's own electricity demand, never below 0, and its renewables whose output could
    not be separated; None without a main electricity meter of its own. Measured at its
    connection (`Park.measured_at_connection`): that meter less its buildings' mains; with
    `main_meter: own-loads`: that meter. Its shared assets are separated as a building's are:
    the plan dispatches them (and the counterfactual's rules too), so what they drew must not
    stay inside this load as well. A shared converter without an electricity meter is taken
    out by its own heat or cooling meter over its COP, else by what its buildings used beyond
    their own devices (`district_thermal`) over its COP."""
    column = f"{park.id}:electricity_kw"
    own = [m for m in meters if m.site_id == park.id]
    mains = electricity_mains(own)
    if not mains:
        return None
    parts = _Parts(column, now, options)
    for main in mains:
        parts.add_meter(1.0, telemetry.history(main))
    if park.measured_at_connection:
        for building in park.buildings:
            inner = electricity_mains([m for m in meters if m.site_id == building.id])
            for main in inner:
                parts.add_meter(-1.0, telemetry.history(main))
            if not inner:
                parts.notes.append(
                    f"{building.id}: no main electricity meter; its load stays inside {column}"
                )
    unseparated = set()
    district = district_thermal(park, meters, telemetry, now, options)
    from_soc = _hydrogen_from_soc(parts, park.assets, own, telemetry, set())
    for asset in park.assets:
        if isinstance(asset, PV | Wind):
            meter = asset_meter(own, asset.id, ("pv", "electricity"))
            if not _add_renewable(parts, asset, meter, telemetry):
                unseparated.add(asset.id)
        elif isinstance(asset, GENERATORS + DRAWS) and asset.id not in from_soc:
            served = _shared_served(parts, own, asset, telemetry, district)
            _take_out(parts, asset, own, telemetry, served, outdoor_c)
    found = parts.result()
    below = int((found.history.values < 0).sum())
    if below:
        found.notes.append(
            f"{column}: {found.history.meter} is below 0 in {below} step(s) (the parts read more "
            "than the whole: check the meters' scaling and timing); taken as 0 there"
        )
    values = found.history.values.clip(lower=0.0)
    return DemandHistory(History(values, found.history.meter), found.notes), unseparated


def outdoor_meter(meters: list[StoredMeter], park_id: str) -> StoredMeter | None:
    """The outdoor temperature sensor: the park's own (`outdoor` first), else any `outdoor` one."""
    sensors = [m for m in meters if m.quantity == "temperature_c"]
    ranked = sorted(
        (m for m in sensors if m.site_id == park_id or "outdoor" in m.name),
        key=lambda m: (m.site_id != park_id, "outdoor" not in m.name, m.name),
    )
    return ranked[0] if ranked else None
