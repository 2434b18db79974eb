"""Carbon accounting for any site (enterprise, building, park, city) and any period.

Energy by carrier from the meters (see carbon/tree.py for which meters count and how), Scope 1
(gas burned on site), Scope 2 (electricity and heat bought), PV and other generation reported on
their own lines with the emissions PV avoided (never subtracted), intensity per m², the trend
against the previous period, data coverage, tenant allocation (carbon/allocation.py) and the
position against a yearly target (carbon/targets.py). `carbon_report` is what the API returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pandas as pd
from psycopg import AsyncConnection

from energyhub.carbon.allocation import Share, add, allocate
from energyhub.carbon.coverage import measure
from energyhub.carbon.errors import NoDataError, NoMetersError
from energyhub.carbon.factors import FACTOR_KEYS, SiteFactors, source_of
from energyhub.carbon.intensity import hourly_intensity
from energyhub.carbon.ledger import (
    COLUMNS,
    SITE,
    build_ledger,
    by_site,
    daily,
    empty_daily,
    roles_frame,
)
from energyhub.carbon.market import with_market_scope2
from energyhub.carbon.models import (
    CarbonReport,
    CostCny,
    Coverage,
    Day,
    EnergyKwh,
    FactorsUsed,
    Line,
    TargetPosition,
    Trend,
)
from energyhub.carbon.notes import Entry, explain
from energyhub.carbon.periods import STEP, check_range, previous_period, year_start
from energyhub.carbon.targets import position
from energyhub.carbon.tree import (
    MeterInfo,
    SiteInfo,
    SiteTree,
    connection_share,
    enterprise_buildings,
    load_tree,
    site_meters,
    site_role,
    tenant_meters,
    tenant_role,
    timed_roles,
)
from energyhub.store.db import Backend
from energyhub.store.queries import meter_series

__all__ = ["CarbonReport", "carbon_report"]

LineKind = Literal["building", "park", "park-own", "tenant", "common"]


def _building_key(building_id: str) -> str:
    return f"building|{building_id}"


def _tenant_key(building_id: str, enterprise_id: str) -> str:
    return f"tenant|{building_id}|{enterprise_id}"


@dataclass(frozen=True)
class Window:
    """One window's accounting of a site: its daily ledger, its parts, coverage and notes."""

    daily: pd.DataFrame
    lines: list[Line]
    coverage: Coverage
    grid_series_share: float
    notes: list[str]

    @property
    def totals(self) -> pd.Series:
        return totals(self.daily)


def totals(frame: pd.DataFrame) -> pd.Series:
    """Column sums of a daily ledger (zeros when it is empty)."""
    return frame.reindex(columns=list(COLUMNS)).fillna(0.0).sum()


def total_kg(values: pd.Series) -> float:
    return float(values["scope1_kg"] + scope2_kg(values))


def scope2_kg(values: pd.Series) -> float:
    """Bought electricity, heat and cooling."""
    return float(
        values["scope2_electricity_kg"] + values["scope2_heat_kg"] + values["scope2_cooling_kg"]
    )


def _line(site_id: str, kind: LineKind, area: float | None, frame: pd.DataFrame) -> Line:
    values = totals(frame)
    scope2 = scope2_kg(values)
    return Line(
        site_id=site_id,
        kind=kind,
        floor_area_m2=area,
        energy_kwh=EnergyKwh.of(values),
        exported_kwh=float(values["exported_kwh"]),
        pv_kwh=float(values["pv_kwh"]),
        scope1_kg=float(values["scope1_kg"]),
        scope2_kg=scope2,
        scope2_electricity_kg=float(values["scope2_electricity_kg"]),
        total_kg=total_kg(values),
        avoided_kg=float(values["avoided_kg"]),
        cost_cny=CostCny.of(values),
    )


def _share_line(share: Share, site_id: str | None = None) -> Line:
    kind: LineKind = "building" if site_id else share.kind
    line = _line(site_id or share.site_id, kind, share.floor_area_m2, share.total)
    return line.model_copy(
        update={
            "metered_kg": total_kg(totals(share.metered)),
            "allocated_kg": total_kg(totals(share.allocated)),
            "area_share": share.area_share,
        }
    )


async def _entries(conn: AsyncConnection, tree: SiteTree, site: SiteInfo) -> list[Entry]:
    """(account, meter, role) for every meter the site's accounting reads."""
    if site.kind in ("park", "city"):
        ids = [s.id for s in tree.subtree(site.id) if s.kind != "enterprise"]
        meters = await site_meters(conn, ids)
        shares = [(SITE, *share) for m in meters if (share := connection_share(tree, m))]
        network = [(SITE, m, r) for m in meters for r in timed_roles(tree, m)] + shares
        if site.kind == "city":
            return network
        return network + [  # each building's line is its own account, as in its own report
            (_building_key(m.site_id), m, r)
            for m in meters
            if tree.get(m.site_id).kind == "building" and (r := site_role(tree, m))
        ]
    buildings = (
        [site.id] if site.kind == "building" else await enterprise_buildings(conn, tree, site)
    )
    entries: list[Entry] = [
        (_building_key(m.site_id), m, r)
        for m in await site_meters(conn, buildings)
        if (r := site_role(tree, m))
    ]
    entries += [
        (_tenant_key(m.site_id, e), m, tenant_role(tree, m))
        for e, m in await tenant_meters(conn, buildings)
    ]
    if site.kind == "enterprise" and not any(a.endswith(f"|{site.id}") for a, _, _ in entries):
        return []
    return entries


def _building_shares(
    tree: SiteTree, building: SiteInfo, ledger: pd.DataFrame
) -> tuple[list[Share], list[str]]:
    """The allocation of one building from the ledger's building and tenant accounts."""
    prefix = _tenant_key(building.id, "")
    tenants = ledger[ledger["account"].str.startswith(prefix)]
    tenant_daily = {
        str(account).removeprefix(prefix): daily(part)
        for account, part in tenants.groupby("account")
    }
    own = daily(ledger[ledger["account"] == _building_key(building.id)])
    return allocate(building, own, tenant_daily, tree.kids(building.id, "enterprise"))


def _parts(
    tree: SiteTree, site: SiteInfo, ledger: pd.DataFrame, entries: list[Entry]
) -> tuple[pd.DataFrame, list[Line], list[str]]:
    """The site's daily ledger, its lines (children, tenants or buildings) and allocation notes."""
    if site.kind == "building":
        shares, notes = _building_shares(tree, site, ledger)
        own = daily(ledger[ledger["account"] == _building_key(site.id)])
        return own, [_share_line(s) for s in shares], notes
    if site.kind == "enterprise":
        lines, frames, notes = [], [], []
        for building_id in sorted({account.split("|")[1] for account, _, _ in entries}):
            shares, building_notes = _building_shares(tree, tree.get(building_id), ledger)
            mine = next((s for s in shares if s.site_id == site.id), None)
            if mine is not None:
                lines.append(_share_line(mine, building_id))
                frames.append(mine.total)
            notes += building_notes
        return add(frames), lines, notes
    network = ledger[ledger["account"] == SITE]
    if site.kind == "park":
        return daily(network), _park_lines(tree, site, ledger), []
    group = {
        s.id: next((c.id for c in tree.chain(s.id) if c.kind == "park"), f"{site.id}|own")
        for s in tree.subtree(site.id)
    }
    parts = by_site(network, group)
    lines = [
        _line(c.id, "park", _floor_area(tree, c), parts.get(c.id, empty_daily()))
        for c in tree.kids(site.id, "park")
    ]
    return daily(network), lines, []


RECONCILED_KWH = 1e-6
"""Below this a park's own line (the connection less its buildings) is rounding, not a line."""


def _park_lines(tree: SiteTree, park: SiteInfo, ledger: pd.DataFrame) -> list[Line]:
    """A park's lines: each building's own account (what its own meters bought and exported,
    as its own report says) and the park's own line, the connection less them (its common
    loads, less the park's generation and the buildings' exports the other buildings used)."""
    accounts = dict(tuple(ledger.groupby("account", sort=False)))
    buildings = {
        b.id: daily(accounts.get(_building_key(b.id), ledger.iloc[:0]))
        for b in tree.kids(park.id, "building")
    }
    lines = [
        _line(b.id, "building", _floor_area(tree, b), buildings[b.id])
        for b in tree.kids(park.id, "building")
    ]
    network = daily(accounts.get(SITE, ledger.iloc[:0]))
    own = add([network, *(-frame for frame in buildings.values())])
    reconciled = (own[["electricity_kwh", "exported_kwh"]].abs() > RECONCILED_KWH).any().any()
    if (ledger["site_id"] == park.id).any() or reconciled:
        lines.append(_line(park.id, "park-own", None, own))
    return lines


def _floor_area(tree: SiteTree, site: SiteInfo) -> float | None:
    """A site's floor area: its own, else the sum of its buildings'."""
    if site.kind in ("building", "enterprise"):
        return site.floor_area_m2
    areas = [s.floor_area_m2 or 0.0 for s in tree.subtree(site.id) if s.kind == "building"]
    return sum(areas) or None


def _grid_series_share(ledger: pd.DataFrame) -> float:
    electricity = float(ledger["electricity_moved_kwh"].sum())
    return float(ledger["grid_series_kwh"].sum()) / electricity if electricity else 0.0


@dataclass(frozen=True)
class Request:
    """What every window of one report shares: the database, the tree, the site, the factor year."""

    conn: AsyncConnection
    backend: Backend
    tree: SiteTree
    site: SiteInfo
    factor_year: int | None

    @property
    def timezone(self) -> str:
        return self.tree.timezone(self.site.id)

    def year_of(self, start: datetime) -> tuple[int, bool]:
        if self.factor_year is not None:
            return self.factor_year, True
        return start.astimezone(ZoneInfo(self.timezone)).year, False

    def factors(self, site_id: str, start: datetime) -> SiteFactors:
        return self.tree.factors(site_id, *self.year_of(start))


async def _account(request: Request, start: datetime, end: datetime) -> Window:
    """Account one window: read the meters, build the ledger, group it, measure coverage."""
    tree, site = request.tree, request.site
    entries = await _entries(request.conn, tree, site)
    if not entries:
        raise NoMetersError(site.id)
    by_id: dict[int, MeterInfo] = {}
    for _, meter, _ in entries:
        by_id.setdefault(meter.id, meter)  # a connection share's meter stays at its own site
    meters = list(by_id.values())
    series = await meter_series(
        request.conn, request.backend, [m.id for m in meters], start, end, STEP, request.timezone
    )
    sites = {m.site_id for _, m, _ in entries}  # a connection share adds to its park
    factors = {s: request.factors(s, start) for s in sorted(sites)}
    names = sorted({f.grid_series for f in factors.values() if f.grid_series})
    intensity = await hourly_intensity(request.conn, names, start, end)
    ledger = build_ledger(series, roles_frame(tree, entries), factors, intensity, tree)
    coverage = measure(series, meters, start, end, STEP, request.timezone)
    site_daily, lines, notes = _parts(tree, site, ledger, entries)
    own = request.factors(site.id, start)
    if site.kind in ("park", "city"):  # the notes are of the connection's account
        entries = [entry for entry in entries if entry[0] == SITE]
        ledger = ledger[ledger["account"] == SITE]
    notes += explain(tree, site.id, entries, ledger, factors, own, coverage)
    return Window(site_daily, lines, coverage, _grid_series_share(ledger), notes)


COMPARABLE_COVERAGE_GAP = 0.05
"""Periods whose coverage differs by more than 5 points are not compared: a change would say
more about missing data than about emissions (7 % against 100 % read as +1,440 %)."""


def _trend(current: Window, previous: Window, start: datetime, end: datetime) -> Trend:
    before = total_kg(previous.totals) if previous.coverage.present_intervals else None
    now = total_kg(current.totals)
    gap = abs(current.coverage.share - previous.coverage.share)
    comparable = before is not None and gap <= COMPARABLE_COVERAGE_GAP
    change = now - before if before is not None and comparable else None
    return Trend(
        previous_start=start,
        previous_end=end,
        previous_total_kg=before,
        change_kg=change,
        change_pct=change / before * 100.0 if change is not None and before else None,
        previous_coverage=previous.coverage.share,
        comparable=comparable,
    )


async def _target(
    request: Request, start: datetime, end: datetime, current: Window
) -> TargetPosition | None:
    """The site's position against its yearly target, if it has one."""
    target = request.site.target_kg_per_year
    if target is None:
        return None
    first = year_start(end, request.timezone)
    so_far = current if first == start else await _account(request, first, end)
    return position(
        target,
        first,
        end,
        total_kg(so_far.totals),
        total_kg(current.totals),
        (end - start) / timedelta(days=1),
        request.factors(request.site.id, start).price_cny_per_t,
    )


def _factors_used(request: Request, start: datetime, window: Window) -> FactorsUsed:
    own = request.factors(request.site.id, start)
    return FactorsUsed(
        grid_kg_per_kwh=own.grid_kg_per_kwh,
        gas_kg_per_kwh=own.gas_kg_per_kwh,
        heat_kg_per_kwh=own.heat_kg_per_kwh,
        cooling_kg_per_kwh=own.cooling_kg_per_kwh,
        price_cny_per_t=own.price_cny_per_t,
        factor_year=own.factor_year,
        grid_series=own.grid_series,
        grid_series_share=window.grid_series_share,
        sources={k: own.sources.get(k) or source_of(k, own.value(k)) for k in FACTOR_KEYS},
    )


def _days(frame: pd.DataFrame) -> list[Day]:
    return [
        Day(
            day=day,
            scope1_kg=float(row["scope1_kg"]),
            scope2_electricity_kg=float(row["scope2_electricity_kg"]),
            scope2_heat_kg=float(row["scope2_heat_kg"]),
            scope2_cooling_kg=float(row["scope2_cooling_kg"]),
            electricity_kwh=float(row["electricity_kwh"]),
            exported_kwh=float(row["exported_kwh"]),
            heat_kwh=float(row["heat_kwh"]),
            gas_kwh=float(row["gas_kwh"]),
            pv_kwh=float(row["pv_kwh"]),
        )
        for day, row in frame.sort_index().iterrows()
    ]


def _report(
    request: Request,
    start: datetime,
    end: datetime,
    current: Window,
    trend: Trend,
    target: TargetPosition | None,
) -> CarbonReport:
    values, site = current.totals, request.site
    area = _floor_area(request.tree, site)
    emitted = total_kg(values)
    notes = list(current.notes)
    if trend.previous_total_kg is not None and not trend.comparable:
        notes.append(
            f"no change against the previous period: its coverage "
            f"({trend.previous_coverage:.1%}) differs from this one's "
            f"({current.coverage.share:.1%}) by more than "
            f"{COMPARABLE_COVERAGE_GAP:.0%} points"
        )
    if target is not None and target.exceeds_target:
        notes.append(
            f"projected {target.projected_year_kg:,.0f} kg for {target.year} exceeds the "
            f"target of {target.target_kg_per_year:,.0f} kg"
        )
    return CarbonReport(
        site_id=site.id,
        site_name=site.name,
        kind=site.kind,
        start=start,
        end=end,
        timezone=request.timezone,
        energy_kwh=EnergyKwh.of(values),
        exported_kwh=float(values["exported_kwh"]),
        generation_kwh=float(values["generation_kwh"]),
        pv_kwh=float(values["pv_kwh"]),
        avoided_kg=float(values["avoided_kg"]),
        scope1_kg=float(values["scope1_kg"]),
        scope2_kg=scope2_kg(values),
        scope2_electricity_kg=float(values["scope2_electricity_kg"]),
        scope2_heat_kg=float(values["scope2_heat_kg"]),
        scope2_cooling_kg=float(values["scope2_cooling_kg"]),
        total_kg=emitted,
        floor_area_m2=area,
        intensity_kg_per_m2=emitted / area if area else None,
        cost_cny=CostCny.of(values),
        factors=_factors_used(request, start, current),
        trend=trend,
        coverage=current.coverage,
        lines=current.lines,
        daily=_days(current.daily),
        target=target,
        notes=notes,
    )


async def carbon_report(
    conn: AsyncConnection,
    backend: Backend,
    site_id: str,
    start: datetime,
    end: datetime,
    *,
    factor_year: int | None = None,
) -> CarbonReport:
    """The carbon report of one site for [start, end); CarbonError subclasses for bad input."""
    check_range(start, end)
    tree = await load_tree(conn)
    request = Request(conn, backend, tree, tree.get(site_id), factor_year)
    current = await _account(request, start, end)
    if current.coverage.present_intervals == 0:
        raise NoDataError(site_id, start, end)
    before_start, before_end = previous_period(start, end, request.timezone)
    previous = await _account(request, before_start, before_end)
    trend = _trend(current, previous, before_start, before_end)
    target = await _target(request, start, end, current)
    report = _report(request, start, end, current, trend, target)
    return await with_market_scope2(conn, tree, report)
