"""Benchmark: the example city steered by the scheduler for simulated days, measured honestly.

The demo's machinery (private PostgreSQL and Mosquitto unless configured, the simulator publishing
through MQTT into an ingest worker, the scheduler re-planning every `--period-min` simulated
minutes (default 240) and sending setpoints the simulated devices follow, through its peak guard
unless ENERGYHUB_SCHEDULER_PEAK_GUARD=false), run for `--days` live days after `--history-days` of
history (default 14, the demo's: energyhub.demo.live.HISTORY_DAYS). Then, per park and local
day, over the steps the scheduler's plans controlled:

- realized savings: counterfactual (the rule-based baseline on the metered demand and PV, what
  it cannot serve priced) − the metered bill + the value of the energy the day left in storage,
  in CNY and kg CO₂ (energyhub.plans.realized, energyhub.plans.stored);
- the saving by term (CNY): energy and gas, demand charge (on the rise of each side's own
  month-to-date peak), carbon price; unserved demand (the counterfactual's less the meters'); the
  stored value;
- the capture ratio: realized ÷ perfect-foresight savings (valued the same way);
- the stored Δ: metered storage SOC change over the day's compared steps (kWh): energy the day
  left in (> 0) or took from storage;
- the forecast error: mean absolute error of the buildings' electricity demand the plans were
  solved with against the metered demand, over the controlled steps, in % of the metered mean.

A second table says, per park and day, what perfect foresight saved beyond the plans by term:
energy, gas, demand charge, carbon price, unserved heat and cooling and the stored value (what
limits the capture ratio).

After the table: per park the re-plans and their wall seconds (forecast, solve, store), the
ticks' wall seconds and how many setpoints the peak guard overrode.

The live days run in lockstep (energyhub.clock.LockstepClock): at each 15-minute step the
simulator waits until the readings before it are stored, the scheduler's tick has run and its
setpoints have arrived, as in operation, where a re-plan takes seconds of a 15-minute step. The
machine's speed changes how long the run takes, not what it measures.

Targets (issue 18): realized cost savings > 0 on every park and day, capture ratio ≥ 0.7, and no
day where CO₂ exceeds the counterfactual when the site's policy asks for it. The example has no
policy: `--co2-policy-pct P` runs a copy of the site file whose `city.carbon.plan_policy` asks
for `max_co2_vs_baseline_pct: P` (an existing policy kept but for that field), and
`--co2-ceiling-cny-per-t C` sets its `max_cost_to_meet_co2_limit_cny_per_t`.

    flock /tmp/energyhub-bench.lock .venv/bin/python bench/closed_loop.py [--days 7]
        [--history-days 14] [--period-min 240] [--site FILE] [--start ISO]
        [--co2-policy-pct P] [--co2-ceiling-cny-per-t C] [--report-only]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from psycopg import AsyncConnection
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from energyhub.config import load_settings
from energyhub.demo.live import HISTORY_DAYS, Timeline, simulated_world
from energyhub.demo.run import SCHEDULER_PERIOD_MIN, _prepare, auto_approved
from energyhub.demo.services import committed, demo_services, ingesting, keeping_up, settled
from energyhub.errors import SiteFileError
from energyhub.localdays import step_floor
from energyhub.optimize.forecast import ForecastError
from energyhub.optimize.scope import resolve_scope
from energyhub.plans.counterfactual import metered_inputs
from energyhub.plans.days import savings_by_day
from energyhub.plans.operations import plan_inputs
from energyhub.plans.realized import Realized
from energyhub.scheduler.service import TickReport
from energyhub.scheduler.target import DemandTargetConfig
from energyhub.sites import SiteFile, load_site
from energyhub.store.db import Backend, connect, installed_backend
from energyhub.store.maintenance import refresh_rollups
from energyhub.store.queries import parse_step


class LoopTimes(logging.Handler):
    """The scheduler's ticks as its log reports them (TickReport on each record): wall seconds
    per re-plan and per tick, and the setpoints the peak guard overrode."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.replan_s: dict[str, list[float]] = {}
        self.tick_s: list[float] = []
        self.overridden = 0

    def emit(self, record: logging.LogRecord) -> None:
        report = getattr(record, "tick", None)
        if isinstance(report, TickReport):
            for site_id, seconds in report.replan_s.items():
                self.replan_s.setdefault(site_id, []).append(seconds)
            self.tick_s.append(report.tick_s)
            self.overridden += report.overridden
        elif record.levelno >= logging.WARNING:
            print(record.getMessage(), file=sys.stderr)  # what the default handler would show

    def summary(self) -> str:
        lines = [
            f"{site_id}: {len(s)} re-plans, {np.mean(s):.1f} s mean, {np.max(s):.1f} s max"
            for site_id, s in sorted(self.replan_s.items())
        ]
        ticks = np.asarray(self.tick_s) if self.tick_s else np.zeros(1)
        lines.append(
            f"ticks: {len(self.tick_s)}, {ticks.mean():.2f} s mean, {ticks.max():.1f} s max; "
            f"setpoints overridden by the peak guard: {self.overridden}"
        )
        return "\n".join(lines)


REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "examples" / "expo-park.yaml"


async def forecast_error_pct(
    conn: AsyncConnection, backend: Backend, site: SiteFile, park: str, steps: pd.DatetimeIndex
) -> float | None:
    """MAE of the plans' building electricity demand against the metered one, % of its mean."""
    cur = await conn.execute(
        "SELECT DISTINCT s.plan_id, s.ts FROM setpoints AS s JOIN plans AS p ON p.id = s.plan_id "
        "WHERE p.site_id = %s AND s.ts >= %s AND s.ts < %s",
        (park, steps[0].to_pydatetime(), (steps[-1] + pd.Timedelta(minutes=15)).to_pydatetime()),
    )
    by_plan: dict[int, list[pd.Timestamp]] = {}
    for plan_id, ts in await cur.fetchall():
        by_plan.setdefault(int(plan_id), []).append(pd.Timestamp(ts).tz_convert("UTC"))
    scope = resolve_scope(site, "park", park)
    forecast = []
    for plan_id, controlled in by_plan.items():
        inputs = await plan_inputs(conn, plan_id)
        columns = [c for c in inputs.columns if str(c).endswith(":electricity_kw")]
        forecast.append(inputs.loc[inputs.index.isin(controlled), columns])
    if not forecast:
        return None
    planned = pd.concat(forecast).sort_index()
    planned = planned[~planned.index.duplicated()]
    index = pd.DatetimeIndex(planned.index)
    span = pd.date_range(index[0], index[-1], freq="15min")
    if len(span) < 2:
        return None
    try:
        metered = await metered_inputs(conn, backend, site, scope, span, pd.DataFrame())
    except ForecastError:
        return None
    truth = metered.frame.reindex(index)[planned.columns]
    error = (planned - truth).abs().to_numpy()
    mean = np.nanmean(truth.to_numpy())
    return float(np.nanmean(error) / mean * 100) if mean > 0 else None


async def measure(
    site: SiteFile,
    path: Path,
    days: float,
    history_days: float,
    period_min: float,
    console: Console,
    start: datetime | None = None,
) -> tuple[Table, Table]:
    settings = load_settings()
    live = timedelta(days=days)
    first = start if start is not None else datetime.now(UTC) - live
    live_start = step_floor(first, parse_step(settings.scheduler_step), site.tz)
    timeline = Timeline(live_start, timedelta(days=history_days), live)
    async with demo_services(settings, console) as services:
        settings = settings.model_copy(
            update={
                "db_url": services.db_url,
                "mqtt_url": services.mqtt_url,
                "site_file": path,
                "scheduler_period_min": period_min,
            }
        )
        console.print(
            f"history {history_days:g} days, re-plans every {period_min:g} min, peak guard "
            f"{'on' if settings.scheduler_peak_guard else 'off'}"
        )
        await _prepare(settings, auto_approved(site), console)
        async with ingesting(settings) as worker:

            async def between() -> None:  # as the demo: the history stored and rolled up
                await settled(worker)
                async with connect(str(settings.db_url)) as conn:
                    await refresh_rollups(conn, await installed_backend(conn))
                console.print(f"history stored in {time.monotonic() - started:.0f} s")

            started = time.monotonic()
            with Progress(console=console) as progress:
                await simulated_world(
                    settings, site, timeline, progress, between, keeping_up(worker),
                    committed(worker),
                )  # fmt: skip
            await settled(worker)
            console.print(f"simulated in {time.monotonic() - started:.0f} s")
        async with connect(services.db_url) as conn:
            backend = await installed_backend(conn)
            await refresh_rollups(conn, backend)
            return await _table(conn, backend, site, (live_start, live_start + live))


async def _table(
    conn: AsyncConnection, backend: Backend, site: SiteFile, window: tuple[datetime, datetime]
) -> tuple[Table, Table]:
    table = Table(title="closed loop: per park and day, over the steps the plans controlled")
    beyond = Table(title="what perfect foresight saved beyond the plans, by term (CNY)")
    for column in ("park", "day", "energy", "gas", "demand", "carbon", "unserved", "stored",
                   "total"):  # fmt: skip
        beyond.add_column(column, justify="right")
    notes: set[str] = set()
    for column in ("park", "day", "steps", "saved CNY", "energy", "demand", "carbon",
                   "unserved", "stored", "saved kg CO₂", "foresight CNY", "capture",
                   "stored Δ kWh", "forecast error %"):  # fmt: skip
        table.add_column(column, justify="right")
    target = DemandTargetConfig.of(load_settings())  # the scheduler's: foresight's follows it
    for park in site.city.parks:
        days = await savings_by_day(conn, backend, park.id, window, site=site, target=target)
        if not days:
            notes.add(f"{park.id}: no step in the window was controlled by a plan (no setpoints)")
        for day in days:
            found = day.realized
            notes.update(found.notes if found else [])
            local = pd.date_range(
                pd.Timestamp(day.day, tz=site.tz), periods=96, freq="15min"
            ).tz_convert("UTC")
            error = await forecast_error_pct(conn, backend, site, park.id, local)
            terms = _terms(found)
            table.add_row(
                park.id, day.day.isoformat(), str(found.steps if found else 0),
                "—" if found is None else f"{found.savings_cny:,.0f}",
                *terms,
                "—" if found is None else f"{found.savings_co2_kg:,.0f}",
                "—" if found is None or found.perfect_savings_cny is None
                else f"{found.perfect_savings_cny:,.0f}",
                "—" if found is None else found.capture_text,
                f"{day.stored_change_kwh:,.0f}",
                "—" if error is None else f"{error:.1f}",
            )  # fmt: skip
            if found is not None and "perfect_foresight" in found.breakdown:
                beyond.add_row(park.id, day.day.isoformat(), *_beyond(found))
    table.caption = "\n".join(sorted(notes))
    return table, beyond


def _beyond(found: Realized) -> list[str]:
    """Perfect foresight's saving less the plans', by term (CNY): metered − perfect foresight
    (energy, gas, demand charge, carbon price, unserved heat and cooling), its stored value less
    the metered side's."""
    metered, perfect = found.breakdown["metered"], found.breakdown["perfect_foresight"]
    terms = [
        getattr(metered, f"{t}_cny") - getattr(perfect, f"{t}_cny")
        for t in ("energy", "gas", "demand", "carbon", "unserved")
    ]
    terms.append(perfect.stored_cny - metered.stored_cny)
    return [f"{v:,.0f}" for v in (*terms, metered.net_cny - perfect.net_cny)]


def _terms(found: Realized | None) -> list[str]:
    """The day's saving by term (CNY): counterfactual − metered energy and gas, demand charge,
    carbon price, the price of heat and cooling left unserved; the stored energy's value (what
    the meters left in or took from the stores less what the counterfactual's idle ones lost)."""
    if found is None or not found.breakdown:
        return ["—"] * 5
    base, metered = found.breakdown["counterfactual"], found.breakdown["metered"]
    return [
        f"{base.energy_cny + base.gas_cny - metered.energy_cny - metered.gas_cny:,.0f}",
        f"{base.demand_cny - metered.demand_cny:,.0f}",
        f"{base.carbon_cny - metered.carbon_cny:,.0f}",
        f"{base.unserved_cny - metered.unserved_cny:,.0f}",
        f"{metered.stored_cny - base.stored_cny:,.0f}",
    ]


async def report_only(site: SiteFile, days: float) -> tuple[Table, Table]:
    """The table of a database a run kept (ENERGYHUB_DB_URL), over `days` from its first
    controlled step (the run's live window)."""
    settings = load_settings()
    if not settings.db_url:
        raise SystemExit("--report-only reads the database of ENERGYHUB_DB_URL")
    async with connect(str(settings.db_url)) as conn:
        cur = await conn.execute("SELECT min(ts) FROM setpoints")
        row = await cur.fetchone()
        if row is None or row[0] is None:
            raise SystemExit("no setpoints in that database: nothing to report")
        start = row[0]
        backend = await installed_backend(conn)
        await refresh_rollups(conn, backend)
        return await _table(conn, backend, site, (start, start + timedelta(days=days)))


def _zoned(text: str) -> datetime:
    """`--start`: an ISO time with its zone (a naive one is refused by name, not compared with
    the run's UTC times later)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone (e.g. +00:00), got {text!r}")
    return at


def with_co2_policy(
    path: Path, pct: float, into: Path, ceiling_cny_per_t: float | None = None
) -> Path:
    """A copy of the site file at `path`, written under `into`, whose carbon.plan_policy asks
    for at most `pct` % CO₂ against the baseline (and, if given, pays up to `ceiling_cny_per_t`
    a tonne to meet it); the copy is checked as any site file is."""
    raw = yaml.safe_load(path.read_text())
    carbon = raw["city"].setdefault("carbon", {})
    asked: dict[str, float] = {"max_co2_vs_baseline_pct": pct}
    if ceiling_cny_per_t is not None:
        asked["max_cost_to_meet_co2_limit_cny_per_t"] = ceiling_cny_per_t
    carbon["plan_policy"] = (carbon.get("plan_policy") or {}) | asked
    out = into / path.name
    out.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    load_site(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0, help="Live days under the scheduler.")
    parser.add_argument(
        "--history-days",
        type=float,
        default=HISTORY_DAYS,
        help="Days of metered history before the live days.",
    )
    parser.add_argument(
        "--period-min", type=float, default=SCHEDULER_PERIOD_MIN, help="Minutes between re-plans."
    )
    parser.add_argument(
        "--site", type=Path, default=SITE, help="Site file (default: examples/expo-park.yaml)."
    )
    parser.add_argument(
        "--start",
        type=_zoned,
        default=None,
        help="Start of the live days, ISO with a zone (default: --days before now), e.g. "
        "2026-11-30T10:30+00:00 to run across a month's first day.",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="Only report on the database a run kept (ENERGYHUB_DB_URL), over --days.",
    )
    parser.add_argument(
        "--co2-policy-pct",
        type=float,
        default=None,
        help="Run the site with carbon.plan_policy.max_co2_vs_baseline_pct set to this.",
    )
    parser.add_argument(
        "--co2-ceiling-cny-per-t",
        type=float,
        default=None,
        help="With --co2-policy-pct: the policy's max_cost_to_meet_co2_limit_cny_per_t.",
    )
    args = parser.parse_args()
    console = Console(width=180)
    workdir = tempfile.TemporaryDirectory(prefix="closed-loop-")
    if args.co2_policy_pct is not None:
        try:
            args.site = with_co2_policy(
                args.site, args.co2_policy_pct, Path(workdir.name), args.co2_ceiling_cny_per_t
            )
        except SiteFileError as exc:
            parser.error(f"--co2-policy-pct / --co2-ceiling-cny-per-t: {exc}")
    if args.report_only:
        for table in asyncio.run(report_only(load_site(args.site), args.days)):
            console.print(table)
        return
    times = LoopTimes()
    scheduler_log = logging.getLogger("energyhub.scheduler.service")
    scheduler_log.setLevel(logging.INFO)
    scheduler_log.addHandler(times)
    tables = asyncio.run(
        measure(
            load_site(args.site),
            args.site,
            args.days,
            args.history_days,
            args.period_min,
            console,
            args.start,
        )
    )
    for table in tables:
        console.print(table)
    console.print(times.summary())


if __name__ == "__main__":
    main()
