"""The plan page's forecast chart: one input column the plan was solved with (its P50) in the
P10–P90 band the scheduler stored with it.

A plan made by the scheduler keeps its inputs (`plan_inputs`) and, for each forecast column,
its band (`plan_forecast_bands`); a plan made elsewhere has neither and gets no chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from markupsafe import Markup
from psycopg import AsyncConnection

from energyhub.api.errors import bad_input
from energyhub.api.ui.charts import Band, Series, time_chart
from energyhub.api.ui.figures import chart_values
from energyhub.forecast.store import plan_bands, stored_forecast
from energyhub.plans.operations import plan_inputs
from energyhub.plans.store import PlanRecord

P50_COLOR = "#1f77b4"


@dataclass(frozen=True, slots=True)
class ForecastColumn:
    """One input column of a plan, for the page's list of columns to chart."""

    name: str
    method: str
    banded: bool


def unit_of(name: str) -> str:
    """The unit a column's name carries (`…_kw`, `outdoor_c`), or none."""
    if name.endswith("_kw"):
        return "kW"
    if name.endswith("_c"):
        return "°C"
    return ""


def default_column(inputs: pd.DataFrame, banded: set[str]) -> str | None:
    """The column a page opens with: the largest banded power, else the largest power, else
    the largest column."""
    powers = [str(c) for c in inputs.columns if str(c).endswith("_kw")]
    for candidates in ([c for c in powers if c in banded], powers, [str(c) for c in inputs]):
        if candidates:
            return str(inputs[candidates].abs().mean().fillna(0.0).idxmax())
    return None


def forecast_chart(
    inputs: pd.DataFrame, bands: pd.DataFrame, name: str, zone: ZoneInfo, step: timedelta
) -> Markup:
    """`name`'s P50 as a step line over the plan's steps, its stored band shaded beneath."""
    index = pd.DatetimeIndex(inputs.index)
    times = [t.to_pydatetime() for t in index.tz_convert(zone)]
    p50 = chart_values(inputs[name])
    rows = bands[bands["name"] == name]
    shaded: list[Band] = []
    if not rows.empty:
        indexed = rows.assign(ts=pd.to_datetime(rows["ts"], utc=True)).set_index("ts")
        low = indexed["p10"].reindex(index.tz_convert("UTC"))
        high = indexed["p90"].reindex(index.tz_convert("UTC"))
        shaded.append(
            Band(
                "P10–P90",
                chart_values(low),
                chart_values(high),
                P50_COLOR,
            )
        )
    unit = unit_of(name)
    title = f"Forecast of {name}" + (f" ({unit})" if unit else "")
    return time_chart(
        "forecast", title, times, [Series("P50 (planned on)", p50, P50_COLOR)],
        unit=unit, step=step, bands=shaded,
    )  # fmt: skip


async def forecast_section(
    conn: AsyncConnection, record: PlanRecord, zone: ZoneInfo, column: str | None
) -> dict[str, Any]:
    """The forecast section of a plan page: the chosen column's chart in its band, the list of
    columns and the band's measured coverage (empty for a plan stored without inputs)."""
    inputs = await plan_inputs(conn, record.id)
    if inputs.empty:
        if column is not None:
            raise bad_input("query", "forecast", f"plan {record.id} was stored without inputs")
        return {}
    stored = await stored_forecast(conn, record.id)
    bands = await plan_bands(conn, record.id)
    banded = {str(n) for n in bands["name"].unique()}
    names = [str(c) for c in inputs.columns]
    if column is not None and column not in names:
        raise bad_input(
            "query", "forecast", f"{column!r} is not an input of plan {record.id}; "
            f"its inputs are {', '.join(sorted(names))}",
        )  # fmt: skip
    shown = column or default_column(inputs, banded)
    methods = stored.methods if stored else {}
    return {
        "chart": None if shown is None else forecast_chart(
            inputs, bands, shown, zone, timedelta(seconds=record.step_s)
        ),
        "shown": shown,
        "columns": [ForecastColumn(n, str(methods.get(n, "")), n in banded) for n in names],
        "coverage": stored.band_coverage if stored else {},
    }  # fmt: skip
