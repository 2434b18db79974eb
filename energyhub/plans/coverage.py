"""How much of the compared time the metered data covers (docs/meter-data.md): per step and
carrier, and over the compared steps, the share of the meters' time their readings cover."""

from __future__ import annotations

__all__ = ["Coverage", "coverage_of", "covered_seconds", "percent", "share_of"]

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from energyhub.plans.comparison import Part
from energyhub.plans.metered import COMPARED_CARRIERS


class Coverage(BaseModel):
    """How much of the compared time the metered data covers (docs/meter-data.md): covered
    meter-seconds ÷ (meters × compared seconds). The compared time is the basis's steps from the
    first compared step to the last; a step in it without any reading counts as uncovered."""

    share: float | None = Field(
        description="All compared carriers' meters together, 0–1; None with no compared step."
    )
    by_carrier: dict[str, float] = Field(description="Each metered carrier's share, 0–1.")
    note: str | None = Field(
        description="One line when the share is below 100 %, e.g. 'metered data covers 87 % "
        "of the compared time'; None otherwise."
    )


def covered_seconds(parts: Sequence[Part], step_s: float) -> dict[str, tuple[pd.Series, pd.Series]]:
    """Per carrier metered on any connection: covered and expected meter-seconds per step,
    summed over the connections."""
    out: dict[str, tuple[pd.Series, pd.Series]] = {}
    for carrier in COMPARED_CARRIERS:
        found = [f for _, f in parts if f"meters:{carrier}" in f.columns]
        if not found:
            continue
        index = found[0].index
        zero = pd.Series(0.0, index=index)
        covered = sum((f[f"covered_s:{carrier}"].reindex(index).fillna(0.0) for f in found), zero)
        expected = sum((f[f"meters:{carrier}"].reindex(index).fillna(0.0) for f in found), zero)
        out[carrier] = (covered.astype("float64"), expected.astype("float64") * step_s)
    return out


def share_of(covered: float, expected: float) -> float:
    return min(1.0, covered / expected) if expected > 0 else 0.0


def percent(share: float) -> str:
    """A share as a percentage rounded down, so that anything short of all reads below 100 %."""
    return f"{math.floor(share * 1000) / 10:g} %"


def coverage_of(parts: Sequence[Part], step_s: float) -> Coverage:
    """The compared steps' coverage: each carrier's and all its meters' together."""
    by_carrier: dict[str, float] = {}
    covered_total = expected_total = 0.0
    for carrier, (covered, expected) in covered_seconds(parts, step_s).items():
        kept = float(np.minimum(covered, expected).sum())
        whole = float(expected.sum())
        if whole > 0:
            by_carrier[carrier] = share_of(kept, whole)
            covered_total, expected_total = covered_total + kept, expected_total + whole
    if expected_total <= 0:
        return Coverage(share=None, by_carrier=by_carrier, note=None)
    share = share_of(covered_total, expected_total)
    note = None
    if share < 1.0:
        each = ", ".join(f"{c} {percent(v)}" for c, v in by_carrier.items())
        note = f"metered data covers {percent(share)} of the compared time ({each})"
    return Coverage(share=share, by_carrier=by_carrier, note=note)
