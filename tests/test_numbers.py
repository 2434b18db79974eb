"""Figures print with a true minus sign and never as −0 (energyhub.numbers)."""

from __future__ import annotations

from energyhub.numbers import counted, figure, percent
from energyhub.plans.cli import _terms
from energyhub.plans.figures import Side


def test_signs_are_shown_once_and_rightly() -> None:
    assert figure(-8_529.0, 0) == "\N{MINUS SIGN}8,529"
    assert figure(-0.04) == "0.0"  # CO₂ saved "-0.0" before
    assert figure(-0.04, signed=True) == "0.0"
    assert figure(12.34, signed=True) == "+12.3"
    assert percent(-0.333) == "\N{MINUS SIGN}33.3%"


def test_a_bill_by_term_shows_energy_taken_from_storage_as_a_negative_credit() -> None:
    """The meters took 50 CNY of stored energy: that credit is −50.0, not "stored −-50.0"."""
    text = _terms(Side(energy_cny=1000.0, stored_cny=-50.0))
    assert "--" not in text and "\N{MINUS SIGN}-" not in text
    assert text.endswith("less the stored value \N{MINUS SIGN}50.0 CNY")


def test_a_count_takes_its_noun_in_the_right_number() -> None:
    assert [counted(n, "park") for n in (0, 1, 2, 1200)] == [
        "0 parks", "1 park", "2 parks", "1,200 parks"
    ]  # fmt: skip
    assert counted(1, "child", "children") == "1 child"
    assert counted(3, "child", "children") == "3 children"
