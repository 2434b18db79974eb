"""The evaluator: each tick reads only fresh data, runs every watch, persists and notifies changes.

Fresh data is `meter_latest` (one row per watched meter), the rejects after the last id counted
and the 15-minute buckets completed since the last tick; per-watch debounce state and the rules'
learnt state (usual night load) carry the rest. A failing watch is logged; the others keep running.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from energyhub.alerts.checks import NightBaseCheck, Observation, Snapshot
from energyhub.alerts.debounce import Change
from energyhub.alerts.notify import AlertEvent, Dispatcher
from energyhub.alerts.rules import AlertRules
from energyhub.alerts.series import BucketReader, ForecastSource, RejectCounter, plan_forecast
from energyhub.alerts.store import AlertRow, close_alert, open_alert, open_keys
from energyhub.alerts.watches import MeterIds, Watch, build_watches
from energyhub.clock import Clock
from energyhub.sites import SiteFile
from energyhub.store.devices import offline_meters

log = logging.getLogger(__name__)

SIGNATURE = (
    "SELECT (SELECT count(*) || '/' || coalesce(max(updated_at)::text, '') FROM alert_rules)"
    " || '|' || (SELECT count(*) || '/' || coalesce(max(id), 0) FROM meters WHERE active)"
)
"""Changes when API-edited rules or the active meters change: the watches are then rebuilt."""
SAVE_STATE = """
INSERT INTO alert_state (site_id, rule, state, updated_at) VALUES (%s, %s, %s, now())
ON CONFLICT (site_id, rule) DO UPDATE SET state = excluded.state, updated_at = now()"""


async def meter_ids(conn: AsyncConnection) -> tuple[MeterIds, set[int]]:
    """Active meter ids by (site, name), and which of them are energy counters."""
    cur = await conn.execute("SELECT site_id, name, id, quantity FROM meters WHERE active")
    rows = await cur.fetchall()
    ids = {(str(s), str(n)): int(i) for s, n, i, _ in rows}
    return ids, {int(i) for _, _, i, q in rows if q == "energy_kwh"}


async def rule_overrides(conn: AsyncConnection) -> dict[str, AlertRules]:
    """Rules the API stored per site; a row that no longer validates is logged and skipped."""
    out: dict[str, AlertRules] = {}
    for site_id, rules in await (
        await conn.execute("SELECT site_id, rules FROM alert_rules")
    ).fetchall():
        try:
            out[str(site_id)] = AlertRules.model_validate(rules)
        except ValueError as exc:
            log.error("stored alert rules of %s ignored: %s", site_id, exc)
    return out


class Evaluator:
    """Incremental, debounced evaluation of every watch of a site tree."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        site: SiteFile,
        clock: Clock,
        dispatcher: Dispatcher | None = None,
        *,
        forecast: ForecastSource = plan_forecast,
        rollup_grace: timedelta = timedelta(seconds=30),
        topic_prefix: str = "energyhub",
    ) -> None:
        self._pool, self._site, self._clock = pool, site, clock
        self._dispatcher, self._forecast, self._grace = dispatcher, forecast, rollup_grace
        self.watches: list[Watch] = []
        self._started = clock.now()
        self._counters: set[int] = set()
        self._counter_prev: dict[int, tuple[datetime, float]] = {}
        self._power_kw: dict[int, float] = {}
        self._rejects = RejectCounter(topic_prefix)
        self._buckets = BucketReader({}, set(), self._started, rollup_grace)
        self._signature = ""

    async def load(self) -> None:
        """(Re)build the watches from the site file, stored rules and meters; keep their state."""
        async with self._pool.connection() as conn:
            self._signature = await self._read_signature(conn)
            ids, self._counters = await meter_ids(conn)
            watches = build_watches(self._site, await rule_overrides(conn), ids)
            opened = await open_keys(conn)
            states = await self._states(conn)
        previous = {w.key: w for w in self.watches}
        for watch in watches:
            old = previous.get(watch.key)
            if old is not None and type(old.check) is type(watch.check):
                watch.debounce.is_open = old.debounce.is_open
                watch.debounce.pending_since = old.debounce.pending_since
                watch.debounce.clearing_since = old.debounce.clearing_since
            else:
                watch.debounce.is_open = watch.key in opened
            if isinstance(watch.check, NightBaseCheck) and watch.target.site_id in states:
                watch.check.restore(states[watch.target.site_id])
        self.watches = watches
        series = {
            w.target.site_id: w.load_meters for w in watches if w.rule in ("night_base", "forecast")
        }
        if set(series) != set(self._buckets._sites):
            cursor = self._buckets.cursor
            self._buckets = BucketReader(series, self._counters, self._started, self._grace)
            self._buckets.cursor = cursor
        log.info("alerts: %d watches over %d sites", len(watches), len({w.key[0] for w in watches}))

    async def reload_if_changed(self) -> bool:
        """Rebuild when stored rules or meters changed since the last load."""
        async with self._pool.connection() as conn:
            changed = await self._read_signature(conn) != self._signature
        if changed:
            await self.load()
        return changed

    @staticmethod
    async def _read_signature(conn: AsyncConnection) -> str:
        row = await (await conn.execute(SIGNATURE)).fetchone()
        return str(row[0]) if row else ""

    @staticmethod
    async def _states(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
        cur = await conn.execute("SELECT site_id, state FROM alert_state WHERE rule = 'night_base'")
        return {str(s): dict(state) for s, state in await cur.fetchall()}

    async def _snapshot(self, conn: AsyncConnection, now: datetime) -> Snapshot:
        meters = sorted({m for w in self.watches for m in _meters_of(w)})
        cur = await conn.execute(
            "SELECT meter_id, ts, value FROM meter_latest WHERE meter_id = ANY(%s)", (meters,)
        )
        latest = {int(m): (ts, float(v)) for m, ts, v in await cur.fetchall()}
        self._update_power(latest)
        rejects = {}
        if any(w.rule == "ingest" for w in self.watches):
            parks = {park.id for park in self._site.city.parks}
            rejects = await self._rejects.read(conn, now, parks)
        buckets = await self._buckets.read(conn, now)
        forecasts = await self._read_forecasts(conn, buckets)
        offline = await offline_meters(conn, meters)
        return Snapshot(
            now, self._started, latest, dict(self._power_kw), rejects, buckets, forecasts, offline
        )

    def _update_power(self, latest: dict[int, tuple[datetime, float]]) -> None:
        for meter_id, (ts, value) in latest.items():
            if meter_id not in self._counters:
                self._power_kw[meter_id] = value
                continue
            previous = self._counter_prev.get(meter_id)
            if previous is not None and ts > previous[0] and value >= previous[1]:
                hours = (ts - previous[0]) / timedelta(hours=1)
                self._power_kw[meter_id] = (value - previous[1]) / hours
            self._counter_prev[meter_id] = (ts, value)

    async def _read_forecasts(
        self, conn: AsyncConnection, buckets: dict[str, list[tuple[datetime, float]]]
    ) -> dict[tuple[str, datetime], float]:
        parks = {w.target.site_id: w.target.park_id for w in self.watches if w.rule == "forecast"}
        wanted: dict[datetime, list[tuple[str, str]]] = {}
        for site_id, series in buckets.items():
            if site_id in parks:
                for bucket, _ in series:
                    wanted.setdefault(bucket, []).append((site_id, parks[site_id]))
        out: dict[tuple[str, datetime], float] = {}
        for bucket, sites in wanted.items():
            for site_id, kw in (await self._forecast(conn, sites, bucket)).items():
                out[(site_id, bucket)] = kw
        return out

    async def tick(self) -> list[AlertEvent]:
        """One evaluation of every watch; returns the alerts opened and closed."""
        now = self._clock.now()
        async with self._pool.connection() as conn:
            snap = await self._snapshot(conn, now)
        changes: list[tuple[Watch, Change, Observation]] = []
        for watch in self.watches:
            try:
                seen = watch.check.observe(snap, watch.debounce.is_open)
                change = watch.debounce.step(now, seen.active if seen else None)
            except Exception:  # every watch guarded: one bad rule must not stop the others
                log.exception("alert watch %s failed", watch.key)
                continue
            if change is not None and seen is not None:
                changes.append((watch, change, seen))
        events = await self._persist(now, changes)
        if self._dispatcher is not None:
            for event in events:
                self._dispatcher.submit(event)
        return events

    async def _persist(
        self, now: datetime, changes: list[tuple[Watch, Change, Observation]]
    ) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        nights = [
            w.check for w in self.watches if isinstance(w.check, NightBaseCheck) and w.check.changed
        ]
        if not changes and not nights:
            return events
        async with self._pool.connection() as conn, conn.transaction():
            for watch, change, seen in changes:
                row: AlertRow | None
                if change is Change.OPEN:
                    row = await open_alert(
                        conn, watch.key, watch.target.park_id, watch.severity, seen.message, now,
                        seen.values,
                    )  # fmt: skip
                else:
                    row = await close_alert(conn, watch.key, now, seen.values)
                if row is not None:
                    kind: Literal["opened", "closed"] = (
                        "opened" if change is Change.OPEN else "closed"
                    )
                    events.append(AlertEvent(kind, row, watch.target.building_id))
            for check in nights:
                await conn.execute(SAVE_STATE, (check.site_id, "night_base", Jsonb(check.state())))
                check.changed = False
        return events

    async def run(self, stop: asyncio.Event, tick_s: float, reload_s: float) -> None:
        """Tick every `tick_s` until `stop` is set; reload rules every `reload_s`."""
        await self.load()
        next_reload = self._clock.now() + timedelta(seconds=reload_s)
        while not stop.is_set():
            started = self._clock.now()
            try:
                if started >= next_reload:
                    next_reload = started + timedelta(seconds=reload_s)
                    await self.reload_if_changed()
                await self.tick()
            except Exception:  # the database may be down for a while: log, retry next tick
                log.exception("alert evaluation failed; retrying")
            wake = started + timedelta(seconds=tick_s)
            sleeper = asyncio.ensure_future(self._clock.sleep_until(wake))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait([sleeper, stopper], return_when=asyncio.FIRST_COMPLETED)
            for task in (sleeper, stopper):
                task.cancel()


def _meters_of(watch: Watch) -> tuple[int, ...]:
    check = watch.check
    single = getattr(check, "meter_id", None)
    if single is not None:
        return (int(single),)
    return tuple(getattr(check, "meter_ids", ()))
