"""Narrow a site file to some of its parks and buildings (`simulate --only`)."""

from __future__ import annotations

from energyhub.sites import SiteFile
from simulators.errors import SimulatorInputError


def select_sites(site: SiteFile, ids: list[str]) -> SiteFile:
    """Keep the named parks whole, and the named buildings (their park's meters only if named)."""
    if not ids:
        return site
    known = {p.id for p in site.city.parks} | {b.id for p in site.city.parks for b in p.buildings}
    unknown = sorted(set(ids) - known)
    if unknown:  # an enterprise or the city is named as one, not as unknown
        raise SimulatorInputError(
            "--only: " + "; ".join(site.not_park_or_building(site_id) for site_id in unknown)
        )
    wanted = set(ids)
    parks = []
    for park in site.city.parks:
        buildings = [b for b in park.buildings if park.id in wanted or b.id in wanted]
        if park.id in wanted:
            parks.append(park)
        elif buildings:
            parks.append(park.model_copy(update={"buildings": buildings, "meters": []}))
    city = site.city.model_copy(update={"parks": parks})
    return site.model_copy(update={"city": city})
