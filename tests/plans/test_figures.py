"""The capture ratio is a share of a saving that was there to be had: stated only where perfect
foresight saves a material part of the counterfactual's bill and the plans did not lose."""

from __future__ import annotations

import pytest

from energyhub.plans.figures import (
    FORESIGHT_IMMATERIAL,
    FORESIGHT_NOTHING,
    FORESIGHT_WORSE,
    LOSS,
    NO_FORESIGHT,
    WORSE_NOTE,
    Side,
    finish,
)

COUNTERFACTUAL_CNY = 80_000.0
"""A park-day's bill without the plans (Lingang's order of magnitude)."""


def figures(saved_cny: float, foresight_saves_cny: float | None) -> dict[str, Side]:
    """Sides whose realized and perfect-foresight savings are these, all in energy."""
    sides = {
        "counterfactual": Side(energy_cny=COUNTERFACTUAL_CNY),
        "metered": Side(energy_cny=COUNTERFACTUAL_CNY - saved_cny),
    }
    if foresight_saves_cny is not None:
        sides["perfect_foresight"] = Side(energy_cny=COUNTERFACTUAL_CNY - foresight_saves_cny)
    return sides


@pytest.mark.parametrize(
    ("saved", "foresight", "ratio", "note", "text"),
    [
        (1_600.0, 2_000.0, 0.8, None, "0.80"),
        (0.0, 2_000.0, 0.0, None, "0.00"),
        # closed loop, Lingang 12-02: −8,529 against 297 printed −28.75
        (-8_529.0, 297.0, None, FORESIGHT_IMMATERIAL, f"— ({FORESIGHT_IMMATERIAL})"),
        (500.0, 297.0, None, FORESIGHT_IMMATERIAL, f"— ({FORESIGHT_IMMATERIAL})"),
        (-1_000.0, 5_000.0, None, LOSS, f"— ({LOSS})"),
        (3_000.0, 2_000.0, None, FORESIGHT_WORSE, f"— ({FORESIGHT_WORSE})"),
        (100.0, 0.0, None, FORESIGHT_NOTHING, f"— ({FORESIGHT_NOTHING})"),
        (100.0, None, None, NO_FORESIGHT, f"— ({NO_FORESIGHT})"),
    ],
)
def test_capture_ratio_only_where_it_means_something(
    saved: float, foresight: float | None, ratio: float | None, note: str | None, text: str
) -> None:
    found = finish(steps=96, sides=figures(saved, foresight), notes=[])
    assert found.savings_cny == pytest.approx(saved)  # a loss stays the negative saving it is
    assert found.capture_ratio == (None if ratio is None else pytest.approx(ratio))
    assert found.capture_note == note
    assert found.capture_text == text
    assert (WORSE_NOTE in found.notes) == (foresight is not None and saved > foresight)


def test_the_sum_of_days_is_judged_as_a_whole() -> None:
    """A losing day and a saving day: the week's ratio is the sum's, under the same rule."""
    lost = finish(steps=96, sides=figures(-1_000.0, 5_000.0), notes=[])
    saved = finish(steps=96, sides=figures(4_000.0, 5_000.0), notes=[])
    week = lost + saved
    assert lost.capture_ratio is None and saved.capture_ratio == pytest.approx(0.8)
    assert week.capture_ratio == pytest.approx(3_000.0 / 10_000.0)
    assert week.capture_note is None
