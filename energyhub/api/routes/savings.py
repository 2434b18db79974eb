"""Savings: what a site's plans realized per local day, against the counterfactual on metered
demand, with perfect foresight and the capture ratio."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from energyhub.api.deps import DbDep, SiteKey, SitePath, StateDep
from energyhub.api.errors import responses
from energyhub.api.limits import window
from energyhub.api.schemas.common import Time
from energyhub.api.schemas.plans import SavingsPublic
from energyhub.api.views import day_public, realized_total
from energyhub.plans.days import savings_by_day
from energyhub.scheduler.target import DemandTargetConfig
from energyhub.sites import unmetered_note

router = APIRouter(prefix="/sites", tags=["plans"], responses=responses(401, 404, 422, 503))


@router.get(
    "/{site_id}/savings",
    response_model=SavingsPublic,
    summary="Realized savings of the site's plans per local day",
)
async def site_savings(
    site_id: SitePath,
    db: DbDep,
    access: SiteKey,
    state: StateDep,
    start: Annotated[Time | None, Query(description="Default: end − 24 h.")] = None,
    end: Annotated[
        Time | None, Query(description="Exclusive. Default: start + 24 h, or now.")
    ] = None,
) -> SavingsPublic:
    """Over the steps in [start, end) that the site's own plans controlled (a setpoint was sent):
    per local day the planned, metered and storage-idle bills, and the realized figures: the
    counterfactual (the rule-based baseline re-run on the metered demand and PV), realized
    savings (counterfactual − metered), perfect foresight (the plan re-solved on the metered
    demand) and the capture ratio (realized ÷ perfect-foresight savings)."""
    zone = await access.zone(db, site_id)
    lo, hi = window(start, end, None, state.settings)
    days = await savings_by_day(
        await db.conn(), state.backend, site_id, (lo, hi), site=state.site,
        target=DemandTargetConfig.of(state.settings),
    )  # fmt: skip
    return SavingsPublic(
        site_id=site_id,
        start=lo.astimezone(zone),
        end=hi.astimezone(zone),
        days=[day_public(d) for d in days],
        realized=realized_total(days),
        unmetered=unmetered_note(state.site.unmetered_electricity(site_id)),
    )
