"""Carbon: the same report as `energyhub carbon report`, for any site in the key's scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from energyhub.api.deps import ConnDep, CurrentKey, SitePath, StateDep
from energyhub.api.errors import bad_input, not_found, responses
from energyhub.api.schemas.common import Period
from energyhub.api.scope import site_access
from energyhub.carbon.accounting import CarbonReport, carbon_report
from energyhub.carbon.errors import (
    CarbonError,
    NoDataError,
    NoMetersError,
    PeriodError,
    UnknownFactorYearError,
    UnknownSiteError,
)
from energyhub.carbon.periods import parse_period

router = APIRouter(prefix="/carbon", tags=["carbon"], responses=responses(401, 404, 422, 503))


@router.get("/{site_id}", response_model=CarbonReport, summary="Carbon report of a site")
async def site_carbon(
    site_id: SitePath,
    conn: ConnDep,
    key: CurrentKey,
    state: StateDep,
    period: Annotated[
        Period,
        Query(
            description="`YYYY`, `YYYY-MM` or `YYYY-MM-DD` in the site's time zone.",
            examples=["2026-10"],
        ),
    ],
    factor_year: Annotated[
        int | None, Query(ge=1990, le=2100, description="Use this year's emission factors.")
    ] = None,
) -> CarbonReport:
    """Energy by carrier, Scope 1 and 2, PV and avoided emissions, intensity, trend, coverage."""
    zone = await site_access(conn, key, site_id)
    try:
        start, end = parse_period(period, zone.key)
        return await carbon_report(
            conn, state.backend, site_id, start, end, factor_year=factor_year
        )
    except UnknownSiteError:
        raise not_found(f"site {site_id}") from None
    except PeriodError as exc:
        raise bad_input("query", "period", str(exc)) from None
    except UnknownFactorYearError as exc:
        raise bad_input("query", "factor_year", str(exc)) from None
    except (NoDataError, NoMetersError) as exc:
        raise bad_input("path", "site_id", str(exc)) from None
    except CarbonError as exc:
        raise bad_input("query", "period", str(exc)) from None
