"""The local day's CO₂ account of a scheduled site, read at each re-plan under a CO₂ policy.

A plan that meets its CO₂ limit on the forecast can still emit more than the counterfactual on
the meters (a forecast miss, losses the plan did not foresee). The policy asks for days no worse
than the counterfactual, so each re-plan reads the day so far as realized savings read it (the
steps the site's plans controlled, metered CO₂ less the storage credit against the rules on the
metered demand: energyhub.plans.days.savings_by_day, the one place for that rule) and carries
what the day is over into the new plan's limit (energyhub.plans.policy).

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
from energyhub.plans.days import savings_by_day
from energyhub.sites import SiteFile
from energyhub.store.db import Backend


@dataclass(frozen=True, slots=True)
class DayCo2Account:
    """The local day so far against its counterfactual, and what a re-plan carries of it."""

    day: str
    steps: int
    """Controlled steps of the day so far with readings (the compared steps)."""
    counterfactual_kg: float
    metered_kg: float
    """Metered CO₂ less the storage credit (net), as realized savings count it."""
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
    metered = sum(r.breakdown["metered"].net_co2_kg for r in realized)
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
