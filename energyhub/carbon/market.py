"""Market-based Scope 2 (GHG Protocol Scope 2 Guidance): the electricity a site bought, covered
first by the certificates retired for it (0 kg/kWh), then by its green-power contract claims
(each at its own supplier's factor, in turn), the rest at the residual-mix factor of the site file.

A retirement counts for the sites at or above the one it was made for, and for a report period
in proportion to how much of its own period falls inside, by time (a retirement for 2026 counts
31/365 of its MWh in a report for October 2026).

Per line. A report's market-based figure is the sum of its lines' (buildings of a park, parks of a
city, tenants and the common share of a building, buildings of an enterprise). A retirement made
for a line's site or a site below it counts for that line only; one made for the reported site
itself is split over the lines: in a building's report by the floor-area rule the report uses for
the remainder (carbon/allocation.py: each tenant its `area_share`, the common line the rest), in
any other report in proportion to each line's electricity bought; what a line cannot use of it goes
to the lines with electricity left, in proportion to that. A line's instruments cover at most its
own electricity (a tenant's certificates do not make its neighbours' electricity green), and all
instruments together at most the electricity the report's site bought; what they offer beyond it
is not applied, and reported as `unapplied_kwh`. A line that net supplies
electricity (a park's own generation, subtracted from what the park bought) takes no instruments
and keeps its negative kWh at the residual mix, as the location-based figure keeps it at the grid
factor: the lines' kWh add up to the electricity the site bought. Heat and cooling are the same in
both methods (no contractual instruments for them here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from psycopg import AsyncConnection

from energyhub.carbon.market_models import InstrumentUse, LineScope2, MarketScope2
from energyhub.carbon.models import CarbonReport
from energyhub.carbon.tree import SiteTree
from energyhub.store.green import RetirementRow, retirements

NO_RESIDUAL_MIX = (
    "no residual_mix_kg_per_kwh in the site file: the location-based grid factor stands in "
    "for the residual mix (GHG Protocol Scope 2 Guidance allows this, and asks that it be said)"
)
OWN_LINES = ("common", "park-own")
"""Lines that stand for the reported site itself, not for a site below it."""


def residual_mix(tree: SiteTree, site_id: str) -> tuple[float, str] | None:
    """The most specific residual-mix factor of the site's chain and its source, if any."""
    for site in reversed(tree.chain(site_id)):
        carbon = site.city_carbon if site.kind == "city" else site.carbon
        if carbon is not None and carbon.residual_mix_kg_per_kwh is not None:
            source = carbon.residual_mix_source or f"site file ({site.kind} {site.id})"
            return carbon.residual_mix_kg_per_kwh, source
    return None


def _share(row: RetirementRow, start: datetime, end: datetime) -> float:
    """The share of the retirement's period that lies in [start, end)."""
    inside = min(end, row.period_end) - max(start, row.period_start)
    return max(inside / (row.period_end - row.period_start), 0.0)


def _serials(row: RetirementRow) -> str | None:
    return None if row.serial_first is None else f"{row.serial_first}-{row.serial_last}"


def _kg_per_kwh(row: RetirementRow) -> float:
    return (row.supplier_kg_per_kwh or 0.0) if row.kind == "contract" else 0.0


@dataclass
class _Room:
    """What instruments may still cover over the whole report: the electricity the site bought.

    A line's own electricity can exceed it where park generation supplied the line (the
    `park-own` line below 0 takes it off): certificates for such a line cover at most what was
    bought, or the lines' market-based figures would add up to less than 0."""

    kwh: float


@dataclass
class _Account:
    """One line: its electricity bought and left, its location-based Scope 2, what covered it."""

    site_id: str
    kind: str
    bought_kwh: float
    location_kg: float
    location_electricity_kg: float
    room: _Room = field(default_factory=lambda: _Room(float("inf")))
    left_kwh: float = 0.0
    kwh: dict[str, float] = field(default_factory=lambda: {"certificate": 0.0, "contract": 0.0})
    contract_kg: float = 0.0
    unapplied_kwh: float = 0.0

    def __post_init__(self) -> None:
        self.left_kwh = self.bought_kwh

    @property
    def open_kwh(self) -> float:
        """What instruments may still cover (none on a line that net supplies electricity)."""
        return max(min(self.left_kwh, self.room.kwh), 0.0)

    def cover(self, row: RetirementRow, offered_kwh: float) -> float:
        """Cover what is left by up to `offered_kwh` of the retirement; the kWh used."""
        used = min(offered_kwh, self.open_kwh)
        self.left_kwh -= used
        self.room.kwh -= used
        self.kwh[row.kind] += used
        self.contract_kg += used * _kg_per_kwh(row)
        return used

    def figures(self, residual_kg_per_kwh: float) -> LineScope2:
        market_electricity = self.contract_kg + self.left_kwh * residual_kg_per_kwh
        other = self.location_kg - self.location_electricity_kg
        return LineScope2(
            site_id=self.site_id,
            kind=self.kind,
            location_kg=self.location_kg,
            market_kg=market_electricity + other,
            market_electricity_kg=market_electricity,
            electricity_kwh=self.bought_kwh,
            certificate_kwh=self.kwh["certificate"],
            contract_kwh=self.kwh["contract"],
            contract_kg=self.contract_kg,
            residual_kwh=self.left_kwh,
            unapplied_kwh=self.unapplied_kwh,
        )


def _cover_site(
    accounts: list[_Account], weights: list[float], row: RetirementRow, kwh: float
) -> float:
    """A retirement for the reported site itself: each line its weighted share, then what a
    line could not use goes to the lines with electricity left, in proportion to it (it was
    retired for all of them). The kWh used."""
    used = sum(a.cover(row, kwh * w) for a, w in zip(accounts, weights, strict=True))
    spare = kwh - used
    left = sum(a.open_kwh for a in accounts)
    if spare > 0 and left > 0:
        placed = min(spare, left)
        used += sum([a.cover(row, placed * a.open_kwh / left) for a in accounts])
    for account, weight in zip(accounts, weights, strict=True):
        account.unapplied_kwh += (kwh - used) * weight
    return used


def _accounts(report: CarbonReport) -> list[_Account]:
    room = _Room(max(report.energy_kwh.electricity, 0.0))
    if not report.lines:
        electricity = report.energy_kwh.electricity
        el_kg = report.scope2_electricity_kg
        return [_Account(report.site_id, report.kind, electricity, report.scope2_kg, el_kg, room)]
    return [
        _Account(
            line.site_id,
            line.kind,
            line.energy_kwh.electricity,
            line.scope2_kg,
            line.scope2_electricity_kg,
            room,
        )
        for line in report.lines
    ]


def _line_of(tree: SiteTree, report: CarbonReport, row: RetirementRow) -> int | None:
    """The line a retirement was made for (its site or one above it, below the reported
    site), or None for one made for the reported site itself."""
    chain = [s.id for s in tree.chain(row.site_id)]
    below = chain[chain.index(report.site_id) + 1 :] if report.site_id in chain else chain
    for index, line in enumerate(report.lines):
        if line.kind not in OWN_LINES and line.site_id in below:
            return index
    return None


def _own_weights(report: CarbonReport, accounts: list[_Account]) -> list[float]:
    """How a retirement for the reported site itself is split over its lines."""
    if report.kind == "building" and all(line.area_share is not None for line in report.lines):
        return [line.area_share or 0.0 for line in report.lines]
    total = sum(a.open_kwh for a in accounts)
    return [a.open_kwh / total if total else 1.0 / len(accounts) for a in accounts]


def market_scope2(
    tree: SiteTree,
    report: CarbonReport,
    rows: list[RetirementRow],
    factor: tuple[float, str] | None,
) -> MarketScope2:
    """Both Scope 2 figures of a report and of each of its lines, given the retirements for
    its sites and period; the lines add up to the report. Certificates cover first, then each
    contract claim in turn at its own supplier's factor."""
    value, source = factor or (report.factors.grid_kg_per_kwh, NO_RESIDUAL_MIX)
    accounts = _accounts(report)
    weights = _own_weights(report, accounts)
    uses = []
    for row in _ordered(rows):
        kwh = row.mwh * 1000.0 * _share(row, report.start, report.end)
        index = _line_of(tree, report, row) if report.lines else 0
        if index is None:
            used = _cover_site(accounts, weights, row, kwh)
        else:
            used = accounts[index].cover(row, kwh)
            accounts[index].unapplied_kwh += kwh - used
        uses.append(_use(row, kwh, used))
    lines = [account.figures(value) for account in accounts]
    market_electricity = sum(line.market_electricity_kg for line in lines)
    return MarketScope2(
        location_kg=report.scope2_kg,
        market_kg=report.scope2_kg - report.scope2_electricity_kg + market_electricity,
        location_electricity_kg=report.scope2_electricity_kg,
        market_electricity_kg=market_electricity,
        heat_kg=report.scope2_heat_kg,
        cooling_kg=report.scope2_cooling_kg,
        electricity_kwh=sum(line.electricity_kwh for line in lines),
        certificate_kwh=sum(line.certificate_kwh for line in lines),
        contract_kwh=sum(line.contract_kwh for line in lines),
        contract_kg=sum(line.contract_kg for line in lines),
        residual_kwh=sum(line.residual_kwh for line in lines),
        residual_mix_kg_per_kwh=value,
        residual_mix_source=source,
        unapplied_kwh=sum(line.unapplied_kwh for line in lines),
        instruments=uses,
        lines=lines if report.lines else [],
    )


def _ordered(rows: list[RetirementRow]) -> list[RetirementRow]:
    """Certificates, then contract claims, each in the order the store gives them."""
    return [r for r in rows if r.kind == "certificate"] + [r for r in rows if r.kind == "contract"]


def _use(row: RetirementRow, in_period_kwh: float, applied_kwh: float) -> InstrumentUse:
    kg_per_kwh = _kg_per_kwh(row)
    return InstrumentUse(
        retirement_id=row.id,
        instrument_id=row.instrument_id,
        kind="certificate" if row.kind == "certificate" else "contract",
        site_id=row.site_id,
        registry=row.registry,
        project=row.project,
        technology=row.technology,
        location=row.location,
        vintage=row.vintage,
        serials=_serials(row),
        period=row.period_label,
        period_start=row.period_start,
        period_end=row.period_end,
        mwh=row.mwh,
        in_period_kwh=in_period_kwh,
        applied_kwh=applied_kwh,
        kg_per_kwh=kg_per_kwh,
        kg=applied_kwh * kg_per_kwh,
    )


async def with_market_scope2(
    conn: AsyncConnection, tree: SiteTree, report: CarbonReport
) -> CarbonReport:
    """The report with its market-based Scope 2 beside the location-based one, per line too."""
    sites = [s.id for s in tree.subtree(report.site_id)]
    rows = await retirements(conn, sites, report.start, report.end)
    dual = market_scope2(tree, report, rows, residual_mix(tree, report.site_id))
    notes = list(report.notes)
    if dual.residual_mix_source == NO_RESIDUAL_MIX and dual.residual_kwh > 0:
        notes.append(f"market-based Scope 2: {NO_RESIDUAL_MIX}")
    if dual.unapplied_kwh > 0.5:
        notes.append(
            f"market-based Scope 2: {dual.unapplied_kwh:,.0f} kWh of retired instruments exceed "
            "the electricity bought by the lines they were retired for, and are not applied"
        )
    by_site = {(line.site_id, line.kind): line for line in dual.lines}
    lines = [
        line.model_copy(update={"scope2_market_kg": by_site[(line.site_id, line.kind)].market_kg})
        for line in report.lines
    ]
    return report.model_copy(update={"scope2_market": dual, "notes": notes, "lines": lines})
