"""Targets and allowances (管碳): the position against a yearly target, to date and projected.

The projection is the emissions to date plus the reported period's daily rate for the days left
in the year: the latest measured behaviour carried forward, no seasonal model. The position is
target − emissions (positive: allowance to spare), valued at the site's carbon price.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from energyhub.carbon.models import TargetPosition

DAY = timedelta(days=1)


def position(
    target_kg: float,
    year_start: datetime,
    end: datetime,
    to_date_kg: float,
    period_kg: float,
    period_days: float,
    price_cny_per_t: float,
) -> TargetPosition:
    """The position at `end` for a year starting at `year_start`."""
    year_end = year_start.replace(year=year_start.year + 1)
    days_left = max((year_end - end) / DAY, 0.0)
    rate_kg_per_day = period_kg / period_days if period_days > 0 else 0.0
    projected = to_date_kg + rate_kg_per_day * days_left
    to_date = target_kg - to_date_kg
    projected_position = target_kg - projected
    return TargetPosition(
        year=year_start.year,
        target_kg_per_year=target_kg,
        to_date_end=end,
        emissions_to_date_kg=to_date_kg,
        position_to_date_kg=to_date,
        projected_year_kg=projected,
        position_projected_kg=projected_position,
        price_cny_per_t=price_cny_per_t,
        position_to_date_cny=to_date * price_cny_per_t / 1000.0,
        position_projected_cny=projected_position * price_cny_per_t / 1000.0,
        exceeds_target=projected > target_kg,
        method=(
            f"emissions from {year_start.date().isoformat()} to date plus the period's rate "
            f"({rate_kg_per_day:,.1f} kg/day) for the {days_left:.0f} days left in the year"
        ),
    )
