"""The carbon page of a site: Scope 1 and both Scope 2 figures side by side, the instruments
retired for the period and the ones the site holds. Same scope as `GET /carbon/{site}`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from energyhub.api.deps import ConnDep, SitePath, StateDep
from energyhub.api.errors import bad_input
from energyhub.api.scope import site_access
from energyhub.api.ui.auth import UiKey
from energyhub.api.ui.render import HtmlRoute, page
from energyhub.carbon.accounting import carbon_report
from energyhub.carbon.allowances import EntryPublic, ledger_entries, scheme_of
from energyhub.carbon.asset_errors import AssetInputError
from energyhub.carbon.errors import NoDataError, NoMetersError, PeriodError
from energyhub.carbon.instruments import instrument_list
from energyhub.carbon.periods import parse_period
from energyhub.carbon.position import Position, position

router = APIRouter(prefix="/ui", route_class=HtmlRoute, include_in_schema=False)


@router.get("/sites/{site_id}/carbon", response_class=HTMLResponse)
async def carbon_page(
    site_id: SitePath,
    conn: ConnDep,
    state: StateDep,
    key: UiKey,
    period: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """Location-based and market-based Scope 2 of a period (default: this month), the
    instruments held, and for an account its allowance position for the period's year."""
    zone: ZoneInfo = await site_access(conn, key, site_id)
    shown = period or datetime.now(zone).strftime("%Y-%m")
    try:
        start, end = parse_period(shown, zone.key)
    except PeriodError as exc:
        raise bad_input("query", "period", str(exc)) from None
    try:
        report = await carbon_report(conn, state.backend, site_id, start, end)
        missing = None
    except (NoDataError, NoMetersError) as exc:
        report, missing = None, str(exc)
    held = await instrument_list(conn, site_id)
    account, entries = await _allowances(conn, state, site_id, start.year, zone)
    return page(
        "carbon.html",
        key=key,
        site_id=site_id,
        period=shown,
        report=report,
        market=report.scope2_market if report else None,
        missing=missing,
        held=held,
        account=account,
        entries=entries,
        zone=zone,
    )


async def _allowances(
    conn: ConnDep, state: StateDep, site_id: str, year: int, zone: ZoneInfo
) -> tuple[Position | None, list[EntryPublic]]:
    """An enterprise's or building's position for the year, if it has a scheme or entries."""
    try:
        scheme = await scheme_of(conn, site_id)
    except AssetInputError:  # a park or the city holds no allowances
        return None, []
    entries = await ledger_entries(conn, site_id, year)
    if scheme is None and not entries:
        return None, []
    today = datetime.now(zone).date()
    return await position(conn, state.backend, site_id, year, today), entries
