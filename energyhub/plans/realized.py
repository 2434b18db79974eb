"""Realized value of plans, measured against the meters.

For the steps a plan controlled:
- the counterfactual is the rule-based baseline (energyhub.optimize.baseline) re-run on the
  metered demand and PV: what the site would have paid and emitted without the plan (what the
  rules cannot serve priced in, never free);
- realized savings are the counterfactual minus the metered bill (and CO₂), the metered side
  credited with the value of what it left in storage (energyhub.plans.stored), valued once over
  the whole compared window;
- perfect foresight is the plan re-solved on the metered demand from the state the meters were
  in, run by contiguous run: each store from its SOC at the run's start to its SOC at the end
  (metered; a store without readings where its setpoints drove it), the demand charge on the rise
  above the metered month-to-date peak, the bill's terms alone in its objective; like the plans,
  it carries the month's demand target, here the lowest peak the metered coming days force
  (energyhub.plans.foresight_target), and is billed as the meters are. A schedule holding the
  month below that target pays more for energy over those days than it saves on the demand
  charge, so a shave below it is on no month's bill: credited the same way, the re-solve is the
  most any plan could have saved over those steps, so the capture ratio, realized ÷
  perfect-foresight savings, is a share.
Costs are the bill's terms (energy, demand on the rise above each side's own month-to-date peak,
gas, carbon price); a start or degradation cost of the optimizer is not on any bill and is left
out. Each side's terms are kept (energyhub.plans.figures).
"""

from __future__ import annotations

__all__ = [
    "SIDES",
    "Realized",
    "SetpointTrack",
    "Side",
    "combined",
    "finish",
    "foresight_site",
    "realize",
    "setpoint_levels",
    "tracked_soc_kwh",
]

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.errors import EnergyhubError
from energyhub.optimize import plan
from energyhub.optimize.baseline import UNSERVED_CNY_PER_KWH, compute_baseline
from energyhub.optimize.errors import InfeasiblePlanError
from energyhub.optimize.forecast import ForecastError
from energyhub.optimize.inputs import read_inputs
from energyhub.optimize.network import Context
from energyhub.optimize.plan import UNSERVED_TERM
from energyhub.optimize.scope import Scope, resolve_scope
from energyhub.optimize.tariffs import (
    billing_months,
    demand_cny,
    demand_target_column,
    month_peak_column,
)
from energyhub.optimize.unserved import UNSERVED_CARRIERS, unserved_column
from energyhub.plans.bill import account
from energyhub.plans.counterfactual import ReadSpan, metered_inputs, metered_outdoor
from energyhub.plans.figures import SIDES, Realized, Side, finish
from energyhub.plans.foresight_target import TargetSource, foresight_target
from energyhub.plans.metered import Storage, soc_fractions, storages
from energyhub.plans.stored import (
    StoreValue,
    day_context,
    idle_losses_kwh,
    store_values,
    stored_value,
    weather_valued,
    whole_days,
)
from energyhub.plans.tracked import SetpointTrack, tracked_soc_kwh
from energyhub.scheduler.target import DemandTargetConfig
from energyhub.sites import Asset, Building, SiteFile
from energyhub.store.db import Backend

BILLED_TERMS = ("energy", "demand", "gas", "carbon")
UNSERVED_NOTED_KWH = 0.5
"""Perfect foresight's unserved heat or cooling below this is solver noise, not noted."""
PERFECT_FORESIGHT_TIME_LIMIT_S = 30.0
"""A re-solve on metered demand is a check, not a plan: it may stop at this limit (then it is
reported with the solver's gap as it stands)."""


def runs(index: pd.DatetimeIndex, step: pd.Timedelta) -> list[pd.DatetimeIndex]:
    """Contiguous runs of at least two steps."""
    if len(index) == 0:
        return []
    breaks = np.flatnonzero(np.diff(index.as_unit("ns").asi8) != step.value) + 1
    return [pd.DatetimeIndex(r) for r in np.split(np.asarray(index), breaks) if len(r) >= 2]


def _context(scope: Scope, local: pd.DataFrame, site: SiteFile, peak_kw: float) -> Context:
    """The rules' context over the metered inputs, the month-to-date peak set to `peak_kw`."""
    frame = local.copy()
    frame[month_peak_column(scope.grid_node)] = peak_kw
    return Context.bare(scope, read_inputs(frame, site.tz))


def foresight_site(site: SiteFile, socs: tuple[dict[str, float], dict[str, float]]) -> SiteFile:
    """The site file perfect foresight is solved on: each store in `socs` from its SOC fraction
    at the window's start to the one at its end, and no cost that is on no bill (a battery's
    throughput cost, a CHP's start cost), so that the bound is on the bill the sides are
    compared on: a re-solve that pays for cycles the meters do not bill could save less than
    a plan that cycles more."""

    def fixed(asset: Asset) -> Asset:
        update: dict[str, float] = {}
        if asset.id in socs[0]:
            update["soc_initial"] = socs[0][asset.id]
        if asset.id in socs[1]:
            update["soc_final"] = socs[1][asset.id]
        if getattr(asset, "throughput_cost_cny_per_kwh", 0.0) > 0:
            update["throughput_cost_cny_per_kwh"] = 0.0
        if getattr(asset, "start_cost_cny", 0.0) > 0:
            update["start_cost_cny"] = 0.0
        return asset.model_copy(update=update) if update else asset

    return _with_assets(site, fixed)


async def _perfect_foresight(
    site: SiteFile,
    scope: Scope,
    local: pd.DataFrame,
    socs: tuple[dict[str, float], dict[str, float]],
    tracked: frozenset[str],
    peaks_kw: tuple[float, float | None],
) -> tuple[tuple[Side, dict[str, float]] | None, float, list[str]]:
    """The re-solve from the SOC each store started the window at to the one it ended at (the
    metered SOC; a store without readings where its setpoints drove it), from the metered
    month-to-date peak, with the month's demand target (`peaks_kw`; None: no target): its side
    (billed as the meters are, on the rise above the month-to-date peak), its storage changes
    (kWh by store) and its peak import. If a store without readings cannot be moved on the
    metered demand as its setpoints moved it (`tracked`: those stores), they are held at their
    soc_initial → soc_final (noted)."""
    peak_kw, target_kw = peaks_kw
    notes: list[str] = []
    tries = [socs]
    if tracked:
        start, end = ({a: v for a, v in f.items() if a not in tracked} for f in socs)
        tries.append((start, end))
    frame = local.copy()
    frame[month_peak_column(scope.grid_node)] = peak_kw
    if target_kw is not None:
        frame[demand_target_column(scope.grid_node)] = target_kw
    result = None
    for i, ends in enumerate(tries):
        fixed = foresight_site(site, (ends[0], ends[1]))
        try:
            result = await asyncio.to_thread(
                plan, fixed, frame, level=scope.level, site_id=scope.id,
                time_limit_s=PERFECT_FORESIGHT_TIME_LIMIT_S,
            )  # fmt: skip
            break
        except InfeasiblePlanError as exc:
            if i + 1 < len(tries):
                notes.append(
                    f"{scope.id}: perfect foresight cannot move {', '.join(sorted(tracked))} on "
                    f"the metered demand as their setpoints did ({exc}); held at their soc_initial "
                    "→ soc_final instead, so their change is not valued alike on both sides"
                )
                continue
            notes.append(f"{scope.id}: no perfect-foresight plan on the metered demand: {exc}")
            return None, peak_kw, notes
        except EnergyhubError as exc:
            notes.append(f"{scope.id}: no perfect-foresight plan on the metered demand: {exc}")
            return None, peak_kw, notes
    assert result is not None  # noqa: S101 - the loop returns or breaks with one
    changes = {}
    for asset in storages(resolve_scope(fixed, scope.level, scope.id)):
        column = f"{asset.id}:soc_kwh"
        if column in result.schedule:
            start_kwh = asset.soc_initial * asset.energy_kwh
            changes[asset.id] = float(result.schedule[column].iloc[-1]) - start_kwh
    imports = result.schedule.get(f"{scope.grid_node}:import_kw")
    terms = {t: result.cost_cny.get(t, 0.0) for t in BILLED_TERMS}
    if imports is not None:  # the bill's demand charge: the target frees nothing on it
        months = billing_months(pd.DatetimeIndex(local.index))
        peak_from = peak_kw if scope.grid.demand_billing == "monthly" else 0.0
        terms["demand"] = demand_cny(scope.grid, imports.to_numpy(dtype=float), months, peak_from)
    side = Side(
        **{f"{t}_cny": v for t, v in terms.items()},
        unserved_cny=result.cost_cny.get(UNSERVED_TERM, 0.0),
        co2_kg=result.co2_kg,
    )
    notes += _unserved_notes(scope, local, result.schedule)
    peak = max(peak_kw, float(imports.max()) if imports is not None else 0.0)
    if result.status != "optimal":
        notes.append(
            f"{scope.id}: the perfect-foresight re-solve stopped at {result.status} "
            f"(gap {result.gap if result.gap is not None else 'unknown'}): an upper bound"
        )
    return (side, changes), peak, notes


def metered_unserved_kwh(scope: Scope, local: pd.DataFrame) -> dict[str, float]:
    """By carrier, the heat and cooling demand the meters show the plant did not serve over the
    steps of `local` (its `<node>:unserved_<carrier>_kw` columns: energyhub.scheduler.demand)."""
    step_h = pd.Timedelta(local.index[1] - local.index[0]).total_seconds() / 3600
    return {
        carrier: sum(
            float(local[c].sum())
            for c in (unserved_column(n.id, carrier) for n in scope.nodes)
            if c in local
        )
        * step_h
        for carrier in UNSERVED_CARRIERS
    }


def _unserved_notes(scope: Scope, local: pd.DataFrame, schedule: pd.DataFrame) -> list[str]:
    """What perfect foresight left unserved, by carrier, beside what the meters show the plant
    left unserved (the most it may: energyhub.optimize.unserved)."""
    step_h = pd.Timedelta(local.index[1] - local.index[0]).total_seconds() / 3600
    shown = metered_unserved_kwh(scope, local)
    notes = []
    for carrier in UNSERVED_CARRIERS:
        columns = [unserved_column(n.id, carrier) for n in scope.nodes]
        left = sum(float(schedule[c].sum()) for c in columns if c in schedule) * step_h
        metered = shown[carrier]
        if left > UNSERVED_NOTED_KWH:
            notes.append(
                f"{scope.id}: perfect foresight leaves {left:,.0f} kWh of {carrier} unserved, "
                f"priced at {UNSERVED_CNY_PER_KWH[carrier]:g} CNY/kWh as in the counterfactual: "
                f"the meters show {metered:,.0f} kWh of {carrier} demand the plant did not serve "
                "(a store charging while its machines were at their limit), and the stores end "
                "where the meters left them"
            )
    return notes


@dataclass
class _Run:
    """One contiguous run's figures before storage is valued: the sides and each side's storage
    changes (kWh by store; perfect foresight's None if not solved)."""

    found: Realized
    changes: dict[str, dict[str, float] | None]


def _valued(runs: Sequence[_Run], notes: list[str], values: Mapping[str, StoreValue]) -> Realized:
    """The runs summed, each side credited for its storage changes over all of them at the
    stores' `values` (of the whole local days: stored.day_context; not run by run: a battery
    charged in one run and discharged in a later one of the same window moved no energy out of
    the window)."""
    total = runs[0].found
    for run in runs[1:]:
        total = (total + run.found).model_copy(update={"steps": total.steps + run.found.steps})
    sides = dict(total.breakdown)
    for name in ("counterfactual", "metered", "perfect_foresight"):
        each = [r.changes.get(name) for r in runs]
        if name not in sides or any(c is None for c in each):
            continue
        changes: dict[str, float] = {}
        for run_changes in each:
            for asset, kwh in (run_changes or {}).items():
                changes[asset] = changes.get(asset, 0.0) + kwh
        cny, kg = stored_value(changes, values)
        kwh = sum(changes[a] for a in changes if a in values)
        sides[name] = sides[name].model_copy(
            update={"stored_kwh": kwh, "stored_cny": cny, "stored_kg": kg}
        )
    valued = finish(
        steps=total.steps, sides=sides, notes=list(dict.fromkeys([*notes, *total.notes]))
    )
    return valued.model_copy(update={"peaks_kw": runs[-1].found.peaks_kw})


async def realize(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    scope: Scope,
    frame: pd.DataFrame,
    plan_inputs: pd.DataFrame,
    month_peak_kw: float | Mapping[str, float],
    *,
    foresight: bool = True,
    track: SetpointTrack | None = None,
    read: ReadSpan | None = None,
    target: DemandTargetConfig | None = None,
) -> Realized | None:
    """Realized figures of one connection over the steps of `frame` (a compared frame, UTC) that
    have readings of every input; None when it has fewer than two steps. `month_peak_kw` is the
    month-to-date peak the steps start from, one for every side or one per side (SIDES; perfect
    foresight always starts from the metered side's, as it starts from its SOC); `track`
    carries stores tracked through their setpoints from one call to the next (in time order);
    `read` the scope's telemetry already read over a span holding the steps; `target` the
    scheduler's demand-target settings, which perfect foresight's target follows (default: its
    defaults)."""
    if len(frame) < 2:
        return None
    track = SetpointTrack() if track is None else track
    index = pd.DatetimeIndex(frame.index)
    step = pd.Timedelta(np.diff(index.as_unit("ns").asi8).min(), "ns")
    span = pd.date_range(index[0], index[-1], freq=step)
    try:
        metered = await metered_inputs(conn, backend, site, scope, span, plan_inputs, read)
    except ForecastError as exc:
        return _unavailable(f"{scope.id}: no counterfactual: {exc}")
    wanted = span.isin(index)
    complete = metered.frame.notna().all(axis=1).to_numpy() & wanted
    notes = list(dict.fromkeys(metered.notes))
    if (lacking := int((wanted & ~complete).sum())) > 0:
        missing = metered.frame.columns[metered.frame.loc[wanted].isna().any()]
        notes.append(
            f"{scope.id}: {lacking} step(s) without readings of {', '.join(missing)} left out"
        )
    peaks = (
        dict.fromkeys(SIDES, month_peak_kw)
        if isinstance(month_peak_kw, float | int)
        else dict(month_peak_kw)
    )
    found: list[_Run] = []
    source = TargetSource(backend, plan_inputs, target or DemandTargetConfig(), read)
    for run in runs(span[complete], step):
        frames = (frame.loc[run], metered.frame.loc[run])
        how = (foresight, track, source)
        found.append(await _realize_run(conn, site, scope, frames, peaks, how))
        peaks = found[-1].found.peaks_kw
    if not found:
        return _unavailable(f"{scope.id}: no counterfactual: " + "; ".join(notes[-1:]))
    days = whole_days(index, site.tz, step)
    outdoor = metered.frame.get("outdoor_c")
    if weather_valued(scope):  # the whole days' temperature, as far as it has been metered
        metered_c = await metered_outdoor(conn, backend, site, scope, days, read)
        outdoor = outdoor if metered_c is None else metered_c
    values = store_values(day_context(scope, days, site.tz, plan_inputs, outdoor))
    return _valued(found, notes, values)


async def _realize_run(
    conn: AsyncConnection,
    site: SiteFile,
    scope: Scope,
    frames: tuple[pd.DataFrame, pd.DataFrame],
    peaks: dict[str, float],
    how: tuple[bool, SetpointTrack, TargetSource],
) -> _Run:
    """One contiguous run of steps: (compared frame, metered inputs) → its figures; `how`:
    whether to re-solve with perfect foresight, the setpoint track of stores without SOC, and
    where the re-solve's demand target is read from."""
    part, inputs = frames
    foresight, track, source = how
    site, scope = compared_bill(site, scope)
    step = pd.Timedelta(part.index[1] - part.index[0])
    local = inputs.copy()
    local.index = pd.DatetimeIndex(local.index).tz_convert(site.tz)
    ctx = _context(scope, local, site, peaks["counterfactual"])
    base = compute_baseline(ctx)
    first, after = pd.Timestamp(part.index[0]), pd.Timestamp(part.index[-1]) + step
    socs = (
        await soc_fractions(conn, scope, first, step),
        await soc_fractions(conn, scope, after, step),
    )
    bill = account(
        part["actual_import_kw"], part["actual_gas_kw"], part, scope, step.total_seconds() / 3600,
        peaks["metered"],
    )  # fmt: skip
    sizes = {a.id: a.energy_kwh for a in storages(scope)}
    left = metered_unserved_kwh(scope, local)  # priced on the meters' side as on the others
    changes: dict[str, dict[str, float] | None] = {
        "metered": {a: (socs[1][a] - socs[0][a]) * sizes[a] for a in socs[0] if a in socs[1]},
        "perfect_foresight": None,
    }
    sides = {
        "counterfactual": Side(
            **{f"{t}_cny": base.cost_cny[t] for t in (*BILLED_TERMS, "unserved")},
            co2_kg=base.co2_kg,
        ),
        "metered": Side(
            energy_cny=bill.energy_cny, demand_cny=bill.demand_cny, gas_cny=bill.gas_cny,
            carbon_cny=bill.carbon_cny, co2_kg=bill.co2_kg,
            unserved_cny=sum(UNSERVED_CNY_PER_KWH[c] * kwh for c, kwh in left.items()),
        ),
    }  # fmt: skip
    after_peaks = {
        "counterfactual": max(peaks["counterfactual"], base.peak_import_kw),
        "metered": max(peaks["metered"], bill.peak_import_kw),
        "perfect_foresight": peaks["perfect_foresight"],
    }
    notes = [
        f"{scope.id}: the rules leave {kwh:,.0f} kWh of {carrier} unserved, priced at "
        f"{UNSERVED_CNY_PER_KWH[carrier]:g} CNY/kWh in the counterfactual"
        for carrier, kwh in base.unserved_kwh.items()
        if kwh > 1e-6
    ] + [
        f"{scope.id}: the meters show {kwh:,.0f} kWh of {carrier} demand the plant did not serve "
        "(a store charging while its machines were at their limit), priced at "
        f"{UNSERVED_CNY_PER_KWH[carrier]:g} CNY/kWh on the metered side as in the counterfactual"
        for carrier, kwh in left.items()
        if kwh > UNSERVED_NOTED_KWH
    ]
    tracked: dict[str, tuple[float, float]] = {}
    if unread := [a for a in storages(scope) if a.id not in (changes["metered"] or {})]:
        tracked = await setpoint_levels(conn, unread, (first, after), step, track)
        sent = {a: end - start for a, (start, end) in tracked.items()}
        changes["metered"] = {**(changes["metered"] or {}), **sent}
        if sent:
            notes.append(
                f"{scope.id}: no SOC readings of {', '.join(sorted(sent))}: what the meters left "
                "in them is estimated from the setpoints sent"
            )
        if unvalued := sorted(a.id for a in unread if a.id not in sent):
            notes.append(
                f"{scope.id}: no SOC readings or setpoints of {', '.join(unvalued)}: what the "
                "meters left in them is not valued"
            )
    stores = {a.id: a for a in storages(scope)}
    ends = tuple(
        {**soc, **{a: _fraction(stores[a], kwh[i]) for a, kwh in tracked.items()}}
        for i, soc in enumerate(socs)
    )
    hours = len(part) * step.total_seconds() / 3600  # the counterfactual's idle stores lose too
    changes["counterfactual"] = idle_losses_kwh(list(stores.values()), ends[0], hours)
    if foresight:
        moved = frozenset(tracked)
        target = await foresight_target(
            conn, (site, foresight_site), scope, (first, step, ends[0]), (moved, track), source
        )
        notes += target.notes
        solved, peak, more = await _perfect_foresight(
            site, scope, local, (ends[0], ends[1]), moved, (peaks["metered"], target.target_kw)
        )
        if solved is not None:
            sides["perfect_foresight"], changes["perfect_foresight"] = solved
            after_peaks["perfect_foresight"] = peak
        notes += more
    found = finish(steps=len(part), sides=sides, notes=notes)
    return _Run(found.model_copy(update={"peaks_kw": after_peaks}), changes)


def _fraction(store: Storage, kwh: float) -> float:
    return min(max(kwh / store.energy_kwh, store.soc_min), store.soc_max)


async def setpoint_levels(
    conn: AsyncConnection,
    stores: Sequence[Storage],
    span: tuple[pd.Timestamp, pd.Timestamp],
    step: pd.Timedelta,
    track: SetpointTrack | None = None,
) -> dict[str, tuple[float, float]]:
    """The energy (kWh) in stores without SOC readings at the start and the end of `span` as
    their setpoints drove them: tracked through every setpoint since the store's first
    (SetpointTrack, `track` if given), so that a store the setpoints keep asking to discharge is
    empty after it was emptied, not emptied again each day. Only stores with a setpoint in
    `span` (a hydrogen store's are sent with its electrolyzer's and fuel cell's, from the same
    plan)."""
    track = SetpointTrack() if track is None else track
    hours = step.total_seconds() / 3600
    await track.advance(conn, stores, span[0], hours)
    before = {s.id: track.level_kwh[s.id] for s in stores}
    inside = await track.advance(conn, stores, span[1], hours)
    return {s.id: (before[s.id], track.level_kwh[s.id]) for s in stores if inside[s.id]}


async def setpoint_changes(
    conn: AsyncConnection,
    stores: Sequence[Storage],
    span: tuple[pd.Timestamp, pd.Timestamp],
    step: pd.Timedelta,
    track: SetpointTrack | None = None,
) -> dict[str, float]:
    """SOC changes (kWh) over `span` of stores without SOC readings as their setpoints drove
    them (setpoint_levels)."""
    levels = await setpoint_levels(conn, stores, span, step, track)
    return {a: end - start for a, (start, end) in levels.items()}


def _with_assets(site: SiteFile, change: Callable[[Asset], Asset]) -> SiteFile:
    """A copy of the site file with `change` applied to every asset of every park and building."""

    def fixed(assets: Sequence[Asset]) -> list[Asset]:
        return [change(a) for a in assets]

    parks = [
        park.model_copy(
            update={
                "assets": fixed(park.assets),
                "buildings": [
                    b.model_copy(update={"assets": fixed(b.assets)}) for b in park.buildings
                ],
            }
        )
        for park in site.city.parks
    ]
    return site.model_copy(update={"city": site.city.model_copy(update={"parks": parks})})


def compared_bill(site: SiteFile, scope: Scope) -> tuple[SiteFile, Scope]:
    """The site and scope the counterfactual and perfect foresight of `scope` are billed on: the
    bill the meters' side has, the scope's own connection. A park's plan also bills each
    building's own `grid:` (its demand charge, on the building's own peak), but plan vs actual
    reads the park's import alone, so the metered side has no such charge: here those buildings
    keep their connections' limits and lose their demand charge, or the counterfactual would
    count a charge the meters never show and perfect foresight would shave a peak no compared
    bill holds."""
    own = {node for node, _ in scope.connections()[1:]}
    if not own:
        return site, scope

    def unbilled(building: Building) -> Building:
        if building.id not in own or building.grid is None:
            return building
        grid = building.grid.model_copy(update={"demand_charge_cny_per_kw": 0.0})
        return building.model_copy(update={"grid": grid})

    parks = [
        park.model_copy(update={"buildings": [unbilled(b) for b in park.buildings]})
        for park in site.city.parks
    ]
    site = site.model_copy(update={"city": site.city.model_copy(update={"parks": parks})})
    return site, resolve_scope(site, scope.level, scope.id)


def _unavailable(note: str) -> Realized:
    return finish(steps=0, sides={"counterfactual": Side(), "metered": Side()}, notes=[note])


def combined(parts: Sequence[Realized | None]) -> Realized | None:
    """Several connections' realized figures summed (None if none has any)."""
    found = [p for p in parts if p is not None]
    if not found:
        return None
    if any(p.steps == 0 for p in found):  # one connection without a counterfactual: none
        return _unavailable("; ".join(n for p in found if p.steps == 0 for n in p.notes))
    total = found[0]
    for part in found[1:]:
        total = total + part
    return total
