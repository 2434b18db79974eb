"""Checks across the whole site file, after each model validated itself: ids unique, references
(meters, gateways, carbon declarations, alert rules) resolvable. One `path: message` per problem.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from energyhub.alerts.validate import site_rule_problems
from energyhub.sites.models import CarbonFactors
from energyhub.sites.tree import Building, Park, SiteFile


def _duplicates(ids: list[str]) -> list[str]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)


def reference_problems(site: SiteFile) -> Iterator[str]:
    """Ids unique per kind, sub-meter parents, asset and enterprise meter references resolvable."""
    site_ids = [node.id for node in site.nodes()]
    duplicate_sites = _duplicates(site_ids)
    for dup in duplicate_sites:
        yield (
            f"id {dup!r} is used by more than one site "
            "(city, park, building and enterprise ids share one namespace)"
        )
    asset_ids = [a.id for p in site.city.parks for a in p.assets] + [
        a.id for p in site.city.parks for b in p.buildings for a in b.assets
    ]
    for dup in _duplicates(asset_ids):
        yield f"asset id {dup!r} is used more than once"
    for clash in sorted(set(asset_ids) & set(site_ids)):
        yield (
            f"asset id {clash!r} is also a site's id (a plan's inputs column such as "
            f"'{clash}:electricity_kw' would name either)"
        )
    devices = [
        f"{m.device.format}:{m.device.device} {m.device.component}:{m.device.channel}"
        for _, owner in site.metered_sites()
        for m in owner.meters
        if m.device is not None
    ]
    for dup in _duplicates(devices):
        yield f"device {dup} feeds more than one meter"
    metrics = [
        f"{s.group}/{s.node}{'/' + s.device if s.device else ''} metric {s.metric!r}"
        for _, owner in site.metered_sites()
        for m in owner.meters
        if (s := m.sparkplug) is not None
    ]
    for dup in _duplicates(metrics):
        yield f"Sparkplug {dup} feeds more than one meter"
    yield from _modbus_problems(site)
    if duplicate_sites:
        return  # meter references below are resolved by site id
    meters_by_site = {owner.id: {m.id for m in owner.meters} for _, owner in site.metered_sites()}
    for p, park in enumerate(site.city.parks):
        owners: list[tuple[str, Park | Building]] = [(f"city.parks[{p}]", park)]
        owners += [(f"city.parks[{p}].buildings[{b}]", bl) for b, bl in enumerate(park.buildings)]
        yield from _main_meter_problems(f"city.parks[{p}]", park)
        for path, owner in owners:
            yield from _meter_problems(path, owner, park, meters_by_site)
            yield from _heat_purchase_problems(path, owner, park)
            yield from _cooling_purchase_problems(path, owner, park, site.city.carbon)
    yield from site_rule_problems(site)


def _cooling_purchase_problems(
    path: str, owner: Park | Building, park: Park, city: CarbonFactors
) -> Iterator[str]:
    """Bought cooling is Scope 2 only at a declared factor: there is no published default."""
    if owner.carbon is None or not owner.carbon.cooling_purchased:
        return
    chain = [city, park.carbon, owner.carbon if owner is not park else None]
    declared = [
        node
        for node in chain
        if node is not None
        and (
            node.cooling_kg_per_kwh is not None
            or any(y.cooling_kg_per_kwh is not None for y in node.factors_by_year.values())
        )
    ]
    if not declared:
        yield (
            f"{path}.carbon.cooling_purchased: true needs cooling_kg_per_kwh (the supplier's "
            f"factor) in the carbon of {owner.id}, its park or the city"
        )


HEAT_PLANT_TYPES = ("heat_pump", "gas_boiler", "electric_boiler", "chp", "fuel_cell")
"""Assets that make heat on site (carbon/tree.py's HEAT_PRODUCERS)."""


def _heat_purchase_problems(path: str, owner: Park | Building, park: Park) -> Iterator[str]:
    """`heat_purchased: false` says a plant on site makes the heat; without one, the building's
    heat would count as emission-free."""
    if owner.carbon is None or owner.carbon.heat_purchased is not False:
        return
    assets = [*owner.assets, *park.assets] if isinstance(owner, Building) else park.assets
    if not any(asset.type in HEAT_PLANT_TYPES for asset in assets):
        where = f"{owner.id} or its park" if isinstance(owner, Building) else owner.id
        yield (
            f"{path}.carbon.heat_purchased: false, but {where} has no heat plant "
            f"({', '.join(HEAT_PLANT_TYPES)}): its heat would count as emission-free; "
            "declare the plant or drop heat_purchased"
        )


def _main_meter_problems(path: str, park: Park) -> Iterator[str]:
    """`main_meter` says what the park's main electricity meter measures: without one, it
    describes nothing (and the park's load would silently be its buildings')."""
    if park.main_meter is not None and not any(m.measures_electricity for m in park.meters):
        yield (
            f"{path}.main_meter: {park.main_meter}, but {park.id} has no main electricity meter "
            "(carrier electricity, quantity power_kw or energy_kwh, without asset: or "
            "submeter_of:); add one or drop main_meter"
        )


def _meter_problems(
    path: str, owner: Park | Building, park: Park, meters_by_site: dict[str, set[str]]
) -> Iterator[str]:
    for dup in _duplicates([m.id for m in owner.meters]):
        yield f"{path}.meters: id {dup!r} is used more than once"
    assets = {a.id for a in owner.assets} | {a.id for a in park.assets}
    for i, meter in enumerate(owner.meters):
        where = f"{path}.meters[{i}]"
        if meter.submeter_of == meter.id:
            yield f"{where}.submeter_of: a meter cannot be its own parent, got {meter.id!r}"
        elif meter.submeter_of is not None and meter.submeter_of not in meters_by_site[owner.id]:
            yield f"{where}.submeter_of: no meter {meter.submeter_of!r} in {owner.id}"
        if meter.asset is not None and meter.asset not in assets:
            yield f"{where}.asset: no asset {meter.asset!r} in {owner.id} or {park.id}"
    yield from _submeter_cycles(path, owner)
    if isinstance(owner, Building):
        for e, enterprise in enumerate(owner.enterprises):
            for m, ref in enumerate(enterprise.meters):
                building_id, _, meter_id = ref.rpartition("/")
                building_id = building_id or owner.id
                if meter_id not in meters_by_site.get(building_id, set()):
                    yield (
                        f"{path}.enterprises[{e}].meters[{m}]: no meter {meter_id!r} "
                        f"in site {building_id!r}, got {ref!r}"
                    )


def _submeter_cycles(path: str, owner: Park | Building) -> Iterator[str]:
    """`submeter_of` chains end at a main meter: a loop (a → b → a) has none, and the energy of
    each meter in it would be subtracted from the others for ever."""
    parent = {m.id: m.submeter_of for m in owner.meters if m.submeter_of not in (None, m.id)}
    index = {m.id: i for i, m in enumerate(owner.meters)}
    reported: set[str] = set()
    for start in parent:
        chain = [start]
        while (up := parent.get(chain[-1])) is not None and up not in chain:
            chain.append(up)
        if up is not None and up == start and not reported & set(chain):
            reported |= set(chain)
            loop = " → ".join([*chain, start])
            yield f"{path}.meters[{index[start]}].submeter_of: a loop of sub-meters, got {loop}"


def _modbus_problems(site: SiteFile) -> Iterator[str]:
    """Gateway ids unique in the city; every Modbus meter on a declared gateway and unit."""
    gateways = {g.id: g for park in site.city.parks for g in park.modbus_gateways}
    ids = [g.id for park in site.city.parks for g in park.modbus_gateways]
    for dup in _duplicates(ids):
        yield f"Modbus gateway id {dup!r} is used more than once"
    for p, park in enumerate(site.city.parks):
        owners: list[tuple[str, Park | Building]] = [(f"city.parks[{p}]", park)]
        owners += [(f"city.parks[{p}].buildings[{b}]", bl) for b, bl in enumerate(park.buildings)]
        for where, owner in owners:
            for m, meter in enumerate(owner.meters):
                mapping = meter.modbus
                if mapping is None:
                    continue
                gateway = gateways.get(mapping.gateway)
                path = f"{where}.meters[{m}].modbus"
                if gateway is None:
                    yield f"{path}.gateway: no Modbus gateway {mapping.gateway!r} in any park"
                elif mapping.unit not in gateway.units:
                    yield (
                        f"{path}.unit: gateway {gateway.id!r} declares units "
                        f"{gateway.units}, got {mapping.unit}"
                    )
