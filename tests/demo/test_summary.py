"""The demo summary's figures: a saving that rounds to nothing is 0, not -0."""

from __future__ import annotations

import pandas as pd
import pytest
from rich.console import Console

from energyhub.demo.summary import _number, _tonnes, actual_table, grouped_notes, load_table


@pytest.mark.parametrize(
    ("value", "text"),
    [(-0.3, "0"), (-1e-9, "0"), (None, "—"), (1234.6, "1,235"), (-12.4, "\N{MINUS SIGN}12")],
)
def test_a_figure_that_rounds_to_zero_is_not_minus_zero(value: float | None, text: str) -> None:
    """The demo's hydrogen park printed 'foresight CNY -0' for a re-solve a solver tolerance
    below the counterfactual, and 'CO₂ saved t -0.0' for a few kilograms lost."""
    assert _number(value) == text


def test_tonnes_never_print_minus_zero() -> None:
    assert _tonnes(-20.0) == "0.0"
    assert _tonnes(-9_400.0) == "\N{MINUS SIGN}9.4"


def test_notes_are_grouped_by_kind_and_none_is_cut() -> None:
    """The demo printed the first five notes in alphabetical order: seven buildings' missing
    cooling meters hid 'lingang: no perfect-foresight plan …', the reason its foresight read —."""
    cooling = [
        f"{b}:cooling_kw: no cooling meter at {b}, taken as 0 by the counterfactual and perfect "
        f"foresight (what its cooling assets drew stays in {b}:electricity_kw)"
        for b in ("b03", "b04", "b05", "b07", "l01", "l02", "l04")
    ]
    failed = "lingang: no perfect-foresight plan on the metered demand: the solver hit its limit"
    lines = grouped_notes([*cooling, failed, cooling[0]])
    assert lines == [
        cooling[0] + " (also b04:cooling_kw, b05:cooling_kw, b07:cooling_kw, l01:cooling_kw, "
        "l02:cooling_kw, l04:cooling_kw)",
        failed,
    ]


def test_a_site_without_meters_says_why_its_figures_are_empty() -> None:
    """A house without any meter printed a load of 0 and a plan vs actual of dashes, silently."""
    note = "house: no electricity meter (…): the import, peak and savings there are not measured"
    frames = {"home": pd.DataFrame({"carrier": [], "power_kw": []})}
    console = Console(width=200, record=True)

    def said() -> str:
        return " ".join(console.export_text().split())  # a caption wraps at its table's width

    console.print(load_table(frames, "load per park", note))
    console.print(actual_table([], "plan vs actual", note))
    assert said().count(note) == 2
    console.print(load_table(frames, "load per park"))
    assert note not in said()  # nothing said where all is metered
