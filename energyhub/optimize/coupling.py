"""Caps that tie parks (and buildings) together beyond their own connections.

A demand-response event caps the sum of the parks' grid imports in every step that starts inside
it (`<city>:demand_response[i]`); a carbon cap bounds the CO₂ of everything the plan dispatches
over its horizon (`<id>:carbon_cap`). A park's own connection limit and demand charge live in its
grid asset (`assets.add_grid`); these rows sit above the parks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.model import Expr, ModelBuilder
from energyhub.optimize.network import Context
from energyhub.sites import SiteFile


@dataclass(frozen=True, slots=True)
class ImportCap:
    """The parks' summed import stays ≤ import_max_kw in the steps where `steps` is set."""

    name: str
    steps: NDArray[np.bool_]
    import_max_kw: float


@dataclass(frozen=True, slots=True)
class Caps:
    """The caps a plan must hold besides each scope's own constraints."""

    carbon_name: str
    carbon_cap_kg: float | None
    imports: tuple[ImportCap, ...] = ()

    @property
    def empty(self) -> bool:
        return self.carbon_cap_kg is None and not self.imports


def resolve_caps(
    site: SiteFile,
    level: str,
    site_id: str,
    index: pd.DatetimeIndex,
    carbon_cap_kg: float | None,
) -> Caps:
    """The caps of a plan: the city's events and carbon cap at city level, an explicit carbon cap
    (which wins over the site file's) at any level."""
    if carbon_cap_kg is not None and not 0 <= carbon_cap_kg < math.inf:  # NaN fails too
        raise PlanInputError(
            f"--carbon-cap-kg: must be a finite number ≥ 0 (kg), got {carbon_cap_kg:g}",
            column="carbon_cap_kg",
        )
    if level != "city":
        return Caps(f"{site_id}:carbon_cap", carbon_cap_kg)
    city = site.city
    starts = index.tz_convert("UTC")
    imports = tuple(
        ImportCap(
            f"{city.id}:demand_response[{i}]",
            np.asarray((starts >= pd.Timestamp(event.start)) & (starts < pd.Timestamp(event.end))),
            event.import_max_kw,
        )
        for i, event in enumerate(city.demand_response)
    )
    cap = carbon_cap_kg if carbon_cap_kg is not None else city.carbon_cap_kg
    return Caps(f"{city.id}:carbon_cap", cap, tuple(c for c in imports if c.steps.any()))


def total_co2(m: ModelBuilder) -> Expr:
    """One row: every CO₂ account the model holds so far (all carriers, all scopes)."""
    rows = [e for name, exprs in m.accounts.items() if name.startswith("co2_kg:") for e in exprs]
    return sum(rows[1:], rows[0]) if rows else Expr.zeros(1)


def add_caps(
    m: ModelBuilder, contexts: Sequence[Context], caps: Caps, excess_cny: float | None = None
) -> None:
    """The import-cap rows over the parks' grid imports and the carbon-cap row; with
    `excess_cny`, each row may be exceeded at that price (`<row>:excess`)."""
    rows: list[tuple[str, Expr, float]] = []
    for cap in caps.imports:
        total = Expr.zeros(contexts[0].n)
        for ctx in contexts:
            total = total + m.variables[f"{ctx.scope.grid_node}:import_kw"].expr()
        groups = np.where(cap.steps, np.cumsum(cap.steps) - 1, -1).astype(np.int64)
        rows.append((cap.name, total.group(groups, int(cap.steps.sum())), cap.import_max_kw))
    if caps.carbon_cap_kg is not None:
        rows.append((caps.carbon_name, total_co2(m), caps.carbon_cap_kg))
    for name, lhs, bound in rows:
        if excess_cny is not None:
            excess = m.add_variables(f"{name}:excess", lhs.n)
            m.add_cost("shortfall", excess_cny * excess.expr())
            lhs = lhs - excess.expr()
        m.add_constraints(name, lhs, "<=", bound)
