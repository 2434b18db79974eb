"""The local day's CO₂ account of a scheduled site, read at each re-plan under a CO₂ policy.

A plan that meets its CO₂ limit on the forecast can still emit more than the counterfactual on
the meters (a forecast miss, losses the plan did not foresee). The policy asks for days no worse
than the counterfactual, so each re-plan reads the day so far as realized savings read it (the
steps the site's plans controlled, metered CO₂ less the storage credit against the rules on the
metered demand: energyhub.plans.days.savings_by_day, the one place for that rule) and carries
what the day is over into the new plan's limit (energyhub.plans.policy).

A flexible load's window still open is counted as the day will settle it: the counterfactual
runs it from the window's start, the plans often later, and over the window both draw its
energy. What the rules had drawn by now and the device had not (`flexible_owed_kwh`) is still to
come on the meters, so it is added to their CO₂ at the site's grid factor; without it, moving an
EV charger into the afternoon read as CO₂ saved all morning, slack a CO₂ gate spent on stores.

The plan's limit is over its whole horizon while the deficit must be made up before the local
day ends: it is carried at the rate of the steps left today (deficit × horizon steps ÷ steps left
today, capped at the horizon), as if the plan abated evenly over its steps. A day under its
counterfactual loosens nothing (forecast misses go both ways; the surplus is the margin). What
it may cost stays bounded by the policy's max_cost_to_meet_co2_limit_cny_per_t.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from psycopg import AsyncConnection

from energyhub.localdays import day_start, next_day_start
from energyhub.optimize.baseline import rules_flexible_kw
from energyhub.optimize.inputs import PlanInputs
from energyhub.plans.days import savings_by_day
from energyhub.plans.store import site_setpoints
from energyhub.scheduler.demand import flexible_draw
from energyhub.scheduler.telemetry import Telemetry, sent_on_grid
from energyhub.sites import Building, FlexibleLoad, Park, SiteFile
from energyhub.store.db import Backend

OWED_STEP = pd.Timedelta(minutes=15)
"""The grid a flexible load's draw so far is read on (the plans' step)."""


@dataclass(frozen=True, slots=True)
class DayCo2Account:
    """The local day so far against its counterfactual, and what a re-plan carries of it."""

    day: str
    steps: int
    """Controlled steps of the day so far with readings (the compared steps)."""
    counterfactual_kg: float
    metered_kg: float
    """Metered CO₂ less the storage credit (net), as realized savings count it, plus the CO₂ of
    the flexible loads' energy the counterfactual had drawn by now and the devices had not."""
    allowed_kg: float
    """What the site's policy allows the day so far: the counterfactual × (1 +
    max_co2_vs_baseline_pct / 100); the counterfactual's without a policy."""
    steps_left: int
    """Steps of the plan's horizon before the local day ends."""
    horizon_steps: int

    @property
    def slack_kg(self) -> float:
        """What the day so far emitted below what the policy allows it (< 0: above)."""
        return self.allowed_kg - self.metered_kg

    @property
    def deficit_kg(self) -> float:
        """What the day so far emitted above what the policy allows it (≥ 0)."""
        return max(-self.slack_kg, 0.0)

    @property
    def carried_kg(self) -> float:
        """The deficit taken off the plan's limit, at the rate of the day's steps left."""
        if self.deficit_kg <= 0 or self.steps_left <= 0:
            return 0.0
        return self.deficit_kg * self.horizon_steps / self.steps_left

    @property
    def note(self) -> str:
        head = (
            f"carbon: the day so far ({self.day}, {self.steps} metered steps) emitted "
            f"{self.metered_kg:,.0f} kg against its counterfactual's {self.counterfactual_kg:,.0f} "
            f"(the policy allows {self.allowed_kg:,.0f})"
        )
        if self.carried_kg <= 0:
            return f"{head}: nothing carried into this plan's CO₂ limit"
        return (
            f"{head}: {self.deficit_kg:,.0f} kg over, carried into this plan's CO₂ limit as "
            f"{self.carried_kg:,.0f} kg ({self.steps_left} of its {self.horizon_steps} steps are "
            "left today)"
        )


async def day_co2_account(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    site_id: str,
    start: datetime,
    steps: pd.DatetimeIndex,
) -> DayCo2Account | None:
    """The account of the local day `start` falls in, over its steps before `start`, for a plan
    over `steps` (UTC) starting at `start`; None if the day has no compared step yet."""
    midnight = day_start(pd.Timestamp(start), site.tz).to_pydatetime()
    if midnight >= start:
        return None
    days = await savings_by_day(  # CO₂ does not hang on the month's peak: no lead-in
        conn, backend, site_id, (midnight, start), site=site, foresight=False, lead_in=False
    )
    realized = [d.realized for d in days if d.realized is not None and d.realized.steps > 0]
    if not realized:
        return None
    counterfactual = sum(r.breakdown["counterfactual"].net_co2_kg for r in realized)
    owed_kwh = await flexible_owed_kwh(conn, site, site_id, (midnight, start))
    owed_kg = sum(kwh * site.city.carbon.grid_kg_per_kwh for kwh in owed_kwh.values())
    metered = sum(r.breakdown["metered"].net_co2_kg for r in realized) + owed_kg
    left = int((steps < next_day_start(pd.Timestamp(start), site.tz)).sum())
    policy = site.city.carbon.plan_policy
    pct = policy.max_co2_vs_baseline_pct if policy is not None else None
    return DayCo2Account(
        day=pd.Timestamp(start).tz_convert(site.tz).date().isoformat(),
        steps=sum(r.steps for r in realized),
        counterfactual_kg=float(counterfactual),
        metered_kg=float(metered),
        allowed_kg=float(counterfactual) * (1 + (pct or 0.0) / 100),
        steps_left=left,
        horizon_steps=len(steps),
    )


def flexible_loads(site: SiteFile, site_id: str) -> list[tuple[str, FlexibleLoad]]:
    """The flexible loads a scheduled site's plans steer, with the building or park each is of
    (where its setpoints are kept): a building's, a park's and its buildings', or every park's
    of the city."""
    if (found := site.find_building(site_id)) is not None:
        owners: list[Park | Building] = [found[1]]
    else:
        parks = [p for p in site.city.parks if p.id == site_id] or site.city.parks
        owners = [*parks, *(b for p in parks for b in p.buildings)]
    return [(o.id, a) for o in owners for a in o.assets if isinstance(a, FlexibleLoad)]


async def flexible_owed_kwh(
    conn: AsyncConnection, site: SiteFile, site_id: str, span: tuple[datetime, datetime]
) -> dict[str, float]:
    """Per flexible load of the site, what the counterfactual's rules had drawn over `span` (the
    day so far; `rules_flexible_kw`) less what the device drew as the demand reconstruction takes
    it (`flexible_draw`: the setpoints sent, its own rule where none was): > 0 the meters still
    owe it, < 0 they drew ahead. Only loads whose window touches `span`."""
    loads = flexible_loads(site, site_id)
    if not loads or span[1] <= span[0]:
        return {}
    first, end = (pd.Timestamp(t).tz_convert("UTC") for t in span)
    index = pd.date_range(first, end, freq=OWED_STEP, inclusive="left")
    if not len(index):
        return {}
    dt_h = OWED_STEP.total_seconds() / 3600
    steps = PlanInputs(index.tz_convert(site.tz), dt_h, {})
    owners = sorted({owner for owner, _ in loads})
    sent = sent_on_grid(await site_setpoints(conn, owners, *span), index, OWED_STEP)
    ran = Telemetry(index, pd.DataFrame(index=index), site.tz, sent)
    owed = {
        load.id: float(rules_flexible_kw(steps, load).sum() - flexible_draw(load, ran).sum()) * dt_h
        for _, load in loads
    }
    return {load: kwh for load, kwh in owed.items() if abs(kwh) > 1e-9}
