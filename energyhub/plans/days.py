"""Realized savings per local day over the steps a site's plans controlled, each side billed on
its own month-to-date peak from the local month's start (the month before a window is a lead-in),
per connection and summed. The one place the API, the pages, the scheduler's CO₂ account, the demo
and the benchmarks read a site's savings from."""

from __future__ import annotations

__all__ = [
    "MonthPeaks",
    "Sources",
    "days_of_parts",
    "month_lead_in",
    "over_days",
    "savings_by_day",
    "shared_peaks",
]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.localdays import month_start
from energyhub.optimize.scope import Scope
from energyhub.plans.comparison import KINDS, Comparison, DaySavings, Part, combine, compare
from energyhub.plans.counterfactual import ReadSpan, read_span
from energyhub.plans.parts import SpanFrames, controlled_reads, plan_parts
from energyhub.plans.realized import SIDES, Realized, SetpointTrack, combined, realize
from energyhub.plans.store import controlling_plans, plan_records
from energyhub.plans.stored import whole_days
from energyhub.scheduler.target import DemandTargetConfig
from energyhub.sites import SiteFile
from energyhub.store.db import Backend


def shared_peaks(shared_kw: pd.Series, days: Sequence[date], site: SiteFile) -> dict[date, float]:
    """Per local day: the highest metered import of its month through the end of that day on
    steps no side is compared on (no plan controlled them). Such a step is on the bill of every
    side alike — what the plan would have been billed against, and the rules too — so each side's
    month-to-date peak is at least it (monthly billing bills the month's highest step, whenever
    in the month it came)."""
    if shared_kw.empty:
        return dict.fromkeys(days, 0.0)
    local = pd.DatetimeIndex(shared_kw.index).tz_convert(site.tz)
    values = shared_kw.to_numpy(dtype=float)
    out = {}
    for day in days:
        month = (local.year == day.year) & (local.month == day.month)
        upto = month & (np.asarray(local.date) <= day) & np.isfinite(values)
        out[day] = float(values[upto].max()) if upto.any() else 0.0
    return out


@dataclass(slots=True)
class MonthPeaks:
    """One connection's month-to-date peak import as each bill has it, carried day to day: the
    accounts' (KINDS) and the realized sides' (SIDES), in the local month `month`."""

    month: tuple[int, int] | None
    kinds: dict[str, float]
    sides: dict[str, float]

    @classmethod
    def at(cls, month: tuple[int, int] | None, kw: float) -> MonthPeaks:
        return cls(month, dict.fromkeys(KINDS, kw), dict.fromkeys(SIDES, kw))

    def on(self, day: date, shared_kw: float) -> None:
        """Enter `day`: a new month's bill starts from nothing; every bill is at least the
        `shared_kw` of steps no side is compared on."""
        if self.month is not None and self.month != (day.year, day.month):
            self.kinds, self.sides = dict.fromkeys(KINDS, 0.0), dict.fromkeys(SIDES, 0.0)
        self.month = (day.year, day.month)
        self.kinds = {kind: max(kw, shared_kw) for kind, kw in self.kinds.items()}
        self.sides = {side: max(kw, shared_kw) for side, kw in self.sides.items()}


@dataclass(frozen=True, slots=True)
class Sources:
    """Where realized figures are read from: the store, the site file, the plans' inputs."""

    conn: AsyncConnection
    backend: Backend
    site: SiteFile
    inputs: pd.DataFrame
    foresight: bool = True
    track: SetpointTrack = field(default_factory=SetpointTrack)
    """Stores without SOC readings, tracked through their setpoints day after day."""
    reads: Mapping[str, ReadSpan] = field(default_factory=dict)
    """By scope id: its meters' telemetry read once over the days (a month's lead-in)."""
    target: DemandTargetConfig = field(default_factory=DemandTargetConfig)
    """The scheduler's demand-target settings, which perfect foresight's target follows."""


async def days_of_parts(
    parts: Sequence[Part],
    dt_h: float,
    peaks: dict[str, float],
    sources: Sources,
    shared_kw: Mapping[str, pd.Series] | None = None,
    carry: dict[str, MonthPeaks] | None = None,
) -> list[DaySavings]:
    """Per local day, every connection's accounts and realized figures summed. `peaks`: by grid
    node, the month-to-date peak every side starts from; `shared_kw`: by grid node, the metered
    import of steps no side is compared on (shared_peaks); `carry`: by grid node, each side's
    own month-to-date peak so far (MonthPeaks; overrides `peaks`), left at the end of the last
    day for a next call to go on from.

    Each day starts from each side's own month-to-date peak, except perfect foresight: it starts
    from where the site stood, the metered peak (and the metered SOC), so that a day's figure does
    not hang on the foresight solves of the days before it."""
    carry = {} if carry is None else carry
    by_day: dict[date, list[tuple[Comparison, Realized | None]]] = {}
    for scope, frame in parts:
        local = pd.DatetimeIndex(frame.index).tz_convert(sources.site.tz)
        dates = np.asarray(local.date)
        idle = (shared_kw or {}).get(scope.grid_node, pd.Series(dtype="float64"))
        shared = shared_peaks(idle, sorted(set(dates)), sources.site)
        node = scope.grid_node
        state = carry.setdefault(node, MonthPeaks.at(None, peaks.get(node, 0.0)))
        for day in sorted(set(dates)):
            steps = frame[dates == day]
            state.on(day, shared[day])
            comparison = compare(steps, scope, dt_h, dict(state.kinds))
            metered = state.kinds["actual"]
            state.kinds = {
                kind: max(kw, getattr(comparison, kind).peak_import_kw)
                for kind, kw in state.kinds.items()
            }
            state.sides["metered"] = metered  # perfect foresight starts from it too: realize
            realized = await realize(
                sources.conn, sources.backend, sources.site, scope, steps, sources.inputs,
                dict(state.sides), foresight=sources.foresight, track=sources.track,
                read=sources.reads.get(scope.id), target=sources.target,
            )  # fmt: skip
            if realized is not None and realized.peaks_kw:
                state.sides = dict(realized.peaks_kw)
            by_day.setdefault(day, []).append((comparison, realized))
    return [
        DaySavings(
            day=day,
            realized=combined([r for _, r in found]),
            **combine([c for c, _ in found]).model_dump(),
        )
        for day, found in sorted(by_day.items())
    ]


def over_days(days: Sequence[DaySavings]) -> Realized | None:
    """The days' realized figures summed (None if any day has none)."""
    if not days or any(d.realized is None for d in days):
        return None
    total = combined([d.realized for d in days])
    return None if total is None else total.model_copy(update={"steps": sum(d.steps for d in days)})


@dataclass(frozen=True, slots=True)
class _Controlled:
    """What the site's plans controlled over a span: each connection's compared steps, the
    metered import of the steps no plan controlled (by grid node), the plans' prices, the step."""

    parts: list[Part]
    shared: dict[str, pd.Series]
    prices: pd.DataFrame
    step_s: int


async def _controlled(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    site_id: str,
    span: tuple[datetime, datetime],
) -> _Controlled:
    """The steps in `span` that the site's plans controlled, and the metered import of the other
    steps of their connections (every step of the span the meters saw, inside a plan's horizon or
    not: the bill's month peak counts them all)."""
    found: dict[str, tuple[Scope, list[pd.DataFrame]]] = {}
    inputs: list[pd.DataFrame] = []
    step_s = 0
    frames = SpanFrames(conn, backend, span)
    plan_ids = await controlling_plans(conn, site_id, span)
    records = await plan_records(conn, plan_ids)
    reads = await controlled_reads(conn, plan_ids, span)
    for plan_id in plan_ids:
        record = records[plan_id]
        parts, _ = await plan_parts(conn, backend, record, site, frames, reads[plan_id])
        inputs.append(reads[plan_id].inputs)
        for scope, frame in parts:
            inside = (frame.index >= span[0]) & (frame.index < span[1])
            keep = inside & frame["controlled"] & frame["actual_import_kw"].notna()
            found.setdefault(scope.grid_node, (scope, []))[1].append(frame[keep])
        step_s = record.step_s
    parts = []
    shared: dict[str, pd.Series] = {}
    for node, (scope, kept) in found.items():
        steps = pd.concat(kept).sort_index()
        steps = steps[~steps.index.duplicated(keep="last")]
        parts.append((scope, steps[steps["baseline_import_kw"].notna()]))
        imports = await _metered_imports(site, scope, frames, step_s)
        shared[node] = imports[~imports.index.isin(steps.index)].dropna()
    prices = pd.concat(inputs) if inputs else pd.DataFrame()
    prices = prices[~prices.index.duplicated(keep="last")].sort_index()
    return _Controlled(parts, shared, prices, step_s)


async def _metered_imports(
    site: SiteFile, scope: Scope, frames: SpanFrames, step_s: int
) -> pd.Series:
    """A connection's metered import on every step of the span of `frames` (NaN: no data, or
    meters that measure only part of it)."""
    index = frames.grid(pd.Timedelta(seconds=step_s))
    if len(index) < 2 or site.unmetered_electricity(scope.id):
        return pd.Series(np.nan, index=index, dtype="float64")
    step = pd.Timedelta(seconds=step_s)
    imports: pd.Series = (await frames.frame(scope, index, step))["import_kw"]
    return imports.astype("float64")


async def _carried(found: _Controlled, before: datetime, sources: Sources) -> dict[str, MonthPeaks]:
    """Each connection's month-to-date peaks at `before` from the steps of `found` before it (a
    lead-in from the local month's start): its days computed as savings_by_day computes them,
    then raised to every step no plan controlled, which is on every side's bill."""
    carry: dict[str, MonthPeaks] = {}
    parts = [(s, f[f.index < before]) for s, f in found.parts if (f.index < before).any()]
    step = pd.Timedelta(seconds=found.step_s)
    reads = {  # the lead-in's whole local days: its stores are valued over them (stored.py)
        scope.id: await read_span(
            sources.conn, sources.backend, sources.site, scope,
            whole_days(pd.DatetimeIndex(frame.index), sources.site.tz, step),
        )
        for scope, frame in parts
        if len(frame) > 1
    }  # fmt: skip
    lead_in = Sources(sources.conn, sources.backend, sources.site, found.prices, foresight=False,
                      track=sources.track, reads=reads)  # fmt: skip
    await days_of_parts(parts, found.step_s / 3600, {}, lead_in, found.shared, carry)
    month = pd.Timestamp(before).tz_convert(sources.site.tz)
    for node, imports in found.shared.items():
        earlier = imports[imports.index < before]
        if len(earlier):
            state = carry.setdefault(node, MonthPeaks.at((month.year, month.month), 0.0))
            state.on(month.date(), float(earlier.max()))
    return carry


async def month_lead_in(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    site_id: str,
    before: datetime,
) -> dict[str, MonthPeaks]:
    """Each connection's month-to-date peaks at `before` (by grid node), each side's its own from
    the local month's start (`_carried`); a connection without any metered step of the month
    before `before` is absent."""
    lead = month_start(pd.Timestamp(before), site.tz).to_pydatetime()
    if lead >= before:
        return {}
    found = await _controlled(conn, backend, site, site_id, (lead, before))
    return await _carried(found, before, Sources(conn, backend, site, found.prices, False))


async def savings_by_day(
    conn: AsyncConnection,
    backend: Backend,
    site_id: str,
    window: tuple[datetime, datetime],
    *,
    site: SiteFile,
    foresight: bool = True,
    lead_in: bool = True,
    target: DemandTargetConfig | None = None,
) -> list[DaySavings]:
    """Realized savings per local day of the steps in `window` that the site's plans controlled.

    Each side starts from its own month-to-date peak, read from the local month's start: the
    steps of the month before `window` are a lead-in (`_carried`: the counterfactual on them, no
    perfect-foresight solve), so a day reads the same queried alone or inside a longer window of
    its month. `lead_in` False skips it, every side starting from the window's own steps: for a
    caller that reads only what does not hang on the month's peak (CO₂, energy), on a clock.
    `target`: the scheduler's demand-target settings, which perfect foresight's target follows
    (default: their defaults)."""
    lead = month_start(pd.Timestamp(window[0]), site.tz).to_pydatetime()
    if not lead_in:
        lead = window[0]
    found = await _controlled(conn, backend, site, site_id, (min(lead, window[0]), window[1]))
    parts = [(s, f[f.index >= window[0]]) for s, f in found.parts]
    if not any(len(f) for _, f in parts):
        return []
    sources = Sources(
        conn, backend, site, found.prices, foresight, target=target or DemandTargetConfig()
    )
    carry = await _carried(found, window[0], sources)
    return await days_of_parts(
        [p for p in parts if len(p[1])], found.step_s / 3600, {}, sources, found.shared, carry
    )
