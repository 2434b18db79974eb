"""The month-to-date peak import of a connection, as plan vs actual reads its import.

The rollup's peak (`energyhub.store.billing.month_peak_kw`) sums the site's main meters. Where a
park has no main meter of its own its mains are its buildings', and what its shared assets
supply and draw (a CHP, a park battery) passes none of them: the rollup's peak is then not the
connection's. There the peak is read as plan vs actual reads the import
(energyhub.plans.metered.actual_frame) over the month so far, so that a plan does not take
headroom under a peak the bill never had.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from energyhub.optimize.scope import Scope, connection_scopes
from energyhub.plans.metered import actual_frame, outside_mains
from energyhub.scheduler.telemetry import stored_meters
from energyhub.store.billing import month_peak_kw, month_start
from energyhub.store.db import Backend

BILLING_STEP = pd.Timedelta(minutes=15)
"""The maximum-demand charge is billed on 15-minute mean import."""


async def connection_month_peak_kw(
    conn: AsyncConnection, backend: Backend, scope: Scope, before: datetime, tz: ZoneInfo
) -> float:
    """The connection's highest 15-minute import this local month before `before` (0 if none)."""
    rollup = await month_peak_kw(conn, scope.id, before, tz)
    meters = await stored_meters(conn, sorted({n.id for n in scope.nodes}))
    if not outside_mains(scope, meters):
        return rollup
    first = pd.Timestamp(month_start(before, tz)).tz_convert("UTC").ceil(BILLING_STEP)
    index = pd.date_range(first, pd.Timestamp(before).tz_convert("UTC"), freq=BILLING_STEP,
                          inclusive="left")  # fmt: skip
    if len(index) < 2:
        return rollup
    imports = (await actual_frame(conn, backend, scope, index))["import_kw"].to_numpy()
    known = imports[np.isfinite(imports)]
    return max(float(known.max()), 0.0) if known.size else rollup


async def month_peaks_kw(
    conn: AsyncConnection, backend: Backend, scope: Scope, before: datetime, tz: ZoneInfo
) -> dict[str, float]:
    """`connection_month_peak_kw` of every connection a plan of `scope` bills, by the node it
    feeds: the scope's own, and each building's own `grid:` read as the building's own plan
    reads it (`<node>:month_peak_kw`)."""
    return {
        node: await connection_month_peak_kw(conn, backend, own, before, tz)
        for node, own in connection_scopes(scope)
    }
