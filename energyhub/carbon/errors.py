"""Carbon accounting errors: each names the site, period or key at fault (CLI exit 2, API 4xx)."""

from __future__ import annotations

from datetime import datetime

from energyhub.errors import EnergyhubError


class CarbonError(EnergyhubError):
    """Base of carbon accounting errors: bad input, never a bug."""


class UnknownSiteError(CarbonError):
    """No site with this id in the database (load the site file with `energyhub sites load`)."""

    def __init__(self, site_id: str) -> None:
        self.site_id = site_id
        super().__init__(
            f"unknown site {site_id!r}: load its site file with `energyhub sites load`"
        )


class NoMetersError(CarbonError):
    """The site has no energy meters (electricity, heat, cooling, gas or PV) to account."""

    def __init__(self, site_id: str) -> None:
        self.site_id = site_id
        super().__init__(
            f"site {site_id!r} has no energy meters (electricity, heat, cooling, gas or PV "
            "measured as power_kw or energy_kwh): nothing to account"
        )


class NoDataError(CarbonError):
    """None of the site's meters has a reading in the period."""

    def __init__(self, site_id: str, start: datetime, end: datetime) -> None:
        self.site_id = site_id
        self.start = start
        self.end = end
        super().__init__(
            f"no readings for site {site_id!r} from {start.isoformat()} to {end.isoformat()}: "
            "none of its meters reported in that period"
        )


class UnknownFactorYearError(CarbonError):
    """An emission factor year was asked for that the site file does not list."""

    def __init__(self, year: int, known: list[int]) -> None:
        self.year = year
        self.known = known
        listed = ", ".join(map(str, known)) if known else "none"
        super().__init__(
            f"unknown factor year {year}: the site file's carbon.factors_by_year lists {listed}"
        )


class PeriodError(CarbonError):
    """A period or time range that cannot be read or is empty."""


class IntensityFileError(CarbonError):
    """A grid intensity CSV that cannot be read; the message names the row and column."""
