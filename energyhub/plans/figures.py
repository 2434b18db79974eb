"""Realized figures: each side of a comparison by term, the savings and the capture ratio.

The sides are the counterfactual (the rules on the metered demand), the metered bill and the
perfect-foresight re-solve (energyhub.plans.realized says how each is made); each is credited
with the value of what it left in storage (energyhub.plans.stored).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

MIN_FORESIGHT_SAVINGS_CNY = 1e-6
"""Below this, perfect foresight saves nothing and a capture ratio means nothing (None)."""

CAPTURE_MATERIALITY = 0.01
"""A capture ratio is a share of what could be saved: it is only stated when perfect foresight
saves at least this share of the counterfactual's bill. Below it the denominator is noise of the
re-solve (a few hundred CNY on a day of tens of thousands), and realized ÷ it reads −28.75 or 40
for a day whose saving or loss is a figure of its own (docs/billing-and-savings.md)."""

SIDES = ("counterfactual", "metered", "perfect_foresight")
WORSE_NOTE = "perfect foresight came out worse than the plans that ran: no capture"

NO_FORESIGHT = "no re-solve"
FORESIGHT_NOTHING = "foresight saves nothing"
FORESIGHT_IMMATERIAL = f"foresight saves < {CAPTURE_MATERIALITY:.0%} of the counterfactual"
LOSS = "a loss, see saved"
FORESIGHT_WORSE = "foresight worse than the plans"


class Side(BaseModel):
    """One side over the compared steps: its bill by term, CO₂, and what it left in storage."""

    energy_cny: float = 0.0
    demand_cny: float = Field(0.0, description="On the rise above the month-to-date peak.")
    gas_cny: float = 0.0
    carbon_cny: float = 0.0
    unserved_cny: float = Field(
        0.0,
        description="Heat and cooling demand left unserved, priced alike on every side (the "
        "rules', what the meters show, perfect foresight's).",
    )
    co2_kg: float = 0.0
    stored_kwh: float = Field(0.0, description="Storage SOC change: > 0 left in, < 0 taken.")
    stored_cny: float = Field(0.0, description="Its value (energyhub.plans.stored), a credit.")
    stored_kg: float = 0.0

    @property
    def cost_cny(self) -> float:
        """The bill (and the price of unserved demand)."""
        return (
            self.energy_cny + self.demand_cny + self.gas_cny + self.carbon_cny + (self.unserved_cny)
        )

    @property
    def net_cny(self) -> float:
        """The bill less the value of what it left in storage."""
        return self.cost_cny - self.stored_cny

    @property
    def net_co2_kg(self) -> float:
        return self.co2_kg - self.stored_kg

    def __add__(self, other: Side) -> Side:
        return Side(**{k: getattr(self, k) + getattr(other, k) for k in Side.model_fields})


class Realized(BaseModel):
    """Counterfactual, metered and perfect-foresight figures over the same steps."""

    steps: int
    counterfactual_cny: float = Field(
        description="The rules on metered demand and PV (unserved demand priced in)."
    )
    counterfactual_co2_kg: float
    metered_cny: float = Field(description="The bill of the metered import and gas.")
    metered_co2_kg: float
    stored_value_cny: float = Field(
        description="Value of the energy the metered steps left in (> 0) or took from storage."
    )
    savings_cny: float = Field(
        description="Counterfactual − (metered − stored value): what the plans saved."
    )
    savings_co2_kg: float
    perfect_foresight_cny: float | None = Field(
        description="A plan re-solved on the metered demand: the least it could have cost."
    )
    perfect_foresight_co2_kg: float | None
    perfect_savings_cny: float | None = Field(
        description="Counterfactual − (perfect foresight − its stored value)."
    )
    capture_ratio: float | None = Field(
        description="Realized ÷ perfect-foresight savings, in [0, 1]; None where it means "
        "nothing (capture_note says why)."
    )
    capture_note: str | None = Field(
        default=None,
        description="Why there is no capture ratio: no re-solve, foresight saves nothing or "
        "less than 1 % of the counterfactual's bill, a loss (savings_cny < 0), or foresight "
        "worse than the plans.",
    )
    breakdown: dict[str, Side] = Field(
        default_factory=dict,
        description="Each side's terms: counterfactual, metered, perfect_foresight (if solved).",
    )
    notes: list[str] = Field(default_factory=list)
    peaks_kw: dict[str, float] = Field(default_factory=dict, exclude=True)
    """Each side's month-to-date peak after these steps (a later day of the month starts there)."""

    @property
    def capture_text(self) -> str:
        """The capture ratio as every surface prints it: `0.64`, or `— (why)`."""
        if self.capture_ratio is not None:
            return f"{self.capture_ratio:.2f}"
        return f"— ({self.capture_note})" if self.capture_note else "—"

    def __add__(self, other: Realized) -> Realized:
        keys = [k for k in SIDES if k in self.breakdown and k in other.breakdown]
        return finish(
            steps=max(self.steps, other.steps),
            sides={k: self.breakdown[k] + other.breakdown[k] for k in keys},
            notes=[*self.notes, *other.notes],
        )


def finish(*, steps: int, sides: dict[str, Side], notes: list[str]) -> Realized:
    """The figures with the savings and the capture ratio worked out."""
    base, metered = sides["counterfactual"], sides["metered"]
    perfect = sides.get("perfect_foresight")
    savings = base.net_cny - metered.net_cny
    perfect_savings = None if perfect is None else base.net_cny - perfect.net_cny
    notes = [n for n in notes if n != WORSE_NOTE]  # said again below if the total is so
    if perfect_savings is not None and savings > perfect_savings + MIN_FORESIGHT_SAVINGS_CNY:
        notes = [*notes, WORSE_NOTE]  # a re-solve that does worse than what ran is no bound
    why = capture_undefined(savings, perfect_savings, base.cost_cny)
    capture = savings / perfect_savings if why is None and perfect_savings else None
    return Realized(
        steps=steps,
        counterfactual_cny=base.cost_cny,
        counterfactual_co2_kg=base.co2_kg,
        metered_cny=metered.cost_cny,
        metered_co2_kg=metered.co2_kg,
        stored_value_cny=metered.stored_cny,
        savings_cny=savings,
        savings_co2_kg=base.net_co2_kg - metered.net_co2_kg,
        perfect_foresight_cny=None if perfect is None else perfect.cost_cny,
        perfect_foresight_co2_kg=None if perfect is None else perfect.co2_kg,
        perfect_savings_cny=perfect_savings,
        capture_ratio=capture,
        capture_note=why,
        breakdown=sides,
        notes=notes,
    )


def capture_undefined(
    savings_cny: float, perfect_savings_cny: float | None, counterfactual_cny: float
) -> str | None:
    """Why realized ÷ perfect-foresight savings is no capture ratio, or None if it is one: it
    is a share in [0, 1] of a saving that was there to be had. Perfect foresight must save more
    than CAPTURE_MATERIALITY of the counterfactual's bill; a loss is shown as the negative saving
    it is, not as a negative share; and a re-solve that saves less than the plans is no bound."""
    if perfect_savings_cny is None:
        return NO_FORESIGHT
    if perfect_savings_cny <= MIN_FORESIGHT_SAVINGS_CNY:
        return FORESIGHT_NOTHING
    if perfect_savings_cny < CAPTURE_MATERIALITY * abs(counterfactual_cny):
        return FORESIGHT_IMMATERIAL
    if savings_cny < 0:
        return LOSS
    if savings_cny > perfect_savings_cny + MIN_FORESIGHT_SAVINGS_CNY:
        return FORESIGHT_WORSE
    return None
