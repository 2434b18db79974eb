"""Rich renderings for the terminal: the site tree, load summaries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.tree import Tree

from energyhub.numbers import counted
from energyhub.sites import Building, Park, SiteFile

if TYPE_CHECKING:  # store.sync reaches pandas, which `energyhub sites check` does not need
    from energyhub.store.sync import SyncReport


def _counts(owner: Park | Building) -> str:
    return f"[dim]{counted(len(owner.meters), 'meter')}, {counted(len(owner.assets), 'asset')}[/]"


def _main_meter(park: Park) -> str:
    """What the park's load is (site-files.md, a park's own main meter): said only when the
    park has a main meter of its own, whose reading would otherwise be guessed at."""
    mains = [m.id for m in park.meters if m.measures_electricity]
    if not mains:
        return ""
    if park.measured_at_connection:
        return f" [dim]· electricity measured at the connection ({', '.join(mains)})[/]"
    return f" [dim]· electricity: {', '.join(mains)} (own loads) + the buildings' mains[/]"


def site_tree(site: SiteFile) -> Tree:
    """City > park > building > enterprise, with meter and asset counts per node."""
    city = site.city
    root = Tree(f"[bold]city {city.id}[/] {city.name or ''} [dim]({site.timezone})[/]")
    for park in city.parks:
        grid = park.grid
        park_node = root.add(
            f"[bold cyan]park {park.id}[/] {park.name or ''} — "
            f"import ≤ {grid.import_max_kw:,g} kW, {grid.tariff} {_counts(park)}{_main_meter(park)}"
        )
        for building in park.buildings:
            building_node = park_node.add(
                f"[bold]{building.id}[/] {building.building_class} "
                f"{building.floor_area_m2:,.0f} m² {building.name or ''} {_counts(building)}"
            )
            for enterprise in building.enterprises:
                building_node.add(
                    f"[magenta]enterprise {enterprise.id}[/] {enterprise.name or ''} "
                    f"[dim]sub-meters {', '.join(enterprise.meters)}[/]"
                )
    return root


def site_summary(site: SiteFile) -> str:
    parks = site.city.parks
    buildings = [b for p in parks for b in p.buildings]
    meters = sum(len(owner.meters) for _, owner in site.metered_sites())
    assets = sum(len(owner.assets) for _, owner in site.metered_sites())
    enterprises = sum(len(b.enterprises) for b in buildings)
    return (
        f"{counted(len(parks), 'park')}, {counted(len(buildings), 'building')}, "
        f"{counted(enterprises, 'enterprise')}, {counted(meters, 'meter')}, "
        f"{counted(assets, 'asset')}"
    )


def sync_summary(report: SyncReport) -> str:
    lines = [
        f"sites: {report.sites_upserted} loaded"
        + (
            f", deactivated {', '.join(report.sites_deactivated)}"
            if report.sites_deactivated
            else ""
        ),
        f"meters: {len(report.added)} added, {len(report.renamed)} renamed, "
        f"{len(report.updated)} updated, {len(report.reactivated)} reactivated, "
        f"{len(report.retired)} retired (readings kept), {report.unchanged} unchanged",
    ]
    for title, items in (
        ("renamed", report.renamed),
        ("retired", report.retired),
        ("reactivated", report.reactivated),
    ):
        if items:
            lines.append(f"  {title}: {', '.join(items)}")
    if report.reread:
        lines.append(
            "  stored readings read anew (rollups recomputed at the next refresh): "
            + "; ".join(report.reread)
        )
    if report.site_load_rebuilt:
        lines.append(f"load rollups rebuilt for: {', '.join(report.site_load_rebuilt)}")
    return "\n".join(lines)
