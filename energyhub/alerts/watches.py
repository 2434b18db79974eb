"""Compile rules into watches: one debounced check per site, rule and subject (meter, battery)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from energyhub.alerts.checks import (
    Check,
    ForecastCheck,
    IngestCheck,
    LimitCheck,
    NightBaseCheck,
    SilenceCheck,
    SocCheck,
)
from energyhub.alerts.debounce import Debounce
from energyhub.alerts.rules import (
    AlertRules,
    ForecastRule,
    IngestRule,
    LimitRule,
    NightBaseRule,
    Rule,
    RuleName,
    Severity,
    SilenceRule,
    SocRule,
    effective,
)
from energyhub.alerts.validate import kind_of, rule_problems
from energyhub.sites import Battery, Building, Park, SiteFile

log = logging.getLogger(__name__)

MeterIds = dict[tuple[str, str], int]
"""Active meter row ids by (site id, meter name)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where an alert belongs: its site, park and building (None for a park-wide alert)."""

    site_id: str
    park_id: str
    building_id: str | None


@dataclass(slots=True)
class Watch:
    """One rule applied to one subject of one site, with its debounce state."""

    target: Target
    rule: RuleName
    subject: str
    severity: Severity
    check: Check
    debounce: Debounce
    load_meters: tuple[int, ...] = field(default=())

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.target.site_id, self.rule, self.subject)


WatchMaker = Callable[[Rule, RuleName, str, Check], Watch]


def grid_meters(owner: Park | Building, park: Park, ids: MeterIds) -> tuple[int, ...]:
    """Grid-side electric meters (top-level, not an asset's) of a building, or of a whole park."""
    owners: list[Park | Building] = [owner]
    if isinstance(owner, Park):
        owners += park.buildings
    found = []
    for o in owners:
        for m in o.meters:
            if m.carrier == "electricity" and m.submeter_of is None and m.asset is None:
                if m.quantity in ("power_kw", "energy_kwh") and (o.id, m.id) in ids:
                    found.append(ids[(o.id, m.id)])
    return tuple(sorted(found))


def _debounce(rule: Rule) -> Debounce:
    return Debounce(for_s=rule.for_min * 60, clear_s=rule.clear_min * 60)


def _watches_of(
    site: SiteFile, park: Park, owner: Park | Building, rules: AlertRules | None, ids: MeterIds
) -> Iterator[Watch]:
    kind = kind_of(owner)
    target = Target(owner.id, park.id, None if isinstance(owner, Park) else owner.id)
    load = grid_meters(owner, park, ids)

    def watch(rule: Rule, name: RuleName, subject: str, check: Check) -> Watch:
        return Watch(target, name, subject, rule.severity, check, _debounce(rule), load)

    silence = effective(kind, rules, "silence")
    if isinstance(silence, SilenceRule):
        names = silence.meters or [m.id for m in owner.meters]
        for name in names:
            if (owner.id, name) in ids:
                check: Check = SilenceCheck(ids[(owner.id, name)], name, silence.silent_s)
                yield watch(silence, "silence", name, check)
    limit = effective(kind, rules, "limit")
    if isinstance(limit, LimitRule) and load:
        limit_kw = limit.limit_kw or (owner.grid.import_max_kw if owner.grid else None)
        if limit_kw is not None:
            check = LimitCheck(load, limit_kw, limit.share, limit.hysteresis)
            yield watch(limit, "limit", "", check)
    night = effective(kind, rules, "night_base")
    if isinstance(night, NightBaseRule) and load:
        seeded = night.min_nights if night.usual_kw is not None else 0
        check = NightBaseCheck(
            owner.id, site.tz, night.start_h, night.end_h % 24, night.margin, night.min_nights,
            usual_kw=night.usual_kw, nights=seeded,
        )  # fmt: skip
        yield watch(night, "night_base", "", check)
    forecast = effective(kind, rules, "forecast")
    if isinstance(forecast, ForecastRule) and load and isinstance(owner, Building):
        check = ForecastCheck(owner.id, forecast.band, forecast.min_band_kw)
        yield watch(forecast, "forecast", "", check)
    soc = effective(kind, rules, "soc")
    if isinstance(soc, SocRule):
        yield from _soc_watches(owner, soc, ids, watch)
    ingest = effective(kind, rules, "ingest")
    if isinstance(ingest, IngestRule):
        every = tuple(i for (site_id, _), i in ids.items() if site_id in _site_ids(park))
        check = IngestCheck(park.id, every, ingest.max_lag_s, ingest.max_rejects_per_min)
        yield watch(ingest, "ingest", "", check)


def _site_ids(park: Park) -> set[str]:
    return {park.id, *(b.id for b in park.buildings)}


def _soc_watches(
    owner: Park | Building, rule: SocRule, ids: MeterIds, watch: WatchMaker
) -> Iterator[Watch]:
    for asset in owner.assets:
        if not isinstance(asset, Battery):
            continue
        if rule.assets is not None and asset.id not in rule.assets:
            continue
        for meter in owner.meters:
            key = (owner.id, meter.id)
            if meter.quantity == "soc_pct" and meter.asset == asset.id and key in ids:
                low = max(asset.soc_min * 100 - rule.margin_pct, 0.0)
                high = min(asset.soc_max * 100 + rule.margin_pct, 100.0)
                check = SocCheck(ids[key], asset.id, low, high, rule.hysteresis_pct)
                yield watch(rule, "soc", asset.id, check)


def build_watches(site: SiteFile, overrides: dict[str, AlertRules], ids: MeterIds) -> list[Watch]:
    """Every watch of the site tree; an override with problems falls back to the file's rules."""
    watches: list[Watch] = []
    for p, park in enumerate(site.city.parks):
        owners: list[tuple[str, Park | Building]] = [(f"city.parks[{p}]", park)]
        owners += [(f"city.parks[{p}].buildings[{b}]", bl) for b, bl in enumerate(park.buildings)]
        for path, owner in owners:
            rules = overrides.get(owner.id, owner.alerts)
            problems = list(rule_problems(path, owner, rules))
            if problems:
                log.error(
                    "alert rules of %s ignored, using the site file's: %s", owner.id, problems
                )
                rules = owner.alerts
            watches.extend(_watches_of(site, park, owner, rules, ids))
    return watches
