"""The live day's account per scheduled site: setpoints sent, plans run, realized savings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection

from energyhub.plans.bill import Account
from energyhub.plans.days import over_days, savings_by_day
from energyhub.plans.realized import Realized
from energyhub.scheduler.replan import targets
from energyhub.sites import SiteFile
from energyhub.store.db import Backend


@dataclass(frozen=True)
class SiteActual:
    """One scheduled site over the live day: setpoints sent, plans it ran, the realized account."""

    site_id: str
    setpoints: int
    plans: int
    steps: int
    planned: Account | None
    actual: Account | None
    baseline: Account | None
    realized: Realized | None = None


async def site_actuals(
    conn: AsyncConnection,
    backend: Backend,
    site: SiteFile,
    scheduled: list[str],
    window: tuple[datetime, datetime],
) -> list[SiteActual]:
    """Per scheduled site: its setpoints and plans in `window`, and the realized accounts."""
    found: list[SiteActual] = []
    for target in targets(site, scheduled):
        cur = await conn.execute(
            "SELECT count(*), count(DISTINCT s.plan_id) FROM setpoints AS s "
            "JOIN plans AS p ON p.id = s.plan_id "
            "WHERE p.site_id = %s AND s.ts >= %s AND s.ts < %s",
            (target.site_id, *window),
        )
        row = await cur.fetchone()
        setpoints, plans = (int(row[0]), int(row[1])) if row else (0, 0)
        days = await savings_by_day(conn, backend, target.site_id, window, site=site)
        found.append(
            SiteActual(
                target.site_id,
                setpoints,
                plans,
                sum(d.steps for d in days),
                _total([d.planned for d in days]),
                _total([d.actual for d in days]),
                _total([d.baseline for d in days]),
                over_days(days),
            )
        )
    return found


def _total(accounts: list[Account]) -> Account | None:
    """Accounts of consecutive days added up (the peak is the highest day's, the month-to-date
    peak the first day's)."""
    if not accounts:
        return None
    peaks = ("peak_import_kw", "month_peak_kw")
    summed = {
        name: sum(getattr(a, name) for a in accounts)
        for name in Account.model_fields
        if name not in peaks
    }
    return Account(
        peak_import_kw=max(a.peak_import_kw for a in accounts),
        month_peak_kw=accounts[0].month_peak_kw,
        **summed,
    )
