"""The demo summary's figures: a saving that rounds to nothing is 0, not -0."""

from __future__ import annotations

import pytest

from energyhub.demo.summary import _number, _tonnes


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
