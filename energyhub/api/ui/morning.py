"""The site page's morning view: what a building manager checks first.

Energy by carrier today (local midnight to now) against the same hours of the same weekday last
week; today's peak import against the connection limit and the month-to-date billed peak; cost,
CO₂ and realized savings month to date over the steps the site's plans controlled (the
counterfactual without the perfect-foresight re-solve, which a page cannot wait for); open
alerts; and the active plan's next steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from psycopg import AsyncConnection

from energyhub.alerts.store import AlertFilter, AlertRow, list_alerts
from energyhub.localdays import day_start, wall_clock_back
from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.scope import resolve_scopes
from energyhub.plans.days import savings_by_day
from energyhub.plans.peak import connection_month_peak_kw
from energyhub.plans.store import list_plans, plan_steps
from energyhub.sites import SiteFile, unmetered_note
from energyhub.store.billing import month_peak_kw, month_start
from energyhub.store.db import Backend
from energyhub.store.queries import site_series

STEP = timedelta(minutes=15)
NEXT_STEPS = 4
CARRIERS = ("electricity", "heat", "cooling", "gas", "pv")


@dataclass(frozen=True, slots=True)
class CarrierDay:
    carrier: str
    today_kwh: float
    last_week_kwh: float | None

    @property
    def change_pct(self) -> float | None:
        if not self.last_week_kwh:
            return None
        return (self.today_kwh - self.last_week_kwh) / self.last_week_kwh * 100


@dataclass(frozen=True, slots=True)
class NextStep:
    ts: datetime
    import_kw: float | None
    storage_kw: dict[str, float]
    """Each storage's discharge − charge."""


@dataclass
class Morning:
    since: datetime
    now: datetime
    energy: list[CarrierDay] = field(default_factory=list)
    peak_today_kw: float | None = None
    limit_kw: float | None = None
    month_peak_kw: float = 0.0
    month_cost_cny: float | None = None
    month_co2_kg: float | None = None
    month_saved_cny: float | None = None
    month_saved_co2_kg: float | None = None
    month_steps: int = 0
    alerts: list[AlertRow] = field(default_factory=list)
    plan_id: int | None = None
    next_steps: list[NextStep] = field(default_factory=list)
    unmetered: str | None = None
    """Which sites here no electricity meter measures (their import, peak, savings unknown)."""


async def _energy(
    conn: AsyncConnection, backend: Backend, site_id: str, span: tuple[datetime, datetime]
) -> pd.DataFrame:
    if span[1] - span[0] < STEP:
        return pd.DataFrame(columns=["bucket", "carrier", "power_kw", "energy_kwh"])
    return await site_series(conn, backend, site_id, span[0], span[1], STEP)


def _limit_kw(site: SiteFile, kind: str, site_id: str) -> float | None:
    if kind not in ("building", "park", "city"):
        return None
    try:
        scopes = resolve_scopes(site, kind, site_id)
    except PlanInputError:
        return None
    return sum(s.grid.import_max_kw for s in scopes)


async def _month_peak_kw(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    row: tuple[str, str],
    at: tuple[datetime, ZoneInfo],
) -> float:
    """A building's or park's connection peak as its plans start from (plans.peak); else the sum
    of the site's main meters."""
    (site_id, kind), (now, zone) = row, at
    if kind in ("building", "park"):
        try:
            scopes = resolve_scopes(site, kind, site_id)
        except PlanInputError:
            scopes = ()
        if len(scopes) == 1:
            return await connection_month_peak_kw(conn, backend, scopes[0], now, zone)
    return await month_peak_kw(conn, site_id, now, zone)


async def _next_steps(
    conn: AsyncConnection, site_id: str, now: datetime
) -> tuple[int | None, list[NextStep]]:
    active = await list_plans(conn, site_ids=[site_id], status="active", limit=1)
    if not active:
        return None, []
    steps = await plan_steps(conn, active[0].id)
    index = pd.DatetimeIndex(steps.index)
    ahead = steps[index + pd.Timedelta(seconds=active[0].step_s) > pd.Timestamp(now)].head(
        NEXT_STEPS
    )
    imports = f"{site_id}:import_kw"
    storages = sorted({str(c).split(":")[0] for c in steps.columns if str(c).endswith(":soc_kwh")})
    out = []
    for ts, (_, row) in zip(pd.DatetimeIndex(ahead.index), ahead.iterrows(), strict=True):
        storage = {
            s: float(row.get(f"{s}:discharge_kw", 0.0) - row.get(f"{s}:charge_kw", 0.0))
            for s in storages
        }
        value = row.get(imports)
        out.append(
            NextStep(
                pd.Timestamp(ts).to_pydatetime(), None if value is None else float(value), storage
            )
        )
    return active[0].id, out


async def morning(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    row: tuple[str, str],
    now: datetime,
    zone: ZoneInfo,
) -> Morning:
    """The morning view of site `row` (id, kind) at `now`."""
    site_id, kind = row
    since = day_start(pd.Timestamp(now), zone).to_pydatetime()  # 01:00 where clocks skip 00:00
    out = Morning(since, now, unmetered=unmetered_note(site.unmetered_electricity(site_id)))
    today = await _energy(conn, backend, site_id, (since, now))
    span = pd.DatetimeIndex([pd.Timestamp(t).tz_convert("UTC") for t in (since, now)])
    week_ago = wall_clock_back(span, zone, 7)  # the same clock times, across a DST change
    before = await _energy(
        conn, backend, site_id, (week_ago[0].to_pydatetime(), week_ago[1].to_pydatetime())
    )
    for carrier in CARRIERS:  # the store's energy: kW × 15 min is not it where a counter had a gap
        mine = today[today["carrier"] == carrier]["energy_kwh"]
        then = before[before["carrier"] == carrier]["energy_kwh"]
        if len(mine) or len(then):
            out.energy.append(
                CarrierDay(
                    carrier,
                    float(mine.sum()),
                    float(then.sum()) if len(then) else None,
                )
            )
    electricity = today[today["carrier"] == "electricity"]["power_kw"]
    out.peak_today_kw = float(electricity.max()) if len(electricity) else None
    out.limit_kw = _limit_kw(site, kind, site_id)
    out.month_peak_kw = await _month_peak_kw(conn, backend, site, row, (now, zone))
    first = month_start(now, zone)
    if now > first:
        days = await savings_by_day(
            conn, backend, site_id, (first, now), site=site, foresight=False
        )
        realized = [d.realized for d in days if d.realized is not None and d.realized.steps]
        out.month_steps = sum(d.steps for d in days)
        if days:
            out.month_cost_cny = sum(d.actual.total_cny for d in days)
            out.month_co2_kg = sum(d.actual.co2_kg for d in days)
        if realized:
            out.month_saved_cny = sum(r.savings_cny for r in realized)
            out.month_saved_co2_kg = sum(r.savings_co2_kg for r in realized)
    out.alerts = await list_alerts(conn, AlertFilter(site_id, status="open", limit=20))
    out.plan_id, out.next_steps = await _next_steps(conn, site_id, now)
    return out
