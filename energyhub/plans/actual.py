"""Plan vs actual: per step planned vs metered import, PV and storage SOC; cost and CO₂ realized
vs planned vs baseline; realized savings per plan and per day. The one definition the API, the
pages, the CLI and the demo use.

- The series (metered import, PV, SOC at the end of each step, the storage-idle import) are read
  as energyhub.plans.metered says; the bill as energyhub.plans.bill says (the demand charge on the
  rise above the month-to-date peak under monthly billing).
- A city plan is compared park by park (each park its own connection) and the accounts summed.
- A plan's figures cover the steps it controlled (a setpoint of it was sent); a plan that never
  controlled a step (a draft, or no controllable asset) is compared over every metered step.
- Every answer carries its coverage (docs/meter-data.md): per step and carrier, and over the
  compared steps, the share of the meters' time their readings cover, with one line saying so
  when it is below 100 %. The bill is computed as before; the coverage says how far to trust it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd
from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from energyhub.localdays import month_start
from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.scope import Scope, resolve_scopes
from energyhub.optimize.tariffs import month_peak_column
from energyhub.plans.bill import ACCOUNT_COLUMNS, PRICE_COLUMNS, ZERO, Account, account, priced
from energyhub.plans.counterfactual import ReadSpan, read_span
from energyhub.plans.errors import PlanSiteError, PlanStateError
from energyhub.plans.metered import (
    COMPARED_CARRIERS,
    Storage,
    actual_frame,
    compared_frame,
    planned_frame,
    storages,
)
from energyhub.plans.operations import plan_input_columns, plan_inputs
from energyhub.plans.realized import SIDES, Realized, SetpointTrack, combined, realize
from energyhub.plans.store import (
    WITH_SCHEDULE,
    PlanRecord,
    SetpointOverride,
    controlled_schedules,
    controlled_steps,
    controlling_plans,
    get_plan,
    import_limits,
    import_limits_in,
    plan_records,
    plan_steps,
    setpoint_overrides,
)
from energyhub.plans.stored import whole_days
from energyhub.scheduler.target import DemandTargetConfig
from energyhub.sites import SiteFile, unmetered_note
from energyhub.store.db import Backend

__all__ = ["Account", "Comparison", "Coverage", "DaySavings", "PlanVsActual", "plan_vs_actual"]

Part = tuple[Scope, pd.DataFrame]
"""One grid connection's steps: its scope and its compared frame."""


class SocStep(BaseModel):
    """A storage's state of charge at the end of a step: planned and metered."""

    asset_id: str
    planned_kwh: float | None
    actual_kwh: float | None
    planned_soc_pct: float | None
    actual_soc_pct: float | None


class StepActual(BaseModel):
    """One step: planned, metered and baseline (storage idle) net import; PV; SOC at its end."""

    ts: datetime
    controlled: bool = Field(description="A setpoint of this plan was sent for the step.")
    import_price_cny_per_kwh: float
    planned_import_kw: float | None
    actual_import_kw: float | None
    baseline_import_kw: float | None
    planned_pv_kw: float | None
    actual_pv_kw: float | None
    planned_gas_kw: float | None = None
    actual_gas_kw: float | None = None
    import_limit_kw: float | None = Field(
        default=None,
        description="The import the step's setpoints told the site's local controller to hold "
        "the connection under (the scheduler's import limit); None: no limit was sent.",
    )
    soc: list[SocStep]
    coverage: dict[str, float] = Field(
        default_factory=dict,
        description="Per metered carrier (electricity, pv, gas): the share of the step its "
        "meters' readings cover, 0–1.",
    )


class Coverage(BaseModel):
    """How much of the compared time the metered data covers (docs/meter-data.md): covered
    meter-seconds ÷ (meters × compared seconds). The compared time is the basis's steps from the
    first compared step to the last; a step in it without any reading counts as uncovered."""

    share: float | None = Field(
        description="All compared carriers' meters together, 0–1; None with no compared step."
    )
    by_carrier: dict[str, float] = Field(description="Each metered carrier's share, 0–1.")
    note: str | None = Field(
        description="One line when the share is below 100 %, e.g. 'metered data covers 87 % "
        "of the compared time'; None otherwise."
    )


class Comparison(BaseModel):
    """Planned, realized and baseline accounts over the same steps, and the realized savings."""

    steps: int
    planned: Account
    actual: Account
    baseline: Account
    savings_cny: float = Field(description="Baseline minus actual cost.")
    savings_co2_kg: float = Field(description="Baseline minus actual CO₂.")
    stored_change_kwh: float = Field(
        description="Metered storage SOC at the end of the last step minus at the end of the "
        "first: energy the savings leave in (> 0) or took from (< 0) storage, not valued."
    )

    def __add__(self, other: Comparison) -> Comparison:
        """Two connections over the same steps (a city's parks)."""
        return Comparison(
            steps=max(self.steps, other.steps),
            planned=self.planned + other.planned,
            actual=self.actual + other.actual,
            baseline=self.baseline + other.baseline,
            savings_cny=self.savings_cny + other.savings_cny,
            savings_co2_kg=self.savings_co2_kg + other.savings_co2_kg,
            stored_change_kwh=self.stored_change_kwh + other.stored_change_kwh,
        )


EMPTY = Comparison(
    steps=0, planned=ZERO, actual=ZERO, baseline=ZERO, savings_cny=0.0, savings_co2_kg=0.0,
    stored_change_kwh=0.0,
)  # fmt: skip


class DaySavings(Comparison):
    day: date = Field(description="Local date of the site.")
    realized: Realized | None = Field(
        default=None, description="Against the counterfactual on metered demand (see realized)."
    )


class GasComparison(BaseModel):
    """Planned vs metered gas over the steps the gas meters read, whether or not any electricity
    meter reads the import: what a gas-only site (boilers, no electricity meter) can compare."""

    steps: int
    planned_kwh: float
    actual_kwh: float
    planned_cny: float
    actual_cny: float
    planned_co2_kg: float
    actual_co2_kg: float


class PlanVsActual(Comparison):
    """A plan against the meters: totals, per day, per step."""

    plan_id: int
    site_id: str
    level: str
    status: str
    step_s: int
    basis: str = Field(description="`controlled` steps, or `metered` ones if it controlled none.")
    planned_savings_cny: float | None = Field(
        description="The plan's own expectation over its whole horizon (baseline − objective)."
    )
    planned_savings_co2_kg: float | None
    realized: Realized | None = Field(
        description="Counterfactual (rules on metered demand), realized savings, perfect "
        "foresight and capture ratio over the compared steps; None without two metered steps."
    )
    days: list[DaySavings]
    step_details: list[StepActual]
    coverage: Coverage
    overrides: list[SetpointOverride] = Field(
        default_factory=list,
        description="Setpoints the scheduler's peak guard sent other than the plan asked, with "
        "why (the metered import ran above plan towards the billed peak).",
    )
    unmetered: str | None = Field(
        default=None,
        description="Which sites of the plan's scope no electricity meter measures: the import "
        "there is unknown, so no step is compared.",
    )
    gas: GasComparison | None = Field(
        default=None,
        description="Planned vs metered gas over the basis's steps every connection's gas meters "
        "read (also where the import is not measured); None: no such step.",
    )


def gas_comparison(parts: Sequence[Part], dt_h: float) -> GasComparison | None:
    """Gas planned vs metered over the steps every connection's gas is metered on (the
    controlled ones, if any of them is), at the plan's gas price and factor."""
    frames = [f for _, f in parts if len(f)]
    if not frames:
        return None
    metered = np.logical_and.reduce([f["actual_gas_kw"].notna().to_numpy() for f in frames])
    controlled = np.logical_or.reduce([f["controlled"].to_numpy(dtype=bool) for f in frames])
    used = metered & controlled if (metered & controlled).any() else metered
    if not used.any():
        return None
    totals = dict.fromkeys(("planned_kwh", "actual_kwh", "planned_cny", "actual_cny",
                            "planned_co2_kg", "actual_co2_kg"), 0.0)  # fmt: skip
    for f in frames:
        for side in ("planned", "actual"):
            gas = f[f"{side}_gas_kw"].to_numpy(dtype=float)[used]
            totals[f"{side}_kwh"] += float(gas.sum() * dt_h)
            totals[f"{side}_cny"] += float(
                (gas * f["p_gas"].to_numpy(dtype=float)[used]).sum() * dt_h
            )
            co2 = float((gas * f["gas_kg"].to_numpy(dtype=float)[used]).sum() * dt_h)
            totals[f"{side}_co2_kg"] += co2
    return GasComparison(steps=int(used.sum()), **totals)


# --- accounts ----------------------------------------------------------------------------------


def _compare(frame: pd.DataFrame, scope: Scope, dt_h: float, peaks: dict[str, float]) -> Comparison:
    """The three accounts of one connection's steps; `peaks` the month-to-date peak of each."""

    def bill(kind: str, gas: str) -> Account:
        series = frame[f"{kind}_import_kw"]
        return account(series, frame[gas], frame, scope, dt_h, peaks.get(kind, 0.0))

    planned = bill("planned", "planned_gas_kw")
    actual = bill("actual", "actual_gas_kw")
    baseline = bill("baseline", "actual_gas_kw")
    return Comparison(
        steps=len(frame),
        planned=planned,
        actual=actual,
        baseline=baseline,
        savings_cny=baseline.total_cny - actual.total_cny,
        savings_co2_kg=baseline.co2_kg - actual.co2_kg,
        stored_change_kwh=_stored_change(frame),
    )


def _stored_change(frame: pd.DataFrame) -> float:
    socs = frame[[c for c in frame.columns if str(c).startswith("actual_soc_kwh:")]]
    if socs.empty or len(frame) < 2:
        return 0.0
    return float((socs.iloc[-1] - socs.iloc[0]).fillna(0.0).sum())


KINDS = ("planned", "actual", "baseline")


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


def _combine(parts: Sequence[Comparison]) -> Comparison:
    total = EMPTY
    for part in parts:
        total = total + part
    return total


def compare_parts(
    parts: Sequence[Part], dt_h: float, peaks: Mapping[str, Mapping[str, float]]
) -> Comparison:
    """Every connection's accounts over its steps, summed; `peaks` by grid node and KINDS."""
    return _combine([_compare(f, s, dt_h, dict(peaks.get(s.grid_node, {}))) for s, f in parts])


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
            comparison = _compare(steps, scope, dt_h, dict(state.kinds))
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
            **_combine([c for c, _ in found]).model_dump(),
        )
        for day, found in sorted(by_day.items())
    ]


def over_days(days: Sequence[DaySavings]) -> Realized | None:
    """The days' realized figures summed (None if any day has none)."""
    if not days or any(d.realized is None for d in days):
        return None
    total = combined([d.realized for d in days])
    return None if total is None else total.model_copy(update={"steps": sum(d.steps for d in days)})


# --- coverage ----------------------------------------------------------------------------------


def _covered(parts: Sequence[Part], step_s: float) -> dict[str, tuple[pd.Series, pd.Series]]:
    """Per carrier metered on any connection: covered and expected meter-seconds per step,
    summed over the connections."""
    out: dict[str, tuple[pd.Series, pd.Series]] = {}
    for carrier in COMPARED_CARRIERS:
        found = [f for _, f in parts if f"meters:{carrier}" in f.columns]
        if not found:
            continue
        index = found[0].index
        zero = pd.Series(0.0, index=index)
        covered = sum((f[f"covered_s:{carrier}"].reindex(index).fillna(0.0) for f in found), zero)
        expected = sum((f[f"meters:{carrier}"].reindex(index).fillna(0.0) for f in found), zero)
        out[carrier] = (covered.astype("float64"), expected.astype("float64") * step_s)
    return out


def _share(covered: float, expected: float) -> float:
    return min(1.0, covered / expected) if expected > 0 else 0.0


def percent(share: float) -> str:
    """A share as a percentage rounded down, so that anything short of all reads below 100 %."""
    return f"{math.floor(share * 1000) / 10:g} %"


def coverage_of(parts: Sequence[Part], step_s: float) -> Coverage:
    """The compared steps' coverage: each carrier's and all its meters' together."""
    by_carrier: dict[str, float] = {}
    covered_total = expected_total = 0.0
    for carrier, (covered, expected) in _covered(parts, step_s).items():
        kept = float(np.minimum(covered, expected).sum())
        whole = float(expected.sum())
        if whole > 0:
            by_carrier[carrier] = _share(kept, whole)
            covered_total, expected_total = covered_total + kept, expected_total + whole
    if expected_total <= 0:
        return Coverage(share=None, by_carrier=by_carrier, note=None)
    share = _share(covered_total, expected_total)
    note = None
    if share < 1.0:
        each = ", ".join(f"{c} {percent(v)}" for c, v in by_carrier.items())
        note = f"metered data covers {percent(share)} of the compared time ({each})"
    return Coverage(share=share, by_carrier=by_carrier, note=note)


# --- plan vs actual ----------------------------------------------------------------------------


def _number(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if np.isfinite(number) else None


def _soc_step(asset: Storage, row: pd.Series) -> SocStep:
    planned = _number(row[f"planned_soc_kwh:{asset.id}"])
    actual = _number(row[f"actual_soc_kwh:{asset.id}"])
    return SocStep(
        asset_id=asset.id,
        planned_kwh=planned,
        actual_kwh=actual,
        planned_soc_pct=None if planned is None else planned / asset.energy_kwh * 100,
        actual_soc_pct=None if actual is None else actual / asset.energy_kwh * 100,
    )


SUMMED = (
    "planned_import_kw", "actual_import_kw", "baseline_import_kw", "planned_pv_kw",
    "actual_pv_kw", "planned_gas_kw", "actual_gas_kw", "import_limit_kw",
)  # fmt: skip


def _details(parts: Sequence[Part], step_s: float) -> list[StepActual]:
    """Per step, the connections' series summed (a step unknown on any connection is unknown),
    and each carrier's coverage of it."""
    first = parts[0][1]
    covered = _covered(parts, step_s)
    summed = {c: sum((f[c] for _, f in parts), pd.Series(0.0, index=first.index)) for c in SUMMED}
    controlled = np.logical_or.reduce([f["controlled"].to_numpy() for _, f in parts])
    assets = [(a, f) for s, f in parts for a in storages(s)]
    steps = []
    for i, ts in enumerate(first.index):
        steps.append(
            StepActual(
                ts=pd.Timestamp(ts).to_pydatetime(),
                controlled=bool(controlled[i]),
                import_price_cny_per_kwh=float(first["p_import"].iloc[i]),
                soc=[_soc_step(a, f.iloc[i]) for a, f in assets],
                coverage={
                    c: _share(float(kept.iloc[i]), float(whole.iloc[i]))
                    for c, (kept, whole) in covered.items()
                    if whole.iloc[i] > 0
                },
                **{c: _number(summed[c].iloc[i]) for c in SUMMED},
            )
        )
    return steps


def month_peaks(record: PlanRecord, inputs: pd.DataFrame) -> dict[str, float]:
    """The month-to-date peak each of the plan's connections started from (by grid node)."""
    stored = record.baseline.get("month_peak_kw")
    if isinstance(stored, dict):
        return {str(k): float(v) for k, v in stored.items()}
    suffix = month_peak_column("")
    return {
        str(c).removesuffix(suffix): float(inputs[c].iloc[0])
        for c in inputs.columns
        if str(c).endswith(suffix) and len(inputs)
    }


@dataclass
class SpanFrames:
    """The metered frames (`actual_frame`) of a span, read once per connection and shared by the
    plans inside it: a month's lead-in reads a connection's meters once, not once per plan."""

    conn: AsyncConnection
    backend: Backend
    span: tuple[datetime, datetime]
    read: dict[tuple[str, pd.Timedelta], pd.DataFrame] = field(default_factory=dict)

    def grid(self, step: pd.Timedelta) -> pd.DatetimeIndex:
        """The span's steps on the grid of `step`, UTC."""
        first = pd.Timestamp(self.span[0]).tz_convert("UTC").ceil(step)
        last = pd.Timestamp(self.span[1]).tz_convert("UTC")
        return pd.date_range(first, last, freq=step, inclusive="left")

    async def frame(
        self, scope: Scope, index: pd.DatetimeIndex, step: pd.Timedelta
    ) -> pd.DataFrame:
        """`actual_frame` over `index` (steps of `step`, not necessarily each of them): the
        span's frame where `index` is on its grid (NaN outside the span), else read as asked."""
        grid = self.grid(step)
        if len(grid) < 2 or ((index.as_unit("ns").asi8 - grid[0].value) % step.value).any():
            return await actual_frame(self.conn, self.backend, scope, index)
        key = (scope.id, step)
        if key not in self.read:
            self.read[key] = await actual_frame(self.conn, self.backend, scope, grid)
        return self.read[key].reindex(index)


@dataclass(frozen=True, slots=True)
class PlanRead:
    """What a plan's compared frames are made of: its schedule, its inputs, the steps it sent a
    setpoint for (UTC) and the import limits those carried (store.import_limits)."""

    schedule: pd.DataFrame
    inputs: pd.DataFrame
    controlled: set[pd.Timestamp]
    limits: pd.DataFrame


async def read_plan(conn: AsyncConnection, plan_id: int) -> PlanRead:
    """A plan's whole schedule and inputs, its controlled steps and their import limits."""
    return PlanRead(
        await plan_steps(conn, plan_id),
        await plan_inputs(conn, plan_id),
        await controlled_steps(conn, plan_id),
        await import_limits(conn, plan_id),
    )


async def controlled_reads(
    conn: AsyncConnection, plan_ids: Sequence[int], span: tuple[datetime, datetime]
) -> dict[int, PlanRead]:
    """Each plan's PlanRead over the steps in `span` it controlled (its schedule only there; of
    its inputs only the prices), read for all plans at once: a site's month reads a few queries,
    not four per plan of the month, and not each plan's whole horizon."""
    schedules = await controlled_schedules(conn, plan_ids, span)
    prices = await plan_input_columns(conn, plan_ids, PRICE_COLUMNS)
    limits = await import_limits_in(conn, plan_ids, span)
    empty = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="ts"))
    out = {}
    for plan_id in plan_ids:
        schedule, controlled = schedules.get(plan_id, (empty, set()))
        out[plan_id] = PlanRead(schedule, prices[plan_id], controlled, limits[plan_id])
    return out


async def plan_parts(
    conn: AsyncConnection,
    backend: Backend,
    record: PlanRecord,
    site: SiteFile,
    frames: SpanFrames | None = None,
    read: PlanRead | None = None,
) -> tuple[list[Part], dict[str, float]]:
    """Each connection's compared frame of a plan (none if its horizon has < 2 steps), and
    month peaks; the metered side from `frames` where given (its steps outside their span then
    unknown); the plan as `read` has it where given (else all of it, read_plan)."""
    read = await read_plan(conn, record.id) if read is None else read
    schedule, inputs = read.schedule.copy(), read.inputs
    peaks = month_peaks(record, inputs)
    horizon_steps = (record.horizon_end - record.horizon_start).total_seconds() / record.step_s
    if len(schedule) < 1 or horizon_steps < 2 or (len(schedule) < 2 and frames is None):
        return [], peaks
    index = pd.DatetimeIndex(schedule.index).tz_convert("UTC")
    schedule.index = index
    step = pd.Timedelta(seconds=record.step_s)
    controlled, limits = read.controlled, read.limits
    try:
        scopes = resolve_scopes(site, record.level, record.site_id)
    except PlanInputError:  # named "--id", an option of `energyhub plan`, not of this
        raise PlanSiteError(record.id, record.level, record.site_id) from None
    parts = []
    for scope in scopes:
        if frames is None:
            actual = await actual_frame(conn, backend, scope, index)
        else:
            actual = await frames.frame(scope, index, step)
        if site.unmetered_electricity(scope.id):  # the meters there sum to part of the import
            actual["import_kw"] = np.nan
        frame = compared_frame(planned_frame(schedule, scope), actual, scope, controlled)
        priced(frame, scope, inputs, site)
        nodes = {node.id for node in scope.nodes}
        held = limits[limits["site_id"].isin(nodes)].groupby("ts")["import_limit_kw"].min()
        frame["import_limit_kw"] = held.reindex(frame.index).to_numpy(dtype=float)
        parts.append((scope, frame))
    return parts, peaks


def _compared_steps(frame: pd.DataFrame, basis: str) -> pd.DataFrame:
    metered = frame[frame["actual_import_kw"].notna() & frame["baseline_import_kw"].notna()]
    used = metered[metered["controlled"]] if basis == "controlled" else metered
    return used if len(used) else pd.DataFrame(columns=list(ACCOUNT_COLUMNS), dtype="float64")


def _spanned_steps(frame: pd.DataFrame, used: pd.DataFrame, basis: str) -> pd.DataFrame:
    """The steps of the basis from the first compared step to the last: the compared time, in
    which a step without any metered data counts as uncovered rather than vanishing."""
    if not len(used):
        return frame.iloc[:0]
    inside = (frame.index >= used.index[0]) & (frame.index <= used.index[-1])
    if basis == "controlled":
        inside = inside & frame["controlled"].to_numpy(dtype=bool)
    spanned: pd.DataFrame = frame.loc[inside]
    return spanned


def _basis(parts: Sequence[Part]) -> str:
    for _, frame in parts:
        metered = frame["actual_import_kw"].notna() & frame["baseline_import_kw"].notna()
        if (metered & frame["controlled"]).any():
            return "controlled"
    return "metered"


async def plan_vs_actual(
    conn: AsyncConnection,
    backend: Backend,
    plan_id: int,
    *,
    site: SiteFile,
    foresight: bool = True,
    target: DemandTargetConfig | None = None,
) -> PlanVsActual:
    """A stored plan against the stored readings (PlanNotFoundError if there is no such plan,
    PlanStateError if it has no schedule: pending or failed);
    `foresight` False skips the perfect-foresight re-solve; `target`: the scheduler's
    demand-target settings, which its target follows (default: their defaults)."""
    record = await get_plan(conn, plan_id)
    if record.status not in WITH_SCHEDULE:  # nothing was planned: "planned 0.0 CNY" misled
        raise PlanStateError(record.id, record.status, "compare", list(WITH_SCHEDULE))
    parts, peaks = await plan_parts(conn, backend, record, site)
    dt_h = record.step_s / 3600
    basis = _basis(parts)
    used = [(scope, _compared_steps(frame, basis)) for scope, frame in parts]
    spanned = [(s, _spanned_steps(f, u, basis)) for (s, f), (_, u) in zip(parts, used, strict=True)]
    used = [(scope, frame) for scope, frame in used if len(frame)]
    sources = Sources(
        conn, backend, site, await plan_inputs(conn, record.id), foresight,
        target=target or DemandTargetConfig(),
    )  # fmt: skip
    first = min((f.index[0] for _, f in used), default=None)
    carry = {} if first is None else await month_lead_in(conn, backend, site, record.site_id, first)
    starts = {s.grid_node: dict.fromkeys(KINDS, peaks.get(s.grid_node, 0.0)) for s, _ in used}
    starts.update({node: dict(state.kinds) for node, state in carry.items()})
    days = await days_of_parts(used, dt_h, peaks, sources, carry=carry)
    baseline = record.baseline.get("cost_cny")
    return PlanVsActual(
        plan_id=record.id,
        site_id=record.site_id,
        level=record.level,
        status=record.status,
        step_s=record.step_s,
        basis=basis,
        planned_savings_cny=None
        if baseline is None or record.objective_cny is None
        else float(baseline) - record.objective_cny,
        planned_savings_co2_kg=_savings_co2(record),
        realized=over_days(days),
        days=days,
        step_details=_details(parts, record.step_s) if parts else [],
        coverage=coverage_of([(s, f) for s, f in spanned if len(f)], record.step_s),
        overrides=await setpoint_overrides(conn, record.id),
        unmetered=unmetered_note(site.unmetered_electricity(record.site_id)),
        gas=gas_comparison(parts, dt_h),
        **compare_parts(used, dt_h, starts).model_dump(),
    )


def _savings_co2(record: PlanRecord) -> float | None:
    baseline = record.baseline.get("co2_kg")
    return None if baseline is None or record.co2_kg is None else float(baseline) - record.co2_kg


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
