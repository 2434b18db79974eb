"""The site page's morning view: today's energy by carrier against last week, today's peak
against the limit and the month-to-date billed peak, the month's figures, alerts, the plan."""

from __future__ import annotations

import re

import httpx
import pandas as pd

from tests.api.conftest import World

END = "2026-11-20T18:00:00+08:00"  # 10:00 UTC on the world's day of readings


def cell(html: str, table: str, row: str) -> str:
    """The text of the numbers cell after `row` in table `table`."""
    part = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    found = re.search(rf"{re.escape(row)}.*?<td class=\"num\"[^>]*>([^<]*)</td>", part, re.S)
    assert found, (table, row, part[:400])
    return found.group(1).strip()


async def test_the_morning_view_of_a_building(client: httpx.AsyncClient, world: World) -> None:
    page = await client.get("/ui/sites/b01", params={"end": END})
    assert page.status_code == 200, page.text[:300]
    html = page.text
    main = world.series["b01/main"]
    today = main[
        (main.index >= pd.Timestamp("2026-11-19T16:00Z")) & (main.index < pd.Timestamp(END))
    ]
    quarters = today.resample("15min").mean()
    assert cell(html, "energy", 'data-carrier="electricity"') == f"{quarters.sum() * 0.25:,.1f}"
    assert "same hours last week" in html and ">—<" in html  # no readings a week before
    assert cell(html, "peaks", "peak import today") == f"{quarters.max():,.1f} kW"
    assert "of a 20,000 kW connection limit" in html  # b01 has no grid of its own: the park's
    assert cell(html, "peaks", "month-to-date billed peak") == f"{quarters.max():,.1f} kW"
    assert 'id="alerts">None.' in html and 'id="next-steps">No active plan.' in html
    assert "over the 0 steps this site's plans controlled" in html
